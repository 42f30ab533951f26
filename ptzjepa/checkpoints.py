"""Model checkpoints in the store: written atomically, versioned, and never lost to a crash.

Layout, for a kind (`world_models` or `agents`) and a model name:

    <kind>/<name>/ckpt-000007.pt     torch state (weights, optimiser, schedules) and that version's metadata
    <kind>/<name>/model_info.json    a pointer to the newest version, with its metadata

A save creates the new version file with a create-only write (the commit, fenced by its lease's
token: see `save`), then points model_info.json at it, then prunes versions beyond `keep`. The
version files are the truth: readers take the newest one, so a crash between the commit and the
pointer loses nothing; a file that fails to load (a disk error, a torn copy on a remote store)
falls back to the one before.
Each file carries its own metadata (epochs done, losses, session), so a fallback returns the
metadata of the weights it actually loaded, not the newest version's from model_info.json.
"""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any

from ptzjepa.store import Store, StoreError

log = logging.getLogger(__name__)
INFO = "model_info.json"
WORLD_MODELS = "world_models"  # the kinds of model kept, each a folder of the store
AGENTS = "agents"
FORMAT_KEY = "ptzjepa_checkpoint"  # marks a file holding {"state": ..., "meta": ...}
FORMAT = 2


_VERSION_FILE = re.compile(r"ckpt-(\d{6,})\.pt")


def _file_name(version: int) -> str:
    return f"ckpt-{version:06d}.pt"


class CheckpointError(RuntimeError):
    """No loadable checkpoint: the message names the model."""


class FenceRefused(RuntimeError):
    """The store refused a commit: a newer lease holder has committed (or is committing) this model."""


