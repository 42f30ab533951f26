"""The learning parts of ptzjepa: pure torch (and numpy), no I/O, no camera, no settings loading.

world_model/: vit (encoders), jepa (WorldModel, WorldModelSpec, build_world_model), masks
(I-JEPA blocks), steps (gradients of one step), batched and graph (a whole update in one pass,
as one CUDA graph), optim (optimiser, schedules applied, EMA).
agent/: actions, dreamer, qnet, dqn, replay; it builds on the world model, never the reverse.
Both: sizes (TransformerSize, the settings' own section for a network's size), schedules,
session (a stage's training bookkeeping).
"""
