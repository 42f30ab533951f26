"""The waiting_for_lock stage: every shared world model is leased by another node; wait for one.

It joins every model's fair queue in the locker (Redis: arrival order; ptzjepa.lock_queue) and
polls, backing off from a fraction of a second to a few seconds (with jitter, so waiting nodes do
not poll in step; every half second per place once it is among the first four of a queue), until a
model is free and no one who came before it waits for that model (`free`), the configured wait is over (`timeout`, which the machine
routes on so that the node keeps working with what it has; it leaves the queues then), or a stop is
requested. Who holds each model, under which token and for how long, and the node's place in each
queue go to the events stream, so the live view and `status` show what the node is waiting for.

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
# A node among the first _NEAR_HEAD of a queue polls every _NEXT_UP_POLL_S times its place: a
# lease can be shorter than the longest backoff, and a model must not sit free while its next
# holder sleeps. The others back off as before.
_NEXT_UP_POLL_S = 0.5
_NEAR_HEAD = 4
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
    outcome = _wait(node, locker, resources)
    if outcome != "free":  # a node going on without a model must not hold up the queues
        try:
            locker.leave_queues(resources)
        except LockerUnavailable:
            pass  # its entries expire on their own
    return outcome


def _wait(node: Node, locker, resources: list[str]) -> str:
    deadline = time.monotonic() + node.config.locks.wait_s
    poll = _FIRST_POLL_S
    jitter = random.Random(f"{node.name}:{node.cycle}")
    unreachable = ""
    while True:
        began, now = time.monotonic(), time.time()
        try:
            free, next_up = _any_free(node, locker, resources, now)
        except LockerUnavailable as exc:
            if str(exc) != unreachable:
                unreachable = str(exc)
                node.events.emit("warning", message=f"{exc}; retrying")
            node.events.emit("lock", resource=LOCK_SERVICE, status=f"{exc}; retrying")
            free, next_up = False, 0
        else:
            if unreachable:
                node.events.emit("lock", resource=LOCK_SERVICE, status="reachable again")
                unreachable, poll = "", _FIRST_POLL_S
        if free:
            return "free"
        if time.monotonic() >= deadline and not unreachable:
            return "timeout"
        pause = poll * (0.5 + jitter.random())
        if next_up:  # near the head of a queue: the model may be this node's at the next release,
            pause = min(pause, _NEXT_UP_POLL_S * next_up)  # which must not wait for a slow poll
        if not unreachable:
            pause = min(pause, max(0.0, deadline - time.monotonic()))
        if node.stop.wait(pause):
            return "stopped"
        if unreachable:
            deadline += time.monotonic() - began
        poll = min(poll * 2, _MAX_POLL_S)


def _any_free(node: Node, locker, resources: list[str], now: float) -> tuple[bool, int]:
    """(whether a model is free for this node, its best place among the first _NEAR_HEAD of a
    queue, else 0). A free model is this node's only when no one who came before waits for it (the
    fair queue); who holds each model and the node's place go out as lock events (the view and
    `status`)."""
    free, next_up = False, 0
    for resource in resources:
        info = locker.holder_info(resource)
        place, waiting = locker.queue_place(resource)
        status = describe(info, now)
        if waiting:
            status += f"; place {place} of {waiting} in its queue"
            node.events.emit("queue", resource=resource, place=place, waiting=waiting)
        node.events.emit("lock", resource=resource, status=status)
        free = free or (info is None and place <= 1)
        if 1 <= place <= _NEAR_HEAD:
            next_up = min(next_up or place, place)
    return free, next_up
