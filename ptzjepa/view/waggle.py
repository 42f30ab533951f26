"""Publishing a node's events to Waggle/Sage through pywaggle, when installed and enabled.

Only what a remote observer needs goes out: state changes, training losses, rewards, model
versions, lock status and warnings. Nothing about the camera's address or credentials does: a
message is public to whoever reads the node. pywaggle is optional: with
`waggle.publish: true` and no pywaggle installed, the node says so once and runs on.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ptzjepa.view.events import Event

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, name: str, value: Any, meta: dict[str, str] | None = None) -> None: ...


def _topic_and_value(event: Event) -> tuple[str, Any, dict[str, str]] | None:
    d = event.data
    if event.kind == "state_entered":
        return "ptzjepa.state", d["state"], {"cycle": str(d.get("cycle", 0))}
    if event.kind == "metric" and d.get("name") == "loss":
        return f"ptzjepa.{d['stage']}.loss", float(d["value"]), {"step": str(d.get("step", 0))}
    if event.kind == "reward":
        return "ptzjepa.reward", float(d["value"]), {"action": str(d.get("action", ""))}
    if event.kind == "model_saved":
        return f"ptzjepa.{d['kind']}.version", int(d["version"]), {"model": str(d["name"])}
    if event.kind == "lock":
        return "ptzjepa.lock", str(d["status"]), {"resource": str(d["resource"])}
    if event.kind == "warning":
        return "ptzjepa.warning", str(d.get("message", "")), {}
    return None


class WagglePublisher:
    """An events subscriber that forwards the chosen events to a pywaggle-like publisher."""

    def __init__(self, publisher: Publisher, every_nth_loss: int = 10) -> None:
        self.publisher = publisher
        self.every_nth_loss = max(1, every_nth_loss)
        self._losses = 0

    def __call__(self, event: Event) -> None:
        found = _topic_and_value(event)
        if found is None:
            return
        name, value, meta = found
        if name.endswith(".loss"):  # per-step losses are many: send one in N
            self._losses += 1
            if self._losses % self.every_nth_loss:
                return
        self.publisher.publish(name, value, meta=meta)


def open_plugin() -> Any | None:
    """A started pywaggle Plugin, or None (with one warning) when pywaggle is not installed."""
    try:
        from waggle.plugin import Plugin
    except ImportError:
        log.warning("event=waggle_unavailable detail='waggle.publish is on but pywaggle is not installed'")
        return None
    plugin = Plugin()
    plugin.__enter__()
    return plugin
