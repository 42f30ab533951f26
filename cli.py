#!/usr/bin/env python3
"""ptzjepa's command line. Parses arguments and hands over to the library; nothing else lives here."""

from __future__ import annotations

import argparse
import sys

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py", description="A PTZ camera that learns its surroundings.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a machine (default: lifelong) on a node")
    run.add_argument("--sim", action="store_true", help="use the panorama simulator instead of a real camera")
    run.add_argument("--profile", help="settings profile: a name under profiles/ or a YAML path "
                     "(default: sim; with --sim and no CUDA device: demo)")
    run.add_argument("--machine", default="lifelong", help="machine under machines/ (default: lifelong)")
    run.add_argument("--cycles", type=int, help="stop once this many cycles are complete in the data folder")
    run.add_argument("--data", help="where to keep everything: a path or fsspec URL (storage.data)")
    run.add_argument("--panorama", help="equirectangular image for the simulator (sim.panorama)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    run.add_argument("--no-view", action="store_true", help="plain logs instead of the live view")
    run.add_argument("--debug", action="store_true", help="verbose logs")

    swarm = sub.add_parser("swarm", help="run N simulated nodes on this machine, sharing models through one Redis")
    swarm.add_argument("--sim", action="store_true", required=True, help="simulated cameras (the only kind a swarm runs)")
    swarm.add_argument("--nodes", type=int, required=True, help="how many nodes")
    swarm.add_argument("--profile", default="sim", help="settings profile for every node (default: sim)")
    swarm.add_argument("--cycles", type=int, required=True, help="cycles each node completes (resumes count on)")
    swarm.add_argument("--data", required=True, help="the swarm's folder: node-<i>/, shared/, redis/, logs/")
    swarm.add_argument("--machine", default="lifelong", help="machine every node runs (default: lifelong)")
    swarm.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every node")
    swarm.add_argument("--node-set", action="append", default=[], metavar="I:KEY=VALUE",
                       help="a setting for node I only, e.g. 0:capture.iterations=20")
    swarm.add_argument("--redis", default="", metavar="URL",
                       help="a running Redis (default: start redis-server on a free loopback port)")
    swarm.add_argument("--no-view", action="store_true", help="a line per node as it ends instead of the live view")

    status = sub.add_parser("status", help="print a node's state, cycle, models and metrics once")
    status.add_argument("--data", required=True, help="the node's data folder or URL")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    exp = sub.add_parser("experiment", help="run every navigation policy K times on the simulator and compare them")
    exp.add_argument("--sim", action="store_true", help="required: only the simulator can measure everything")
    exp.add_argument("--profile", default="sim", help="settings profile for every run (default: sim)")
    exp.add_argument("--policies", default="curiosity,random,sweep", help="comma-separated navigate.policy values (default: all three)")
    exp.add_argument("--seeds", type=int, default=3, help="runs per policy, seeds 0..K-1 (default: 3)")
    exp.add_argument("--cycles", type=int, default=2, help="lifelong cycles per run (default: 2)")
    exp.add_argument("--out", required=True, help="local folder: one data folder per run, experiment.json, plots")
    exp.add_argument("--jobs", type=int, help="runs at once (default: up to 4 on a GPU, one per two CPU cores)")
    exp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting in every run")
    exp.add_argument("--json", action="store_true", help="print experiment.json instead of the table")

    legacy = sub.add_parser("legacy", help="run with PTZJEPA's main.py options",
                            add_help=False, prefix_chars="\x00")
    legacy.add_argument("options", nargs=argparse.REMAINDER)

    machines = sub.add_parser("machines", help="list or draw the state machines")
    msub = machines.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="list the machines")
    draw = msub.add_parser("draw", help="print a machine as a Mermaid state diagram")
    draw.add_argument("name")

    report = sub.add_parser("report", help="plots and a summary.md of a run, from its data folder")
    report.add_argument("--data", required=True, help="the run's data folder or URL (read only)")
    report.add_argument("--out", required=True, help="local folder for the PNGs and summary.md (made if missing)")
    report.add_argument("--debug", action="store_true", help="verbose logs")
    return parser


