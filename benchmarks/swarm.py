"""Swarms on this machine: unequal nodes with balancing off and on, and lock waits against the
number of models for many nodes. Real `cli.py run` processes, a real redis-server.

    python benchmarks/swarm.py [--quick] [--cycles 3] [--iterations 20,10,5]
    python benchmarks/swarm.py --scale --nodes 20 --models 1,2,5,10 [--cycles 1]
    python benchmarks/swarm.py --s3 --nodes 8 --models 2 --cycles 3

Heterogeneous (default): nodes A, B, C with `capture.iterations` 20, 10, 5 (tiny profile) share
the population, once with `world_model.balance` off and once on. Per node it prints the optimiser
updates it contributed to the shared models (from their metadata), its frames, its lock waits
(from finding every model taken to its next lease; 0 for a lease taken at once) and its lease
acquire latency (the locker's calls), p50/p99 from the `lease` events each node's status keeps;
then the spread of contributions (max/min over nodes) per setting.

S3 (--s3): N nodes whose shared store is the S3 (moto) server, keeping every version; afterwards
each model's versions are read back: how many load, how many do not follow the version before
them (a version lost or trained from an older one), and whether a token ever went backwards.

Scale (--scale): N nodes, once per population size, printing lock waits, acquire latency, leases,
the Redis commands the swarm sent (INFO commandstats), per node and per lease, and how the nodes'
runs ended (`cycles`: done; `stuck`: a node that lost the race for a free model too often), the
mean and longest lock wait, and how many nodes never got a model (no lease in their whole run).
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
    print(f"{'models':>6s} {'seconds':>7s} {'leases':>6s} {'wait mean s':>11s} {'wait p50 s':>10s} "
          f"{'wait p99 s':>10s} {'wait max s':>10s} {'never leased':>12s} {'acquire p50 ms':>14s} "
          f"{'acquire p99 ms':>14s} {'redis cmds':>10s} {'cmds/lease':>10s} {'cmds/node/s':>11s}")
    rows = []
    for models in (int(x) for x in args.models.split(",")):
        plan = SwarmPlan(nodes=args.nodes, profile=args.profile, cycles=args.cycles, data=root / f"models-{models}",
                         sets=[f"world_model.population={models}", *args.set])
        _code, seconds, commands = run_swarm(plan)
        waits, acquires, taken, ended, never = [], [], 0, {}, 0
        for i in range(args.nodes):
            snap = node_status(plan, i)
            ended[snap.get("finished") or "?"] = ended.get(snap.get("finished") or "?", 0) + 1
            leases = snap.get("leases") or {}
            waits += leases.get("lock_wait_s") or []
            acquires += leases.get("acquire_s") or []
            taken += int(leases.get("taken", 0))
            never += int(leases.get("taken", 0)) == 0  # starved: the run ended without one lease
        total = sum(n for name, n in commands.items() if name not in {"info", "ping"})
        mean = statistics.fmean(waits) if waits else 0.0
        print(f"{models:6d} {seconds:7.0f} {taken:6d} {mean:11.2f} {percentile(waits, 50):10.2f} "
              f"{percentile(waits, 99):10.2f} {max(waits, default=0):10.2f} {never:12d} "
              f"{percentile(acquires, 50) * 1000:14.2f} {percentile(acquires, 99) * 1000:14.2f} {total:10d} "
              f"{total / max(taken, 1):10.1f} {total / args.nodes / seconds:11.2f}")
        rows.append({"models": models, "seconds": round(seconds, 1), "leases": taken, "wait_mean_s": round(mean, 2),
                     "wait_p50_s": percentile(waits, 50), "wait_max_s": max(waits, default=0.0),
                     "never_leased": never, "ended": ended, "redis_commands": total})
        busiest = sorted(commands.items(), key=lambda kv: -kv[1])[:6]
        print(f"{'':6s} busiest commands: " + ", ".join(f"{k} {v}" for k, v in busiest))
        print(f"{'':6s} nodes ended: " + ", ".join(f"{k} {v}" for k, v in sorted(ended.items())))
        print(f"{'':6s} mean lock wait {mean:.2f} s over {len(waits)} waits", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def store_load(args: argparse.Namespace, root: Path) -> None:
    """N nodes on the S3 (moto) server for several cycles, then every version read back: each must
    load, follow the version before it (its `base_version`), and carry a token no lower than it."""
    import io
    import uuid

    import torch

    from ptzjepa.storage.checkpoints import WORLD_MODELS, Checkpoints
    from ptzjepa.storage.store import Store
    from tests.s3_server import BUCKET, s3_server

    with s3_server() as endpoint:
        url = f"s3://{BUCKET}/swarm-{uuid.uuid4().hex[:8]}"
        plan = SwarmPlan(nodes=args.nodes, profile=args.profile, cycles=args.cycles, data=root / "s3",
                         sets=[f"storage.shared={url}", f"storage.s3_endpoint={endpoint}",
                               "storage.keep_checkpoints=1000", f"world_model.population={args.models.split(',')[0]}",
                               *args.set])
        code, seconds, _ = run_swarm(plan)
        ckpts = Checkpoints(Store(url, client_kwargs={"endpoint_url": endpoint}), WORLD_MODELS, keep=1000)
        print(f"{args.nodes} nodes on S3 (moto), {args.cycles} cycles, exit {code}, {seconds:.0f} s")
        print(f"{'model':6s} {'versions':>8s} {'load':>5s} {'chain breaks':>12s} {'token drops':>11s} "
              f"{'tokens':>14s} {'nodes':>5s}")
        for name in ckpts.names():
            versions, loaded, breaks, drops, tokens, nodes = ckpts.versions(name), 0, 0, 0, [], set()
            before = None
            for version in versions:
                try:
                    raw = ckpts.store.read_bytes(f"{WORLD_MODELS}/{name}/ckpt-{version:06d}.pt")
                    meta = torch.load(io.BytesIO(raw), weights_only=True)["meta"]
                except Exception as exc:  # a version that does not load is what this run looks for
                    print(f"  {name} v{version} does not load: {exc}")
                    continue
                loaded += 1
                breaks += before is not None and meta.get("base_version") != before
                drops += bool(tokens) and int(meta["fence"]) < tokens[-1]
                tokens.append(int(meta["fence"]))
                nodes.add(meta.get("trained_by"))
                before = version
            print(f"{name:6s} {len(versions):8d} {loaded:5d} {breaks:12d} {drops:11d} "
                  f"{f'{tokens[0]}..{tokens[-1]}' if tokens else '-':>14s} {len(nodes):5d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smallest run: 1 cycle, iterations 4,2,1, 1 epoch")
    parser.add_argument("--scale", action="store_true", help="lock waits against the number of models")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--iterations", default="20,10,5", help="capture.iterations of nodes A, B, C, ...")
    parser.add_argument("--s3", action="store_true", help="a shared store under load: nodes on the S3 (moto) server")
    parser.add_argument("--nodes", type=int, default=0, help="how many nodes (--scale: 20, --s3: 8)")
    parser.add_argument("--models", default="1,2,5,10", help="--scale: population sizes to try")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every node")
    parser.add_argument("--data", help="keep the swarms' folders here (default: a temporary folder)")
    parser.add_argument("--json", help="--scale: also write the table's rows to this file")
    args = parser.parse_args()
    if args.quick:
        args.cycles, args.iterations = 1, "4,2,1"
        args.set = ["world_model.epochs=1", "agent.epochs=1", *args.set]
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        root = Path(args.data) if args.data else Path(tmp)
        args.nodes = args.nodes or (8 if args.s3 else 20)
        (store_load if args.s3 else scale if args.scale else heterogeneous)(args, root)


if __name__ == "__main__":
    main()
