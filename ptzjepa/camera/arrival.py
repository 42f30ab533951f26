"""Waiting for a PTZ head to arrive: poll its reported position until it is close to the target.

Real heads accept a move at once and then take a while (up to seconds for a long pan), so a
fixed sleep is either too short (the picture is smeared or of the wrong place) or wastes time.
Polling ends as soon as the head reports the target, and fails loudly when it never does.
"""

from __future__ import annotations

import time
from typing import Callable

from ptzjepa.camera.base import PTZ, CameraError, PTZLimits, pan_distance


def axis_errors(a: PTZ, b: PTZ, limits: PTZLimits) -> PTZ:
    """How far apart two positions are on each axis (pan the short way round when pan wraps)."""
    pan = (pan_distance(a.pan, b.pan, limits.pan.span) if limits.pan.wraps
           else abs(a.pan - b.pan))
    return PTZ(pan, abs(a.tilt - b.tilt), abs(a.zoom - b.zoom))


def is_near(a: PTZ, b: PTZ, limits: PTZLimits, tolerance: float) -> bool:
    """Within `tolerance` on every axis: degrees for pan and tilt, optical factor for zoom."""
    err = axis_errors(a, b, limits)
    return err.pan <= tolerance and err.tilt <= tolerance and err.zoom <= tolerance


def wait_for_arrival(
    read_position: Callable[[], PTZ],
    target: PTZ,
    *,
    limits: PTZLimits,
    tolerance: float,
    timeout_s: float,
    poll_interval_s: float,
    camera: str,
    call: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PTZ:
    """Poll until the reported position is within tolerance of `target`; return that position.

    The first poll happens at once (a short move may already be done), and the last one no
    later than the deadline; errors from `read_position` pass through unchanged."""
    deadline = clock() + timeout_s
    polls = 0
    while True:
        now_at = read_position()
        polls += 1
        if is_near(now_at, target, limits, tolerance):
            return now_at
        left = deadline - clock()
        if left <= 0:
            raise CameraError(
                camera, call,
                f"did not arrive at {target} within {timeout_s:g} s "
                f"(after {polls} polls it reports {now_at}, tolerance {tolerance:g})",
            )
        sleep(min(poll_interval_s, left))
