"""Where the camera looked: PTZ trajectories coloured by reward, a pan/tilt heat map per stage, and
a pan/tilt/zoom scatter coloured by reward."""

from __future__ import annotations

import math
from itertools import groupby

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ptzjepa.report.figures import NO_REWARD, REWARD_CMAP, new_figure, reward_colorbar, reward_colour, reward_norm
from ptzjepa.report.gather import Pose, RunData

MAX_TRAJECTORY_PANELS = 6
HEAT_PAN_DEG = 10.0
HEAT_TILT_DEG = 5.0


def rounds(poses: list[Pose]) -> list[list[Pose]]:
    """The poses of one cycle and stage cut into rounds: each "absolute" command starts one."""
    out: list[list[Pose]] = []
    for pose in poses:
        if pose.kind == "absolute" or not out:
            out.append([])
        out[-1].append(pose)
    return out


def trajectories(data: RunData) -> Figure:
    by_cycle = {c: list(ps) for c, ps in groupby(data.poses, key=lambda p: p.cycle)}
    cycles = sorted(by_cycle)[-MAX_TRAJECTORY_PANELS:]
    columns = min(3, len(cycles))
    rows = math.ceil(len(cycles) / columns)
    figure = new_figure(4.2 * columns + 1.2, 3.4 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    norm = reward_norm(list(data.rewards.values()))
    half_turn = (data.limits["pan"][1] - data.limits["pan"][0]) / 2
    for ax, cycle in zip(axes.flat, cycles):
        for stage in sorted({p.stage for p in by_cycle[cycle]}):
            for round_ in rounds([p for p in by_cycle[cycle] if p.stage == stage]):
                _draw_round(ax, round_, data.rewards, norm, half_turn if data.pan_wraps else math.inf)
        ax.set_title(f"cycle {cycle}")
        ax.set_xlim(*data.limits["pan"])
        ax.set_ylim(*data.limits["tilt"])
        ax.set_xlabel("pan (°)")
        ax.set_ylabel("tilt (°)")
    for ax in axes.flat[len(cycles):]:
        ax.set_visible(False)
    shown = "" if len(by_cycle) <= MAX_TRAJECTORY_PANELS else f" (last {MAX_TRAJECTORY_PANELS} of {len(by_cycle)} cycles)"
    figure.suptitle(f"Camera paths: rounds start at ○, moves coloured by reward, grey without one{shown}")
    reward_colorbar(figure, axes, norm)
    return figure


def _draw_round(ax, poses: list[Pose], rewards: dict[str, float], norm, max_jump: float) -> None:
    """Segments into each pose, coloured by that move's reward; a pan wrap is not drawn across."""
    segments, colours = [], []
    for before, after in zip(poses, poses[1:]):
        if abs(after.pan - before.pan) > max_jump:
            continue
        segments.append([(before.pan, before.tilt), (after.pan, after.tilt)])
        colours.append(reward_colour(rewards.get(after.id), norm))
    if segments:
        ax.add_collection(LineCollection(segments, colors=colours, linewidths=1.6))
    xs, ys = [p.pan for p in poses], [p.tilt for p in poses]
    ax.scatter(xs[1:], ys[1:], s=8, c=[reward_colour(rewards.get(p.id), norm) for p in poses[1:]], zorder=3)
    ax.scatter(xs[:1], ys[:1], s=36, facecolors="none", edgecolors="black", linewidths=0.8, zorder=4)


def heatmap(data: RunData) -> Figure:
    stages = sorted({p.stage for p in data.poses})
    panels = stages + (["all"] if len(stages) > 1 else [])
    figure = new_figure(4.6 * len(panels), 3.6)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    (pan_lo, pan_hi), (tilt_lo, tilt_hi) = data.limits["pan"], data.limits["tilt"]
    pan_bins = np.linspace(pan_lo, pan_hi, max(2, round((pan_hi - pan_lo) / HEAT_PAN_DEG)) + 1)
    tilt_bins = np.linspace(tilt_lo, tilt_hi, max(2, round((tilt_hi - tilt_lo) / HEAT_TILT_DEG)) + 1)
    for ax, stage in zip(axes, panels):
        chosen = [p for p in data.poses if stage in ("all", p.stage)]
        counts, _, _ = np.histogram2d([p.tilt for p in chosen], [p.pan for p in chosen], bins=[tilt_bins, pan_bins])
        image = ax.imshow(counts, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                          extent=(pan_lo, pan_hi, tilt_lo, tilt_hi))
        figure.colorbar(image, ax=ax, label="frames")
        ax.set_title(f"{stage}: {len(chosen)} frames, {int((counts > 0).sum())} of {counts.size} cells")
        ax.set_xlabel("pan (°)")
        ax.set_ylabel("tilt (°)")
    figure.suptitle(f"Where the frames were taken ({HEAT_PAN_DEG:g}° × {HEAT_TILT_DEG:g}° cells)")
    return figure


def scatter_3d(data: RunData) -> Figure:
    figure = new_figure(7.0, 5.6)
    ax = figure.add_subplot(projection="3d")
    plain = [p for p in data.poses if p.id not in data.rewards]
    rewarded = [p for p in data.poses if p.id in data.rewards]
    if plain:
        ax.scatter([p.pan for p in plain], [p.tilt for p in plain], [p.zoom for p in plain],
                   s=6, c=NO_REWARD, alpha=0.5, label="no reward (capture, round starts)")
    norm = reward_norm([data.rewards[p.id] for p in rewarded])
    if rewarded:
        ax.scatter([p.pan for p in rewarded], [p.tilt for p in rewarded], [p.zoom for p in rewarded],
                   s=14, c=[data.rewards[p.id] for p in rewarded], cmap=REWARD_CMAP, norm=norm, label="moves")
        reward_colorbar(figure, ax, norm)
    ax.set_xlim(*data.limits["pan"])
    ax.set_ylim(*data.limits["tilt"])
    ax.set_xlabel("pan (°)")
    ax.set_ylabel("tilt (°)")
    ax.set_zlabel("zoom (×)")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title("Pan / tilt / zoom of every frame, coloured by the move's reward")
    if not rewarded:
        ax.set_title("Pan / tilt / zoom of every frame (no move has a stored reward)")
    return figure