def _run(args: argparse.Namespace) -> int:
    from ptzjepa.config.loading import load_config

    flags = {}  # an option's value is taken as given (a path), never read as YAML
    if args.sim:
        flags["camera.kind"] = ("--sim", "sim")
    if args.data is not None:  # --data '' is an error (storage.data), not the profile's folder
        flags["storage.data"] = ("--data", args.data)
    if args.panorama is not None:
        flags["sim.panorama"] = ("--panorama", args.panorama)
    if args.cycles is not None and args.cycles < 1:
        raise _Usage("--cycles: expected a whole number >= 1")
    config = load_config(args.profile or default_profile(args.sim), list(args.set), flags)
    view = not args.no_view and sys.stdout.isatty()
    from ptzjepa.run import app  # torch and the stages: only once the settings are known to be good

    return app.run(config, args.machine, args.cycles, view=view, debug=args.debug)


def default_profile(sim: bool) -> str:
    """`sim` (PTZJEPA's model sizes) where torch sees a CUDA device, or for a real camera; on the
    simulator without one, `demo`: small models that show learning within minutes on a CPU."""
    if not sim:
        return "sim"
    import torch

    if torch.cuda.is_available():
        return "sim"
    print("profile demo: no CUDA device, small models that learn within minutes on a CPU "
          "(--profile sim for the full sizes)", file=sys.stderr)
    return "demo"


def _experiment(args: argparse.Namespace) -> int:
    from ptzjepa.experiment import runs as experiment

    if not args.sim:
        raise _Usage("experiment: needs --sim (held-out error and choice quality need the simulator)")
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    return experiment.run(args.profile, policies, args.seeds, args.cycles, args.out, list(args.set),
                          args.jobs, args.json)


def _swarm(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ptzjepa.distributed.swarm import SwarmPlan, parse_node_sets
    from ptzjepa.run import app

    if args.nodes < 1:
        raise _Usage("--nodes: expected a whole number >= 1")
    if args.cycles < 1:
        raise _Usage("--cycles: expected a whole number >= 1")
    plan = SwarmPlan(nodes=args.nodes, profile=args.profile, cycles=args.cycles, data=Path(args.data),
                     node_sets=parse_node_sets(args.node_set, args.nodes), sets=list(args.set),
                     redis_url=args.redis, machine=args.machine)
    return app.swarm(plan, view=not args.no_view and sys.stdout.isatty())


def _machines(args: argparse.Namespace) -> int:
    from ptzjepa.run.machine import list_machines, load_machine, mermaid

    if args.action == "list":
        for spec in list_machines():
            print(f"{spec.name:20s} {spec.description}")
        return 0
    print(mermaid(load_machine(args.name, check_stages=False)))
    return 0


def _report(args: argparse.Namespace) -> int:
    from ptzjepa.logs import scrub, setup_logging
    from ptzjepa.report import ReportError, make_report

    if args.debug:
        setup_logging(debug=True)
    try:
        made = make_report(args.data, args.out)
    except ReportError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    print(f"report: {len(made.made) - 1} plots and summary.md in {made.folder}"
          + (f" ({len(made.skipped)} skipped, see summary.md)" if made.skipped else ""))
    return 0


class _Usage(ValueError):
    pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ptzjepa.distributed.redis_server import RedisServerError
    from ptzjepa.distributed.swarm import SwarmError
    from ptzjepa.errors import ConfigError
    from ptzjepa.experiment.runs import ExperimentUsage
    from ptzjepa.run.machine import MachineError
    from ptzjepa.storage.runlock import RunLockedError
    from ptzjepa.view.status import NothingStoredError

    try:
        if args.command == "run":
            return _run(args)
        if args.command == "experiment":
            return _experiment(args)
        if args.command == "swarm":
            return _swarm(args)
        if args.command == "legacy":
            from ptzjepa.run import legacy

            return legacy.run(args.options)
        if args.command == "report":
            return _report(args)
        if args.command == "status":
            from ptzjepa.run import app

            return app.status(args.data, args.json)
        return _machines(args)
    except (ConfigError, MachineError, RunLockedError, NothingStoredError, SwarmError, RedisServerError,
            ExperimentUsage, _Usage) as exc:
        from ptzjepa.logs import scrub

        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else: one logged line (the traceback with --debug)
        import logging

        logging.getLogger("ptzjepa").error("run failed: %s: %s", type(exc).__name__, exc,
                                           exc_info=getattr(args, "debug", False))
        return 1


if __name__ == "__main__":
    sys.exit(main())
