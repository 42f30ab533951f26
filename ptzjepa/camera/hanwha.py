"""Hanwha (Wisenet) PTZ cameras over SUNAPI, the `/stw-cgi/` CGI interface.

SUNAPI already speaks degrees and optical zoom factors, so the only conversion is pan: the head
reports 0..360, where a reading at (or a hair under) 360 is the same direction as 0. Controls answer
`OK`, or `NG` with an error code and details, usually still with HTTP 200.
"""

from __future__ import annotations

import numpy as np
import requests

from ptzjepa.camera.base import PTZ
from ptzjepa.camera.driver import NetworkPTZCamera
from ptzjepa.camera.http import decode_jpeg, parse_key_values

PTZ_CGI = "/stw-cgi/ptzcontrol.cgi"
SNAPSHOT_CGI = "/stw-cgi/video.cgi"
PAN_ZERO_SNAP = 1e-3  # degrees under 360 that still read as 0 (the head rounds to 0.01)


def sunapi_number(value: float) -> str:
    """A short decimal that SUNAPI parses: at most three decimals, no exponent, no '-0'."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def sunapi_failure(text: str) -> str | None:
    """The error a SUNAPI answer carries (`NG` then `Error Code:`/`Error Details:` lines), if any."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or lines[0].upper() != "NG":
        return None
    details = "; ".join(line for line in lines[1:] if ":" in line)
    return f"camera answered NG ({details or 'no details'})"


def hanwha_pan(pan: float) -> float:
    """Any pan angle as the head's 0..360 reading, with 360 (and a hair under it) read as 0."""
    wrapped = pan % 360.0
    return 0.0 if wrapped > 360.0 - PAN_ZERO_SNAP else wrapped


class HanwhaCamera(NetworkPTZCamera):
    """A Hanwha PTZ head (SUNAPI, HTTP digest auth)."""

    brand = "hanwha"

    def _control(self, submenu: str, ptz: PTZ, call: str) -> None:
        params = {"msubmenu": submenu, "action": "control", "Pan": sunapi_number(ptz.pan),
                  "Tilt": sunapi_number(ptz.tilt), "Zoom": sunapi_number(ptz.zoom)}
        response = self.http.get(PTZ_CGI, call, params=params, idempotent=submenu == "absolute")
        self._check(response, call)

    def _check(self, response: requests.Response, call: str) -> str:
        text = response.text
        failure = sunapi_failure(text)
        if failure:
            raise self._fail(call, failure)
        return text

    def _device_position(self) -> PTZ:
        call = "position query"
        params = {"msubmenu": "query", "action": "view", "Query": "Pan,Tilt,Zoom"}
        text = self._check(self.http.get(PTZ_CGI, call, params=params), call)
        values = parse_key_values(text, self.name, call, ("Pan", "Tilt", "Zoom"))
        return PTZ(hanwha_pan(values["Pan"]), values["Tilt"], values["Zoom"])

    def _device_move_to(self, target: PTZ) -> None:
        device = PTZ(hanwha_pan(target.pan), target.tilt, target.zoom)
        self._control("absolute", device, "absolute move")

    def _device_move_by(self, delta: PTZ) -> None:
        self._control("relative", delta, "relative move")

    def _device_snapshot(self) -> np.ndarray:
        call = "snapshot"
        params = {"msubmenu": "snapshot", "action": "view"}
        response = self.http.get(SNAPSHOT_CGI, call, params=params)
        if not response.content.startswith(b"\xff\xd8"):
            failure = sunapi_failure(response.text)
            if failure:
                raise self._fail(call, failure)
        return decode_jpeg(response.content, self.name, call,
                           response.headers.get("Content-Type", ""))
