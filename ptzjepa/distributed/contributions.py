"""Who contributed what to each shared world model, and how much a node may still add.

A model's checkpoint metadata carries `contributions`: per node, the optimiser updates, frames
seen, epochs and seconds of training that went into those very weights (a fallback past a broken
version drops the broken one's share with it). Dreams are made without a lease, so each node
counts its own in `contributions/dreams-<node>.json` in the shared store, a file only that node
writes. Balancing (world_model.balance) compares a node's updates with the other nodes' mean.
"""

from __future__ import annotations

from typing import Any

from ptzjepa.storage.checkpoints import Checkpoints
from ptzjepa.storage.damage import Damaged, Warn, log_warning, move_aside, read_json_checked, require
from ptzjepa.storage.store import Store

FIELDS = ("updates", "frames", "epochs", "seconds")
DREAMS_DIR = "contributions"


def normalised(contributions: Any) -> dict[str, dict[str, float]]:
    """Per node, every field present; an older checkpoint's bare count is its epochs."""
    out: dict[str, dict[str, float]] = {}
    for node, value in (contributions or {}).items():
        record = {"epochs": int(value)} if isinstance(value, (int, float)) else dict(value or {})
        out[str(node)] = {f: record.get(f, 0) for f in FIELDS}
    return out


def add(contributions: Any, node: str, updates: int, frames: int, epochs: int, seconds: float) -> dict[str, Any]:
    """The contributions after `node` trained one more stretch on the model."""
    out = normalised(contributions)
    mine = out.setdefault(node, {f: 0 for f in FIELDS})
    mine["updates"] = int(mine["updates"]) + updates
    mine["frames"] = int(mine["frames"]) + frames
    mine["epochs"] = int(mine["epochs"]) + epochs
    mine["seconds"] = round(float(mine["seconds"]) + seconds, 3)
    return out


def allowance(contributions: Any, node: str, margin: float) -> int | None:
    """Updates `node` may still add to a model before it is more than `margin` (a fraction) ahead
    of the mean of the other nodes' updates to it; None when no other node has contributed (there
    is nobody to balance against)."""
    table = normalised(contributions)
    others = [int(c["updates"]) for n, c in table.items() if n != node]
    if not others:
        return None
    bound = sum(others) / len(others) * (1.0 + margin)
    mine = int(table.get(node, {}).get("updates", 0))
    return max(0, int(bound) - mine)


def dreams_file(node: str) -> str:
    return f"{DREAMS_DIR}/dreams-{node}.json"


def _check_counts(data: Any) -> None:
    require(isinstance(data, dict), "not an object")
    for model, count in data.items():
        require(isinstance(count, int) and not isinstance(count, bool), f"{model}: not a count of dreams")


def count_dreams(shared: Store, node: str, model: str, dreams: int, warn: Warn = log_warning) -> None:
    """Add `dreams` made with `model` to this node's own count in the shared store; a damaged
    count is moved aside (one warning) and counting starts afresh."""
    try:
        counts = read_json_checked(shared, dreams_file(node), _check_counts) or {}
    except Damaged as exc:
        move_aside(shared, dreams_file(node), str(exc), "this node's dream counts start afresh", warn)
        counts = {}
    counts[model] = int(counts.get(model, 0)) + dreams
    shared.write_json(dreams_file(node), counts)


def dreams_by_node(shared: Store) -> dict[str, dict[str, int]]:
    """{node: {model: dreams}} from every node's count."""
    out: dict[str, dict[str, int]] = {}
    for file in shared.list(DREAMS_DIR, ".json"):
        if file.startswith("dreams-"):
            try:  # another node's file: a damaged one is left to that node to move aside
                data = read_json_checked(shared, f"{DREAMS_DIR}/{file}", _check_counts) or {}
            except Damaged:
                continue
            out[file[len("dreams-"):-len(".json")]] = {str(k): int(v) for k, v in data.items()}
    return out


def summary(models: Checkpoints, shared: Store) -> dict[str, Any]:
    """What every node has contributed to every shared model, for `cli.py status`: per model its
    newest version, fencing token and per-node contributions (dreams included); per node its
    totals over the population."""
    dreams = dreams_by_node(shared)
    per_model: dict[str, Any] = {}
    totals: dict[str, dict[str, float]] = {}
    names = set(models.names()) | {m for counts in dreams.values() for m in counts}
    for name in sorted(names):
        current = models.current(name) or {}
        table = normalised(current.get("contributions"))
        for node, counts in dreams.items():
            if name in counts:
                table.setdefault(node, {f: 0 for f in FIELDS})
        for node, record in table.items():
            record["dreams"] = dreams.get(node, {}).get(name, 0)
            total = totals.setdefault(node, {f: 0 for f in (*FIELDS, "dreams")})
            for field, value in record.items():
                total[field] = round(total[field] + value, 3)
        per_model[name] = {"version": current.get("version"), "fence": current.get("fence"),
                           "epochs_trained": current.get("epochs_trained"), "last_loss": current.get("last_loss"),
                           "contributions": table}
    return {"models": per_model, "nodes": totals}
