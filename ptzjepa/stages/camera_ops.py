"""Moving and grabbing with the node's patience: retry a failed grab, skip a frame that never comes.

Capture and navigate share this so that one bad answer from a camera costs one frame, never the
node, and a frame that could not be taken is logged, never stored half-made.
"""

from __future__ import annotations

import logging

from ptzjepa.camera.base import CameraError, Frame
from ptzjepa.frames import Command
from ptzjepa.node import Node

log = logging.getLogger(__name__)


def execute(node: Node, command: Command) -> Frame | None:
    """Move as the command says, then grab; None (with a warning event) if the camera failed."""
    camera = node.camera()
    try:
        if command.kind == "absolute":
            reached = camera.move_to(command.value)
        else:
            reached = camera.move_by(command.value)
    except CameraError as exc:
        node.events.emit("warning", message=f"move skipped: {exc}")
        return None
    node.events.emit("camera_moved", pan=reached.pan, tilt=reached.tilt, zoom=reached.zoom)
    return grab(node)


def grab(node: Node) -> Frame | None:
    retries = node.config.capture.grab_retries
    for attempt in range(1, retries + 1):
        try:
            return node.camera().grab()
        except CameraError as exc:
            if attempt == retries:
                node.events.emit("warning", message=f"frame skipped after {retries} tries: {exc}")
            else:
                log.debug("grab failed (try %d of %d): %s", attempt, retries, exc)
    return None


class FailureBudget:
    """Gives up after too many failed steps in a row: a dead camera ends the stage as `failed`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0

    def record(self, ok: bool) -> bool:
        """Record one step; True while the stage may go on."""
        self.in_a_row = 0 if ok else self.in_a_row + 1
        return self.in_a_row < self.limit
