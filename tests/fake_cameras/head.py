"""The mechanical head behind every fake camera: where it points, how it travels, what it sees.

A move is accepted at once and then takes `polls_to_arrive` position queries to complete, so a
driver that does not wait for arrival sees an intermediate position and fails its tests. Pictures
come from the simulator at the head's current position, so they change when the head moves.
Positions here are in the head's own degrees and optical factor; each protocol converts at its edge.
"""

from __future__ import annotations

import threading

import cv2

from ptzjepa.camera.base import PTZ, PTZLimits
from sim.camera import SimCamera


class Head:
    """Thread-safe PTZ head state with stepwise travel toward the commanded target."""

    def __init__(self, limits: PTZLimits, *, polls_to_arrive: int = 3, start: PTZ | None = None,
                 width: int = 64, height: int = 48, seed: int = 0, scene_width: int = 512,
                 seconds_per_step: float = 0.0) -> None:
        if polls_to_arrive < 1:
            raise ValueError(f"polls_to_arrive: expected an integer >= 1, got {polls_to_arrive}")
        self.limits = limits
        self.polls_to_arrive = polls_to_arrive
        self.frozen = False  # fault: accepts moves but never gets anywhere
        self._at = limits.fit(start or PTZ(limits.pan.lo, 0.0, limits.zoom.lo))
        self._target = self._at
        self._steps_left = 0
        self._lock = threading.Lock()
        # Built now, not at the first snapshot: making the scene must not eat a client's timeout.
        self._sim = SimCamera(width=width, height=height, limits=limits, seed=seed,
                              scene_width=scene_width, seconds_per_step=seconds_per_step,
                              start=self._at, name="fake-head")

    @property
    def target(self) -> PTZ:
        return self._target

    def peek(self) -> PTZ:
        """Where the head is, without letting time pass."""
        with self._lock:
            return self._at

    def move_to(self, target: PTZ) -> None:
        with self._lock:
            if not self.frozen:
                self._target = self.limits.fit(target)
                self._steps_left = self.polls_to_arrive

    def move_by(self, delta: PTZ) -> None:
        with self._lock:
            if not self.frozen:
                self._target = self.limits.fit(self._at + delta)
                self._steps_left = self.polls_to_arrive

    def poll(self) -> PTZ:
        """One position query: the head travels one step toward its target, then reports."""
        with self._lock:
            if self._steps_left > 0:
                share = 1.0 / self._steps_left
                self._at = self.limits.fit(PTZ(
                    self._at.pan + share * self._pan_way(self._at.pan, self._target.pan),
                    self._at.tilt + share * (self._target.tilt - self._at.tilt),
                    self._at.zoom + share * (self._target.zoom - self._at.zoom),
                ))
                self._steps_left -= 1
                if self._steps_left == 0:
                    self._at = self._target
            return self._at

    def _pan_way(self, src: float, dst: float) -> float:
        """Signed pan travel: the short way round on a wrapping axis."""
        if not self.limits.pan.wraps:
            return dst - src
        span = self.limits.pan.span
        d = (dst - src) % span
        return d - span if d > span / 2 else d

    def jpeg(self, quality: int = 85) -> bytes:
        """A JPEG of what the head sees now."""
        at = self.peek()
        with self._lock:
            if self._sim.position() != at:  # sim time passes per move, not per picture
                self._sim.move_to(at)
            rgb = self._sim.grab().image
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("fake camera: JPEG encoding failed")
        return buf.tobytes()
