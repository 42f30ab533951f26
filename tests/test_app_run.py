"""What `cli.py run` sets up around the machine (ptzjepa/run/app.py), each case in a process of its own:
torch's thread counts are process-wide, its inter-op pool can be sized only once, and a run
replaces the logging handlers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ptzjepa.config.loading import load_config
from ptzjepa.run import app
from tests.conftest import REPO

# A whole run through app.run: the lifelong machine for zero cycles, so no stage runs. The view's
# console writes to a string and is no terminal, so rich's Live writes only its last frame there.
_PROGRAM = """
import io, sys
import torch
from rich.console import Console
from ptzjepa.config.loading import load_config
from ptzjepa.run import app
threads, data, view = sys.argv[1], sys.argv[2], sys.argv[3] == "view"
screen = io.StringIO()
app.Console = lambda **_: Console(file=screen, width=160, color_system=None)
config = load_config("tiny", [f"run.threads={threads}", f"storage.data={data}"])
code = app.run(config, "lifelong", cycles=0, view=view, debug=False)
print(screen.getvalue())
print(code, torch.get_num_threads(), torch.get_num_interop_threads())
"""


def _run(data: Path, threads: int = 0, view: bool = False) -> tuple[str, int, int]:
    """The run's screen, and torch's intra-op and inter-op threads after it."""
    # torch's own intra-op default is pinned to 2 through the environment, so that 0 can fail too
    # (its inter-op default follows the cores, whatever the environment says).
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", _PROGRAM, str(threads), str(data), "view" if view else "no"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    screen, _, last = done.stdout.rstrip().rpartition("\n")
    code, intra, interop = (int(n) for n in last.split())
    assert code == 0
    return screen, intra, interop


def test_run_threads_sets_both_of_torchs_thread_pools(tmp_path):
    assert _run(tmp_path / "run", threads=3)[1:] == (3, 3)


def test_run_threads_zero_leaves_torchs_default(tmp_path):
    assert _run(tmp_path / "run", threads=0)[1] == 2


def test_tiny_profile_runs_on_one_thread():
    assert load_config("tiny").run.threads == 1 and load_config("sim").run.threads == 0


def test_the_views_last_frame_shows_the_finish_and_status_keeps_it(tmp_path, capsys):
    data = tmp_path / "run"
    screen, _, _ = _run(data, view=True)
    assert "event=run_finished reason=cycles" in screen  # the log line, drawn above the view
    last_frame = screen.rpartition("event=run_finished")[2]
    assert "finished: cycles" in last_frame, screen[-3000:]
    assert app.status(str(data), as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["finished"] == "cycles"
