"""Damaging stored files and running the node on them in this process: the shared parts of the
damage tests. One pristine store is made once and copied per case, so that a case costs one
cycle of the tiny profile, not a whole training from nothing."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from ptzjepa.config.loading import load_config
from ptzjepa.run import app

NODE = "sweep"
# Two epochs of each model, so that each has two checkpoint versions (keep_checkpoints is 2): the
# world model saves after every epoch here (checkpoint_every_s 0), not only at the stage's end.
SETTINGS = ("run.threads=1", f"run.node={NODE}", "world_model.epochs=2", "world_model.checkpoint_every_s=0",
            "agent.epochs=2",
            "capture.iterations=1", "navigate.iterations=1")
DAMAGES = ("garbage", "empty", "truncated")


def run_node(data: Path, cycles: int, *sets: str, machine: str = "lifelong") -> int:
    """`cli.py run --sim --profile tiny --no-view` in this process; returns its exit code. The
    run replaces the logging handlers and sets torch's threads, so both are put back after it."""
    root = logging.getLogger()
    handlers, level, threads = list(root.handlers), root.level, torch.get_num_threads()
    config = load_config("tiny", [*SETTINGS, f"storage.data={data}", *sets])
    try:
        return app.run(config, machine, cycles=cycles, view=False, debug=False)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        torch.set_num_threads(threads)


def pristine_store(tmp_path_factory) -> Path:
    """A lifelong run of one cycle, made once per test session and only copied from."""
    data = tmp_path_factory.getbasetemp() / "damage-pristine" / "store"
    if not (data / "state" / "machine.json").exists():
        assert run_node(data, cycles=1) == 0
    return data


def copy_store(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".run.lock", ".locks"))
    return dest


def damage(path: Path, how: str) -> None:
    """Garbage (same length, other bytes), empty, or cut to half its length."""
    data = path.read_bytes()
    if how == "garbage":
        path.write_bytes(bytes((b * 7 + 13) % 251 for b in data[:64]) * max(1, len(data) // 64))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "missing":
        path.unlink()
    else:
        raise ValueError(how)


def loadable(path: Path) -> bool:
    try:
        torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    except Exception:
        return False
    return True


def good_checkpoints(data: Path) -> dict[str, dict[int, bytes]]:
    """Every checkpoint file that loads, per model folder: {"world_models/wm-0": {version: bytes}}."""
    found: dict[str, dict[int, bytes]] = {}
    for kind in ("world_models", "agents"):
        for folder in sorted((data / kind).glob("*")):
            if not folder.is_dir() or ".damaged-" in folder.name:
                continue
            found[f"{kind}/{folder.name}"] = {
                int(f.stem.split("-")[1]): f.read_bytes() for f in folder.glob("ckpt-*.pt") if loadable(f)
            }
    return found


def assert_no_good_checkpoint_lost(before: dict[str, dict[int, bytes]], data: Path) -> None:
    """Each checkpoint that loaded before is still there unchanged, or a newer version that loads
    supersedes it (pruning), and the newest version never goes back (no restart from scratch)."""
    after = good_checkpoints(data)
    for model, versions in before.items():
        now = after.get(model, {})
        for version, raw in versions.items():
            kept = (data / model / f"ckpt-{version:06d}.pt")
            assert (kept.exists() and kept.read_bytes() == raw) or any(v > version for v in now), (
                f"{model} v{version} was good and is gone without a newer good version: {sorted(now)}")
        if versions:
            assert now and max(now) >= max(versions), f"{model} went back: {sorted(versions)} -> {sorted(now)}"


def meta_of(path: Path) -> dict[str, Any]:
    return torch.load(io.BytesIO(path.read_bytes()), weights_only=True)["meta"]
