"""A fake Axis camera speaking VAPIX: `/axis-cgi/com/ptz.cgi` and `/axis-cgi/jpg/image.cgi`.

Pan in -180..180 degrees, zoom in device steps 1..9999 spread linearly over the lens's optical
range, moves answered `204 No Content`, refused commands answered `Error: ...` with status 200.
"""

from __future__ import annotations

import math

from ptzjepa.camera.base import PTZ, AxisRange, PTZLimits
from tests.fake_cameras.server import FakeCameraServer, Reply, Request

PTZ_CGI = "/axis-cgi/com/ptz.cgi"
IMAGE_CGI = "/axis-cgi/jpg/image.cgi"
STEPS = 9999


def error(text: str) -> Reply:
    return Reply(200, f"Error: {text}\n".encode())


class FakeAxis(FakeCameraServer):
    realm = "AXIS_fake"

    @classmethod
    def default_limits(cls) -> PTZLimits:
        return PTZLimits(pan=AxisRange(-180.0, 180.0, wraps=True))

    def steps(self, factor: float) -> int:
        zoom = self.head.limits.zoom
        return 1 + round((factor - zoom.lo) * (STEPS - 1) / zoom.span)

    def factor(self, steps: float) -> float:
        zoom = self.head.limits.zoom
        return zoom.lo + (steps - 1) * zoom.span / (STEPS - 1)

    def refusal(self, authorization: str) -> Reply:
        scheme, _, credentials = authorization.partition(" ")
        return error(f"{credentials} not allowed (Authorization: {authorization})")

    def classify(self, request: Request) -> str:
        q = request.query
        if request.path == IMAGE_CGI:
            return "snapshot"
        if request.path != PTZ_CGI:
            return "setup"
        if q.get("query") == "position":
            return "position"
        if any(k in q for k in ("pan", "tilt", "zoom")):
            return "absolute"
        if any(k in q for k in ("rpan", "rtilt", "rzoom")):
            return "relative"
        return "setup"

    def respond(self, request: Request, kind: str) -> Reply:
        if request.path not in (PTZ_CGI, IMAGE_CGI):
            return Reply(404, b"404 Not Found\n")
        if kind == "snapshot":
            return self.snapshot_reply()
        if kind == "position":
            at = self.head.poll()
            text = (f"pan={at.pan:.4f}\ntilt={at.tilt:.4f}\nzoom={self.steps(at.zoom)}\n"
                    "iris=5000\nfocus=7000\nautofocus=on\nautoiris=on\n")
            return Reply(200, text.encode())
        if kind not in ("absolute", "relative"):
            return error("no supported command in request")
        prefix = "r" if kind == "relative" else ""
        values: dict[str, float] = {}
        for axis in ("pan", "tilt", "zoom"):
            raw = request.query.get(prefix + axis)
            if raw is None:
                continue
            try:
                values[axis] = float(raw)
            except ValueError:
                return error(f"{prefix + axis}={raw} is not a number")
            if not math.isfinite(values[axis]):
                return error(f"{prefix + axis}={raw} is not a number")
        lim = self.head.limits
        if kind == "absolute":
            at = self.head.peek()
            pan = values.get("pan", at.pan)
            tilt = values.get("tilt", at.tilt)
            steps = values.get("zoom", self.steps(at.zoom))
            if not (-180 <= pan <= 180 and lim.tilt.contains(tilt) and 1 <= steps <= STEPS):
                return error("value out of range")
            self.head.move_to(PTZ(pan, tilt, self.factor(steps)))
        else:
            dzoom = values.get("zoom", 0.0) * lim.zoom.span / (STEPS - 1)
            self.head.move_by(PTZ(values.get("pan", 0.0), values.get("tilt", 0.0), dzoom))
        return Reply(204)
