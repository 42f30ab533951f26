"""What a run can be judged by, computed from its store: coverage of the frames taken, the world
model's error on a held-out set the simulator renders, and how good the navigation's choices were.
No plotting here (the experiment and report commands draw); docs/experiments.md explains each.
"""
