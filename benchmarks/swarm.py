"""Swarms on this machine: unequal nodes with balancing off and on, and lock waits against the
number of models for many nodes. Real `cli.py run` processes, a real redis-server.

    python benchmarks/swarm.py [--quick] [--cycles 3] [--iterations 20,10,5]
    python benchmarks/swarm.py --scale --nodes 20 --models 1,2,5,10 [--cycles 1]

Heterogeneous (default): nodes A, B, C with `capture.iterations` 20, 10, 5 (tiny profile) share
the population, once with `world_model.balance` off and once on. Per node it prints the optimiser
updates it contributed to the shared models (from their metadata), its frames, its lock waits
(from finding every model taken to its next lease; 0 for a lease taken at once) and its lease
acquire latency (the locker's calls), p50/p99 from the `lease` events each node's status keeps;
then the spread of contributions (max/min over nodes) per setting.

Scale (--scale): N nodes, once per population size, printing lock waits, acquire latency, leases,
the Redis commands the swarm sent (INFO commandstats), per node and per lease, and how the nodes'
runs ended (`cycles`: done; `stuck`: a node that lost the race for a free model too often).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ptzjepa.distributed.redis_server import RedisServer  # noqa: E402
from ptzjepa.distributed.swarm import SHARED_DIR, Swarm, SwarmPlan  # noqa: E402
from ptzjepa.view.status import STATUS_FILE  # noqa: E402

NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank; 0 for no samples."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run_swarm(plan: SwarmPlan) -> tuple[int, float, dict[str, int]]:
    """Runs the plan against its own redis-server; exit code, seconds, and Redis command counts."""
    with RedisServer(plan.data / "redis", persist=False) as server:
        plan = attrs.evolve(plan, redis_url=server.url)
        began = time.monotonic()
        code = Swarm(plan).run()
        seconds = time.monotonic() - began
        commands = redis_commands(server.url)
    return code, seconds, commands


def redis_commands(url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def node_status(plan: SwarmPlan, i: int) -> dict:
    path = plan.node_dir(i) / STATUS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def updates_by_node(plan: SwarmPlan) -> dict[str, int]:
    """Optimiser updates each node contributed, summed over the shared models' metadata."""
    folder = plan.data / SHARED_DIR / "world_models"
    totals: dict[str, int] = {}
    for info in folder.glob("*/model_info.json"):
        for node, record in (json.loads(info.read_text()).get("contributions") or {}).items():
            if isinstance(record, dict):
                totals[node] = totals.get(node, 0) + int(record.get("updates", 0))
    return totals


def heterogeneous(args: argparse.Namespace, root: Path) -> None:
    iterations = [int(x) for x in args.iterations.split(",")]
    spreads = {}
    for balance in ("off", "on"):
        node_sets = {i: [f"capture.iterations={n}"] for i, n in enumerate(iterations)}
        plan = SwarmPlan(nodes=len(iterations), profile=args.profile, cycles=args.cycles,
                         data=root / f"balance-{balance}", node_sets=node_sets,
                         sets=[f"world_model.balance={'true' if balance == 'on' else 'false'}", *args.set])
        code, seconds, _ = run_swarm(plan)
        if code != 0:
            raise SystemExit(f"swarm with balancing {balance} exited {code}; logs in {plan.data / 'logs'}")
        updates = updates_by_node(plan)
        print(f"\nbalancing {balance}: {len(iterations)} nodes, {args.cycles} cycles, {seconds:.0f} s")
        print(f"{'node':6s} {'iterations':>10s} {'updates':>8s} {'frames':>7s} {'leases':>6s} "
              f"{'wait p50 s':>10s} {'wait p99 s':>10s} {'acquire p50 ms':>14s} {'acquire p99 ms':>14s}")
        for i, n in enumerate(iterations):
            snap = node_status(plan, i)
            leases = snap.get("leases") or {}
            waits, acquires = leases.get("lock_wait_s") or [], leases.get("acquire_s") or []
            print(f"{NAMES[i]:6s} {n:10d} {updates.get(f'node-{i}', 0):8d} {snap.get('frames_stored', 0):7d} "
                  f"{leases.get('taken', 0):6d} {percentile(waits, 50):10.3f} {percentile(waits, 99):10.3f} "
                  f"{percentile(acquires, 50) * 1000:14.2f} {percentile(acquires, 99) * 1000:14.2f}")
        counts = [updates.get(f"node-{i}", 0) for i in range(len(iterations))]
        spreads[balance] = max(counts) / max(min(counts), 1)
    print()
    for balance, spread in spreads.items():
        print(f"spread of contributions (max/min updates), balancing {balance}: {spread:.2f}")


