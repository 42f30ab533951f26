"""Dreams: latent rollouts of the world model under random actions, all dreams of a chunk at once.

A dream starts from the target encoder's tokens of a real frame at its pose. Each step draws an
action, moves the pose (ActionTable: pan wraps, tilt/zoom clamp) and asks the predictor for the
tokens at the new pose plus its two reward channels. A whole chunk of dreams steps together,
which is what makes hundreds of dreams cheap on a GPU.

Delta reward of the first step: it is measured from the surprise the predictor gives for the
start state itself (a "stay where you are" prediction, pose_from == pose_to). That costs one more
predictor pass per chunk, but every step's delta then means the same thing: how much more
surprising the new view is than the view the dream came from.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Protocol

import torch
import torch.nn.functional as F

from ptzjepa.learning.agent.actions import ActionTable


class DreamInterrupted(RuntimeError):
    """A rollout was asked to stop between two steps."""


class DreamingModel(Protocol):
    """What the dreamer needs of a world model (jepa.WorldModel satisfies it)."""

    def predict(
        self, ctx_tokens: torch.Tensor, pose_from: torch.Tensor, pose_to: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class Dreams:
    """A set of B dreams of T steps. Step t moves from states[:, t] to states[:, t + 1]."""

    states: torch.Tensor  # [B, T+1, N, D], float32 or a compact float dtype
    poses: torch.Tensor  # [B, T+1, 3] float32 (pan deg, tilt deg, zoom factor)
    actions: torch.Tensor  # [B, T] int64
    reward_head: torch.Tensor  # [B, T] channel 0 (surprise head), mean over tokens
    delta_reward: torch.Tensor  # [B, T] change of reward_head from the previous step
    prediction_error: torch.Tensor  # [B, T] channel 1 (own-error head) clamped at 0, mean over tokens

    def __post_init__(self) -> None:
        if self.states.ndim != 4:
            raise ValueError(f"Dreams.states: expected [B, T+1, N, D], got {list(self.states.shape)}")
        b, t1 = self.states.shape[:2]
        if t1 < 2:
            raise ValueError(f"Dreams.states: expected at least 2 states per dream, got {t1}")
        expected = {
            "poses": (b, t1, 3),
            "actions": (b, t1 - 1),
            "reward_head": (b, t1 - 1),
            "delta_reward": (b, t1 - 1),
            "prediction_error": (b, t1 - 1),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"Dreams.{name}: expected shape {list(shape)}, got {list(got)}")
        if self.actions.dtype != torch.int64:
            raise ValueError(f"Dreams.actions: expected int64, got {self.actions.dtype}")

    @property
    def length(self) -> int:
        return self.states.shape[1] - 1

    def to(self, device: torch.device | str) -> Dreams:
        return Dreams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select(self, index: torch.Tensor | slice) -> Dreams:
        """A subset of the dreams (by index tensor or slice along the dream axis)."""
        return Dreams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors, for torch.save."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, torch.Tensor], source: str = "dreams") -> Dreams:
        """Rebuild from as_dict() output; a missing or extra key is named in the error."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a dict of tensors, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{source}: missing key {missing[0]!r} (expected {names})")
        extra = sorted(set(data) - set(names))
        if extra:
            raise ValueError(f"{source}: unknown key {extra[0]!r} (expected {names})")
        return cls(**{n: data[n] for n in names})

    @staticmethod
    def cat(parts: list[Dreams]) -> Dreams:
        """Join dream sets of the same length and token shape along the dream axis."""
        if not parts:
            raise ValueError("Dreams.cat: expected at least one Dreams, got none")
        shape = tuple(parts[0].states.shape[1:])
        for i, part in enumerate(parts):
            if tuple(part.states.shape[1:]) != shape:
                raise ValueError(
                    f"Dreams.cat: part {i} has states [B, {', '.join(map(str, part.states.shape[1:]))}], "
                    f"expected [B, {', '.join(map(str, shape))}] like part 0"
                )
        return Dreams(
            **{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Dreams)}
        )


