"""The node's loop as data: machines/<name>.yaml loaded into a `transitions` Machine and run.

Each state names the stage it runs; the stage returns an outcome word, which is the trigger. The
current state and cycle are stored after every transition, so a killed run restarted on the same
data resumes in the state it was in (stages keep their own progress to resume inside a state).
"""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import cattrs
import yaml
from transitions import Machine

from ptzjepa import stages as stage_registry
from ptzjepa.errors import describe_structure_error
from ptzjepa.node import retention
from ptzjepa.storage.damage import Damaged, is_int, move_aside, read_json_checked, require
from ptzjepa.storage.store import StoreError

if TYPE_CHECKING:
    from ptzjepa.node.context import Node

MACHINES_DIR = Path(__file__).resolve().parents[2] / "machines"
MACHINE_STATE_FILE = "state/machine.json"


class MachineError(RuntimeError):
    """A machine file is wrong, or a stage returned an outcome the machine does not route."""


@attrs.frozen
class StateSpec:
    name: str
    stage: str = ""  # '' for a final state
    final: bool = False
    exit_code: int = 0  # for a final state: what the process exits with when the run ends there
    description: str = ""
    max_visits: int = attrs.field(default=0, validator=attrs.validators.ge(0))  # per cycle; 0: the machine's


@attrs.frozen
class TransitionSpec:
    trigger: str
    source: str | list[str]
    dest: str
    cycle: bool = False  # taking this transition completes one cycle of the loop

    def sources(self, all_states: list[str]) -> list[str]:
        if self.source == "*":
            return all_states
        return [self.source] if isinstance(self.source, str) else list(self.source)


@attrs.frozen
class MachineSpec:
    name: str
    initial: str
    states: list[StateSpec]
    transitions: list[TransitionSpec]
    description: str = ""
    # A state entered more often than this in one cycle is a loop that makes no progress (say
    # train_world_model -> no_data -> capture -> done, with capture's plan already complete): the
    # runner then fires `stuck` instead of running the stage again.
    max_visits: int = attrs.field(default=3, validator=attrs.validators.ge(1))

    def visit_limit(self, name: str) -> int:
        return self.state(name).max_visits or self.max_visits

    def state(self, name: str) -> StateSpec:
        for state in self.states:
            if state.name == name:
                return state
        raise MachineError(f"machine {self.name}: no state {name!r}")

    @property
    def state_names(self) -> list[str]:
        return [s.name for s in self.states]

    def main_path(self) -> tuple[list[str], str]:
        """The states that `done` leads through from the initial one, for drawing the machine as a
        row, and the state the row loops back to ('' when it ends in a final state instead)."""
        names = self.state_names
        path, here = [self.initial], self.initial
        while not self.state(here).final:
            dest = next((t.dest for t in self.transitions if t.trigger == "done" and here in t.sources(names)), None)
            if dest is None:
                break
            if dest in path:
                return path, dest
            path.append(dest)
            here = dest
        return path, ""

    def transition_dicts(self) -> list[dict[str, Any]]:
        names = [s.name for s in self.states if not s.final]
        out = []
        for t in self.transitions:
            for source in t.sources(names):
                item: dict[str, Any] = {"trigger": t.trigger, "source": source, "dest": t.dest}
                if t.cycle:
                    item["after"] = "next_cycle"
                out.append(item)
        return out


_conv = cattrs.Converter(forbid_extra_keys=True)


def _structure_source(value: Any, _type: Any) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"expected a state name, a list of names or '*', got {value!r}")


_conv.register_structure_hook(str | list[str], _structure_source)


def machine_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    return path if path.suffix in {".yaml", ".yml"} else MACHINES_DIR / f"{name_or_path}.yaml"


def list_machines() -> list[MachineSpec]:
    return [load_machine(str(p), check_stages=False) for p in sorted(MACHINES_DIR.glob("*.yaml"))]


def load_machine(name_or_path: str, check_stages: bool = True) -> MachineSpec:
    """Read and check a machine file; with check_stages, refuse stages that are not built."""
    path = machine_path(name_or_path)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MACHINES_DIR.glob("*.yaml")))
        raise MachineError(f"machine {name_or_path!r}: no such machine (known: {known})")
    try:
        raw = yaml.safe_load(path.read_text())
        spec = _conv.structure(raw, MachineSpec)
    except yaml.YAMLError:
        raise MachineError(f"machine file {path}: not valid YAML") from None
    except cattrs.ForbiddenExtraKeysError as exc:
        raise MachineError(f"machine file {path}: unknown key {sorted(exc.extra_fields)[0]!r}") from None
    except BaseExceptionGroup as exc:
        raise MachineError(describe_structure_error(exc, f"machine file {path}")) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise MachineError(f"machine file {path}: not a machine file ({exc})") from None
    _check(spec, path, check_stages)
    return spec


