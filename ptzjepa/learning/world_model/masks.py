"""I-JEPA multi-block masks for the masked pretraining mode (`train`).

Per batch, one prediction-block shape (scale and aspect ratio drawn from their ranges) and one
square context-block shape are drawn, so every sample has the same number of prediction patches.
Each sample then places `num_pred_masks` prediction blocks and `num_enc_masks` context blocks at
random; the context loses the patches of the prediction blocks unless overlap is allowed, so
the encoder never sees what it is asked to predict. Context masks are cut to the smallest
context of the batch (a random subset, so no image corner is favoured) to stack as one tensor,
and never below `min_keep`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskBatch:
    """Patch indices (row-major) per mask: context[k] is [B, Kc], targets[k] is [B, Kt]."""

    context: list[torch.Tensor]
    targets: list[torch.Tensor]


def _check_range(name: str, pair: tuple[float, float], lo: float, hi: float) -> None:
    if len(pair) != 2 or not lo <= pair[0] <= pair[1] <= hi:
        raise ValueError(f"{name}: expected [low, high] with {lo} <= low <= high <= {hi}, got {list(pair)}")


@dataclass(frozen=True)
class MaskSampler:
    grid: int  # patches per side
    enc_mask_scale: tuple[float, float] = (0.85, 1.0)
    pred_mask_scale: tuple[float, float] = (0.15, 0.2)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    num_enc_masks: int = 1
    num_pred_masks: int = 4
    min_keep: int = 10
    allow_overlap: bool = False
    tries: int = 50

    def __post_init__(self) -> None:
        if self.grid < 1:
            raise ValueError(f"mask grid: expected >= 1 patches per side, got {self.grid}")
        _check_range("mask.enc_mask_scale", self.enc_mask_scale, 0.0, 1.0)
        _check_range("mask.pred_mask_scale", self.pred_mask_scale, 0.0, 1.0)
        _check_range("mask.aspect_ratio", self.aspect_ratio, 1e-3, 1e3)
        for name in ("num_enc_masks", "num_pred_masks", "min_keep", "tries"):
            if getattr(self, name) < 1:
                raise ValueError(f"mask.{name}: expected >= 1, got {getattr(self, name)}")
        if self.min_keep > self.grid * self.grid:
            raise ValueError(
                f"mask.min_keep: expected at most {self.grid * self.grid} (the patches of a "
                f"{self.grid}x{self.grid} grid), got {self.min_keep}"
            )

    def _uniform(self, bounds: tuple[float, float], generator: torch.Generator) -> float:
        u = float(torch.rand((), generator=generator))
        return bounds[0] + (bounds[1] - bounds[0]) * u

    def _shape(
        self, scale: tuple[float, float], aspect: tuple[float, float], generator: torch.Generator
    ) -> tuple[int, int]:
        area = self._uniform(scale, generator) * self.grid * self.grid
        ratio = self._uniform(aspect, generator)
        height = min(max(round(math.sqrt(area * ratio)), 1), self.grid)
        width = min(max(round(math.sqrt(area / ratio)), 1), self.grid)
        return height, width

    def _place(self, shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
        height, width = shape
        top = int(torch.randint(0, self.grid - height + 1, (), generator=generator))
        left = int(torch.randint(0, self.grid - width + 1, (), generator=generator))
        mask = torch.zeros(self.grid, self.grid, dtype=torch.bool)
        mask[top : top + height, left : left + width] = True
        return mask

    def _one_sample(
        self, pred_shape: tuple[int, int], enc_shape: tuple[int, int], generator: torch.Generator
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        for _ in range(self.tries):
            preds = [self._place(pred_shape, generator) for _ in range(self.num_pred_masks)]
            forbidden = torch.zeros(self.grid, self.grid, dtype=torch.bool)
            if not self.allow_overlap:
                for mask in preds:
                    forbidden |= mask
            encs = []
            for _ in range(self.num_enc_masks):
                for _ in range(self.tries):
                    mask = self._place(enc_shape, generator) & ~forbidden
                    if int(mask.sum()) >= self.min_keep:
                        encs.append(mask)
                        break
            if len(encs) == self.num_enc_masks:
                return encs, preds
        raise ValueError(
            f"mask: could not keep min_keep={self.min_keep} context patches on a "
            f"{self.grid}x{self.grid} grid in {self.tries} tries; lower mask.min_keep or "
            "mask.pred_mask_scale, or raise mask.enc_mask_scale"
        )

    def sample(self, batch: int, generator: torch.Generator) -> MaskBatch:
        if batch < 1:
            raise ValueError(f"batch: expected >= 1, got {batch}")
        pred_shape = self._shape(self.pred_mask_scale, self.aspect_ratio, generator)
        enc_shape = self._shape(self.enc_mask_scale, (1.0, 1.0), generator)
        samples = [self._one_sample(pred_shape, enc_shape, generator) for _ in range(batch)]
        keep = min(int(m.sum()) for encs, _ in samples for m in encs)
        context = []
        for k in range(self.num_enc_masks):
            rows = []
            for encs, _ in samples:
                index = encs[k].flatten().nonzero().squeeze(1)
                pick = torch.randperm(index.numel(), generator=generator)[:keep]
                rows.append(index[pick].sort().values)
            context.append(torch.stack(rows))
        targets = [
            torch.stack([preds[k].flatten().nonzero().squeeze(1) for _, preds in samples])
            for k in range(self.num_pred_masks)
        ]
        return MaskBatch(context=context, targets=targets)
