"""The machine as one row of states for the live view: the path `done` leads through, where it
loops back, and the other states, with the current one lit; it wraps only between states."""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text


class StatesRow:
    """The machine's row on one line where it fits; else the loop drawn compactly (the state it
    loops back to marked ↻ in place), then wrapped only between states, each line after the
    first starting with its arrow, so that no line holds a lone state name that reads as the
    current one. The other states follow on the same line or on an `also:` line."""

    def __init__(self, snap: dict[str, Any]) -> None:
        self.snap = snap

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        pieces, others = _states_row(self.snap)
        if sum(p.cell_len for p in pieces) > width:
            pieces, others = _states_row(self.snap, compact=True)
        lines = _pack(pieces, width)
        if others.cell_len and lines[-1].cell_len + 5 + others.cell_len <= width:
            lines[-1] = Text.assemble(lines[-1], ("   │ ", "dim"), others)
        elif others.cell_len:
            lines.append(Text.assemble(("also: ", "dim"), others))
        for line in lines:
            line.no_wrap, line.overflow = True, "crop"
            yield line


def _pack(pieces: list[Text], width: int) -> list[Text]:
    """Greedy lines of whole pieces (a state with the arrow before it), never split inside one."""
    lines = [Text()]
    for piece in pieces:
        if lines[-1].cell_len and lines[-1].cell_len + piece.cell_len > width:
            lines.append(Text("  "))
        lines[-1].append_text(piece)
    return lines


def _states_row(snap: dict[str, Any], compact: bool = False) -> tuple[list[Text], Text]:
    """The machine as a row: the states `done` leads through and where it loops back; then the
    others (waiting, failing). The current state is lit in whichever it is. Compact: the state
    the loop returns to carries the ↻ itself instead of being named again at the end."""
    current = snap.get("state")
    path = snap.get("path") or []
    others = snap.get("side") or []
    finals = set(snap.get("finals") or [])
    loop_to = snap.get("loop_to") or ""
    if not path:  # a snapshot from before the machine event: the states as declared
        path, others = snap.get("states") or [current or ""], []
    pieces = []
    for i, name in enumerate(path):
        piece = Text()
        if i:
            piece.append(" → ", style="dim")
        if compact and name == loop_to:
            piece.append("↻", style="bold")
        if name == current:
            piece.append(f" {name} ", style="bold black on green")
        else:
            piece.append(name, style="dim" if name not in finals else "dim italic")
        pieces.append(piece)
    if loop_to:
        piece = Text(" ↻", style="bold")
        if not compact:
            piece.append(" ")
            piece.append(loop_to, style="dim italic")
        pieces[-1].append_text(piece)  # the loop mark never starts a line of its own
    side = Text()
    for i, name in enumerate(others):
        if i:
            side.append(" · ", style="dim")
        if name == current:
            style = "bold white on red" if name in finals else "bold black on yellow"
            side.append(f" {name} ", style=style)
        else:
            side.append(name, style="dim")
    return pieces, side
