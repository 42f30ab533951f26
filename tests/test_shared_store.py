"""The shared store (storage.shared) on every kind of store it supports, against real servers:
moto in server mode for S3, asyncssh's SFTP server for SFTP, a local folder, memory. The commit of
a shared checkpoint is fenced by the store: a create-only write of the next version file, refused
when a newer fencing token has committed or when another writer took that version number first."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch

from ptzjepa.config.settings import StorageConfig
from ptzjepa.distributed.shared_store import open_shared
from ptzjepa.storage.checkpoints import Checkpoints, FenceRefused
from ptzjepa.storage.fence_log import KEEP_RECORDS, FenceLog, Head, record_name
from ptzjepa.storage.store import Store
from tests.s3_server import BUCKET, s3_server
from tests.sftp_server import USER, sftp_server

PASSWORD = "sftp-test-password"
KIND = "world_models"


@pytest.fixture(scope="module")
def s3_endpoint():
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sftp(tmp_path_factory):
    root = tmp_path_factory.mktemp("sftp-root")
    with sftp_server(root, tmp_path_factory.mktemp("sftp-keys"), PASSWORD) as (port, known_hosts):
        yield root, port, known_hosts


@pytest.fixture(params=["local", "memory", "s3", "sftp"])
def shared(request, tmp_path, monkeypatch) -> Store:
    """A fresh shared store of each kind, opened the way a node opens storage.shared."""
    prefix = uuid.uuid4().hex[:8]
    if request.param == "local":
        config = StorageConfig(shared=str(tmp_path / "shared"))
    elif request.param == "memory":
        config = StorageConfig(shared=f"memory://shared-{prefix}")
    elif request.param == "s3":
        config = StorageConfig(shared=f"s3://{BUCKET}/{prefix}", s3_endpoint=request.getfixturevalue("s3_endpoint"))
    else:
        _, port, known_hosts = request.getfixturevalue("sftp")
        monkeypatch.setenv("PTZJEPA_SFTP_PASSWORD", PASSWORD)
        config = StorageConfig(shared=f"sftp://{USER}@127.0.0.1:{port}/{prefix}", sftp_known_hosts=str(known_hosts))
    return open_shared(config)


def _all_files(store: Store) -> list[str]:
    """Every file under the store, hidden ones included (a leftover temporary file would show)."""
    return sorted(p[len(store.root):].lstrip("/") for p in store.fs.find(store.root))


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((4,), value)}


def test_a_create_only_write_refuses_an_existing_name_and_leaves_no_temporary_file(shared):
    assert shared.create_bytes("world_models/wm-0/ckpt-000001.pt", b"first")
    assert not shared.create_bytes("world_models/wm-0/ckpt-000001.pt", b"second")
    assert shared.read_bytes("world_models/wm-0/ckpt-000001.pt") == b"first"
    assert _all_files(shared) == ["world_models/wm-0/ckpt-000001.pt"]


def test_a_commit_from_an_older_token_is_refused_and_the_newer_model_stays_current(shared):
    ckpts = Checkpoints(shared, KIND, keep=3)
    assert ckpts.save("wm-0", _state(1.0), {"epochs_trained": 1}, fence=4) == 1
    assert ckpts.save("wm-0", _state(2.0), {"epochs_trained": 2}, fence=5) == 2  # a newer lease
    with pytest.raises(FenceRefused, match="version 2 was committed under fencing token 5, newer than this writer's 4"):
        ckpts.save("wm-0", _state(9.0), {"epochs_trained": 9}, fence=4)  # the stale holder wakes up
    state, meta = ckpts.load("wm-0")
    assert torch.equal(state["w"], _state(2.0)["w"]) and meta["version"] == 2 and meta["fence"] == 5
    assert ckpts.versions("wm-0") == [1, 2]
    assert [f for f in _all_files(shared) if "tmp" in f] == []


def test_a_writer_beaten_to_the_next_version_is_refused_by_the_store(shared, monkeypatch):
    """The writer read the newest fence record, then paused; meanwhile a newer holder committed
    under the very number it was about to take. The store's create-only write refuses it."""
    ckpts = Checkpoints(shared, KIND)
    ckpts.save("wm-0", _state(1.0), {}, fence=1)
    Checkpoints(shared, KIND).save("wm-0", _state(2.0), {}, fence=2)  # the newer holder's commit
    _stale_view(monkeypatch, Head(1, 1, "commit"))
    with pytest.raises(FenceRefused, match="version 2 was claimed or committed by another writer first"):
        ckpts.save("wm-0", _state(9.0), {}, fence=1)
    monkeypatch.undo()
    state, meta = ckpts.load("wm-0")
    assert torch.equal(state["w"], _state(2.0)["w"]) and meta["fence"] == 2


