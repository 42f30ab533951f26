import uuid

import numpy as np
import pytest

from ptzjepa.camera.base import PTZ, Frame, utc_now
from ptzjepa.config.loading import load_config
from ptzjepa.node import retention
from ptzjepa.node.context import Node
from ptzjepa.run.machine import Runner, load_machine
from ptzjepa.storage.embeddings import EMBEDS
from ptzjepa.storage.frames import COMMANDS, IMAGES, POSITIONS, Command, FrameStore, frame_id
from ptzjepa.storage.store import Store, StoreError


def _node(*overrides, rounds=((0, "capture", 4), (1, "capture", 4), (2, "capture", 4)), embeds=False):
    """A node holding frames of the given (cycle, stage, count) rounds; its cycle is the last one's."""
    node = Node(config=load_config("tiny", list(overrides)), store=Store(f"memory://ret-{uuid.uuid4().hex}"))
    rng = np.random.default_rng(0)
    for cycle, stage, count in rounds:
        for step in range(count):
            image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            frame = Frame(image, PTZ(step, 0, 1), utc_now())
            fid = frame_id(cycle, stage, step)
            node.frames.put(frame, Command("absolute", PTZ(step, 0, 1)), fid=fid, cycle=cycle, stage=stage, node="n")
            if embeds:
                node.store.write_bytes(f"{EMBEDS}/{fid}.pt", b"embedding")
    node.cycle = rounds[-1][0]
    return node


def _warnings(node):
    seen = []
    node.events.subscribe(lambda e: e.kind == "warning" and seen.append(e.data["message"]))
    return seen


def test_max_frames_keeps_the_newest():
    node = _node("storage.max_frames=5")
    out = retention.enforce(node)
    assert out["frames"] == 5 and out["removed"] == 7
    assert node.frames.ids() == ["c00001_capture_000003"] + [frame_id(2, "capture", s) for s in range(4)]
    assert node.store.list("collected_imgs") == [f"{i}.jpg" for i in node.frames.ids()]


def test_max_frames_never_leaves_fewer_than_training_needs():
    node = _node("storage.max_frames=1")
    assert retention.enforce(node)["frames"] == retention.MIN_FRAMES == 2


def test_the_floor_is_the_world_models_minimum():
    from ptzjepa.stages.world_model import MIN_FRAMES

    assert retention.MIN_FRAMES == MIN_FRAMES


def test_keep_images_false_keeps_only_the_newest_round():
    # Navigate's transition has moved the cycle on: its frames are older than the cycle, yet newest.
    rounds = ((0, "capture", 4), (0, "navigate", 3), (1, "navigate", 5))
    node = _node("storage.keep_images=false", rounds=rounds)
    node.cycle = 2
    retention.enforce(node)
    assert node.frames.ids() == [frame_id(1, "navigate", s) for s in range(5)]
    node = _node("storage.keep_images=false", rounds=rounds[:2])
    node.cycle = 1
    retention.enforce(node)
    assert node.frames.ids() == [frame_id(0, "navigate", s) for s in range(3)]


def test_keep_images_false_keeps_an_older_round_while_the_newest_is_too_short_to_train_on():
    node = _node("storage.keep_images=false", rounds=((0, "capture", 4), (0, "navigate", 1)))
    retention.enforce(node)
    assert node.frames.count() == 5
    node = _node("storage.keep_images=false", rounds=((0, "capture", 4), (0, "navigate", 1), (1, "navigate", 1)))
    retention.enforce(node)
    assert node.frames.ids() == [frame_id(0, "navigate", 0), frame_id(1, "navigate", 0)]


def test_lifelong_loop_without_keeping_images_trains_on_the_agents_frames():
    """The original without -ki: each cycle's world model learns from the frames navigate just
    collected, and no stage ever finds the frames gone (no extra random capture)."""
    node = Node(config=load_config("tiny", ["storage.keep_images=false"]),
                store=Store(f"memory://ret-loop-{uuid.uuid4().hex}"))
    steps, trained_on = [], []
    node.events.subscribe(lambda e: e.kind == "transition" and steps.append((e.data["source"], e.data["outcome"])))
    node.events.subscribe(lambda e: e.kind == "state_entered" and e.data["state"] == "train_world_model"
                          and trained_on.append(sorted({fid.rsplit("_", 1)[0] for fid in node.frames.ids()})))
    assert Runner(load_machine("lifelong"), node).run(cycles=3) == "cycles"
    assert all(outcome == "done" for _, outcome in steps), steps
    assert [s for s, _ in steps].count("capture") == 1
    assert trained_on == [["c00000_capture"], ["c00000_navigate"], ["c00001_navigate"]]
    nav = node.config.navigate
    assert node.frames.ids() == [frame_id(2, "navigate", s) for s in range(nav.iterations * (nav.movements + 1))]
    assert node.store.list(IMAGES) == [f"{fid}.jpg" for fid in node.frames.ids()]
    # storage.track_positions (on by default): every position is still on record.
    assert len(node.frames.record_ids()) == 8 + 3 * 8


