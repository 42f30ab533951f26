"""The live terminal view: one rich layout drawn from a NodeStatus snapshot, nothing else.

`render(snapshot)` is a pure function of the snapshot, so `cli.py status` prints the very same
picture from `state/status.json`, and tests render it to text with a recording console.

Top: the machine as a row of states (the current one lit, where the loop closes, the side states),
then cycle, time in the state and time running. Left: the camera's PTZ, frames, disk use, the newest
coverage, choice percentile and held-out error (ptzjepa.metrics), models
on disk, locks, and the pan/tilt coverage map with the camera's cell marked. Right: one progress
bar per stage of the cycle (frames, epochs with the batch in flight, dreams, moves), the loss
curves and other metrics as sparklines, dreams made, and the recent rewards with their moves.
Wide terminals get the map with square cells; narrow ones get the panels stacked; the live view
drops detail (the map first) until it fits the terminal's height, so rich never cuts it short.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.measure import Measurement
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ptzjepa.view.states import StatesRow
from ptzjepa.view.status import NodeStatus

_BLOCKS = "▁▂▃▄▅▆▇█"
_SHADES = " ·░▒▓█"


def sparkline(values: list[float], width: int = 40) -> str:
    values = values[-width:]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    return "".join(_BLOCKS[min(len(_BLOCKS) - 1, int((v - lo) / span * (len(_BLOCKS) - 1)))] for v in values)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _num(value: float) -> str:
    return f"{value:.4g}"


class Spark:
    """A sparkline followed by a short text, as wide as the cell it is drawn in allows."""

    def __init__(self, values: list[float], suffix: str = "", style: str = "") -> None:
        self.values = list(values)
        self.suffix = suffix
        self.style = style

    def _text(self, room: int) -> Text:
        text = Text(sparkline(self.values, width=max(1, room)), style=self.style or "green")
        if self.suffix:
            text.append(" " + self.suffix)
        return text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        extra = len(self.suffix) + 1 if self.suffix else 0
        return Measurement(min(len(self.values), 8) + extra, len(self.values) + extra)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        extra = len(self.suffix) + 1 if self.suffix else 0
        text = self._text(options.max_width - extra)
        text.no_wrap = True
        text.overflow = "ellipsis"
        yield text


class CoverageMap:
    """The coverage grid with tilt and pan scales and the camera's cell marked; two characters per
    pan bin (square cells) where the panel is wide enough, one where it is not."""

    _LABEL = 5

    def __init__(self, coverage: list[list[int]], axes: dict[str, list[float]] | None,
                 cell: list[int] | None) -> None:
        self.coverage = coverage or [[0]]
        self.axes = axes or {}
        self.cell = tuple(cell) if cell else None

    def width(self, cell: int) -> int:
        return self._LABEL + len(self.coverage[0]) * cell

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width(1), self.width(2))

    def cell_for(self, width: int) -> int:
        return 2 if width >= self.width(2) else 1

    @staticmethod
    def marker(cell: int) -> str:
        return "[]" if cell == 2 else "+"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cell = self.cell_for(options.max_width)
        rows, cols = len(self.coverage), len(self.coverage[0])
        peak = max((max(row) for row in self.coverage), default=0) or 1
        tilt = self.axes.get("tilt") or [0.0, 0.0]
        pan = self.axes.get("pan") or [0.0, 360.0]
        labels = {0: f"{tilt[1]:.0f}°", rows - 1: f"{tilt[0]:.0f}°"}
        if rows > 2 and tilt != [0.0, 0.0]:
            labels[rows // 2] = f"{tilt[1] - (rows // 2 + 0.5) * (tilt[1] - tilt[0]) / rows:.0f}°"
        text = Text(no_wrap=True, overflow="crop")
        for r, row in enumerate(self.coverage):
            text.append(labels.get(r, "").rjust(self._LABEL - 1) + " ", style="dim")
            for c, count in enumerate(row):
                if (r, c) == self.cell:
                    text.append(self.marker(cell), style="bold yellow on red")
                    continue
                level = 0 if count == 0 else 1 + round(count / peak * (len(_SHADES) - 2))
                text.append(_SHADES[min(level, len(_SHADES) - 1)] * cell, style="cyan")
            text.append("\n")
        scale = [" "] * (cols * cell)
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            label = f"{pan[0] + frac * (pan[1] - pan[0]):.0f}°"
            at = min(int(frac * cols * cell), cols * cell - len(label))
            at = max(0, at - (len(label) // 2 if 0 < frac < 1 else 0))
            scale[at : at + len(label)] = list(label)
        text.append("pan".rjust(self._LABEL - 1) + " " + "".join(scale), style="dim")
        yield text


def _summary(snap: dict[str, Any]) -> Text:
    run = snap.get("run") or {}  # only `cli.py status` knows whether the run is still alive
    dead = run.get("alive") is False
    text = Text()
    text.append("cycle ", style="dim")
    text.append(str(snap.get("cycle", 0)), style="bold")
    text.append(" · ", style="dim")
    text.append(str(snap.get("state", "") or "—"), style="bold")
    if not dead:  # a dead run's time in its state stopped counting when it died
        text.append(f" for {_duration(snap.get('state_seconds', 0))}")
    if dead:
        text.append(" · ", style="dim")
        text.append("not running", style="bold red")
        if isinstance(run.get("last_seen"), (int, float)):
            text.append(f", last seen {_duration(max(0.0, time.time() - run['last_seen']))} ago "
                        f"({_when(run['last_seen'])})")
    elif snap.get("run_seconds"):
        text.append(" · ", style="dim")
        text.append(f"running {_duration(snap['run_seconds'])}")
    if snap.get("finished"):
        text.append(" · ", style="dim")
        text.append(f"finished: {snap['finished']}", style="bold yellow")
    elif snap.get("stopping"):
        text.append(" · ", style="dim")
        text.append("stopping after this step…", style="bold yellow")
    return text


def _when(stamp: float) -> str:
    """A UTC time of day, with the date when it was not today."""
    day = time.strftime("%Y-%m-%d", time.gmtime(stamp))
    clock = time.strftime("%H:%M:%S UTC", time.gmtime(stamp))
    return clock if day == time.strftime("%Y-%m-%d", time.gmtime()) else f"{day} {clock}"


def _measured(table: Table, snap: dict[str, Any], brief: bool) -> None:
    """The newest coverage, choice percentile and held-out error (ptzjepa.metrics), once measured."""
    found = []
    if isinstance(snap.get("coverage_fraction"), (int, float)):
        found.append(("coverage", f"{snap['coverage_fraction'] * 100:.1f} % of cells (last navigate)",
                      f"cover {snap['coverage_fraction'] * 100:.1f} %"))
    if isinstance(snap.get("choice_percentile"), (int, float)):
        found.append(("choice", f"{snap['choice_percentile']:.0f} % percentile (last graded move)",
                      f"choice {snap['choice_percentile']:.0f} %"))
    if isinstance(snap.get("heldout_error"), (int, float)):
        found.append(("held-out", f"error {_num(snap['heldout_error'])}", f"held-out {_num(snap['heldout_error'])}"))
    if brief and found:
        table.add_row("measured", " · ".join(short for _, _, short in found))
    elif not brief:
        for label, line, _ in found:
            table.add_row(label, line)


def _facts(snap: dict[str, Any], brief: bool = False) -> Table:
    """The node's facts; `brief` (a short terminal, no coverage panel) folds frames and disk into
    one row and the coverage map into a count of the cells seen."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    ptz = snap.get("ptz")
    table.add_row("camera", f"pan {ptz[0]:.1f}° tilt {ptz[1]:.1f}° zoom {ptz[2]:.2f}×" if ptz else "—")
    if brief:
        cells = [count for row in snap.get("coverage") or [] for count in row]
        table.add_row("frames stored", f"{snap.get('frames_stored', 0)} · disk {_bytes(int(snap.get('disk_bytes', 0)))}")
        table.add_row("coverage", f"{sum(1 for c in cells if c)} of {len(cells)} pan/tilt cells seen")
    else:
        table.add_row("frames stored", str(snap.get("frames_stored", 0)))
        table.add_row("disk", _bytes(int(snap.get("disk_bytes", 0))))
    _measured(table, snap, brief)
    models = sorted((snap.get("models") or {}).items())
    for i, (name, model) in enumerate(models):
        line = f"{name} v{model.get('version', '?')}"
        if isinstance(model.get("loss"), (int, float)):
            line += f" · loss {_num(model['loss'])}"
        table.add_row("models" if i == 0 else "", line)
    if not models:
        table.add_row("models", Text("none yet", style="dim"))
    locks = sorted((snap.get("locks") or {}).items())
    for i, (resource, status) in enumerate(locks):
        held = status.startswith("held")
        table.add_row("locks" if i == 0 else "", Text(f"{resource}: {status}", style="yellow" if held else ""))
    if not locks:
        table.add_row("locks", Text("none", style="dim"))
    if snap.get("finished"):
        table.add_row("finished", snap["finished"])
    return table


