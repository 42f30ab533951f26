"""How fast the world model trains: PTZJEPA's update against ours, side by side.

    python benchmarks/world_model.py [--device cpu|cuda] [--arch vit_tiny] [--batches 4,8,32]
                                     [--paths original,naive,efficient,compiled] [--steps N]
                                     [--quick] [--pair-chunk N] [--peak-tflops 989] [--no-bf16]

One row per (path, batch): a full update (gradients of all B² pairs with the surprise, AdamW,
EMA) on random images already on the device, every path on the same network and the same loss:

- original:  PTZJEPA's implementation (benchmarks/original_step.py): B² copied images
             through both encoders twice, float32 without TF32, materialised attention,
             per-tensor AdamW, a Python EMA loop, host syncs for its logging;
- naive:     the same B²-image algorithm on our kernels (bf16 autocast, fused attention and
             AdamW) — the difference to `efficient` is the algorithm alone;
- efficient: ours, each image encoded once and the pairs formed on the tokens (pair_step);
- compiled:  `efficient` with the encoders and predictor under torch.compile
             (world_model.compile in the profiles), --compile-mode reduce-overhead (CUDA
             graphs) by default; a row whose pairs go through the predictor in chunks falls
             back to the default mode, and says so;
- stage:     what the train_world_model stage runs by default, at the shipped profiles'
             semantics: micro-batches of B (pairs only inside each) accumulated to
             --global-batch frames per update, all in one batched pass (world_model.batched), on CUDA
             captured as one CUDA graph with AdamW and the EMA (world_model.graph). Its pairs are the
             (global / B)·B² of an update; its warm-up (eager updates and the capture) is
             printed. Compare it with the `original` row of the same B: PTZJEPA ran
             global / B such steps per update.

images/s counts the B real frames, pairs/s the B² (context, target) pairs the loss covers. FLOPs
are counted with torch.utils.flop_counter on one update; MFU = FLOPs / step time / peak rate
(--peak-tflops: dense bf16, 989 for an H100 SXM), CUDA only. Peak memory is
torch.cuda.max_memory_allocated on CUDA and the peak-RSS growth on CPU. Needs only torch (and
this repo): it imports nothing but ptzjepa.learning.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ptzjepa.learning.schedules import make_schedules  # noqa: E402
from ptzjepa.learning.sizes import TransformerSize  # noqa: E402
from ptzjepa.learning.world_model.batched import batched_pair_step  # noqa: E402
from ptzjepa.learning.world_model.graph import WARMUP_UPDATES  # noqa: E402
from ptzjepa.learning.world_model.jepa import WorldModel, WorldModelSpec, build_world_model  # noqa: E402
from ptzjepa.learning.world_model.optim import WorldModelTrainer, build_optimizer  # noqa: E402
from ptzjepa.learning.world_model.steps import pair_step  # noqa: E402
from ptzjepa.learning.world_model.vit import PRESETS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from original_step import naive_step, original_numerics, original_optimizer, original_update  # noqa: E402

PATHS = ("original", "naive", "efficient", "compiled", "stage")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--arch", default="vit_tiny", choices=sorted(PRESETS))
    p.add_argument("--batches", help="comma-separated batch sizes B (B² pairs); default 4,8,32")
    p.add_argument("--steps", type=int, help="timed updates per row (default 10)")
    p.add_argument("--warmup", type=int, help="untimed updates first (default 2)")
    p.add_argument("--image-size", type=int, help="default 224")
    p.add_argument("--patch-size", type=int, default=14)
    p.add_argument("--pred-width", type=int, default=384)
    p.add_argument("--pred-depth", type=int, default=12)
    p.add_argument("--pred-heads", type=int, default=6)
    p.add_argument("--pair-chunk", type=int, default=512,
                   help="most pairs through the predictor at once (0: all); halved on out-of-memory")
    p.add_argument("--paths", help=f"comma-separated, from {', '.join(PATHS)} (default: all; --quick: not compiled)")
    p.add_argument("--compile-mode", default="reduce-overhead",
                   help="torch.compile mode of the compiled path (default: reduce-overhead, CUDA graphs)")
    p.add_argument("--global-batch", type=int, help="frames per update of the stage row (default 32; --quick: 8)")
    p.add_argument("--no-graph", action="store_true", help="the stage row without the CUDA graph")
    p.add_argument("--no-bf16", action="store_true", help="float32 on CUDA (bf16 autocast is the default)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU")
    p.add_argument("--quick", action="store_true",
                   help="a CPU sanity run: batches 2,4, 112 px, 1 warm-up and 2 timed updates "
                   "(flags given explicitly still win)")
    args = p.parse_args(argv)
    defaults = ("2,4", 2, 1, 112) if args.quick else ("4,8,32", 10, 2, 224)
    for name, value in zip(("batches", "steps", "warmup", "image_size"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.batch_list = [int(b) for b in args.batches.split(",") if b]
    if args.paths is None:  # torch.compile on a CPU mostly times the compiler: left out of --quick
        args.paths = "original,naive,efficient,stage" if args.quick else ",".join(PATHS)
    if args.global_batch is None:
        args.global_batch = 8 if args.quick else 32
    args.path_list = [x for x in args.paths.split(",") if x]
    for path in args.path_list:
        if path not in PATHS:
            p.error(f"--paths: expected names from {sorted(PATHS)}, got {path!r}")
    if not args.batch_list or min(args.batch_list) < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--batches, --steps, --warmup: expected positive integers (warm-up may be 0)")
    return args


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak bytes during a block: the CUDA allocator's peak, or the growth of peak RSS on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = 0

    @staticmethod
    def _rss(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = 0
            return
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so reuse is not hidden
        except (OSError, AttributeError):
            pass
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
        except OSError:
            pass
        self.base = self._rss("VmRSS")

    def peak(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return max(0, self._rss("VmHWM") - self.base)


def make_spec(args: argparse.Namespace) -> WorldModelSpec:
    width, depth, heads = PRESETS[args.arch]
    return WorldModelSpec(
        image_size=args.image_size, patch_size=args.patch_size,
        encoder=TransformerSize(width=width, depth=depth, heads=heads),
        predictor=TransformerSize(width=args.pred_width, depth=args.pred_depth, heads=args.pred_heads),
    )  # fmt: skip


def make_batch(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(batch)
    images = torch.randn(batch, 3, size, size, generator=g)
    low, span = torch.tensor([0.0, -20.0, 1.0]), torch.tensor([360.0, 110.0, 3.0])
    poses = low + span * torch.rand(batch, 3, generator=g)
    return images.to(device), poses.to(device)


def update(path: str, model: WorldModel, optimizer: torch.optim.Optimizer, images, poses, chunk, amp) -> None:
    if path == "original":
        original_update(model, optimizer, images, poses, chunk)
        return
    step = naive_step if path == "naive" else pair_step
    step(model, images, poses, pair_chunk=chunk, amp_dtype=amp)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.ema_update(0.996)


def count_flops(path: str, model: WorldModel, images, poses, chunk, amp) -> int:
    """FLOPs of one update's gradient computation (the optimiser and EMA are negligible)."""
    step = pair_step if path in ("efficient", "compiled") else naive_step
    numerics = original_numerics() if path == "original" else contextlib.nullcontext()
    with numerics, FlopCounterMode(display=False) as counter:
        step(model, images, poses, pair_chunk=chunk, amp_dtype=None if path == "original" else amp)
    return counter.get_total_flops()


