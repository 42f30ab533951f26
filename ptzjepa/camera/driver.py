"""What the three network drivers share: move, wait for arrival, grab, in project units.

A brand's driver only says how to ask its camera for a position, an absolute move, a relative
move and a snapshot, and how its units map to ours. Everything about limits, clamping, waiting and
failing lives here once, so the brands cannot drift apart.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

import numpy as np

from ptzjepa.camera.arrival import wait_for_arrival
from ptzjepa.camera.base import PTZ, CameraError, Frame, PTZLimits, utc_now
from ptzjepa.camera.http import HttpClient, host_of
from ptzjepa.camera.settings import CameraConfig
from ptzjepa.errors import ConfigError

log = logging.getLogger(__name__)


class NetworkPTZCamera(ABC):
    """A PTZCamera reached over HTTP. Subclasses implement the four `_device_*` calls."""

    brand: str = "network"

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        limits: PTZLimits,
        timeout_s: float,
        retries: int,
        move_timeout_s: float,
        poll_interval_s: float,
        position_tolerance: float,
        name: str | None = None,
    ) -> None:
        """`timeout_s` bounds each HTTP request (connect and each read), `retries` the extra
        tries after a connection error, timeout or 5xx; a move waits up to `move_timeout_s`,
        polling every `poll_interval_s`, until the reported position is within
        `position_tolerance` (degrees, zoom factor) of the target. `name` defaults to host:port."""
        for field, value in (("move_timeout_s", move_timeout_s),
                             ("poll_interval_s", poll_interval_s),
                             ("position_tolerance", position_tolerance)):
            if not value > 0:
                raise ValueError(f"camera.{field}: expected a number > 0, got {value}")
        self.name = name or host_of(url) or self.brand
        self._limits = limits
        self.move_timeout_s = move_timeout_s
        self.poll_interval_s = poll_interval_s
        self.position_tolerance = position_tolerance
        self.http = HttpClient(url, username, password, name=self.name,
                               timeout_s=timeout_s, retries=retries)

    @classmethod
    def from_config(cls, section: CameraConfig, **extra: Any) -> Self:
        """The driver the `camera:` settings describe; the password is read now (ptzjepa.secrets).
        A missing URL or a value the driver refuses is a ConfigError naming the key."""
        if not section.url:
            raise ConfigError(f"camera.url: required for camera.kind {section.kind!r}, e.g. http://192.168.1.20")
        try:
            return cls(section.url, section.username, section.password(), limits=section.limits.to_limits(),
                       timeout_s=section.timeout_s, retries=section.retries,
                       move_timeout_s=section.move_timeout_s, poll_interval_s=section.poll_interval_s,
                       position_tolerance=section.position_tolerance, **extra)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, url={self.http.base_url!r}, "
                f"user={self.http.username!r})")

    @property
    def limits(self) -> PTZLimits:
        return self._limits

    # --- what a brand implements -------------------------------------------------------------

    @abstractmethod
    def _device_position(self) -> PTZ:
        """Ask the camera where it is; answer in project units (not yet fitted to the limits)."""

    @abstractmethod
    def _device_move_to(self, target: PTZ) -> None:
        """Send an absolute move to `target` (project units, within the limits); do not wait."""

    @abstractmethod
    def _device_move_by(self, delta: PTZ) -> None:
        """Send a relative move by `delta` (project units, already clamped); do not wait."""

    @abstractmethod
    def _device_snapshot(self) -> np.ndarray:
        """Fetch and decode one picture: RGB uint8 (H, W, 3)."""

    # --- the PTZCamera protocol ---------------------------------------------------------------

    def position(self) -> PTZ:
        reported = self._device_position()
        pan_range = self._limits.pan
        if pan_range.wraps:  # e.g. a Hanwha reading of 359.999 or Axis -90 for 270
            return PTZ(pan_range.fit(reported.pan), reported.tilt, reported.zoom)
        for turn in (360.0, -360.0):  # the same direction said the other way round
            if not pan_range.contains(reported.pan) and pan_range.contains(reported.pan + turn):
                return PTZ(reported.pan + turn, reported.tilt, reported.zoom)
        return reported

    def move_to(self, target: PTZ) -> PTZ:
        goal = self._limits.fit(target)
        log.debug("camera %s: absolute move to %s", self.name, goal)
        self._device_move_to(goal)
        return self._await(goal, "absolute move")

    def move_by(self, delta: PTZ) -> PTZ:
        before = self.position()
        goal = self._limits.fit(before + delta)
        # Clamped axes move only as far as the limit, so the camera's own end stops (which may
        # lie beyond the configured limits) never decide where it ends up. Pan on a wrapping
        # axis keeps the asked delta: the head turns that way and the reading wraps.
        pan = delta.pan if self._limits.pan.wraps else goal.pan - before.pan
        sent = PTZ(pan, goal.tilt - before.tilt, goal.zoom - before.zoom)
        log.debug("camera %s: relative move by %s from %s", self.name, sent, before)
        self._device_move_by(sent)
        return self._await(goal, "relative move")

    def grab(self) -> Frame:
        at = self.position()
        image = self._device_snapshot()
        return Frame(image=image, ptz=at, time=utc_now())

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> NetworkPTZCamera:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _await(self, goal: PTZ, call: str) -> PTZ:
        return wait_for_arrival(
            self.position, goal, limits=self._limits, tolerance=self.position_tolerance,
            timeout_s=self.move_timeout_s, poll_interval_s=self.poll_interval_s,
            camera=self.name, call=call,
        )

    def _fail(self, call: str, reason: str) -> CameraError:
        return CameraError(self.name, call, self.http.scrub(reason))