def _bar(prog: dict[str, Any], current: bool) -> Table:
    total = max(1, int(prog.get("total", 1)))
    done = min(total, int(prog.get("done", 0)))
    completed = float(done)
    label = f"{done}/{total} {prog.get('unit', '')}".rstrip()
    batches = int(prog.get("batches") or 0)
    if batches and done < total:
        completed += min(1.0, int(prog.get("batch", 0)) / batches)
        label += f" · batch {prog.get('batch', 0)}/{batches}"
    row = Table.grid(expand=True, padding=(0, 1))
    row.add_column(ratio=1)
    row.add_column(no_wrap=True)
    row.add_row(ProgressBar(total=total, completed=completed, pulse=False),
                Text(label, style="" if current else "dim"))
    return row


_FIRST_METRICS = ("world_model.loss", "agent.loss", "dream.prediction_error")


def _learning(snap: dict[str, Any], brevity: int = 0) -> Table:
    """Progress, curves, dreams, rewards and warnings. Brevity 1 (a short terminal) keeps the main
    curves, the newest warning and no spacing; 2 also keeps only the current stage's bar."""
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1)
    order = {name: i for i, name in enumerate(snap.get("path") or snap.get("states") or [])}
    progress = sorted((snap.get("progress") or {}).items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    if brevity >= 2:
        progress = [(stage, prog) for stage, prog in progress if stage == snap.get("state")]
    for stage, prog in progress:
        table.add_row(Text(stage, style="bold" if stage == snap.get("state") else "dim"),
                      _bar(prog, stage == snap.get("state")))
    if progress and not brevity:
        table.add_row("", "")
    series = snap.get("series") or {}
    last = snap.get("last_metrics") or {}
    keys = [k for k in _FIRST_METRICS if k in series]
    if not brevity:
        keys += sorted(k for k in series if k not in _FIRST_METRICS)
    for key in keys:
        values = series[key]
        value = last.get(key, values[-1] if values else 0.0)
        main = key in _FIRST_METRICS
        table.add_row(Text(key, style="bold" if main else "dim"),
                      Spark(values, _num(value), style="green" if main else "dim green"))
    dreams = snap.get("dreams") or {}
    if dreams.get("made") or dreams.get("set"):
        line = f"{dreams.get('made', 0)}"
        if dreams.get("set"):
            line += f" · set {dreams['set']} {dreams.get('done', 0)}/{dreams.get('total', 0)}"
        table.add_row("dreams made", line)
    rewards = snap.get("rewards") or []
    if rewards:
        recent = rewards[-20:]
        table.add_row("rewards", Spark(rewards, f"{_num(rewards[-1])} (mean {_num(sum(recent) / len(recent))})"))
        last_moves = snap.get("recent_rewards") or []
        if last_moves and not brevity:
            line = " · ".join(f"{action or '?'} {value:.3g}" for action, value in reversed(last_moves[-3:]))
            table.add_row("", Text(line, style="dim", overflow="ellipsis", no_wrap=True))
    if not progress and not keys and not rewards:
        table.add_row("", Text("nothing learned yet", style="dim"))
    for warning in (snap.get("warnings") or [])[-1 if brevity else 0:]:
        table.add_row("warning", Text(warning, style="yellow"))
    return table


class _CoveragePanel:
    """The coverage map in its panel, whose legend shows the camera marker at the size drawn."""

    def __init__(self, snap: dict[str, Any]) -> None:
        self.map = CoverageMap(snap.get("coverage") or [[0]], snap.get("coverage_axes"), snap.get("ptz_cell"))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.map.width(1) + 4, self.map.width(2) + 4)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        marker = CoverageMap.marker(self.map.cell_for(options.max_width - 4))
        legend = Text.assemble(("· few ░▒▓ █ many  ", "dim"), (marker, "bold yellow on red"), (" camera", "dim"))
        yield Panel(self.map, title="coverage (tilt × pan)", title_align="left", padding=(0, 1),
                    subtitle=legend, subtitle_align="right")


