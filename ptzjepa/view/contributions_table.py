"""The contributions table `cli.py status` prints under a node's view: a row per model and node."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def contributions_table(shared: dict[str, Any]) -> Table:
    """Per shared model and node: updates, frames seen, epochs, dreams, training time, and the
    node's share of the model's updates."""
    table = Table(title=f"shared world models · {shared.get('url', '')}", title_justify="left")
    models = shared.get("models") or {}
    widest = max((len(n) for m in models.values() for n in (m.get("contributions") or {})), default=4)
    for column in ("model", "v", "token", "node", "updates", "share", "frames", "epochs", "dreams", "time"):
        wide = column in ("model", "node")
        table.add_column(column, justify="left" if wide else "right", no_wrap=True,
                         min_width=widest if column == "node" else None)
    for name, model in sorted(models.items()):
        rows = sorted((model.get("contributions") or {}).items())
        total = sum(int(r.get("updates", 0)) for _, r in rows) or 1
        for i, (node, r) in enumerate(rows):
            first = i == 0
            table.add_row(
                name if first else "", str(model.get("version") or "") if first else "",
                str(model.get("fence") or "") if first else "", node, str(int(r.get("updates", 0))),
                f"{int(r.get('updates', 0)) / total:.0%}", str(int(r.get("frames", 0))), str(int(r.get("epochs", 0))),
                str(int(r.get("dreams", 0))), f"{float(r.get('seconds', 0)):.0f}s",
            )
    return table
