"""Nodes with frames already stored, for the learning-stage tests (tiny profile, simulator)."""

from __future__ import annotations

import uuid

from ptzjepa.config.loading import load_config
from ptzjepa.node.context import Node
from ptzjepa.stages.capture import capture
from ptzjepa.storage.store import Store


def captured_node(*overrides: str, url: str | None = None) -> Node:
    """A tiny-profile node on a fresh store (memory:// unless url is given) after one capture."""
    config = load_config("tiny", ["capture.iterations=3", "capture.movements=4", *overrides])
    node = Node(config=config, store=Store(url or f"memory://stage-{uuid.uuid4().hex}"))
    assert capture(node) == "done"
    return node