def _model_device(model: object, fallback: torch.device) -> torch.device:
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return fallback


@contextlib.contextmanager
def _eval_mode(model: object) -> Iterator[None]:
    """Run in eval mode, then give the caller back the mode it had."""
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    try:
        yield
    finally:
        if was_training and hasattr(model, "train"):
            model.train(True)


def _check_inputs(start_tokens: torch.Tensor, start_poses: torch.Tensor, length: int) -> None:
    if start_tokens.ndim != 3:
        raise ValueError(f"rollout: start_tokens must be [B, N, D], got {list(start_tokens.shape)}")
    if start_poses.shape != (start_tokens.shape[0], 3):
        raise ValueError(
            f"rollout: start_poses must be [{start_tokens.shape[0]}, 3], got {list(start_poses.shape)}"
        )
    if length < 1:
        raise ValueError(f"rollout: length must be >= 1, got {length}")


def _action_plan(
    actions: ActionTable,
    batch: int,
    length: int,
    generator: torch.Generator,
    action_indices: torch.Tensor | None,
) -> torch.Tensor:
    """All actions of all dreams, drawn up front so any chunking gives the same dreams."""
    if action_indices is None:
        return actions.sample((batch, length), generator).long().cpu()
    idx = torch.as_tensor(action_indices).long().cpu()
    if idx.shape != (batch, length):
        raise ValueError(f"rollout: action_indices must be [{batch}, {length}], got {list(idx.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= actions.num_actions):
        raise ValueError(f"rollout: action_indices must lie in [0, {actions.num_actions})")
    return idx


def _predict(model: DreamingModel, tokens, pose_from, pose_to) -> tuple[torch.Tensor, torch.Tensor]:
    pred, reward = model.predict(tokens, pose_from, pose_to)
    if pred.shape != tokens.shape:
        raise ValueError(
            f"world model predict: expected tokens {list(tokens.shape)}, got {list(pred.shape)}"
        )
    if reward.shape != (*tokens.shape[:2], 2):
        raise ValueError(
            f"world model predict: expected reward [{tokens.shape[0]}, {tokens.shape[1]}, 2], "
            f"got {list(reward.shape)}"
        )
    return pred, reward


def _rollout_chunk(
    model: DreamingModel,
    tokens: torch.Tensor,
    poses: torch.Tensor,
    plan: torch.Tensor,
    actions: ActionTable,
    state_dtype: torch.dtype,
    should_stop: Callable[[], bool] | None = None,
) -> Dreams:
    """Step every dream of the chunk together. tokens/poses/plan are on the model's device."""
    length = plan.shape[1]
    _, start_reward = _predict(model, tokens, poses, poses)
    previous = start_reward[..., 0].float().mean(dim=1)
    states, pose_seq = [tokens.to(state_dtype)], [poses]
    heads, deltas, errors = [], [], []
    for t in range(length):
        if should_stop is not None and should_stop():
            raise DreamInterrupted(f"stopped before dream step {t + 1} of {length}")
        next_poses = actions.apply_unchecked(poses, plan[:, t])
        pred, reward = _predict(model, tokens, poses, next_poses)
        head = reward[..., 0].float().mean(dim=1)
        heads.append(head)
        deltas.append(head - previous)
        # Channel 1 regresses each token's error, never negative, with an unbounded linear head: a
        # negative output (untrained, or overshooting a small error) is not rounding but no error.
        errors.append(reward[..., 1].float().clamp_min(0).mean(dim=1))
        # The next step starts from full-precision predictions; only the stored copy is compact.
        tokens, poses, previous = pred.float(), next_poses, head
        states.append(tokens.to(state_dtype))
        pose_seq.append(poses)
    return Dreams(
        states=torch.stack(states, dim=1),
        poses=torch.stack(pose_seq, dim=1),
        actions=plan,
        reward_head=torch.stack(heads, dim=1),
        delta_reward=torch.stack(deltas, dim=1),
        prediction_error=torch.stack(errors, dim=1),
    )


def rollout(
    world_model: DreamingModel,
    start_tokens: torch.Tensor,
    start_poses: torch.Tensor,
    actions: ActionTable,
    length: int,
    generator: torch.Generator,
    chunk_size: int = 500,
    state_dtype: torch.dtype = torch.float32,
    autocast_bf16: bool = False,
    action_indices: torch.Tensor | None = None,
    out_device: torch.device | str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Dreams:
    """Dream B rollouts of `length` random actions from start_tokens [B, N, D] at start_poses [B, 3].

    Dreams are made `chunk_size` at a time on the world model's device and gathered on
    `out_device` (default: start_tokens' device). The same generator seed and model give the same
    dreams whatever the chunk size (actions are drawn up front; action_indices [B, T] replaces the
    draw). `state_dtype` float16/bfloat16 halves the size of stored states; `autocast_bf16` runs
    the predictor in bfloat16 on CUDA (ignored on CPU, where bfloat16 is slower, not faster).
    `should_stop` is asked before every step (a chunk can take minutes on a CPU); when it says
    yes, DreamInterrupted is raised and nothing of the unfinished chunk is returned.
    """
    _check_inputs(start_tokens, start_poses, length)
    if chunk_size < 1:
        raise ValueError(f"rollout: chunk_size must be >= 1, got {chunk_size}")
    if not state_dtype.is_floating_point:
        raise ValueError(f"rollout: state_dtype must be a float dtype, got {state_dtype}")
    batch = start_tokens.shape[0]
    plan = _action_plan(actions, batch, length, generator, action_indices)
    device = _model_device(world_model, start_tokens.device)
    out = torch.device(out_device) if out_device is not None else start_tokens.device
    use_bf16 = autocast_bf16 and device.type == "cuda"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    parts = []
    with _eval_mode(world_model), torch.no_grad(), amp:
        for lo in range(0, batch, chunk_size):
            hi = min(lo + chunk_size, batch)
            chunk = _rollout_chunk(
                world_model,
                start_tokens[lo:hi].to(device=device, dtype=torch.float32),
                start_poses[lo:hi].to(device=device, dtype=torch.float32),
                plan[lo:hi].to(device),
                actions,
                state_dtype,
                should_stop,
            )
            parts.append(chunk.to(out))
    return parts[0] if len(parts) == 1 else Dreams.cat(parts)


def rollout_one_at_a_time(
    world_model: DreamingModel,
    start_tokens: torch.Tensor,
    start_poses: torch.Tensor,
    actions: ActionTable,
    length: int,
    generator: torch.Generator,
    state_dtype: torch.dtype = torch.float32,
    autocast_bf16: bool = False,
    action_indices: torch.Tensor | None = None,
    out_device: torch.device | str | None = None,
) -> Dreams:
    """Each dream stepping alone (a batch of one): the benchmark's baseline and the reference the
    batched rollout is tested against; it draws the same actions."""
    return rollout(
        world_model,
        start_tokens,
        start_poses,
        actions,
        length,
        generator,
        chunk_size=1,
        state_dtype=state_dtype,
        autocast_bf16=autocast_bf16,
        action_indices=action_indices,
        out_device=out_device,
    )


def pool_tokens(tokens: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool a square token grid [..., N, D] -> [..., N / factor^2, D] (what dreams store)."""
    if factor == 1:
        return tokens
    *lead, n, d = tokens.shape
    side = math.isqrt(n)
    grid = tokens.reshape(-1, side, side, d).permute(0, 3, 1, 2).float()
    pooled = F.avg_pool2d(grid, factor).flatten(2).transpose(1, 2)
    return pooled.reshape(*lead, -1, d).to(tokens.dtype)