def _check(spec: MachineSpec, path: Path, check_stages: bool) -> None:
    names = spec.state_names
    if len(set(names)) != len(names):
        raise MachineError(f"machine file {path}: a state name is used twice")
    if spec.initial not in names:
        raise MachineError(f"machine file {path}: initial state {spec.initial!r} is not declared")
    for state in spec.states:
        if not state.final and not state.stage:
            raise MachineError(f"machine file {path}: state {state.name!r} needs a stage or final: true")
        if check_stages and state.stage and state.stage not in stage_registry.STAGES:
            built = ", ".join(sorted(stage_registry.STAGES))
            raise MachineError(
                f"machine {spec.name}: state {state.name!r} runs stage {state.stage!r}, "
                f"which is not built yet (built stages: {built})"
            )
    for t in spec.transitions:
        for source in t.sources(names):
            if source not in names:
                raise MachineError(f"machine file {path}: transition {t.trigger!r} from unknown state {source!r}")
        if t.dest not in names:
            raise MachineError(f"machine file {path}: transition {t.trigger!r} to unknown state {t.dest!r}")


def check_saved_state(data: Any) -> None:
    """Raise unless state/machine.json's content is one (for read_json_checked)."""
    require(isinstance(data, dict), "not an object")
    require(isinstance(data.get("machine"), str) and isinstance(data.get("state"), str), "no machine and state")
    require(is_int(data.get("cycle")) and data["cycle"] >= 0, f"'cycle' is not a cycle number: {data.get('cycle')!r}")
    first = data.get("first_cycle", 0)
    require(is_int(first) and first >= 0, f"'first_cycle' is not a cycle number: {first!r}")


def rebuild_state(spec: MachineSpec, node: Node) -> dict[str, Any] | None:
    """The machine's state from what the store holds, when state/machine.json is lost: the newest
    cycle that frames, progress files, dream sets or this node's checkpoints name, counted from the oldest
    cycle a frame names; None when the store holds none of them (a new folder). The caller picks
    the state to restart that cycle at."""
    from ptzjepa.node.context import PROGRESS_DIR

    store = node.store
    cycles = [int(fid[1:6]) for fid in node.frames.record_ids() if fid[1:6].isdigit()]
    first = min(cycles, default=0)
    for name in store.list(PROGRESS_DIR, ".json"):
        saved = _json_or_none(store, f"{PROGRESS_DIR}/{name}")
        if isinstance(saved, dict) and is_int(saved.get("cycle")):
            cycles.append(saved["cycle"])
    # checkpoints count only where this node trained them: other nodes sharing the world models
    # number their own cycles
    for kind in ("world_models", "agents"):
        for name in store.list_dirs(kind):
            info = _json_or_none(store, f"{kind}/{name}/model_info.json")
            session = info.get("session") if isinstance(info, dict) else None
            if isinstance(session, dict) and session.get("node") == node.name and is_int(session.get("cycle")):
                cycles.append(session["cycle"])
    cycles += [int(s[1:6]) for s in store.list_dirs("dreams") if s[1:6].isdigit()]
    if not cycles:
        return None
    return {"machine": spec.name, "state": spec.initial, "cycle": max(cycles), "first_cycle": first}


def _json_or_none(store: Any, rel: str) -> Any:
    try:
        return store.read_json(rel, default=None)
    except StoreError:  # damaged too: the stage that reads it deals with it
        return None


def mermaid(spec: MachineSpec) -> str:
    """The machine as a Mermaid state diagram (drawn by the transitions library)."""
    from transitions.extensions import GraphMachine

    model = attrs.make_class("DrawModel", [])()
    GraphMachine(
        model=model, states=spec.state_names, transitions=spec.transition_dicts(),
        initial=spec.initial, auto_transitions=False, graph_engine="mermaid", title=spec.name,
    )
    return model.get_graph().draw(None)


