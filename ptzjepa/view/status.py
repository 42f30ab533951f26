"""The node's current facts, gathered from the events stream, for the live view and `cli.py status`.

NodeStatus is the only thing the view reads. It is also written to `state/status.json` in the
store (atomically, at most every few seconds and at every state change) so that `status` can
print the same facts for a node you are not attached to.

It reads the kinds listed in ptzjepa/view/events.py; `machine` draws the machine as a row: the states
`done` leads through (path), the one it loops back to (loop_to), and the others (side).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from ptzjepa.camera.base import PTZLimits
from ptzjepa.logs import scrub_data
from ptzjepa.storage.store import Store
from ptzjepa.view.events import Event

STATUS_FILE = "state/status.json"
COVERAGE_PAN_BINS = 36
COVERAGE_TILT_BINS = 11
_SERIES_LEN = 120
_RECENT_REWARDS = 5
# The newest measurement of a run's progress (ptzjepa.metrics), by the metric event that carries it.
NEWEST = {"evaluate.coverage": "coverage_fraction", "navigate.choice_percentile": "choice_percentile",
          "evaluate.heldout_one_step": "heldout_error"}
_LEASE_SAMPLES = 1000


class NothingStoredError(ValueError):
    """`cli.py status` was pointed at a folder where no run has stored anything."""


class NodeStatus:
    """Aggregates events into a snapshot. Thread-safe: the view reads while stages emit."""

    def __init__(self, limits: PTZLimits = PTZLimits(), machine_states: list[str] | None = None) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self.machine = ""
        self.machine_states: list[str] = list(machine_states or [])
        self.path: list[str] = []
        self.loop_to = ""
        self.side: list[str] = []
        self.finals: list[str] = []
        self.state = ""
        self.state_since = time.time()
        self.cycle = 0
        self.started = time.time()
        self.data_url = ""
        self.frames_stored = 0
        self.ptz: tuple[float, float, float] | None = None
        self.coverage = [[0] * COVERAGE_PAN_BINS for _ in range(COVERAGE_TILT_BINS)]
        self.progress: dict[str, dict[str, Any]] = {}
        self.series: dict[str, deque[float]] = {}
        self.last_metrics: dict[str, float] = {}
        self.newest: dict[str, float | None] = {name: None for name in NEWEST.values()}
        self.rewards: deque[float] = deque(maxlen=_SERIES_LEN)
        self.recent_rewards: deque[tuple[str, float]] = deque(maxlen=_RECENT_REWARDS)
        self.dreams_made = 0
        self.dream_set: dict[str, Any] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.locks: dict[str, str] = {}
        self.queue: dict[str, dict[str, int]] = {}  # resource -> this node's place in its fair queue
        # Lock timings for the swarm benchmark and docs/scale.md: each lease's acquire latency, and
        # each lock wait (from a training stage finding every model taken to the next lease, or to
        # giving up in waiting_for_lock; 0 for a lease taken at once).
        self.lease_acquire_s: deque[float] = deque(maxlen=_LEASE_SAMPLES)
        self.lock_wait_s: deque[float] = deque(maxlen=_LEASE_SAMPLES)
        self.leases_taken = 0
        self._wait_began: float | None = None
        self.disk_bytes = 0
        self.warnings: deque[str] = deque(maxlen=5)
        self.outcomes: deque[str] = deque(maxlen=8)
        self.finished = ""
        self.stopping = False

    # --- feeding ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            with self._lock:
                handler(event)

    def _on_run_started(self, e: Event) -> None:
        self.machine = e.data.get("machine", "")
        self.machine_states = list(e.data.get("states", self.machine_states))
        self.state = e.data.get("state", "")
        self.cycle = int(e.data.get("cycle", 0))
        self.data_url = e.data.get("data", "")
        self.frames_stored = int(e.data.get("frames", self.frames_stored))
        self.started = self.state_since = e.time

    def _on_machine(self, e: Event) -> None:
        self.machine = e.data.get("name", self.machine)
        self.path = list(e.data.get("path") or [])
        self.loop_to = e.data.get("loop_to") or ""
        self.side = list(e.data.get("side") or [])
        self.finals = list(e.data.get("finals") or [])
        self.machine_states = self.path + [s for s in self.side if s not in self.path]
        self._enter(e.data.get("state", self.state), int(e.data.get("cycle", self.cycle)), e.time)

    def _on_state_entered(self, e: Event) -> None:
        self._enter(e.data["state"], int(e.data.get("cycle", self.cycle)), e.time)

    def _on_state_left(self, e: Event) -> None:
        self.outcomes.append(f"{e.data['state']}→{e.data['outcome']}")
        if e.data["outcome"] == "locked" and self._wait_began is None:
            self._wait_began = e.time
        elif e.data["outcome"] == "timeout" and self._wait_began is not None:
            self.lock_wait_s.append(e.time - self._wait_began)
            self._wait_began = None
            self.queue.clear()  # it gave up waiting and left the queues

    def _on_transition(self, e: Event) -> None:
        self._enter(e.data["dest"], int(e.data.get("cycle", self.cycle)), e.time)

    def _enter(self, state: str, cycle: int, when: float) -> None:
        if cycle != self.cycle:
            self.progress.clear()  # the bars show the current cycle's stages
        if state != self.state:
            self.state_since = when
        self.state, self.cycle = state, cycle

    def _on_progress(self, e: Event) -> None:
        self.progress[e.data["stage"]] = dict(e.data)

    def _on_frame_stored(self, e: Event) -> None:
        self.frames_stored = int(e.data.get("count", self.frames_stored + 1))
        self._cover(e.data["pan"], e.data["tilt"])
        self.ptz = (e.data["pan"], e.data["tilt"], e.data["zoom"])

    def _on_camera_moved(self, e: Event) -> None:
        self.ptz = (e.data["pan"], e.data["tilt"], e.data["zoom"])

    def _on_metric(self, e: Event) -> None:
        key = f"{e.data['stage']}.{e.data['name']}"
        self.series.setdefault(key, deque(maxlen=_SERIES_LEN)).append(float(e.data["value"]))
        self.last_metrics[key] = float(e.data["value"])
        if key in NEWEST:
            self.newest[NEWEST[key]] = float(e.data["value"])

    def _on_reward(self, e: Event) -> None:
        self.rewards.append(float(e.data["value"]))
        self.recent_rewards.append((str(e.data.get("action", "")), float(e.data["value"])))

    def _on_dreams_stored(self, e: Event) -> None:
        self.dreams_made += int(e.data.get("dreams", 0))
        self.dream_set = {k: e.data[k] for k in ("set", "done", "total") if k in e.data}

    def _on_model_saved(self, e: Event) -> None:
        self.models[f"{e.data['kind']}/{e.data['name']}"] = dict(e.data)

    def _on_lease(self, e: Event) -> None:
        self.leases_taken += 1
        self.lease_acquire_s.append(float(e.data["acquire_s"]))
        self.lock_wait_s.append(e.time - self._wait_began if self._wait_began is not None else 0.0)
        self._wait_began = None
        self.queue.clear()  # a lease taken: the node left every queue

    def _on_queue(self, e: Event) -> None:
        self.queue[e.data["resource"]] = {"place": int(e.data["place"]), "waiting": int(e.data["waiting"])}

    def _on_lock(self, e: Event) -> None:
        self.locks[e.data["resource"]] = e.data["status"]

    def _on_disk(self, e: Event) -> None:
        self.disk_bytes = int(e.data["bytes"])
        if "frames" in e.data:
            self.frames_stored = int(e.data["frames"])

    def _on_warning(self, e: Event) -> None:
        self.warnings.append(str(e.data.get("message", "")))

    def _on_stopping(self, e: Event) -> None:
        self.stopping = True

    def _on_run_finished(self, e: Event) -> None:
        self.finished = e.data.get("reason", "")
        if e.data.get("state"):
            self._enter(e.data["state"], int(e.data.get("cycle", self.cycle)), e.time)

    def _cover(self, pan: float, tilt: float) -> None:
        row, col = self._cell(pan, tilt)
        self.coverage[row][col] += 1

    def _cell(self, pan: float, tilt: float) -> tuple[int, int]:
        """The coverage bin (row = tilt, top = up; column = pan) of a camera position."""
        p, t = self.limits.pan, self.limits.tilt
        col = int((p.fit(pan) - p.lo) / p.span * COVERAGE_PAN_BINS)
        row = int((t.hi - t.fit(tilt)) / t.span * COVERAGE_TILT_BINS)
        return min(max(row, 0), COVERAGE_TILT_BINS - 1), min(max(col, 0), COVERAGE_PAN_BINS - 1)

    # --- reading ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "machine": self.machine,
                "states": list(self.machine_states),
                "path": list(self.path),
                "loop_to": self.loop_to,
                "side": list(self.side),
                "finals": list(self.finals),
                "state": self.state,
                "state_seconds": round(time.time() - self.state_since, 1),
                "updated": time.time(),
                "run_seconds": round(time.time() - self.started, 1),
                "cycle": self.cycle,
                "data": self.data_url,
                "frames_stored": self.frames_stored,
                "ptz": list(self.ptz) if self.ptz else None,
                "coverage": [list(row) for row in self.coverage],
                "coverage_axes": {"pan": [self.limits.pan.lo, self.limits.pan.hi],
                                  "tilt": [self.limits.tilt.lo, self.limits.tilt.hi]},
                "ptz_cell": list(self._cell(self.ptz[0], self.ptz[1])) if self.ptz else None,
                "progress": {k: dict(v) for k, v in self.progress.items()},
                "series": {k: list(v) for k, v in self.series.items()},
                "last_metrics": dict(self.last_metrics),
                **self.newest,
                "rewards": list(self.rewards),
                "recent_rewards": [list(r) for r in self.recent_rewards],
                "dreams": {"made": self.dreams_made, **self.dream_set},
                "models": {k: dict(v) for k, v in self.models.items()},
                "locks": dict(self.locks),
                "queue": {k: dict(v) for k, v in self.queue.items()},
                "leases": {"taken": self.leases_taken, "acquire_s": [round(v, 5) for v in self.lease_acquire_s],
                           "lock_wait_s": [round(v, 4) for v in self.lock_wait_s]},
                "disk_bytes": self.disk_bytes,
                "warnings": list(self.warnings),
                "outcomes": list(self.outcomes),
                "finished": self.finished,
                "stopping": self.stopping and not self.finished,
            }

    def restore(self, snap: dict[str, Any]) -> None:
        """Carry a previous run's picture (coverage, curves) into a resumed one."""
        with self._lock:
            cov = snap.get("coverage")
            if isinstance(cov, list) and len(cov) == COVERAGE_TILT_BINS:
                self.coverage = [list(map(int, row)) for row in cov]
            for key, values in (snap.get("series") or {}).items():
                self.series[key] = deque(map(float, values), maxlen=_SERIES_LEN)
            self.rewards.extend(map(float, snap.get("rewards") or []))
            for action, value in snap.get("recent_rewards") or []:
                self.recent_rewards.append((str(action), float(value)))
            dreams = snap.get("dreams") or {}
            self.dreams_made = int(dreams.get("made", 0))
            self.dream_set = {k: dreams[k] for k in ("set", "done", "total") if k in dreams}
            self.models.update(snap.get("models") or {})
            self.last_metrics.update(snap.get("last_metrics") or {})
            for name in NEWEST.values():
                if isinstance(snap.get(name), (int, float)):
                    self.newest[name] = float(snap[name])
            self.disk_bytes = int(snap.get("disk_bytes") or 0)
            leases = snap.get("leases") or {}
            self.leases_taken = int(leases.get("taken", 0))
            self.lease_acquire_s.extend(map(float, leases.get("acquire_s") or []))
            self.lock_wait_s.extend(map(float, leases.get("lock_wait_s") or []))


class StatusWriter:
    """Writes NodeStatus snapshots to the store: on every state change, else at most every `every_s`."""

    def __init__(self, status: NodeStatus, store: Store, every_s: float = 5.0) -> None:
        self.status = status
        self.store = store
        self.every_s = every_s
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        urgent = event.kind in {"state_entered", "state_left", "transition", "run_finished", "model_saved"}
        if urgent or event.time - self._last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        self._last = time.time()
        self.store.write_json(STATUS_FILE, scrub_data(self.status.snapshot()))
