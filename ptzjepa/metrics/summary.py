"""One run's metrics per cycle, read back from its store: what `experiment` compares across runs.

Per cycle: the frames taken; coverage, visit entropy and revisit rate of that cycle's navigate
frames (the frames the policy chose; capture is the same random protocol for every policy);
coverage of all frames so far; the held-out figures stored by the evaluate stage; the mean choice
percentile of the cycle's graded moves; the mean real reward of its navigate moves (their stored
embeddings) and the entropy of the actions chosen (log 21 = 3.04 nats for uniform choices over the
default actions; an agent stuck on one move gets 0). A figure the run has not produced is None.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ptzjepa.metrics.choice import load_choices
from ptzjepa.metrics.coverage import CellGrid, coverage, frames_taken
from ptzjepa.metrics.heldout import HELDOUT
from ptzjepa.storage.damage import Damaged
from ptzjepa.storage.embeddings import read_embedding
from ptzjepa.storage.store import Store, StoreError

# name -> (what it is, whether larger is better); the order of the table and the plots
METRICS: dict[str, tuple[str, bool]] = {
    "heldout_one_step": ("held-out one-step error", False),
    "heldout_k_step": ("held-out k-step rollout error", False),
    "coverage": ("coverage of the cycle's navigate frames", True),
    "coverage_cumulative": ("coverage of all frames so far", True),
    "entropy": ("visit entropy of the navigate frames (nats)", True),
    "revisit_rate": ("revisit rate of the navigate frames", False),
    "choice_percentile": ("choice percentile (%)", True),
    "navigate_reward": ("mean real reward (prediction error) of the navigate moves", True),
    "action_entropy": ("entropy of the navigate actions chosen (nats)", True),
    "effective_rank": ("effective rank of held-out target embeddings", True),
    "target_std_mean": ("mean per-dimension std of held-out target embeddings", True),
    "frames": ("frames taken in the cycle", True),
}


def run_summary(store: Store, grid: CellGrid, cycles: list[int]) -> list[dict[str, Any]]:
    """One dict per cycle in `cycles`, with every key of METRICS (None where not measured)."""
    records = frames_taken(store)
    choices = load_choices(store)
    rows, so_far = [], []
    for cycle in cycles:
        mine = [r for r in records if r.cycle == cycle]
        navigated = [r.ptz for r in mine if r.stage == "navigate"]
        so_far += [r.ptz for r in mine]
        nav = coverage(navigated, grid) if navigated else None
        graded = [float(c["percentile"]) for c in choices if c.get("cycle") == cycle]
        held = _heldout(store, cycle)
        moves = [r for r in mine if r.stage == "navigate" and r.command.kind == "action"]
        rewards = [v for v in (_reward(store, r.id) for r in moves) if v is not None]
        rows.append({
            "cycle": cycle, "frames": len(mine),
            "coverage": nav.fraction if nav else None,
            "entropy": nav.entropy if nav else None,
            "revisit_rate": nav.revisit_rate if nav else None,
            "coverage_cumulative": coverage(so_far, grid).fraction if so_far else None,
            "choice_percentile": sum(graded) / len(graded) if graded else None,
            "choices_graded": len(graded),
            "navigate_reward": sum(rewards) / len(rewards) if rewards else None,
            "action_entropy": _entropy([r.command.action for r in moves]) if moves else None,
            "reward_channel_corr": held.get("reward_channel_corr"),
            "heldout_one_step": held.get("one_step"), "heldout_k_step": held.get("k_step"),
            "effective_rank": held.get("effective_rank"), "target_std_mean": held.get("target_std_mean"),
        })
    return rows


def _heldout(store: Store, cycle: int) -> dict[str, Any]:
    try:
        found = store.read_json(f"{HELDOUT}/c{cycle:05d}.json", default=None)
    except StoreError:  # a damaged file: this cycle's figures are missing, not the whole summary
        return {}
    return found if isinstance(found, dict) else {}


def _entropy(names: list[str]) -> float:
    counts = Counter(names).values()
    total = sum(counts)
    return max(0.0, -sum(n / total * math.log(n / total) for n in counts))


def _reward(store: Store, fid: str) -> float | None:
    """The real reward stored with a navigate move's embedding; None without one (storage.track_all
    off, or removed)."""
    try:
        return read_embedding(store, fid).reward
    except (StoreError, Damaged):
        return None
