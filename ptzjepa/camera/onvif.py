"""ONVIF PTZ cameras: SOAP 1.2 over HTTP POST, WS-UsernameToken digest auth.

Positions travel in ONVIF's generic (normalised) spaces: pan and tilt in -1..1, zoom in 0..1.
This driver maps them linearly onto the configured limits:

    x = -1 + 2 (pan  - pan.lo)  / pan.span        pan  = pan.lo  + (x + 1) / 2 * pan.span
    y = -1 + 2 (tilt - tilt.lo) / tilt.span       tilt = tilt.lo + (y + 1) / 2 * tilt.span
    z =       (zoom - zoom.lo) / zoom.span        zoom = zoom.lo + z * zoom.span

and relative moves (translation spaces) by the same scale: dx = 2 dpan / pan.span, and so on.
So the configured limits must be the head's real range for degrees to mean degrees.

On first use the driver reads the device's clock (UsernameTokens are stamped in device time),
the Media and PTZ service addresses, the profile (the one named, else the first with PTZ) and its
snapshot URI. Service and snapshot addresses keep our configured scheme, host and port and take
only the path from the device, which often reports an address that is not reachable from here.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any, Self
from urllib.parse import urlsplit

import attrs
import numpy as np
import requests

from ptzjepa.camera.base import PTZ, PTZLimits
from ptzjepa.camera.driver import NetworkPTZCamera
from ptzjepa.camera.http import decode_jpeg
from ptzjepa.camera.settings import CameraConfig
from ptzjepa.camera.soap import SoapError, element, envelope, q, read_body, security_header

DEVICE_PATH = "/onvif/device_service"
PAN_TILT_POSITION = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
PAN_TILT_TRANSLATION = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/TranslationGenericSpace"
ZOOM_POSITION = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
ZOOM_TRANSLATION = "http://www.onvif.org/ver10/tptz/ZoomSpaces/TranslationGenericSpace"


def to_normalised(ptz: PTZ, limits: PTZLimits) -> tuple[float, float, float]:
    return (-1.0 + 2.0 * (ptz.pan - limits.pan.lo) / limits.pan.span,
            -1.0 + 2.0 * (ptz.tilt - limits.tilt.lo) / limits.tilt.span,
            (ptz.zoom - limits.zoom.lo) / limits.zoom.span)


def from_normalised(x: float, y: float, z: float, limits: PTZLimits) -> PTZ:
    return PTZ(limits.pan.lo + (x + 1.0) / 2.0 * limits.pan.span,
               limits.tilt.lo + (y + 1.0) / 2.0 * limits.tilt.span,
               limits.zoom.lo + z * limits.zoom.span)


def delta_to_normalised(delta: PTZ, limits: PTZLimits) -> tuple[float, float, float]:
    return (2.0 * delta.pan / limits.pan.span, 2.0 * delta.tilt / limits.tilt.span,
            delta.zoom / limits.zoom.span)


def _num(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@attrs.frozen
class OnvifSession:
    """What the device told us once: clock offset, where its services live, which profile."""

    clock_offset_s: float
    media_path: str
    ptz_path: str
    profile: str
    snapshot_path: str


class OnvifCamera(NetworkPTZCamera):
    """An ONVIF PTZ head, through the Device, Media and PTZ (ver20) services."""

    brand = "onvif"

    def __init__(self, url: str, username: str, password: str, *, profile: str = "",
                 **settings: Any) -> None:
        """As every network driver (see NetworkPTZCamera), plus the media profile to use."""
        parts = urlsplit(url)
        # The URL may name the device service; every other service path is from the host's root.
        super().__init__(parts._replace(path="", query="").geturl(), username, password,
                         **settings)
        self._device_path = parts.path if parts.path not in ("", "/") else DEVICE_PATH
        self._profile_wanted = profile
        self._session: OnvifSession | None = None

    @classmethod
    def from_config(cls, section: CameraConfig, **extra: Any) -> Self:
        """As every network driver, with the media profile of `camera.onvif_profile`."""
        return super().from_config(section, profile=section.onvif_profile, **extra)

    # --- SOAP ---------------------------------------------------------------------------------

    def _call(self, path: str, body: ET.Element, call: str, *, signed: bool = True,
              idempotent: bool = True, clock_offset_s: float = 0.0) -> ET.Element:
        action = f"{body.tag[1:].replace('}', '/')}"
        header = None
        if signed and self.http.username:
            created = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=clock_offset_s)
            header = security_header(self.http.username, self.http.password, created)
        response = self.http.request(
            "POST", path, call, data=envelope(body, header), idempotent=idempotent,
            headers={"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'},
            explain=self._explain_fault,
        )
        try:
            return read_body(response.content)
        except SoapError as exc:
            raise self._fail(call, self._auth_or(exc)) from None

    def _explain_fault(self, response: requests.Response) -> str | None:
        try:
            read_body(response.content)
        except SoapError as exc:
            return self._auth_or(exc) if exc.fault else None
        return None

    def _auth_or(self, exc: SoapError) -> str:
        if exc.subcode in ("NotAuthorized", "FailedAuthentication", "InvalidSecurity"):
            return f"authentication failed ({exc}) for user {self.http.username!r}"
        return str(exc)

    def _onvif(self) -> OnvifSession:
        if self._session is None:
            self._session = self._discover()
        return self._session

    def _discover(self) -> OnvifSession:
        offset = self._clock_offset()
        caps = self._call(self._device_path, element("tds:GetCapabilities", children=[
            element("tds:Category", "All")]), "capabilities query", clock_offset_s=offset)
        media = self._xaddr(caps, "Media", "capabilities query")
        ptz = self._xaddr(caps, "PTZ", "capabilities query")
        profiles = self._call(media, element("trt:GetProfiles"), "profiles query",
                              clock_offset_s=offset)
        profile = self._choose_profile(profiles)
        snap = self._call(media, element("trt:GetSnapshotUri", children=[
            element("trt:ProfileToken", profile)]), "snapshot URI query", clock_offset_s=offset)
        uri = snap.findtext(f"{q('trt:MediaUri')}/{q('tt:Uri')}")
        if not uri:
            raise self._fail("snapshot URI query", "answer has no MediaUri/Uri")
        return OnvifSession(offset, media, ptz, profile, _path_of(uri))

    def _clock_offset(self) -> float:
        """Device clock minus ours, in seconds; 0 when the device does not say."""
        call = "clock query"
        answer = self._call(self._device_path, element("tds:GetSystemDateAndTime"), call,
                            signed=False)
        utc = answer.find(f".//{q('tt:UTCDateTime')}")
        if utc is None:
            return 0.0
        try:
            d, t = utc.find(q("tt:Date")), utc.find(q("tt:Time"))
            device = dt.datetime(
                int(d.findtext(q("tt:Year"))), int(d.findtext(q("tt:Month"))),
                int(d.findtext(q("tt:Day"))), int(t.findtext(q("tt:Hour"))),
                int(t.findtext(q("tt:Minute"))), int(t.findtext(q("tt:Second"))),
                tzinfo=dt.timezone.utc)
        except (AttributeError, TypeError, ValueError):
            raise self._fail(call, "UTCDateTime is not a valid date and time") from None
        return (device - dt.datetime.now(dt.timezone.utc)).total_seconds()

    def _xaddr(self, caps: ET.Element, service: str, call: str) -> str:
        addr = caps.findtext(f".//{q('tt:' + service)}/{q('tt:XAddr')}")
        if not addr:
            raise self._fail(call, f"the device offers no {service} service")
        return _path_of(addr)

    def _choose_profile(self, answer: ET.Element) -> str:
        profiles = answer.findall(q("trt:Profiles"))
        tokens = [p.get("token", "") for p in profiles]
        if self._profile_wanted:
            if self._profile_wanted not in tokens:
                raise self._fail("profiles query", f"camera.onvif_profile: no profile "
                                 f"{self._profile_wanted!r} (the camera has {tokens})")
            return self._profile_wanted
        for p, token in zip(profiles, tokens):
            if p.find(q("tt:PTZConfiguration")) is not None and token:
                return token
        if not tokens or not tokens[0]:
            raise self._fail("profiles query", "the camera lists no media profile")
        return tokens[0]

    # --- the four device calls ----------------------------------------------------------------

    def _device_position(self) -> PTZ:
        s = self._onvif()
        call = "position query"
        answer = self._call(s.ptz_path, element("tptz:GetStatus", children=[
            element("tptz:ProfileToken", s.profile)]), call, clock_offset_s=s.clock_offset_s)
        pos = answer.find(f"{q('tptz:PTZStatus')}/{q('tt:Position')}")
        pan_tilt = pos.find(q("tt:PanTilt")) if pos is not None else None
        zoom = pos.find(q("tt:Zoom")) if pos is not None else None
        if pan_tilt is None or zoom is None:
            raise self._fail(call, "status has no Position/PanTilt and Position/Zoom")
        try:
            x, y, z = float(pan_tilt.get("x")), float(pan_tilt.get("y")), float(zoom.get("x"))
        except (TypeError, ValueError):
            raise self._fail(call, "status position has no numeric x/y") from None
        return from_normalised(x, y, z, self.limits)

    def _device_move_to(self, target: PTZ) -> None:
        self._move("tptz:AbsoluteMove", "tptz:Position", to_normalised(target, self.limits),
                   (PAN_TILT_POSITION, ZOOM_POSITION), "absolute move", idempotent=True)

    def _device_move_by(self, delta: PTZ) -> None:
        self._move("tptz:RelativeMove", "tptz:Translation", delta_to_normalised(delta, self.limits),
                   (PAN_TILT_TRANSLATION, ZOOM_TRANSLATION), "relative move", idempotent=False)

    def _move(self, operation: str, vector: str, xyz: tuple[float, float, float], spaces: tuple[str, str],
              call: str, *, idempotent: bool) -> None:
        """An AbsoluteMove or RelativeMove: pan/tilt and zoom in normalised units, in their spaces."""
        s = self._onvif()
        x, y, z = xyz
        where = element(vector, children=[element("tt:PanTilt", x=_num(x), y=_num(y), space=spaces[0]),
                                          element("tt:Zoom", x=_num(z), space=spaces[1])])
        self._call(s.ptz_path, element(operation, children=[element("tptz:ProfileToken", s.profile), where]),
                   call, idempotent=idempotent, clock_offset_s=s.clock_offset_s)

    def _device_snapshot(self) -> np.ndarray:
        s = self._onvif()
        call = "snapshot"
        response = self.http.get(s.snapshot_path, call)
        return decode_jpeg(response.content, self.name, call,
                           response.headers.get("Content-Type", ""))


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

