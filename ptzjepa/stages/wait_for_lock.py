"""The waiting_for_lock stage: every shared world model is leased by another node; wait for one.

It polls the locker, backing off from a fraction of a second to a few seconds (with jitter, so
waiting nodes do not poll in step), until some model of the population is free (`free`), the
configured wait is over (`timeout`, which the machine routes on so that the node keeps working
with what it has), or a stop is requested. Who holds each model, under which token and for how
long goes to the events stream, so the live view shows what the node is waiting for.
"""

from __future__ import annotations

import random
import time

from ptzjepa import model_store
from ptzjepa.node import Node

STAGE = "wait_for_lock"
_FIRST_POLL_S = 0.2
_MAX_POLL_S = 5.0


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
    while True:
        now = time.time()
        free = False
        for resource in resources:
            info = locker.holder_info(resource)
            node.events.emit("lock", resource=resource, status=describe(info, now))
            free = free or info is None
        if free:
            return "free"
        if time.monotonic() >= deadline:
            return "timeout"
        if node.stop.wait(min(poll * (0.5 + jitter.random()), max(0.0, deadline - time.monotonic()))):
            return "stopped"
        poll = min(poll * 2, _MAX_POLL_S)
