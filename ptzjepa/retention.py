"""Limits on what is kept: edge disks are small, and the original kept every image forever.

`storage.max_frames` keeps the newest N frames; `storage.max_bytes` keeps the store under a byte
budget by removing the oldest frames (checkpoints are already capped by `storage.keep_checkpoints`).
`storage.keep_images: false` keeps only the current cycle's frames, as the original's navigation
did without `-ki`. Frame ids sort oldest first (cycle, stage, step), so "oldest" is a plain sort.
"""

from __future__ import annotations

from ptzjepa.frames import FrameStore
from ptzjepa.node import Node


def enforce(node: Node) -> dict[str, int]:
    """Apply the storage limits; returns what was removed and what is left."""
    cfg = node.config.storage
    frames: FrameStore = node.frames
    ids = frames.ids()
    doomed: list[str] = []
    if not cfg.keep_images:
        current = f"c{node.cycle:05d}_"
        doomed += [fid for fid in ids if not fid.startswith(current)]
    kept = [fid for fid in ids if fid not in set(doomed)]
    if cfg.max_frames and len(kept) > cfg.max_frames:
        doomed += kept[: len(kept) - cfg.max_frames]
        kept = kept[len(kept) - cfg.max_frames :]
    for fid in doomed:
        frames.delete(fid)
    used = node.store.disk_usage()
    removed_for_bytes = 0
    if cfg.max_bytes and used > cfg.max_bytes:
        sizes = dict(node.store.walk_sizes())
        for fid in list(kept[:-1]):  # never the newest frame
            if used <= cfg.max_bytes:
                break
            freed = sum(sizes.get(f"{folder}/{fid}{ext}", 0) for folder, ext in _FILES)
            frames.delete(fid)
            kept.remove(fid)
            used -= freed
            removed_for_bytes += 1
    node.events.emit("disk", bytes=used, frames=len(kept))
    return {"removed": len(doomed) + removed_for_bytes, "frames": len(kept), "bytes": used}


_FILES = (
    ("collected_imgs", ".jpg"),
    ("collected_positions", ".json"),
    ("collected_commands", ".json"),
    ("collected_embeds", ".pt"),
)
