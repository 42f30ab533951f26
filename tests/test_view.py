import json
import subprocess
import sys
import uuid

from rich.console import Console

from ptzjepa.events import Events
from ptzjepa.status import NodeStatus, StatusWriter, STATUS_FILE
from ptzjepa.store import Store
from ptzjepa.view import coverage_map, render, sparkline
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
    rows = coverage_map(status.snapshot()["coverage"]).plain.splitlines()
    marked = [(r, c) for r, row in enumerate(rows[:-1]) for c, ch in enumerate(row) if ch != " "]
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
