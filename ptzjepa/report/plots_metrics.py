"""The metrics a run stored (ptzjepa/report/stored_metrics.py) against the cycle: held-out error
and collapse monitors, coverage per stage, and the agent's choice percentile."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from ptzjepa.report.figures import Skip, cycle_axis, new_figure
from ptzjepa.report.gather import RunData
from ptzjepa.report.stored_metrics import CHOICE, COVERAGE, HELDOUT

# what the held-out files hold, in panel order: key -> panel title
HELDOUT_PANELS = {
    "one_step": "one-step latent error",
    "k_step": "k-step rollout error",
    "effective_rank": "effective rank of target embeddings",
    "target_std_mean": "mean per-dimension std of targets",
    "reward_channel_corr": "reward channel vs real error (corr.)",
}
COVERAGE_PANELS = {"fraction": "fraction of cells visited", "entropy": "visit entropy (nats)",
                   "revisit_rate": "revisit rate"}


def heldout(data: RunData) -> Figure:
    by_cycle = data.metrics.heldout
    keys = [k for k in HELDOUT_PANELS if any(k in values for values in by_cycle.values())]
    if not keys:
        raise Skip(f"no {HELDOUT}/c<cycle>.json files with held-out figures (the run's evaluate stage "
                   "stores them in the simulator)")
    figure = new_figure(3.8 * len(keys), 3.4)
    axes = figure.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        cycles = [c for c, values in by_cycle.items() if key in values]
        ax.plot(cycles, [by_cycle[c][key] for c in cycles], marker="o")
        _cycle_axis(ax, HELDOUT_PANELS[key], list(by_cycle))
    figure.suptitle("World model on the held-out simulator cases, after each cycle")
    return figure


def coverage(data: RunData) -> Figure:
    by_cycle = data.metrics.coverage
    if not by_cycle:
        raise Skip(f"no {COVERAGE}/c<cycle>.json files (the run's evaluate stage stores them)")
    figure = new_figure(4.2 * len(COVERAGE_PANELS), 3.6)
    axes = figure.subplots(1, len(COVERAGE_PANELS), squeeze=False)[0]
    parts = sorted({part for stages in by_cycle.values() for part in stages})
    for ax, (key, title) in zip(axes, COVERAGE_PANELS.items()):
        for part in parts:
            cycles = [c for c, stages in by_cycle.items() if key in stages.get(part, {})]
            if cycles:
                ax.plot(cycles, [by_cycle[c][part][key] for c in cycles], marker="o", label=part,
                        linestyle="--" if part == "cumulative" else "-")
        _cycle_axis(ax, title, list(by_cycle))
        ax.legend(fontsize="small")
    grid = data.metrics.coverage_grid
    cell = (f" ({grid['pan_deg']:g}° × {grid['tilt_deg']:g}° × {grid['zoom_octaves']:g} zoom octave cells)"
            if {"pan_deg", "tilt_deg", "zoom_octaves"} <= set(grid) else "")
    figure.suptitle(f"Coverage of the pan/tilt/zoom space per cycle and stage{cell}")
    return figure


def choice(data: RunData) -> Figure:
    choices = data.metrics.choices
    if not choices:
        raise Skip(f"no {CHOICE}/ files (navigate grades moves in the simulator when the run asks for it)")
    by_cycle: dict[int, list[float]] = defaultdict(list)
    for cycle, value in choices:
        by_cycle[cycle].append(value)
    cycles = sorted(by_cycle)
    figure = new_figure(6.0, 3.8)
    ax = figure.subplots()
    jitter = np.random.default_rng(0)
    for cycle in cycles:
        ax.scatter(cycle + jitter.uniform(-0.12, 0.12, len(by_cycle[cycle])), by_cycle[cycle],
                   s=8, color="#9ab", alpha=0.6)
    ax.plot(cycles, [float(np.mean(by_cycle[c])) for c in cycles], marker="o", color="C0", label="mean")
    ax.axhline(50.0, color="#999999", linestyle="--", linewidth=0.8, label="random choice (50 %)")
    ax.set_ylim(-2, 102)
    _cycle_axis(ax, "percentile of the chosen move among all moves (%)", cycles)
    ax.legend(fontsize="small")
    figure.suptitle(f"Choice quality: {len(choices)} graded moves")
    return figure


def _cycle_axis(ax, title: str, cycles: list[int]) -> None:
    ax.set_title(title, fontsize="medium")
    cycle_axis(ax, cycles)
