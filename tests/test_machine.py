import uuid

import pytest

from ptzjepa import stages as registry
from ptzjepa.config.loading import load_config
from ptzjepa.node.context import Node
from ptzjepa.run.machine import MACHINE_STATE_FILE, MACHINES_DIR, MachineError, Runner, load_machine, mermaid
from ptzjepa.storage.store import Store

LOOP = """
name: loop
initial: a
states:
  - {name: a, stage: t_a}
  - {name: b, stage: t_b}
  - {name: failed, final: true}
transitions:
  - {trigger: done, source: a, dest: b}
  - {trigger: again, source: b, dest: a, cycle: true}
  - {trigger: failed, source: "*", dest: failed}
"""

calls: list[str] = []


def stage_a(node):
    calls.append("a")
    return "done"


def stage_b(node):
    calls.append("b")
    return "again" if len(calls) < 100 else "failed"


def stage_odd(node):
    return "surprise"


@pytest.fixture
def loop_file(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.STAGES, "t_a", f"{__name__}:stage_a")
    monkeypatch.setitem(registry.STAGES, "t_b", f"{__name__}:stage_b")
    calls.clear()
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP)
    return str(path)


def make_node():
    return Node(config=load_config("tiny"), store=Store(f"memory://m-{uuid.uuid4().hex}"))


def test_outcomes_drive_transitions_and_cycles(loop_file):
    node = make_node()
    runner = Runner(load_machine(loop_file), node)
    assert runner.run(cycles=2) == "cycles"
    assert calls == ["a", "b", "a", "b"]
    assert node.cycle == 2
    assert node.store.read_json(MACHINE_STATE_FILE)["state"] == "a"


def test_resume_continues_in_saved_state(loop_file):
    node = make_node()
    node.store.write_json(MACHINE_STATE_FILE, {"machine": "loop", "state": "b", "cycle": 3})
    runner = Runner(load_machine(loop_file), node)
    assert runner.resumed and runner.state == "b" and node.cycle == 3
    runner.run(cycles=4)
    assert calls == ["b"] and node.cycle == 4


def test_unrouted_outcome_is_a_clear_error(loop_file, monkeypatch):
    monkeypatch.setitem(registry.STAGES, "t_a", f"{__name__}:stage_odd")
    with pytest.raises(MachineError, match="state 'a' ended with 'surprise', which no transition routes"):
        Runner(load_machine(loop_file), make_node()).run()


def test_stop_request_ends_between_steps(loop_file):
    node = make_node()
    node.stop.set()
    assert Runner(load_machine(loop_file), node).run() == "stopped"
    assert calls == []


def test_unbuilt_stage_is_refused_at_load(loop_file, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(LOOP.replace("t_b", "not_a_stage"))
    with pytest.raises(MachineError, match="runs stage 'not_a_stage', which is not built yet"):
        load_machine(str(path))


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\ninitial: q\nstates: [{name: a, stage: capture}]\ntransitions: []\n", "initial state 'q'"),
        ("name: x\ninitial: a\nstates: [{name: a, stage: capture}]\ntransitions: [{trigger: done, source: a, dest: z}]\n", "to unknown state 'z'"),
        ("name: x\ninitial: a\nstates: [{name: a, stage: capture, colour: red}]\ntransitions: []\n", r"unknown key 'states\[0\]\.colour'"),
        ("name: x\ninitial: a\nstates: [{name: a}]\ntransitions: []\n", "needs a stage or final: true"),
    ],
)
def test_bad_machine_files(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(MachineError, match=message):
        load_machine(str(path))


def test_shipped_machines_parse_and_draw():
    for name in ("capture", "lifelong"):
        spec = load_machine(name, check_stages=False)
        text = mermaid(spec)
        assert "stateDiagram" in text and f"[*] --> {spec.initial}" in text


BOUNCE = """
name: bounce
initial: a
max_visits: 3
states:
  - {name: a, stage: t_a}
  - {name: b, stage: t_back, max_visits: 5}
  - {name: stuck, final: true, exit_code: 1}
transitions:
  - {trigger: done, source: a, dest: b}
  - {trigger: back, source: b, dest: a}
"""


def stage_back(node):
    calls.append("b")
    if len(calls) > 50:  # without the guard the test fails here instead of hanging
        raise RuntimeError("the loop guard never fired")
    return "back"


@pytest.fixture
def bounce_file(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.STAGES, "t_a", f"{__name__}:stage_a")
    monkeypatch.setitem(registry.STAGES, "t_back", f"{__name__}:stage_back")
    calls.clear()

    def write(routed: bool) -> str:
        path = tmp_path / "bounce.yaml"
        stuck = '  - {trigger: stuck, source: "*", dest: stuck}\n' if routed else ""
        path.write_text(BOUNCE + stuck)
        return str(path)

    return write


def test_a_loop_without_progress_ends_stuck_after_max_visits(bounce_file):
    node = make_node()
    warnings = []
    node.events.subscribe(lambda e: warnings.append(e.data["message"]) if e.kind == "warning" else None)
    assert Runner(load_machine(bounce_file(routed=True)), node).run() == "stuck"
    assert calls == ["a", "b"] * 3  # a's limit (the machine's 3) is hit first; b's own limit is 5
    assert len(warnings) == 1
    assert "state 'a' entered more than 3 times in cycle 0" in warnings[0] and "b:back" in warnings[0]
    assert node.store.read_json(MACHINE_STATE_FILE)["state"] == "stuck"


def test_an_unrouted_stuck_is_a_clear_error(bounce_file):
    with pytest.raises(MachineError, match="no transition routes 'stuck'"):
        Runner(load_machine(bounce_file(routed=False)), make_node()).run()


def test_visits_count_per_cycle(loop_file):
    """The loop machine enters each state once per cycle: many cycles never trip the guard."""
    node = make_node()
    assert Runner(load_machine(loop_file), node).run(cycles=6) == "cycles"
    assert calls == ["a", "b"] * 6


def test_another_machine_goes_on_in_a_new_cycle_and_counts_its_own_cycles(loop_file):
    """Frame ids and stage progress are per cycle: a machine switch must not reuse a cycle number,
    and --cycles N then means N cycles of this machine, also when it resumes."""
    node = make_node()
    node.store.write_json(MACHINE_STATE_FILE, {"machine": "capture", "state": "finished", "cycle": 2})
    runner = Runner(load_machine(loop_file), node)
    assert runner.state == "a" and node.cycle == 3 and runner.resumed
    assert runner.run(cycles=1) == "cycles" and calls == ["a", "b"] and node.cycle == 4
    assert node.store.read_json(MACHINE_STATE_FILE)["first_cycle"] == 3
    calls.clear()
    assert Runner(load_machine(loop_file), node).run(cycles=2) == "cycles"
    assert calls == ["a", "b"] and node.cycle == 5


def test_every_shipped_loop_routes_stuck():
    for spec in (load_machine(p.stem, check_stages=False) for p in MACHINES_DIR.glob("*.yaml")):
        names = [s.name for s in spec.states if not s.final]
        may_loop = any(t.dest in names and t.trigger != "done" for t in spec.transitions)
        routed = any(t.trigger == "stuck" for t in spec.transitions)
        assert routed or not may_loop, f"machine {spec.name} can loop but does not route 'stuck'"
