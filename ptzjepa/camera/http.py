"""The HTTP plumbing that every network camera driver shares.

One `requests.Session` per camera, so that connections and digest nonces are reused. Failures that
may pass (connection errors, timeouts, 5xx) are retried a bounded number of times with exponential
backoff; failures that will not pass (401/403 and other 4xx) are not. Every failure surfaces as one
`CameraError` naming the camera and the call. The password never leaves this module: it is not in
any URL (credentials in a URL are moved out of it), not in any message, and an exception from
`requests` is reduced to a few scrubbed words and raised outside its except block, so no exception
chain leads back to the request and its Authorization header.
"""

from __future__ import annotations

import logging
import time
from typing import Callable
from urllib.parse import urljoin, urlsplit, urlunsplit, unquote

import cv2
import numpy as np
import requests
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth

from ptzjepa.camera.base import CameraError
from ptzjepa.logs import Scrubber

log = logging.getLogger(__name__)

_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"


def split_credentials(url: str) -> tuple[str, str, str]:
    """(url without user info, user, password) — cameras are often configured as http://u:p@host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("camera.url: expected http://host[:port][/path] or https://…")
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), user, password


def host_of(url: str) -> str:
    """The host[:port] of a URL: the default camera name, safe to print."""
    return urlsplit(url).netloc.rpartition("@")[2]


class HttpClient:
    """Requests to one camera, with timeouts, retries and auth, failing only as `CameraError`."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        name: str,
        timeout_s: float,
        retries: int,
        backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"camera.timeout_s: expected a number > 0, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"camera.retries: expected an integer >= 0, got {retries}")
        self.base_url, url_user, url_password = split_credentials(url)
        self.name = name
        self.username = username or url_user
        self._password = password or url_password
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or .netrc surprises between us and the camera
        self._auth: AuthBase | None = None
        self._scrubber = Scrubber([self._password])

    def __repr__(self) -> str:
        return f"HttpClient(name={self.name!r}, url={self.base_url!r}, user={self.username!r})"

    @property
    def password(self) -> str:
        """For protocols that sign messages with it (ONVIF); never printed."""
        return self._password

    def url(self, path: str) -> str:
        return urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/")) if path else self.base_url

    def get(self, path: str, call: str, *, params: dict[str, str] | None = None,
            idempotent: bool = True) -> requests.Response:
        return self.request("GET", path, call, params=params, idempotent=idempotent)

    def request(
        self,
        method: str,
        path: str,
        call: str,
        *,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
        explain: Callable[[requests.Response], str | None] | None = None,
    ) -> requests.Response:
        """Send one request, retrying what may pass. A non-idempotent call (a relative move) is
        retried only when the request surely never reached the camera, so it never moves twice.

        `explain` turns an error answer's body into the reason to report (a SOAP fault says more
        than its HTTP status does); it returns None to keep the plain status."""
        url = self.url(path)
        attempt = 0
        while True:
            failure = None
            try:
                response = self._send_once(method, url, params, data, headers)
            except requests.RequestException as exc:
                # Keep only words: the exception holds the request, auth headers included.
                failure = (self.scrub(_describe(exc)), idempotent or _never_sent(exc))
            if failure is not None:  # raised outside the except block, so no chain points back
                reason, retry = failure
                if retry and attempt < self.retries:
                    self._backoff(attempt, call, reason)
                    attempt += 1
                    continue
                tries = f" (after {attempt + 1} tries)" if attempt else ""
                raise CameraError(self.name, call, reason + tries)
            status = response.status_code
            if status < 400:
                return response
            if status in (401, 403):
                raise CameraError(self.name, call, f"authentication failed (HTTP {status}) "
                                  f"for user {self.username!r}")
            retry = status >= 500 and (idempotent or status == 503)
            if retry and attempt < self.retries:
                self._backoff(attempt, call, f"HTTP {status}")
                attempt += 1
                continue
            reason = (explain(response) if explain else None) or f"HTTP {status} {response.reason}"
            tries = f" (after {attempt + 1} tries)" if attempt else ""
            raise CameraError(self.name, call, self.scrub(reason) + tries)

    def _send_once(self, method: str, url: str, params, data, headers) -> requests.Response:
        kwargs = dict(params=params, data=data, headers=headers, timeout=self.timeout_s,
                      auth=self._auth, allow_redirects=False)
        response = self._session.request(method, url, **kwargs)
        if response.status_code == 401 and self._auth is None and self.username:
            # The camera says how it wants to be asked; answer in kind and keep it for the session.
            challenge = response.headers.get("WWW-Authenticate", "").lower()
            if "digest" in challenge:
                self._auth = HTTPDigestAuth(self.username, self._password)
            elif "basic" in challenge:
                self._auth = HTTPBasicAuth(self.username, self._password)
            else:
                return response
            kwargs["auth"] = self._auth
            response = self._session.request(method, url, **kwargs)
        return response

    def _backoff(self, attempt: int, call: str, reason: str) -> None:
        delay = min(self.backoff_s * 2**attempt, self.max_backoff_s)
        log.debug("camera %s: %s: %s; retry %d/%d in %.2f s",
                  self.name, call, reason, attempt + 1, self.retries, delay)
        time.sleep(delay)

    def scrub(self, text: str) -> str:
        """Remove the password, in every form the wire carries it (URL-encoded, base64 in a Basic
        header, a whole echoed Authorization value), from any text about to leave the driver."""
        return self._scrubber.text(text)

    def close(self) -> None:
        self._session.close()


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request failed before reaching the camera (nothing can have happened)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        text = repr(exc.args[0]) if exc.args else ""
        return "NewConnectionError" in text or "NameResolutionError" in text
    return False


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, requests.Timeout):
        return "timed out waiting for the answer"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc.args[0]) if exc.args else str(exc)
        if "refused" in text.lower():
            return "connection refused"
        if "NameResolution" in text or "resolve" in text.lower():
            return "host name not found"
        return "connection failed (" + text.split(":")[-1].strip().rstrip("'\")") + ")"
    return f"request failed ({type(exc).__name__})"