def test_a_stale_writer_that_takes_a_number_freed_by_pruning_is_refused_by_its_recheck(shared, monkeypatch):
    """Old fence records are removed, so a writer paused long enough can win the create-only write
    of a freed number; its re-check finds the newest record above it, and it writes no version."""
    ckpts = Checkpoints(shared, KIND, keep=2)
    ckpts.save("wm-0", _state(1.0), {}, fence=1)
    for _ in range(KEEP_RECORDS + 3):
        Checkpoints(shared, KIND, keep=2).save("wm-0", _state(2.0), {}, fence=2)
    folder = f"{KIND}/wm-0"
    assert not shared.exists(f"{folder}/{record_name(2)}")  # removed: the name is free again
    _stale_view(monkeypatch, Head(1, 1, "commit"))
    with pytest.raises(FenceRefused, match=r"fence record \d+ was made after this writer's 2"):
        ckpts.save("wm-0", _state(9.0), {}, fence=1)
    monkeypatch.undo()
    assert not shared.exists(f"{folder}/ckpt-000002.pt")
    _, meta = ckpts.load("wm-0")
    assert meta["fence"] == 2 and meta["version"] == KEEP_RECORDS + 4


def _stale_view(monkeypatch, head: Head) -> None:
    """What a writer saw before it paused: the fence records' head and no version beyond it."""
    real_head = FenceLog.head
    calls = iter([head])
    monkeypatch.setattr(FenceLog, "head", lambda self: next(calls, None) or real_head(self))
    monkeypatch.setattr(Checkpoints, "versions", lambda self, name: [head.number])
    monkeypatch.setattr(Checkpoints, "info", lambda self, name: None)
    monkeypatch.setattr(Checkpoints, "_moved_aside", lambda self, name: 0)


def test_the_version_files_not_the_pointer_say_which_model_is_current(shared):
    """model_info.json is only a pointer: one left behind by a writer that died after its commit
    (or a slow one pointing backwards) does not hide the newest committed version."""
    ckpts = Checkpoints(shared, KIND)
    ckpts.save("wm-0", _state(1.0), {"last_loss": 0.5}, fence=1)
    old_pointer = shared.read_bytes(f"{KIND}/wm-0/model_info.json")
    ckpts.save("wm-0", _state(2.0), {"last_loss": 0.25}, fence=2)
    shared.write_bytes(f"{KIND}/wm-0/model_info.json", old_pointer)
    assert ckpts.current("wm-0")["version"] == 2 and ckpts.current("wm-0")["last_loss"] == 0.25
    state, meta = ckpts.load("wm-0")
    assert torch.equal(state["w"], _state(2.0)["w"]) and meta["version"] == 2
    assert ckpts.save("wm-0", _state(3.0), {}, fence=2) == 3


def test_an_s3_shared_store_sees_what_another_node_wrote_after_its_own_first_listing(s3_endpoint):
    """s3fs keeps listings for the life of the process by default; a node would then never see
    the versions and fence records other nodes commit (and `exists` would say no)."""
    import s3fs

    prefix = uuid.uuid4().hex[:8]
    mine = open_shared(StorageConfig(shared=f"s3://{BUCKET}/{prefix}", s3_endpoint=s3_endpoint))
    mine.write_bytes(f"{KIND}/wm-0/fence-000001.json", b"{}")
    assert mine.list(f"{KIND}/wm-0") == ["fence-000001.json"]
    other = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    other.pipe_file(f"{BUCKET}/{prefix}/{KIND}/wm-0/fence-000002.json", b"{}")  # another node's write
    assert mine.list(f"{KIND}/wm-0") == ["fence-000001.json", "fence-000002.json"]
    assert mine.exists(f"{KIND}/wm-0/fence-000002.json")


def test_an_sftp_server_whose_host_key_is_not_known_is_refused(sftp, tmp_path, monkeypatch):
    _, port, _ = sftp
    monkeypatch.setenv("PTZJEPA_SFTP_PASSWORD", PASSWORD)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(Exception, match="[Hh]ost key"):
        open_shared(StorageConfig(shared=f"sftp://{USER}@127.0.0.1:{port}/x", sftp_known_hosts=str(empty)))


def test_a_node_keeps_its_frames_at_home_and_its_world_models_in_the_shared_store(s3_endpoint, tmp_path):
    """A world model trained with storage.shared on S3: the checkpoints and their contributions
    are in the bucket, the frames and the rest in the node's own folder."""
    from ptzjepa.node import model_store
    from ptzjepa.stages.world_model import train_world_model
    from tests.stage_helpers import captured_node

    prefix = uuid.uuid4().hex[:8]
    node = captured_node("run.node=cam-s3", "world_model.epochs=1", "capture.iterations=1", "capture.movements=3",
                         url=str(tmp_path / "own"))
    node.shared = open_shared(StorageConfig(shared=f"s3://{BUCKET}/{prefix}", s3_endpoint=s3_endpoint))
    assert train_world_model(node) == "done"
    assert not (Path(tmp_path / "own") / KIND).exists()
    info = model_store.world_models(node).current("wm-0")
    mine = info["contributions"]["cam-s3"]
    assert mine["epochs"] == 1 and mine["updates"] >= 1 and mine["frames"] >= 2 and mine["seconds"] > 0
    assert info["fence"] >= 1 and node.shared.exists(f"{KIND}/wm-0/ckpt-000001.pt")


