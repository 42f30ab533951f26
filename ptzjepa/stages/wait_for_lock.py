"""The waiting_for_lock stage: every shared world model is leased by another node; wait for one.

It polls the locker, backing off from a fraction of a second to a few seconds (with jitter, so
waiting nodes do not poll in step), until some model of the population is free (`free`), the
configured wait is over (`timeout`, which the machine routes on so that the node keeps working
with what it has), or a stop is requested. Who holds each model, under which token and for how
long goes to the events stream, so the live view shows what the node is waiting for.

When the lock service itself is out of reach (Redis stopped, the network down), the node stays
here, says so once, and retries with the same backoff; that time does not count towards
`locks.wait_s`, since no other node can be holding a model it could go on without.
"""

from __future__ import annotations

import random
import time

from ptzjepa.distributed.locks import LockerUnavailable
from ptzjepa.node import model_store
from ptzjepa.node.context import Node

STAGE = "wait_for_lock"
_FIRST_POLL_S = 0.2
_MAX_POLL_S = 5.0
LOCK_SERVICE = "lock service"  # the `lock` events' resource for the lock service's own state


def describe(info: dict | None, now: float) -> str:
    """`free`, or `held by cam2 for 12 s (token 7)`."""
    if info is None:
        return "free"
    age = f" for {max(0.0, now - info['since']):.0f} s" if info.get("since") else ""
    token = f" (token {info['token']})" if info.get("token") else ""
    return f"held by {info['node']}{age}{token}"


def wait_for_lock(node: Node) -> str:
    locker = node.locker()
    resources = [f"{model_store.WORLD_MODELS}/{n}" for n in model_store.population_names(node.config)]
    deadline = time.monotonic() + node.config.locks.wait_s
    poll = _FIRST_POLL_S
    jitter = random.Random(f"{node.name}:{node.cycle}")
    unreachable = ""
    while True:
        began, now = time.monotonic(), time.time()
        try:
            free = _any_free(node, locker, resources, now)
        except LockerUnavailable as exc:
            if str(exc) != unreachable:
                unreachable = str(exc)
                node.events.emit("warning", message=f"{exc}; retrying")
            node.events.emit("lock", resource=LOCK_SERVICE, status=f"{exc}; retrying")
            free = False
        else:
            if unreachable:
                node.events.emit("lock", resource=LOCK_SERVICE, status="reachable again")
                unreachable, poll = "", _FIRST_POLL_S
        if free:
            return "free"
        if time.monotonic() >= deadline and not unreachable:
            return "timeout"
        pause = poll * (0.5 + jitter.random())
        if not unreachable:
            pause = min(pause, max(0.0, deadline - time.monotonic()))
        if node.stop.wait(pause):
            return "stopped"
        if unreachable:
            deadline += time.monotonic() - began
        poll = min(poll * 2, _MAX_POLL_S)


def _any_free(node: Node, locker, resources: list[str], now: float) -> bool:
    """Whether a model is free; who holds each one goes out as lock events."""
    free = False
    for resource in resources:
        info = locker.holder_info(resource)
        node.events.emit("lock", resource=resource, status=describe(info, now))
        free = free or info is None
    return free