class Checkpoints:
    """The checkpoints of one kind of model in a store."""

    def __init__(self, store: Store, kind: str, keep: int = 2) -> None:
        self.store = store
        self.kind = kind
        self.keep = max(1, keep)

    def names(self) -> list[str]:
        """Models that have at least one committed version."""
        return [n for n in self.store.list_dirs(self.kind)
                if self.store.exists(f"{self.kind}/{n}/{INFO}") or self.versions(n)]

    def info(self, name: str) -> dict[str, Any] | None:
        data = self.store.read_json(f"{self.kind}/{name}/{INFO}", default=None)
        return data if isinstance(data, dict) else None

    def current(self, name: str) -> dict[str, Any] | None:
        """The newest committed version's metadata: model_info.json when it points at the newest
        version file, else that file's own (a writer died between its commit and the pointer)."""
        info = self.info(name)
        listed = self.versions(name)
        if not listed or (info is not None and info.get("version") == listed[-1]):
            return info
        meta = self._meta_of(name, listed[-1])
        return {**meta, "versions": (info or {}).get("versions", [])} if meta is not None else info

    def versions(self, name: str) -> list[int]:
        """The committed version numbers of a model, oldest first, from its files (the truth;
        model_info.json only caches the newest)."""
        found = []
        for file in self.store.list(f"{self.kind}/{name}", ".pt"):
            match = _VERSION_FILE.fullmatch(file)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def save(self, name: str, state: dict[str, Any], meta: dict[str, Any], base_version: int | None = None,
             fence: int = 0) -> int:
        """Commit a new version; returns its number. `meta` must be plain JSON data.

        The commit is fenced by the store: the new version file is created only if no file has
        its number yet (Store.create_bytes), one past the newest committed, and only if that
        newest's fencing token is not above `fence`. A writer that lost its lease and was paused
        past a newer holder's commit therefore gets FenceRefused and leaves no file behind.

        `base_version` is the version the new state was trained from. Newer versions than that
        failed to load (the caller fell back past them), so they leave the history and their
        files go, instead of pushing the good versions out of the `keep` window."""
        import torch

        folder = f"{self.kind}/{name}"
        listed = self.versions(name)
        pointed = int((self.info(name) or {}).get("version") or 0)  # committed, even if its file is gone
        newest = max(listed[-1] if listed else 0, pointed)
        newest_fence = self._fence_of(name, newest) if newest else 0
        if fence < newest_fence:
            raise FenceRefused(f"{folder}: version {newest} was committed under fencing token {newest_fence}, "
                               f"newer than this writer's {fence}")
        version = newest + 1
        file = _file_name(version)
        own_meta = {**meta, "name": name, "version": version, "file": file, "fence": fence}
        buffer = io.BytesIO()
        torch.save({FORMAT_KEY: FORMAT, "state": state, "meta": own_meta}, buffer)
        if not self.store.create_bytes(f"{folder}/{file}", buffer.getvalue()):
            raise FenceRefused(f"{folder}: version {version} was committed by another writer first")
        current = self.info(name) or {}
        known = {int(v["version"]): v for v in current.get("versions", []) if isinstance(v, dict) and "version" in v}
        history = [known.get(v, {"version": v, "file": _file_name(v), "saved": 0.0}) for v in listed]
        if base_version is not None:
            history = [v for v in history if int(v["version"]) <= base_version]
        history.append({"version": version, "file": file, "saved": time.time(), "fence": fence})
        info = {**own_meta, "versions": history[-self.keep:]}
        # model_info.json is a pointer: write it only while this version is still the newest, so
        # a slow writer never points it back past a newer commit (readers check it anyway).
        if self.versions(name)[-1:] == [version]:
            self.store.write_json(f"{folder}/{INFO}", info)
        self._prune(name, {v["file"] for v in info["versions"]}, version)
        return version

    def _fence_of(self, name: str, version: int) -> int:
        """The fencing token version `version` was committed under: from model_info.json when it
        points there, else from the version file's own metadata (0 if it cannot be read)."""
        info = self.info(name)
        if info is not None and info.get("version") == version:
            return int(info.get("fence") or 0)
        meta = self._meta_of(name, version)
        return int((meta or {}).get("fence") or 0)

    def _meta_of(self, name: str, version: int) -> dict[str, Any] | None:
        import torch

        try:
            raw = self.store.read_bytes(f"{self.kind}/{name}/{_file_name(version)}")
            saved = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        except Exception as exc:  # a torn or vanished file has no metadata to offer
            log.warning("checkpoint %s/%s version %d has no readable metadata (%s)", self.kind, name, version, exc)
            return None
        if isinstance(saved, dict) and saved.get(FORMAT_KEY) == FORMAT:
            return dict(saved["meta"])
        return None

    def load(self, name: str, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest loadable version's state and the metadata saved with that very version
        (plus the store's current `versions` list); CheckpointError if none loads."""
        import torch

        info = self.info(name)
        listed = self.versions(name)
        if info is None and not listed:
            raise CheckpointError(f"{self.kind}/{name}: no checkpoint has been saved")
        info = info or {}
        # The version files are the truth: a commit whose pointer was never written still counts.
        known = {int(e["version"]): e for e in info.get("versions", []) if isinstance(e, dict)}
        entries = [known.get(v, {"version": v, "file": _file_name(v)}) for v in sorted(set(listed) | set(known))]
        for entry in reversed(entries):
            path = f"{self.kind}/{name}/{entry['file']}"
            # Only a missing or undecodable file counts as broken: any other I/O error (a remote
            # store's timeout) propagates, as the version may be fine and a save after a fallback
            # drops the versions it fell past.
            try:
                raw = self.store.read_bytes(path)
            except StoreError as exc:
                log.warning("checkpoint %s does not load (%s); trying the one before", path, exc)
                continue
            try:
                saved = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
            except Exception as exc:  # a torn or garbled file raises whatever the unpickler meets
                log.warning("checkpoint %s does not load (%s); trying the one before", path, exc)
                continue
            if isinstance(saved, dict) and saved.get(FORMAT_KEY) == FORMAT:
                return saved["state"], {**saved["meta"], "versions": info.get("versions", [])}
            if entry["version"] != info.get("version"):
                # written before files carried their metadata: only the newest's is known
                log.warning("checkpoint %s has no metadata of its own; using the newest version's", path)
            return saved, {**info, "version": entry["version"], "file": entry["file"]}
        raise CheckpointError(f"{self.kind}/{name}: no version of it loads")

    def _prune(self, name: str, keep_files: set[str], newest: int) -> None:
        """Remove versions outside the keep window, never one newer than this writer's own (a
        newer writer's commit, which its own prune looks after)."""
        for file in self.store.list(f"{self.kind}/{name}", ".pt"):
            match = _VERSION_FILE.fullmatch(file)
            if match and file not in keep_files and int(match.group(1)) < newest:
                self.store.delete(f"{self.kind}/{name}/{file}")
