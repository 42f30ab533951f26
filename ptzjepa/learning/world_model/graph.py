"""A whole world-model update (batched pass, decoupled weight decay, AdamW, EMA) as one CUDA graph.

At a micro-batch of 4 an eager update is a few thousand small kernels, and the GPU
waits for Python to launch them. Captured once, the update is replayed with one launch. What
changes per update enters through tensors the graph reads: the batch (copied into static
buffers), the learning rate, the weight-decay factor and the EMA momentum (filled before each
replay); weight decay is applied by the trainer itself (AdamW's own is a constant baked into the
graph), as p <- p * (1 - lr * wd) right before the Adam step, which is what AdamW does.

Capture needs a few eager updates first (on a side stream, as torch asks, so that the
allocator and the optimiser's state settle); they are real updates, done the same way. Warm-up
and capture take a few seconds per model (benchmarks/world_model.py prints it), no compiler
involved.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

WARMUP_UPDATES = 3


class GraphedUpdate:
    """Runs `body(images, poses)` eagerly for the first WARMUP_UPDATES calls, then as a graph."""

    def __init__(self, body: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
                 prepare: Callable[[], None]) -> None:
        self.body = body
        self.prepare = prepare  # zero gradients before capture (set to None: the graph owns them)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: tuple[torch.Tensor, torch.Tensor] | None = None
        self.outputs: dict[str, torch.Tensor] = {}
        self.calls = 0
        self.failure = ""  # why capture failed: the update then stays eager (the caller warns)
        self.stream = torch.cuda.Stream()

    def __call__(self, images: torch.Tensor, poses: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.graph is not None:
            assert self.static is not None
            self.static[0].copy_(images)
            self.static[1].copy_(poses)
            self.graph.replay()
            return self.outputs
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            out = self.body(images, poses)
        torch.cuda.current_stream().wait_stream(self.stream)
        self.calls += 1
        if self.calls == WARMUP_UPDATES:
            try:
                self._capture(images, poses)
            except RuntimeError as exc:  # the update stays eager: slower, the same arithmetic
                self.graph = None
                self.failure = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return out

    def _capture(self, images: torch.Tensor, poses: torch.Tensor) -> None:
        self.static = (images.clone(), poses.clone())
        self.prepare()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.outputs = self.body(*self.static)
        self.graph = graph
