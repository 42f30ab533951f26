"""Applying world-model gradients: AdamW param groups, per-update schedules, EMA, accumulation.

Kept apart from steps.py (which only computes gradients) so the benchmark and the tests can time
and compare the steps without an optimiser in the way.

Two ways to run one update of `accumulation` micro-batches (`update`): the micro-batch loop
(`train_batch` per micro-batch, a stop request honoured between them) and the batched pass
(batched.py: all micro-batches at once, the same arithmetic), which on CUDA can run as one
CUDA graph (graph.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from ptzjepa.learning.schedules import Schedules
from ptzjepa.learning.world_model.batched import batched_pair_step
from ptzjepa.learning.world_model.graph import GraphedUpdate
from ptzjepa.learning.world_model.jepa import WorldModel
from ptzjepa.learning.world_model.masks import MaskSampler
from ptzjepa.learning.world_model.steps import Reduction, StepStats, masked_step, pair_step

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
        batched: bool = False,
        graph_update: bool = False,
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
        self.batched = batched and mode == "pairs"  # masks change shapes per micro-batch
        self.graphed: GraphedUpdate | None = None
        if graph_update and self.batched and next(model.parameters()).is_cuda and not cuda_graphs:
            self._make_graphable()

    def update(self, images: torch.Tensor, poses: torch.Tensor,
               should_stop: Callable[[], bool] | None = None) -> dict[str, float] | None:
        """One whole update from `accumulation` micro-batches of images [accumulation * B, ...];
        the mean of the micro-batches' values. The micro-batch loop checks `should_stop` between
        micro-batches and, when it is set, drops the update's partial gradients and returns None:
        the model stays exactly as after the previous update."""
        if images.shape[0] % self.accumulation:
            raise ValueError(f"images: expected a multiple of accumulation={self.accumulation}, got {images.shape[0]}")
        if self.batched:
            return self._batched(images, poses)
        if self.pending:
            raise RuntimeError("update: a partial accumulation is pending (train_batch without flush)")
        size = images.shape[0] // self.accumulation
        sums: dict[str, float] = {}
        for m in range(self.accumulation):
            if m and should_stop is not None and should_stop():
                self.optimizer.zero_grad(set_to_none=True)
                self.pending = 0
                return None
            part = slice(m * size, (m + 1) * size)
            for key, value in self.train_batch(images[part], poses[part]).as_floats().items():
                sums[key] = sums.get(key, 0.0) + value / self.accumulation
        return sums

    def _batched(self, images: torch.Tensor, poses: torch.Tensor) -> dict[str, float]:
        self.model.train()
        lr, wd = apply_schedules(self.optimizer, self.schedules, self.updates)
        momentum = self.schedules.momentum(self.updates)
        if self.graphed is None:
            stats = batched_pair_step(self.model, images, poses, images.shape[0] // self.accumulation,
                                      **self._step_options())
            self._update()
            return stats.as_floats()
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr  # apply_schedules set floats: the graph reads these tensors
            group["weight_decay"] = 0.0
        self._lr.fill_(lr)
        self._decay.fill_(1.0 - lr * wd)
        self._momentum.fill_(momentum)
        outputs = self.graphed(images, poses)
        self.updates += 1
        return dict(zip(outputs, torch.stack(list(outputs.values())).tolist()))

    def _step_options(self) -> dict[str, Any]:
        return {"reward_weight": self.reward_weight, "amp_dtype": self.amp_dtype,
                "loss_scale": 1.0 / self.accumulation, "surprise_reduction": self.surprise_reduction}

    def _make_graphable(self) -> None:
        """Tensors for what changes per update, a capturable optimiser, and the graph's body."""
        device = next(self.model.parameters()).device
        self._lr = torch.tensor(self.schedules.lr(0), device=device)
        self._decay = torch.tensor(1.0, device=device)
        self._momentum = torch.tensor(self.schedules.momentum(0), device=device)
        decayed = [p for g in self.optimizer.param_groups if g.get("apply_wd", True) for p in g["params"]]
        target = list(self.model.target_encoder.parameters())
        online = [p.detach() for p in self.model.encoder.parameters()]
        for group in self.optimizer.param_groups:
            group["capturable"] = True

        def body(images: torch.Tensor, poses: torch.Tensor) -> dict[str, torch.Tensor]:
            stats = batched_pair_step(self.model, images, poses, images.shape[0] // self.accumulation,
                                      **self._step_options())
            with torch.no_grad():
                torch._foreach_mul_(decayed, self._decay)
                self.optimizer.step()
                torch._foreach_mul_(target, self._momentum)
                torch._foreach_add_(target, torch._foreach_mul(online, 1.0 - self._momentum))
            # Set to None, also while capturing: the next backward (or replay) writes them afresh.
            self.optimizer.zero_grad(set_to_none=True)
            return {name: getattr(stats, name).float().mean() for name in
                    ("loss", "prediction_loss", "reward_loss", "surprise", "error")}

        self.graphed = GraphedUpdate(body, prepare=lambda: self.optimizer.zero_grad(set_to_none=True))

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
        if self.graphed is not None:  # state saved without graphs (a CPU run) keeps its step on the host
            for group in self.optimizer.param_groups:
                group["capturable"] = True
                for param in group["params"]:
                    slot = self.optimizer.state.get(param, {})
                    if "step" in slot:
                        slot["step"] = torch.as_tensor(slot["step"], dtype=torch.float32, device=param.device)
        self.updates = int(state["updates"])
        self.pending = 0
        self.optimizer.zero_grad(set_to_none=True)
