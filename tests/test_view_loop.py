"""The live view of the whole lifelong loop, drawn from events only (through NodeStatus)."""

from __future__ import annotations

import re

from rich.console import Console

from ptzjepa.config.loading import load_config
from ptzjepa.run.machine import load_machine
from ptzjepa.view.events import Events
from ptzjepa.view.live import render
from ptzjepa.view.status import NodeStatus

LOOP = ["capture", "train_world_model", "dream", "train_agent", "navigate"]
SPARK = "▁▂▃▄▅▆▇█"


def _loop_status() -> tuple[Events, NodeStatus]:
    """A node one cycle into the loop, fed the events a run emits."""
    events = Events()
    status = NodeStatus(limits=load_config("tiny").camera.limits.to_limits())
    events.subscribe(status)
    states = LOOP + ["waiting_for_lock", "failed"]
    events.emit("run_started", machine="lifelong", states=states, state="capture", cycle=0, data="runs/v", frames=0)
    events.emit("machine", name="lifelong", path=LOOP, loop_to="train_world_model",
                side=["waiting_for_lock", "failed"], finals=["failed"], state="capture", cycle=0)
    events.emit("state_entered", state="capture", cycle=0)
    for i in range(8):
        events.emit("camera_moved", pan=45.0 * i, tilt=-15.0 + 13.0 * i, zoom=1.0)
        events.emit("frame_stored", id=f"c00000_capture_{i:06d}", pan=45.0 * i, tilt=-15.0 + 13.0 * i,
                    zoom=1.0, stage="capture", count=i + 1)
        events.emit("progress", stage="capture", done=i + 1, total=8, unit="frames")
    events.emit("transition", source="capture", outcome="done", dest="train_world_model", cycle=0)
    events.emit("state_entered", state="train_world_model", cycle=0)
    events.emit("lock", resource="world_models/wm-0", status="held by node-a (token 7)")
    for epoch in range(5):
        for batch in range(2):
            events.emit("metric", stage="world_model", name="loss", value=1.0 - 0.1 * (2 * epoch + batch), step=epoch)
            events.emit("progress", stage="train_world_model", done=epoch, total=5, unit="epochs",
                        batch=batch + 1, batches=2)
        events.emit("progress", stage="train_world_model", done=epoch + 1, total=5, unit="epochs")
        events.emit("model_saved", kind="world_models", name="wm-0", version=epoch + 1, path="world_models/wm-0",
                    loss=1.0 - 0.2 * epoch)
    events.emit("transition", source="train_world_model", outcome="done", dest="dream", cycle=0)
    for chunk in range(2):
        events.emit("dreams_stored", set="c00000-wm-0-v0005", chunk=chunk, dreams=8, done=8 * (chunk + 1), total=16)
        events.emit("progress", stage="dream", done=8 * (chunk + 1), total=16, unit="dreams")
    events.emit("transition", source="dream", outcome="done", dest="train_agent", cycle=0)
    for epoch in range(3):
        events.emit("metric", stage="agent", name="loss", value=0.5 / (epoch + 1), step=epoch)
        events.emit("progress", stage="train_agent", done=epoch + 1, total=3, unit="epochs")
        events.emit("model_saved", kind="agents", name="agent-node-a", version=epoch + 1, path="agents/agent-node-a",
                    loss=0.5 / (epoch + 1))
    events.emit("transition", source="train_agent", outcome="done", dest="navigate", cycle=0)
    events.emit("state_entered", state="navigate", cycle=0)
    for step, action in enumerate(["long_left", "jump_up", "short_zoom_in"]):
        events.emit("frame_stored", id=f"c00000_navigate_{step:06d}", pan=300.0 + step, tilt=60.0, zoom=1.0,
                    stage="navigate", count=9 + step)
        events.emit("reward", value=0.3 + 0.05 * step, action=action)
        events.emit("progress", stage="navigate", done=step + 1, total=8, unit="moves")
    events.emit("disk", bytes=7 * 1024 * 1024, frames=11)
    return events, status


def _text(snapshot: dict, width: int = 160) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(render(snapshot))
    return console.export_text()


def _line(text: str, needle: str) -> str:
    found = [line for line in text.splitlines() if needle in line]
    assert found, f"no line with {needle!r} in:\n{text}"
    return found[0]


def test_view_shows_the_loop_with_the_current_state_lit():
    _, status = _loop_status()
    text = _text(status.snapshot())
    row = _line(text, "capture →")
    assert "capture → train_world_model → dream → train_agent →  navigate  ↻ train_world_model" in row
    assert "waiting_for_lock · failed" in row
    summary = _line(text, "cycle 0 ·")
    assert re.search(r"cycle 0 · navigate for \d+:\d\d", summary)


