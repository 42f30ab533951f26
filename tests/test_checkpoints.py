"""Versioned checkpoints: a save commits weights with their own metadata, and a version that no
longer loads falls back to the one before with that one's weights and metadata, never a mix."""

from __future__ import annotations

import io
import logging
import uuid

import pytest
import torch

from ptzjepa.storage.checkpoints import INFO, CheckpointError, Checkpoints
from ptzjepa.storage.store import Store

KIND = "world_models"


@pytest.fixture
def store() -> Store:
    return Store(f"memory://ckpt-{uuid.uuid4().hex}")


def _state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((3,), value)}


def _meta(epochs: int, loss: float) -> dict:
    return {"session": {"epochs_done": epochs, "best": loss, "losses": [loss] * epochs},
            "epochs_trained": epochs, "last_loss": loss}


def _save_two(store: Store) -> Checkpoints:
    ckpts = Checkpoints(store, KIND, keep=3)
    assert ckpts.save("wm-0", _state(1.0), _meta(1, 0.9)) == 1
    assert ckpts.save("wm-0", _state(2.0), _meta(2, 0.5)) == 2
    return ckpts


def test_the_newest_version_loads_with_its_metadata(store):
    ckpts = _save_two(store)
    state, meta = ckpts.load("wm-0")
    assert torch.equal(state["w"], torch.full((3,), 2.0))
    assert meta["version"] == 2 and meta["file"] == "ckpt-000002.pt" and meta["name"] == "wm-0"
    assert meta["session"]["epochs_done"] == 2 and meta["last_loss"] == 0.5
    assert [v["version"] for v in meta["versions"]] == [1, 2]
    assert ckpts.info("wm-0")["last_loss"] == 0.5 and ckpts.names() == ["wm-0"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_a_broken_newest_version_falls_back_to_the_older_weights_and_metadata(store, damage, caplog):
    ckpts = _save_two(store)
    path = f"{KIND}/wm-0/ckpt-000002.pt"
    if damage == "garbage":
        store.write_bytes(path, b"\x93not a checkpoint" * 64)
    elif damage == "truncated":
        store.write_bytes(path, store.read_bytes(path)[:200])
    else:
        store.delete(path)
    with caplog.at_level(logging.WARNING, logger="ptzjepa.storage.checkpoints"):
        state, meta = ckpts.load("wm-0")
    assert torch.equal(state["w"], torch.full((3,), 1.0))
    assert meta["version"] == 1 and meta["file"] == "ckpt-000001.pt"
    assert meta["session"] == {"epochs_done": 1, "best": 0.9, "losses": [0.9]}
    assert meta["epochs_trained"] == 1 and meta["last_loss"] == 0.9
    assert "ckpt-000002.pt" in caplog.text and "does not load" in caplog.text
    assert ckpts.info("wm-0")["version"] == 2  # loading never rewrites the commit marker


def test_no_loadable_version_is_a_checkpoint_error_naming_the_model(store):
    ckpts = _save_two(store)
    for file in ("ckpt-000001.pt", "ckpt-000002.pt"):
        store.write_bytes(f"{KIND}/wm-0/{file}", b"junk")
    with pytest.raises(CheckpointError, match="world_models/wm-0"):
        ckpts.load("wm-0")
    # moved aside whole, so that the next run trains it afresh instead of failing every time
    assert ckpts.names() == [] and ckpts.info("wm-0") is None
    assert [d for d in store.list_dirs(KIND) if d.startswith("wm-0.damaged-")]
    with pytest.raises(CheckpointError, match="wm-1: no checkpoint"):
        ckpts.load("wm-1")


def test_versions_beyond_keep_are_pruned(store):
    ckpts = Checkpoints(store, KIND, keep=2)
    for i in range(4):
        ckpts.save("wm-0", _state(float(i)), _meta(i + 1, 1.0 / (i + 1)))
    assert sorted(store.list(f"{KIND}/wm-0", ".pt")) == ["ckpt-000003.pt", "ckpt-000004.pt"]
    assert [v["version"] for v in ckpts.info("wm-0")["versions"]] == [3, 4]
    store.delete(f"{KIND}/wm-0/ckpt-000004.pt")
    state, meta = ckpts.load("wm-0")
    assert torch.equal(state["w"], torch.full((3,), 2.0)) and meta["epochs_trained"] == 3


def test_a_file_without_its_own_metadata_still_loads(store):
    """Files written before checkpoints carried their metadata: the newest's comes from model_info."""
    buffer = io.BytesIO()
    torch.save(_state(7.0), buffer)
    store.write_bytes(f"{KIND}/wm-0/ckpt-000001.pt", buffer.getvalue())
    store.write_json(f"{KIND}/wm-0/{INFO}", {**_meta(3, 0.25), "name": "wm-0", "version": 1,
                                               "file": "ckpt-000001.pt",
                                               "versions": [{"version": 1, "file": "ckpt-000001.pt", "saved": 0}]})
    state, meta = Checkpoints(store, KIND).load("wm-0")
    assert torch.equal(state["w"], torch.full((3,), 7.0)) and meta["epochs_trained"] == 3 and meta["version"] == 1


def test_a_save_after_a_fallback_drops_the_broken_version_not_the_good_one(store):
    """Trained on from v1 after v2 broke: v3 follows v1 in the history, v2's file goes, and with
    keep=2 the good v1 stays as the fallback of v3."""
    ckpts = Checkpoints(store, KIND, keep=2)
    ckpts.save("wm-0", _state(1.0), _meta(1, 0.9))
    ckpts.save("wm-0", _state(2.0), _meta(2, 0.5))
    store.write_bytes(f"{KIND}/wm-0/ckpt-000002.pt", b"garbage")
    _, base = ckpts.load("wm-0")
    assert base["version"] == 1
    assert ckpts.save("wm-0", _state(3.0), _meta(2, 0.4), base_version=base["version"]) == 3
    assert [v["version"] for v in ckpts.info("wm-0")["versions"]] == [1, 3]
    assert sorted(store.list(f"{KIND}/wm-0", ".pt")) == ["ckpt-000001.pt", "ckpt-000003.pt"]
    store.write_bytes(f"{KIND}/wm-0/ckpt-000003.pt", b"garbage")
    state, meta = ckpts.load("wm-0")
    assert meta["version"] == 1 and torch.equal(state["w"], torch.full((3,), 1.0))


def test_an_io_error_is_not_a_broken_version(store, monkeypatch):
    """A remote store's timeout says nothing about the file: falling back past it (and then
    dropping it from the history at the next save) would lose a good version."""
    ckpts = _save_two(store)
    real = store.read_bytes

    def flaky(rel: str) -> bytes:
        if rel.endswith("ckpt-000002.pt"):
            raise TimeoutError("read timed out")
        return real(rel)

    monkeypatch.setattr(store, "read_bytes", flaky)
    with pytest.raises(TimeoutError):
        ckpts.load("wm-0")
    monkeypatch.setattr(store, "read_bytes", real)
    assert ckpts.load("wm-0")[1]["version"] == 2
