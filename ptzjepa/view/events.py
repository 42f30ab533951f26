"""What happened, as one stream: the live view, the logs, the status file and Waggle all read it.

Stages never print or draw; they emit events. Each consumer subscribes and keeps what it needs,
so adding a new way to watch a node never touches a stage.

Kinds emitted, with their data keys (tests/test_events.py checks this list against the code):

    run_started [machine, states, state, cycle, data, frames, resumed]   a run has set up its node
    machine [name, path, loop_to, side, finals, state, cycle]   the machine, drawn as a row
    state_entered [state, cycle]                 a stage starts
    state_left [state, outcome, seconds]         a stage ends with its outcome word
    transition [source, outcome, dest, cycle]    after every persisted transition
    run_finished [reason, state, cycle]          the run ends (the view still draws it)
    progress [stage, done, total, unit, batch, batches, loss, images_per_s, eta_s]   batch and batches
                                                 only within an epoch; loss, images/s, eta (s) from training
    stopping [message]                           a stop was asked for: the run ends after the current step
    frame_stored [id, pan, tilt, zoom, stage, count]
    camera_moved [pan, tilt, zoom]
    metric [stage, name, value, step]
    reward [value, action]                       the real reward of a navigate move
    dreams_stored [set, chunk, dreams, done, total]
    model_saved [kind, name, version, path, loss]   after every epoch of a training stage
    lock [resource, status]                      resource "lock service" when Redis is out of reach
    lease [resource, token, acquire_s]           a world model leased; acquire_s: choosing it and the locker's calls
    queue [resource, place, waiting]             waiting_for_lock: this node's place in a model's fair queue
    disk [bytes, frames]                         after every stage, once storage limits are applied
    warning [message]

    commit_refused [model, token, reason]        the shared store refused a claim or a commit (fencing)
    balance [stage, model, allowed_updates, status]   balancing bounds or skips this node's training

The logs take stage starts and ends, lock events and the run's start and finish at INFO,
warnings at WARNING, and the per-step and per-epoch kinds only at DEBUG (`--debug`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from ptzjepa.logs import scrub_data

log = logging.getLogger("ptzjepa")

# Kinds logged at INFO: one or two per stage. Per-step and per-epoch kinds (model_saved too) go to
# DEBUG, so that the default logs above the live view stay quiet.
_INFO_KINDS = {"run_started", "run_finished", "state_entered", "state_left", "lock", "lease", "warning",
               "stopping"}
_INFO_KINDS |= {"commit_refused", "balance"}  # rare, and worth a line: the fence and balancing at work


@attrs.frozen
class Event:
    kind: str
    time: float
    data: dict[str, Any]


Subscriber = Callable[[Event], None]


class Events:
    """A tiny synchronous pub/sub: emit() calls every subscriber in order, on the caller's thread."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def emit(self, kind: str, /, **data: Any) -> None:
        """Hand an event to every subscriber, its text scrubbed of secrets first (an error message
        may quote what a camera echoed), so no log, status file, view or Waggle can show one."""
        event = Event(kind, time.time(), scrub_data(data))
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken viewer must never stop the node
                log.exception("event subscriber %r failed on %s", subscriber, kind)


def format_fields(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def log_subscriber(event: Event) -> None:
    """Structured, quiet logs: `event=state_entered state=capture cycle=0`."""
    level = logging.WARNING if event.kind == "warning" else (
        logging.INFO if event.kind in _INFO_KINDS else logging.DEBUG
    )
    if log.isEnabledFor(level):
        log.log(level, "event=%s %s", event.kind, format_fields(event.data))
