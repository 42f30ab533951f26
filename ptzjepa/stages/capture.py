"""The capture stage: random starts and random moves, resumable after a crash.

For each of `iterations` rounds: a random absolute position, then `movements` relative moves, each
drawn per axis from the configured discrete steps; a frame is grabbed and stored after every move
(so a round stores movements + 1 frames). The plan is drawn from (seed, cycle), so a restarted run
redraws the same plan and continues at the first step that has no stored frame.
"""

from __future__ import annotations

import attrs
import numpy as np

from ptzjepa.camera.base import PTZ, PTZLimits
from ptzjepa.config.settings import CaptureConfig
from ptzjepa.node.context import Node
from ptzjepa.stages.camera_ops import FailureBudget, execute, move_back
from ptzjepa.storage.frames import Command, frame_id
from ptzjepa.storage.store import StoreError

STAGE = "capture"


@attrs.frozen
class Step:
    index: int
    round: int
    command: Command


def capture_plan(cfg: CaptureConfig, limits: PTZLimits, seed: int, cycle: int) -> list[Step]:
    rng = np.random.default_rng([seed, cycle])
    steps: list[Step] = []
    for r in range(cfg.iterations):
        start = PTZ(
            float(rng.uniform(limits.pan.lo, limits.pan.hi)),
            float(rng.uniform(limits.tilt.lo, limits.tilt.hi)),
            float(rng.uniform(*cfg.start_zoom)),
        )
        steps.append(Step(len(steps), r, Command("absolute", limits.fit(start))))
        for _ in range(cfg.movements):
            delta = PTZ(
                float(rng.choice(cfg.pan_steps)),
                float(rng.choice(cfg.tilt_steps)),
                float(rng.choice(cfg.zoom_steps)),
            )
            steps.append(Step(len(steps), r, Command("relative", delta)))
    return steps


def capture(node: Node) -> str:
    cfg = node.config.capture
    plan = capture_plan(cfg, node.limits, cfg.seed, node.cycle)
    done = int(node.progress(STAGE).get("done", 0))
    if done and done < len(plan) and plan[done].command.kind == "relative":
        _return_to_last_frame(node, plan, done)
    budget = FailureBudget(limit=max(3, cfg.movements + 1))
    stored = node.frames.count()
    for step in plan[done:]:
        if node.stop.is_set():
            return "stopped"
        node.events.emit("progress", stage=STAGE, done=step.index, total=len(plan), unit="frames")
        fid = frame_id(node.cycle, STAGE, step.index)
        frame = execute(node, step.command, fid)
        if frame is not None:
            record = node.frames.put(
                frame, step.command, fid=fid, cycle=node.cycle, stage=STAGE, node=node.name,
            )
            stored += 1
            node.events.emit(
                "frame_stored", id=record.id, pan=frame.ptz.pan, tilt=frame.ptz.tilt,
                zoom=frame.ptz.zoom, stage=STAGE, count=stored,
            )
        node.save_progress(STAGE, done=step.index + 1, total=len(plan))
        if not budget.record(frame is not None):
            return "failed"
    node.events.emit("progress", stage=STAGE, done=len(plan), total=len(plan), unit="frames")
    return "done"


def _return_to_last_frame(node: Node, plan: list[Step], done: int) -> None:
    """Put the camera back where this round's last stored frame was taken, so relative moves
    continue from where they left off (or at the round's start if none of it was stored).

    If the camera fails that move, the round goes on from wherever the head is: every frame's
    record holds the position the camera reported for it, so nothing stored is wrong."""
    why = "resuming capture: cannot return to the last frame, relative moves go on from here"
    for step in reversed(plan[:done]):
        fid = frame_id(node.cycle, STAGE, step.index)
        if node.frames.has_record(fid):
            try:
                record = node.frames.record(fid)
            except StoreError as exc:  # a damaged record: the step before it may still tell
                node.warn(f"resuming capture: frame record skipped: {exc}")
                continue
            move_back(node, record.ptz, why)
            return
        if step.command.kind == "absolute":
            move_back(node, step.command.value, why)
            return
