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
    run.add_argument("--profile", help="settings profile: a name under profiles/ or a YAML path (default: sim)")
    run.add_argument("--machine", default="lifelong", help="machine under machines/ (default: lifelong)")
    run.add_argument("--cycles", type=int, help="stop once this many cycles are complete in the data folder")
    run.add_argument("--data", help="where to keep everything: a path or fsspec URL (storage.data)")
    run.add_argument("--panorama", help="equirectangular image for the simulator (sim.panorama)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    run.add_argument("--no-view", action="store_true", help="plain logs instead of the live view")
    run.add_argument("--debug", action="store_true", help="verbose logs")

    status = sub.add_parser("status", help="print a node's state, cycle, models and metrics once")
    status.add_argument("--data", required=True, help="the node's data folder or URL")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    legacy = sub.add_parser("legacy", help="run with the original PTZJEPA main.py options",
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
    from ptzjepa.config_loading import load_config

    flags = {}  # an option's value is taken as given (a path), never read as YAML
    if args.sim:
        flags["camera.kind"] = ("--sim", "sim")
    if args.data is not None:  # --data '' is an error (storage.data), not the profile's folder
        flags["storage.data"] = ("--data", args.data)
    if args.panorama is not None:
        flags["sim.panorama"] = ("--panorama", args.panorama)
    if args.cycles is not None and args.cycles < 1:
        raise _Usage("--cycles: expected a whole number >= 1")
    config = load_config(args.profile or "sim", list(args.set), flags)
    view = not args.no_view and sys.stdout.isatty()
    from ptzjepa import app  # torch and the stages: only once the settings are known to be good

    return app.run(config, args.machine, args.cycles, view=view, debug=args.debug)


def _machines(args: argparse.Namespace) -> int:
    from ptzjepa.machine import list_machines, load_machine, mermaid

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
    from ptzjepa.errors import ConfigError
    from ptzjepa.machine import MachineError
    from ptzjepa.runlock import RunLockedError
    from ptzjepa.status import NothingStoredError

    try:
        if args.command == "run":
            return _run(args)
        if args.command == "legacy":
            from ptzjepa import legacy

            return legacy.run(args.options)
        if args.command == "report":
            return _report(args)
        if args.command == "status":
            from ptzjepa import app

            return app.status(args.data, args.json)
        return _machines(args)
    except (ConfigError, MachineError, RunLockedError, NothingStoredError, _Usage) as exc:
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
