"""Coverage: how much of the reachable pan × tilt × zoom space the frames of a run fell in.

The space is cut into cells (`metrics.cell_pan_deg` × `cell_tilt_deg` × `cell_zoom_octaves`, zoom
cells on a log scale since 1x→2x changes the view as much as 2x→4x). For a set of frames: the
fraction of all cells visited, the entropy of the visit histogram (nats; log(cells visited) when
every visited cell got the same share) and the revisit rate (frames whose cell an earlier frame of
the same set had already visited, over all frames).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import attrs

from ptzjepa.camera.base import PTZ, PTZLimits
from ptzjepa.config.settings import Config
from ptzjepa.storage.frames import FrameRecord, FrameStore
from ptzjepa.storage.store import Store, StoreError


@attrs.frozen
class CellGrid:
    """The cells of the camera's reachable space."""

    limits: PTZLimits
    pan_deg: float = 30.0
    tilt_deg: float = 15.0
    zoom_octaves: float = 1.0

    @classmethod
    def from_config(cls, config: Config) -> CellGrid:
        m = config.metrics
        return cls(config.camera.limits.to_limits(), m.cell_pan_deg, m.cell_tilt_deg, m.cell_zoom_octaves)

    @property
    def shape(self) -> tuple[int, int, int]:
        lim = self.limits
        zoom_span = math.log2(lim.zoom.hi / lim.zoom.lo) / self.zoom_octaves
        return (max(1, math.ceil(lim.pan.span / self.pan_deg - 1e-9)),
                max(1, math.ceil(lim.tilt.span / self.tilt_deg - 1e-9)),
                max(1, math.ceil(zoom_span - 1e-9)))

    @property
    def cells(self) -> int:
        p, t, z = self.shape
        return p * t * z

    def cell(self, ptz: PTZ) -> tuple[int, int, int]:
        lim = self.limits
        at = lim.fit(ptz)
        shape = self.shape
        index = (int((at.pan - lim.pan.lo) // self.pan_deg),
                 int((at.tilt - lim.tilt.lo) // self.tilt_deg),
                 int(math.log2(at.zoom / lim.zoom.lo) // self.zoom_octaves))
        return tuple(min(max(i, 0), n - 1) for i, n in zip(index, shape))  # the top edge is in the last cell


@attrs.frozen
class Coverage:
    frames: int
    cells_visited: int
    fraction: float  # of all cells of the grid
    entropy: float  # nats, of the visit histogram
    revisit_rate: float

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def coverage(poses: Iterable[PTZ], grid: CellGrid) -> Coverage:
    """Coverage of frames taken at `poses` (in the order taken)."""
    visits = Counter(grid.cell(p) for p in poses)
    frames = sum(visits.values())
    if frames == 0:
        return Coverage(0, 0, 0.0, 0.0, 0.0)
    entropy = -sum(n / frames * math.log(n / frames) for n in visits.values())
    return Coverage(frames=frames, cells_visited=len(visits), fraction=len(visits) / grid.cells,
                    entropy=max(0.0, entropy), revisit_rate=(frames - len(visits)) / frames)


def frames_taken(store: Store) -> list[FrameRecord]:
    """Every frame a run took, oldest first, including those whose image the storage limits removed
    but whose position they kept: coverage is about where the camera looked, not what is kept."""
    frames = FrameStore(store)
    found = []
    for fid in frames.record_ids():
        try:
            found.append(frames.record(fid))
        except StoreError:  # a damaged record: the frame is not counted, the metric still comes
            continue
    return found


def coverage_report(records: list[FrameRecord], grid: CellGrid) -> dict[str, Any]:
    """Coverage of all frames, per stage, per cycle (and stage within it), and cumulative up to
    each cycle: {"all", "by_stage", "by_cycle": {c: {"all", "<stage>"...}}, "cumulative": {c: ...}}."""
    records = sorted(records, key=lambda r: (r.cycle, r.id))
    by_stage: dict[str, list[PTZ]] = defaultdict(list)
    by_cycle: dict[int, dict[str, list[PTZ]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_stage[r.stage].append(r.ptz)
        by_cycle[r.cycle]["all"].append(r.ptz)
        by_cycle[r.cycle][r.stage].append(r.ptz)
    cumulative, so_far = {}, []
    for cycle in sorted(by_cycle):
        so_far += by_cycle[cycle]["all"]
        cumulative[cycle] = coverage(so_far, grid).to_dict()
    return {
        "grid": {"shape": list(grid.shape), "cells": grid.cells, "pan_deg": grid.pan_deg,
                 "tilt_deg": grid.tilt_deg, "zoom_octaves": grid.zoom_octaves},
        "all": coverage((r.ptz for r in records), grid).to_dict(),
        "by_stage": {s: coverage(p, grid).to_dict() for s, p in sorted(by_stage.items())},
        "by_cycle": {c: {k: coverage(p, grid).to_dict() for k, p in sorted(parts.items())}
                     for c, parts in sorted(by_cycle.items())},
        "cumulative": cumulative,
    }
