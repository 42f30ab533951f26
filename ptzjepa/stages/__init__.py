"""One module per machine state's work. A stage is `fn(node) -> outcome word`.

The registry maps a stage name (as written in machines/*.yaml) to "module:function". It is
resolved lazily so that listing or drawing machines never imports torch. A machine that names a
stage missing from this table is refused when it is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ptzjepa.node.context import Node

Stage = Callable[["Node"], str]

STAGES: dict[str, str] = {
    "capture": "ptzjepa.stages.capture:capture",
    "train_world_model": "ptzjepa.stages.world_model:train_world_model",
    "dream": "ptzjepa.stages.dream:dream",
    "train_agent": "ptzjepa.stages.agent:train_agent",
    "navigate": "ptzjepa.stages.navigate:navigate",
    "evaluate": "ptzjepa.stages.evaluate:evaluate",
    "wait_for_lock": "ptzjepa.stages.wait_for_lock:wait_for_lock",
    "pretrain_world_model": "ptzjepa.stages.world_model:pretrain_world_model",
}


def resolve(name: str) -> Stage:
    module_name, _, func = STAGES[name].partition(":")
    return getattr(importlib.import_module(module_name), func)
