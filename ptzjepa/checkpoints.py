"""Model checkpoints in the store: written atomically, versioned, and never lost to a crash.

Layout, for a kind (`world_models` or `agents`) and a model name:

    <kind>/<name>/ckpt-000007.pt     torch state (weights, optimiser, schedules) and that version's metadata
    <kind>/<name>/model_info.json    the commit marker: newest good version, its file, metadata

A save writes the new checkpoint file first, then model_info.json, then prunes versions beyond
`keep`. A crash before model_info.json is rewritten leaves the previous version current; a file
that fails to load (a disk error, a torn copy on a remote store) falls back to the one before.
Each file carries its own metadata (epochs done, losses, session), so a fallback returns the
metadata of the weights it actually loaded, not the newest version's from model_info.json.

Damage (docs/resilience.md): a damaged or missing model_info.json is rebuilt from the checkpoint
files, whose metadata is authoritative; a checkpoint that does not decode is moved aside and the
version before it is loaded; a model none of whose versions loads is moved aside as a whole, so
that training starts afresh. A save numbers its version past every file in the folder and prunes
only versions older than itself, so no checkpoint goes before a newer good one exists.
"""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any

from ptzjepa.damage import Damaged, Warn, is_damaged_name, is_int, load_reason, log_warning, move_aside
from ptzjepa.damage import read_json_checked, require, was_moved_aside
from ptzjepa.store import Store, StoreError

log = logging.getLogger(__name__)
INFO = "model_info.json"
WORLD_MODELS = "world_models"  # the kinds of model kept, each a folder of the store
AGENTS = "agents"
FORMAT_KEY = "ptzjepa_checkpoint"  # marks a file holding {"state": ..., "meta": ...}
FORMAT = 2
_FILE = re.compile(r"^ckpt-(\d+)\.pt$")


def _version_of(file: str) -> int:
    """The version a checkpoint file name holds; 0 for any other name."""
    match = _FILE.match(file)
    return int(match[1]) if match else 0


def _check_info(data: Any) -> None:
    require(isinstance(data, dict), "not an object")
    require(is_int(data.get("version")) and isinstance(data.get("file"), str), "no version and file")
    versions = data.get("versions")
    require(isinstance(versions, list), "no list of versions")
    for entry in versions:
        require(isinstance(entry, dict) and is_int(entry.get("version")) and isinstance(entry.get("file"), str),
                f"a version entry is not a version: {entry!r}")


class CheckpointError(RuntimeError):
    """No loadable checkpoint: the message names the model."""


