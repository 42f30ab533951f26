"""`cli.py report`: PNG plots of a run and a summary.md linking them, read from any store URL.

gather.py reads the store, the plots_*.py modules draw (each raises Skip when the store lacks
what it needs), summary.py writes the text; this module runs the plots and writes the files,
each atomically, into a local folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import attrs
from matplotlib.figure import Figure

from ptzjepa.report import plots_embeddings, plots_learning, plots_metrics, plots_poses
from ptzjepa.report.figures import Skip, png_bytes
from ptzjepa.report.gather import ReportError, RunData, gather
from ptzjepa.report.summary import summary_markdown
from ptzjepa.storage.store import Store

log = logging.getLogger(__name__)
SUMMARY = "summary.md"

__all__ = ["PLOTS", "Plot", "ReportError", "Report", "make_report"]


@attrs.frozen
class Plot:
    file: str
    title: str
    what: str  # one line for summary.md: what the picture shows
    draw: Callable[[RunData], Figure | tuple[Figure, str]]  # a note may come with the figure


PLOTS = (
    Plot("losses.png", "Losses per cycle",
         "World-model and agent training loss per step, in stored order; dashed lines mark each cycle's start.",
         plots_learning.losses),
    Plot("cycles.png", "Cells visited and reward per cycle",
         "The report's own count of distinct 30° × 15° pan/tilt cells (zoom ignored) each stage's frames "
         "visited per cycle, and the mean real reward (the world model's prediction error) of the "
         "navigate moves.", plots_learning.per_cycle),
    Plot("trajectories.png", "PTZ trajectories",
         "The camera's path in pan/tilt per cycle; each navigate move is coloured by its real reward.",
         plots_poses.trajectories),
    Plot("heatmap.png", "Pan/tilt heat map", "How many frames were taken in each pan/tilt cell, per stage.",
         plots_poses.heatmap),
    Plot("ptz_scatter.png", "Pan/tilt/zoom scatter", "Every frame's pan, tilt and zoom, coloured by the reward "
         "of the move that led there.", plots_poses.scatter_3d),
    Plot("embeddings.png", "Embeddings in 2-D", "The stored embeddings of the navigate frames projected by PCA "
         "(and t-SNE), coloured by reward: do surprising views cluster?", plots_embeddings.projection),
    Plot("samples.png", "Most and least rewarded views", "The frames after the highest and lowest rewarded moves.",
         plots_embeddings.samples),
    Plot("heldout.png", "Held-out error per cycle", "The world model's latent error on the fixed held-out "
         "simulator cases after each cycle, and the collapse monitors (metrics/heldout/).", plots_metrics.heldout),
    Plot("coverage.png", "Coverage per cycle", "Fraction of pan/tilt/zoom cells visited, visit entropy and "
         "revisit rate per cycle and stage, as the run stored them (metrics/coverage/).", plots_metrics.coverage),
    Plot("choice.png", "Choice quality per cycle", "The percentile of the agent's chosen move among all moves' "
         "real errors, per graded move and as a mean (metrics/choice/); 50 % is a random choice.",
         plots_metrics.choice),
)


@attrs.frozen
class Report:
    folder: Path
    made: list[str]  # file names written, summary.md last
    skipped: list[tuple[str, str]]  # (title, why)


def make_report(data_url: str, out: str | Path) -> Report:
    """Read the store at `data_url` and write the plots and summary.md into the folder `out`."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"--out {folder}: not a folder")
    data = gather(data_url)
    target = Store(str(folder))
    made: list[tuple[str, str, str]] = []
    skipped: list[tuple[str, str]] = []
    notes = list(data.notes)
    for plot in PLOTS:
        try:
            drawn = plot.draw(data)
        except Skip as why:
            skipped.append((plot.title, str(why)))
            target.delete(plot.file)  # a previous report's picture would now be out of date
            continue
        figure, note = drawn if isinstance(drawn, tuple) else (drawn, "")
        target.write_bytes(plot.file, png_bytes(figure))
        made.append((plot.file, plot.title, plot.what))
        if note:
            notes.append(f"{plot.title}: {note}")
        log.debug("report: wrote %s", plot.file)
    target.write_text(SUMMARY, summary_markdown(data, made, skipped, notes))
    return Report(folder=folder, made=[file for file, _, _ in made] + [SUMMARY], skipped=skipped)
