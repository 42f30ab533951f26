"""Limits on what is kept: edge disks are small, and a lifelong node never stops taking frames.

`storage.keep_images: false` keeps only the newest collecting round (the frames of the latest
capture or navigate run): once a new round is stored the older ones go, so the next cycle's world model trains on the
frames the agent just collected and dream starts from them. `storage.max_frames` keeps the newest N
frames. `storage.max_bytes` keeps the store under a byte budget by removing the oldest frames, as
far as that can meet it: when the rest of the store (checkpoints, dreams, tracked positions) alone
is over the budget no frame is removed for it, and a warning says so. No limit ever leaves fewer
than MIN_FRAMES frames, the least a world model trains on, so a limit never starves the loop.

Removing a frame removes its JPEG. With `storage.track_positions` (or `track_all`) its position
record and command stay as a tracked position, with `storage.track_all` its embedding too (see
FrameStore.drop_image); without, the whole frame goes. Frame ids sort oldest first (cycle, stage,
step), so "oldest" is a plain sort, and a round is the frames of one (cycle, stage): within a cycle
the machines capture before they navigate, and the cycle moves on after navigate.
"""

from __future__ import annotations

from collections import defaultdict

from ptzjepa.config.settings import StorageConfig
from ptzjepa.node.context import Node
from ptzjepa.storage.embeddings import embedding_path
from ptzjepa.storage.frames import COMMANDS, IMAGES, POSITIONS, FrameStore

MIN_FRAMES = 2
"""The fewest frames any limit leaves: ptzjepa.stages.world_model.MIN_FRAMES (not imported here,
so that applying limits never loads torch; a test keeps the two equal)."""


def enforce(node: Node) -> dict[str, int]:
    """Apply the storage limits; returns what was removed and what is left."""
    cfg = node.config.storage
    frames: FrameStore = node.frames
    ids = frames.ids()
    doomed: list[str] = _older_rounds(ids) if not cfg.keep_images else []
    kept = ids[len(doomed) :]  # older rounds are a prefix of the sorted ids
    if cfg.max_frames:
        limit = max(cfg.max_frames, MIN_FRAMES)
        if len(kept) > limit:
            doomed += kept[: len(kept) - limit]
            kept = kept[len(kept) - limit :]
    for fid in doomed:
        _remove(frames, fid, cfg)
    sizes = dict(node.store.walk_sizes())  # one listing of the store for the view's disk use and the budget
    used = sum(sizes.values())
    removed_for_bytes = 0
    if cfg.max_bytes and used > cfg.max_bytes:
        removed_for_bytes, used = _meet_budget(node, kept, sizes, used)
        kept = kept[removed_for_bytes:]
    node.events.emit("disk", bytes=used, frames=len(kept))
    return {"removed": len(doomed) + removed_for_bytes, "frames": len(kept), "bytes": used}


def _older_rounds(ids: list[str]) -> list[str]:
    """The frames of every round but the newest, oldest first; rounds before the newest are kept
    as well while the newest alone holds fewer than MIN_FRAMES (a round cut short by the camera)."""
    rounds: dict[str, list[str]] = defaultdict(list)
    for fid in ids:
        rounds[fid.rsplit("_", 1)[0]].append(fid)
    kept = 0
    for key in reversed(list(rounds)):
        kept += len(rounds[key])
        if kept >= MIN_FRAMES:
            return ids[: len(ids) - kept]
    return []


def _meet_budget(node: Node, kept: list[str], sizes: dict[str, int], used: int) -> tuple[int, int]:
    """Remove the oldest frames until the store fits storage.max_bytes, never below MIN_FRAMES;
    none when the rest of the store alone is over the budget, since removing frames cannot meet it
    then. Returns how many were removed (the oldest of `kept`) and the bytes now used."""
    cfg = node.config.storage
    removable = {fid: _removed_files(fid, cfg) for fid in kept}
    freed = {fid: sum(sizes.get(name, 0) for name in names) for fid, names in removable.items()}
    other = used - sum(freed.values())
    removed = 0
    if other <= cfg.max_bytes:
        for fid in kept[: max(len(kept) - MIN_FRAMES, 0)]:
            if used <= cfg.max_bytes:
                break
            _remove(node.frames, fid, cfg)
            used -= freed[fid]
            removed += 1
    if used > cfg.max_bytes:
        frame_files = {name for names in removable.values() for name in names}
        folders: dict[str, int] = defaultdict(int)
        for name, size in sizes.items():
            if name not in frame_files:
                folders[name.split("/", 1)[0]] += size
        biggest = ", ".join(f"{f} {_human(b)}" for f, b in sorted(folders.items(), key=lambda i: -i[1])[:4])
        node.events.emit("warning", message=(
            f"storage.max_bytes={cfg.max_bytes} cannot be met by removing frames: {used} bytes stored, "
            f"{other} ({_human(other)}) of them not frames it may remove ({biggest}); "
            f"{len(kept) - removed} frames kept, never fewer than {MIN_FRAMES}"))
    return removed, used


def _human(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _remove(frames: FrameStore, fid: str, cfg: StorageConfig) -> None:
    if cfg.track_positions or cfg.track_all:
        frames.drop_image(fid, keep_embedding=cfg.track_all)
    else:
        frames.delete(fid)


def _removed_files(fid: str, cfg: StorageConfig) -> list[str]:
    """The store-relative files that _remove deletes for a frame."""
    if not (cfg.track_positions or cfg.track_all):
        return _all_files(fid)
    return [f"{IMAGES}/{fid}.jpg"] + ([] if cfg.track_all else [embedding_path(fid)])


def _all_files(fid: str) -> list[str]:
    return [f"{IMAGES}/{fid}.jpg", f"{POSITIONS}/{fid}.json", f"{COMMANDS}/{fid}.json", embedding_path(fid)]