class Checkpoints:
    """The checkpoints of one kind of model in a store."""

    def __init__(self, store: Store, kind: str, keep: int = 2, warn: Warn = log_warning) -> None:
        """`warn` receives one line per damaged file found (the node's events, in a run)."""
        self.store = store
        self.kind = kind
        self.keep = max(1, keep)
        self.warn = warn

    def names(self) -> list[str]:
        """Models that have at least one version: a model_info.json, or checkpoint files it can
        be rebuilt from. Folders moved aside as damaged are not models."""
        found = []
        for name in self.store.list_dirs(self.kind):
            if is_damaged_name(name):
                continue
            folder = f"{self.kind}/{name}"
            if self.store.exists(f"{folder}/{INFO}") or self._files(name):
                found.append(name)
        return found

    def info(self, name: str) -> dict[str, Any] | None:
        """model_info.json; rebuilt from the checkpoint files when it is missing or damaged."""
        rel = f"{self.kind}/{name}/{INFO}"
        try:
            data = read_json_checked(self.store, rel, _check_info)
        except Damaged as exc:
            rebuilt = self._rebuild_info(name)
            move_aside(self.store, rel, str(exc), _rebuilt_words(rebuilt), self.warn)
            return self._write_info(name, rebuilt)
        if data is not None:
            return data
        if not self._files(name):
            return None  # a model never saved: nothing to rebuild
        rebuilt = self._rebuild_info(name)
        self.warn(f"missing file {rel}: {_rebuilt_words(rebuilt)}")
        return self._write_info(name, rebuilt)

    def _files(self, name: str) -> list[tuple[int, str]]:
        """(version, file) of the checkpoint files in a model's folder, oldest first."""
        files = self.store.list(f"{self.kind}/{name}", ".pt")
        return sorted((v, f) for f in files if (v := _version_of(f)))

    def _rebuild_info(self, name: str) -> dict[str, Any] | None:
        """model_info.json's content from the checkpoint files themselves: the newest that loads
        gives the metadata, every one that loads is a version; those that do not are moved aside."""
        folder = f"{self.kind}/{name}"
        good: list[tuple[int, str, dict[str, Any]]] = []
        for version, file in self._files(name):
            try:
                saved = self._decode(self.store.read_bytes(f"{folder}/{file}"))
            except Damaged as exc:
                move_aside(self.store, f"{folder}/{file}", str(exc), "it is left out of the rebuilt model_info.json",
                           self.warn)
                continue
            meta = saved.get("meta") if isinstance(saved, dict) and saved.get(FORMAT_KEY) == FORMAT else None
            good.append((version, file, meta if isinstance(meta, dict) else {}))
        if not good:
            return None
        version, file, meta = good[-1]
        history = [{"version": v, "file": f, "saved": float(m.get("saved") or self.store.modified(f"{folder}/{f}"))}
                   for v, f, m in good]
        return {**meta, "name": name, "version": version, "file": file, "versions": history[-self.keep:]}

    def _write_info(self, name: str, info: dict[str, Any] | None) -> dict[str, Any] | None:
        if info is not None:
            self.store.write_json(f"{self.kind}/{name}/{INFO}", info)
        return info

    @staticmethod
    def _decode(raw: bytes, map_location: Any = "cpu") -> Any:
        """A checkpoint file's content; Damaged, with a reason that is never empty, if it does not load."""
        import torch

        if not raw:
            raise Damaged("empty file")
        try:
            return torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
        except Exception as exc:  # a torn or garbled file raises whatever the unpickler meets
            raise Damaged(f"does not load ({load_reason(exc)})") from None

    def forget_version(self, name: str, file: str) -> None:
        """Drop a version that was moved aside from model_info.json's history (not the current
        one: loading falls back past that and the next save rewrites the history)."""
        info = self.info(name)
        if info is None or info.get("file") == file:
            return
        kept = [v for v in info["versions"] if v["file"] != file]
        if len(kept) != len(info["versions"]):
            self._write_info(name, {**info, "versions": kept})

    def save(self, name: str, state: dict[str, Any], meta: dict[str, Any], base_version: int | None = None) -> int:
        """Store a new version; returns its number. `meta` must be plain JSON data.

        `base_version` is the version the new state was trained from. Newer versions than that
        failed to load (the caller fell back past them), so they leave the history and their
        files go, instead of pushing the good versions out of the `keep` window."""
        import torch

        current = self.info(name) or {}
        # past every file in the folder: a version number is never reused, and pruning (which
        # keeps everything newer than the saved version) never reaches a file nothing supersedes
        version = max([int(current.get("version", 0))] + [v for v, _ in self._files(name)]) + 1
        file = f"ckpt-{version:06d}.pt"
        own_meta = {**meta, "name": name, "version": version, "file": file, "saved": time.time()}
        buffer = io.BytesIO()
        torch.save({FORMAT_KEY: FORMAT, "state": state, "meta": own_meta}, buffer)
        self.store.write_bytes(f"{self.kind}/{name}/{file}", buffer.getvalue())
        history = list(current.get("versions", []))
        if base_version is not None:
            history = [v for v in history if int(v["version"]) <= base_version]
        history.append({"version": version, "file": file, "saved": own_meta["saved"]})
        info = {**own_meta, "versions": history[-self.keep:]}
        self.store.write_json(f"{self.kind}/{name}/{INFO}", info)
        self._prune(name, {v["file"] for v in info["versions"]}, version)
        return version

    def load(self, name: str, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest loadable version's state and the metadata saved with that very version
        (plus the store's current `versions` list); CheckpointError if none loads, after moving
        such a model aside so that the caller starts it afresh."""
        info = self.info(name)
        if info is None:
            raise CheckpointError(f"{self.kind}/{name}: no checkpoint has been saved")
        folder = f"{self.kind}/{name}"
        for entry in reversed(info.get("versions", [])):
            path = f"{folder}/{entry['file']}"
            # Only a missing or undecodable file counts as broken: any other I/O error (a remote
            # store's timeout) propagates, as the version may be fine and a save after a fallback
            # drops the versions it fell past.
            try:
                raw = self.store.read_bytes(path)
            except StoreError as exc:
                if not was_moved_aside(self.store, path):  # else its warning went out when it was
                    self.warn(f"checkpoint {path} does not load ({exc}); trying the one before")
                continue
            try:
                saved = self._decode(raw, map_location)
            except Damaged as exc:
                move_aside(self.store, path, str(exc), "trying the version before", self.warn)
                continue
            if isinstance(saved, dict) and saved.get(FORMAT_KEY) == FORMAT:
                return saved["state"], {**saved["meta"], "versions": info.get("versions", [])}
            if entry["version"] != info.get("version"):
                # written before files carried their metadata: only the newest's is known
                self.warn(f"checkpoint {path} has no metadata of its own; using the newest version's")
            return saved, {**info, "version": entry["version"], "file": entry["file"]}
        move_aside(self.store, folder, "no version of it loads", "the model starts afresh", self.warn)
        raise CheckpointError(f"{folder}: no version of it loads")

    def _prune(self, name: str, keep_files: set[str], saved_version: int) -> None:
        """Delete the versions that left the history and are older than the one just saved (a
        good one that supersedes them); never a newer file."""
        for version, file in self._files(name):
            if version < saved_version and file not in keep_files:
                self.store.delete(f"{self.kind}/{name}/{file}")


def _rebuilt_words(info: dict[str, Any] | None) -> str:
    if info is None:
        return "no checkpoint of the model loads, so it starts afresh"
    return f"rebuilt from the checkpoint files (current version {info['version']}, {len(info['versions'])} kept)"
