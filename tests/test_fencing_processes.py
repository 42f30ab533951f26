"""Fencing with real processes, a real redis-server and real shared stores: nodes contending for
two models never hold one at the same time, a holder paused past its lease has its commit refused
by the store, and a holder killed mid-write leaves no partial file and frees the model in time."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import redis
import torch

from ptzjepa.distributed.locks import RedisLocker
from ptzjepa.storage.checkpoints import Checkpoints, StoreError
from ptzjepa.storage.store import Store
from tests import fencing_workers as workers
from tests.redis_server import redis_server
from tests.s3_server import BUCKET, s3_server
from tests.sftp_server import USER as SFTP_USER
from tests.sftp_server import sftp_server

KIND = workers.KIND
SFTP_PASSWORD = "sftp-fencing-password"
# Children come from a fork server that has imported torch once (seconds saved per process on a
# busy box) and, unlike this process, runs no threads (moto's, fsspec's) that a fork could catch
# holding a lock.
FORK = multiprocessing.get_context("forkserver")
FORK.set_forkserver_preload(["torch", "redis", "s3fs", "tests.fencing_workers"])


@pytest.fixture
def redis_url(tmp_path):
    with redis_server(tmp_path) as url:
        yield url


def _wait_for(path: Path, timeout: float = 180.0) -> str:
    """The file's text once a child wrote it. A generous bound: on a loaded machine a child's
    first S3 client (botocore parsing its service model) alone has taken over a minute."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)
    return path.read_text()


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.parametrize(("kind", "nodes", "seconds"), [("local", 4, 3.0), ("s3", 8, 2.0)])
def test_nodes_contending_for_two_models_never_hold_one_at_once_and_lose_no_version(kind, nodes, seconds, redis_url,
                                                                                    tmp_path, request):
    """4 nodes on a local folder, and 8 on the S3 server (a shared store under load): every
    version committed loads afterwards, none is lost, and the tokens along a model never go back."""
    shared, options = _shared(kind, tmp_path, request)
    names = ["wm-0", "wm-1"]
    procs = [FORK.Process(target=workers.contend, args=(redis_url, shared, f"node-{i}", names, seconds,
                                                         str(tmp_path / f"node-{i}.json"), options))
             for i in range(nodes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    results = [json.loads((tmp_path / f"node-{i}.json").read_text()) for i in range(nodes)]
    commits = sorted((c for r in results for c in r["commits"]), key=lambda c: (c["model"], c["version"]))
    assert {c["model"] for c in commits} == set(names) and len(commits) >= 8
    locker = RedisLocker(redis_url, "checker")
    ckpts = Checkpoints(workers.shared_store(shared, options), KIND, keep=1000)
    for name in names:
        for version in ckpts.versions(name):  # every version loads, with the token it was committed under
            raw = ckpts.store.read_bytes(f"{KIND}/{name}/ckpt-{version:06d}.pt")
            saved = torch.load(io.BytesIO(raw), weights_only=True)
            assert saved["meta"]["fence"] == int(saved["state"]["w"].item())
        # the committed tokens never go backwards, and the store holds exactly the commits made
        mine = [c for c in commits if c["model"] == name]
        # (numbers a lease claimed but never committed under are not versions: a gap at most)
        assert [c["version"] for c in mine] == ckpts.versions(name) == sorted({c["version"] for c in mine})
        assert [c["token"] for c in mine] == sorted(c["token"] for c in mine)
        # the lease history: grants and releases alternate, each release the last grant's token
        history = sorted(locker.history(f"{KIND}/{name}"), key=lambda e: e["t"])
        holder, spans = None, {}
        for event in history:
            if event["event"] == "acquired":
                assert holder is None, f"{name}: token {event['token']} granted while {holder} held it"
                holder, spans[event["token"]] = event["token"], [event["t"], None]
            else:
                assert holder == event["token"], f"{name}: release of {event['token']} while {holder} held it"
                holder, spans[event["token"]][1] = None, event["t"]
        assert holder is None
        for c in mine:  # each commit inside its own lease's span
            start, end = spans[c["token"]]
            assert start <= c["t"] <= end
    client = redis.Redis.from_url(redis_url)
    assert client.keys("ptzjepa:lock:*") == [] and client.keys("ptzjepa:holder:*") == []


@pytest.fixture(scope="module")
def s3_endpoint():
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sftp(tmp_path_factory):
    root = tmp_path_factory.mktemp("sftp-root")
    with sftp_server(root, tmp_path_factory.mktemp("sftp-keys"), SFTP_PASSWORD) as (port, known_hosts):
        yield port, known_hosts


def _shared(kind: str, tmp_path: Path, request) -> tuple[str, dict]:
    """A fresh shared store's URL and the options a node would open it with."""
    if kind == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        return (f"s3://{BUCKET}/paused-{tmp_path.name}",
                {"client_kwargs": {"endpoint_url": endpoint}, "key": "test-key", "secret": "test-secret"})
    if kind == "sftp":
        port, known_hosts = request.getfixturevalue("sftp")
        return (f"sftp://{SFTP_USER}@127.0.0.1:{port}/paused-{tmp_path.name}",
                {"password": SFTP_PASSWORD, "known_hosts": str(known_hosts)})
    return str(tmp_path / "shared"), {}


@pytest.mark.parametrize("order", ["claimed", "committed"])
@pytest.mark.parametrize("kind", ["local", "s3", "sftp"])
def test_a_holder_paused_past_its_lease_has_its_commit_refused_by_the_store(kind, order, redis_url, tmp_path,
                                                                            request):
    """The stale holder wakes after the newer holder claimed the model: before that holder's first
    commit (`claimed`) or after it (`committed`). Either way the store refuses it."""
    shared_url, options = _shared(kind, tmp_path, request)
    ready, out = tmp_path / "ready", tmp_path / "out"
    proc = FORK.Process(target=workers.paused_holder, args=(redis_url, shared_url, options, str(ready), str(out)))
    proc.start()
    old_token = int(_wait_for(ready))
    deadline = time.monotonic() + 30
    while not _stopped(proc.pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # while it is stopped its lease runs out; another node takes the model and claims it
    fresh = RedisLocker(redis_url, "fresh", lease_s=5.0).acquire(f"{KIND}/wm-0", wait_s=10)
    assert fresh is not None and fresh.token == old_token + 1
    ckpts = Checkpoints(workers.shared_store(shared_url, options), KIND)
    ckpts.claim("wm-0", fresh.token, "fresh")

    def commit() -> None:
        ckpts.save("wm-0", {"w": torch.full((4,), 7.0)}, {"node": "fresh"}, fence=fresh.token, node="fresh")

    if order == "committed":
        commit()
    os.kill(proc.pid, signal.SIGCONT)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    made = "claim 2 was made" if order == "claimed" else "version 2 was committed"
    assert out.read_text().startswith(f"refused: world_models/wm-0: {made} under fencing token "
                                      f"{fresh.token}, newer than this writer's {old_token}"), out.read_text()
    assert ckpts.versions("wm-0") == ([1] if order == "claimed" else [1, 2])  # the stale holder wrote nothing
    if order == "claimed":
        commit()  # the newer holder's first commit goes on from the stale holder's last good one
    state, meta = ckpts.load("wm-0")
    assert torch.equal(state["w"], torch.full((4,), 7.0)) and meta["node"] == "fresh" and meta["version"] == 2
    assert ckpts.versions("wm-0") == [1, 2]
    fresh.release()


def test_a_holder_killed_mid_write_frees_the_model_in_time_and_leaves_no_visible_partial_file(redis_url, tmp_path):
    lease_s = 1.5
    shared = Store(str(tmp_path / "shared"))
    ready = tmp_path / "ready"
    proc = FORK.Process(target=workers.doomed_holder, args=(redis_url, shared.url, str(ready), lease_s))
    proc.start()
    _wait_for(ready)
    ckpts = Checkpoints(shared, KIND, keep=2)
    checked = 0
    deadline = time.monotonic() + 30
    while checked < 6:  # every visible version file, read while the holder writes, is whole
        assert time.monotonic() < deadline
        for file in shared.list(f"{KIND}/wm-0", ".pt"):
            try:
                raw = shared.read_bytes(f"{KIND}/wm-0/{file}")
            except StoreError:
                continue  # pruned between the listing and the read
            torch.load(io.BytesIO(raw), weights_only=True)
            checked += 1
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    proc.join(timeout=10)
    fresh = RedisLocker(redis_url, "fresh", lease_s=5.0).acquire(f"{KIND}/wm-0", wait_s=10)
    waited = time.monotonic() - killed
    # within the lease (the key expires at most lease_s after the last renewal), plus one poll
    # and a busy machine's scheduling
    assert fresh is not None and waited <= lease_s + 1.0, f"the model stayed taken {waited:.1f} s"
    _, meta = ckpts.load("wm-0")
    assert meta["node"] == "doomed"
    version = ckpts.save("wm-0", {"w": torch.zeros(4)}, {"node": "fresh"}, fence=fresh.token)
    fresh.release()
    visible = shared.list(f"{KIND}/wm-0")
    assert all(f == "model_info.json" or f.startswith(("ckpt-", "fence-")) for f in visible)
    for file in shared.list(f"{KIND}/wm-0", ".pt"):
        torch.load(io.BytesIO(shared.read_bytes(f"{KIND}/wm-0/{file}")), weights_only=True)
    assert ckpts.load("wm-0")[1]["version"] == version
