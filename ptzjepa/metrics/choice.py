"""Choice quality: how good a navigation move was among all the moves it could have made.

Only a simulator can show every candidate view without moving there. At a graded step the views
after every action are rendered, the world model's real prediction error is measured for each
(the same error navigation stores as the move's reward), and the chosen action's percentile among
the others is recorded: 100 % the largest error (the best a curious agent can do), 0 % the
smallest, 50 % on average for a uniform random choice (ties count half).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ptzjepa.camera.base import PTZ
from ptzjepa.learning.agent.actions import ActionTable
from ptzjepa.node.frame_tensors import to_tensor
from ptzjepa.storage.store import Store, StoreError

CHOICES = "metrics/choice"

Render = Callable[[PTZ], np.ndarray]


def percentile(errors: Sequence[float], chosen: int) -> float:
    """Percentile (0–100) of errors[chosen] among the other actions' errors; ties count half."""
    values = np.asarray(errors, dtype=np.float64)
    if not 0 <= chosen < len(values):
        raise ValueError(f"chosen: expected an action index in [0, {len(values)}), got {chosen}")
    others = np.delete(values, chosen)
    if others.size == 0:
        return 100.0  # the only move there is, is the best one
    below = np.count_nonzero(others < values[chosen]) + 0.5 * np.count_nonzero(others == values[chosen])
    return float(100.0 * below / others.size)


@torch.no_grad()
def action_errors(world_model, image: torch.Tensor, pose: torch.Tensor, table: ActionTable,
                  render: Render) -> list[float]:
    """The world model's real prediction error for every action of `table` from the view `image`
    [1, 3, H, W] at `pose` [1, 3]: predicted tokens after the move against the target encoder's
    tokens of the rendered view there, as navigation measures a move's reward."""
    count = table.num_actions
    device = image.device
    poses = pose.expand(count, 3)
    after = table.apply(poses.cpu(), torch.arange(count)).to(device)
    size = world_model.spec.image_size
    views = torch.stack([to_tensor(render(PTZ(*map(float, p))), size) for p in after.cpu()]).to(device)
    context = world_model.encode_context(image).expand(count, -1, -1)
    predicted, _ = world_model.predict(context, poses, after)
    target = world_model.encode_target(views)
    errors = F.smooth_l1_loss(predicted.float(), target.float(), reduction="none").mean(dim=(1, 2))
    return [float(e) for e in errors.cpu()]


def save_choice(store: Store, fid: str, record: dict[str, Any]) -> None:
    """One graded step, as `metrics/choice/<frame id>.json` (rewritten if the step is redone)."""
    store.write_json(f"{CHOICES}/{fid}.json", record)


def load_choices(store: Store) -> list[dict[str, Any]]:
    """Every graded step of a run, oldest first; a damaged file is skipped."""
    found = []
    for name in store.list(CHOICES, ".json"):
        try:
            record = store.read_json(f"{CHOICES}/{name}", default=None)
        except StoreError:
            continue
        if isinstance(record, dict) and "percentile" in record:
            found.append(record)
    return found
