"""The report's own coverage count, for stores without stored coverage metrics: how many distinct
pan/tilt cells (30° × 15°, the cells the issue's first measurements used) each cycle's frames of
each stage visited. Zoom is ignored and pan is taken modulo 360°."""

from __future__ import annotations

from collections import defaultdict

from ptzjepa.report.gather import Pose

PAN_CELL_DEG = 30.0
TILT_CELL_DEG = 15.0


def cell(pose: Pose) -> tuple[int, int]:
    return int((pose.pan % 360.0) // PAN_CELL_DEG), int(pose.tilt // TILT_CELL_DEG)


def cells_per_cycle(poses: list[Pose]) -> dict[str, dict[int, int]]:
    """stage -> cycle -> number of distinct cells its frames fell in."""
    seen: dict[str, dict[int, set[tuple[int, int]]]] = defaultdict(lambda: defaultdict(set))
    for pose in poses:
        seen[pose.stage][pose.cycle].add(cell(pose))
    return {stage: {cycle: len(found) for cycle, found in sorted(cycles.items())} for stage, cycles in sorted(seen.items())}