def scale(args: argparse.Namespace, root: Path) -> None:
    print(f"{args.nodes} nodes, profile {args.profile}, {args.cycles} cycle(s) each")
    print(f"{'models':>6s} {'seconds':>7s} {'leases':>6s} {'wait p50 s':>10s} {'wait p99 s':>10s} "
          f"{'wait max s':>10s} {'acquire p50 ms':>14s} {'acquire p99 ms':>14s} {'redis cmds':>10s} "
          f"{'cmds/lease':>10s} {'cmds/node/s':>11s}")
    for models in (int(x) for x in args.models.split(",")):
        plan = SwarmPlan(nodes=args.nodes, profile=args.profile, cycles=args.cycles, data=root / f"models-{models}",
                         sets=[f"world_model.population={models}", *args.set])
        _code, seconds, commands = run_swarm(plan)
        waits, acquires, taken, ended = [], [], 0, {}
        for i in range(args.nodes):
            snap = node_status(plan, i)
            ended[snap.get("finished") or "?"] = ended.get(snap.get("finished") or "?", 0) + 1
            leases = snap.get("leases") or {}
            waits += leases.get("lock_wait_s") or []
            acquires += leases.get("acquire_s") or []
            taken += int(leases.get("taken", 0))
        total = sum(n for name, n in commands.items() if name not in {"info", "ping"})
        print(f"{models:6d} {seconds:7.0f} {taken:6d} {percentile(waits, 50):10.2f} {percentile(waits, 99):10.2f} "
              f"{max(waits, default=0):10.2f} {percentile(acquires, 50) * 1000:14.2f} "
              f"{percentile(acquires, 99) * 1000:14.2f} {total:10d} {total / max(taken, 1):10.1f} "
              f"{total / args.nodes / seconds:11.2f}")
        busiest = sorted(commands.items(), key=lambda kv: -kv[1])[:6]
        print(f"{'':6s} busiest commands: " + ", ".join(f"{k} {v}" for k, v in busiest))
        print(f"{'':6s} nodes ended: " + ", ".join(f"{k} {v}" for k, v in sorted(ended.items())))
        print(f"{'':6s} mean lock wait {statistics.fmean(waits) if waits else 0:.2f} s over {len(waits)} waits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smallest run: 1 cycle, iterations 4,2,1, 1 epoch")
    parser.add_argument("--scale", action="store_true", help="lock waits against the number of models")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--iterations", default="20,10,5", help="capture.iterations of nodes A, B, C, ...")
    parser.add_argument("--nodes", type=int, default=20, help="--scale: how many nodes")
    parser.add_argument("--models", default="1,2,5,10", help="--scale: population sizes to try")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every node")
    parser.add_argument("--data", help="keep the swarms' folders here (default: a temporary folder)")
    args = parser.parse_args()
    if args.quick:
        args.cycles, args.iterations = 1, "4,2,1"
        args.set = ["world_model.epochs=1", "agent.epochs=1", *args.set]
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        root = Path(args.data) if args.data else Path(tmp)
        (scale if args.scale else heterogeneous)(args, root)


if __name__ == "__main__":
    main()
