"""Time per stage of one lifelong cycle (capture, then train_world_model -> dream -> train_agent ->
navigate), for the tiny and sim profiles, on this machine's CPU or on CUDA.

    python benchmarks/cycle.py [--profiles tiny,sim] [--set KEY=VALUE ...] [--sim-epochs 1]

The sim profile carries the original's learning settings (ViT-tiny at 224x224, 100 epochs, 500
dreams). A full 100-epoch cycle takes hours on a CPU, so by default the sim run trains 1 epoch of
each model and the table also shows the per-epoch time; pass --sim-epochs 100 for the full cycle.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ptzjepa.config_loading import load_config  # noqa: E402
from ptzjepa.machine import Runner, load_machine  # noqa: E402
from ptzjepa.node import Node  # noqa: E402
from ptzjepa.store import Store  # noqa: E402


def run_cycle(profile: str, overrides: list[str]) -> dict[str, float]:
    config = load_config(profile, overrides)
    node = Node(config=config, store=Store(f"memory://bench-{uuid.uuid4().hex}"))
    times: dict[str, float] = {}
    epochs: dict[str, int] = {}

    def on_event(event) -> None:
        if event.kind == "state_left":
            times[event.data["state"]] = times.get(event.data["state"], 0.0) + event.data["seconds"]
        if event.kind == "progress" and event.data.get("unit") == "epochs":
            epochs[event.data["stage"]] = int(event.data["done"])

    node.events.subscribe(on_event)
    began = time.perf_counter()
    Runner(load_machine("lifelong"), node).run(cycles=1)
    times["total"] = time.perf_counter() - began
    times["_frames"] = node.frames.count()
    times["_epochs_wm"] = epochs.get("train_world_model", 0)
    times["_epochs_agent"] = epochs.get("train_agent", 0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="tiny,sim")
    parser.add_argument("--sim-epochs", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    stages = ["capture", "train_world_model", "dream", "train_agent", "navigate", "total"]
    print(f"{'profile':8s} " + " ".join(f"{s:>18s}" for s in stages) + "   frames  wm-epochs  agent-epochs")
    missing: list[str] = []
    for profile in args.profiles.split(","):
        overrides = list(args.set)
        if profile == "sim":
            overrides = [f"world_model.epochs={args.sim_epochs}", f"agent.epochs={args.sim_epochs}", *overrides]
        t = run_cycle(profile, overrides)
        missing += [f"{profile}:{s}" for s in stages if s not in t]
        row = " ".join(f"{t[s]:>17.2f}s" if s in t else f"{'-':>18s}" for s in stages)
        print(f"{profile:8s} {row}   {int(t['_frames']):6d}  {int(t['_epochs_wm']):9d}  {int(t['_epochs_agent']):12d}")
    if missing:  # a stage the cycle never entered: the machine or a stage name changed
        sys.exit(f"benchmarks/cycle.py: no time for {', '.join(missing)}")


if __name__ == "__main__":
    main()
