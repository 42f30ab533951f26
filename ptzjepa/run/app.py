"""What `cli.py run` and `cli.py status` do, given parsed arguments: wiring, not logic."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from ptzjepa.config.loading import config_notes, config_to_dict
from ptzjepa.config.settings import Config
from ptzjepa.distributed import contributions
from ptzjepa.distributed.preflight import check_services
from ptzjepa.distributed.shared_store import models_shared, open_shared
from ptzjepa.distributed.swarm import SwarmPlan
from ptzjepa.logs import redact_url, setup_logging
from ptzjepa.node.context import Node
from ptzjepa.run.machine import MACHINE_STATE_FILE, Runner, check_saved_state, load_machine
from ptzjepa.run.store_check import CONFIG_SNAPSHOT, check_at_start, read_status
from ptzjepa.storage.checkpoints import WORLD_MODELS
from ptzjepa.storage.damage import Damaged, read_json_checked
from ptzjepa.storage.runlock import RunLock, run_holder
from ptzjepa.storage.store import Store, StoreError
from ptzjepa.view.contributions_table import contributions_table
from ptzjepa.view.events import Events, log_subscriber
from ptzjepa.view.live import LiveView, render
from ptzjepa.view.progress_lines import ProgressLines
from ptzjepa.view.status import STATUS_FILE, NodeStatus, NothingStoredError, StatusWriter
from ptzjepa.view.waggle import WagglePublisher, open_plugin

log = logging.getLogger("ptzjepa.app")


def secrets_of(config: Config) -> list[str]:
    """Every secret the run may hold, so that logging can blank them out wherever they appear."""
    return [s for s in (config.camera.password(), config.locks.password(), config.storage.sftp_password()) if s]


def run(config: Config, machine: str, cycles: int | None, view: bool, debug: bool) -> int:
    """Run a machine on a node until it ends; returns the process exit code."""
    spec = load_machine(machine)
    console = Console(stderr=False) if view else None
    setup_logging(debug, secrets_of(config), console=console)
    check_services(config)
    use_threads(config.run.threads)
    store = Store(config.storage.data)
    with RunLock(store):
        shared = open_shared(config.storage, store)
        node = Node(config=config, store=store, events=Events(), shared=shared)
        node.events.subscribe(log_subscriber)
        # With the run lock held, a temporary file in the node's own folders is a dead writer's: it
        # goes at once. A shared store (storage.shared, set apart from storage.data) may hold other
        # nodes' live writes: there only this host's dead writers' files and stale ones go.
        swept = store.sweep_temp_files(older_than_s=0) + node.frames.sweep_orphans()
        if models_shared(config.storage):
            swept += shared.sweep_temp_files(shared=(WORLD_MODELS,))
        if swept:
            log.info("event=swept_partial_writes count=%d", swept)
        status = NodeStatus(limits=config.camera.limits.to_limits(), machine_states=spec.state_names)
        writer = StatusWriter(status, store)
        for subscriber in (status, writer):
            node.events.subscribe(subscriber)
        previous = read_status(store, node.warn)
        if previous is not None:
            status.restore(previous)
        plugin = open_plugin() if config.waggle.publish else None
        if plugin is not None:
            node.events.subscribe(WagglePublisher(plugin))
        runner = Runner(spec, node)  # reads (or rebuilds) the machine state first: what follows needs the cycle
        check_at_start(node)
        store.write_json(CONFIG_SNAPSHOT, config_to_dict(config))
        node.events.emit(
            "run_started", machine=spec.name, states=spec.state_names, state=runner.state,
            cycle=node.cycle, data=store.url, frames=node.frames.count(), resumed=runner.resumed,
        )
        for note in config_notes(config):
            node.events.emit("warning", message=note)
        if console is None:
            node.events.subscribe(ProgressLines(config.run.progress_every_s))
        restore = _install_stop_handlers(node.stop)
        _announce_stop(node)
        try:
            if console is not None:
                with LiveView(status, console, config.run.view_refresh_hz):
                    reason = _run_to_end(runner, node, cycles)
            else:
                reason = _run_to_end(runner, node, cycles)
        finally:
            restore()
            node.close()
            if plugin is not None:
                plugin.__exit__(None, None, None)
        writer.flush()
    ended = spec.state_names.count(reason) and spec.state(reason)
    return ended.exit_code if ended else 0


def _run_to_end(runner: Runner, node: Node, cycles: int | None) -> str:
    """Run the machine and announce the end while the live view still draws, so its last frame
    shows why the run stopped."""
    reason = runner.run(cycles)
    node.events.emit("run_finished", reason=reason, state=runner.state, cycle=node.cycle)
    return reason


def _show(snap: dict[str, Any], damage: list[str], as_json: bool) -> None:
    warnings = snap.get("warnings")
    snap = {**snap, "damaged": damage, "warnings": [*(warnings if isinstance(warnings, list) else []), *damage]}
    if as_json:
        print(json.dumps(snap, indent=1, sort_keys=True))
    else:
        console = Console()
        console.print(render(snap))
        if snap["shared"].get("models"):
            console.print(contributions_table(snap["shared"]))


def use_threads(threads: int) -> None:
    """Set torch's CPU threads for this process (0: leave torch's default), before any torch work:
    torch sizes its inter-op pool only until that pool first runs, so a later call leaves it be."""
    if threads <= 0:
        return
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # torch already did parallel work in this process (an in-process caller)
        log.debug("event=threads interop=unchanged intra=%d", threads)


def _announce_stop(node: Node) -> None:
    """Tell the view and the logs when a stop is asked for, from a thread of its own: a signal
    handler must not emit (it may interrupt the main thread inside an emit)."""

    def wait() -> None:
        node.stop.wait()
        node.events.emit("stopping", message="stopping after this step…")

    threading.Thread(target=wait, name="stop-announcer", daemon=True).start()


def _install_stop_handlers(stop: threading.Event):
    """First Ctrl-C (or SIGTERM) asks for a clean stop after the current step; a second forces it.

    Only this process answers: forked children (data-loader workers) inherit the handler and get
    the terminal's Ctrl-C too, but they stop when the main process ends them, and must not each
    print the stopping line."""
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            return
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after the current step (Ctrl-C again to force)", file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old_int = signal.signal(signal.SIGINT, handler)
    old_term = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)

    return restore


def swarm(plan: SwarmPlan, view: bool) -> int:
    """Run a swarm of simulated nodes to the end, or until Ctrl-C; returns the exit code."""
    from ptzjepa.distributed.swarm import Swarm, install_stop_handlers
    from ptzjepa.distributed.swarm_view import SwarmView

    setup_logging(False)
    console = Console() if view else Console(width=160)
    with SwarmView(console, live=view) as drawn:
        runner = Swarm(plan, on_tick=drawn)
        restore = install_stop_handlers(runner)
        try:
            code = runner.run()
        finally:
            restore()
    drawn.final(runner)
    return code


def status(data: str, as_json: bool) -> int:
    """Print a node's facts once, from its store, without attaching to it: it only reads, so a
    mistyped --data leaves no empty folder behind to be mistaken for a node later."""
    shown = redact_url(data)
    store = Store(data, create=False)
    if not store.is_folder():
        raise NothingStoredError(f"--data {shown}: no data folder there (no ptzjepa run has stored anything here)")
    damage: list[str] = []  # status only reads: damaged files are reported, a run moves them aside
    snap = read_status(store, damage.append, repair=False)
    try:
        machine = read_json_checked(store, MACHINE_STATE_FILE, check_saved_state)
    except Damaged as exc:
        damage.append(f"damaged file {MACHINE_STATE_FILE}: {exc} (the next run moves it aside and rebuilds it)")
        machine = None
    if snap is None and machine is None and not damage:
        raise NothingStoredError(f"--data {shown}: no ptzjepa run has stored anything here")
    facts: dict[str, Any] = {}
    if isinstance(machine, dict):
        facts.update(machine=machine.get("machine", ""), state=machine.get("state", ""), cycle=machine.get("cycle", 0))
    from ptzjepa.storage.frames import FrameStore

    facts.update(frames_stored=FrameStore(store).count(), disk_bytes=store.disk_usage(), data=shown)
    facts["shared"] = _shared_summary(store, damage.append)
    try:
        full = {**(snap or {}), **facts}
        full["run"] = _liveness(store, full, machine)
        _show(full, damage, as_json)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        # whole JSON, but a value of the wrong type where the view draws it: report, show the rest
        damage.append(f"damaged file {STATUS_FILE}: a value of the wrong type ({exc}); "
                      "the next run writes it afresh")
        facts["run"] = _liveness(store, facts, machine)
        _show(facts, damage, as_json)
    return 0


def _shared_summary(store: Store, warn: Callable[[str], None]) -> dict[str, Any]:
    """Contributions to the shared models, from the store named in the node's config snapshot
    (its own store when no other is set); {"error": ...} when that store cannot be read. Damage
    found there goes to `warn`; status only reads, so nothing is moved or rebuilt."""
    from ptzjepa.config.loading import config_from_dict
    from ptzjepa.storage.checkpoints import Checkpoints

    try:
        saved = store.read_json(CONFIG_SNAPSHOT, default=None)
        storage = config_from_dict(saved if isinstance(saved, dict) else {}, CONFIG_SNAPSHOT).storage
        shared = open_shared(storage, store, create=False)
        found = contributions.summary(Checkpoints(shared, WORLD_MODELS, warn=warn, repair=False), shared)
    except Exception as exc:  # status reports what it can: the node's own facts still print
        return {"error": f"shared store: {exc}"}
    return {"url": redact_url(storage.shared_url()), **found}


def _liveness(store: Store, snap: dict[str, Any], machine: Any) -> dict[str, Any]:
    """Whether the run is alive (its run lock says), when it was last seen (its newest status or
    machine write), and, for a dead run, what became of the model leases it held: OS locks went
    with the process; Redis leases run out `locks.lease_s` after their last renewal."""
    held = run_holder(store)
    stamps = [d.get("updated") for d in (snap, machine) if isinstance(d, dict)]
    seen = max((float(t) for t in stamps if isinstance(t, (int, float))), default=None)
    run: dict[str, Any] = {"alive": held.alive, "last_seen": seen, **{k: held.holder[k] for k in ("host", "pid") if k in held.holder}}
    if held.alive is False and snap.get("locks"):
        try:
            config = store.read_json(CONFIG_SNAPSHOT, default=None)
        except StoreError:  # damaged: the next run moves it aside
            config = None
        locks = config.get("locks") if isinstance(config, dict) else None
        lease_s = locks.get("lease_s") if isinstance(locks, dict) else None
        redis = isinstance(locks, dict) and locks.get("kind") == "redis"
        now = time.time()
        for resource, state in list(snap["locks"].items()):
            if not str(state).startswith("held"):
                continue
            if redis and isinstance(lease_s, (int, float)) and seen is not None and now < seen + lease_s:
                snap["locks"][resource] = f"stale: {state}, by a run that is not running; expires by " \
                                          f"{_clock(seen + lease_s)}"
            else:
                snap["locks"][resource] = f"expired: {state}, by a run that is not running"
    return run


def _clock(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
