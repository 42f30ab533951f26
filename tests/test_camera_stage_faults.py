"""A camera that answers badly mid-run costs a frame, never the node, and never stores a bad one.

The fake camera misbehaves from a given picture on (see tests/fake_cameras/witness.py), while the
capture runs as `python cli.py run` in another process, or the stages run here on a Node whose
camera is a real driver talking to the fake over HTTP.
"""

from __future__ import annotations

import os
import uuid

import cv2
import numpy as np
import pytest

from ptzjepa.config.loading import load_config
from ptzjepa.node.context import Node
from ptzjepa.stages.agent import train_agent
from ptzjepa.stages.capture import capture, capture_plan
from ptzjepa.stages.dream import dream
from ptzjepa.stages.navigate import navigate
from ptzjepa.stages.world_model import train_world_model
from ptzjepa.storage.frames import FrameStore, frame_id
from ptzjepa.storage.store import Store
from tests.fake_cameras import FAKES, FakeHanwha
from tests.fake_cameras.connect import driver_for
from tests.fake_cameras.witness import Witness
from tests.stage_helpers import captured_node
from tests.test_camera_cli import PASSWORD, run_capture, same_place

TINY = load_config("tiny")
STEPS = TINY.capture.iterations * (TINY.capture.movements + 1)  # 8: A R R R, A R R R
TRIES = TINY.capture.grab_retries


def capture_id(step: int) -> str:
    return frame_id(0, "capture", step)


def assert_frames_are_the_good_pictures(data, witness: Witness, missing: set[str]) -> None:
    """Stored frames are exactly the whole pictures the camera sent, at the head's positions;
    nothing is stored for the frames that were skipped, not even an orphan image."""
    frames = FrameStore(Store(str(data)))
    records = sorted(frames.records(), key=lambda r: r.id)
    assert {r.id for r in records} == {capture_id(i) for i in range(STEPS)} - missing
    good = witness.good
    assert len(good) == len(records)
    for record, shot in zip(records, good):
        assert same_place(record.ptz, shot.at), (record.id, record.ptz, shot.at)
        served = cv2.cvtColor(cv2.imdecode(np.frombuffer(shot.body, np.uint8), cv2.IMREAD_COLOR),
                              cv2.COLOR_BGR2RGB)
        assert np.abs(frames.image(record).astype(int) - served.astype(int)).mean() < 4.0
    images = {n.rsplit(".", 1)[0] for n in os.listdir(data / "collected_imgs")}
    assert images == {r.id for r in records}


@pytest.mark.parametrize("kind, spoil", [("hanwha", "truncated"), ("hanwha", "not_jpeg"),
                                         ("axis", "truncated"), ("onvif", "not_jpeg")])
def test_spoiled_pictures_skip_one_frame_and_the_run_completes(kind, spoil, tmp_path):
    """From the 3rd picture on, the camera sends spoiled JPEGs for as many tries as the node
    makes; that frame is skipped with a warning, and the capture goes on to the end."""
    def on_shot(n: int) -> None:
        if n == 2:
            server.faults.snapshot = spoil
        elif n == 2 + TRIES:
            server.faults.snapshot = "ok"

    with FAKES[kind]("op", PASSWORD) as server:
        witness = Witness(server, on_shot)
        done = run_capture(kind, server.url, tmp_path / "node")
    assert done.returncode == 0, done.stderr
    assert "outcome=done" in done.stderr and "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, done.stderr
    assert f"frame {capture_id(2)} skipped after {TRIES} tries" in warnings[0]
    assert "JPEG" in warnings[0]
    assert done.stderr.count("event=grab_retry") == TRIES - 1
    assert sum(s.spoiled != "ok" for s in witness.shots) == TRIES
    assert_frames_are_the_good_pictures(tmp_path / "node", witness, missing={capture_id(2)})


def test_an_error_answer_to_a_picture_is_retried_and_nothing_is_lost(tmp_path):
    """One HTTP 500 on a snapshot, with the driver told not to retry: the stage grabs again."""
    def on_shot(n: int) -> None:
        if n == 2:
            server.faults.error_count = 1
            server.faults.error_kinds = frozenset({"snapshot"})

    with FakeHanwha("op", PASSWORD) as server:
        witness = Witness(server, on_shot)
        done = run_capture("hanwha", server.url, tmp_path / "node", "--set", "camera.retries=0")
    assert done.returncode == 0, done.stderr
    assert " WARNING " not in done.stderr
    assert done.stderr.count("event=grab_retry") == 1 and "HTTP 500" in done.stderr
    assert server.received.count("snapshot") == STEPS + 1
    assert_frames_are_the_good_pictures(tmp_path / "node", witness, missing=set())


def test_a_failed_move_skips_its_frame_and_is_not_sent_twice(tmp_path):
    """A relative move answered with HTTP 500 may have moved the head: it is not resent, its
    frame is skipped, and the next step goes on."""
    def on_shot(n: int) -> None:
        if n == 3:  # after step 2's picture: step 3 is a relative move
            server.faults.error_count = 1
            server.faults.error_kinds = frozenset({"relative"})

    with FakeHanwha("op", PASSWORD) as server:
        witness = Witness(server, on_shot)
        done = run_capture("hanwha", server.url, tmp_path / "node")
    assert done.returncode == 0, done.stderr
    assert f"frame {capture_id(3)} skipped, the move failed" in done.stderr
    assert "relative move failed: HTTP 500" in done.stderr
    plan = capture_plan(TINY.capture, TINY.camera.limits.to_limits(), TINY.capture.seed, 0)
    assert server.count("relative") == sum(s.command.kind == "relative" for s in plan)
    assert_frames_are_the_good_pictures(tmp_path / "node", witness, missing={capture_id(3)})


