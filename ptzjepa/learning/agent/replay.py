"""Replay memory: a ring buffer of transitions held as tensors on one device.

Storage grows (doubling) up to `capacity` instead of being allocated whole up front: a capacity
of 100,000 states of 64x192 tokens is gigabytes, and a node usually holds far fewer. Once full,
new transitions overwrite the oldest. States are kept in a compact float dtype (float16 by
default) and handed back as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Transitions:
    """A batch of (state, pose, action, next state, next pose, reward)."""

    states: torch.Tensor  # [B, N, D]
    poses: torch.Tensor  # [B, 3]
    actions: torch.Tensor  # [B] int64
    next_states: torch.Tensor  # [B, N, D]
    next_poses: torch.Tensor  # [B, 3]
    rewards: torch.Tensor  # [B]

    def __post_init__(self) -> None:
        b = self.states.shape[0]
        if self.states.ndim != 3:
            raise ValueError(f"Transitions.states: expected [B, N, D], got {list(self.states.shape)}")
        expected = {
            "poses": (b, 3),
            "actions": (b,),
            "next_states": tuple(self.states.shape),
            "next_poses": (b, 3),
            "rewards": (b,),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"Transitions.{name}: expected shape {list(shape)}, got {list(got)}")

    def __len__(self) -> int:
        return self.states.shape[0]

    def to(self, device: torch.device | str) -> Transitions:
        return Transitions(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class ReplayBuffer:
    """Fixed-capacity ring of transitions; add() takes batches, sample() draws uniformly."""

    def __init__(
        self,
        capacity: int,
        device: torch.device | str = "cpu",
        state_dtype: torch.dtype = torch.float16,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"ReplayBuffer.capacity: expected >= 1, got {capacity}")
        if not state_dtype.is_floating_point:
            raise ValueError(f"ReplayBuffer.state_dtype: expected a float dtype, got {state_dtype}")
        self.capacity = capacity
        self.device = torch.device(device)
        self.state_dtype = state_dtype
        self._store: dict[str, torch.Tensor] = {}
        self._size = 0
        self._next = 0  # where the next transition goes

    def __len__(self) -> int:
        return self._size

    @property
    def allocated(self) -> int:
        """How many slots are allocated now (grows up to capacity)."""
        return self._store["rewards"].shape[0] if self._store else 0

    def _dtype(self, name: str) -> torch.dtype:
        if name in ("states", "next_states"):
            return self.state_dtype
        return torch.int64 if name == "actions" else torch.float32

    def _reserve(self, batch: Transitions, needed: int) -> None:
        """Allocate or grow storage to hold `needed` slots (never more than capacity)."""
        if self._store:
            shape = tuple(self._store["states"].shape[1:])
            if tuple(batch.states.shape[1:]) != shape:
                raise ValueError(
                    f"ReplayBuffer.add: states must be [B, {shape[0]}, {shape[1]}] like the first "
                    f"batch, got {list(batch.states.shape)}"
                )
        if needed <= self.allocated:
            return
        size = self.capacity if needed >= self.capacity else min(self.capacity, max(needed, 2 * self.allocated))
        grown = {}
        for f in fields(Transitions):
            value = getattr(batch, f.name)
            tensor = torch.empty((size, *value.shape[1:]), dtype=self._dtype(f.name), device=self.device)
            if self._store:
                tensor[: self.allocated] = self._store[f.name]
            grown[f.name] = tensor
        self._store = grown

    def add(self, batch: Transitions) -> None:
        """Append a batch; once the ring is full the oldest transitions are overwritten."""
        n = len(batch)
        if n == 0:
            return
        if n > self.capacity:  # only the newest `capacity` of them can stay
            batch = Transitions(**{f.name: getattr(batch, f.name)[-self.capacity :] for f in fields(batch)})
            n = self.capacity
        if self._size < self.capacity:
            self._reserve(batch, min(self.capacity, self._size + n))
        else:
            self._reserve(batch, self.capacity)
        slots = (self._next + torch.arange(n)) % self.capacity
        slots = slots.to(self.device)
        for f in fields(Transitions):
            store = self._store[f.name]
            store[slots] = getattr(batch, f.name).to(device=self.device, dtype=store.dtype)
        self._next = (self._next + n) % self.capacity
        self._size = min(self.capacity, self._size + n)

    def sample(self, batch_size: int, generator: torch.Generator) -> Transitions:
        """Uniform draw with replacement; states come back as float32 on the buffer's device."""
        if self._size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty; add transitions first")
        if batch_size < 1:
            raise ValueError(f"ReplayBuffer.sample: batch_size must be >= 1, got {batch_size}")
        idx = torch.randint(0, self._size, (batch_size,), generator=generator, device=generator.device)
        idx = idx.to(self.device)
        out = {}
        for f in fields(Transitions):
            value = self._store[f.name][idx]
            out[f.name] = value.float() if value.is_floating_point() else value
        return Transitions(**out)
