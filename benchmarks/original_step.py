"""PTZJEPA's world-model update, reproduced on our modules for a side-by-side timing.

What PTZJEPA's training step did, per update (facts read from its run_jepa.py and
vision_transformer.py; none of its code is used here):

- pairs as image copies: all B² (context i, target j) pairs built by copying images, so both
  encoders ran on B² images, twice (an auxiliary pass for the surprise, then the real pass):
  that is `naive_step`, which computes exactly the same loss as our `pair_step`;
- float32 throughout: no autocast (its GradScaler was created but never used), and PyTorch's
  default of no TF32 for matrix products;
- hand-written attention that materialises the softmax(QKᵀ) matrix (PyTorch's MATH kernel for
  scaled_dot_product_attention does the same operations);
- AdamW with the per-tensor loop (no foreach, no fused kernel);
- the EMA of the target encoder as a Python loop over parameter pairs;
- about one host sync per encoder weight matrix (a gradient-norm logger) and one for the loss.

`naive_step` lives here, not in ptzjepa.learning: no stage runs it. It is the reference the tests
check `pair_step` and `masked_step` against (tests/test_learning_wm_steps.py) and the "naive" row
of benchmarks/world_model.py.

Only the way the work is run is PTZJEPA's; the network is ours (same spec for every row of
the benchmark), so the rows differ by implementation alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ptzjepa.learning.world_model.jepa import WorldModel
from ptzjepa.learning.world_model.optim import build_optimizer
from ptzjepa.learning.world_model.steps import (
    Reduction,
    StepStats,
    add_parts,
    autocast,
    check_batch,
    gradient_magnitude,
    loss_parts,
    pair_index,
    pair_slices,
    target_grads_on,
    widen,
)


def naive_step(
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
    """PTZJEPA's step, for tests and the benchmark: B² copied images through both encoders,
    an auxiliary pass (target encoder with grad) for the surprise, then the real pass.

    pair_chunk splits the copied images into chunks (gradients add up across chunks) so that
    large batches fit in memory; it changes nothing in the amount of work.
    """
    batch = check_batch(images, poses)
    pairs = batch * batch
    ctx_i, tgt_j = pair_index(batch, images.device)
    chunks = pair_slices(pairs, pair_chunk)
    total_tokens = pairs * model.num_tokens
    aux_count = total_tokens * model.embed_dim
    grads: list[torch.Tensor] | None = None
    for part in chunks:  # auxiliary pass
        ctx_images, tgt_images = images[ctx_i[part]].clone(), images[tgt_j[part]].clone()
        with target_grads_on(model) as params:
            with autocast(images.device, amp_dtype):
                h = model.target_tokens(tgt_images)
                with torch.no_grad():
                    pred, _ = model.predictor(
                        model.encode_context(ctx_images), poses[ctx_i[part]], poses[tgt_j[part]]
                    )
            aux = F.smooth_l1_loss(widen(pred), widen(h), reduction="sum") / aux_count
            part_grads = torch.autograd.grad(aux, params)
        grads = list(part_grads) if grads is None else [a + b for a, b in zip(grads, part_grads)]
    assert grads is not None
    surprise = widen(gradient_magnitude(grads, surprise_reduction).detach())

    sums = None
    for part in chunks:  # real pass
        ctx_images, tgt_images = images[ctx_i[part]].clone(), images[tgt_j[part]].clone()
        with autocast(images.device, amp_dtype):
            target = model.encode_target(tgt_images)
            pred, reward = model.predictor(
                model.encode_context(ctx_images), poses[ctx_i[part]], poses[tgt_j[part]]
            )
        parts = loss_parts(pred, reward, target, surprise, reward_weight, total_tokens)
        (parts[0] * loss_scale).backward()
        sums = add_parts(sums, parts)
    assert sums is not None
    return StepStats(sums[0], sums[1], sums[2], surprise, sums[3] / total_tokens, pairs)


def original_optimizer(model: WorldModel) -> torch.optim.AdamW:
    """AdamW as PTZJEPA built it: the same groups, the per-tensor implementation."""
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.04, fused=False)
    for group in optimizer.param_groups:
        group["foreach"] = False
    return optimizer


@contextlib.contextmanager
def original_numerics() -> Iterator[None]:
    """float32 matrix products without TF32, and attention through the materialised matrix."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def original_update(
    model: WorldModel,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    poses: torch.Tensor,
    pair_chunk: int | None,
    momentum: float = 0.996,
) -> float:
    """One update PTZJEPA's way; returns the loss (read on the host, as it logged it)."""
    with original_numerics():
        stats = naive_step(model, images, poses, pair_chunk=pair_chunk, amp_dtype=None, surprise_reduction="sum")
    optimizer.step()
    for param in model.encoder.parameters():  # its gradient logger: one host sync per weight matrix
        if param.grad is not None and param.ndim > 1:
            float(param.grad.norm())
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        for online, target in zip(model.encoder.parameters(), model.target_encoder.parameters()):
            target.mul_(momentum).add_((1.0 - momentum) * online.detach())
    return float(stats.loss)
