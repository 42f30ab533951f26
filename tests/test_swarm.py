"""`cli.py swarm` end to end: real node processes, a real redis-server, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptzjepa.distributed.swarm import SwarmError, SwarmPlan, node_overrides, parse_node_sets
from ptzjepa.distributed.swarm_view import model_cell
from ptzjepa.view.events import Event
from ptzjepa.view.status import NodeStatus
from tests.conftest import REPO

ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Short tiny cycles: one world-model and one agent epoch, so two nodes on two busy cores finish soon.
QUICK = ["--set", "world_model.epochs=1", "--set", "agent.epochs=1"]


def swarm_cmd(data: Path, nodes: int, *extra: str) -> list[str]:
    return [sys.executable, "cli.py", "swarm", "--sim", "--nodes", str(nodes), "--profile", "tiny", "--cycles", "1",
            "--data", str(data), "--no-view", *QUICK, *extra]


def machine_state(folder: Path) -> dict:
    return json.loads((folder / "state" / "machine.json").read_text())


def redis_port(stdout: str) -> int:
    """The port the swarm's redis-server listened on, from the final table's title."""
    found = re.search(r"redis://127\.0\.0\.1:(\d+)", stdout)
    assert found, f"no redis URL in the swarm's output:\n{stdout}"
    return int(found.group(1))


def test_node_sets_name_a_node_and_a_setting():
    assert parse_node_sets(["0:capture.iterations=20", "1:run.threads=1", "0:sim.seed=7"], 2) == {
        0: ["capture.iterations=20", "sim.seed=7"], 1: ["run.threads=1"]}
    for bad in ("capture.iterations=20", "x:a=1", "0:novalue", "2:a=1"):
        with pytest.raises(SwarmError, match="--node-set"):
            parse_node_sets([bad], 2)


def test_each_node_gets_its_folder_scene_name_and_own_settings_last(tmp_path: Path):
    plan = SwarmPlan(nodes=2, profile="tiny", cycles=1, data=tmp_path, sets=["capture.iterations=3"],
                     node_sets={1: ["capture.iterations=9"]})
    one = node_overrides(plan, 1, "redis://127.0.0.1:1/0")
    assert f"storage.data={tmp_path / 'node-1'}" in one and "run.node=node-1" in one and "sim.seed=1" in one
    assert one[-2:] == ["capture.iterations=3", "capture.iterations=9"]  # the node's own setting wins


def test_the_view_shows_the_model_held_or_who_holds_what_is_waited_for():
    held = {"state": "train_world_model", "locks": {"world_models/wm-0": "held by node-1 (token 4)"}}
    assert model_cell(held, "node-1") == "wm-0 (token 4)"
    waiting = {"state": "waiting_for_lock", "locks": {"world_models/wm-0": "held by node-2"}}
    assert model_cell(waiting, "node-1") == "waiting: wm-0←node-2"
    down = {"state": "waiting_for_lock", "locks": {"lock service": "redis at 127.0.0.1:9 unreachable: refused; retrying"}}
    assert model_cell(down, "node-1").startswith("waiting: redis at 127.0.0.1:9 unreachable")


def test_status_records_lease_latency_and_lock_waits():
    status = NodeStatus()
    status(Event("lease", 10.0, {"resource": "world_models/wm-0", "token": 1, "acquire_s": 0.002}))
    status(Event("state_left", 20.0, {"state": "train_world_model", "outcome": "locked", "seconds": 1.0}))
    status(Event("state_left", 23.0, {"state": "waiting_for_lock", "outcome": "free", "seconds": 3.0}))
    status(Event("state_left", 23.5, {"state": "train_world_model", "outcome": "locked", "seconds": 0.1}))
    status(Event("lease", 26.0, {"resource": "world_models/wm-0", "token": 3, "acquire_s": 0.004}))
    leases = status.snapshot()["leases"]
    assert leases == {"taken": 2, "acquire_s": [0.002, 0.004], "lock_wait_s": [0.0, 6.0]}


def test_swarm_runs_nodes_stops_on_ctrl_c_and_the_same_command_resumes(tmp_path: Path):
    data = tmp_path / "swarm"
    proc = subprocess.Popen(swarm_cmd(data, 2), cwd=REPO, env=ONE_THREAD, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    logs = [data / "logs" / f"node-{i}.log" for i in range(2)]
    while time.monotonic() < deadline and not all(
            p.exists() and "state_entered state=train_world_model" in p.read_text() for p in logs):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C at the terminal sends the swarm
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, f"{out}\n{err}"
    for i, log in enumerate(logs):
        assert "reason=stopped" in log.read_text(), f"node-{i} did not stop cleanly:\n{log.read_text()[-2000:]}"
    with pytest.raises(OSError):  # the swarm's redis-server is stopped too
        socket.create_connection(("127.0.0.1", redis_port(out)), timeout=1).close()

    again = subprocess.run(swarm_cmd(data, 2), cwd=REPO, env=ONE_THREAD, capture_output=True, text=True, timeout=150)
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    for i, log in enumerate(logs):
        text = log.read_text()
        assert "resumed=True" in text, f"node-{i} started afresh"
        assert machine_state(data / f"node-{i}")["cycle"] >= 1
        snap = json.loads((data / f"node-{i}" / "state" / "status.json").read_text())
        assert snap["leases"]["taken"] >= 1 and snap["frames_stored"] > 0
    assert "node-0" in again.stdout and "exit 0" in again.stdout  # the final table
    assert (data / "redis" / "appendonlydir").is_dir()  # the fencing counters outlive the server


def test_bad_swarm_arguments_are_one_line_and_exit_2(tmp_path: Path):
    bad = subprocess.run(swarm_cmd(tmp_path / "s", 2, "--node-set", "5:capture.iterations=2"), cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--node-set" in bad.stderr
    wrong_key = subprocess.run(swarm_cmd(tmp_path / "t", 2, "--node-set", "1:capture.iterationz=2"), cwd=REPO,
                               capture_output=True, text=True, timeout=60)
    assert wrong_key.returncode == 2 and "iterationz" in wrong_key.stderr, wrong_key.stderr
    assert not (tmp_path / "t" / "logs").exists()  # no node was started
