"""The original PTZJEPA world-model update, reproduced on our modules for a side-by-side timing.

What the original's training step did, per update (facts read from its run_jepa.py and
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

Only the way the work is run is the original's; the network is ours (same spec for every row of
the benchmark), so the rows differ by implementation alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ptzjepa.learning.jepa import WorldModel
from ptzjepa.learning.wm_train import naive_step
from ptzjepa.learning.wm_trainer import build_optimizer


def original_optimizer(model: WorldModel) -> torch.optim.AdamW:
    """AdamW as the original built it: the same groups, the per-tensor implementation."""
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
    """One update the original's way; returns the loss (read on the host, as it logged it)."""
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
