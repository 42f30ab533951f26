"""The live terminal view: one rich layout drawn from a NodeStatus snapshot, nothing else.

`render(snapshot)` is a pure function of the snapshot, so `cli.py status` prints the very same
picture from `state/status.json`, and tests render it to text with a recording console.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ptzjepa.status import NodeStatus

_BLOCKS = "▁▂▃▄▅▆▇█"
_SHADES = " ·░▒▓█"


def sparkline(values: list[float], width: int = 40) -> str:
    values = values[-width:]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    return "".join(_BLOCKS[min(len(_BLOCKS) - 1, int((v - lo) / span * (len(_BLOCKS) - 1)))] for v in values)


def coverage_map(coverage: list[list[int]]) -> Text:
    """Where frames were taken: rows are tilt (top = up), columns pan; darker = more frames."""
    peak = max((max(row) for row in coverage), default=0) or 1
    text = Text()
    for row in coverage:
        for count in row:
            level = 0 if count == 0 else 1 + round(count / peak * (len(_SHADES) - 2))
            text.append(_SHADES[min(level, len(_SHADES) - 1)], style="cyan")
        text.append("\n")
    text.append("pan 0° → 360°", style="dim")
    return text


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


def _states_row(snap: dict[str, Any]) -> Text:
    text = Text()
    for i, name in enumerate(snap.get("states") or [snap.get("state", "")]):
        if i:
            text.append(" → ", style="dim")
        if name == snap.get("state"):
            text.append(f" {name} ", style="bold black on green")
        else:
            text.append(name, style="dim")
    return text


def _facts(snap: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    ptz = snap.get("ptz")
    table.add_row("state", f"{snap.get('state', '')} for {_duration(snap.get('state_seconds', 0))}")
    table.add_row("cycle", str(snap.get("cycle", 0)))
    table.add_row("frames stored", str(snap.get("frames_stored", 0)))
    table.add_row("camera", f"pan {ptz[0]:.1f}° tilt {ptz[1]:.1f}° zoom {ptz[2]:.2f}×" if ptz else "—")
    table.add_row("disk", _bytes(int(snap.get("disk_bytes", 0))))
    for name, model in sorted((snap.get("models") or {}).items()):
        table.add_row("model", f"{name} v{model.get('version', '?')}")
    for resource, status in sorted((snap.get("locks") or {}).items()):
        table.add_row("lock", f"{resource}: {status}")
    if snap.get("finished"):
        table.add_row("finished", snap["finished"])
    return table


def _learning(snap: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    for stage, prog in sorted((snap.get("progress") or {}).items()):
        total = max(1, int(prog.get("total", 1)))
        done = min(total, int(prog.get("done", 0)))
        bar = ProgressBar(total=total, completed=done, width=30)
        table.add_row(stage, Group(bar, Text(f"{done}/{total} {prog.get('unit', '')}", style="dim")))
    last = snap.get("last_metrics") or {}
    for key, values in sorted((snap.get("series") or {}).items()):
        table.add_row(key, Text(f"{sparkline(values)} {last.get(key, values[-1] if values else 0):.4g}"))
    rewards = snap.get("rewards") or []
    if rewards:
        table.add_row("rewards", Text(f"{sparkline(rewards)} {rewards[-1]:.4g}"))
    for warning in snap.get("warnings") or []:
        table.add_row("warning", Text(warning, style="yellow"))
    return table


def render(snap: dict[str, Any]) -> RenderableType:
    title = f"ptzjepa · {snap.get('machine', '')} · {snap.get('data', '')}"
    top = Panel(_states_row(snap), title=title, title_align="left")
    body = Table.grid(expand=True, padding=(0, 2))
    body.add_column(ratio=1)
    body.add_column(ratio=1)
    coverage = Panel(coverage_map(snap.get("coverage") or [[0]]), title="coverage (tilt × pan)")
    body.add_row(Group(_facts(snap), coverage), Panel(_learning(snap), title="learning"))
    return Group(top, body)


class LiveView:
    """Redraws the view a few times a second on its own thread while the node works."""

    def __init__(self, status: NodeStatus, console: Console, refresh_hz: float = 4.0) -> None:
        self.status = status
        self._live = Live(
            get_renderable=lambda: render(self.status.snapshot()), console=console,
            refresh_per_second=refresh_hz, transient=False, redirect_stderr=False,
        )

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.refresh()
        time.sleep(0)
        self._live.__exit__(None, None, None)
