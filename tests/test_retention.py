import uuid

from ptzjepa import retention
from ptzjepa.camera.base import PTZ, Frame, utc_now
from ptzjepa.config_loading import load_config
from ptzjepa.frames import Command, frame_id
from ptzjepa.node import Node
from ptzjepa.store import Store

import numpy as np


def _node(*overrides):
    node = Node(config=load_config("tiny", list(overrides)), store=Store(f"memory://ret-{uuid.uuid4().hex}"))
    rng = np.random.default_rng(0)
    for cycle in range(3):
        for step in range(4):
            image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            frame = Frame(image, PTZ(step, 0, 1), utc_now())
            node.frames.put(frame, Command("absolute", PTZ(step, 0, 1)), fid=frame_id(cycle, "capture", step),
                            cycle=cycle, stage="capture", node="n")
    node.cycle = 2
    return node


def test_max_frames_keeps_the_newest():
    node = _node("storage.max_frames=5")
    out = retention.enforce(node)
    assert out["frames"] == 5 and out["removed"] == 7
    assert node.frames.ids() == ["c00001_capture_000003"] + [frame_id(2, "capture", s) for s in range(4)]
    assert node.store.list("collected_imgs") == [f"{i}.jpg" for i in node.frames.ids()]


def test_keep_images_false_keeps_only_this_cycle():
    node = _node("storage.keep_images=false")
    retention.enforce(node)
    assert node.frames.ids() == [frame_id(2, "capture", s) for s in range(4)]


def test_byte_budget():
    node = _node()
    total = node.store.disk_usage()
    budget = total // 2
    node = _node(f"storage.max_bytes={budget}")
    out = retention.enforce(node)
    assert out["bytes"] <= budget and node.store.disk_usage() <= budget
    assert node.frames.ids()[-1] == frame_id(2, "capture", 3)


def test_no_limits_removes_nothing():
    node = _node()
    assert retention.enforce(node)["removed"] == 0 and node.frames.count() == 12
