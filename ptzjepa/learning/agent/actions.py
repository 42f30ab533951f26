"""The agent's discrete moves as a tensor table, so that thousands of dreams move in one call.

The list of moves is data (it lives in the profile); this module only knows how to apply a move
to a batch of poses the way the camera would: pan wraps around, tilt and zoom stop at the limits.
Poses are the project's units: pan and tilt in degrees, zoom as an optical factor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


class ActionTable:
    """Named pose deltas [A, 3] times a per-axis modulation, applied within limits.

    The modulation is folded into the table once, so dreams and navigation move the camera by the
    same amounts: an agent trained on dreams moves by what it dreamt (modulation (1, 1, 1) dreams
    the raw deltas). The limits are plain numbers, (lo, hi) per
    axis and whether pan wraps, as the camera's PTZLimits gives them (ptzjepa.learning imports
    nothing of the cameras); the defaults are a typical Hanwha outdoor head's.
    """

    def __init__(
        self,
        names: Sequence[str],
        deltas: torch.Tensor | Sequence[Sequence[float]],
        modulation: Sequence[float] = (1.0, 1.0, 1.0),
        *,
        pan: Sequence[float] = (0.0, 360.0),
        tilt: Sequence[float] = (-20.0, 90.0),
        zoom: Sequence[float] = (1.0, 32.0),
        pan_wraps: bool = True,
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
        bounds = tuple((float(lo), float(hi)) for lo, hi in (pan, tilt, zoom))
        for axis, (lo, hi) in zip(("pan", "tilt", "zoom"), bounds):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"ActionTable.{axis}: expected finite lo < hi, got lo={lo} hi={hi}")
        self.names = names
        self.raw_deltas = table
        self.modulation = mod
        self.bounds = bounds  # (lo, hi) of pan, tilt and zoom
        self.pan_wraps = bool(pan_wraps)
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
        (pan_lo, pan_hi), (tilt_lo, tilt_hi), (zoom_lo, zoom_hi) = self.bounds
        pan, tilt, zoom = poses.unbind(-1)
        if self.pan_wraps:
            span = pan_hi - pan_lo
            pan = torch.remainder(pan - pan_lo, span) + pan_lo
            # Rounding can land exactly on hi, which is the same point as lo.
            pan = torch.where(pan >= pan_hi, torch.full_like(pan, pan_lo), pan)
        else:
            pan = pan.clamp(pan_lo, pan_hi)
        tilt = tilt.clamp(tilt_lo, tilt_hi)
        zoom = zoom.clamp(zoom_lo, zoom_hi)
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
