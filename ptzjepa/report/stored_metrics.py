"""The metrics a run's evaluate and navigate stages store (ptzjepa.metrics), read as plain files so
that a report works on any store, with or without them:

    metrics/heldout/c<cycle>.json    the world model's held-out error and collapse monitors
    metrics/coverage/c<cycle>.json   coverage per cycle and stage, and cumulative (the newest holds all)
    metrics/choice/<frame id>.json   a graded navigate move: its percentile among all moves
"""

from __future__ import annotations

import json
import posixpath
import re

import attrs

from ptzjepa.report.gather_files import flatten_numbers, read_many
from ptzjepa.storage.store import Store

HELDOUT = "metrics/heldout"
COVERAGE = "metrics/coverage"
CHOICE = "metrics/choice"
_CYCLE_FILE = re.compile(r"^c(\d+)\.json$")


@attrs.define
class StoredMetrics:
    heldout: dict[int, dict[str, float]] = attrs.field(factory=dict)  # cycle -> numeric values
    # cycle -> stage (or "all", "cumulative") -> {"fraction", "entropy", "revisit_rate", ...}
    coverage: dict[int, dict[str, dict[str, float]]] = attrs.field(factory=dict)
    coverage_grid: dict[str, float] = attrs.field(factory=dict)
    choices: list[tuple[int, float]] = attrs.field(factory=list)  # (cycle, percentile)


def read_stored_metrics(store: Store, notes: list[str]) -> StoredMetrics:
    found = StoredMetrics(heldout=_per_cycle(store, HELDOUT, notes), choices=_choices(store, notes))
    coverage = _per_cycle_raw(store, COVERAGE, notes)
    if coverage:
        newest = coverage[max(coverage)]  # each file holds every cycle up to its own
        for cycle, parts in (newest.get("by_cycle") or {}).items():
            found.coverage[int(cycle)] = {stage: flatten_numbers(values) for stage, values in parts.items()}
        for cycle, values in (newest.get("cumulative") or {}).items():
            found.coverage.setdefault(int(cycle), {})["cumulative"] = flatten_numbers(values)
        found.coverage = dict(sorted(found.coverage.items()))
        found.coverage_grid = flatten_numbers(newest.get("grid") or {})
    return found


def _per_cycle_raw(store: Store, folder: str, notes: list[str]) -> dict[int, dict]:
    names = [f"{folder}/{n}" for n in store.list(folder, ".json") if _CYCLE_FILE.match(n)]
    found = {}
    for name, raw in read_many(store, names).items():
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            notes.append(f"skipped {name}: not a JSON object")
            continue
        found[int(_CYCLE_FILE.match(posixpath.basename(name))[1])] = data
    return dict(sorted(found.items()))


def _per_cycle(store: Store, folder: str, notes: list[str]) -> dict[int, dict[str, float]]:
    return {cycle: flatten_numbers(data) for cycle, data in _per_cycle_raw(store, folder, notes).items()}


def _choices(store: Store, notes: list[str]) -> list[tuple[int, float]]:
    names = [f"{CHOICE}/{n}" for n in store.list(CHOICE, ".json")]
    found = []
    for name, raw in sorted(read_many(store, names).items()):
        try:
            record = json.loads(raw)
            found.append((int(record["cycle"]), float(record["percentile"])))
        except (ValueError, KeyError, TypeError):
            notes.append(f"skipped {name}: not a graded move")
    return found
