"""The evaluate stage, at the end of every cycle: what the run has achieved so far, stored under
`metrics/` so that `experiment`, `report` and `status` can read it later.

- `metrics/coverage/c<cycle>.json`: coverage of the frames taken (ptzjepa.metrics.coverage), per
  stage of this cycle and cumulative; any camera.
- `metrics/heldout/c<cycle>.json`: the current world model's error on the held-out set
  (ptzjepa.metrics.heldout), which only the simulator can render; skipped on a real camera, with
  `metrics.heldout_cases: 0`, or before any world model is trained.

It only reads frames and models and writes these files, so a repeated stage (after a crash)
rewrites the same files. This is the evaluation layer: the held-out set needs the simulator.
"""

from __future__ import annotations

from ptzjepa.metrics import heldout
from ptzjepa.metrics.coverage import CellGrid, coverage_report, frames_taken
from ptzjepa.node import model_store
from ptzjepa.node.context import Node
from ptzjepa.storage.checkpoints import CheckpointError
from ptzjepa.storage.store import StoreError

STAGE = "evaluate"
COVERAGE = "metrics/coverage"


def evaluate(node: Node) -> str:
    records = frames_taken(node.store)
    report = coverage_report(records, CellGrid.from_config(node.config))
    node.store.write_json(f"{COVERAGE}/c{node.cycle:05d}.json", {"cycle": node.cycle, **report})
    this_cycle = report["by_cycle"].get(node.cycle, {})
    newest = this_cycle.get("navigate") or this_cycle.get("all")
    if newest:
        node.events.emit("metric", stage=STAGE, name="coverage", value=newest["fraction"], step=node.cycle)
    if node.config.metrics.heldout_cases and node.config.camera.kind == "sim":
        try:
            result = _heldout(node, records)
        except (CheckpointError, StoreError) as exc:  # a measurement missed, never the loop stopped
            node.events.emit("warning", message=f"held-out error not measured this cycle: {exc}")
            result = None
        if result is not None:
            node.store.write_json(f"{heldout.HELDOUT}/c{node.cycle:05d}.json", result)
            for name in ("one_step", "k_step", "effective_rank"):
                node.events.emit("metric", stage=STAGE, name=f"heldout_{name}", value=result[name],
                                 step=node.cycle)
    return "done"


def _heldout(node: Node, records) -> dict | None:
    picked = model_store.trained_world_model(node)
    if picked is None:
        return None
    from ptzjepa.node.cameras import open_camera

    device = node.device()
    world_model, meta = model_store.load_world_model(node, picked[0], device)
    camera = open_camera(node.config)  # its own camera: the node's keeps its pose and clock
    try:
        cases = heldout.make_cases(node.config, camera.limits, model_store.action_table(node.config, camera.limits))
        excluded = heldout.overlapping(cases, records)
        if excluded:
            node.events.emit("warning", message=f"held-out: {len(excluded)} case(s) coincide with stored "
                                                f"frames and are left out")
        kept = [c for i, c in enumerate(cases) if i not in excluded]
        if not kept:
            return None
        result = heldout.measure(world_model, kept, camera.render_at, device)
    finally:
        camera.close()
    return {"cycle": node.cycle, "world_model": picked[0], "version": meta.get("version"),
            "excluded": len(excluded), "cases_digest": heldout.digest(cases), **result}
