"""How learning went, cycle by cycle: the training losses, the navigate moves' rewards and the
pan/tilt cells visited."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from ptzjepa.report.cells import PAN_CELL_DEG, TILT_CELL_DEG, cells_per_cycle
from ptzjepa.report.figures import Skip, cycle_axis, new_figure
from ptzjepa.report.gather import LossPoint, RunData

SMOOTH_STEPS = 25
LOG_SCALE_SPAN = 20.0  # a loss falling by more than this factor is drawn on a log scale


def losses(data: RunData) -> Figure:
    series = [(label, points) for label, points in (("world model", data.world_model_losses),
                                                    ("agent", data.agent_losses)) if points]
    if not series:
        raise Skip("no training losses stored (no metrics/world_model/ or metrics/agent/ files, "
                   "no agent checkpoint)")
    figure = new_figure(6.0 * len(series), 3.8)
    axes = figure.subplots(1, len(series), squeeze=False)[0]
    for ax, (label, points) in zip(axes, series):
        _loss_panel(ax, label, points)
    figure.suptitle("Training loss per step, cycle after cycle (dashed lines: cycle starts)")
    return figure


def _loss_panel(ax, label: str, points: list[LossPoint]) -> None:
    """Each model's losses in stored order (cycle, epoch, step), raw and smoothed (log scale when
    they span more than LOG_SCALE_SPAN); cycle starts marked and labelled."""
    by_model: dict[str, list[LossPoint]] = defaultdict(list)
    for point in points:
        by_model[point.model].append(point)
    starts: dict[int, int] = {}
    for model, mine in sorted(by_model.items()):
        values = np.array([p.loss for p in mine])
        x = np.arange(len(values))
        line = ax.plot(x, values, alpha=0.35, linewidth=0.8)[0]
        window = min(SMOOTH_STEPS, max(1, len(values) // 10))
        if window > 1:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            centre = window // 2  # each mean drawn at the middle of its window: no lag
            ax.plot(x[centre:centre + len(smooth)], smooth, color=line.get_color(), linewidth=1.6, label=f"{model} (mean of {window})")
        else:
            line.set_alpha(1.0)
            line.set_label(model)
        for index, point in enumerate(mine):
            starts.setdefault(point.cycle, index)
    for cycle, index in sorted(starts.items()):
        ax.axvline(index, color="#999999", linewidth=0.6, linestyle="--")
        ax.annotate(f"c{cycle}", (index, 1.0), xycoords=("data", "axes fraction"), fontsize="x-small",
                    va="top", ha="left", color="#666666")
    values = [p.loss for p in points]
    if min(values) > 0 and max(values) / min(values) > LOG_SCALE_SPAN:
        ax.set_yscale("log")
    ax.set_title(f"{label} loss")
    ax.set_xlabel("training step (stored order)")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")


def per_cycle(data: RunData) -> Figure:
    """Mean real reward of the moves and distinct pan/tilt cells visited, per cycle and stage."""
    cells = cells_per_cycle(data.poses)
    rewards: dict[int, list[float]] = defaultdict(list)
    for pose in data.poses:
        if pose.id in data.rewards:
            rewards[pose.cycle].append(data.rewards[pose.id])
    panels = 2 if rewards else 1
    figure = new_figure(max(7.0, 5.4 * panels), 3.8)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    for (stage, counts), marker in zip(cells.items(), "osD^v<>"*4):
        axes[0].plot(list(counts), list(counts.values()), marker=marker, label=stage, alpha=0.85)
    axes[0].set_title(f"distinct {PAN_CELL_DEG:g}° × {TILT_CELL_DEG:g}° pan/tilt cells visited")
    axes[0].set_ylabel("cells")
    axes[0].legend(fontsize="small")
    if rewards:
        cycles = sorted(rewards)
        means = [float(np.mean(rewards[c])) for c in cycles]
        spread = [float(np.std(rewards[c])) for c in cycles]
        axes[1].errorbar(cycles, means, yerr=spread, marker="o", capsize=3)
        axes[1].set_title("real reward of the navigate moves (mean ± std)")
        axes[1].set_ylabel("prediction error")
    for ax in axes:
        cycle_axis(ax, data.cycles)
    figure.suptitle("Per cycle: how much the camera saw, and how surprising its moves were")
    return figure
