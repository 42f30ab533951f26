"""Model checkpoints in the store: written atomically, versioned, and never lost to a crash.

Layout, for a kind (`world_models` or `agents`) and a model name:

    <kind>/<name>/ckpt-000007.pt     torch state (weights, optimiser, schedules) and that version's metadata
    <kind>/<name>/model_info.json    the commit marker: newest good version, its file, metadata

A save writes the new checkpoint file first, then model_info.json, then prunes versions beyond
`keep`. A crash before model_info.json is rewritten leaves the previous version current; a file
that fails to load (a disk error, a torn copy on a remote store) falls back to the one before.
Each file carries its own metadata (epochs done, losses, session), so a fallback returns the
metadata of the weights it actually loaded, not the newest version's from model_info.json.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from ptzjepa.store import Store, StoreError

log = logging.getLogger(__name__)
INFO = "model_info.json"
WORLD_MODELS = "world_models"  # the kinds of model kept, each a folder of the store
AGENTS = "agents"
FORMAT_KEY = "ptzjepa_checkpoint"  # marks a file holding {"state": ..., "meta": ...}
FORMAT = 2


class CheckpointError(RuntimeError):
    """No loadable checkpoint: the message names the model."""


class Checkpoints:
    """The checkpoints of one kind of model in a store."""

    def __init__(self, store: Store, kind: str, keep: int = 2) -> None:
        self.store = store
        self.kind = kind
        self.keep = max(1, keep)

    def names(self) -> list[str]:
        """Models that have at least one committed version."""
        return [n for n in self.store.list_dirs(self.kind) if self.store.exists(f"{self.kind}/{n}/{INFO}")]

    def info(self, name: str) -> dict[str, Any] | None:
        data = self.store.read_json(f"{self.kind}/{name}/{INFO}", default=None)
        return data if isinstance(data, dict) else None

    def save(self, name: str, state: dict[str, Any], meta: dict[str, Any], base_version: int | None = None) -> int:
        """Store a new version; returns its number. `meta` must be plain JSON data.

        `base_version` is the version the new state was trained from. Newer versions than that
        failed to load (the caller fell back past them), so they leave the history and their
        files go, instead of pushing the good versions out of the `keep` window."""
        import torch

        current = self.info(name) or {}
        version = int(current.get("version", 0)) + 1
        file = f"ckpt-{version:06d}.pt"
        own_meta = {**meta, "name": name, "version": version, "file": file}
        buffer = io.BytesIO()
        torch.save({FORMAT_KEY: FORMAT, "state": state, "meta": own_meta}, buffer)
        self.store.write_bytes(f"{self.kind}/{name}/{file}", buffer.getvalue())
        history = [v for v in current.get("versions", []) if isinstance(v, dict)]
        if base_version is not None:
            history = [v for v in history if int(v["version"]) <= base_version]
        history.append({"version": version, "file": file, "saved": time.time()})
        info = {**own_meta, "versions": history[-self.keep:]}
        self.store.write_json(f"{self.kind}/{name}/{INFO}", info)
        self._prune(name, {v["file"] for v in info["versions"]})
        return version

    def load(self, name: str, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest loadable version's state and the metadata saved with that very version
        (plus the store's current `versions` list); CheckpointError if none loads."""
        import torch

        info = self.info(name)
        if info is None:
            raise CheckpointError(f"{self.kind}/{name}: no checkpoint has been saved")
        for entry in reversed(info.get("versions", [])):
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

    def _prune(self, name: str, keep_files: set[str]) -> None:
        for file in self.store.list(f"{self.kind}/{name}", ".pt"):
            if file.startswith("ckpt-") and file not in keep_files:
                self.store.delete(f"{self.kind}/{name}/{file}")
