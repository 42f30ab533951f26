"""The waiting_for_lock stage: every shared world model is leased by another node; wait for one.

It polls the locker until some model of the population is free (`free`), the configured wait is
over (`timeout`, which the machine routes on so that the node keeps working with what it has),
or a stop is requested. The lock status of each model goes to the events stream for the view.
"""

from __future__ import annotations

import time

from ptzjepa import model_store
from ptzjepa.node import Node

STAGE = "wait_for_lock"
_POLL_S = 1.0


def wait_for_lock(node: Node) -> str:
    locker = node.locker()
    resources = [f"{model_store.WORLD_MODELS}/{n}" for n in model_store.population_names(node.config)]
    deadline = time.monotonic() + node.config.locks.wait_s
    while True:
        for resource in resources:
            holder = locker.holder(resource)
            node.events.emit("lock", resource=resource, status=f"held by {holder}" if holder else "free")
            if holder is None:
                return "free"
        if time.monotonic() >= deadline:
            return "timeout"
        if node.stop.wait(_POLL_S):
            return "stopped"
