"""The agent's discrete moves as a tensor table, so that thousands of dreams move in one call.

The list of moves is data (it lives in the profile); this module only knows how to apply a move
to a batch of poses the way the camera would: pan wraps around, tilt and zoom stop at the limits.
Poses are the project's units: pan and tilt in degrees, zoom as an optical factor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PoseLimits:
    """Where the head can go; mirrors camera.base.PTZLimits without importing it (no attrs here)."""

    pan_lo: float = 0.0
    pan_hi: float = 360.0
    pan_wraps: bool = True
    tilt_lo: float = -20.0
    tilt_hi: float = 90.0
    zoom_lo: float = 1.0
    zoom_hi: float = 32.0

    def __post_init__(self) -> None:
        for axis in ("pan", "tilt", "zoom"):
            lo, hi = getattr(self, f"{axis}_lo"), getattr(self, f"{axis}_hi")
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"PoseLimits.{axis}: expected finite lo < hi, got lo={lo} hi={hi}")


class ActionTable:
    """Named pose deltas [A, 3] times a per-axis modulation, applied within limits.

    The modulation is folded into the table once, so dreams and navigation move the camera by the
    same amounts (the original dreamed with raw deltas but navigated with doubled pan/tilt; pass
    modulation (1, 1, 1) to dream like the original).
    """

    def __init__(
        self,
        names: Sequence[str],
        deltas: torch.Tensor | Sequence[Sequence[float]],
        modulation: Sequence[float] = (1.0, 1.0, 1.0),
        limits: PoseLimits | None = None,
    ) -> None:
        names = tuple(str(n) for n in names)
        table = torch.as_tensor(deltas, dtype=torch.float32).detach().clone()
        if len(names) == 0:
            raise ValueError("ActionTable.names: expected at least one action, got none")
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"ActionTable.names: expected unique names, repeated: {dupes}")
        if table.ndim != 2 or table.shape != (len(names), 3):
            raise ValueError(
                f"ActionTable.deltas: expected shape [{len(names)}, 3] (pan, tilt, zoom per name), "
                f"got {list(table.shape)}"
            )
        if not torch.isfinite(table).all():
            raise ValueError("ActionTable.deltas: expected finite numbers")
        mod = tuple(float(m) for m in modulation)
        if len(mod) != 3 or not all(math.isfinite(m) for m in mod):
            raise ValueError(f"ActionTable.modulation: expected 3 finite numbers, got {modulation!r}")
        self.names = names
        self.raw_deltas = table
        self.modulation = mod
        self.limits = limits if limits is not None else PoseLimits()
        self.deltas = table * torch.tensor(mod, dtype=torch.float32)
        self._placed: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    @property
    def num_actions(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """The index of a named action; a clear error for an unknown name."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"ActionTable: unknown action {name!r}; known: {list(self.names)}") from None

    def fit(self, poses: torch.Tensor) -> torch.Tensor:
        """Wrap pan (or clamp it, if it does not wrap) and clamp tilt and zoom into the limits."""
        lim = self.limits
        pan, tilt, zoom = poses.unbind(-1)
        if lim.pan_wraps:
            span = lim.pan_hi - lim.pan_lo
            pan = torch.remainder(pan - lim.pan_lo, span) + lim.pan_lo
            # Rounding can land exactly on hi, which is the same point as lo.
            pan = torch.where(pan >= lim.pan_hi, torch.full_like(pan, lim.pan_lo), pan)
        else:
            pan = pan.clamp(lim.pan_lo, lim.pan_hi)
        tilt = tilt.clamp(lim.tilt_lo, lim.tilt_hi)
        zoom = zoom.clamp(lim.zoom_lo, lim.zoom_hi)
        return torch.stack((pan, tilt, zoom), dim=-1)

    def apply(self, poses: torch.Tensor, action_idx: torch.Tensor) -> torch.Tensor:
        """Next poses [B, 3] after taking action_idx [B] from poses [B, 3]."""
        if poses.ndim != 2 or poses.shape[-1] != 3:
            raise ValueError(f"ActionTable.apply: poses must be [B, 3], got {list(poses.shape)}")
        if action_idx.shape != poses.shape[:1]:
            raise ValueError(
                f"ActionTable.apply: action_idx must be [{poses.shape[0]}], got {list(action_idx.shape)}"
            )
        if action_idx.numel() and (int(action_idx.min()) < 0 or int(action_idx.max()) >= self.num_actions):
            raise ValueError(f"ActionTable.apply: action_idx must lie in [0, {self.num_actions})")
        return self.apply_unchecked(poses, action_idx)

    def apply_unchecked(self, poses: torch.Tensor, action_idx: torch.Tensor) -> torch.Tensor:
        """apply() without the range check, which costs a device sync per call on a GPU."""
        key = (poses.device, poses.dtype)
        deltas = self._placed.get(key)
        if deltas is None:  # one copy per device, not one host-to-device copy per step
            deltas = self._placed[key] = self.deltas.to(device=poses.device, dtype=poses.dtype)
        return self.fit(poses + deltas[action_idx.to(poses.device).long()])

    def sample(self, shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
        """Uniform random action indices (int64, on the generator's device)."""
        return torch.randint(
            0, self.num_actions, tuple(shape), generator=generator, device=generator.device
        )
