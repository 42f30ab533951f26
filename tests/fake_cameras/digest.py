"""Server side of HTTP Digest (RFC 7616, MD5, qop=auth) and Basic auth, for the fake cameras.

Real cameras check the nonce they issued, refuse a replayed nonce count, and say `stale=true` when
a nonce has expired, so that a well-behaved client re-authenticates without bothering the user.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse_auth_params(header: str) -> dict[str, str]:
    """`Digest a="x", b=y` -> {'a': 'x', 'b': 'y'} (quoted values may hold commas)."""
    return {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
            for m in _PARAM.finditer(header)}


class DigestAuthority:
    """Issues nonces and checks Authorization headers for one user."""

    def __init__(self, username: str, password: str, *, realm: str,
                 nonce_lifetime_s: float = 300.0) -> None:
        self.username = username
        self.password = password
        self.realm = realm
        self.opaque = os.urandom(8).hex()
        self.nonce_lifetime_s = nonce_lifetime_s
        self._nonces: dict[str, tuple[float, int]] = {}  # nonce -> (issued at, last nc seen)
        self._lock = threading.Lock()

    def challenge(self, stale: bool = False) -> str:
        nonce = os.urandom(16).hex()
        with self._lock:
            self._nonces[nonce] = (time.monotonic(), 0)
        header = (f'Digest realm="{self.realm}", qop="auth", algorithm=MD5, '
                  f'nonce="{nonce}", opaque="{self.opaque}"')
        return header + (", stale=true" if stale else "")

    def check(self, method: str, uri: str, header: str) -> str:
        """'ok', 'stale' (good credentials, expired nonce) or 'denied'."""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return "denied"
        p = parse_auth_params(rest)
        needed = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(k not in p for k in needed) or p["qop"] != "auth":
            return "denied"
        if p.get("algorithm", "MD5").upper() != "MD5" or p.get("opaque", self.opaque) != self.opaque:
            return "denied"
        if p["username"] != self.username or p["realm"] != self.realm or p["uri"] != uri:
            return "denied"
        ha1 = md5_hex(f"{self.username}:{self.realm}:{self.password}")
        ha2 = md5_hex(f"{method}:{p['uri']}")
        expected = md5_hex(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        if p["response"] != expected:
            return "denied"
        try:
            nc = int(p["nc"], 16)
        except ValueError:
            return "denied"
        with self._lock:
            issued = self._nonces.get(p["nonce"])
            if issued is None:
                return "stale"  # not ours (or forgotten): the password was right, ask again
            issued_at, last_nc = issued
            if time.monotonic() - issued_at > self.nonce_lifetime_s:
                del self._nonces[p["nonce"]]
                return "stale"
            if nc <= last_nc:
                return "denied"  # a replayed request
            self._nonces[p["nonce"]] = (issued_at, nc)
        return "ok"


class BasicAuthority:
    """Plain user:password in base64, for cameras configured without digest."""

    def __init__(self, username: str, password: str, *, realm: str) -> None:
        self.username, self.password, self.realm = username, password, realm

    def challenge(self, stale: bool = False) -> str:
        return f'Basic realm="{self.realm}"'

    def check(self, method: str, uri: str, header: str) -> str:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return "denied"
        try:
            user, _, password = base64.b64decode(token.strip()).decode().partition(":")
        except ValueError:
            return "denied"
        return "ok" if (user, password) == (self.username, self.password) else "denied"
