"""The learning parts of ptzjepa: pure torch (and numpy), no I/O, no camera, no settings loading.

World model: sizes (TransformerSize, the settings' own section for a network's size), vit
(encoders), jepa (WorldModel, WorldModelSpec, build_world_model), masks (I-JEPA blocks),
schedules, wm_steps (gradients of one step), wm_optim (optimiser, schedules applied, EMA).
Agent: actions, dreamer, qnet, dqn, replay. Both: session (a stage's training bookkeeping).
"""