def test_a_camera_that_dies_ends_the_run_as_failed_without_a_traceback(tmp_path):
    def on_shot(n: int) -> None:
        if n == 2:
            server.faults.error_count = -1  # every answer from now on is HTTP 500

    with FakeHanwha("op", PASSWORD) as server:
        witness = Witness(server, on_shot)
        done = run_capture("hanwha", server.url, tmp_path / "node", "--set", "camera.retries=0")
    assert done.returncode == 1, done.stderr
    assert "outcome=failed" in done.stderr and "Traceback" not in done.stderr
    # capture gives up after max(3, movements + 1) failed steps in a row
    assert done.stderr.count(" WARNING ") == max(3, TINY.capture.movements + 1)
    assert_frames_are_the_good_pictures(tmp_path / "node", witness,
                                        missing={capture_id(i) for i in range(2, STEPS)})


def _stop_after(node: Node, stage: str, count: int) -> None:
    seen = []

    def watch(event) -> None:
        if event.kind == "frame_stored" and event.data["stage"] == stage:
            seen.append(event.data["id"])
            if len(seen) >= count:
                node.stop.set()

    node.events.subscribe(watch)


def _warnings(node: Node) -> list[str]:
    found: list[str] = []
    node.events.subscribe(lambda e: e.kind == "warning" and found.append(e.data["message"]))
    return found


def test_capture_resumes_when_the_camera_fails_the_move_back():
    """A restarted capture first moves the camera back to its last frame; if the camera fails
    that move, the capture warns and goes on instead of ending the node."""
    config = load_config("tiny", ["capture.movements=5"])
    store = Store(f"memory://faults-{uuid.uuid4().hex}")
    with FakeHanwha("op", PASSWORD) as server:
        witness = Witness(server)
        first = Node(config=config, store=store)
        first.use_camera(driver_for(server, retries=0))
        _stop_after(first, "capture", 3)
        assert capture(first) == "stopped"
        first.close()

        server.faults.error_count = 1
        server.faults.error_kinds = frozenset({"absolute"})
        second = Node(config=config, store=store)
        second.use_camera(driver_for(server, retries=0))
        warnings = _warnings(second)
        assert capture(second) == "done"
        second.close()
    assert len(warnings) == 1 and warnings[0].startswith("resuming capture: cannot return")
    records = sorted(second.frames.records(), key=lambda r: r.id)
    assert len(records) == config.capture.iterations * (config.capture.movements + 1)
    assert len(witness.shots) == len(records)
    for record, shot in zip(records, witness.shots):
        assert same_place(record.ptz, shot.at)


@pytest.fixture(scope="module")
def trained_store():
    """A tiny node's store with a world model and an agent (trained on the simulator)."""
    node = captured_node("world_model.epochs=1", "agent.epochs=2")
    assert train_world_model(node) == "done"
    assert dream(node) == "done"
    assert train_agent(node) == "done"
    return node.store.url


def _navigating_node(store_url: str, server) -> Node:
    config = load_config("tiny", ["capture.iterations=3", "capture.movements=4",
                                  "world_model.epochs=1", "agent.epochs=2"])
    store = Store(store_url)
    store.delete_tree("state/progress")
    for fid in [r.id for r in FrameStore(store).records() if r.stage == "navigate"]:
        FrameStore(store).delete(fid)
    node = Node(config=config, store=store)
    node.use_camera(driver_for(server, retries=0))
    return node


def test_navigation_skips_a_spoiled_picture_and_completes(trained_store):
    cfg = TINY.navigate
    total = cfg.iterations * (cfg.movements + 1)

    def on_shot(n: int) -> None:
        if n == 2:
            server.faults.snapshot = "truncated"
        elif n == 2 + TRIES:
            server.faults.snapshot = "ok"

    with FakeHanwha("op", PASSWORD) as server:
        witness = Witness(server, on_shot)
        node = _navigating_node(trained_store, server)
        warnings = _warnings(node)
        assert navigate(node) == "done"
        node.close()
    assert len(warnings) == 1 and "skipped after" in warnings[0] and "JPEG" in warnings[0]
    nav = sorted((r for r in node.frames.records() if r.stage == "navigate"), key=lambda r: r.id)
    assert [r.id for r in nav] == [frame_id(0, "navigate", i) for i in range(total) if i != 2]
    assert len(witness.good) == len(nav)
    for record, shot in zip(nav, witness.good):
        assert same_place(record.ptz, shot.at)
    # after the lost frame the camera's position is not trusted: step 3 starts afresh
    assert nav[2].id == frame_id(0, "navigate", 3) and nav[2].command.kind == "absolute"


def test_navigation_resumes_when_the_camera_fails_the_move_back(trained_store):
    cfg = TINY.navigate
    total = cfg.iterations * (cfg.movements + 1)
    with FakeHanwha("op", PASSWORD) as server:
        node = _navigating_node(trained_store, server)
        _stop_after(node, "navigate", 2)
        assert navigate(node) == "stopped"
        node.close()

        server.faults.error_count = 1
        server.faults.error_kinds = frozenset({"absolute"})
        again = Node(config=node.config, store=node.store)
        again.use_camera(driver_for(server, retries=0))
        warnings = _warnings(again)
        assert navigate(again) == "done"  # raised CameraError before the stage caught it
        again.close()
    assert len(warnings) == 1 and warnings[0].startswith("resuming navigation: cannot return")
    nav = sorted((r for r in again.frames.records() if r.stage == "navigate"), key=lambda r: r.id)
    assert [r.id for r in nav] == [frame_id(0, "navigate", i) for i in range(total)]
    assert nav[2].command.kind == "absolute"  # the interrupted round started afresh
