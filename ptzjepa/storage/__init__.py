"""What one node stores, through fsspec: the store, frames, checkpoints, damage, the run lock."""
