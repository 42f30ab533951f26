"""Moving and grabbing with the node's patience: retry a failed grab, skip a frame that never comes.

Capture and navigate share this so that one bad answer from a camera costs one frame, never the
node, and a frame that could not be taken is logged, never stored half-made. Drivers report every
failure (timeout, refused login, HTTP error, spoiled JPEG, a head that never arrives) as one
CameraError; anything else is a bug and is left to surface.
"""

from __future__ import annotations

import logging

from ptzjepa.camera.base import PTZ, CameraError, Frame
from ptzjepa.node.context import Node
from ptzjepa.storage.frames import Command

log = logging.getLogger(__name__)


def execute(node: Node, command: Command, fid: str = "") -> Frame | None:
    """Move as the command says, then grab; None (with a warning event) if the camera failed.

    A failed move is not tried again: a relative move that may have reached the head must not
    be sent twice (the driver already resends what surely never arrived)."""
    camera = node.camera()
    what = f"frame {fid}" if fid else "frame"
    try:
        if command.kind == "absolute":
            reached = camera.move_to(command.value)
        else:
            reached = camera.move_by(command.value)
    except CameraError as exc:
        node.events.emit("warning", message=f"{what} skipped, the move failed: {exc}")
        return None
    node.events.emit("camera_moved", pan=reached.pan, tilt=reached.tilt, zoom=reached.zoom)
    return grab(node, fid)


def grab(node: Node, fid: str = "") -> Frame | None:
    """Grab with up to `capture.grab_retries` tries; None (with a warning event) if none worked."""
    retries = node.config.capture.grab_retries
    what = f"frame {fid}" if fid else "frame"
    for attempt in range(1, retries + 1):
        try:
            return node.camera().grab()
        except CameraError as exc:
            if attempt == retries:
                node.events.emit("warning", message=f"{what} skipped after {retries} tries: {exc}")
            else:
                log.info("event=grab_retry frame=%s try=%d/%d detail=%s", fid or "-", attempt,
                         retries, exc)
    return None


def move_back(node: Node, target: PTZ, why: str) -> bool:
    """An absolute move that may fail without ending the stage: False (with a warning) if it did."""
    try:
        node.camera().move_to(target)
    except CameraError as exc:
        node.events.emit("warning", message=f"{why}: the move failed: {exc}")
        return False
    return True


class FailureBudget:
    """Gives up after too many failed steps in a row: a dead camera ends the stage as `failed`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0

    def record(self, ok: bool) -> bool:
        """Record one step; True while the stage may go on."""
        self.in_a_row = 0 if ok else self.in_a_row + 1
        return self.in_a_row < self.limit
