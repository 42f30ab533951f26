"""A fake ONVIF camera: Device, Media and PTZ services over SOAP 1.2, snapshots over HTTP.

SOAP calls are authenticated by a WS-Security UsernameToken (password digest, fresh nonce, created
time checked against the device's own clock, which may be set off ours), the snapshot URI by HTTP
digest. Positions are in the generic spaces (pan, tilt -1..1; zoom 0..1), spread linearly over
the head's limits. Service addresses are advertised on a host that cannot be reached from here,
as cameras behind NAT do, so a client must keep the host it was given.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import math
import threading
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from ptzjepa.camera.base import PTZ
from tests.fake_cameras.server import FakeCameraServer, Reply, Request

ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TT = "http://www.onvif.org/ver10/schema"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
DEVICE, MEDIA, PTZ_SERVICE, SNAPSHOT = ("/onvif/device_service", "/onvif/media_service",
                                        "/onvif/ptz_service", "/onvif/snapshot")
PROFILES = (("Profile_Sub", False), ("Profile_Main", True))  # (token, has PTZ)
KIND_OF_OP = {"GetStatus": "position", "AbsoluteMove": "absolute", "RelativeMove": "relative"}
FRESH_S = 300.0  # how far a UsernameToken's Created may be from the device clock

_NAMESPACES = (f'xmlns:SOAP-ENV="{ENV}" xmlns:tt="{TT}" xmlns:tptz="{TPTZ}" xmlns:trt="{TRT}" '
               'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
               'xmlns:ter="http://www.onvif.org/ver10/error"')


def soap(body: str, status: int = 200) -> Reply:
    text = (f'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope {_NAMESPACES}>'
            f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>")
    return Reply(status, text.encode(), "application/soap+xml; charset=utf-8")


def fault(subcode: str, reason: str, sender: bool = True) -> Reply:
    code = "SOAP-ENV:Sender" if sender else "SOAP-ENV:Receiver"
    return soap(f"<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>{code}</SOAP-ENV:Value>"
                f"<SOAP-ENV:Subcode><SOAP-ENV:Value>ter:{subcode}</SOAP-ENV:Value>"
                f"</SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason>"
                f'<SOAP-ENV:Text xml:lang="en">{escape(reason)}</SOAP-ENV:Text>'
                f"</SOAP-ENV:Reason></SOAP-ENV:Fault>", 400 if sender else 500)


def _operation(body: bytes) -> ET.Element | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    found = root.find(f"{{{ENV}}}Body")
    return found[0] if found is not None and len(found) else None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class FakeOnvif(FakeCameraServer):
    realm = "ONVIF fake"

    def __init__(self, *args, clock_offset_s: float = 0.0, advertised_host: str = "192.0.2.1",
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.clock_offset_s = clock_offset_s  # the device clock runs this far ahead of ours
        self.advertised_host = advertised_host
        self._seen_nonces: set[bytes] = set()
        self._nonce_lock = threading.Lock()

    def device_now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.clock_offset_s)

    def needs_http_auth(self, request: Request) -> bool:
        return request.path == SNAPSHOT

    def classify(self, request: Request) -> str:
        if request.path == SNAPSHOT:
            return "snapshot"
        op = _operation(request.body)
        return KIND_OF_OP.get(_local(op.tag), "setup") if op is not None else "setup"

    def respond(self, request: Request, kind: str) -> Reply:
        if request.path == SNAPSHOT:
            return self.snapshot_reply()
        if request.path not in (DEVICE, MEDIA, PTZ_SERVICE) or request.method != "POST":
            return Reply(404, b"404 Not Found\n")
        op = _operation(request.body)
        if op is None:
            return fault("InvalidArgVal", "not a SOAP 1.2 envelope")
        name = _local(op.tag)
        if name == "GetSystemDateAndTime" and request.path == DEVICE:
            return self._date_and_time()  # always allowed: clients need it to sign requests
        refused = self._check_token(request.body)
        if refused:
            with self._lock:
                self.auth_failures += 1
            return fault("NotAuthorized", f"Sender not authorized ({refused})")
        handler = {
            (DEVICE, "GetCapabilities"): self._capabilities,
            (MEDIA, "GetProfiles"): self._profiles,
            (MEDIA, "GetSnapshotUri"): self._snapshot_uri,
            (PTZ_SERVICE, "GetStatus"): self._status,
            (PTZ_SERVICE, "AbsoluteMove"): self._absolute,
            (PTZ_SERVICE, "RelativeMove"): self._relative,
        }.get((request.path, name))
        if handler is None:
            return fault("ActionNotSupported", f"{name} is not offered at {request.path}")
        return handler(op)

    # --- WS-Security ---------------------------------------------------------------------------

    def _check_token(self, body: bytes) -> str:
        """'' when the UsernameToken is good, else why not."""
        root = ET.fromstring(body)
        token = root.find(f"{{{ENV}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        if token is None:
            return "no UsernameToken"
        user = token.findtext(f"{{{WSSE}}}Username", "")
        password = token.find(f"{{{WSSE}}}Password")
        created = token.findtext(f"{{{WSU}}}Created", "")
        try:
            nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce", ""), validate=True)
            stamp = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except (binascii.Error, ValueError):
            return "bad nonce or created time"
        if password is None or user != self.username:
            return "unknown user"
        expected = base64.b64encode(hashlib.sha1(
            nonce + created.encode() + self.password.encode()).digest()).decode()
        if not password.get("Type", "").endswith("#PasswordDigest") or password.text != expected:
            return "wrong password"
        if abs((self.device_now() - stamp).total_seconds()) > FRESH_S:
            return "created time too far from the device clock"
        with self._nonce_lock:
            if nonce in self._seen_nonces:
                return "nonce replayed"
            self._seen_nonces.add(nonce)
        return ""

    # --- device and media ----------------------------------------------------------------------

    def _addr(self, path: str) -> str:
        port = self._httpd.server_address[1]
        return f"http://{self.advertised_host}:{port}{path}"

    def _date_and_time(self) -> Reply:
        t = self.device_now()
        return soap(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>"
            f"<tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute>"
            f"<tt:Second>{t.second}</tt:Second></tt:Time><tt:Date><tt:Year>{t.year}</tt:Year>"
            f"<tt:Month>{t.month}</tt:Month><tt:Day>{t.day}</tt:Day></tt:Date>"
            "</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")

    def _capabilities(self, op: ET.Element) -> Reply:
        return soap(
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self._addr(DEVICE)}</tt:XAddr></tt:Device>"
            f"<tt:Media><tt:XAddr>{self._addr(MEDIA)}</tt:XAddr></tt:Media>"
            f"<tt:PTZ><tt:XAddr>{self._addr(PTZ_SERVICE)}</tt:XAddr></tt:PTZ>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>")

    def _profiles(self, op: ET.Element) -> Reply:
        parts = []
        for token, has_ptz in PROFILES:
            ptz = ('<tt:PTZConfiguration token="PTZ_1"><tt:Name>PTZ</tt:Name>'
                   "<tt:NodeToken>Node_1</tt:NodeToken></tt:PTZConfiguration>") if has_ptz else ""
            parts.append(f'<trt:Profiles token="{token}" fixed="true"><tt:Name>{token}</tt:Name>'
                         f"{ptz}</trt:Profiles>")
        return soap(f"<trt:GetProfilesResponse>{''.join(parts)}</trt:GetProfilesResponse>")

    def _snapshot_uri(self, op: ET.Element) -> Reply:
        token = op.findtext(f"{{{TRT}}}ProfileToken", "")
        if token not in dict(PROFILES):
            return fault("NoProfile", f"no profile {token!r}")
        uri = escape(self._addr(f"{SNAPSHOT}?profile={token}"))
        return soap("<trt:GetSnapshotUriResponse><trt:MediaUri>"
                    f"<tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                    "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S"
                    "</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>")

    # --- PTZ -----------------------------------------------------------------------------------

    def _ptz_profile_error(self, op: ET.Element) -> Reply | None:
        token = op.findtext(f"{{{TPTZ}}}ProfileToken", "")
        if token not in dict(PROFILES):
            return fault("NoProfile", f"no profile {token!r}")
        if not dict(PROFILES)[token]:
            return fault("NoPTZProfile", f"profile {token!r} has no PTZ configuration")
        return None

    def _status(self, op: ET.Element) -> Reply:
        refused = self._ptz_profile_error(op)
        if refused:
            return refused
        at = self.head.poll()
        x, y, z = self._normalised(at)
        moving = "MOVING" if at != self.head.target else "IDLE"
        stamp = self.device_now().strftime("%Y-%m-%dT%H:%M:%SZ")
        return soap(
            "<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>"
            f'<tt:PanTilt x="{x:.6f}" y="{y:.6f}"/><tt:Zoom x="{z:.6f}"/></tt:Position>'
            f"<tt:MoveStatus><tt:PanTilt>{moving}</tt:PanTilt><tt:Zoom>{moving}</tt:Zoom>"
            f"</tt:MoveStatus><tt:UtcTime>{stamp}</tt:UtcTime></tptz:PTZStatus>"
            "</tptz:GetStatusResponse>")

    def _normalised(self, at: PTZ) -> tuple[float, float, float]:
        lim = self.head.limits
        return (-1 + 2 * (at.pan - lim.pan.lo) / lim.pan.span,
                -1 + 2 * (at.tilt - lim.tilt.lo) / lim.tilt.span,
                (at.zoom - lim.zoom.lo) / lim.zoom.span)

    def _vector(self, op: ET.Element, holder: str) -> tuple[float, float, float] | str:
        """(x, y, z) from a Position or Translation; missing parts read as no change (nan)."""
        node = op.find(f"{{{TPTZ}}}{holder}")
        if node is None:
            return f"no {holder}"
        pan_tilt, zoom = node.find(f"{{{TT}}}PanTilt"), node.find(f"{{{TT}}}Zoom")
        try:
            x = float(pan_tilt.get("x")) if pan_tilt is not None else float("nan")
            y = float(pan_tilt.get("y")) if pan_tilt is not None else float("nan")
            z = float(zoom.get("x")) if zoom is not None else float("nan")
        except (TypeError, ValueError):
            return f"{holder} has a non-numeric coordinate"
        return x, y, z

    def _absolute(self, op: ET.Element) -> Reply:
        refused = self._ptz_profile_error(op)
        vec = self._vector(op, "Position")
        if refused or isinstance(vec, str):
            return refused or fault("InvalidArgVal", vec)
        now = self._normalised(self.head.peek())
        x, y, z = (here if math.isnan(v) else v for v, here in zip(vec, now))
        if not (-1 <= x <= 1 and -1 <= y <= 1 and 0 <= z <= 1):
            return fault("InvalidPosition", "position outside the generic space")
        lim = self.head.limits
        self.head.move_to(PTZ(lim.pan.lo + (x + 1) / 2 * lim.pan.span,
                              lim.tilt.lo + (y + 1) / 2 * lim.tilt.span,
                              lim.zoom.lo + z * lim.zoom.span))
        return soap("<tptz:AbsoluteMoveResponse/>")

    def _relative(self, op: ET.Element) -> Reply:
        refused = self._ptz_profile_error(op)
        vec = self._vector(op, "Translation")
        if refused or isinstance(vec, str):
            return refused or fault("InvalidArgVal", vec)
        dx, dy, dz = (0.0 if math.isnan(v) else v for v in vec)  # nan: that axis does not move
        lim = self.head.limits
        self.head.move_by(PTZ(dx * lim.pan.span / 2, dy * lim.tilt.span / 2, dz * lim.zoom.span))
        return soap("<tptz:RelativeMoveResponse/>")
