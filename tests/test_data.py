"""The frame dataset over a store: a frame whose JPEG is garbage, torn or empty (with a valid
record) is skipped with a warning that names it, in the main process and in loader workers, and
training goes on without it; only when no frame at all can be read does the stage fail."""

from __future__ import annotations

import logging

import pytest
import torch

from ptzjepa.node.frame_tensors import FrameDataset, frame_loader
from ptzjepa.node.training_frames import FrameBank
from ptzjepa.stages.world_model import train_world_model
from tests.stage_helpers import captured_node

SIZE = 64


def _damage(node, record, how: str) -> None:
    path = record.image
    if how == "garbage":
        node.store.write_bytes(path, b"this is not a JPEG\x00\xff" * 40)
    elif how == "truncated":
        node.store.write_bytes(path, node.store.read_bytes(path)[: 300])
    else:
        node.store.write_bytes(path, b"")


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
def test_a_corrupt_frame_is_skipped_with_a_warning_naming_it(how, caplog):
    node = captured_node()
    records = list(node.frames.records())
    bad = records[2]
    _damage(node, bad, how)
    dataset = FrameDataset(node.store.url, records, SIZE, cache_frames=8)
    with caplog.at_level(logging.WARNING, logger="ptzjepa.node.frame_tensors"):
        items = [dataset[i] for i in range(len(records))]
    assert items[2] is None
    assert all(item[0].shape == (3, SIZE, SIZE) for i, item in enumerate(items) if i != 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and bad.id in warnings[0] and "skipped" in warnings[0]
    assert bad.id not in dataset._cache
    # kept aside for inspection: no longer a frame, so no later epoch or stage reads it again
    assert bad.id not in node.frames.ids() and bad.id in node.frames.record_ids()
    assert [n for n in node.store.list("collected_imgs") if n.startswith(f"{bad.id}.jpg.damaged-")]
    loader = frame_loader(dataset, batch_size=len(records), num_workers=0, shuffle=False, seed=0)
    (images, poses), = list(loader)
    assert images.shape[0] == poses.shape[0] == len(records) - 1
    good_poses = torch.stack([items[i][1] for i in range(len(records)) if i != 2])
    assert torch.equal(poses, good_poses)  # the bad frame's pose is dropped with its image


def test_loader_workers_skip_a_corrupt_frame_too():
    node = captured_node()
    records = list(node.frames.records())
    _damage(node, records[0], "garbage")
    dataset = FrameDataset(node.store.url, records, SIZE)
    loader = frame_loader(dataset, batch_size=1, num_workers=2, shuffle=False, seed=0)
    batches = list(loader)
    assert sum(b is None for b in batches) == 1  # the batch of only the bad frame comes as None
    assert sum(b[0].shape[0] for b in batches if b is not None) == len(records) - 1


def test_training_goes_on_past_a_corrupt_frame_and_fails_only_when_none_reads(caplog):
    node = captured_node("world_model.epochs=1")
    records = list(node.frames.records())
    _damage(node, records[1], "truncated")
    with caplog.at_level(logging.WARNING, logger="ptzjepa.node.frame_tensors"):
        assert train_world_model(node) == "done"
    assert any(records[1].id in r.getMessage() for r in caplog.records)
    warnings: list[str] = []
    node.events.subscribe(lambda e: warnings.append(e.data["message"]) if e.kind == "warning" else None)
    for record in records:
        _damage(node, record, "garbage")
    node.cycle = 1  # a new session, so the stage trains again
    FrameBank._banks.clear()  # a new process: frames decoded before the damage are not held
    assert train_world_model(node) == "failed"
    assert any("no stored frame could be read" in w for w in warnings)
