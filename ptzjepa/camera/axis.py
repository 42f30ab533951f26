"""Axis PTZ cameras over VAPIX, `/axis-cgi/com/ptz.cgi` and `/axis-cgi/jpg/image.cgi`.

Axis heads report pan in -180..180 degrees and zoom in device steps 1..9999 rather than as an
optical factor. The step scale is linear in this driver: step 1 is the configured minimum zoom
factor and step 9999 the configured maximum, i.e.

    steps  = 1 + (factor - zoom.lo) / (zoom.hi - zoom.lo) * 9998        (rounded to an integer)
    factor = zoom.lo + (steps - 1) / 9998 * (zoom.hi - zoom.lo)

Real Axis optics are not exactly linear in steps; configure the zoom limits to the lens's range
and treat the factor as a monotone zoom coordinate. Pan readings are mapped into the configured
pan limits (with 0..360 limits, an Axis -90 is our 270).
"""

from __future__ import annotations

import numpy as np
import requests

from ptzjepa.camera.base import PTZ, AxisRange
from ptzjepa.camera.driver import NetworkPTZCamera
from ptzjepa.camera.http import decode_jpeg, parse_key_values

PTZ_CGI = "/axis-cgi/com/ptz.cgi"
SNAPSHOT_CGI = "/axis-cgi/jpg/image.cgi"
ZOOM_STEP_MIN = 1
ZOOM_STEP_MAX = 9999


def zoom_to_steps(factor: float, zoom: AxisRange) -> int:
    fraction = (zoom.fit(factor) - zoom.lo) / zoom.span
    return int(round(ZOOM_STEP_MIN + fraction * (ZOOM_STEP_MAX - ZOOM_STEP_MIN)))


def steps_to_zoom(steps: float, zoom: AxisRange) -> float:
    return zoom.lo + (steps - ZOOM_STEP_MIN) / (ZOOM_STEP_MAX - ZOOM_STEP_MIN) * zoom.span


def zoom_delta_to_steps(delta: float, zoom: AxisRange) -> int:
    return int(round(delta / zoom.span * (ZOOM_STEP_MAX - ZOOM_STEP_MIN)))


def axis_pan(pan: float) -> float:
    """Any pan angle in the head's -180..180 range."""
    return (pan + 180.0) % 360.0 - 180.0


def vapix_number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def vapix_failure(response: requests.Response) -> str | None:
    """VAPIX reports a refused command as a text body starting with 'Error', often with HTTP 200."""
    if response.headers.get("Content-Type", "").startswith("image/"):
        return None
    text = response.text.strip()
    if text.lower().startswith("error"):
        return f"camera answered {text.splitlines()[0][:120]!r}"
    return None


class AxisCamera(NetworkPTZCamera):
    """An Axis PTZ head (VAPIX, HTTP digest or basic auth)."""

    brand = "axis"

    def _command(self, params: dict[str, str], call: str, idempotent: bool) -> str:
        response = self.http.get(PTZ_CGI, call, params=params, idempotent=idempotent)
        failure = vapix_failure(response)
        if failure:
            raise self._fail(call, failure)
        return response.text

    def _device_position(self) -> PTZ:
        call = "position query"
        text = self._command({"query": "position"}, call, idempotent=True)
        values = parse_key_values(text, self.name, call, ("pan", "tilt", "zoom"))
        return PTZ(values["pan"], values["tilt"], steps_to_zoom(values["zoom"], self.limits.zoom))

    def _device_move_to(self, target: PTZ) -> None:
        params = {"pan": vapix_number(axis_pan(target.pan)), "tilt": vapix_number(target.tilt),
                  "zoom": str(zoom_to_steps(target.zoom, self.limits.zoom))}
        self._command(params, "absolute move", idempotent=True)

    def _device_move_by(self, delta: PTZ) -> None:
        params = {"rpan": vapix_number(delta.pan), "rtilt": vapix_number(delta.tilt),
                  "rzoom": str(zoom_delta_to_steps(delta.zoom, self.limits.zoom))}
        self._command(params, "relative move", idempotent=False)

    def _device_snapshot(self) -> np.ndarray:
        call = "snapshot"
        response = self.http.get(SNAPSHOT_CGI, call)
        failure = vapix_failure(response)
        if failure:
            raise self._fail(call, failure)
        return decode_jpeg(response.content, self.name, call,
                           response.headers.get("Content-Type", ""))
