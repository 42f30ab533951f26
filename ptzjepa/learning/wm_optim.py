"""Applying world-model gradients: AdamW param groups, per-update schedules, EMA, accumulation.

Kept apart from wm_steps (which only computes gradients) so the benchmark and the tests can time
and compare the steps without an optimiser in the way.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from ptzjepa.learning.jepa import WorldModel
from ptzjepa.learning.masks import MaskSampler
from ptzjepa.learning.schedules import Schedules
from ptzjepa.learning.wm_steps import Reduction, StepStats, masked_step, pair_step

Mode = Literal["pairs", "masked"]


def _no_decay(name: str, param: torch.nn.Parameter) -> bool:
    """Biases, norm scales and the mask token are left out of weight decay."""
    return param.ndim <= 1 or name.endswith("mask_token")


def build_optimizer(
    model: WorldModel, lr: float, weight_decay: float, fused: bool | None = None
) -> torch.optim.AdamW:
    """AdamW over the context encoder and the predictor (the target encoder only follows by EMA).

    Two groups: "apply_wd" True (weights, decayed on the schedule) and False (never decayed).
    fused=None uses the fused CUDA kernel when every parameter is on a GPU.
    """
    decay, plain = [], []
    for prefix, module in (("encoder", model.encoder), ("predictor", model.predictor)):
        for name, param in module.named_parameters(prefix=prefix):
            if param.requires_grad:
                (plain if _no_decay(name, param) else decay).append(param)
    if fused is None:
        fused = all(p.is_cuda for p in decay + plain)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "apply_wd": True},
        {"params": plain, "weight_decay": 0.0, "apply_wd": False},
    ]
    return torch.optim.AdamW(groups, lr=lr, fused=fused)


def apply_schedules(
    optimizer: torch.optim.Optimizer, schedules: Schedules, step: int
) -> tuple[float, float]:
    """Set the learning rate and weight decay of update `step`; returns them for logging."""
    lr, wd = schedules.lr(step), schedules.weight_decay(step)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group.get("apply_wd", True):
            group["weight_decay"] = wd
    return lr, wd


class WorldModelTrainer:
    """Feed it batches; every `accumulation` batches it updates the weights and the EMA target.

    `updates` counts optimiser updates and is the schedules' step index; saving it with the
    optimiser state (state_dict) is all a resume needs.
    """

    def __init__(
        self,
        model: WorldModel,
        schedules: Schedules,
        *,
        mode: Mode = "pairs",
        reward_weight: float = 1.0,
        accumulation: int = 1,
        pair_chunk: int | None = None,
        amp_dtype: torch.dtype | None = None,
        masks: MaskSampler | None = None,
        seed: int = 0,
        fused: bool | None = None,
        surprise_reduction: Reduction = "mean",
        cuda_graphs: bool = False,
    ) -> None:
        if mode not in ("pairs", "masked"):
            raise ValueError(f"mode: expected 'pairs' or 'masked', got {mode!r}")
        if mode == "masked" and masks is None:
            raise ValueError("masks: the masked mode needs a MaskSampler")
        if accumulation < 1:
            raise ValueError(f"accumulation: expected >= 1, got {accumulation}")
        self.model = model
        self.schedules = schedules
        self.mode = mode
        self.reward_weight = reward_weight
        self.accumulation = accumulation
        self.pair_chunk = pair_chunk
        self.amp_dtype = amp_dtype
        self.masks = masks
        self.surprise_reduction = surprise_reduction
        self.cuda_graphs = cuda_graphs  # the model's networks run as CUDA graphs (compile reduce-overhead)
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = build_optimizer(model, schedules.lr(0), schedules.weight_decay(0), fused)
        self.updates = 0
        self.pending = 0  # batches whose gradients wait for the next update

    def train_batch(self, images: torch.Tensor, poses: torch.Tensor) -> StepStats:
        """One batch's gradients; an update (and EMA) when `accumulation` batches are in."""
        self.model.train()
        if self.cuda_graphs:  # a new step: the graphs may reuse the previous step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        if self.pending == 0:
            apply_schedules(self.optimizer, self.schedules, self.updates)
        common: dict[str, Any] = {
            "reward_weight": self.reward_weight,
            "amp_dtype": self.amp_dtype,
            "loss_scale": 1.0 / self.accumulation,
            "surprise_reduction": self.surprise_reduction,
        }
        if self.mode == "masked":
            assert self.masks is not None
            batch = self.masks.sample(images.shape[0], self.generator)
            stats = masked_step(self.model, images, poses, batch, **common)
        else:
            stats = pair_step(self.model, images, poses, pair_chunk=self.pair_chunk, **common)
        self.pending += 1
        if self.pending == self.accumulation:
            self._update()
        elif self.cuda_graphs and self.pending == 1:
            # Autograd keeps the first batch's gradients as they come, in the graphs' own output
            # memory, which the next replay overwrites; copies take their place, and later batches
            # add to the copies.
            for param in self.model.parameters():
                if param.grad is not None:
                    param.grad = param.grad.clone()
        return stats

    def flush(self) -> bool:
        """Apply gradients of a partial accumulation (end of an epoch); False if none waited."""
        if self.pending == 0:
            return False
        self._update()
        return True

    def _update(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.model.ema_update(self.schedules.momentum(self.updates))
        self.updates += 1
        self.pending = 0

    @property
    def lr(self) -> float:
        return self.schedules.lr(self.updates)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("optimizer", "updates"):
            if key not in state:
                raise ValueError(f"trainer state: missing key {key!r}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.pending = 0
        self.optimizer.zero_grad(set_to_none=True)
