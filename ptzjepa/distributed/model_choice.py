"""Which world model of the shared population a node trains next, and taking its lease.

`world_model.choose` orders the population: `rotate` (cycle c starts at wm-((hash(node) + c) mod
population), so nodes spread out and a lone node trains them all in turn, and a run resumed in the
same cycle goes back to the same model), `least_contributed` (the models this node has added the
fewest optimiser updates to first) or `random` (drawn from seed, node and cycle, so a resumed
cycle draws the same). The node leases the first free model in that order. With balancing on, a
model this node is already too far ahead on (contributions.allowance == 0) is skipped for the
others; if every free model is one of those, the node yields training this cycle.
"""

from __future__ import annotations

import random
import zlib

from ptzjepa.distributed import contributions
from ptzjepa.distributed.locks import Lease
from ptzjepa.storage.checkpoints import WORLD_MODELS, Checkpoints
YIELDED = "yielded"


def population_names(population: int) -> list[str]:
    return [f"wm-{i}" for i in range(population)]


def order(node, store: Checkpoints) -> list[str]:
    """The population in the order this node tries it this cycle."""
    cfg = node.config.world_model
    names = population_names(cfg.population)
    start = (zlib.crc32(node.name.encode()) + node.cycle) % len(names)
    rotated = names[start:] + names[:start]
    if cfg.choose == "random":
        random.Random(f"{cfg.seed}:{node.name}:{node.cycle}").shuffle(rotated)
    elif cfg.choose == "least_contributed":
        mine = {n: _updates_of(store, n, node.name) for n in names}
        rotated.sort(key=lambda n: mine[n])  # stable: ties keep the rotation's order
    return rotated


def lease_world_model(node, store: Checkpoints) -> tuple[str, Lease | None] | None:
    """(name, lease) of the first free model in this node's order; None when others hold all of
    them; (YIELDED, None) when balancing leaves this node nothing it may train now."""
    locker = node.locker()
    balance = node.config.world_model.balance
    yielded = False
    for name in order(node, store):
        lease = locker.acquire(f"{WORLD_MODELS}/{name}", floor=committed_fence(store, name))
        if lease is None:
            continue
        if balance and allowance(node, store, name) == 0:
            lease.release()
            yielded = True
            continue
        # it has a model: its places in the other models' queues would hold up their waiters
        locker.leave_queues([f"{WORLD_MODELS}/{n}" for n in population_names(node.config.world_model.population)])
        return name, lease
    return (YIELDED, None) if yielded else None


def committed_fence(store: Checkpoints, name: str) -> int:
    """The newest fencing token the model's folder knows (its newest claim or commit): a grant must
    be above it, even from a lock service that lost its counters (a Redis restarted without its
    data), or the store's fence would refuse every writer from then on."""
    return store.newest_token(name)


def allowance(node, store: Checkpoints, name: str) -> int | None:
    """Optimiser updates this node may still add to `name` this stage (None: no limit)."""
    if not node.config.world_model.balance:
        return None
    current = store.current(name) or {}
    return contributions.allowance(current.get("contributions"), node.name, node.config.world_model.balance_margin)


def _updates_of(store: Checkpoints, name: str, node_name: str) -> int:
    table = contributions.normalised((store.current(name) or {}).get("contributions"))
    return int(table.get(node_name, {}).get("updates", 0))