def run_stage_row(args: argparse.Namespace, device: torch.device, batch: int) -> dict[str, float | str]:
    """The stage's default update: (global / B) micro-batches of B in one batched pass (a graph)."""
    if args.global_batch % batch:
        return {"error": f"--global-batch {args.global_batch} is not a multiple of B = {batch}"}
    torch.manual_seed(0)
    model = build_world_model(make_spec(args)).to(device)
    amp = torch.bfloat16 if device.type == "cuda" and not args.no_bf16 else None
    micro = args.global_batch // batch
    schedules = make_schedules(iterations_per_epoch=10**6, epochs=1, lr=1e-4, start_lr=1e-4, final_lr=1e-6,
                               warmup_epochs=0, weight_decay=0.04, final_weight_decay=0.4, ema=(0.996, 1.0))
    trainer = WorldModelTrainer(model, schedules, accumulation=micro, amp_dtype=amp, batched=True,
                                graph_update=device.type == "cuda" and not args.no_graph)
    images, poses = make_batch(args.global_batch, args.image_size, device)
    meter = PeakMemory(device)
    meter.start()
    began = time.perf_counter()
    for _ in range(max(args.warmup, WARMUP_UPDATES + 1)):  # eager updates, the capture, one replay
        trainer.update(images, poses)
    sync(device)
    warmup_s = time.perf_counter() - began
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.update(images, poses)
    sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    peak = meter.peak()
    with FlopCounterMode(display=False) as counter:
        batched_pair_step(model, images, poses, batch, amp_dtype=amp)
    model.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    pairs = micro * batch * batch
    graph = "CUDA graph" if trainer.graphed is not None and trainer.graphed.graph is not None else "eager"
    return {
        "seconds": seconds, "images_s": args.global_batch / seconds, "pairs_s": pairs / seconds,
        "peak_gib": peak / 2**30, "tflops": flops / seconds / 1e12, "gflop": flops / 1e9, "chunk": pairs,
        "pairs": pairs, "note": f"{micro} micro-batches of {batch} per update, batched, {graph}; "
        f"one-time warm-up {warmup_s:.1f} s",
    }  # fmt: skip


