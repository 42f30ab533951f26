"""Model checkpoints in the store: written atomically, versioned, and never lost to a crash.

Layout, for a kind (`world_models` or `agents`) and a model name:

    <kind>/<name>/ckpt-000007.pt     torch state (weights, optimiser, schedules) and that version's metadata
    <kind>/<name>/model_info.json    a pointer to the newest version, with its metadata

A save creates the new version file with a create-only write (the commit, fenced by its lease's
token: see `save`), then points model_info.json at it, then prunes versions beyond `keep`. The
version files are the truth: readers take the newest one, so a crash between the commit and the
pointer loses nothing; a file that fails to load (a disk error, a torn copy on a remote store)
falls back to the one before.
Each file carries its own metadata (epochs done, losses, session, fencing token), so a fallback
returns the metadata of the weights it actually loaded, not the newest version's from model_info.json.

Damage (docs/resilience.md): a damaged or missing model_info.json is rebuilt from the version
files' own metadata; a checkpoint that does not decode is moved aside and the version before it is
loaded; a model none of whose versions loads is moved aside as a whole, so that training starts
afresh. A save numbers its version past every version file in the folder (those moved aside
included) and prunes only versions older than itself, so no checkpoint goes before a newer good
one exists; a number another writer took first is a refusal (FenceRefused), never a renumbering.
"""

from __future__ import annotations

import io
import re
import time
from typing import Any

from ptzjepa.storage.damage import DAMAGED_MARK, Damaged, Warn, is_damaged_name, is_int, load_reason, log_warning, move_aside
from ptzjepa.storage.damage import read_json_checked, require, was_moved_aside
from ptzjepa.storage.fence_log import CLAIM, COMMIT, FenceLog
from ptzjepa.storage.store import Store, StoreError

INFO = "model_info.json"
WORLD_MODELS = "world_models"  # the kinds of model kept, each a folder of the store
AGENTS = "agents"
FORMAT_KEY = "ptzjepa_checkpoint"  # marks a file holding {"state": ..., "meta": ...}
FORMAT = 2


_VERSION_FILE = re.compile(r"ckpt-(\d{6,})\.pt")
_ASIDE_NAME = re.compile(rf"ckpt-(\d{{6,}})\.pt{re.escape(DAMAGED_MARK)}.*")


def _file_name(version: int) -> str:
    return f"ckpt-{version:06d}.pt"


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


class FenceRefused(RuntimeError):
    """The store refused a commit: a newer lease holder has committed (or is committing) this model."""