def test_view_shows_progress_bars_for_frames_epochs_dreams_and_moves():
    _, status = _loop_status()
    text = _text(status.snapshot())
    for stage, label in [("capture", "8/8 frames"), ("train_world_model", "5/5 epochs"),
                         ("dream", "16/16 dreams"), ("train_agent", "3/3 epochs"), ("navigate", "3/8 moves")]:
        line = _line(text, label)
        assert stage in line and "━" in line, line
    # the bars follow the loop's order
    order = [text.index(label) for label in ("8/8 frames", "5/5 epochs", "16/16 dreams", "3/3 epochs", "3/8 moves")]
    assert order == sorted(order)


def test_view_shows_loss_sparklines_dreams_rewards_models_disk_and_locks():
    _, status = _loop_status()
    text = _text(status.snapshot())
    wm = _line(text, "world_model.loss")
    spark = re.search(f"[{SPARK}]+", wm.split("world_model.loss", 1)[1]).group()
    assert len(spark) == 10 and spark[0] == "█" and spark[-1] == "▁"  # falling loss, one mark per step
    agent = _line(text, "agent.loss")
    assert re.search(f"█[{SPARK}]▁ 0.1667", agent)
    assert "16 · set c00000-wm-0-v0005 16/16" in _line(text, "dreams made")
    rewards = _line(text, "rewards")
    assert "0.4" in rewards and "mean 0.35" in rewards
    assert "short_zoom_in 0.4" in text and "jump_up 0.35" in text
    assert "world_models/wm-0 v5 · loss 0.2" in text and "agents/agent-node-a v3 · loss 0.1667" in text
    assert "7.0 MiB" in _line(text, "disk") and "11" in _line(text, "frames stored")
    assert "world_models/wm-0: held by node-a (token 7)" in _line(text, "locks")


def test_view_shows_coverage_map_and_camera_position():
    _, status = _loop_status()
    snap = status.snapshot()
    text = _text(snap)
    assert "pan 302.0° tilt 60.0° zoom 1.00×" in _line(text, "camera")
    top = text.index("coverage (tilt × pan)")
    lines = text[top:].splitlines()
    grid = [line for line in lines[1:12]]
    assert "90°" in grid[0] and "-20°" in grid[-1]
    assert "0°" in lines[12] and "180°" in lines[12] and "360°" in lines[12]
    # two characters per pan bin on a wide terminal: eight capture bins seen once (light), and
    # the bin where navigation took three frames, which is where the camera is now
    cells = [line[line.index("│") + 7 : line.rindex("│")] for line in grid]
    shaded = [re.findall(r"(░░|▒▒|▓▓|██)", line) for line in cells]
    assert sum(len(found) for found in shaded) == 8 and {m for f in shaded for m in f} == {"░░"}
    row, col = snap["ptz_cell"]
    assert snap["coverage"][row][col] == 3
    assert cells[row][2 * col : 2 * col + 2] == "[]"


def test_view_fits_a_narrow_terminal():
    _, status = _loop_status()
    for width in (90, 120, 160):
        text = _text(status.snapshot(), width=width)
        assert max(len(line) for line in text.splitlines()) <= width
        for needle in ("navigate ", "world_model.loss", "3/8 moves", "coverage (tilt × pan)", "dreams made"):
            assert needle in text, (width, needle)


def test_status_follows_cycles_and_the_end_of_a_run():
    events, status = _loop_status()
    events.emit("transition", source="navigate", outcome="done", dest="train_world_model", cycle=1)
    snap = status.snapshot()
    assert snap["cycle"] == 1 and snap["state"] == "train_world_model"
    assert snap["progress"] == {}  # the bars are the new cycle's
    events.emit("run_finished", reason="cycles", state="train_world_model", cycle=1)
    snap = status.snapshot()
    assert snap["finished"] == "cycles"
    assert "finished: cycles" in _text(snap)

    again = NodeStatus()
    again.restore(snap)
    carried = again.snapshot()
    assert carried["dreams"] == {"made": 16, "set": "c00000-wm-0-v0005", "done": 16, "total": 16}
    assert carried["recent_rewards"][-1] == ["short_zoom_in", snap["recent_rewards"][-1][1]]
    assert carried["series"]["agent.loss"] == snap["series"]["agent.loss"]


def test_machine_rows_follow_done_from_the_initial_state():
    assert load_machine("lifelong").main_path() == (LOOP + ["evaluate"], "train_world_model")
    assert load_machine("lifelong_stored").main_path() == (LOOP[1:] + ["evaluate"], "train_world_model")
    assert load_machine("capture").main_path() == (["capture", "finished"], "")
    assert load_machine("agent_train").main_path() == (["train_agent", "finished"], "")
