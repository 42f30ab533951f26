"""`cli.py machines` and `cli.py status` as a person runs them: separate processes, exit codes, and
what they leave on disk (status only reads)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ptzjepa.run.machine import MACHINES_DIR, load_machine
from ptzjepa.storage.store import Store
from ptzjepa.view.status import STATUS_FILE
from tests.conftest import REPO


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_machines_list_names_every_machine_file():
    done = cli("machines", "list")
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    files = sorted(p.stem for p in MACHINES_DIR.glob("*.yaml"))
    assert files and listed == files
    for name in files:  # each with its description, so the list says what each one does
        line = next(line for line in done.stdout.splitlines() if line.split()[0] == name)
        assert line.split(maxsplit=1)[1].strip() == load_machine(name, check_stages=False).description


def test_machines_draw_prints_mermaid_with_states_and_transitions():
    done = cli("machines", "draw", "lifelong")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    spec = load_machine("lifelong", check_stages=False)
    assert "stateDiagram" in text
    for state in spec.state_names:
        assert re.search(rf'^\s*state "{state}" as {state}\s*$', text, re.M), state
    assert re.search(rf"^\s*\[\*\] --> {spec.initial}\s*$", text, re.M)
    edges = re.findall(r"^\s*(\w+) --> (\w+): (\S.*)$", text, re.M)
    assert edges and all(a in spec.state_names and b in spec.state_names for a, b, _ in edges)
    first = spec.transition_dicts()[0]
    assert any(a == first["source"] and b == first["dest"] and first["trigger"] in t.split(" | ")
               for a, b, t in edges), (first, edges)


def test_machines_draw_of_an_unknown_machine_is_one_line_and_exit_2():
    done = cli("machines", "draw", "no_such_machine")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: machine 'no_such_machine': no such machine"), lines
    assert "lifelong" in lines[0] and done.stdout == ""


def test_status_of_a_missing_folder_says_so_and_creates_nothing(tmp_path: Path):
    missing = tmp_path / "not" / "there"
    done = cli("status", "--data", str(missing))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --data {missing}: no data folder there (no ptzjepa run has stored anything here)"]
    assert not (tmp_path / "not").exists()


def test_status_of_an_empty_folder_and_of_a_node(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = cli("status", "--data", str(empty))
    assert done.returncode == 2 and done.stderr.startswith("error: --data ")
    assert "no ptzjepa run has stored anything here" in done.stderr
    assert list(empty.iterdir()) == []

    node = tmp_path / "node"
    Store(str(node)).write_json(STATUS_FILE, {"machine": "lifelong", "state": "dream", "cycle": 3})
    before = sorted(p.relative_to(node) for p in node.rglob("*"))
    done = cli("status", "--data", str(node), "--json")
    assert done.returncode == 0, done.stderr
    assert '"state": "dream"' in done.stdout and '"cycle": 3' in done.stdout
    assert sorted(p.relative_to(node) for p in node.rglob("*")) == before  # read only


_HOLDER = """
import sys, time
from ptzjepa.storage.runlock import RunLock
from ptzjepa.storage.store import Store
from ptzjepa.view.status import STATUS_FILE

store = Store(sys.argv[1])
lock = RunLock(store)
lock.acquire()
store.write_json("state/config.json", {"locks": {"kind": sys.argv[2], "lease_s": 600.0}})
store.write_json(STATUS_FILE, {"machine": "lifelong", "state": "train_world_model", "cycle": 0,
                               "run_seconds": 24.0, "updated": time.time() - 30,
                               "locks": {"world_models/wm-0": "held by vm (token 1)"}})
print("ready", flush=True)
time.sleep(120)
"""


def _status(node: Path, capsys, as_json: bool = True):
    """`cli.py status` in this process (its output is what the command prints)."""
    import json

    from ptzjepa.run import app

    assert app.status(str(node), as_json) == 0
    out = capsys.readouterr().out
    return json.loads(out) if as_json else out


def _status_of_a_run_then_killed(tmp_path: Path, capsys, lock_kind: str) -> tuple[dict, dict, str]:
    import signal

    node = tmp_path / "node"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(node), lock_kind], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        live = _status(node, capsys)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    dead = _status(node, capsys)
    text = _status(node, capsys, as_json=False)
    return live, dead, text


def test_status_tells_a_live_run_from_a_killed_one(tmp_path: Path, capsys):
    """The run lock says which: a SIGKILLed run's OS lock is gone, so `status` says it is not
    running and when it was last seen, and shows the model leases it held as expired."""
    live, dead, text = _status_of_a_run_then_killed(tmp_path, capsys, "local")
    assert live["run"]["alive"] is True and live["locks"] == {"world_models/wm-0": "held by vm (token 1)"}
    assert dead["run"]["alive"] is False and dead["run"]["last_seen"] == live["run"]["last_seen"]
    assert dead["locks"]["world_models/wm-0"].startswith("expired: held by vm (token 1)")
    assert "running 0:24" not in text
    assert re.search(r"train_world_model · not running, last seen 0:\d\d ago \(([\d-]+ )?\d\d:\d\d:\d\d UTC\)",
                     text), text
    assert "expired: held by vm" in text


def test_status_shows_a_dead_runs_redis_lease_as_stale_until_it_runs_out(tmp_path: Path, capsys):
    _, dead, _ = _status_of_a_run_then_killed(tmp_path, capsys, "redis")
    assert dead["run"]["alive"] is False
    assert re.match(r"stale: held by vm \(token 1\), by a run that is not running; expires by \d{4}-",
                    dead["locks"]["world_models/wm-0"])


def test_every_readme_command_line_can_be_copied_as_written():
    """Each `python cli.py ...` line of the README parses as it stands (no `a | b` alternatives,
    no `[optional]` brackets)."""
    import shlex

    from cli import _parser

    lines = [line.split("#")[0].strip() for line in (REPO / "README.md").read_text().splitlines()]
    commands = [shlex.split(line)[2:] for line in lines if line.startswith("python cli.py ")]
    assert len(commands) >= 5
    for argv in commands:
        if argv[0] == "legacy":
            continue
        try:
            _parser().parse_args(argv)
        except SystemExit:
            raise AssertionError(f"README: python cli.py {' '.join(argv)} does not parse") from None