class Checkpoints:
    """The checkpoints of one kind of model in a store."""

    def __init__(self, store: Store, kind: str, keep: int = 2, warn: Warn = log_warning, repair: bool = True) -> None:
        """`warn` receives one line per damaged file found (the node's events, in a run). Without
        `repair` (`cli.py status`, which only reads) damage is reported but nothing is moved or written."""
        self.store = store
        self.kind = kind
        self.keep = max(1, keep)
        self.warn = warn
        self.repair = repair

    def names(self) -> list[str]:
        """Models that have at least one committed version: a model_info.json, or version files it
        can be rebuilt from. Folders moved aside as damaged are not models."""
        return [n for n in self.store.list_dirs(self.kind)
                if not is_damaged_name(n) and (self.store.exists(f"{self.kind}/{n}/{INFO}") or self.versions(n))]

    def info(self, name: str) -> dict[str, Any] | None:
        """model_info.json; rebuilt from the version files when it is missing or damaged."""
        rel = f"{self.kind}/{name}/{INFO}"
        try:
            data = read_json_checked(self.store, rel, _check_info)
        except Damaged as exc:
            rebuilt = self._rebuild_info(name)
            if self.repair:
                move_aside(self.store, rel, str(exc), _rebuilt_words(rebuilt), self.warn)
            else:
                self.warn(f"damaged file {rel}: {exc} (a run moves it aside and rebuilds it)")
            return self._write_info(name, rebuilt)
        if data is not None:
            return data
        if not self.versions(name):
            return None  # a model never saved: nothing to rebuild
        rebuilt = self._rebuild_info(name)
        self.warn(f"missing file {rel}: {_rebuilt_words(rebuilt)}")
        return self._write_info(name, rebuilt)

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

    def _moved_aside(self, name: str) -> int:
        """The highest version number of a version file moved aside as damaged (0 if none): a save
        numbers past it too, so a move-aside never makes two writers pick different numbers."""
        numbers = [int(m.group(1)) for f in self.store.list(f"{self.kind}/{name}") if (m := _ASIDE_NAME.fullmatch(f))]
        return max(numbers, default=0)

    def _rebuild_info(self, name: str) -> dict[str, Any] | None:
        """model_info.json's content from the version files themselves (the truth): the newest that
        loads gives the metadata, every one that loads is a version; those that do not are moved aside."""
        folder = f"{self.kind}/{name}"
        good: list[tuple[int, str, dict[str, Any]]] = []
        for version in self.versions(name):
            file = _file_name(version)
            try:
                saved = self._decode(self.store.read_bytes(f"{folder}/{file}"))
            except StoreError:
                continue  # pruned or moved aside by another writer meanwhile
            except Damaged as exc:
                if self.repair:
                    move_aside(self.store, f"{folder}/{file}", str(exc),
                               "it is left out of the rebuilt model_info.json", self.warn)
                continue
            meta = saved.get("meta") if isinstance(saved, dict) and saved.get(FORMAT_KEY) == FORMAT else None
            good.append((version, file, meta if isinstance(meta, dict) else {}))
        if not good:
            return None
        version, file, meta = good[-1]
        history = [{"version": v, "file": f, "saved": float(m.get("saved") or self.store.modified(f"{folder}/{f}")),
                    "fence": int(m.get("fence") or 0)} for v, f, m in good]
        return {**meta, "name": name, "version": version, "file": file, "versions": history[-self.keep:]}

    def _write_info(self, name: str, info: dict[str, Any] | None) -> dict[str, Any] | None:
        """Point model_info.json at `info`, only while its version is still the newest file: a slow
        writer never points it back past a newer commit (readers check the files anyway)."""
        if info is not None and self.repair and self.versions(name)[-1:] == [info["version"]]:
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

    def save(self, name: str, state: dict[str, Any], meta: dict[str, Any], base_version: int | None = None,
             fence: int = 0, node: str = "") -> int:
        """Commit a new version; returns its number. `meta` must be plain JSON data.

        With a fencing token (`fence` > 0, a lease's), the commit is decided by the model's fence
        records (ptzjepa.fence_log): the writer takes the next number with a create-only record, or
        uses its own lease's unused claim, only while the newest record's token is not above its
        own, and writes the version file under that number only if no newer record has appeared
        by then. A writer whose lease was granted again to another node (which claimed the model
        before reading it) therefore gets FenceRefused and leaves no version behind, whether the
        newer holder has committed yet or not. Without a token (agents, never shared) the version
        is numbered past every version file and checked against the newest version's token only.

        `base_version` is the version the new state was trained from. Newer versions than that
        failed to load (the caller fell back past them), so they leave the history and their
        files go, instead of pushing the good versions out of the `keep` window."""
        import torch

        folder = f"{self.kind}/{name}"
        current = self.info(name) or {}  # rebuilt first when missing or damaged
        listed = self.versions(name)
        pointed = int(current.get("version") or 0)  # committed, even if its file is gone
        newest = max(listed[-1] if listed else 0, pointed)
        log = FenceLog(self.store, folder)
        if fence:
            version = self._reserve(name, log, fence, node, COMMIT, newest)
        else:
            newest_fence = self._fence_of(name, newest) if newest else 0
            if fence < newest_fence:
                raise FenceRefused(f"{folder}: version {newest} was committed under fencing token {newest_fence}, "
                                   f"newer than this writer's {fence}")
            version = max(newest, self._moved_aside(name), log.head().number) + 1
        file = _file_name(version)
        own_meta = {**meta, "name": name, "version": version, "file": file, "fence": fence, "saved": time.time()}
        buffer = io.BytesIO()
        torch.save({FORMAT_KEY: FORMAT, "state": state, "meta": own_meta}, buffer)
        if fence and (newer := log.newer(version)):  # checked again after the (slow) serialisation
            raise FenceRefused(f"{folder}: fence record {newer} was made after this writer's {version} "
                               f"(a newer lease claimed the model); token {fence} may not commit")
        if not self.store.create_bytes(f"{folder}/{file}", buffer.getvalue()):
            raise FenceRefused(f"{folder}: version {version} was committed by another writer first")
        known = {int(v["version"]): v for v in current.get("versions", [])}
        history = [known.get(v, {"version": v, "file": _file_name(v), "saved": 0.0}) for v in listed]
        if base_version is not None:
            history = [v for v in history if int(v["version"]) <= base_version]
        history.append({"version": version, "file": file, "saved": own_meta["saved"], "fence": fence})
        info = {**own_meta, "versions": history[-self.keep:]}
        self._write_info(name, info)
        self._prune(name, {v["file"] for v in info["versions"]}, version)
        if fence:
            log.prune(version)
        return version

    def claim(self, name: str, fence: int, node: str = "") -> int:
        """Record in the model's folder that the lease with token `fence` now holds it, before it is
        read: from then on the store refuses every commit of an older token. Returns the claim's
        number; FenceRefused when a newer token has claimed or committed the model already."""
        folder = f"{self.kind}/{name}"
        current = self.info(name) or {}
        listed = self.versions(name)
        newest = max(listed[-1] if listed else 0, int(current.get("version") or 0))
        return self._reserve(name, FenceLog(self.store, folder), fence, node, CLAIM, newest)

    def newest_token(self, name: str) -> int:
        """The highest fencing token the model's folder knows: its newest record's or its newest
        version's (a grant must be above it, docs/distributed.md)."""
        head = FenceLog(self.store, f"{self.kind}/{name}").head()
        return max(head.token, int((self.current(name) or {}).get("fence") or 0))

    def _reserve(self, name: str, log: FenceLog, fence: int, node: str, kind: str, newest: int) -> int:
        """The number this writer may use: its own lease's unused claim, or the next one, taken with
        a create-only record; FenceRefused when a newer token is there or the number was taken. A
        claim that loses the race for a number tries the next (the old holder's last commit may have
        taken it), as long as no newer token shows."""
        folder = f"{self.kind}/{name}"
        for _attempt in range(8):
            head = log.head()
            if head.number > newest:
                top, what = head.token, f"{head.kind or 'fence record'} {head.number} was made"
            elif head.number == newest:
                top, what = head.token, f"version {newest} was committed"
            else:  # a version from before fence records (or an unfenced one) is the newest
                top, what = max(head.token, self._fence_of(name, newest)), f"version {newest} was committed"
            if fence < top:
                raise FenceRefused(f"{folder}: {what} under fencing token {top}, newer than this writer's {fence}")
            aside = self._moved_aside(name)
            if head.token == fence and head.number > max(newest, aside):
                return head.number  # this lease's own claim, no version written under it yet
            number = max(head.number, newest, aside) + 1
            if log.create(number, kind, fence, node):
                if newer := log.newer(number):
                    raise FenceRefused(f"{folder}: fence record {newer} was made after this writer's {number} "
                                       f"(a newer lease claimed the model); token {fence} may not {kind}")
                return number
            if kind == COMMIT:
                raise FenceRefused(f"{folder}: version {number} was claimed or committed by another writer first")
        raise FenceRefused(f"{folder}: could not take a fence record after 8 tries (too many writers racing)")

    def _fence_of(self, name: str, version: int) -> int:
        """The fencing token version `version` was committed under: from model_info.json when it
        points there, else from the version file's own metadata (0 if it cannot be read)."""
        info = self.info(name)
        if info is not None and info.get("version") == version:
            return int(info.get("fence") or 0)
        meta = self._meta_of(name, version)
        return int((meta or {}).get("fence") or 0)

    def _meta_of(self, name: str, version: int) -> dict[str, Any] | None:
        path = f"{self.kind}/{name}/{_file_name(version)}"
        try:
            saved = self._decode(self.store.read_bytes(path))
        except (StoreError, Damaged) as exc:  # a torn or vanished file has no metadata to offer
            self.warn(f"checkpoint {path} has no readable metadata ({exc})")
            return None
        if isinstance(saved, dict) and saved.get(FORMAT_KEY) == FORMAT:
            return dict(saved["meta"])
        return None

    def load(self, name: str, map_location: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest loadable version's state and the metadata saved with that very version
        (plus the store's current `versions` list); CheckpointError if none loads, after moving
        such a model aside so that the caller starts it afresh."""
        info = self.info(name)
        listed = self.versions(name)
        if info is None and not listed:
            raise CheckpointError(f"{self.kind}/{name}: no checkpoint has been saved")
        info = info or {}
        folder = f"{self.kind}/{name}"
        # The version files are the truth: a commit whose pointer was never written still counts.
        known = {int(e["version"]): e for e in info.get("versions", []) if isinstance(e, dict)}
        entries = [known.get(v, {"version": v, "file": _file_name(v)}) for v in sorted(set(listed) | set(known))]
        for entry in reversed(entries):
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

    def _prune(self, name: str, keep_files: set[str], newest: int) -> None:
        """Remove versions outside the keep window that are older than this writer's own (a good
        one that supersedes them); never a newer writer's commit, which its own prune looks after."""
        for version in self.versions(name):
            file = _file_name(version)
            if file not in keep_files and version < newest:
                self.store.delete(f"{self.kind}/{name}/{file}")


def _rebuilt_words(info: dict[str, Any] | None) -> str:
    if info is None:
        return "no checkpoint of the model loads, so it starts afresh"
    return f"rebuilt from the checkpoint files (current version {info['version']}, {len(info['versions'])} kept)"
