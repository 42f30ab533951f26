"""What a run shows: the event stream and everything that reads it (live view, status, Waggle)."""
