"""Learning-rate, weight-decay and EMA-momentum schedules as pure functions of the update index.

They hold no state (a generator would have to be stepped through from zero on resume), so a run
resumed at update k just asks for value(k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _progress(step: int, start: int, length: int) -> float:
    """Fraction of [start, start + length) done at `step`, held in [0, 1]."""
    if length <= 0:
        return 1.0
    return min(max((step - start) / length, 0.0), 1.0)


def _cosine(start_value: float, end_value: float, fraction: float) -> float:
    return end_value + (start_value - end_value) * 0.5 * (1.0 + math.cos(math.pi * fraction))


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up start_lr -> lr over `warmup` updates, then cosine lr -> final_lr until `total`."""

    start_lr: float
    lr: float
    final_lr: float
    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.start_lr + (self.lr - self.start_lr) * step / self.warmup
        return _cosine(self.lr, self.final_lr, _progress(step, self.warmup, self.total - self.warmup))


@dataclass(frozen=True)
class Cosine:
    """Cosine from `start` to `end` over `total` updates (the weight decay: 0.04 -> 0.4)."""

    start: float
    end: float
    total: int

    def __call__(self, step: int) -> float:
        return _cosine(self.start, self.end, _progress(step, 0, self.total))


@dataclass(frozen=True)
class Linear:
    """Straight line from `start` to `end` over `total` updates (the EMA momentum: 0.8 -> 1.0)."""

    start: float
    end: float
    total: int

    def __call__(self, step: int) -> float:
        return self.start + (self.end - self.start) * _progress(step, 0, self.total)


@dataclass(frozen=True)
class Schedules:
    """The three schedules of one world-model training run."""

    lr: WarmupCosine
    weight_decay: Cosine
    momentum: Linear

    @property
    def total(self) -> int:
        return self.lr.total


def make_schedules(
    *,
    iterations_per_epoch: int,
    epochs: int,
    lr: float,
    start_lr: float,
    final_lr: float,
    warmup_epochs: float,
    weight_decay: float,
    final_weight_decay: float,
    ema: tuple[float, float],
    ipe_scale: float = 1.0,
) -> Schedules:
    """Total updates = epochs x iterations_per_epoch x ipe_scale."""
    if iterations_per_epoch < 1:
        raise ValueError(f"iterations_per_epoch: expected >= 1, got {iterations_per_epoch}")
    if epochs < 1:
        raise ValueError(f"epochs: expected >= 1, got {epochs}")
    if not ipe_scale > 0:
        raise ValueError(f"ipe_scale: expected > 0, got {ipe_scale}")
    if len(ema) != 2 or not 0.0 <= ema[0] <= ema[1] <= 1.0:
        raise ValueError(f"ema: expected [start, end] with 0 <= start <= end <= 1, got {list(ema)}")
    total = max(1, int(iterations_per_epoch * epochs * ipe_scale))
    warmup = min(int(warmup_epochs * iterations_per_epoch), total)
    return Schedules(
        lr=WarmupCosine(start_lr, lr, final_lr, warmup, total),
        weight_decay=Cosine(weight_decay, final_weight_decay, total),
        momentum=Linear(float(ema[0]), float(ema[1]), total),
    )


def lr_schedule(lr: float, start_lr: float, final_lr: float, warmup_epochs: float, epochs: int,
                steps_per_epoch: int) -> WarmupCosine:
    """The agent's learning rate: warm-up over `warmup_epochs`, then cosine over the rest."""
    total = max(1, epochs * steps_per_epoch)
    return WarmupCosine(start_lr, lr, final_lr, min(int(warmup_epochs * steps_per_epoch), total), total)
