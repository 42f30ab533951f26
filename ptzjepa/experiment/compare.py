"""The experiment's summary: mean ± spread over seeds per policy and cycle, as a rich table, as
`experiment.json` and as one PNG per metric (metric against cycle, a line per policy, the spread
shaded). The spread is the sample standard deviation over seeds (0 with one seed)."""

from __future__ import annotations

import io
import math
from typing import Any

from rich.table import Table

from ptzjepa.metrics.summary import METRICS
from ptzjepa.storage.store import Store

RESULT_FILE = "experiment.json"


def _stats(values: list[float | None]) -> dict[str, Any]:
    got = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not got:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(got) / len(got)
    std = math.sqrt(sum((v - mean) ** 2 for v in got) / (len(got) - 1)) if len(got) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(got)}


def aggregate(runs: dict[str, dict[str, dict[str, Any]]], cycles: list[int]) -> dict[str, Any]:
    """{policy: {metric: [stats per cycle]}, plus "overall": {metric: stats}} from the per-run
    cycle rows; overall is the mean over cycles per run (the total for frames), then over seeds."""
    summary: dict[str, Any] = {}
    for policy, seeds in runs.items():
        rows = [{r["cycle"]: r for r in run.get("cycles", [])} for run in seeds.values()]
        per_cycle = {m: [_stats([row.get(c, {}).get(m) for row in rows]) for c in cycles] for m in METRICS}
        overall = {}
        for metric in METRICS:
            per_run = []
            for row in rows:
                got = [row[c][metric] for c in cycles if c in row and row[c].get(metric) is not None]
                per_run.append((sum(got) if metric == "frames" else sum(got) / len(got)) if got else None)
            overall[metric] = _stats(per_run)
        summary[policy] = {"per_cycle": per_cycle, "overall": overall}
    return summary


def _fmt(stats: dict[str, Any], digits: int = 3, scale: float = 1.0) -> str:
    if stats["mean"] is None:
        return "–"
    return f"{stats['mean'] * scale:.{digits}g} ± {stats['std'] * scale:.2g}"


def table(result: dict[str, Any]) -> Table:
    cycles = result["cycles_measured"]
    out = Table(title=f"experiment: {result['profile']} profile, {result['seeds']} seed(s), "
                      f"{len(cycles)} cycle(s), mean ± std over seeds")
    out.add_column("policy", style="bold")
    out.add_column("frames", justify="right")
    out.add_column("cover nav %", justify="right")
    out.add_column("cover all %", justify="right")
    out.add_column("choice %", justify="right")
    for c in cycles:
        out.add_column(f"held-out c{c}", justify="right")
    for policy, summary in result["summary"].items():
        overall, per_cycle = summary["overall"], summary["per_cycle"]
        out.add_row(policy, _fmt(overall["frames"], 4), _fmt(overall["coverage"], scale=100),
                    _fmt(per_cycle["coverage_cumulative"][-1], scale=100) if cycles else "–",
                    _fmt(overall["choice_percentile"]),
                    *(_fmt(s) for s in per_cycle["heldout_one_step"]))
    out.caption = ("cover nav: cells visited by the navigate frames, mean over cycles; cover all: by all "
                   "frames at the end; choice: percentile of the chosen move's real error; held-out: "
                   "one-step error of the world model after each cycle (lower is better)")
    return out


def write_plots(store: Store, result: dict[str, Any]) -> list[str]:
    """One PNG per metric; returns their names in `store`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cycles = result["cycles_measured"]
    names = []
    for metric, (label, better_up) in METRICS.items():
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        drawn = False
        for policy, summary in result["summary"].items():
            points = [(c, s["mean"], s["std"]) for c, s in zip(cycles, summary["per_cycle"][metric])
                      if s["mean"] is not None]
            if not points:
                continue
            xs, means, stds = zip(*points)
            line, = ax.plot(xs, means, marker="o", label=policy)
            ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=line.get_color(), alpha=0.2)
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("cycle")
        ax.set_ylabel(label)
        ax.set_title(f"{label} ({'higher' if better_up else 'lower'} is better)", fontsize=10)
        ax.set_xticks(cycles)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        name = f"{metric}.png"
        store.write_bytes(name, buffer.getvalue())
        names.append(name)
    return names