def run_row(args: argparse.Namespace, device: torch.device, path: str, batch: int) -> dict[str, float | str]:
    if path == "stage":
        return run_stage_row(args, device, batch)
    torch.manual_seed(0)
    model = build_world_model(make_spec(args)).to(device)
    optimizer = original_optimizer(model) if path == "original" else build_optimizer(model, lr=1e-4, weight_decay=0.04)
    images, poses = make_batch(batch, args.image_size, device)
    amp = torch.bfloat16 if device.type == "cuda" and not args.no_bf16 else None
    pairs = batch * batch
    chunk = args.pair_chunk if 0 < args.pair_chunk < pairs else None
    warmup, note = args.warmup, ""
    if path == "compiled":
        mode = args.compile_mode
        if chunk is not None and mode == "reduce-overhead":
            # A chunked step calls the predictor several times before its backward; a CUDA-graph
            # replay would overwrite the outputs the earlier calls still hold.
            mode, note = "default", "compiled in default mode: CUDA graphs need one predictor call per step"
        # Each row builds a fresh model: without a reset, dynamo's guards fail on the new weights,
        # it recompiles until its cache limit and then silently runs eager. Static shapes keep
        # CUDA graphs on; their trees record on the first calls, so warm up a little longer.
        torch._dynamo.reset()
        for module in (model.encoder, model.target_encoder, model.predictor):
            module.compile(mode=mode, dynamic=False)
        warmup = max(warmup, 3)
    meter = PeakMemory(device)
    while True:
        try:
            meter.start()
            for _ in range(warmup):
                update(path, model, optimizer, images, poses, chunk, amp)
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                update(path, model, optimizer, images, poses, chunk, amp)
            sync(device)
            seconds = (time.perf_counter() - start) / args.steps
            peak = meter.peak()
            break
        except torch.cuda.OutOfMemoryError:  # first: it is a RuntimeError too
            optimizer.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
            chunk = (chunk or pairs) // 2
            if chunk < 1:
                return {"error": "out of memory"}
        except RuntimeError as exc:  # a compiler failure ends this row, not the benchmark
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    flops = count_flops(path, model, images, poses, chunk, amp)
    optimizer.zero_grad(set_to_none=True)
    return {
        "seconds": seconds, "images_s": batch / seconds, "pairs_s": pairs / seconds,
        "peak_gib": peak / 2**30, "tflops": flops / seconds / 1e12, "gflop": flops / 1e9,
        "chunk": chunk or pairs, "note": note,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    spec = make_spec(args)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    precision = "bf16 autocast" if device.type == "cuda" and not args.no_bf16 else "float32"
    print(f"device {name} | torch {torch.__version__} | {precision} (original: float32, no TF32)")
    print(f"world model {args.arch}: {spec.image_size}px patch {spec.patch_size} -> "
          f"{spec.num_patches} tokens x {spec.embed_dim}; predictor width {spec.predictor.width} "
          f"depth {spec.predictor.depth}; {args.warmup} warm-up + {args.steps} timed updates")
    header = (f"{'path':<10}{'batch':>6}{'pairs':>7}{'chunk':>7}{'images/s':>10}{'pairs/s':>10}"
              f"{'step ms':>10}{'peak GiB':>10}{'GFLOP':>9}{'TFLOP/s':>9}{'MFU':>7}")
    print(header)
    print("-" * len(header))
    failed = 0
    for batch in args.batch_list:
        rows = {}
        for path in args.path_list:
            row = run_row(args, device, path, batch)
            rows[path] = row
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if "error" in row:
                print(f"{path:<10}{batch:>6}{batch * batch:>7}  {row['error']}")
                failed += 1
                continue
            mfu = (f"{100 * row['tflops'] / args.peak_tflops:>6.1f}%" if device.type == "cuda"
                   else f"{'-':>7}")
            print(f"{path:<10}{batch:>6}{row.get('pairs', batch * batch):>7}{row['chunk']:>7}{row['images_s']:>10.1f}"
                  f"{row['pairs_s']:>10.1f}{1000 * row['seconds']:>10.1f}{row['peak_gib']:>10.2f}"
                  f"{row['gflop']:>9.0f}{row['tflops']:>9.2f}{mfu}", flush=True)
            if row["note"]:
                print(f"{'':<10}{batch:>6}  note: {row['note']}", flush=True)
        for slow, fast in (("original", "efficient"), ("original", "compiled"), ("naive", "efficient"),
                           ("original", "stage")):
            if "pairs_s" in rows.get(slow, {}) and "pairs_s" in rows.get(fast, {}):
                print(f"{'':<10}{batch:>6}  speed-up {fast}/{slow}: "
                      f"{rows[fast]['pairs_s'] / rows[slow]['pairs_s']:.2f}x pairs/s", flush=True)
    if failed:  # the other rows are printed, but a script calling this must see the failure
        sys.exit(f"benchmarks/world_model.py: {failed} row(s) failed")


if __name__ == "__main__":
    main()
