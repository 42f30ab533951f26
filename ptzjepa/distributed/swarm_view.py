"""The swarm's combined live view: a line per node, read from each node's `state/status.json`.

It never talks to a node: each node's run writes its status to its own store (ptzjepa.view.status), and
this reads those files through the Store, so the view shows the same facts `cli.py status` would.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ptzjepa.storage.store import Store
from ptzjepa.view.status import STATUS_FILE

if TYPE_CHECKING:
    from ptzjepa.distributed.swarm import Swarm

_UNREACHABLE = "lock service"


def read_status(folder: str) -> dict[str, Any]:
    """A node's last written status ({} before its run has written one)."""
    try:
        store = Store(folder, create=False)
        snap = store.read_json(STATUS_FILE, default=None) if store.is_folder() else None
    except Exception:  # a file being replaced or a store not made yet: the next tick reads it
        return {}
    return snap if isinstance(snap, dict) else {}


def _short(resource: str) -> str:
    return resource.rsplit("/", 1)[-1]


def model_cell(snap: dict[str, Any], name: str) -> str:
    """The model the node holds, or what it waits for and who holds it."""
    locks: dict[str, str] = snap.get("locks") or {}
    for resource, status in locks.items():
        if status.startswith(f"held by {name} "):
            return f"{_short(resource)} {status[len(f'held by {name} '):]}"
    if snap.get("state") != "waiting_for_lock":
        return ""
    service = locks.get(_UNREACHABLE, "")
    if service and service != "reachable again":
        return f"waiting: {service}"
    held = [f"{_short(r)}←{s[len('held by '):]}" for r, s in locks.items() if s.startswith("held by ")]
    return "waiting: " + (", ".join(held) or "checking")


def node_row(snap: dict[str, Any], name: str, returncode: int | None) -> list[str]:
    loss = (snap.get("last_metrics") or {}).get("world_model.loss")
    leases = snap.get("leases") or {}
    ended = "" if returncode is None else f"exit {returncode}"
    state = snap.get("state", "starting")
    if state and "state_seconds" in snap and returncode is None:  # the file is a few seconds old
        seconds = float(snap["state_seconds"]) + max(0.0, time.time() - float(snap.get("updated") or time.time()))
        state = f"{state} {seconds:.0f}s"
    return [name, state or "starting", str(snap.get("cycle", "")), model_cell(snap, name),
            str(snap.get("frames_stored", "")), "" if loss is None else f"{loss:.4f}",
            str(leases.get("taken", "")), ended or snap.get("finished", "")]


def swarm_table(swarm: Swarm) -> Table:
    table = Table(title=f"swarm: {len(swarm.nodes)} nodes · redis {swarm.redis_url} · {swarm.plan.data}",
                  title_justify="left", expand=False)
    for column in ("node", "state", "cycle", "model (leased / waited for)", "frames", "last loss", "leases", "end"):
        table.add_column(column, overflow="fold")
    for node in swarm.nodes:
        table.add_row(*node_row(read_status(str(swarm.plan.node_dir(node.index))), node.name, node.returncode))
    return table


class SwarmView:
    """Redraws the table on every swarm tick while it runs; prints the final one when done."""

    def __init__(self, console: Console, live: bool) -> None:
        self.console = console
        self.live = Live(console=console, auto_refresh=False) if live else None
        self._reported: set[int] = set()

    def __enter__(self) -> SwarmView:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __call__(self, swarm: Swarm) -> None:
        if self.live is not None:
            self.live.update(swarm_table(swarm), refresh=True)
            return
        for node in swarm.nodes:  # headless: a line per node as it ends
            if node.returncode is not None and node.index not in self._reported:
                self._reported.add(node.index)
                tail = f": {node.last_line()}" if node.returncode else ""
                self.console.print(f"{node.name} exited {node.returncode}{tail}", markup=False, highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def final(self, swarm: Swarm) -> None:
        if self.live is None:
            self.console.print(swarm_table(swarm))