class _Body:
    """Node facts and coverage beside the learning panel; the coverage map gets its square-celled
    width first where the terminal is wide, the two halves share it evenly where it is not, and
    they stack where even that would be cramped."""

    _WIDE_RIGHT = 56  # the learning panel's least comfortable width beside a full-size map
    _SIDE_BY_SIDE = 100

    def __init__(self, snap: dict[str, Any], brevity: int = 0) -> None:
        self.snap = snap
        self.brevity = brevity

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        snap = self.snap
        facts = Panel(_facts(snap, brief=self.brevity > 0), title="node", title_align="left")
        learning = Panel(_learning(snap, self.brevity - 1 if self.brevity else 0), title="learning",
                         title_align="left")
        if self.brevity:  # a short terminal: no map (its cells are counted among the facts)
            yield Group(facts, learning)
            return
        coverage = _CoveragePanel(snap)
        full_map = CoverageMap(snap.get("coverage") or [[0]], None, None).width(2) + 4
        width = options.max_width
        if width < self._SIDE_BY_SIDE:
            yield Group(facts, learning, coverage)
            return
        body = Table.grid(expand=True, padding=(0, 1))
        if width >= full_map + 1 + self._WIDE_RIGHT:
            body.add_column(width=full_map)
            body.add_column(ratio=1)
        else:
            body.add_column(ratio=1)
            body.add_column(ratio=1)
        body.add_row(Group(facts, coverage), learning)
        yield body


