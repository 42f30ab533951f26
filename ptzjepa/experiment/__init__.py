"""`cli.py experiment`: navigation policies x seeds as runs, then compared."""
