"""The waiting_for_lock stage: every shared world model is leased by another node; wait for one.

It polls the locker until some model of the population is free (`free`), the configured wait is
over (`timeout`, which the machine routes on so that the node keeps working with what it has),
or a stop is requested. The lock status of each model goes to the events stream for the view.

When the lock service itself is out of reach (Redis stopped, the network down), the node stays
here, says so once, and retries with a growing pause; that time does not count towards
`locks.wait_s`, since no other node can be holding a model it could go on without.
"""

from __future__ import annotations

import time

from ptzjepa import models
from ptzjepa.locks import LockerUnavailable
from ptzjepa.node import Node

STAGE = "wait_for_lock"
_POLL_S = 1.0
_UNREACHABLE_MAX_S = 5.0


def wait_for_lock(node: Node) -> str:
    locker = node.locker()
    resources = [f"{models.WORLD_MODELS}/{n}" for n in models.population_names(node.config)]
    deadline = time.monotonic() + node.config.locks.wait_s
    pause, unreachable = _POLL_S, ""
    while True:
        began = time.monotonic()
        try:
            holders = _first_free(node, locker, resources)
        except LockerUnavailable as exc:
            if str(exc) != unreachable:
                unreachable = str(exc)
                node.events.emit("warning", message=f"{exc}; retrying")
            node.events.emit("lock", resource="lock service", status=f"{exc}; retrying")
            pause = min(pause * 2, _UNREACHABLE_MAX_S)
            if node.stop.wait(pause):
                return "stopped"
            deadline += time.monotonic() - began
            continue
        if unreachable:
            node.events.emit("lock", resource="lock service", status="reachable again")
            unreachable, pause = "", _POLL_S
        if holders is None:
            return "free"
        if time.monotonic() >= deadline:
            return "timeout"
        if node.stop.wait(_POLL_S):
            return "stopped"


def _first_free(node: Node, locker, resources: list[str]) -> dict[str, str] | None:
    """None once a model is free; else who holds each one (also sent as lock events)."""
    holders: dict[str, str] = {}
    for resource in resources:
        holder = locker.holder(resource)
        node.events.emit("lock", resource=resource, status=f"held by {holder}" if holder else "free")
        if holder is None:
            return None
        holders[resource] = holder
    return holders
