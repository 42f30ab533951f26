"""A shared model's fence records: which lease may write its next version, decided by the store.

A model's versions and its fence records share one sequence of numbers in the model's folder:

    world_models/<name>/fence-000013.json   {"kind": "claim"|"commit", "token": 9, "node": "cam2", "t": ...}
    world_models/<name>/ckpt-000013.pt      the version that record 13 reserved (absent for a claim)

A record is made with a create-only write (Store.create_bytes: an exclusive link locally, SFTP's
non-overwriting rename, S3's `If-None-Match: *`), so each number is taken once, by one writer. A
holder that takes a lease makes a **claim** record before it reads the model; a commit makes a
**commit** record (or uses its holder's own unused claim) and only then writes the version file
under that very number. A record is made only when the newest record's token is not above the
writer's, and it counts only if, read again just after (and just before the version is written),
no record has a higher number. docs/distributed.md gives the argument; in short, once a claim
with token u is in the folder, no record or version of a token below u can be made after it.

Records are tiny; a commit removes those more than KEEP_RECORDS numbers below its own. The newest
record is never removed (every remover keeps its own and everything above it), which is what
lets a number freed by a removal be refused to a stale writer: its re-check sees the newest.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import attrs

from ptzjepa.storage.store import Store, StoreError

_RECORD = re.compile(r"fence-(\d{6,})\.json")
KEEP_RECORDS = 8
CLAIM, COMMIT = "claim", "commit"


def record_name(number: int) -> str:
    return f"fence-{number:06d}.json"


@attrs.frozen
class Head:
    """The newest fence record of a model: its number, token, kind and node (0/'' when none, or
    when it cannot be read: then only its number counts)."""

    number: int = 0
    token: int = 0
    kind: str = ""
    node: str = ""


class FenceLog:
    """The fence records in one model folder of a store."""

    def __init__(self, store: Store, folder: str) -> None:
        self.store = store
        self.folder = folder

    def numbers(self, names: list[str] | None = None) -> list[int]:
        """The record numbers in the folder (from `names`, a listing already made, when given)."""
        listed = self.store.list(self.folder, ".json") if names is None else names
        return sorted(int(m.group(1)) for n in listed if (m := _RECORD.fullmatch(n)))

    def head(self) -> Head:
        """The newest record, read back; a record that does not read keeps its number only."""
        numbers = self.numbers()
        if not numbers:
            return Head()
        number = numbers[-1]
        try:
            data = json.loads(self.store.read_bytes(f"{self.folder}/{record_name(number)}"))
            return Head(number, int(data["token"]), str(data.get("kind", "")), str(data.get("node", "")))
        except (StoreError, ValueError, TypeError, KeyError):  # damaged, or removed under us: the number stays taken
            return Head(number)

    def create(self, number: int, kind: str, token: int, node: str) -> bool:
        """Make record `number`; False when another writer has that number already."""
        record: dict[str, Any] = {"kind": kind, "token": token, "node": node, "t": time.time()}
        return self.store.create_bytes(f"{self.folder}/{record_name(number)}", json.dumps(record).encode())

    def newer(self, number: int) -> int:
        """The highest record number above `number` in a fresh listing, 0 if there is none."""
        above = [n for n in self.numbers() if n > number]
        return max(above, default=0)

    def prune(self, below: int) -> None:
        """Remove the records more than KEEP_RECORDS numbers below `below` (a writer's own record)."""
        for number in self.numbers():
            if number < below - KEEP_RECORDS:
                self.store.delete(f"{self.folder}/{record_name(number)}")
