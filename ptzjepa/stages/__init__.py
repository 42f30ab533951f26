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
    from ptzjepa.node import Node

Stage = Callable[["Node"], str]

STAGES: dict[str, str] = {
    "capture": "ptzjepa.stages.capture:capture",
}


def resolve(name: str) -> Stage:
    module_name, _, func = STAGES[name].partition(":")
    return getattr(importlib.import_module(module_name), func)
