"""Settings: every section as attrs classes, loading profiles and overrides, cross-field checks."""
