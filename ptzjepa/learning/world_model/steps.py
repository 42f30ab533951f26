"""One world-model training step: gradients of the pair loss, with no B² copies of the images.

The loss covers every (context i, target j) pair of a batch of B frames. Copying images into the
pairs would run both encoders on B² images, and twice (an auxiliary pass for the surprise, then
the real pass). Here each image is encoded once and the pairs are formed by indexing the
token tensors; only the predictor, which really differs per pair, runs B² times.

Why this is exact, not an approximation:

- The encoders see one image at a time (no batch statistics, no dropout), so encoder(x[i]) is
  the same tensor whichever pair it is copied into. Indexing tokens[i] for each pair gives the
  same forward values, and autograd's backward of an index is a sum over the copies: exactly
  the sum of the gradients the B² copies would have produced.
- The surprise g is the size of the gradient of L_aux = mean smooth-L1(prediction, LN(target
  encoder(x_j))) with respect to the target encoder's parameters, predictions held constant. By
  the chain rule that gradient is J_T(x)^T · dL_aux/dh, where h = LN(target encoder(x)) on the B
  images and dL_aux/dh[j] sums the pairs' contributions for target j. So one backward through
  the target encoder on B images (one extra autograd.grad) gives the same gradient that
  B² copied images would. The auxiliary pass's predictions equal the real pass's (same weights, no
  update in between), so they are reused instead of recomputed.

Only the order of floating-point sums differs; tests/test_learning_wm_steps.py checks loss,
surprise and gradients against `naive_step` (the B² copies, kept outside the library in
benchmarks/original_step.py) in float64.

Surprise scale: "mean" (the default) is the mean |gradient| over every target-encoder
parameter; "sum" (`surprise_reduction="sum"`, PTZJEPA's scale) is the same
signal times the parameter count (5.45M for vit_tiny: ~350 at init, where the mean is ~6e-5),
and then dominates the loss. Channel 0 keeps the same ordering either way.
Steps only accumulate gradients (scaled by loss_scale, for accumulation); optim.py applies them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ptzjepa.learning.world_model.jepa import WorldModel
from ptzjepa.learning.world_model.masks import MaskBatch
from ptzjepa.learning.world_model.vit import gather_tokens

Reduction = Literal["sum", "mean"]


@dataclass
class StepStats:
    """Detached scalars of one step (tensors, so reading them is the caller's sync point)."""

    loss: torch.Tensor
    prediction_loss: torch.Tensor
    reward_loss: torch.Tensor
    surprise: torch.Tensor
    error: torch.Tensor  # mean per-token prediction error (what reward channel 1 learns)
    pairs: int

    def as_floats(self) -> dict[str, float]:
        names = ("loss", "prediction_loss", "reward_loss", "surprise", "error")
        return {name: float(getattr(self, name)) for name in names}


def pair_index(batch: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(context i, target j) of all B² pairs, context-major (pair i·B + j)."""
    ids = torch.arange(batch, device=device)
    return ids.repeat_interleave(batch), ids.repeat(batch)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """bfloat16 (or another) autocast on the images' device; a no-op for dtype None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def target_grads_on(model: WorldModel) -> Iterator[list[torch.nn.Parameter]]:
    """Let autograd track the (normally frozen) target encoder for the surprise, then refreeze."""
    params = list(model.target_encoder.parameters())
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    try:
        yield params
    finally:
        for p, flag in zip(params, before):
            p.requires_grad_(flag)


def gradient_magnitude(grads: list[torch.Tensor], reduction: Reduction) -> torch.Tensor:
    """Sum or mean of |g| over every element of every gradient."""
    total = torch.stack(torch._foreach_norm(grads, 1)).sum()  # L1 norms in one multi-tensor kernel
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / sum(g.numel() for g in grads)
    raise ValueError(f"surprise_reduction: expected 'sum' or 'mean', got {reduction!r}")


def widen(x: torch.Tensor) -> torch.Tensor:
    """Losses in float32 at least (bf16 outputs are widened; float64 stays float64)."""
    return x if x.dtype == torch.float64 else x.float()


def add_parts(total: torch.Tensor | None, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
    stacked = torch.stack([x.detach() for x in parts])
    return stacked if total is None else total + stacked


def check_batch(images: torch.Tensor, poses: torch.Tensor) -> int:
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"images: expected [B, 3, H, W] with B >= 1, got {list(images.shape)}")
    if poses.shape != (images.shape[0], 3):
        raise ValueError(
            f"poses: expected [{images.shape[0]}, 3] (pan, tilt, zoom), got {list(poses.shape)}"
        )
    return images.shape[0]


def pair_slices(total: int, chunk: int | None) -> list[slice]:
    if chunk is not None and chunk < 1:
        raise ValueError(f"pair_chunk: expected >= 1 or None, got {chunk}")
    size = total if chunk is None else chunk
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def loss_parts(
    pred: torch.Tensor,
    reward: torch.Tensor,
    target: torch.Tensor,
    surprise: torch.Tensor,
    reward_weight: float,
    total_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """This chunk's share of the batch means: (loss, prediction part, reward part, error sum).

    total_tokens is the number of predicted tokens in the whole step, so chunk shares add up to
    exactly the whole-step means whatever the chunking.
    """
    error = F.smooth_l1_loss(widen(pred), widen(target), reduction="none").mean(dim=-1)
    wanted = torch.stack((surprise.to(error.dtype).expand_as(error), error.detach()), dim=-1)
    prediction = error.sum() / total_tokens
    reward_part = F.smooth_l1_loss(widen(reward), wanted, reduction="sum") / (2 * total_tokens)
    return prediction + reward_weight * reward_part, prediction, reward_part, error.detach().sum()


def _aux_cotangent(pred: torch.Tensor, h_leaf: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """d/dh of sum smooth-L1(prediction, h[index]) with the prediction held constant."""
    aux = F.smooth_l1_loss(widen(pred.detach()), h_leaf[index], reduction="sum")
    return torch.autograd.grad(aux, h_leaf)[0]


def _surprise(
    model: WorldModel, h: torch.Tensor, cotangent: torch.Tensor, count: int, reduction: Reduction
) -> torch.Tensor:
    """Size of the target encoder's gradient of L_aux, from dL_aux/dh (one backward on B images)."""
    with target_grads_on(model) as params:
        grads = torch.autograd.grad(h, params, grad_outputs=(cotangent / count).to(h.dtype))
    return widen(gradient_magnitude(list(grads), reduction).detach())


def pair_step(
    model: WorldModel,
    images: torch.Tensor,
    poses: torch.Tensor,
    *,
    reward_weight: float = 1.0,
    pair_chunk: int | None = None,
    amp_dtype: torch.dtype | None = None,
    loss_scale: float = 1.0,
    surprise_reduction: Reduction = "mean",
) -> StepStats:
    """Accumulate into .grad the gradients of the all-pairs loss of one batch, encoding each image once.

    pair_chunk bounds how many pairs go through the predictor at once (memory). The surprise needs
    every pair's prediction before any backward, so with several chunks all but the last run a
    no-grad pass first; the last chunk's graph is kept from that pass and is the first to go
    backward, so only one chunk's graph is alive at a time and no chunk is predicted three times.
    """
    batch = check_batch(images, poses)
    pairs = batch * batch
    ctx_i, tgt_j = pair_index(batch, images.device)
    chunks = pair_slices(pairs, pair_chunk)
    total_tokens = pairs * model.num_tokens
    aux_count = total_tokens * model.embed_dim
    with autocast(images.device, amp_dtype):
        with target_grads_on(model):
            h = model.target_tokens(images)
        tokens = model.encode_context(images)
    h_leaf = widen(h.detach()).requires_grad_(True)
    target = h_leaf.detach()
    single = len(chunks) == 1
    ctx = tokens if single else tokens.detach().requires_grad_(True)

    def run(part: slice) -> tuple[torch.Tensor, torch.Tensor]:
        i, j = ctx_i[part], tgt_j[part]
        with autocast(images.device, amp_dtype):
            return model.predictor(ctx[i], poses[i], poses[j])

    cotangent = torch.zeros_like(h_leaf)
    for part in chunks[:-1]:
        with torch.no_grad():
            guess = run(part)[0]
        cotangent += _aux_cotangent(guess, h_leaf, tgt_j[part])
    kept = run(chunks[-1])  # with its graph: the first chunk to go backward below
    cotangent += _aux_cotangent(kept[0], h_leaf, tgt_j[chunks[-1]])
    surprise = _surprise(model, h, cotangent, aux_count, surprise_reduction)
    del h

    sums = None
    for part in reversed(chunks):
        pred, reward = kept if part is chunks[-1] else run(part)
        parts = loss_parts(pred, reward, target[tgt_j[part]], surprise, reward_weight, total_tokens)
        (parts[0] * loss_scale).backward()
        sums = add_parts(sums, parts)
        del pred, reward
        kept = None
    if not single:
        tokens.backward(ctx.grad)
    assert sums is not None
    return StepStats(sums[0], sums[1], sums[2], surprise, sums[3] / total_tokens, pairs)


def masked_step(
    model: WorldModel,
    images: torch.Tensor,
    poses: torch.Tensor,
    masks: MaskBatch,
    *,
    reward_weight: float = 1.0,
    amp_dtype: torch.dtype | None = None,
    loss_scale: float = 1.0,
    surprise_reduction: Reduction = "mean",
) -> StepStats:
    """I-JEPA pretraining (the `train` mode): from the context blocks of a view, predict the
    target tokens of its prediction blocks. Same view, so pose_from == pose_to. Every
    (context mask, prediction mask) combination is one predictor row; the reward channels are
    trained as in pair_step, with the surprise of this masked prediction loss.
    """
    batch = check_batch(images, poses)
    if not masks.context or not masks.targets:
        raise ValueError("masks: expected at least one context and one prediction mask")
    n_pred = len(masks.targets)
    tgt_idx = torch.cat([m.to(images.device) for m in masks.targets])
    rows = torch.arange(batch, device=images.device).repeat(n_pred)
    with autocast(images.device, amp_dtype):
        with target_grads_on(model):
            h = model.target_tokens(images)
        outputs = []
        for ctx_idx in masks.context:
            ctx_idx = ctx_idx.to(images.device)
            tokens = model.encode_context(images, ctx_idx)
            outputs.append(
                model.predictor(tokens[rows], poses[rows], poses[rows], ctx_idx[rows], tgt_idx)
            )
    pred = torch.cat([p for p, _ in outputs])
    reward = torch.cat([r for _, r in outputs])
    where = tgt_idx.repeat(len(masks.context), 1)
    owner = rows.repeat(len(masks.context))
    h_leaf = widen(h.detach()).requires_grad_(True)
    aux = F.smooth_l1_loss(widen(pred.detach()), gather_tokens(h_leaf[owner], where), reduction="sum")
    cotangent = torch.autograd.grad(aux, h_leaf)[0]
    surprise = _surprise(model, h, cotangent, pred.numel(), surprise_reduction)
    target = gather_tokens(h_leaf.detach()[owner], where)
    total_tokens = pred.shape[0] * pred.shape[1]
    parts = loss_parts(pred, reward, target, surprise, reward_weight, total_tokens)
    (parts[0] * loss_scale).backward()
    loss, prediction, reward_part, error_sum = (x.detach() for x in parts)
    return StepStats(loss, prediction, reward_part, surprise, error_sum / total_tokens, pred.shape[0])
