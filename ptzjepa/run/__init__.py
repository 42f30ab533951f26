"""One run: the app around the machine, the machine itself, the store check, legacy commands."""
