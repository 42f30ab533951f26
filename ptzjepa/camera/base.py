"""What every PTZ camera looks like to the rest of ptzjepa, real or simulated.

Units are the project's own, whatever the brand speaks: pan and tilt in degrees, zoom as an
optical factor (1x = widest view). Drivers convert to and from the brand's units at the edge.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Protocol, runtime_checkable

import attrs
import numpy as np


@attrs.frozen
class PTZ:
    """A camera position (or, as a move, a change of position)."""

    pan: float
    tilt: float
    zoom: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.pan, self.tilt, self.zoom)

    def __add__(self, other: PTZ) -> PTZ:
        return PTZ(self.pan + other.pan, self.tilt + other.tilt, self.zoom + other.zoom)

    def __str__(self) -> str:
        return f"pan={self.pan:.2f} tilt={self.tilt:.2f} zoom={self.zoom:.2f}"


def finite(instance: object, attribute: attrs.Attribute, value: float) -> None:
    """An attrs validator: the field must be a finite number (NaN and infinities would spread)."""
    if not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


@attrs.frozen
class AxisRange:
    """The range of one axis. A wrapping axis (pan on most PTZ heads) treats lo and hi as one point."""

    lo: float = attrs.field(validator=finite)
    hi: float = attrs.field(validator=finite)
    wraps: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ValueError(f"axis range needs lo < hi, got lo={self.lo} hi={self.hi}")

    @property
    def span(self) -> float:
        return self.hi - self.lo

    def fit(self, value: float) -> float:
        """Wrap (for a wrapping axis) or clamp a value into the range."""
        if self.wraps:
            wrapped = (value - self.lo) % self.span + self.lo
            # Floating point can land exactly on hi, which is the same point as lo.
            return self.lo if wrapped >= self.hi else wrapped
        return min(max(value, self.lo), self.hi)

    def contains(self, value: float, tol: float = 1e-6) -> bool:
        return self.lo - tol <= value <= self.hi + tol


@attrs.frozen
class PTZLimits:
    """Where the head can go. Defaults are those of a typical Hanwha outdoor PTZ."""

    pan: AxisRange = AxisRange(0.0, 360.0, wraps=True)
    tilt: AxisRange = AxisRange(-20.0, 90.0)
    zoom: AxisRange = AxisRange(1.0, 32.0)

    def fit(self, ptz: PTZ) -> PTZ:
        return PTZ(self.pan.fit(ptz.pan), self.tilt.fit(ptz.tilt), self.zoom.fit(ptz.zoom))

    def contains(self, ptz: PTZ, tol: float = 1e-6) -> bool:
        return (
            self.pan.contains(ptz.pan, tol)
            and self.tilt.contains(ptz.tilt, tol)
            and self.zoom.contains(ptz.zoom, tol)
        )


def pan_distance(a: float, b: float, period: float = 360.0) -> float:
    """Shortest angular distance between two pan angles, in degrees."""
    d = (a - b) % period
    return min(d, period - d)


@attrs.frozen(eq=False)
class Frame:
    """One picture: RGB uint8 pixels (H, W, 3), where the camera was, and when (UTC)."""

    image: np.ndarray
    ptz: PTZ
    time: dt.datetime

    def __attrs_post_init__(self) -> None:
        img = self.image
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"Frame.image must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
        if self.time.tzinfo is None:
            raise ValueError("Frame.time must be timezone-aware (UTC)")


class CameraError(RuntimeError):
    """A camera call failed. The message names the camera and the call, never a secret."""

    def __init__(self, camera: str, call: str, reason: str) -> None:
        super().__init__(f"camera {camera}: {call} failed: {reason}")
        self.camera = camera
        self.call = call
        self.reason = reason


@runtime_checkable
class PTZCamera(Protocol):
    """The one interface that capture and navigation use. Moves block until the camera has arrived."""

    name: str

    @property
    def limits(self) -> PTZLimits: ...

    def position(self) -> PTZ:
        """Where the camera reports it is now."""
        ...

    def move_to(self, target: PTZ) -> PTZ:
        """Move to an absolute position (fitted to the limits); return the position reached."""
        ...

    def move_by(self, delta: PTZ) -> PTZ:
        """Move relatively (pan wraps, tilt and zoom clamp); return the position reached."""
        ...

    def grab(self) -> Frame:
        """Take a picture where the camera is now."""
        ...

    def close(self) -> None: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
