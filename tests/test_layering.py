"""The import layering of ptzjepa, checked from the source with `ast` (function-level imports too).

Layers, top to bottom; a module imports only from its own layer or the ones below it:

    cli -> app -> machine -> stages -> metrics -> model_store -> node level -> settings -> parts -> foundations

and besides: no import loop among ptzjepa modules; `ptzjepa.learning` imports nothing of ptzjepa
outside itself and no I/O library; `sim` is imported only by the node-level camera construction
(ptzjepa.cameras), by the settings for its own section (sim.settings), and by evaluation code;
`sim` itself needs only ptzjepa.camera.base. Tests and benchmarks are outside the library and may
import anything. A new module must be given a layer here: the failure says which one lacks it.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.conftest import REPO

# Top to bottom. A pattern names a module or, with `*`, a family of modules.
LAYERS: list[tuple[str, list[str]]] = [
    ("cli", ["cli"]),
    ("report", ["ptzjepa.report", "ptzjepa.report.*"]),  # `cli.py report`: reads a run's store, draws it
    ("app", ["ptzjepa.app", "ptzjepa.view", "ptzjepa.view_states", "ptzjepa.waggle", "ptzjepa.legacy",
             "ptzjepa.progress_lines",
             "ptzjepa.contributions_view",
             # the swarm: node processes, their Redis and the combined view
             "ptzjepa.swarm", "ptzjepa.swarm_view",
             # evaluation code (issue 11): runs nodes on the simulator and compares them
             "ptzjepa.experiment*", "ptzjepa.evaluation*"]),
    ("machine", ["ptzjepa.machine", "ptzjepa.store_check"]),
    ("stages", ["ptzjepa.stages", "ptzjepa.stages.*"]),
    # what a run measures about itself (issue 11), used by the evaluate and navigate stages
    ("metrics", ["ptzjepa.metrics", "ptzjepa.metrics.*"]),
    ("model_store", ["ptzjepa.model_store", "ptzjepa.model_choice"]),
    ("node level", ["ptzjepa.node", "ptzjepa.cameras", "ptzjepa.retention", "ptzjepa.data", "ptzjepa.shared_store",
                    "ptzjepa.preflight",
                    "ptzjepa.training_frames"]),
    ("settings", ["ptzjepa.config_loading", "ptzjepa.config", "ptzjepa.config_checks"]),
    ("parts", ["ptzjepa.learning", "ptzjepa.learning.*", "ptzjepa.camera", "ptzjepa.camera.*",
               "ptzjepa.store", "ptzjepa.locks", "ptzjepa.lock_queue", "ptzjepa.fence_log", "ptzjepa.events",
               "ptzjepa.frames", "ptzjepa.checkpoints",
               "ptzjepa.runlock", "ptzjepa.status", "ptzjepa.logs", "ptzjepa.damage", "ptzjepa.contributions",
               "ptzjepa.redis_server",
               "sim", "sim.*"]),
    ("foundations", ["ptzjepa", "ptzjepa.errors", "ptzjepa.secrets"]),
]

# Who may import the simulator: the node-level construction, and evaluation code.
SIM_IMPORTERS = ["ptzjepa.cameras", "ptzjepa.experiment*", "ptzjepa.metrics*", "ptzjepa.evaluation*"]
# The settings compose the simulator's own section, a plain attrs module.
SIM_SETTINGS_IMPORTERS = ["ptzjepa.config"]
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


def _layer(name: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch(name, pattern) for pattern in patterns):
            return index
    raise AssertionError(f"{name}: no layer given in tests/test_layering.py LAYERS; add it where it belongs")


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch(name, pattern) for pattern in patterns)


def test_every_module_has_a_layer():
    for name in SOURCES:
        _layer(name)


def test_no_import_runs_up_a_layer():
    upward = [f"{name}:{line} imports {dep} ({LAYERS[_layer(dep)][0]} is above {LAYERS[_layer(name)][0]})"
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
