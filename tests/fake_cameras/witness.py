"""What a fake camera saw happen: every picture it sent, where its head was, and a hook to make
it misbehave from a given picture on (mid-run, even while another process drives it).

    witness = Witness(server, on_shot=lambda n: n == 2 and setattr(server.faults, "snapshot", "truncated"))
"""

from __future__ import annotations

import threading
from typing import Callable

import attrs

from ptzjepa.camera.base import PTZ
from tests.fake_cameras.server import FakeCameraServer


@attrs.frozen
class Shot:
    number: int  # 1-based, counting every snapshot answered with a picture (spoiled ones too)
    at: PTZ  # where the head was, in the head's own units
    body: bytes  # what was sent
    spoiled: str  # the snapshot fault in force: "ok", "truncated" or "not_jpeg"


class Witness:
    """Wraps a fake's snapshot answer. `on_shot(n)` runs after the n-th picture is made, so it can
    flip `server.faults` for the requests that follow."""

    def __init__(self, server: FakeCameraServer, on_shot: Callable[[int], object] | None = None):
        self.server = server
        self.shots: list[Shot] = []
        self._lock = threading.Lock()
        original = server.snapshot_reply

        def snapshot_reply():
            with self._lock:
                spoiled = server.faults.snapshot
                reply = original()
                shot = Shot(len(self.shots) + 1, server.head.peek(), reply.body, spoiled)
                self.shots.append(shot)
                if on_shot is not None:
                    on_shot(shot.number)
            return reply

        server.snapshot_reply = snapshot_reply

    @property
    def good(self) -> list[Shot]:
        """The pictures that were sent whole."""
        return [s for s in self.shots if s.spoiled == "ok"]
