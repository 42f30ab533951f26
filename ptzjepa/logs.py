"""Logging set-up: quiet, structured by default, `--debug` for more, and never a secret in a line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# The user info of a URL (`scheme://user:password@`), up to its last '@' before the path.
_URL_USER_INFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/]*@")


def redact_url(text: str) -> str:
    """`http://user:pw@host/x` -> `http://***@host/x`, in a URL or in any text holding URLs: a
    password typed into a URL must not reach a terminal, a log or a stored file."""
    return _URL_USER_INFO.sub(r"\1***@", text)


class RedactSecrets(logging.Filter):
    """Replaces every known secret value, and the user info of any URL, in a log record's final
    text with '***'."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed call: the handler's own error report says so
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self.secrets:
            text = text.replace(secret, "***")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, "***")
        if "://" in text:
            text = redact_url(text)
        if record.exc_text and "://" in record.exc_text:
            record.exc_text = redact_url(record.exc_text)
        record.msg, record.args = text, None
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
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("ptzjepa").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("sim").setLevel(logging.DEBUG if debug else logging.INFO)
    if debug:
        root.setLevel(logging.DEBUG)
        for noisy in ("urllib3", "transitions", "fsspec", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(logging.INFO)
