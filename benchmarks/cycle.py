"""Time per stage of lifelong cycles (capture, then train_world_model -> dream -> train_agent ->
navigate), for the tiny and sim profiles, on this machine's CPU or on CUDA, and the bytes written.

    python benchmarks/cycle.py [--profiles tiny,sim] [--cycles N] [--set KEY=VALUE ...] [--sim-epochs 1]

Without --profiles: tiny and sim where torch sees a CUDA device, tiny and demo where it does not.

The sim profile carries PTZJEPA's learning settings (ViT-tiny at 224x224, 500 dreams) and
a training budget per cycle (world_model.updates_per_cycle). By default the sim run trains 1
epoch of each model (--sim-epochs 0: the profile's own): the world model's one epoch then holds
its whole budget of updates, and the agent's 100 epochs are left out. The sim profile is GPU
work: on a CPU one cycle takes hours. One row per cycle; after each profile, the bytes the store was handed per cycle (by
top folder) and per world-model checkpoint (weights file, optimiser file), in MB (10^6).
"""

from __future__ import annotations

import argparse
import posixpath
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ptzjepa.config.loading import load_config  # noqa: E402
from ptzjepa.node.context import Node  # noqa: E402
from ptzjepa.run.machine import Runner, load_machine  # noqa: E402
from ptzjepa.storage.store import Store  # noqa: E402

STAGES = ["capture", "train_world_model", "dream", "train_agent", "navigate"]
MB = 1e6


class Recorder:
    """Stage times, epochs and bytes written, per cycle, from the node's events and store writes."""

    def __init__(self, node: Node) -> None:
        self.cycle = node.cycle
        self.times: dict[int, dict[str, float]] = defaultdict(dict)
        self.epochs: dict[int, dict[str, int]] = defaultdict(dict)
        self.bytes: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.checkpoints: list[tuple[str, int]] = []  # (file kind, bytes) of world-model saves
        node.events.subscribe(self.on_event)
        stores = [node.store] if node.shared is None or node.shared is node.store else [node.store, node.shared]
        for store in stores:  # write_text and write_json go through write_bytes; commits through create_bytes
            store.write_bytes = self._counting(store.write_bytes)
            store.create_bytes = self._counting(store.create_bytes)

    def _counting(self, real):
        def counting(rel: str, data: bytes):
            self.bytes[self.cycle][rel.split("/", 1)[0]] += len(data)
            if rel.startswith("world_models/") and rel.endswith(".pt"):
                kind = "optimiser" if posixpath.basename(rel).startswith("optimizer-") else "weights"
                self.checkpoints.append((kind, len(data)))
            return real(rel, data)

        return counting

    def on_event(self, event) -> None:
        data = event.data
        if event.kind in ("state_entered", "transition") and "cycle" in data:
            self.cycle = int(data["cycle"])
        if event.kind == "state_left":
            row = self.times[self.cycle]
            row[data["state"]] = row.get(data["state"], 0.0) + data["seconds"]
        if event.kind == "progress" and data.get("unit") == "epochs":
            self.epochs[self.cycle][data["stage"]] = int(data["done"])


def run_cycles(profile: str, overrides: list[str], cycles: int, missing: list[str]) -> tuple[Recorder, dict[int, float]]:
    """Run the cycles one by one, printing each one's row as it ends."""
    config = load_config(profile, overrides)
    node = Node(config=config, store=Store(f"memory://bench-{uuid.uuid4().hex}"))
    recorder = Recorder(node)
    runner = Runner(load_machine("lifelong"), node)
    totals: dict[int, float] = {}
    for done in range(cycles):
        cycle = node.cycle
        began = time.perf_counter()
        runner.run(cycles=done + 1)  # one more cycle of this machine
        totals[cycle] = time.perf_counter() - began
        t = {**recorder.times.get(cycle, {}), "total": totals[cycle]}
        expected = [s for s in STAGES if cycle == 0 or s != "capture"]  # lifelong captures once
        missing += [f"{profile}:c{cycle}:{s}" for s in expected if s not in t]
        row = " ".join(f"{t[s]:>17.2f}s" if s in t else f"{'-':>18s}" for s in [*STAGES, "total"])
        ep = recorder.epochs.get(cycle, {})
        written = sum(recorder.bytes.get(cycle, {}).values()) / MB
        print(f"{profile:8s} {cycle:>5d} {row}   {node.frames.count():6d}  {ep.get('train_world_model', 0):9d}  "
              f"{ep.get('train_agent', 0):12d}  {written:10.1f}", flush=True)
    return recorder, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", help="default: tiny,sim with CUDA, tiny,demo without (as `run --sim`)")
    parser.add_argument("--cycles", type=int, default=1, help="cycles per profile (default 1)")
    parser.add_argument("--sim-epochs", type=int, default=1, help="epochs of each model in the sim run (0: the profile's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.profiles is None:
        import torch

        args.profiles = "tiny,sim" if torch.cuda.is_available() else "tiny,demo"
    print(f"{'profile':8s} {'cycle':>5s} " + " ".join(f"{s:>18s}" for s in [*STAGES, "total"])
          + "   frames  wm-epochs  agent-epochs  written MB")
    missing: list[str] = []
    for profile in args.profiles.split(","):
        overrides = list(args.set)
        if profile == "sim" and args.sim_epochs:
            overrides = [f"world_model.epochs={args.sim_epochs}", f"agent.epochs={args.sim_epochs}", *overrides]
        rec, totals = run_cycles(profile, overrides, args.cycles, missing)
        per_cycle = defaultdict(float)
        for folders in rec.bytes.values():
            for folder, n in folders.items():
                per_cycle[folder] += n / MB / len(totals)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_cycle.items(), key=lambda kv: -kv[1]))
        print(f"{profile}: bytes written per cycle (mean of {len(totals)}): {sum(per_cycle.values()):.1f} MB ({parts})")
        for kind in ("weights", "optimiser"):
            sizes = [n for k, n in rec.checkpoints if k == kind]
            if sizes:
                print(f"{profile}: world-model checkpoint {kind} file: {sizes[-1] / MB:.1f} MB, "
                      f"{len(sizes)} written in {len(totals)} cycle(s)")
    if missing:  # a stage the cycle never entered: the machine or a stage name changed
        sys.exit(f"benchmarks/cycle.py: no time for {', '.join(missing)}")


if __name__ == "__main__":
    main()
