"""One whole world-model update in one pass: M micro-batches, pairs only inside each.

The update (like `pair_step` run M times with accumulation) takes a global batch of M·B frames
as M micro-batches of B: the B² (context, target) pairs of each micro-batch, a loss per
micro-batch, a surprise per micro-batch, gradients summed with weight 1/M. Run that way one
update is M small steps, and at B = 4 a GPU spends most of each waiting for the host.

Here the M micro-batches go through each network together: both encoders see all M·B images at
once, the predictor sees all M·B² pairs (block-diagonal: context and target always from the same
micro-batch), and one backward gives the accumulated gradient. The only per-micro-batch quantity
that does not fall out of a batched pass is the surprise, the size of the target encoder's
gradient of *that micro-batch's* prediction loss: a per-example gradient. It is computed with
torch.func: the target encoder is run under vmap over the micro-batches with vjp, so one batched
backward gives M separate parameter gradients, whose L1 sizes are the M surprises. The cotangent
of the smooth-L1 loss needs no autograd: d/dh smooth-L1(p, h) = -clamp(p - h, -1, 1) (beta 1),
exactly what autograd computes.

The result equals M calls of `pair_step` with loss_scale 1/M up to the order of floating-point
sums; tests/test_learning_wm_batched.py checks loss, surprise and gradients in float64.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call, vjp, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from ptzjepa.learning.world_model.jepa import WorldModel
from ptzjepa.learning.world_model.steps import Reduction


@dataclass
class BatchStats:
    """Per-micro-batch detached values ([M] tensors); reading them is the caller's sync point."""

    loss: torch.Tensor
    prediction_loss: torch.Tensor
    reward_loss: torch.Tensor
    surprise: torch.Tensor
    error: torch.Tensor
    pairs: int

    def as_floats(self) -> dict[str, float]:
        """Means over the micro-batches: what the micro-batch loop's per-step values average to."""
        names = ("loss", "prediction_loss", "reward_loss", "surprise", "error")
        values = torch.stack([getattr(self, n).double().mean() for n in names]).tolist()
        return dict(zip(names, values))


def micro_pair_index(micro: int, batch: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(context, target) rows of the M·B² block-diagonal pairs: micro-batch-major, then
    context-major inside each, as M successive `pair_index(B)` calls would visit them."""
    ids = torch.arange(batch, device=device)
    base = (torch.arange(micro, device=device) * batch).repeat_interleave(batch * batch)
    return base + ids.repeat_interleave(batch).repeat(micro), base + ids.repeat(batch * micro)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    # No autocast weight cache: under CUDA-graph capture a cached cast would be stale on replay.
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


def _wide(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def _l1_sizes(grads: tuple[torch.Tensor, ...], reduction: Reduction) -> torch.Tensor:
    """[M] sums (or means) of |g| over every parameter, from gradients with a leading M."""
    flat = torch.cat([g.flatten(1) for g in grads], dim=1)
    total = flat.abs().sum(dim=1)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / flat.shape[1]
    raise ValueError(f"surprise_reduction: expected 'sum' or 'mean', got {reduction!r}")


def target_tokens_and_surprise(
    model: WorldModel, images: torch.Tensor, pred: torch.Tensor, micro: int, reduction: Reduction,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LN(target encoder) tokens [M·B, N, D] (detached, widened) and the M surprises.

    pred: the predictions [M·B², N, D] of the block-diagonal pairs (held constant).
    """
    batch = images.shape[0] // micro
    params = {k: v.detach() for k, v in model.target_encoder.named_parameters()}
    buffers = dict(model.target_encoder.named_buffers())
    encoder = model.target_encoder
    count = batch * batch * pred.shape[1] * pred.shape[2]  # L_aux is a mean over its pairs' elements

    def one(x: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def tokens(weights: dict[str, torch.Tensor]) -> torch.Tensor:
            # The math kernel is made of operations vmap batches; the fused kernels have no
            # batching rule for their backward, so vmap would loop over the micro-batches. No
            # autocast: vjp's backward under vmap fails on its mixed dtypes (torch 2.11), and
            # the target encoder is a small share of the update, so it runs in float32.
            with sdpa_kernel(SDPBackend.MATH):
                out = functional_call(encoder, (weights, buffers), (x,))
                return F.layer_norm(out, (out.shape[-1],))

        h, pull = vjp(tokens, params)
        wide = _wide(h)
        guess = _wide(p).reshape(batch, batch, *wide.shape[1:])  # [context, target, N, D]
        cot = -(guess - wide.unsqueeze(0)).clamp(-1.0, 1.0).sum(0)  # d/dh of sum smooth-L1
        (grads,) = pull((cot / count).to(h.dtype))
        return wide, _l1_sizes(tuple(g.unsqueeze(0) for g in grads.values()), reduction)[0]

    shape = images.shape
    h, surprise = vmap(one)(images.reshape(micro, batch, *shape[1:]),
                            pred.detach().reshape(micro, batch * batch, *pred.shape[1:]))
    return h.reshape(shape[0], *h.shape[2:]), surprise


def batched_pair_step(
    model: WorldModel,
    images: torch.Tensor,
    poses: torch.Tensor,
    micro_batch: int,
    *,
    reward_weight: float = 1.0,
    amp_dtype: torch.dtype | None = None,
    loss_scale: float | None = None,
    surprise_reduction: Reduction = "mean",
) -> BatchStats:
    """Accumulate into .grad the gradient of one update over images [M·B, ...] in micro-batches of
    B = micro_batch, as M `pair_step` calls with loss_scale 1/M would (loss_scale None: 1/M)."""
    total = images.shape[0]
    if images.ndim != 4 or total < 1 or poses.shape != (total, 3):
        raise ValueError(f"images, poses: expected [G, 3, H, W] and [G, 3], got {list(images.shape)}, {list(poses.shape)}")
    if micro_batch < 1 or total % micro_batch:
        raise ValueError(f"micro_batch: expected a divisor of the {total} images, got {micro_batch}")
    micro, batch = total // micro_batch, micro_batch
    scale = 1.0 / micro if loss_scale is None else loss_scale
    ctx_i, tgt_j = micro_pair_index(micro, batch, images.device)
    with _autocast(images.device, amp_dtype):
        tokens = model.encode_context(images)
        pred, reward = model.predictor(tokens[ctx_i], poses[ctx_i], poses[tgt_j])
    target, surprise = target_tokens_and_surprise(model, images, pred, micro, surprise_reduction)
    error = F.smooth_l1_loss(_wide(pred), target[tgt_j], reduction="none").mean(dim=-1)  # [M·B², N]
    error = error.reshape(micro, batch * batch, -1)
    per_pair = surprise.to(error.dtype)[:, None, None].expand_as(error)
    wanted = torch.stack((per_pair, error.detach()), dim=-1)
    tokens_per_micro = error.shape[1] * error.shape[2]
    prediction = error.sum(dim=(1, 2)) / tokens_per_micro
    reward_part = F.smooth_l1_loss(_wide(reward).reshape(wanted.shape), wanted, reduction="none")
    reward_part = reward_part.sum(dim=(1, 2, 3)) / (2 * tokens_per_micro)
    loss = prediction + reward_weight * reward_part
    (loss.sum() * scale).backward()
    return BatchStats(loss.detach(), prediction.detach(), reward_part.detach(), surprise.detach(),
                      error.detach().sum(dim=(1, 2)) / tokens_per_micro, micro * batch * batch)
