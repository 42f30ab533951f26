"""Dream steps per second: all dreams of a chunk stepping together vs PTZJEPA's one at a time.

    python benchmarks/dream.py [--device cpu|cuda] [--dreams 500] [--length 10] [--chunk 500]
                               [--single-dreams 50] [--bf16|--no-bf16] [--tf32] [--to-cpu]
                               [--state-dtype float16] [--quick]

The world model is the sim config's (ViT-tiny encoder 192x12, 3 heads, patch 14, 224 px -> 256
tokens; predictor 384x12, 6 heads) with random weights: speed does not depend on what it learned.
The one-at-a-time loop is timed on the first --single-dreams dreams only (it is slow); a rate in
steps/s carries over to any number of dreams. Every dream also pays one extra predictor pass for
its start state's surprise (the first delta reward), in both loops alike.
Needs only torch: it imports nothing but ptzjepa.learning.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from device_setup import add_device_args, parse_with_quick, setup_device  # noqa: E402
from ptzjepa.learning.agent.actions import ActionTable  # noqa: E402
from ptzjepa.learning.agent.dreamer import rollout, rollout_one_at_a_time  # noqa: E402
from ptzjepa.learning.world_model.jepa import WorldModelSpec, build_world_model  # noqa: E402

SIM_SPEC = WorldModelSpec()  # the defaults are the sim config: vit_tiny, patch 14, 224 px

# PTZJEPA's 21 moves (the profile holds the real list; speed does not depend on it).
MOVES = {
    "noop": (0, 0, 0),
    "short_left": (-0.1, 0, 0), "short_right": (0.1, 0, 0),
    "short_up": (0, 0.1, 0), "short_down": (0, -0.1, 0),
    "short_up_left": (-0.1, 0.1, 0), "short_up_right": (0.1, 0.1, 0),
    "short_down_left": (-0.1, -0.1, 0), "short_down_right": (0.1, -0.1, 0),
    "short_zoom_in": (0, 0, 0.1), "short_zoom_out": (0, 0, -0.1),
    "long_left": (-1, 0, 0), "long_right": (1, 0, 0), "long_up": (0, 1, 0), "long_down": (0, -1, 0),
    "long_zoom_in": (0, 0, 0.2), "long_zoom_out": (0, 0, -0.2),
    "jump_left": (-5, 0, 0), "jump_right": (5, 0, 0), "jump_up": (0, 3, 0), "jump_down": (0, -3, 0),
}  # fmt: skip

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def start_states(model, n: int, device: torch.device, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Target-encoder tokens of n random images, and random poses within the default limits."""
    g = torch.Generator().manual_seed(0)
    tokens = []
    for lo in range(0, n, batch):
        images = torch.rand(min(batch, n - lo), 3, SIM_SPEC.image_size, SIM_SPEC.image_size, generator=g)
        tokens.append(model.encode_target(images.to(device)))
    poses = torch.rand(n, 3, generator=g) * torch.tensor([360.0, 110.0, 3.0]) + torch.tensor([0.0, -20.0, 1.0])
    return torch.cat(tokens), poses.to(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_args(parser)
    parser.add_argument("--dreams", type=int, default=500)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=500, help="dreams stepping together")
    parser.add_argument("--single-dreams", type=int, default=50, help="dreams timed one at a time")
    parser.add_argument("--tf32", action="store_true", help="TF32 matmuls for float32 (CUDA)")
    parser.add_argument("--to-cpu", action="store_true", help="gather dreams on the CPU (as saving does)")
    parser.add_argument("--state-dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--quick", action="store_true", help="a few small dreams, for a CPU smoke run")
    args = parse_with_quick(parser, dreams=8, length=2, chunk=8, single_dreams=2)
    device, name = setup_device(args, "dream.py")
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    out_device = "cpu" if args.to_cpu else device
    single = min(args.single_dreams, args.dreams)
    print(f"dream benchmark on {name}, torch {torch.__version__}")
    print(
        f"world model: encoder {SIM_SPEC.encoder.width}x{SIM_SPEC.encoder.depth}, predictor "
        f"{SIM_SPEC.predictor.width}x{SIM_SPEC.predictor.depth}, {SIM_SPEC.num_patches} tokens; "
        f"{args.dreams} dreams x {args.length} steps, chunk {args.chunk}, states {args.state_dtype}"
        + (", bf16 autocast" if args.bf16 else "")
        + (", tf32" if args.tf32 else "")
        + (", gathered on the cpu" if args.to_cpu else ", kept on the device")
    )
    torch.manual_seed(0)
    model = build_world_model(SIM_SPEC).to(device).eval()
    table = ActionTable(list(MOVES), list(MOVES.values()), (2.0, 2.0, 1.0))
    tokens, poses = start_states(model, args.dreams, device)
    state_dtype = DTYPES[args.state_dtype]

    def batched(n: int = args.dreams) -> None:
        gen = torch.Generator().manual_seed(1)
        rollout(model, tokens[:n], poses[:n], table, args.length, gen, chunk_size=args.chunk,
                state_dtype=state_dtype, autocast_bf16=args.bf16, out_device=out_device)  # fmt: skip

    def one_at_a_time(n: int = single) -> None:
        gen = torch.Generator().manual_seed(1)
        rollout_one_at_a_time(model, tokens[:n], poses[:n], table, args.length, gen,
                              state_dtype=state_dtype, autocast_bf16=args.bf16, out_device=out_device)  # fmt: skip

    batched(min(args.chunk, args.dreams, 2))  # warm-up: kernels, allocator
    one_at_a_time(1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batched_s = timed(batched, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    single_s = timed(one_at_a_time, device)
    batched_rate = args.dreams * args.length / batched_s
    single_rate = single * args.length / single_s
    print(f"  batched      : {batched_rate:10.1f} dream steps/s ({batched_s:.2f} s for {args.dreams} dreams)")
    print(
        f"  one at a time: {single_rate:10.1f} dream steps/s ({single_s:.2f} s for {single} dreams"
        + (f", timed on a subset of {single} of {args.dreams})" if single < args.dreams else ")")
    )
    print(f"  speed-up     : {batched_rate / single_rate:10.1f}x")
    if device.type == "cuda":
        print(f"  peak GPU memory (batched): {peak:.2f} GiB")


if __name__ == "__main__":
    main()
