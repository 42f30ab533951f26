"""The learning parts of ptzjepa: pure torch (and numpy), no I/O, no camera, no config classes.

World model: vit (encoders), jepa (WorldModel, WorldModelSpec, build_world_model), masks
(I-JEPA blocks), schedules, wm_train (gradients of one step), wm_trainer (optimiser, EMA).
Agent: actions, dreamer, qnet, dqn, replay.
"""
