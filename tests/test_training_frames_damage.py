"""The training frames over a store: a frame whose JPEG is garbage, torn or empty (with a valid
record) is skipped with a warning that names it and moved aside, one that cannot be read is
skipped and read again later, and training goes on without them; only when no frame at all can
be read does the stage fail."""

from __future__ import annotations

import logging

import pytest
import torch

from ptzjepa.node.frame_tensors import pose_of
from ptzjepa.node.training_frames import FrameBank
from ptzjepa.stages.world_model import train_world_model
from tests.stage_helpers import captured_node

SIZE = 64
CPU = torch.device("cpu")


def _damage(node, record, how: str) -> None:
    path = record.image
    if how == "garbage":
        node.store.write_bytes(path, b"this is not a JPEG\x00\xff" * 40)
    elif how == "truncated":
        node.store.write_bytes(path, node.store.read_bytes(path)[: 300])
    else:
        node.store.write_bytes(path, b"")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
def test_a_corrupt_frame_is_skipped_with_a_warning_naming_it(how, caplog):
    node = captured_node()
    records = list(node.frames.records())
    bad = records[2]
    _damage(node, bad, how)
    bank = FrameBank(SIZE, CPU)
    with caplog.at_level(logging.WARNING):
        held = bank.select(node.store, records)
    assert held == [r for r in records if r.id != bad.id]
    assert bank.pixels.shape == (len(records) - 1, 3, SIZE, SIZE) and bad.id not in bank.ids
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and bad.id in warnings[0] and "skipped" in warnings[0]
    # kept aside for inspection: no longer a frame, so no later epoch or stage reads it again
    assert bad.id not in node.frames.ids() and bad.id in node.frames.record_ids()
    assert [n for n in node.store.list("collected_imgs") if n.startswith(f"{bad.id}.jpg.damaged-")]
    _, poses = bank.batch(bank.rows(held), (1.0, 1.0), torch.Generator().manual_seed(0))
    assert torch.equal(poses, torch.stack([pose_of(r) for r in held]))  # the bad frame's pose went with it


def test_a_frame_that_cannot_be_read_is_skipped_and_read_once_it_can(caplog):
    node = captured_node()
    records = list(node.frames.records())
    gone = records[0]
    jpeg = node.store.read_bytes(gone.image)
    node.store.delete(gone.image)
    bank = FrameBank(SIZE, CPU)
    with caplog.at_level(logging.WARNING):
        assert bank.select(node.store, records) == records[1:]
    assert any(gone.id in w and "skipping" in w for w in _warnings(caplog))
    assert gone.id in node.frames.record_ids()  # not damaged, only unreadable: nothing is moved
    node.store.write_bytes(gone.image, jpeg)
    assert bank.select(node.store, records) == records and bank.pixels.shape[0] == len(records)


def test_training_goes_on_past_a_corrupt_frame_and_captures_afresh_when_none_reads():
    node = captured_node("world_model.epochs=1")
    records = list(node.frames.records())
    _damage(node, records[1], "truncated")
    warnings: list[str] = []
    node.events.subscribe(lambda e: warnings.append(e.data["message"]) if e.kind == "warning" else None)
    assert train_world_model(node) == "done"
    assert len(warnings) == 1 and records[1].image in warnings[0] and "tracked positions" in warnings[0]
    warnings.clear()
    for record in records:
        _damage(node, record, "garbage")
    node.cycle = 1  # a new session, so the stage trains again
    FrameBank._banks.clear()  # a new process: frames decoded before the damage are not held
    assert train_world_model(node) == "no_data"  # the machine captures afresh: no training on nothing
    assert len(warnings) == 1 and f"{len(records)} frame image(s) do not decode" in warnings[0]