@pytest.mark.parametrize("tracking, records, embeds", [
    (["storage.track_positions=false", "storage.track_all=false"], False, False),
    (["storage.track_positions=true", "storage.track_all=false"], True, False),
    (["storage.track_positions=true", "storage.track_all=true"], True, True),
])
def test_tracking_keeps_positions_commands_and_embeddings_of_removed_frames(tracking, records, embeds):
    node = _node("storage.keep_images=false", *tracking, embeds=True)
    retention.enforce(node)
    newest = [frame_id(2, "capture", s) for s in range(4)]
    gone = [frame_id(c, "capture", s) for c in (0, 1) for s in range(4)]
    assert node.frames.ids() == newest and node.store.list(IMAGES) == [f"{f}.jpg" for f in newest]
    assert node.frames.record_ids() == (gone if records else []) + newest
    assert node.store.list(COMMANDS) == [f"{f}.json" for f in (gone if records else []) + newest]
    assert node.store.list(EMBEDS) == [f"{f}.pt" for f in (gone if embeds else []) + newest]
    if records:
        tracked = node.frames.record(gone[0])
        assert tracked.image == "" and tracked.ptz == PTZ(0, 0, 1) and tracked.command.kind == "absolute"
        with pytest.raises(StoreError, match="removed"):
            node.frames.image(tracked)


def test_a_tracked_position_is_not_a_frame_for_learning():
    node = _node("storage.max_frames=3")
    retention.enforce(node)
    reader = FrameStore(Store(node.store.url))
    assert reader.count() == 3 and len(reader.record_ids()) == 12
    assert [r.id for r in reader.records()] == reader.ids()
    assert all(reader.image(r).shape == (32, 32, 3) for r in reader.records())


def test_a_removal_cut_short_leaves_a_tracked_position_not_a_frame():
    node = _node()
    fid = frame_id(0, "capture", 0)
    node.store.delete(f"{IMAGES}/{fid}.jpg")  # drop_image died before marking the record
    assert fid not in node.frames.ids() and fid in node.frames.record_ids()
    assert fid not in [r.id for r in node.frames.records()]
    assert node.frames.sweep_orphans() == 0 and node.store.exists(f"{COMMANDS}/{fid}.json")


def test_startup_sweep_keeps_tracked_positions_and_removes_true_orphans():
    node = _node("storage.max_frames=2", embeds=True)
    retention.enforce(node)
    tracked = frame_id(0, "capture", 1)
    node.store.write_bytes(f"{IMAGES}/c00009_capture_000000.jpg", b"cut short")
    node.store.write_bytes(f"{EMBEDS}/c00009_navigate_000000.pt", b"cut short")
    assert node.frames.sweep_orphans() == 2
    assert node.store.exists(f"{COMMANDS}/{tracked}.json") and node.store.exists(f"{EMBEDS}/{tracked}.pt")
    assert node.frames.record(tracked).image == "" and node.frames.count() == 2


def test_byte_budget():
    node = _node()
    total = node.store.disk_usage()
    budget = total // 2
    node = _node(f"storage.max_bytes={budget}")
    warnings = _warnings(node)
    out = retention.enforce(node)
    assert out["bytes"] <= budget and node.store.disk_usage() <= budget
    assert node.frames.ids()[-1] == frame_id(2, "capture", 3) and 2 <= out["frames"] < 12
    assert len(node.frames.record_ids()) == 12 and warnings == []


def test_byte_budget_over_by_other_data_removes_no_frames_and_says_why():
    node = _node("storage.max_bytes=200000")
    node.store.write_bytes("world_models/wm-0/model.pt", bytes(300_000))
    warnings = _warnings(node)
    for _ in range(2):  # after every stage: never a cut that training cannot live with
        out = retention.enforce(node)
        assert out == {"removed": 0, "frames": 12, "bytes": node.store.disk_usage()}
    assert len(warnings) == 2  # one per application, not one per frame
    assert "cannot be met by removing frames" in warnings[0] and "(world_models 300 kB, collected_positions" in warnings[0]
    other = node.store.disk_usage() - sum(node.store.size(f"{IMAGES}/{f}.jpg") for f in node.frames.ids())
    assert f" {other} (" in warnings[0]


def test_byte_budget_keeps_the_frames_training_needs():
    node = _node("storage.max_bytes=1", "storage.track_positions=false", "storage.track_all=false")
    warnings = _warnings(node)
    out = retention.enforce(node)
    assert out["frames"] == 2 and node.frames.ids() == [frame_id(2, "capture", s) for s in (2, 3)]
    assert node.frames.record_ids() == node.frames.ids() and len(warnings) == 1


def test_no_limits_removes_nothing():
    node = _node()
    assert retention.enforce(node)["removed"] == 0 and node.frames.count() == 12
