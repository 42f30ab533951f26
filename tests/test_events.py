"""The events stream's own contract: the kinds its docstring lists are the kinds the code emits,
and the logs stay quiet about per-epoch work."""

from __future__ import annotations

import ast
import logging
import re
from collections import defaultdict

import pytest

from ptzjepa.view import events as events_module
from ptzjepa.view.events import Event, log_subscriber
from tests.conftest import REPO


def _emitted() -> dict[str, set[str]]:
    """Every `….emit("kind", key=…)` call under ptzjepa/ and sim/: kind -> the keys it is given."""
    kinds: dict[str, set[str]] = defaultdict(set)
    for path in [*(REPO / "ptzjepa").rglob("*.py"), *(REPO / "sim").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                assert all(k.arg for k in node.keywords), f"{path}: emit with **data hides its keys"
                kinds[node.args[0].value] |= {k.arg for k in node.keywords}
    return kinds


def _documented() -> dict[str, set[str]]:
    """The docstring's `    kind [key, key]` lines: kind -> its keys."""
    lines = re.finditer(r"^    (\w+) \[([^\]]*)\]", events_module.__doc__ or "", re.M)
    return {m.group(1): {k.strip() for k in m.group(2).split(",")} for m in lines}


def test_the_docstring_lists_exactly_the_kinds_and_keys_emitted():
    emitted, documented = _emitted(), _documented()
    assert len(emitted) >= 16  # the scan found the stages' calls, not nothing
    assert documented == dict(emitted)


@pytest.mark.parametrize("kind, level", [
    ("run_started", logging.INFO), ("state_entered", logging.INFO), ("state_left", logging.INFO),
    ("run_finished", logging.INFO), ("lock", logging.INFO), ("warning", logging.WARNING),
    ("model_saved", logging.DEBUG), ("metric", logging.DEBUG), ("progress", logging.DEBUG),
])
def test_per_epoch_events_log_at_debug_and_stage_boundaries_at_info(caplog, kind, level):
    caplog.set_level(logging.DEBUG, logger="ptzjepa")
    log_subscriber(Event(kind, 0.0, {"state": "dream"}))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(level, f"event={kind} state=dream")]
