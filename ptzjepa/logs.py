"""Logging set-up: quiet, structured by default, `--debug` for more, and never a secret in a line."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# The user info of a URL (`scheme://user:password@`), up to its last '@' before the path.
_URL_USER_INFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/]*@")


def redact_url(text: str) -> str:
    """`http://user:pw@host/x` -> `http://***@host/x`, in a URL or in any text holding URLs: a
    password typed into a URL must not reach a terminal, a log or a stored file."""
    return _URL_USER_INFO.sub(r"\1***@", text)


# An Authorization header's value, whatever its scheme: quoted (a dict's repr, JSON) or to the end
# of the line (a header as sent, an error body echoing it). Then the schemes' credentials alone.
_AUTH_QUOTED = re.compile(r"""(?i)((?:proxy-)?authorization\b['"]?\s*[:=]\s*)(['"])(?:(?!\2).)*\2""")
_AUTH_HEADER = re.compile(r"""(?i)((?:proxy-)?authorization\b['"]?\s*[:=]\s*)(?![\s'"])[^\r\n]*""")
# Digest's parameters, or a Basic/Bearer token: 8+ characters with a digit, a capital or a
# base64 sign, so that prose ("basic training") is left alone.
_AUTH_SCHEME = re.compile(r"""\b(Basic|Bearer|Digest|BASIC|DIGEST)(\s+)(?:"""
                          r"""(?:[A-Za-z0-9_-]+=(?:"[^"]*"|[^\s,'")]+)(?:\s*,\s*)?)+"""
                          r"""|(?=\S*[0-9A-Z+/=])[A-Za-z0-9+/._~-]{8,}=*)""")
# A Digest header's parameters quoted without their scheme word: the hashes and nonces go.
_DIGEST_PARAM = re.compile(r"""(?i)\b(response|cnonce|nonce|opaque)=(?:"[^"]*"|[^\s,;)'"]+)""")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
_AUTH_HINTS = ("uthoriz", "asic", "igest", "earer", "nonce", "://")


class Scrubber:
    """Blanks secrets out of text in every form they travel: raw, URL-encoded, inside base64 (an
    HTTP Basic `user:password`), whole Authorization header values and Basic/Digest/Bearer
    credentials (even with no known secret), and the user info of URLs. One scrubber serves the
    logs, the events (and so the status file, the view and Waggle) and the camera drivers."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def reset(self, secrets: Iterable[str] = ()) -> None:
        """Know exactly these secrets (a run's), forgetting those of an earlier run in this process."""
        self.secrets = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        forms = set(self.secrets)
        for secret in secrets:
            if secret and len(secret) >= 3:
                forms.update({secret, quote(secret, safe=""), quote(secret), quote_plus(secret)})
        self.secrets = sorted(forms, key=len, reverse=True)

    def text(self, text: str) -> str:
        lowered = text.lower()
        if not self.secrets and not any(hint in lowered for hint in _AUTH_HINTS):
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        if self.secrets:
            text = _BASE64_RUN.sub(self._base64, text)
        if "uthoriz" in lowered or "uthoriz" in text.lower():
            text = _AUTH_QUOTED.sub(r"\1\2***\2", text)
            text = _AUTH_HEADER.sub(r"\1***", text)
        text = _AUTH_SCHEME.sub(r"\1\2***", text)
        if "nonce" in lowered:
            text = _DIGEST_PARAM.sub(r"\1=***", text)
        return redact_url(text) if "://" in text else text

    def _base64(self, match: re.Match[str]) -> str:
        """A base64 run that decodes to text holding a secret, or ending in its first 4+
        characters (an echoed header cut short by a message's length limit), is blanked."""
        token = match.group().rstrip("=")
        token = token[: len(token) // 4 * 4] if len(token) % 4 == 1 else token
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                plain = decode(token + "=" * (-len(token) % 4)).decode("utf-8", errors="ignore")
            except (binascii.Error, ValueError):
                continue
            for secret in self.secrets:
                if secret in plain or any(plain.endswith(secret[:k]) for k in range(4, len(secret))):
                    return "***"
        return match.group()

    def data(self, value: Any) -> Any:
        """The same value with every string in it (keys too) scrubbed: an event's data, a snapshot."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.data(v) for v in value)
        return value


# The process's scrubber: setup_logging gives it the run's secrets, and everything that leaves the
# process as text (log lines, events, the status file, the CLI's error line) passes through it.
SCRUBBER = Scrubber()


def scrub(text: str) -> str:
    return SCRUBBER.text(text)


def scrub_data(value: Any) -> Any:
    return SCRUBBER.data(value)


class RedactSecrets(logging.Filter):
    """Scrubs a log record's final text (and its traceback) with the process's scrubber, to which
    the given secrets are added."""

    def __init__(self, secrets: Iterable[str], scrubber: Scrubber | None = None) -> None:
        super().__init__()
        self.scrubber = scrubber or SCRUBBER
        self.scrubber.add(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed call: the handler's own error report says so
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrubber.text(record.exc_text)
        record.msg, record.args = self.scrubber.text(text), None
        return True


def setup_logging(debug: bool, secrets: Iterable[str] = (), console: object | None = None) -> None:
    """Plain lines to stderr, or through rich's console when the live view owns the terminal."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
    SCRUBBER.reset(secrets)
    handler.addFilter(RedactSecrets(()))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("ptzjepa").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("sim").setLevel(logging.DEBUG if debug else logging.INFO)
    if debug:
        root.setLevel(logging.DEBUG)
        for noisy in ("urllib3", "transitions", "fsspec", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(logging.INFO)