class Runner:
    """Runs a machine for a node: state → stage → outcome → trigger, persisting after each step."""

    def __init__(self, spec: MachineSpec, node: Node) -> None:
        self.spec = spec
        self.node = node
        saved = self._read_saved()
        initial, node.cycle = spec.initial, 0
        self.first_cycle = 0  # where this machine's runs on the folder began: --cycles counts from it
        if saved is not None:
            same = saved["machine"] == spec.name and saved["state"] in spec.state_names
            initial, node.cycle = (saved["state"] if same else spec.initial), saved["cycle"]
            self.first_cycle = saved.get("first_cycle", 0)
            if same and spec.state(initial).final and spec.state(initial).exit_code != 0:
                # a cycle that ended in failure is not complete: the next run does it again
                initial = self.restart_state(node.cycle)
            elif not same or spec.state(initial).final:
                # A finished run, or another machine's run, goes on in a new cycle: frame ids and
                # stage progress are per cycle, so cycle numbers are never reused in one data folder.
                initial, node.cycle = spec.initial, node.cycle + 1
            if not same:
                self.first_cycle = node.cycle
        self.resumed = initial != spec.initial or node.cycle > 0
        self.state: str = initial
        self._visits: dict[str, int] = {}  # this cycle's state entries, for the loop guard
        self._visits_cycle = node.cycle
        self._recent: collections.deque[str] = collections.deque(maxlen=4)  # "state:outcome", for the message
        self.machine = Machine(
            model=self, states=spec.state_names, transitions=spec.transition_dicts(),
            initial=initial, auto_transitions=False, ignore_invalid_triggers=False,
            model_attribute="state",
        )

    def _read_saved(self) -> dict[str, Any] | None:
        """state/machine.json, checked; a damaged one is moved aside (one warning) and rebuilt
        from the store (rebuild_state)."""
        try:
            return read_json_checked(self.node.store, MACHINE_STATE_FILE, check_saved_state)
        except Damaged as exc:
            rebuilt = rebuild_state(self.spec, self.node)
            if rebuilt is not None:
                rebuilt["state"] = self.restart_state(rebuilt["cycle"], rebuilt["first_cycle"])
            instead = ("nothing stored yet, so the run starts afresh" if rebuilt is None else
                       f"rebuilt from the store: cycle {rebuilt['cycle']} restarts at {rebuilt['state']}")
            move_aside(self.node.store, MACHINE_STATE_FILE, str(exc), instead, self.node.warn)
            return rebuilt

    def restart_state(self, cycle: int, first_cycle: int | None = None) -> str:
        """Where a cycle is done again (after a failure, or with its state lost): the machine's
        first state in its first cycle, else the state its loop returns to. Each stage resumes
        from what it stored in that cycle (progress, sessions in checkpoints, dream chunks), so a
        restart redoes nothing already done."""
        first = self.first_cycle if first_cycle is None else first_cycle
        _, loop_to = self.spec.main_path()
        return self.spec.initial if cycle <= first or not loop_to else loop_to

    def next_cycle(self) -> None:
        self.node.cycle += 1

    def _over_visit_limit(self, state: str) -> bool:
        if self._visits_cycle != self.node.cycle:
            self._visits, self._visits_cycle = {}, self.node.cycle
        self._visits[state] = self._visits.get(state, 0) + 1
        return self._visits[state] > self.spec.visit_limit(state)

    def _save(self) -> None:
        self.node.store.write_json(
            MACHINE_STATE_FILE,
            {"machine": self.spec.name, "state": self.state, "cycle": self.node.cycle,
             "first_cycle": self.first_cycle, "updated": time.time()},
        )

    def run(self, cycles: int | None = None) -> str:
        """Run until a final state, a stop request, or until `cycles` cycles of this machine are
        complete in this data folder (counted from the first cycle it ran there, so the same
        command resumes to the same end)."""
        node, events = self.node, self.node.events
        path, loop_to = self.spec.main_path()
        events.emit(
            "machine", name=self.spec.name, path=path, loop_to=loop_to,
            side=[s for s in self.spec.state_names if s not in path],
            finals=[s.name for s in self.spec.states if s.final], state=self.state, cycle=node.cycle,
        )
        self._save()
        while True:
            state = self.spec.state(self.state)
            if state.final:
                return state.name
            if node.stop.is_set():
                return "stopped"
            if cycles is not None and node.cycle - self.first_cycle >= cycles:
                return "cycles"
            if self._over_visit_limit(state.name):
                limit = self.spec.visit_limit(state.name)
                message = (f"machine {self.spec.name}: state {state.name!r} entered more than {limit} times in "
                           f"cycle {node.cycle}, a loop that makes no progress (last steps: {', '.join(self._recent)})")
                if not self.may_trigger("stuck"):
                    raise MachineError(message + " (and no transition routes 'stuck')")
                events.emit("warning", message=message)
                outcome = "stuck"
            else:
                events.emit("state_entered", state=state.name, cycle=node.cycle)
                began = time.monotonic()
                outcome = stage_registry.resolve(state.stage)(node)
                retention.enforce(node)
                events.emit("state_left", state=state.name, outcome=outcome, seconds=time.monotonic() - began)
            if outcome == "stopped":
                return "stopped"
            if not self.may_trigger(outcome):
                routed = sorted({t["trigger"] for t in self.spec.transition_dicts() if t["source"] == state.name})
                raise MachineError(
                    f"machine {self.spec.name}: state {state.name!r} ended with {outcome!r}, "
                    f"which no transition routes (routed: {', '.join(routed) or 'none'})"
                )
            self._recent.append(f"{state.name}:{outcome}")
            self.trigger(outcome)
            self._save()
            events.emit("transition", source=state.name, outcome=outcome, dest=self.state, cycle=node.cycle)
