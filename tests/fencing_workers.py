"""Node-like processes for the fencing tests: they lease shared models through a real Redis and
commit checkpoints to a real shared store, as the world-model stage does, minus the training."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import torch

from ptzjepa.distributed.locks import RedisLocker, fenced
from ptzjepa.storage.checkpoints import Checkpoints, FenceRefused
from ptzjepa.storage.store import Store

KIND = "world_models"


def shared_store(url: str, options: dict | None = None) -> Store:
    """The shared store, opened with the test server's options (S3: its endpoint and (any) keys;
    SFTP: the password and known_hosts), passed here as the fork server's environment predates
    the servers' fixtures."""
    return Store(url, **(options or {}))


def contend(redis_url: str, shared_url: str, node: str, names: list[str], seconds: float, out: str,
            options: dict | None = None) -> None:
    """Lease whichever model is free, claim it, commit two versions under the lease, release;
    repeat for `seconds` from the first reply of the store (an S3 client's start is slow)."""
    locker = RedisLocker(redis_url, node, lease_s=5.0)
    ckpts = Checkpoints(shared_store(shared_url, options), KIND, keep=1000)
    ckpts.versions(names[0])
    rng = random.Random(node)
    commits, refused = [], 0
    until = time.time() + seconds
    while time.time() < until:
        for name in rng.sample(names, len(names)):
            lease = locker.acquire(f"{KIND}/{name}")
            if lease is None:
                continue
            try:
                try:
                    ckpts.claim(name, lease.token, node)  # as the world-model stage does, before reading
                except FenceRefused:
                    refused += 1
                    continue
                for _ in range(2):
                    time.sleep(rng.uniform(0.0, 0.03))
                    if not fenced(lease):
                        break
                    try:
                        version = ckpts.save(name, {"w": torch.tensor([float(lease.token)])}, {"node": node},
                                             fence=lease.token, node=node)
                    except FenceRefused:
                        refused += 1
                        break
                    commits.append({"model": name, "version": version, "token": lease.token, "t": time.time()})
            finally:
                lease.release()
        time.sleep(rng.uniform(0.0, 0.02))
    Path(out).write_text(json.dumps({"node": node, "commits": commits, "refused": refused}))


def paused_holder(redis_url: str, shared_url: str, options: dict, ready: str, out: str) -> None:
    """Lease wm-0, claim it and commit once as the world-model stage does, pass its own fence
    check for the next commit, then stop (SIGSTOP) right there; whatever happens while it is
    stopped, it commits when it is continued."""
    ckpts = Checkpoints(shared_store(shared_url, options), KIND)  # the slow part first, before the lease
    locker = RedisLocker(redis_url, "paused", lease_s=1.0)
    lease = locker.acquire(f"{KIND}/wm-0")
    assert lease is not None
    ckpts.claim("wm-0", lease.token, "paused")
    ckpts.save("wm-0", {"w": torch.full((4,), -1.0)}, {"node": "paused"}, fence=lease.token, node="paused")
    assert fenced(lease)
    Path(ready).write_text(str(lease.token))
    os.kill(os.getpid(), signal.SIGSTOP)
    try:
        version = ckpts.save("wm-0", {"w": torch.full((4,), -2.0)}, {"node": "paused"}, fence=lease.token,
                             node="paused")
        outcome = f"committed version {version}"
    except FenceRefused as exc:
        outcome = f"refused: {exc}"
    lease.release()
    Path(out).write_text(outcome)


def doomed_holder(redis_url: str, shared_url: str, ready: str, lease_s: float) -> None:
    """Hold wm-0 and commit big versions back to back until killed."""
    locker = RedisLocker(redis_url, "doomed", lease_s=lease_s)
    lease = locker.acquire(f"{KIND}/wm-0")
    assert lease is not None
    ckpts = Checkpoints(shared_store(shared_url), KIND, keep=2)
    weights = {"w": torch.randn(1_000_000)}  # 4 MB a version: a write is under way most of the time
    Path(ready).write_text(str(lease.token))
    while True:
        ckpts.save("wm-0", weights, {"node": "doomed"}, fence=lease.token)
