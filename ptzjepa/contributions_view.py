"""The contributions table `cli.py status` prints under a node's view: a row per model and node."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def contributions_table(shared: dict[str, Any]) -> Table:
    """Per shared model and node: updates, frames seen, epochs, dreams, training time, and the
    node's share of the model's updates."""
    table = Table(title=f"shared world models · {shared.get('url', '')}", title_justify="left")
    for column in ("model", "version", "token", "node", "updates", "share", "frames", "epochs", "dreams", "time"):
        table.add_column(column, justify="left" if column in ("model", "node") else "right")
    for name, model in sorted((shared.get("models") or {}).items()):
        rows = sorted((model.get("contributions") or {}).items())
        total = sum(int(r.get("updates", 0)) for _, r in rows) or 1
        for i, (node, r) in enumerate(rows):
            first = i == 0
            table.add_row(
                name if first else "", str(model.get("version") or "") if first else "",
                str(model.get("fence") or "") if first else "", node, str(int(r.get("updates", 0))),
                f"{int(r.get('updates', 0)) / total:.0%}", str(int(r.get("frames", 0))), str(int(r.get("epochs", 0))),
                str(int(r.get("dreams", 0))), f"{float(r.get('seconds', 0)):.0f} s",
            )
    return table
