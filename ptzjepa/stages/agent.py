"""The train_agent stage: a double DQN learns from the newest dream set which moves pay.

The agent is the node's own (agents are not shared). Its replay memory is filled with every step
of every dream (states as the dreams stored them, pooled); an epoch is one pass worth of batches;
training stops at `epochs` or when the epoch loss plateaus. Each epoch ends with an atomic
checkpoint holding the online and target networks, the optimiser and the session, so a killed run
resumes at the last finished epoch. Per-step losses go, per epoch, to
`metrics/agent/<agent>/c<cycle>-e<epoch>.jsonl` (the checkpoint keeps only the current cycle's),
so that `cli.py report` can draw every cycle's.
"""

from __future__ import annotations

import json
import time

import torch

from ptzjepa.learning.agent.dqn import DQNTrainer, dreams_to_transitions
from ptzjepa.learning.agent.dreamer import Dreams
from ptzjepa.learning.agent.replay import ReplayBuffer
from ptzjepa.learning.schedules import lr_schedule
from ptzjepa.learning.session import Session
from ptzjepa.node import model_store
from ptzjepa.node.context import Node
from ptzjepa.stages.dream import complete_sets, load_set
from ptzjepa.storage.damage import Damaged

STAGE = "train_agent"


def train_agent(node: Node) -> str:
    sets = complete_sets(node)
    if not sets:
        return "no_data"
    cfg = node.config.agent
    device = node.device()
    try:
        info, chunks = load_set(node, sets[-1])
    except Damaged:  # moved aside with a warning; the machine routes no_data to the dream stage
        return "no_data"
    dreams = Dreams.cat([Dreams.from_dict(c, source=f"dreams/{sets[-1]}") for c in chunks])
    name = model_store.agent_name(node)
    agent, trainer, meta = model_store.load_or_new_agent(node, name, dreams, device)
    session = Session.from_meta(meta, node.cycle, node.name, STAGE)
    replay = ReplayBuffer(capacity=cfg.replay_size, device=device, state_dtype=torch.float16)
    replay.add(dreams_to_transitions(dreams, cfg.reward, cfg.reward_norm).to(device))
    steps_per_epoch = max(1, len(replay) // cfg.batch_size)
    schedule = lr_schedule(cfg.lr, cfg.start_lr, cfg.final_lr, cfg.warmup_epochs, cfg.epochs, steps_per_epoch)
    generator = torch.Generator(device=device).manual_seed(cfg.seed * 100_003 + node.cycle * 101 + session.epochs_done)
    while session.epochs_done < cfg.epochs and not session.plateaued(cfg.patience):
        if node.stop.is_set():
            return "stopped"
        node.events.emit("progress", stage=STAGE, done=session.epochs_done, total=cfg.epochs, unit="epochs")
        began = time.monotonic()
        losses = []
        for _ in range(steps_per_epoch):
            losses.append(trainer.step(replay.sample(cfg.batch_size, generator), lr=schedule(session.steps)))
            session.steps += 1
        loss = sum(losses) / len(losses)
        first_step = session.steps - len(losses)
        session.end_epoch(loss, cfg.plateau_threshold)
        node.store.write_text(
            f"metrics/agent/{name}/c{node.cycle:05d}-e{session.epochs_done:04d}.jsonl",
            "".join(json.dumps({"step": first_step + i, "epoch": session.epochs_done - 1, "loss": value}) + "\n"
                    for i, value in enumerate(losses)),
        )
        node.events.emit("metric", stage="agent", name="loss", value=loss, step=session.epochs_done)
        node.events.emit("metric", stage="agent", name="transitions_per_s",
                         value=steps_per_epoch * cfg.batch_size / max(time.monotonic() - began, 1e-9),
                         step=session.epochs_done)
        node.events.emit("progress", stage=STAGE, done=session.epochs_done, total=cfg.epochs, unit="epochs")
        version = model_store.save_agent(node, name, agent, trainer, session, dream_set=sets[-1], info=info)
        node.events.emit("model_saved", kind="agents", name=name, version=version, path=f"agents/{name}", loss=loss)
    return "done"
