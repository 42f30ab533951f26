"""What every plot of the report shares: figures drawn without pyplot (no display, no global
state, the Agg canvas), the reward colour scale, and Skip, which a plot raises when the store
lacks what it needs."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

REWARD_CMAP = "viridis"
NO_REWARD = "#b0b0b0"
DPI = 100


class Skip(Exception):
    """This plot does not apply to this store; the message says why, for summary.md."""


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def reward_norm(values: list[float] | np.ndarray) -> Normalize:
    """One colour scale for rewards; a single value still gets a non-empty range."""
    values = np.asarray(values, dtype=float)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5 * abs(lo or 1.0), hi + 0.5 * abs(hi or 1.0)
    return Normalize(vmin=lo, vmax=hi)


def cycle_axis(ax, cycles: list[int]) -> None:
    """An x axis of whole cycles: each one ticked while they are few, whole numbers beyond."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("cycle")
    if 0 < len(cycles) <= 12:
        ax.set_xticks(sorted(cycles))
        lo, hi = min(cycles), max(cycles)
        ax.set_xlim(lo - 0.5, hi + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def reward_colour(reward: float | None, norm: Normalize):
    """A reward's colour on the scale; grey for a frame without one."""
    from matplotlib import colormaps

    return NO_REWARD if reward is None else colormaps[REWARD_CMAP](norm(reward))


def reward_colorbar(figure: Figure, axes, norm: Normalize) -> None:
    from matplotlib.cm import ScalarMappable

    figure.colorbar(ScalarMappable(norm=norm, cmap=REWARD_CMAP), ax=axes, label="real reward (prediction error)")
