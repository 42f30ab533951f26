"""The import layering of ptzjepa, checked from the source with `ast` (function-level imports too).

A folder of ptzjepa is a layer; top to bottom:

    cli -> report -> experiment -> run -> stages -> metrics -> node -> distributed -> config -> view
        -> storage -> sim -> camera -> learning -> foundations (the modules directly in ptzjepa/)

A module imports only from its own folder or the ones below it. Besides: no import loop among
ptzjepa modules; `ptzjepa.learning` imports nothing of ptzjepa outside itself and no I/O library,
and inside it the agent builds on the world model, never the reverse; `sim` is imported only by
the node's camera construction (ptzjepa.node.cameras), by the settings for its own section
(sim.settings), and by evaluation code; `sim` itself needs only ptzjepa.camera.base. Tests and
benchmarks are outside the library and may import anything. A new folder must be given a layer
here: the failure says which one lacks it.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.conftest import REPO

# Top to bottom, each a folder of ptzjepa (or cli.py, or the simulator's package).
LAYERS: list[str] = [
    "cli",
    "report",  # `cli.py report`: reads a run's store, draws it
    "experiment",  # `cli.py experiment`: runs nodes on the simulator and compares them
    "run",  # one run: the app, the machine, the store check
    "stages",
    "metrics",  # what a run measures about itself, used by the evaluate and navigate stages
    "node",  # what a stage gets: context, camera, models, training frames
    "distributed",  # leases, the shared store, contributions, the swarm
    "config",
    "view",  # the event stream and what reads it
    "storage",
    "sim",
    "camera",
    "learning",
    "foundations",  # errors, secrets, logs: the modules directly in ptzjepa/
]
# The most modules directly in ptzjepa/ (besides __init__.py): the rest live in their layer's folder.
MOST_AT_THE_TOP = 12

# Who may import the simulator: the node's camera construction, and evaluation code.
SIM_IMPORTERS = ["ptzjepa.node.cameras", "ptzjepa.experiment*", "ptzjepa.metrics*"]
# The settings compose the simulator's own section, a plain attrs module.
SIM_SETTINGS_IMPORTERS = ["ptzjepa.config.settings"]
# What ptzjepa.learning may import besides itself: torch, numpy and computing parts of the
# standard library; no I/O (tests/test_benchmarks.py checks the same of the torch benchmarks).
LEARNING_MAY_IMPORT = {"__future__", "abc", "collections", "contextlib", "copy", "dataclasses",
                       "enum", "functools", "itertools", "math", "numpy", "random", "torch", "typing"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [REPO / "cli.py", *sorted((REPO / "ptzjepa").rglob("*.py")), *sorted((REPO / "sim").rglob("*.py"))]
    return {_module_name(path): path for path in files}


SOURCES = _sources()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Every module `name` imports (absolute names, relative ones resolved), with the line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from ptzjepa import model_store` imports a module
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in SOURCES else base, node.lineno))
    return found


def _internal(target: str) -> str | None:
    """The ptzjepa/sim/cli module an import lands in (the longest known prefix), or None."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in SOURCES:
            return candidate
    return None


GRAPH = {name: [(dep, line) for target, line in _imports(name, path)
                if (dep := _internal(target)) is not None and dep != name]
         for name, path in SOURCES.items()}


def _folder(name: str) -> str:
    """The layer a module belongs to: its folder under ptzjepa/, or cli, sim, foundations."""
    parts = name.split(".")
    if parts[0] in ("cli", "sim"):
        return parts[0]
    if len(parts) == 1 or (len(parts) == 2 and not SOURCES[name].name == "__init__.py"):
        return "foundations"
    return parts[1]


def _layer(name: str) -> int:
    folder = _folder(name)
    if folder not in LAYERS:
        raise AssertionError(f"{name}: ptzjepa/{folder}/ has no layer in tests/test_layering.py LAYERS; "
                             "add it where it belongs")
    return LAYERS.index(folder)


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch(name, pattern) for pattern in patterns)


def test_every_module_has_a_layer():
    for name in SOURCES:
        _layer(name)


def test_at_most_a_few_modules_lie_directly_in_the_package():
    top = sorted(name for name in SOURCES if _folder(name) == "foundations" and name != "ptzjepa")
    assert len(top) <= MOST_AT_THE_TOP, top


def test_no_import_runs_up_a_layer():
    upward = [f"{name}:{line} imports {dep} ({LAYERS[_layer(dep)]} is above {LAYERS[_layer(name)]})"
              for name, deps in GRAPH.items() for dep, line in deps if _layer(dep) < _layer(name)]
    assert upward == []


def test_no_import_loop():
    """Tarjan's strongly connected components: any component of more than one module is a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for dep, _ in GRAPH[name]:
            if dep not in index:
                visit(dep)
                low[name] = min(low[name], low[dep])
            elif dep in on_stack:
                low[name] = min(low[name], index[dep])
        if low[name] == index[name]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == name:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for name in GRAPH:
        if name not in index:
            visit(name)
    assert loops == []


def test_only_the_camera_construction_and_evaluation_import_the_simulator():
    wrong = []
    for name, deps in GRAPH.items():
        if name == "sim" or name.startswith("sim."):
            continue
        for dep, line in deps:
            if dep == "sim.settings" and _matches(name, SIM_SETTINGS_IMPORTERS + SIM_IMPORTERS):
                continue
            if (dep == "sim" or dep.startswith("sim.")) and not _matches(name, SIM_IMPORTERS):
                wrong.append(f"{name}:{line} imports {dep}")
    assert wrong == []


def test_the_simulator_needs_only_the_camera_interface():
    wrong = [f"{name}:{line} imports {dep}" for name, deps in GRAPH.items()
             if name == "sim" or name.startswith("sim.")
             for dep, line in deps if not (dep.startswith("sim") or dep == "ptzjepa.camera.base")]
    assert wrong == []


@pytest.mark.parametrize("name", sorted(n for n in SOURCES if n.startswith("ptzjepa.learning")))
def test_learning_imports_no_io(name):
    wrong = []
    for target, line in _imports(name, SOURCES[name]):
        top = target.split(".")[0]
        inside = target == "ptzjepa.learning" or target.startswith("ptzjepa.learning.")
        if not inside and top not in LEARNING_MAY_IMPORT:
            wrong.append(f"{name}:{line} imports {target}")
    assert wrong == []


def test_the_agent_builds_on_the_world_model_not_the_reverse():
    wrong = [f"{name}:{line} imports {dep}" for name, deps in GRAPH.items()
             if name.startswith("ptzjepa.learning.world_model")
             for dep, line in deps if dep.startswith("ptzjepa.learning.agent")]
    wrong += [f"{name}:{line} imports {dep}" for name, deps in GRAPH.items()
              if name.startswith("ptzjepa.learning.") and name.count(".") == 2 and SOURCES[name].name != "__init__.py"
              for dep, line in deps if dep.count(".") > 2 and dep.startswith("ptzjepa.learning.")]
    assert wrong == []
