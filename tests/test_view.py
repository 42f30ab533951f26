import json
import subprocess
import sys
import uuid

from rich.console import Console

from ptzjepa.storage.store import Store
from ptzjepa.view.events import Events
from ptzjepa.view.live import CoverageMap, render, sparkline
from ptzjepa.view.status import NodeStatus, StatusWriter, STATUS_FILE
from tests.conftest import REPO


def _fed_status():
    events = Events()
    status = NodeStatus(machine_states=["capture", "train_world_model", "dream"])
    events.subscribe(status)
    events.emit("run_started", machine="lifelong", states=["capture", "train_world_model", "dream"],
                state="capture", cycle=3, data="runs/x", frames=0)
    events.emit("state_entered", state="train_world_model", cycle=3)
    for i in range(5):
        events.emit("frame_stored", id=f"f{i}", pan=10.0 * i, tilt=5.0, zoom=1.0, stage="capture", count=i + 1)
    for i, loss in enumerate([1.0, 0.8, 0.5, 0.4]):
        events.emit("metric", stage="world_model", name="loss", value=loss, step=i)
    events.emit("progress", stage="train_world_model", done=2, total=5, unit="epochs")
    events.emit("model_saved", kind="world_models", name="wm-0", version=4, path="x")
    return events, status


def test_view_shows_state_cycle_and_coverage():
    _, status = _fed_status()
    console = Console(record=True, width=140, color_system=None)
    console.print(render(status.snapshot()))
    text = console.export_text()
    assert " train_world_model " in text and "cycle" in text and "3" in text
    assert "coverage (tilt × pan)" in text
    assert "frames stored" in text and "5" in text
    assert "world_model.loss" in text and "epochs" in text and "wm-0 v4" in text
    assert "pan 40.0°" in text


def test_coverage_map_marks_where_frames_were_taken():
    _, status = _fed_status()
    grid = CoverageMap(status.snapshot()["coverage"], None, None)
    console = Console(record=True, width=grid.width(1), color_system=None)  # one character a cell
    console.print(grid)
    rows = [line[5:] for line in console.export_text().splitlines()[:-1]]  # past the tilt labels
    marked = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch != " "]
    assert len(marked) == 5 and {c for _, c in marked} == {0, 1, 2, 3, 4}
    assert len({r for r, _ in marked}) == 1  # same tilt, one row


def test_sparkline_spans_low_to_high():
    assert sparkline([0, 1, 2, 3]) == "▁▃▅█"
    assert sparkline([]) == ""


def test_status_command_prints_the_stored_snapshot(tmp_path):
    events, status = _fed_status()
    store = Store(str(tmp_path))
    writer = StatusWriter(status, store)
    events.subscribe(writer)
    events.emit("state_entered", state="dream", cycle=3)
    store.write_json("state/machine.json", {"machine": "lifelong", "state": "dream", "cycle": 3})
    out = subprocess.run([sys.executable, "cli.py", "status", "--data", str(tmp_path), "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    snap = json.loads(out.stdout)
    assert snap["state"] == "dream" and snap["cycle"] == 3 and snap["series"]["world_model.loss"][-1] == 0.4
    plain = subprocess.run([sys.executable, "cli.py", "status", "--data", str(tmp_path)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and " dream " in plain.stdout
    missing = subprocess.run([sys.executable, "cli.py", "status", "--data", str(tmp_path / "nothing")],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no ptzjepa run" in missing.stderr


def _screen(snap, width=80, height=24):
    console = Console(record=True, width=width, height=height, color_system=None)
    console.print(render(snap, fit_height=True))
    return console.export_text().rstrip("\n").splitlines()


def test_live_view_fits_80_by_24_without_ellipsis_and_with_the_loop_on_the_row():
    """An 80×24 terminal: nothing cut with '...', the loop mark never wraps onto a line of its own
    (where it read like the current state), and the state is named once, lit, and in the summary."""
    from tests.test_view_loop import _loop_status

    events, status = _loop_status()
    for state in ("train_world_model", "navigate"):
        events.emit("state_entered", state=state, cycle=0)
        for i in range(4):
            events.emit("warning", message=f"frame {i} could not be read; skipped")
        lines = _screen(status.snapshot())
        assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
        assert not any("..." in line or "…" in line for line in lines), "\n".join(lines)
        row = [line for line in lines if "capture →" in line]
        assert len(row) == 1 and "↻" in row[0] and f" {state} " in row[0], "\n".join(lines)
        bare = {"capture", "train_world_model", "dream", "train_agent", "navigate", "↻ train_world_model"}
        assert not any(line.strip("│ ") in bare for line in lines)
        assert any(f"cycle 0 · {state} for" in line for line in lines)
        assert any("world_model.loss" in line for line in lines)


def test_a_narrow_row_wraps_between_states_with_the_arrow_leading():
    from tests.test_view_loop import _loop_status

    _, status = _loop_status()
    lines = _screen(status.snapshot(), width=50, height=60)
    top = lines[1 : lines.index(next(line for line in lines if "cycle 0 ·" in line))]
    assert len(top) >= 2 and all(line.strip("│ ").startswith("→") for line in top[1:] if "also:" not in line)
    assert not any("..." in line for line in lines)


def test_status_prints_the_full_picture_whatever_the_height():
    from tests.test_view_loop import _loop_status

    _, status = _loop_status()
    console = Console(record=True, width=80, height=24, color_system=None)
    console.print(render(status.snapshot()))
    assert "coverage (tilt × pan)" in console.export_text()
