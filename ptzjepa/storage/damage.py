"""Damaged stored files: moved aside for inspection, named in one warning, never a crash.

A file the node reads back (its state, a checkpoint, a dream chunk) can be garbage, empty, cut
short or of the wrong shape: a disk error, a copy made by hand, a full disk on another writer. The
rule everywhere is the same: the damaged file is renamed to `<name>.damaged-<UTC time>` next to
where it was (a name no listing of the node picks up again), one warning says which file, why and
what the node does instead, and the node rebuilds what it needs from what the store still holds.
docs/resilience.md lists each file and what happens.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from collections.abc import Callable
from typing import Any

from ptzjepa.storage.store import Store, StoreError

log = logging.getLogger(__name__)
DAMAGED_MARK = ".damaged-"
Warn = Callable[[str], None]


class Damaged(ValueError):
    """A stored file that is there but cannot be used; the message says why."""


def log_warning(message: str) -> None:
    log.warning("%s", message)


def is_damaged_name(name: str) -> bool:
    """Whether a file or folder name is one that move_aside gave (listings skip those)."""
    return DAMAGED_MARK in name


def move_aside(store: Store, rel: str, why: str, instead: str, warn: Warn = log_warning) -> str:
    """Rename a damaged file or folder to `<rel>.damaged-<UTC>` and warn once; returns the new name.
    `instead` says what the node does about it ("rebuilt from the checkpoints")."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest, n = f"{rel}{DAMAGED_MARK}{stamp}", 1
    while store.exists(dest):
        n += 1
        dest = f"{rel}{DAMAGED_MARK}{stamp}-{n}"
    try:
        store.move(rel, dest)
    except FileNotFoundError:  # another reader moved it first: nothing left to keep
        dest = "(already gone)"
    warn(f"damaged file {rel}: {why}; moved aside to {dest}; {instead}")
    return dest


def read_json_checked(store: Store, rel: str, check: Callable[[Any], None]) -> Any:
    """A JSON file's content if it is there, decodes and passes `check`; None when missing.
    Damaged (with the reason) when it is empty, not JSON, or `check` raises."""
    try:
        raw = store.read_bytes(rel)
    except StoreError:
        return None
    if not raw.strip():
        raise Damaged("empty file")
    try:
        data = json.loads(raw)
    except ValueError:
        raise Damaged("not valid JSON") from None
    try:
        check(data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise Damaged(f"not what it should hold ({exc})") from None
    return data


def require(condition: bool, what: str) -> None:
    """For the `check` of read_json_checked: raise with `what` unless `condition` holds."""
    if not condition:
        raise ValueError(what)


def was_moved_aside(store: Store, rel: str) -> bool:
    """Whether a file that is missing was moved aside as damaged (its warning already went out)."""
    folder, _, name = rel.rpartition("/")
    return any(n.startswith(f"{name}{DAMAGED_MARK}") for n in store.list(folder))


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_reason(exc: BaseException) -> str:
    """A load failure in words, never empty (some unpicklers raise with no message)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 100 else text[:99].rstrip() + "…"
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def check_torch_structure(store: Store, rel: str) -> None:
    """Raise Damaged unless `rel` looks like a whole torch.save file: not empty, and a zip archive
    whose directory (at the end of the file) reads back. Reads only the directory, so checking
    every checkpoint at start-up stays cheap on remote stores; damage inside a member is found
    when the file is loaded."""
    try:
        if store.size(rel) == 0:
            raise Damaged("empty file")
        with store.fs.open(store.path(rel), "rb") as handle:
            with zipfile.ZipFile(handle) as archive:
                if not archive.namelist():
                    raise Damaged("not a whole torch file (an empty archive)")
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise Damaged(f"not a whole torch file ({exc or exc.__class__.__name__})") from None
