"""A fake Hanwha (Wisenet) camera speaking SUNAPI: `/stw-cgi/ptzcontrol.cgi` and `video.cgi`.

Degrees and optical zoom factor on the wire, pan reported 0..360 with two decimals (so a head a
hair under 360 reads `360.00`), `OK` for accepted controls and `NG` plus an error code otherwise.
"""

from __future__ import annotations

import math

from ptzjepa.camera.base import PTZ
from tests.fake_cameras.server import FakeCameraServer, Reply, Request

PTZ_CGI = "/stw-cgi/ptzcontrol.cgi"
VIDEO_CGI = "/stw-cgi/video.cgi"
ZOOM_PULSES = 10000  # pulses across the zoom range, reported alongside the factor


def ng(code: int, details: str) -> Reply:
    return Reply(200, f"NG\r\nError Code: {code}\r\nError Details: {details}\r\n".encode())


class FakeHanwha(FakeCameraServer):
    realm = "Wisenet fake"

    def refusal(self, authorization: str) -> Reply:
        scheme, _, credentials = authorization.partition(" ")
        return ng(604, f"{credentials} refused; Authorization: {authorization}")

    def classify(self, request: Request) -> str:
        if request.path == VIDEO_CGI:
            return "snapshot"
        if request.path == PTZ_CGI:
            sub = request.query.get("msubmenu", "")
            return {"query": "position", "absolute": "absolute", "relative": "relative"}.get(
                sub, "setup")
        return "setup"

    def respond(self, request: Request, kind: str) -> Reply:
        q = request.query
        if request.path not in (PTZ_CGI, VIDEO_CGI):
            return Reply(404, b"404 Not Found\n")
        if kind == "snapshot":
            if q.get("msubmenu") != "snapshot" or q.get("action") != "view":
                return ng(602, "Invalid Submenu or Action")
            return self.snapshot_reply()
        if kind == "position":
            if q.get("action") != "view":
                return ng(602, "Invalid Action")
            return self._position(q.get("Query", "Pan,Tilt,Zoom"))
        if kind in ("absolute", "relative"):
            if q.get("action") != "control":
                return ng(602, "Invalid Action")
            return self._move(kind, q)
        return ng(608, "Unsupported Submenu")

    def _position(self, query: str) -> Reply:
        at = self.head.poll()
        zoom = self.head.limits.zoom
        pulse = round((at.zoom - zoom.lo) / zoom.span * ZOOM_PULSES)
        values = {"Pan": f"{at.pan % 360:.2f}", "Tilt": f"{at.tilt:.2f}",
                  "Zoom": f"{at.zoom:.2f}", "ZoomPulse": str(pulse)}
        asked = [k.strip() for k in query.split(",") if k.strip()]
        unknown = [k for k in asked if k not in values]
        if unknown:
            return ng(604, f"Invalid Query {unknown[0]}")
        lines = [f"{k}={values[k]}" for k in asked]
        if "Zoom" in asked:
            lines.append(f"ZoomPulse={pulse}")
        return Reply(200, ("\r\n".join(dict.fromkeys(lines)) + "\r\n").encode())

    def _move(self, kind: str, q: dict[str, str]) -> Reply:
        values: dict[str, float] = {}
        for key in ("Pan", "Tilt", "Zoom"):
            if key in q:
                try:
                    values[key] = float(q[key])
                except ValueError:
                    return ng(604, f"Invalid Parameter Value {key}")
                if not math.isfinite(values[key]):
                    return ng(604, f"Invalid Parameter Value {key}")
        if not values:
            return ng(604, "No Pan, Tilt or Zoom")
        lim = self.head.limits
        if kind == "absolute":
            at = self.head.peek()
            target = PTZ(values.get("Pan", at.pan), values.get("Tilt", at.tilt),
                         values.get("Zoom", at.zoom))
            if not (0 <= target.pan <= 360 and lim.tilt.contains(target.tilt)
                    and lim.zoom.contains(target.zoom)):
                return ng(604, "Parameter Value Out Of Range")
            self.head.move_to(target)
        else:
            self.head.move_by(PTZ(values.get("Pan", 0.0), values.get("Tilt", 0.0),
                                  values.get("Zoom", 0.0)))
        return Reply(200, b"OK\r\n")
