"""SOAP 1.2 envelopes with a WS-Security UsernameToken, built and read with xml.etree.

ONVIF needs only a sliver of SOAP: one request element in a Body, a Security header that proves
the password without sending it, and Faults to read. A SOAP library would bring far more than that.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import xml.etree.ElementTree as ET
from typing import Iterable

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
}
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")

for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


def q(prefixed: str) -> str:
    """'tt:PanTilt' -> '{http://www.onvif.org/ver10/schema}PanTilt' (ElementTree's spelling)."""
    prefix, _, local = prefixed.partition(":")
    return f"{{{NS[prefix]}}}{local}"


def element(tag: str, text: str | None = None, children: Iterable[ET.Element] = (),
            **attributes: str) -> ET.Element:
    node = ET.Element(q(tag), attributes)
    if text is not None:
        node.text = text
    node.extend(children)
    return node


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security PasswordDigest: base64(sha1(nonce + created + password))."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()
                            ).decode()


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def security_header(username: str, password: str, created: dt.datetime,
                    nonce: bytes | None = None) -> ET.Element:
    """A UsernameToken with a fresh nonce; `created` should be the device's clock, not ours."""
    nonce = os.urandom(16) if nonce is None else nonce
    stamp = iso_utc(created)
    token = element("wsse:UsernameToken", children=[
        element("wsse:Username", username),
        element("wsse:Password", password_digest(nonce, stamp, password), Type=PASSWORD_DIGEST),
        element("wsse:Nonce", base64.b64encode(nonce).decode(), EncodingType=BASE64_BINARY),
        element("wsu:Created", stamp),
    ])
    return element("wsse:Security", children=[token])


def envelope(body: ET.Element, header: ET.Element | None = None) -> bytes:
    root = element("env:Envelope")
    if header is not None:
        root.append(element("env:Header", children=[header]))
    root.append(element("env:Body", children=[body]))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class SoapError(ValueError):
    """An answer that is not a usable SOAP envelope, or a Fault; the message says which."""

    def __init__(self, message: str, subcode: str = "", fault: bool = False) -> None:
        super().__init__(message)
        self.subcode = subcode
        self.fault = fault  # the device answered with a SOAP Fault (not garbage)


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def read_body(data: bytes) -> ET.Element:
    """The first element inside the Body; a Fault raises SoapError with its code and reason."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoapError(f"answer is not XML ({exc})") from None
    body = root.find(q("env:Body"))
    if local_name(root.tag) != "Envelope" or body is None or len(body) == 0:
        raise SoapError("answer is not a SOAP 1.2 envelope with a Body")
    first = body[0]
    if first.tag == q("env:Fault"):
        raise fault_error(first)
    return first


def fault_error(fault: ET.Element) -> SoapError:
    code = fault.findtext(f"{q('env:Code')}/{q('env:Value')}", "").strip()
    subcodes = [local_name(v.text or "").rpartition(":")[2]
                for v in fault.iter(q("env:Value")) if v.text]
    subcode = subcodes[-1] if len(subcodes) > 1 else ""
    reason = (fault.findtext(f"{q('env:Reason')}/{q('env:Text')}") or "").strip()
    label = code.rpartition(":")[2] + (f"/{subcode}" if subcode else "")
    return SoapError(f"SOAP fault {label}" + (f": {reason[:120]}" if reason else ""), subcode,
                     fault=True)