def decode_jpeg(data: bytes, camera: str, call: str, content_type: str = "") -> np.ndarray:
    """Check that a body is one whole JPEG and decode it to RGB uint8 (H, W, 3).

    Cameras under load send truncated pictures or an HTML error page with status 200; neither
    may ever become a Frame."""
    kind = content_type.split(";")[0].strip().lower()
    if kind and not kind.startswith("image/") and kind != "application/octet-stream":
        raise CameraError(camera, call, f"expected a JPEG image, got content type {kind!r}")
    if not data.startswith(_JPEG_SOI):
        raise CameraError(camera, call, f"expected a JPEG image, got {len(data)} bytes "
                          "that do not start with the JPEG marker")
    if not data.rstrip(b"\x00\r\n ").endswith(_JPEG_EOI):
        raise CameraError(camera, call, f"truncated JPEG: {len(data)} bytes without "
                          "the end-of-image marker")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise CameraError(camera, call, f"JPEG of {len(data)} bytes could not be decoded")
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def parse_key_values(text: str, camera: str, call: str,
                     keys: tuple[str, ...], convert: Callable[[str], float] = float
                     ) -> dict[str, float]:
    """Read `key=value` lines (SUNAPI, VAPIX), keys matched case-insensitively after any dotted
    prefix (`Channel.0.Pan=` reads as `pan`). Missing or unreadable keys name themselves."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip().rsplit(".", 1)[-1].lower()] = value.strip()
    out: dict[str, float] = {}
    for key in keys:
        raw = found.get(key.lower())
        if raw is None:
            raise CameraError(camera, call, f"answer has no {key}= line: {text.strip()[:80]!r}")
        try:
            out[key] = convert(raw)
        except ValueError:
            raise CameraError(camera, call, f"{key}={raw!r} is not a number") from None
    return out
