"""The start-up look over a node's store: damage found before a stage trips on it.

Run once per `cli.py run`, with the run lock held, after the machine state is read (the rest of
what the node reads back is checked where it is read). Cheap on remote stores: the state files are
small, and checkpoints and dream chunks are checked by their zip directory only (a whole load would
read every byte); damage inside a member is found when the file is loaded. docs/resilience.md
lists what happens to each kind of file.
"""

from __future__ import annotations

from typing import Any

from ptzjepa.storage.checkpoints import AGENTS, WORLD_MODELS, Checkpoints
from ptzjepa.storage.damage import (
    Damaged, Warn, check_torch_structure, is_damaged_name, move_aside, read_json_checked, require,
)
from ptzjepa.node.context import Node
from ptzjepa.stages.dream import DREAMS, check_dream_info
from ptzjepa.storage.store import Store
from ptzjepa.view.status import STATUS_FILE, NodeStatus

CONFIG_SNAPSHOT = "state/config.json"
MODEL_KINDS = (WORLD_MODELS, AGENTS)


def check_at_start(node: Node) -> None:
    """Move aside (one warning each) every damaged progress file, config snapshot, model_info.json,
    checkpoint file and dream-set file, rebuilding what can be rebuilt."""
    node.check_progress_files()
    _check_config_snapshot(node)
    for kind in MODEL_KINDS:
        store = node.shared if kind == WORLD_MODELS else node.store  # world models: storage.shared
        _check_models(node, Checkpoints(store, kind, keep=node.config.storage.keep_checkpoints, warn=node.warn))
    _check_dream_sets(node)


def read_status(store: Store, warn: Warn, repair: bool = True) -> dict[str, Any] | None:
    """The previous run's state/status.json when it is whole; a damaged one is moved aside (or,
    without `repair`, only reported) and the status starts afresh from this run's events."""
    try:
        return read_json_checked(store, STATUS_FILE, _check_status)
    except Damaged as exc:
        if repair:
            move_aside(store, STATUS_FILE, str(exc), "the status starts afresh from this run", warn)
        else:
            warn(f"damaged file {STATUS_FILE}: {exc}")
        return None


def _check_status(data: Any) -> None:
    require(isinstance(data, dict), "not an object")
    NodeStatus().restore(data)  # raises on a value of the wrong type


def _check_config_snapshot(node: Node) -> None:
    """state/config.json is only written (a record of the settings), but a damaged one is kept
    aside rather than silently overwritten: it may be the only record of an earlier run's settings."""
    try:
        read_json_checked(node.store, CONFIG_SNAPSHOT, lambda data: require(isinstance(data, dict), "not an object"))
    except Damaged as exc:
        move_aside(node.store, CONFIG_SNAPSHOT, str(exc), "this run writes its own settings there", node.warn)


def _check_models(node: Node, checkpoints: Checkpoints) -> None:
    for name in checkpoints.names():
        info = checkpoints.info(name)  # rebuilds a missing or damaged model_info.json
        folder = f"{checkpoints.kind}/{name}"
        store = checkpoints.store
        for file in store.list(folder, ".pt"):
            try:
                check_torch_structure(store, f"{folder}/{file}")
            except Damaged as exc:
                current = info is not None and info.get("file") == file
                instead = "loading falls back to the version before" if current else "the versions before and after are kept"
                move_aside(store, f"{folder}/{file}", str(exc), instead, node.warn)
                checkpoints.forget_version(name, file)


def _check_dream_sets(node: Node) -> None:
    """A set with a damaged file loses its info.json (so it is incomplete again: the dream stage
    remakes the missing chunk from its own seed when the set is the current cycle's)."""
    for name in node.store.list_dirs(DREAMS):
        if is_damaged_name(name):
            continue
        folder = f"{DREAMS}/{name}"
        redo = "the set is incomplete again and is remade, each chunk from its own seed"
        try:
            read_json_checked(node.store, f"{folder}/info.json", check_dream_info)
        except Damaged as exc:
            move_aside(node.store, f"{folder}/info.json", str(exc), redo, node.warn)
        for file in node.store.list(folder, ".pt"):
            try:
                check_torch_structure(node.store, f"{folder}/{file}")
            except Damaged as exc:
                move_aside(node.store, f"{folder}/{file}", str(exc), redo, node.warn)
                node.store.delete(f"{folder}/info.json")

