import os
import signal
import subprocess
import sys
import time

import torch

from ptzjepa.node import model_store
from ptzjepa.node.frame_tensors import pose_of, to_tensor
from ptzjepa.stages.world_model import pretrain_world_model, train_world_model
from tests.conftest import REPO
from tests.stage_helpers import captured_node


def test_training_on_sim_frames_lowers_the_loss():
    node = captured_node("world_model.epochs=8", "world_model.patience=100", "world_model.lr=0.001",
                         "world_model.start_lr=0.0001", "world_model.warmup_epochs=1")
    assert train_world_model(node) == "done"
    info = model_store.world_models(node).info("wm-0")
    losses = info["session"]["losses"]
    assert len(losses) == 8 and info["epochs_trained"] == 8
    assert losses[-1] < 0.8 * losses[0]
    assert info["frames"] == node.frames.count() and info["trained_by"] == node.name
    assert set(info["contributions"]) == {node.name} and info["contributions"][node.name]["epochs"] == 8
    assert node.store.list("metrics/world_model/wm-0")[0] == "c00000-e0001.jsonl"


def _spy_on_saves(monkeypatch, name: str) -> list:
    """Record what each save of `name` was handed (the objects themselves, as the stage holds them)."""
    saved: list = []
    real = getattr(model_store, name)

    def spy(node, model_name, model, trainer, *args, **kwargs):
        saved.append((model_name, model, trainer))
        return real(node, model_name, model, trainer, *args, **kwargs)

    monkeypatch.setattr(model_store, name, spy)
    return saved


def test_checkpoint_round_trip_gives_the_trained_model_back(monkeypatch):
    """The model rebuilt from the checkpoint is the one that was trained: every tensor of its
    state (online and EMA target encoders, predictor) and its outputs on a fixed batch."""
    node = captured_node("world_model.epochs=2", "world_model.patience=100", "world_model.checkpoint_every_s=0")
    saved = _spy_on_saves(monkeypatch, "save_world_model")
    assert train_world_model(node) == "done"
    assert [s[0] for s in saved] == ["wm-0", "wm-0"]
    trained = saved[-1][1].eval()
    loaded, meta = model_store.load_world_model(node, "wm-0", torch.device("cpu"))
    assert meta["epochs_trained"] == 2 and meta["version"] == 2
    assert trained is not loaded
    want, got = trained.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    records = list(node.frames.records())[:4]
    images = torch.stack([to_tensor(node.frames.image(r), 64) for r in records])
    poses = torch.stack([pose_of(r) for r in records])
    with torch.no_grad():
        a = trained.predict(trained.encode_context(images), poses, poses.flip(0))
        b = loaded.predict(loaded.encode_context(images), poses, poses.flip(0))
        assert torch.equal(trained.encode_target(images), loaded.encode_target(images))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    fresh = model_store.build_world_model(loaded.spec).eval()  # the comparison can tell models apart
    with torch.no_grad():
        assert not torch.equal(fresh.encode_target(images), loaded.encode_target(images))


def test_pretrain_mode_trains_with_masks():
    node = captured_node("world_model.epochs=2")
    assert pretrain_world_model(node) == "done"
    info = model_store.world_models(node).info("wm-0")
    assert info["mode"] == "masked" and len(info["session"]["losses"]) == 2


def test_no_frames_is_an_outcome_not_a_crash():
    import uuid

    from ptzjepa.config.loading import load_config
    from ptzjepa.node.context import Node
    from ptzjepa.storage.store import Store

    node = Node(config=load_config("tiny"), store=Store(f"memory://empty-{uuid.uuid4().hex}"))
    assert train_world_model(node) == "no_data"


def test_sigkill_mid_training_resumes_from_the_saved_epoch(tmp_path):
    data = tmp_path / "run"
    captured_node(url=str(data))
    args = [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", "world_model_train",
            "--data", str(data), "--no-view", "--set", "world_model.epochs=40", "--set", "world_model.patience=100",
            "--set", "world_model.checkpoint_every_s=0"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    info_file = data / "world_models" / "wm-0" / "model_info.json"
    deadline = time.time() + 120
    import json

    while time.time() < deadline:
        if info_file.exists() and json.loads(info_file.read_text())["version"] >= 3:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = json.loads(info_file.read_text())
    done_before = before["session"]["epochs_done"]
    assert 3 <= done_before < 40
    finished = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    after = json.loads(info_file.read_text())
    assert after["session"]["epochs_done"] == 40
    assert after["session"]["losses"][:done_before] == before["session"]["losses"][:done_before]
    assert after["epochs_trained"] == 40  # no epoch counted twice


def test_training_on_after_a_fallback_counts_only_the_loaded_versions_epochs():
    """v2 broke: the next epoch trains on from v1, so it is the model's second epoch, not its third."""
    node = captured_node("world_model.epochs=1", "world_model.patience=100")
    assert train_world_model(node) == "done"
    node.cycle += 1  # a new session, one more epoch
    assert train_world_model(node) == "done"
    store = model_store.world_models(node)
    assert store.info("wm-0")["epochs_trained"] == 2
    node.store.write_bytes("world_models/wm-0/ckpt-000002.pt", b"torn")
    node.cycle += 1
    assert train_world_model(node) == "done"
    info = store.info("wm-0")
    assert info["version"] == 3 and info["epochs_trained"] == 2 and info["contributions"][node.name]["epochs"] == 2
    assert [v["version"] for v in info["versions"]] == [1, 3]
