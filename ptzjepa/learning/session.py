"""What the two training stages share: plateau stopping and the per-cycle training session.

A session is one stage's training in one cycle. Its bookkeeping (epochs done, best loss, epochs
without improvement, the loss history) travels inside every checkpoint, so a run killed mid-epoch
restarts from the last checkpoint with the same plateau counter instead of starting over.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Session:
    cycle: int
    node: str
    stage: str = ""
    epochs_done: int = 0
    best: float = float("inf")
    bad_epochs: int = 0
    losses: list[float] = field(default_factory=list)
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["best"] = None if self.best == float("inf") else self.best
        return data

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None, cycle: int, node: str, stage: str) -> Session:
        """The saved session if it is this node's, in this cycle and stage; else a fresh one."""
        saved = (meta or {}).get("session")
        mine = isinstance(saved, dict) and (saved.get("cycle"), saved.get("node"), saved.get("stage")) == (cycle, node, stage)
        if not mine:
            return cls(cycle=cycle, node=node, stage=stage)
        best = saved.get("best")
        return cls(
            cycle=cycle, node=node, stage=stage, epochs_done=int(saved.get("epochs_done", 0)),
            best=float("inf") if best is None else float(best), bad_epochs=int(saved.get("bad_epochs", 0)),
            losses=[float(x) for x in saved.get("losses", [])], steps=int(saved.get("steps", 0)),
        )

    def end_epoch(self, loss: float, threshold: float) -> None:
        """Record an epoch's mean loss; an epoch counts as better only by more than threshold."""
        self.epochs_done += 1
        self.losses.append(loss)
        if loss < self.best - threshold:
            self.best = loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1

    def plateaued(self, patience: int) -> bool:
        return self.bad_epochs >= patience
