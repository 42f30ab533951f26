"""The device part of the GPU benchmarks' command lines, shared so they agree (torch only)."""

from __future__ import annotations

import argparse
import sys

import torch


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bfloat16 autocast; default: on for CUDA (as the stages run), off on CPU")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: its default)")


def parse_with_quick(parser: argparse.ArgumentParser, **quick: object) -> argparse.Namespace:
    """Parse; with --quick, `quick` replaces the defaults, while flags given explicitly still win."""
    args = parser.parse_args()
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args()
    return args


def setup_device(args: argparse.Namespace, script: str) -> tuple[torch.device, str]:
    """Apply --threads and the --bf16 default; the device and a name to print. Exits with one line
    when CUDA is asked for and absent."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"benchmarks/{script}: --device cuda asked for, but torch sees no CUDA device")
    args.bf16 = (device.type == "cuda") if args.bf16 is None else args.bf16 and device.type == "cuda"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return device, name
