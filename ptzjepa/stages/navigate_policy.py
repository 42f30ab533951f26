"""The baseline navigation policies that the curious agent is measured against.

`random`: a uniform draw over the actions. `sweep`: a boustrophedon raster made of the largest
moves of the action table: `navigate.sweep_row` pan moves along a row, one tilt move to the next
row (pan direction reversed), and after `sweep_row` rows one zoom move to the next layer (tilt
direction reversed). Tilt and zoom turn back at the limits instead of pushing against them. The
move is a function of the move's index in its round and the current pose only, so a resumed round
goes on where it stopped. Both start every round where the agent would (the same random start).
"""

from __future__ import annotations

import numpy as np

from ptzjepa.camera.base import PTZ
from ptzjepa.learning.agent.actions import ActionTable


def random_action(table: ActionTable, rng: np.random.Generator) -> int:
    return int(rng.integers(table.num_actions))


def largest_move(table: ActionTable, axis: int, sign: int) -> int | None:
    """The action moving furthest along `axis` in direction `sign`, preferring moves along that axis
    only; None if no action moves that way."""
    deltas = table.deltas.numpy()
    along = sign * deltas[:, axis]
    others = np.abs(np.delete(deltas, axis, axis=1)).sum(axis=1)
    for allowed in (others == 0, np.ones_like(others, dtype=bool)):
        candidates = np.flatnonzero((along > 0) & allowed)
        if candidates.size:
            return int(candidates[np.argmax(along[candidates])])
    return None


def sweep_action(table: ActionTable, move: int, at: PTZ, row: int) -> int:
    """The raster's action for move number `move` (0-based within the round) from pose `at`."""
    per_row = row + 1  # row pan moves, then one tilt move
    per_layer = row * per_row + 1  # row rows, then one zoom move
    layer, within = divmod(move, per_layer)
    if within == per_layer - 1:
        return _bounded(table, 2, 1 if layer % 2 == 0 else -1, at.zoom)
    row_index, step = divmod(within, per_row)
    if step < row:
        sign = 1 if (layer * row + row_index) % 2 == 0 else -1
        found = largest_move(table, 0, sign)
        return found if found is not None else _fallback(table)
    return _bounded(table, 1, 1 if layer % 2 == 0 else -1, at.tilt)


def _bounded(table: ActionTable, axis: int, sign: int, value: float) -> int:
    """The largest move along a clamped axis, turned back where it would pass the limit."""
    lo, hi = table.bounds[axis]
    for direction in (sign, -sign):
        found = largest_move(table, axis, direction)
        if found is not None and lo <= value + float(table.deltas[found, axis]) <= hi:
            return found
    return _fallback(table)


def _fallback(table: ActionTable) -> int:
    """Where the raster has no move (an action table without one): the largest pan move of all."""
    return int(np.argmax(np.abs(table.deltas.numpy()[:, 0])))
