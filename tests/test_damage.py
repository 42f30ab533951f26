"""Each kind of damage on its own: what the node does with it (docs/resilience.md)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest
import torch

from ptzjepa.run import app
from ptzjepa.stages.agent import train_agent
from ptzjepa.stages.capture import capture
from ptzjepa.stages.dream import DREAMS, complete_sets, dream
from ptzjepa.stages.world_model import train_world_model
from ptzjepa.storage.checkpoints import Checkpoints
from ptzjepa.storage.store import Store
from tests.damage_helpers import (
    copy_store, damage, good_checkpoints, assert_no_good_checkpoint_lost, meta_of, pristine_store, run_node,
)
from tests.stage_helpers import captured_node

KIND = "world_models"


@pytest.fixture
def store_copy(tmp_path_factory, tmp_path) -> Path:
    """A copy of the pristine store: one complete lifelong cycle, the machine at cycle 1."""
    return copy_store(pristine_store(tmp_path_factory), tmp_path / "store")


def _machine(data: Path) -> dict:
    return json.loads((data / "state/machine.json").read_text())


def _aside(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.damaged-*"))


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if " WARNING " in line]


# --- state/machine.json -------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"\x00\xffnot json{", b"", b'{"machine": "lifelong", "state": "train_world_model", '
                                     b'"cycle": "two", "first_cycle": 0}'], ids=["garbage", "empty", "wrong-types"])
def test_a_damaged_machine_state_is_moved_aside_and_rebuilt_and_status_reports_it(store_copy, capsys, content):
    from ptzjepa.config.loading import load_config
    from ptzjepa.node.context import Node
    from ptzjepa.run.machine import Runner, load_machine

    (store_copy / "state/machine.json").write_bytes(content)
    assert app.status(str(store_copy), as_json=True) == 0  # status only reads: it reports, moves nothing
    shown = json.loads(capsys.readouterr().out)
    assert any("state/machine.json" in line for line in shown["damaged"])
    assert (store_copy / "state/machine.json").read_bytes() == content
    warnings: list[str] = []
    node = Node(config=load_config("tiny"), store=Store(str(store_copy)))
    node.events.subscribe(lambda e: warnings.append(e.data["message"]) if e.kind == "warning" else None)
    runner = Runner(load_machine("lifelong"), node)
    # frames, dreams and checkpoints of the pristine store name cycle 0 at most: it restarts there,
    # at the first state (cycle 0 is this folder's first), each stage resuming from what it stored
    assert (node.cycle, runner.first_cycle, runner.state) == (0, 0, "capture")
    assert len(warnings) == 1 and "state/machine.json" in warnings[0] and "cycle 0 restarts at capture" in warnings[0]
    assert [p.read_bytes() for p in _aside(store_copy / "state", "machine.json")] == [content]


def test_a_run_on_a_rebuilt_machine_state_redoes_nothing_and_reaches_its_cycles(store_copy, capsys):
    before = good_checkpoints(store_copy)
    (store_copy / "state/machine.json").write_text("{")
    assert run_node(store_copy, cycles=2) == 0
    err = capsys.readouterr().err
    assert "state=capture outcome=done" in err  # cycle 0's capture was found done: no frame retaken
    assert (_machine(store_copy)["cycle"], _machine(store_copy)["first_cycle"]) == (2, 0)
    assert len(list((store_copy / "collected_imgs").glob("c00000_capture_*.jpg"))) == 4
    assert_no_good_checkpoint_lost(before, store_copy)


# --- state/status.json and state/progress ------------------------------------------------


def test_a_damaged_status_file_is_reported_by_status_and_moved_aside_by_a_run(store_copy, capsys):
    (store_copy / "state/status.json").write_text('{"coverage": "x", "rewards": ["not a number"]')
    assert app.status(str(store_copy), as_json=False) == 0
    assert "state/status.json" in capsys.readouterr().out
    assert run_node(store_copy, cycles=1) == 0  # cycle 1 of 1 is reached: the run only starts and ends
    assert any("state/status.json" in w for w in _warnings(capsys.readouterr().err))
    assert len(_aside(store_copy / "state", "status.json")) == 1
    assert json.loads((store_copy / "state/status.json").read_text())["finished"] == "cycles"


@pytest.mark.parametrize("content", ['{"done": 3, "cyc', '{"done": "three", "cycle": 0}', "[1, 2]"])
def test_damaged_progress_is_rebuilt_from_the_stages_frames(content):
    node = captured_node()
    warnings: list[str] = []
    node.events.subscribe(lambda e: warnings.append(e.data["message"]) if e.kind == "warning" else None)
    frames = node.frames.ids()
    node.store.write_text("state/progress/capture.json", content)
    assert capture(node) == "done"  # found when the stage is reached, never a crash
    assert node.frames.ids() == frames  # the plan was found done from its frames: no step redone
    assert len(warnings) == 1 and "state/progress/capture.json" in warnings[0] and "step 15" in warnings[0]
    assert node.progress("capture")["done"] == len(frames)
    assert [n for n in node.store.list("state/progress") if n.startswith("capture.json.damaged-")]


# --- model_info.json and checkpoints -----------------------------------------------------


def _saved(store: Store, versions: int, keep: int = 2) -> Checkpoints:
    ckpts = Checkpoints(store, KIND, keep=keep)
    for v in range(1, versions + 1):
        ckpts.save("wm-0", {"w": torch.full((3,), float(v))}, {"epochs_trained": v, "last_loss": 1.0 / v})
    return ckpts


def test_damaged_model_info_is_rebuilt_from_the_checkpoints(tmp_path, caplog):
    store = Store(str(tmp_path))
    ckpts = _saved(store, 3)
    (tmp_path / KIND / "wm-0/model_info.json").write_text('{"version": "3", "file": 7, "versions": {}}')
    with caplog.at_level(logging.WARNING):
        info = ckpts.info("wm-0")
    assert (info["version"], info["epochs_trained"], [v["version"] for v in info["versions"]]) == (3, 3, [2, 3])
    assert "model_info.json" in caplog.text and "rebuilt from the checkpoint files" in caplog.text
    assert len(_aside(tmp_path / KIND / "wm-0", "model_info.json")) == 1
    assert json.loads((tmp_path / KIND / "wm-0/model_info.json").read_text())["version"] == 3


def test_a_deleted_model_info_is_rebuilt_and_pruning_keeps_the_good_versions(tmp_path, caplog):
    store = Store(str(tmp_path))
    ckpts = _saved(store, 6)  # files ckpt-5 and ckpt-6 (keep 2)
    (tmp_path / KIND / "wm-0/model_info.json").unlink()
    assert ckpts.names() == ["wm-0"]  # still a model: its checkpoints are there
    with caplog.at_level(logging.WARNING):
        version = ckpts.save("wm-0", {"w": torch.zeros(3)}, {"epochs_trained": 7}, base_version=6)
    assert "missing file world_models/wm-0/model_info.json" in caplog.text
    assert version == 7  # goes on from version 6, not from scratch
    assert sorted(p.name for p in (tmp_path / KIND / "wm-0").glob("ckpt-*")) == ["ckpt-000006.pt", "ckpt-000007.pt"]


def test_a_deleted_model_info_never_restarts_training_in_a_run(store_copy, capsys):
    before = good_checkpoints(store_copy)
    newest = max(before[f"{KIND}/wm-0"])
    trained = meta_of(store_copy / KIND / "wm-0" / f"ckpt-{newest:06d}.pt")["epochs_trained"]
    (store_copy / KIND / "wm-0/model_info.json").unlink()
    assert run_node(store_copy, cycles=2) == 0
    assert any("wm-0/model_info.json" in w for w in _warnings(capsys.readouterr().err))
    info = json.loads((store_copy / KIND / "wm-0/model_info.json").read_text())
    assert info["version"] == newest + 2 and info["epochs_trained"] == trained + 2  # two more epochs, not afresh
    assert_no_good_checkpoint_lost(before, store_copy)


def test_pruning_never_deletes_a_version_newer_than_the_one_saved(tmp_path):
    store = Store(str(tmp_path))
    ckpts = _saved(store, 3)
    # a fallback past broken version 3 trains on from version 2: the save is version 4, and
    # version 3's file (were it readable later) is older than 4, so only then may it go
    assert ckpts.save("wm-0", {"w": torch.zeros(3)}, {}, base_version=2) == 4
    names = sorted(p.name for p in (tmp_path / KIND / "wm-0").glob("ckpt-*"))
    assert names == ["ckpt-000002.pt", "ckpt-000004.pt"]


def test_a_zero_byte_checkpoint_falls_back_with_the_reason_empty_file(tmp_path, caplog):
    store = Store(str(tmp_path))
    ckpts = _saved(store, 2)
    (tmp_path / KIND / "wm-0/ckpt-000002.pt").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        state, meta = ckpts.load("wm-0")
    assert meta["version"] == 1 and torch.equal(state["w"], torch.full((3,), 1.0))
    assert "ckpt-000002.pt: empty file" in caplog.text and "()" not in caplog.text


def test_a_model_none_of_whose_versions_loads_is_moved_aside_and_trained_afresh(store_copy, capsys):
    folder = store_copy / KIND / "wm-0"
    for ckpt in folder.glob("ckpt-*.pt"):
        damage(ckpt, "truncated")
    assert run_node(store_copy, cycles=2) == 0
    warnings = _warnings(capsys.readouterr().err)
    assert any("world_models/wm-0:" in w and "starts afresh" in w for w in warnings), warnings
    aside = _aside(store_copy / KIND, "wm-0")
    assert len(aside) == 1 and list(aside[0].glob("ckpt-*.pt.damaged-*"))  # kept for inspection
    info = json.loads((folder / "model_info.json").read_text())
    assert info["epochs_trained"] == 2 and info["session"]["cycle"] == 1  # trained afresh in cycle 1


# --- dreams ---------------------------------------------------------------------------------


def test_a_truncated_dream_chunk_is_remade_from_its_seed():
    node = captured_node("world_model.epochs=1", "agent.epochs=1")
    warnings: list[str] = []
    node.events.subscribe(lambda e: warnings.append(e.data["message"]) if e.kind == "warning" else None)
    assert train_world_model(node) == "done" and dream(node) == "done"
    (set_name,) = complete_sets(node)
    chunk = f"{DREAMS}/{set_name}/chunk-0001.pt"
    whole = node.store.read_bytes(chunk)
    node.store.write_bytes(chunk, whole[: len(whole) // 3])
    assert train_agent(node) == "no_data"  # the machine routes this to the dream stage
    assert len(warnings) == 1 and chunk in warnings[0] and "remakes" in warnings[0]
    assert complete_sets(node) == []
    assert dream(node) == "done"
    assert node.store.read_bytes(chunk) == whole  # the very chunk, from its own seed
    assert train_agent(node) == "done"


def test_a_truncated_dream_chunk_when_resuming_at_train_agent(store_copy, capsys):
    (set_dir,) = (store_copy / DREAMS).iterdir()
    damage(set_dir / "chunk-0000.pt", "truncated")
    state = {**_machine(store_copy), "state": "train_agent", "cycle": 0}
    (store_copy / "state/machine.json").write_text(json.dumps(state))
    assert run_node(store_copy, cycles=1) == 0
    assert any("chunk-0000.pt" in w for w in _warnings(capsys.readouterr().err))
    assert (set_dir / "info.json").exists() and len(_aside(set_dir, "chunk-0000.pt")) == 1
    torch.load(set_dir / "chunk-0000.pt", weights_only=True)  # remade whole
    assert _machine(store_copy)["cycle"] == 1


# --- frames -------------------------------------------------------------------------------


def test_every_frame_image_damaged_is_moved_aside_with_one_warning_and_captured_afresh(store_copy, capsys):
    images = sorted((store_copy / "collected_imgs").glob("*.jpg"))
    for image in images:
        damage(image, "truncated")  # every stored JPEG cut short (garbage is found the same way)
    assert run_node(store_copy, cycles=2) == 0  # no crash: the node goes on
    assert (_machine(store_copy)["state"], _machine(store_copy)["cycle"]) == ("train_world_model", 2)
    warned = [w for w in _warnings(capsys.readouterr().err) if "do not decode" in w]
    assert len(warned) == 1 and f"{len(images)} frame image(s)" in warned[0] and "capturing afresh" in warned[0]
    assert len(list((store_copy / "collected_imgs").glob("*.jpg.damaged-*"))) == len(images)
    # cycle 1 captured frames of its own and trained on them (a commit in cycle 1), not on nothing
    assert list((store_copy / "collected_imgs").glob("c00001_capture_*.jpg"))
    assert meta_of(max((store_copy / KIND / "wm-0").glob("ckpt-*.pt")))["cycle"] >= 1


def test_every_frame_of_the_first_cycle_damaged_makes_capture_take_them_again():
    """In the cycle whose capture is done, the damaged frames' stage is told to capture again (its
    progress goes), rewriting the same frame ids; then the world model trains on them."""
    node = captured_node("world_model.epochs=1")
    seen: list[str] = []
    node.events.subscribe(lambda e: seen.append(e.data["message"]) if e.kind == "warning" else None)
    ids = node.frames.ids()
    for record in node.frames.records():
        node.store.write_bytes(record.image, node.store.read_bytes(record.image)[:100])  # cut short
    assert train_world_model(node) == "no_data"  # never training on nothing
    assert len(seen) == 1 and "cut short" in seen[0] and "capturing afresh" in seen[0]
    assert node.frames.ids() == [] and node.progress("capture") == {}
    assert capture(node) == "done" and node.frames.ids() == ids
    assert train_world_model(node) == "done"
    assert Checkpoints(node.shared, KIND).versions("wm-0")


def test_a_failed_cycle_is_not_counted_complete_and_the_next_run_redoes_it(store_copy, capsys, monkeypatch):
    monkeypatch.setattr("ptzjepa.stages.world_model.train_world_model", lambda node: "failed")  # a failing stage
    assert run_node(store_copy, cycles=2) == 1
    assert (_machine(store_copy)["state"], _machine(store_copy)["cycle"]) == ("failed", 1)
    monkeypatch.undo()
    assert run_node(store_copy, cycles=2) == 0  # not counted: cycle 1 is done again
    assert (_machine(store_copy)["state"], _machine(store_copy)["cycle"]) == ("train_world_model", 2)


# --- temporary files ----------------------------------------------------------------------


def test_a_killed_save_leaves_no_temporary_file_behind_on_a_store_of_its_own(store_copy):
    from ptzjepa.storage.store import _temp_tag

    leftover = store_copy / KIND / "wm-0" / f".ckpt-000009.pt.tmp-{_temp_tag()}"
    leftover.write_bytes(b"partial")  # fresh: an hour has not passed
    assert run_node(store_copy, cycles=1) == 0
    assert not leftover.exists()


def test_on_a_shared_folder_temporary_files_go_by_whose_they_are(tmp_path):
    from ptzjepa.storage.store import _HOST

    store = Store(str(tmp_path))
    proc = subprocess.Popen(["true"])
    proc.wait()
    folder = tmp_path / KIND / "wm-0"
    folder.mkdir(parents=True)
    dead_here = folder / f".ckpt-000001.pt.tmp-{proc.pid}-{_HOST}-0a1b"
    live_here = folder / f".ckpt-000002.pt.tmp-{os.getpid()}-{_HOST}-0a1b"
    other_host = folder / f".ckpt-000003.pt.tmp-{proc.pid}-another-node.lan-0a1b"
    for path in (dead_here, live_here, other_host):
        path.write_bytes(b"partial")
    assert store.sweep_temp_files(older_than_s=0, shared=(KIND,)) == 1
    assert not dead_here.exists() and live_here.exists() and other_host.exists()
    stale = os.path.getmtime(other_host) - 7200
    os.utime(other_host, (stale, stale))
    assert store.sweep_temp_files(older_than_s=0, shared=(KIND,)) == 1 and not other_host.exists()


def test_temporary_names_say_whose_they_are():
    from ptzjepa.storage.store import _HOST, _temp_owner, _temp_tag

    assert _temp_owner(f".x.bin.tmp-{_temp_tag()}") == (os.getpid(), _HOST)
    assert _temp_owner(".x.bin.tmp-123") is None and _temp_owner(".x.tmp-abc-host-1") is None


def test_status_shows_what_it_can_of_a_status_file_with_values_of_the_wrong_type(tmp_path, capsys):
    (tmp_path / "state").mkdir()
    (tmp_path / "state/status.json").write_text('{"state": [1], "cycle": "x", "ptz": "abc", "warnings": 3}')
    assert app.status(str(tmp_path), as_json=False) == 0
    assert "state/status.json: a value of the wrong type" in " ".join(capsys.readouterr().out.split())


def test_a_damaged_run_lease_is_held_while_fresh_then_moved_aside(monkeypatch, caplog):
    import time
    import uuid

    from ptzjepa.storage.runlock import LEASE_FILE, RunLock, RunLockedError

    store = Store(f"memory://lease-{uuid.uuid4().hex}")
    store.protocol = "remote-test"  # a memory store taken for a remote one: the lease path, no server
    store.write_bytes(LEASE_FILE, b'{"host": "n1", "expi')
    with pytest.raises(RunLockedError, match="lease file is damaged"):
        RunLock(store, lease_s=30).acquire()  # a live holder's heartbeat may be about to rewrite it
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)
    lock = RunLock(store, lease_s=30)
    with caplog.at_level(logging.WARNING):
        lock.acquire()
    lock.release()
    assert "state/run.lease" in caplog.text and "takes the folder" in caplog.text
    assert [n for n in store.list("state") if n.startswith("run.lease.damaged-")]
