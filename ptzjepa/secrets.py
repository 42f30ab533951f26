"""Secrets (camera, Redis passwords) come from the environment or a file, never from a setting.

A setting only names the environment variable or the file; this reads it when a driver or a
locker needs it, so a secret is never part of a Config, a stored snapshot or a log line.
"""

from __future__ import annotations

import os
from pathlib import Path

from ptzjepa.errors import ConfigError


def read_secret(env_name: str, file_name: str) -> str:
    """A secret from the environment, else from a file (first line); '' when neither is set."""
    if env_name and os.environ.get(env_name):
        return os.environ[env_name]
    if file_name:
        path = Path(file_name).expanduser()
        try:
            return path.read_text().splitlines()[0].strip() if path.stat().st_size else ""
        except OSError as exc:
            raise ConfigError(f"secrets file {file_name}: cannot read it ({exc.strerror})") from None
    return ""
