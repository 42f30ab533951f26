"""The navigate stage: the agent drives the camera where the world model expects to be wrong.

For each of `iterations` rounds the camera starts at a random position; then for `movements`
steps the world model encodes the current frame, the agent scores the actions, one is taken
(argmax, or with probability `exploration` a draw from softmax(Q)), the camera
moves by it, and the new frame is stored with its position and command. The reward of the move is
the world model's real prediction error, measured once the new frame is seen; it is stored with
the new frame's embedding in `collected_embeds/`. Progress is saved per step: a killed run
resumes at the step in flight, with the camera put back where the last stored frame was taken.

`navigate.policy` says who picks the moves after each round's random start: the agent
(`curiosity`), or one of the baselines of ptzjepa.stages.navigate_policy (`random`, `sweep`),
which need no agent. Every `metrics.choice_every`-th move is graded when the camera can render a
view without moving (the simulator): the percentile of the chosen move's real error among all
moves' (ptzjepa.metrics.choice), stored in `metrics/choice/` and with the move's embedding.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from ptzjepa.camera.base import PTZ, Frame
from ptzjepa.learning.agent.dreamer import pool_tokens
from ptzjepa.metrics import choice as choice_metric
from ptzjepa.node import model_store
from ptzjepa.node.context import Node
from ptzjepa.node.frame_tensors import to_tensor
from ptzjepa.stages.camera_ops import FailureBudget, execute, move_back
from ptzjepa.stages.navigate_policy import random_action, sweep_action
from ptzjepa.storage.checkpoints import CheckpointError
from ptzjepa.storage.embeddings import EmbeddingRecord, write_embedding
from ptzjepa.storage.frames import Command, frame_id
from ptzjepa.storage.store import StoreError

STAGE = "navigate"


def navigate(node: Node) -> str:
    picked = model_store.trained_world_model(node)
    if picked is None:
        return "no_model"
    device = node.device()
    policy = node.config.navigate.policy
    loaded = model_store.load_agent(node, device)
    if loaded is None and policy == "curiosity":
        return "no_agent"
    agent = loaded[0] if loaded is not None else None  # the baselines record its Q-values if there is one
    try:
        world_model, _ = model_store.load_world_model(node, picked[0], device)
    except CheckpointError:  # none of its versions loads (moved aside, with a warning): train one
        return "no_model"
    cfg, limits = node.config.navigate, node.limits
    table = model_store.action_table(node.config, limits)
    per_round = cfg.movements + 1
    total = cfg.iterations * per_round
    done = int(node.progress(STAGE).get("done", 0))
    current = _resume_frame(node, done, per_round)
    budget = FailureBudget(limit=max(3, per_round))
    stored = node.frames.count()
    for step in range(done, total):
        if node.stop.is_set():
            return "stopped"
        node.events.emit("progress", stage=STAGE, done=step, total=total, unit="moves")
        rng = np.random.default_rng([cfg.seed, node.cycle, step])
        fid = frame_id(node.cycle, STAGE, step)
        if step % per_round == 0 or current is None:
            start = PTZ(float(rng.uniform(limits.pan.lo, limits.pan.hi)),
                        float(rng.uniform(limits.tilt.lo, limits.tilt.hi)),
                        float(rng.uniform(*node.config.capture.start_zoom)))
            command, choice = Command("absolute", limits.fit(start)), None
        else:
            move = step - step // per_round - 1  # moves before this one in the stage
            choice = _choose(node, world_model, agent, current, table, rng, device, step % per_round - 1)
            grade = node.config.metrics.choice_every
            if grade and move % grade == 0:
                _grade(node, world_model, choice, table, fid, step)
            delta = table.deltas[choice["action"]].tolist()
            command = Command("action", PTZ(*delta), action=table.names[choice["action"]])
        frame = execute(node, command, fid)
        if not budget.record(frame is not None):
            return "failed"
        if frame is None:
            node.save_progress(STAGE, done=step + 1, total=total)
            current = None  # the camera may be anywhere: the next step starts a round afresh
            continue
        node.frames.put(frame, command, fid=fid, cycle=node.cycle, stage=STAGE, node=node.name)
        stored += 1
        node.events.emit("frame_stored", id=fid, pan=frame.ptz.pan, tilt=frame.ptz.tilt,
                         zoom=frame.ptz.zoom, stage=STAGE, count=stored)
        if choice is not None:
            reward, target = _reward(world_model, choice, frame, device)
            node.events.emit("reward", value=reward, action=command.action)
            if node.config.storage.track_all:
                _store_embedding(node, fid, target, frame.ptz, command.action, reward, choice)
        current = frame
        node.save_progress(STAGE, done=step + 1, total=total)
    node.events.emit("progress", stage=STAGE, done=total, total=total, unit="moves")
    return "done"


@torch.no_grad()
def _choose(node: Node, world_model, agent, frame, table, rng: np.random.Generator, device,
            in_round: int) -> dict:
    """The next action by `navigate.policy`; the agent's Q-values are kept whoever chose."""
    image = to_tensor(frame.image, world_model.spec.image_size).unsqueeze(0).to(device)
    pose = torch.tensor([frame.ptz.as_tuple()], dtype=torch.float32, device=device)
    q = torch.empty(0)
    if agent is not None:
        tokens = world_model.encode_target(image)
        q = agent(pool_tokens(tokens, node.config.dream.state_pool), pose)[0].float()
    policy = node.config.navigate.policy
    if policy == "random":
        action = random_action(table, rng)
    elif policy == "sweep":
        action = sweep_action(table, in_round, frame.ptz, node.config.navigate.sweep_row)
    elif rng.random() < node.config.navigate.exploration:
        probs = torch.softmax(q, dim=0).cpu().numpy().astype(np.float64)
        action = int(rng.choice(len(probs), p=probs / probs.sum()))
    else:
        action = int(q.argmax())
    return {"action": action, "image": image, "pose": pose, "q": q.cpu()}