def test_a_stage_whose_commit_the_store_refuses_drops_the_epoch_and_goes_on_as_locked(tmp_path, monkeypatch):
    """The stage passes its own lease check (a stalled writer would), but a newer holder committed
    while it trained: the store refuses, the stage says so, leaves no file and ends `locked`."""
    from ptzjepa.node import model_store
    from ptzjepa.stages import world_model as stage
    from ptzjepa.view.events import Events
    from tests.stage_helpers import captured_node

    node = captured_node("run.node=cam", "world_model.epochs=1", "capture.iterations=1", "capture.movements=3",
                         url=str(tmp_path / "own"))
    node.shared = Store(str(tmp_path / "shared"))
    seen: list = []
    node.events = Events()
    node.events.subscribe(seen.append)
    monkeypatch.setattr(stage, "fenced", lambda lease: True)

    def newer_holder_commits(event) -> None:
        if event.kind == "metric" and not Checkpoints(node.shared, KIND).versions("wm-0"):
            Checkpoints(node.shared, KIND).save("wm-0", _state(5.0), {"by": "newer"}, fence=10**6)

    node.events.subscribe(newer_holder_commits)
    assert stage.train_world_model(node) == "locked"
    refused = [e for e in seen if e.kind == "commit_refused"]
    assert len(refused) == 1 and "10000" in refused[0].data["reason"]
    assert any(e.kind == "warning" and "refused by the store" in e.data["message"] for e in seen)
    assert model_store.world_models(node).versions("wm-0") == [2]  # number 1 is the stage's own claim
    assert model_store.world_models(node).current("wm-0")["by"] == "newer"
    assert [f for f in _all_files(node.shared) if "tmp" in f] == []
    assert [f for f in _all_files(node.shared) if "optimizer" in f] == []  # a refused commit writes no optimiser


def test_the_optimiser_file_is_the_newest_versions_and_a_refused_writer_leaves_it_alone(tmp_path):
    """Each committed save writes `optimizer-<version>.pt` after its commit and removes older ones;
    a stale writer (lower token) whose commit is refused writes none, so the newest version's
    optimiser state is the one its holder saved."""
    from ptzjepa.learning.session import Session
    from ptzjepa.node import model_store
    from tests.stage_helpers import captured_node

    node = captured_node("run.node=cam", "world_model.epochs=1", "capture.iterations=1", "capture.movements=3",
                         url=str(tmp_path / "own"))
    node.shared = Store(str(tmp_path / "shared"))
    model, trainer, _ = model_store.load_or_new_world_model(node, "wm-0", "pairs", 4, torch.device("cpu"))
    session = Session.from_meta(None, node.cycle, node.name, "train_world_model")
    work = {"updates": 1, "frames": 4, "seconds": 0.1}
    base: dict = {}
    for _ in range(2):
        base = model_store.save_world_model(node, "wm-0", model, trainer, session, "pairs", frames=4, fence=7,
                                            base=base, work=work)
    folder = f"{KIND}/wm-0"
    assert [f for f in node.shared.list(folder, ".pt") if f.startswith("optimizer")] == ["optimizer-000002.pt"]
    newest = node.shared.read_bytes(f"{folder}/optimizer-000002.pt")
    with pytest.raises(FenceRefused):
        model_store.save_world_model(node, "wm-0", model, trainer, session, "pairs", frames=4, fence=3,
                                     base={"version": 1}, work=work)
    assert [f for f in node.shared.list(folder, ".pt") if f.startswith("optimizer")] == ["optimizer-000002.pt"]
    assert node.shared.read_bytes(f"{folder}/optimizer-000002.pt") == newest


@pytest.mark.parametrize(("overrides", "expected"), [
    (["storage.shared=gs://bucket/models", "locks.kind=redis"], "storage.shared: expected a URL the shared models"),
    (["storage.shared=s3://bucket/models"], "locks.kind: expected redis with storage.shared on s3://"),
    (["storage.shared=sftp://ptz:hunter2@host/models", "locks.kind=redis"], "storage.shared: expected no password"),
])
def test_a_shared_store_setting_that_cannot_work_is_refused_at_load_in_one_line(overrides, expected):
    from ptzjepa.config.loading import ConfigError, load_config

    with pytest.raises(ConfigError) as caught:
        load_config("tiny", overrides)
    message = str(caught.value)
    assert expected in message and "\n" not in message and "hunter2" not in message
