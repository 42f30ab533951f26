"""The machine runner as users meet it: a real `cli.py run` process on a data folder, for the two
ways a run could spin or silently do nothing (a loop without progress, a change of machine)."""

from __future__ import annotations

from pathlib import Path

from ptzjepa.storage.frames import FrameStore
from ptzjepa.storage.store import Store
from tests.lifelong_helpers import ONE_THREAD, run_command, run_to_end


def test_a_precondition_loop_ends_stuck_with_exit_1(tmp_path: Path) -> None:
    """One frame is too few to train on, and capture's plan for the cycle is already done: the run
    must end in `stuck` with a warning, not ping-pong between the two states forever."""
    cmd = run_command(tmp_path / "d", "capture.iterations=1", "capture.movements=0", machine="world_model_train")
    out = run_to_end(cmd, timeout=120, env=ONE_THREAD)
    assert out.returncode == 1, out.stderr[-2000:]
    logs = out.stdout + out.stderr
    assert "train_world_model: 1 frame stored, needs at least 2" in logs
    assert "a loop that makes no progress" in logs and "reason=stuck" in logs
    assert logs.count("event=state_entered state=capture") == 3  # the machine's max_visits


def test_a_single_mode_after_lifelong_runs_in_a_new_cycle(tmp_path: Path) -> None:
    """env_interaction after a finished lifelong run must drive the camera again (a new cycle), not
    find the last cycle's navigate plan complete, nor overwrite the last cycle's frames."""
    data = tmp_path / "d"
    first = run_to_end(run_command(data, cycles=1), env=ONE_THREAD)
    assert first.returncode == 0, first.stderr[-2000:]
    frames = FrameStore(Store(str(data)))
    before = {fid: frames.record(fid).time for fid in frames.ids()}
    second = run_to_end(run_command(data, machine="env_interaction", cycles=3), env=ONE_THREAD)
    assert second.returncode == 0, second.stderr[-2000:]
    after = {fid: frames.record(fid).time for fid in frames.ids()}
    new = sorted(set(after) - set(before))
    assert new and all(fid.startswith("c00002_navigate_") for fid in new), new
    assert all(after[fid] == before[fid] for fid in before)  # nothing rewritten