def render(snap: dict[str, Any], fit_height: bool = False) -> RenderableType:
    """The whole picture; `fit_height` (the live view) drops detail until it fits the terminal's
    height, so that rich never cuts it with an ellipsis."""
    return _Screen(snap, fit_height)


class _Screen:
    """The view at the richest level of detail that fits the height available (when asked to fit):
    full; without the coverage map; with the main curves only; with the current stage's bar only.
    What is still too tall is cut at the bottom: the machine row and the state stay on top."""

    _LEVELS = 4

    def __init__(self, snap: dict[str, Any], fit_height: bool) -> None:
        self.snap = snap
        self.fit_height = fit_height

    def _picture(self, brevity: int) -> RenderableType:
        snap = self.snap
        title = f"ptzjepa · {snap.get('machine', '')} · {snap.get('data', '')}"
        top = Panel(Group(StatesRow(snap), _summary(snap)), title=title, title_align="left")
        return Group(top, _Body(snap, brevity))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.fit_height:
            yield self._picture(0)
            return
        height = options.height or options.size.height
        free = options.update(height=None)
        for brevity in range(self._LEVELS):
            lines = console.render_lines(self._picture(brevity), free, pad=False)
            if len(lines) <= height:
                break
        for line in lines[:height]:
            yield from line
            yield Segment.line()


class LiveView:
    """Redraws the view a few times a second on its own thread while the node works."""

    def __init__(self, status: NodeStatus, console: Console, refresh_hz: float = 4.0) -> None:
        self.status = status
        self._live = Live(
            get_renderable=lambda: render(self.status.snapshot(), fit_height=True), console=console,
            refresh_per_second=refresh_hz, transient=False, redirect_stderr=False,
        )

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.refresh()
        time.sleep(0)
        self._live.__exit__(None, None, None)
