"""The world model's held-out error: a fixed set of moves the simulator renders, never stored or
trained on, measured after every cycle so that runs (and policies) can be compared on the same test.

A case is a start pose, `metrics.heldout_rollout` random actions from it and the poses they reach,
at a simulated time of day. Cases are drawn from (metrics.heldout_seed, sim.seed) only, so every run
on the same scene gets the same set whatever its policy or run seed. Start poses are continuous
draws (zoom log-uniform over the camera's first octave) from a stream no capture or navigation
plan uses; `overlapping` checks them against the stored frames anyway and the evaluation leaves
out any case that coincides with one.

Measured on the cases: the one-step error (context encoder at the start, predictor, against the
target encoder at the pose after the first action: the error navigation stores as a move's
reward), the rollout error after each of the k moves when the predictor's own output is fed back
(as dreams do, from the target encoder's tokens), how well the predictor's error channel tracks
the real one-step error, and collapse monitors over the target embeddings of all rendered views:
per-dimension standard deviation and effective rank (exp of the entropy of the normalised
singular values; 1 when every view maps to one direction).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from ptzjepa.camera.base import PTZ, PTZLimits, pan_distance
from ptzjepa.config.settings import Config
from ptzjepa.learning.agent.actions import ActionTable
from ptzjepa.node.frame_tensors import to_tensor
from ptzjepa.storage.frames import FrameRecord

HELDOUT = "metrics/heldout"
_DAY_S = 86_400.0
_BATCH = 64

RenderAt = Callable[[PTZ, float], np.ndarray]


@attrs.frozen
class Case:
    before: PTZ
    actions: tuple[int, ...]
    poses: tuple[PTZ, ...]  # the pose after each action
    sim_time: float

    def all_poses(self) -> tuple[PTZ, ...]:
        return (self.before, *self.poses)


def make_cases(config: Config, limits: PTZLimits, table: ActionTable) -> list[Case]:
    """The held-out set of this scene: the same list for the same (heldout_seed, sim.seed)."""
    m = config.metrics
    rng = np.random.default_rng([m.heldout_seed & 0xFFFFFFFF, config.sim.seed & 0xFFFFFFFF, 0x4E1D])
    octave = math.log2(min(limits.zoom.hi, 2.0 * limits.zoom.lo) / limits.zoom.lo)
    cases = []
    for _ in range(m.heldout_cases):
        before = limits.fit(PTZ(float(rng.uniform(limits.pan.lo, limits.pan.hi)),
                                float(rng.uniform(limits.tilt.lo, limits.tilt.hi)),
                                float(limits.zoom.lo * 2.0 ** rng.uniform(0.0, octave))))
        actions = tuple(int(a) for a in rng.integers(0, table.num_actions, m.heldout_rollout))
        pose, poses = torch.tensor([before.as_tuple()], dtype=torch.float32), []
        for action in actions:
            pose = table.apply(pose, torch.tensor([action]))
            poses.append(PTZ(*(float(v) for v in pose[0])))
        cases.append(Case(before, actions, tuple(poses), float(rng.uniform(0.0, _DAY_S))))
    return cases


def digest(cases: Sequence[Case]) -> str:
    """A short fingerprint of a case list, stored with the results, so that runs can show they
    were measured on the same held-out set."""
    text = json.dumps([attrs.asdict(c) for c in cases], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def overlapping(cases: Sequence[Case], records: Iterable[FrameRecord], tol: float = 1e-3) -> set[int]:
    """Indices of the cases with a pose at which a stored frame was taken (within `tol` degrees
    and zoom factor): such a case would not be held out."""
    stored = [r.ptz for r in records]
    found = set()
    for i, case in enumerate(cases):
        for pose in case.all_poses():
            if any(pan_distance(pose.pan, s.pan) <= tol and abs(pose.tilt - s.tilt) <= tol
                   and abs(pose.zoom - s.zoom) <= tol for s in stored):
                found.add(i)
                break
    return found


def _error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.smooth_l1_loss(predicted.float(), target.float(), reduction="none").mean(dim=(1, 2))


def _poses(batch: Sequence[PTZ], device) -> torch.Tensor:
    return torch.tensor([p.as_tuple() for p in batch], dtype=torch.float32, device=device)


@torch.no_grad()
def _measure_batch(world_model, cases: Sequence[Case], render: RenderAt, device) -> dict[str, torch.Tensor]:
    size = world_model.spec.image_size
    steps = len(cases[0].poses)
    images = [torch.stack([to_tensor(render(c.all_poses()[j], c.sim_time), size) for c in cases]).to(device)
              for j in range(steps + 1)]
    poses = [_poses([c.all_poses()[j] for c in cases], device) for j in range(steps + 1)]
    targets = [world_model.encode_target(im) for im in images]
    predicted, reward = world_model.predict(world_model.encode_context(images[0]), poses[0], poses[1])
    rollout, tokens = [], targets[0]
    for j in range(steps):
        tokens, _ = world_model.predict(tokens, poses[j], poses[j + 1])
        tokens = tokens.float()
        rollout.append(_error(tokens, targets[j + 1]))
    return {"one_step": _error(predicted, targets[1]),
            "reward_channel": reward[..., 1].float().clamp_min(0).mean(dim=1),
            "rollout": torch.stack(rollout, dim=1),
            "views": torch.cat([t.float().mean(dim=1) for t in targets])}


def effective_rank(embeddings: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of the centred [M, D] embeddings."""
    centred = embeddings.double() - embeddings.double().mean(dim=0, keepdim=True)
    singular = torch.linalg.svdvals(centred)
    total = singular.sum()
    if total <= 0:
        return 0.0
    p = singular / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def measure(world_model, cases: Sequence[Case], render: RenderAt, device) -> dict[str, Any]:
    """The held-out figures of `world_model` on `cases` (see the module's docstring)."""
    if not cases:
        raise ValueError("held-out: no cases to measure")
    parts = [_measure_batch(world_model, cases[i:i + _BATCH], render, device)
             for i in range(0, len(cases), _BATCH)]
    one = torch.cat([p["one_step"] for p in parts]).cpu()
    channel = torch.cat([p["reward_channel"] for p in parts]).cpu()
    rollout = torch.cat([p["rollout"] for p in parts]).cpu()
    views = torch.cat([p["views"] for p in parts]).cpu()
    std = views.std(dim=0) if views.shape[0] > 1 else torch.zeros(views.shape[1])
    corr = float("nan")
    if len(one) > 1 and float(one.std()) > 0 and float(channel.std()) > 0:
        corr = float(torch.corrcoef(torch.stack((one, channel)))[0, 1])
    return {
        "cases": len(cases), "k": rollout.shape[1],
        "one_step": float(one.mean()), "k_step": float(rollout[:, -1].mean()),
        "rollout": [float(v) for v in rollout.mean(dim=0)],
        "reward_channel_mean": float(channel.mean()),
        "reward_channel_corr": None if math.isnan(corr) else corr,
        "target_std_mean": float(std.mean()), "target_std_min": float(std.min()),
        "effective_rank": effective_rank(views), "embed_dim": int(views.shape[1]), "views": int(views.shape[0]),
    }
