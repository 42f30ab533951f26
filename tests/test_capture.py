import os
import signal
import subprocess
import sys
import time
import uuid

from ptzjepa.camera.base import PTZ
from ptzjepa.config.loading import load_config
from ptzjepa.node.context import Node
from ptzjepa.run.machine import Runner, load_machine
from ptzjepa.stages.capture import capture_plan
from ptzjepa.storage.frames import FrameStore, decode_jpeg
from ptzjepa.storage.store import Store
from tests.conftest import REPO


def _cli(data, *extra, timeout=120):
    cmd = [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", "capture",
           "--data", str(data), "--no-view", *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_plan_is_the_original_protocol():
    cfg = load_config("tiny")
    plan = capture_plan(cfg.capture, cfg.camera.limits.to_limits(), seed=0, cycle=0)
    per_round = cfg.capture.movements + 1
    assert len(plan) == cfg.capture.iterations * per_round
    for i, step in enumerate(plan):
        assert step.command.kind == ("absolute" if i % per_round == 0 else "relative")
        if step.command.kind == "relative":
            assert step.command.value.pan in cfg.capture.pan_steps
            assert step.command.value.zoom in cfg.capture.zoom_steps
    assert plan == capture_plan(cfg.capture, cfg.camera.limits.to_limits(), seed=0, cycle=0)
    assert plan != capture_plan(cfg.capture, cfg.camera.limits.to_limits(), seed=0, cycle=1)


def test_capture_machine_stores_frames_with_metadata():
    cfg = load_config("tiny")
    node = Node(config=cfg, store=Store(f"memory://cap-{uuid.uuid4().hex}"))
    assert Runner(load_machine("capture"), node).run() == "finished"
    expected = cfg.capture.iterations * (cfg.capture.movements + 1)
    reader = FrameStore(Store(node.store.url))  # a second reader sees the same frames
    records = list(reader.records())
    assert len(records) == expected
    limits = cfg.camera.limits.to_limits()
    for rec in records:
        assert limits.contains(rec.ptz)
        assert rec.time.tzinfo is not None and rec.stage == "capture"
        image = reader.image(rec)
        assert image.shape == (cfg.sim.height, cfg.sim.width, 3)
    firsts = [r for r in records if r.command.kind == "absolute"]
    assert len(firsts) == cfg.capture.iterations


def test_cli_capture_then_sigkill_and_resume(tmp_path):
    data = tmp_path / "run"
    # slow moves so that the kill lands mid-capture
    args = ["--set", "sim.move_latency_s=0.15", "--set", "capture.iterations=3", "--set", "capture.movements=5"]
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", "capture",
         "--data", str(data), "--no-view", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    positions = data / "collected_positions"
    deadline = time.time() + 60
    while time.time() < deadline and (not positions.exists() or len(os.listdir(positions)) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len([n for n in os.listdir(positions) if n.endswith(".json")])
    assert 4 <= before < 18
    for folder in ("collected_imgs", "collected_positions", "collected_commands"):
        for name in os.listdir(data / folder):
            assert name.startswith(".") or os.path.getsize(data / folder / name) > 0

    done = _cli(data, *args)
    assert done.returncode == 0, done.stderr
    store = Store(str(data))
    frames = FrameStore(store)
    ids = frames.ids()
    assert len(ids) == 3 * 6 == len(set(ids))
    for rec in frames.records():
        decode_jpeg(store.read_bytes(rec.image), rec.image)
    assert not [n for f in ("collected_imgs", "collected_positions") for n in os.listdir(data / f) if n.startswith(".")]


def test_second_run_on_same_data_refuses(tmp_path):
    data = tmp_path / "run"
    # long enough that a slow start of the second run on a busy machine still finds it running
    slow = ["--set", "sim.move_latency_s=0.2", "--set", "capture.iterations=500"]
    first = subprocess.Popen(
        [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", "capture",
         "--data", str(data), "--no-view", *slow], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (data / "state" / "machine.json").exists():
            time.sleep(0.05)
        second = _cli(data)
        assert second.returncode == 2
        assert "another run is using" in second.stderr
    finally:
        first.kill()
        first.wait()


def test_resume_returns_camera_to_last_frame():
    """After a stop mid-round, a restarted node (its camera elsewhere) first goes back to the
    last stored frame, so every relative step still starts from the previous frame's position."""
    from ptzjepa.stages.capture import capture

    cfg = load_config("tiny", ["capture.movements=5"])
    store = Store(f"memory://res-{uuid.uuid4().hex}")
    first = Node(config=cfg, store=store)
    first.events.subscribe(lambda e: e.kind == "frame_stored" and e.data["count"] >= 3 and first.stop.set())
    assert capture(first) == "stopped"
    assert first.frames.count() == 3

    second = Node(config=cfg, store=store)
    second.camera().move_to(PTZ(123.0, 45.0, 3.0))  # a fresh process: the camera is somewhere else
    assert capture(second) == "done"
    records = {r.id: r for r in second.frames.records()}
    limits = cfg.camera.limits.to_limits()
    plan = capture_plan(cfg.capture, limits, cfg.capture.seed, 0)
    assert len(records) == len(plan)
    for step in plan:
        if step.command.kind != "relative":
            continue
        prev = records[f"c00000_capture_{step.index - 1:06d}"].ptz
        here = records[f"c00000_capture_{step.index:06d}"].ptz
        want = limits.fit(prev + step.command.value)
        assert abs(here.tilt - want.tilt) < 1e-6 and abs(here.zoom - want.zoom) < 1e-6
        assert abs((here.pan - want.pan + 180) % 360 - 180) < 1e-6