def _grade(node: Node, world_model, choice: dict, table, fid: str, step: int) -> None:
    """The chosen move's percentile among all moves, by the real error of each rendered view."""
    render = getattr(node.camera(), "render_at", None)  # only a simulator can show views unseen
    if render is None:
        return
    errors = choice_metric.action_errors(world_model, choice["image"], choice["pose"], table, render)
    value = choice_metric.percentile(errors, choice["action"])
    choice["percentile"] = value
    choice_metric.save_choice(node.store, fid, {
        "id": fid, "cycle": node.cycle, "step": step, "policy": node.config.navigate.policy,
        "action": table.names[choice["action"]], "percentile": value, "errors": errors,
        "actions": list(table.names)})
    node.events.emit("metric", stage=STAGE, name="choice_percentile", value=value, step=step)


@torch.no_grad()
def _reward(world_model, choice: dict, frame, device) -> tuple[float, torch.Tensor]:
    """The world model's real error for this move, as in training: the prediction from the
    context encoder's view before the move against the target encoder's view after it."""
    after = torch.tensor([frame.ptz.as_tuple()], dtype=torch.float32, device=device)
    predicted, _ = world_model.predict(world_model.encode_context(choice["image"]), choice["pose"], after)
    image = to_tensor(frame.image, world_model.spec.image_size).unsqueeze(0).to(device)
    target = world_model.encode_target(image)
    return float(F.smooth_l1_loss(predicted.float(), target.float())), target


def _store_embedding(node: Node, fid: str, tokens: torch.Tensor, ptz: PTZ, action: str, reward: float,
                     choice: dict) -> None:
    pooled = pool_tokens(tokens, node.config.dream.state_pool)[0].to(torch.float16).cpu()
    write_embedding(node.store, fid, EmbeddingRecord(
        embedding=pooled, ptz=ptz.as_tuple(), action=action, reward=reward, q=choice["q"],
        policy=node.config.navigate.policy, choice_percentile=choice.get("percentile")))


def _resume_frame(node: Node, done: int, per_round: int):
    """After a restart mid-round: the last stored frame of this round, with the camera moved there;
    None (the next step starts a round afresh) if there is none or the camera fails the move."""
    if done == 0 or done % per_round == 0:
        return None
    for step in range(done - 1, done - done % per_round - 1, -1):
        fid = frame_id(node.cycle, STAGE, step)
        if node.frames.has_record(fid):
            try:
                record = node.frames.record(fid)
                image = node.frames.image(record) if record.image else None
            except StoreError as exc:  # a damaged frame: start the round afresh
                node.warn(f"resuming navigation: {exc}; starting the round afresh")
                return None
            if image is None:  # the storage limits removed its image: nothing to navigate from
                return None
            if not move_back(node, record.ptz, "resuming navigation: cannot return to the last "
                             "frame, starting the round afresh"):
                return None
            return Frame(image, record.ptz, record.time)
    return None
