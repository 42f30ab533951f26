"""`cli.py swarm`: N simulated nodes on one machine, one shared population of world models, one Redis.

Each node is a `cli.py run` subprocess, exactly as a real node runs, with its own data folder
(DIR/node-<i>), its own scene (sim.seed and capture.seed = i), its own settings (--node-set),
the swarm's Redis and the shared store DIR/shared (storage.shared). Without --redis
the swarm serves DIR/redis with a local redis-server whose append-only file keeps the fencing
token counters, so a stopped swarm started again never grants a token older than one it granted.

Nodes run in their own process groups: a Ctrl-C reaches the swarm alone, which forwards one
SIGINT to every node (each stops after its current step), waits, then forces (a second SIGINT,
then SIGKILL). The same command resumes every node from its folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import attrs

from ptzjepa.distributed.redis_server import RedisServer

CLI = Path(__file__).resolve().parents[2] / "cli.py"
SHARED_DIR = "shared"
REDIS_DIR = "redis"
LOGS_DIR = "logs"
STOP_GRACE_S = 60.0  # a node stops after its current step: a tiny epoch or a dream chunk
FORCE_GRACE_S = 10.0


class SwarmError(ValueError):
    """Bad swarm arguments or a swarm that cannot start: one line, exit 2."""


@attrs.frozen
class SwarmPlan:
    nodes: int
    profile: str
    cycles: int
    data: Path
    node_sets: dict[int, list[str]] = attrs.field(factory=dict)
    sets: list[str] = attrs.field(factory=list)
    redis_url: str = ""  # '' -> a local redis-server on a free port, serving DIR/redis
    machine: str = "lifelong"

    def node_dir(self, i: int) -> Path:
        return self.data / f"node-{i}"

    def log_path(self, i: int) -> Path:
        return self.data / LOGS_DIR / f"node-{i}.log"


def parse_node_sets(items: list[str], nodes: int) -> dict[int, list[str]]:
    """`I:KEY=VALUE` items -> {I: [KEY=VALUE, ...]}; a bad item is a one-line SwarmError."""
    found: dict[int, list[str]] = {}
    for item in items:
        index, sep, setting = item.partition(":")
        if not sep or not index.isdigit() or "=" not in setting:
            raise SwarmError(f"--node-set: expected I:KEY=VALUE (I a node number), got {item!r}")
        if int(index) >= nodes:
            raise SwarmError(f"--node-set {item}: node {index} does not exist (--nodes {nodes}: 0..{nodes - 1})")
        found.setdefault(int(index), []).append(setting)
    return found


def node_overrides(plan: SwarmPlan, i: int, redis_url: str) -> list[str]:
    """Node i's settings over the profile, in the order `cli.py run` applies them (later wins)."""
    sets = [f"storage.data={plan.node_dir(i)}", "camera.kind=sim", f"run.node=node-{i}", "locks.kind=redis",
            f"locks.redis_url={redis_url}", f"sim.seed={i}", f"capture.seed={i}",
            f"storage.shared={plan.data / SHARED_DIR}"]
    return sets + plan.sets + plan.node_sets.get(i, [])


def node_command(plan: SwarmPlan, i: int, redis_url: str) -> list[str]:
    cmd = [sys.executable, str(CLI), "run", "--machine", plan.machine, "--profile", plan.profile,
           "--cycles", str(plan.cycles), "--no-view"]
    for setting in node_overrides(plan, i, redis_url):
        cmd += ["--set", setting]
    return cmd


def check_plan(plan: SwarmPlan, redis_url: str) -> None:
    """Every node's settings load (ConfigError names the bad key), and the Redis answers and takes
    the password (checked once here rather than failing N times in the nodes)."""
    from ptzjepa.config.loading import load_config
    from ptzjepa.distributed.preflight import check_services

    configs = [load_config(plan.profile, node_overrides(plan, i, redis_url)) for i in range(plan.nodes)]
    check_services(configs[0])


class NodeProcess:
    """One node's `cli.py run`, its log file and its exit code."""

    def __init__(self, index: int, cmd: list[str], log_path: Path) -> None:
        self.index = index
        self.name = f"node-{index}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, "ab")
        self.log_path = log_path
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def send(self, signum: int) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signum)
            except ProcessLookupError:
                pass

    def last_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def close(self) -> None:
        self._log.close()


class Swarm:
    """Runs a plan: the Redis (unless given), the nodes, the stop protocol; `run()` returns the exit code."""

    def __init__(self, plan: SwarmPlan, on_tick: Any = None, tick_s: float = 0.5) -> None:
        self.plan = plan
        self.nodes: list[NodeProcess] = []
        self.stop = threading.Event()
        self.force = threading.Event()
        self.on_tick = on_tick  # called with the swarm about every tick_s while nodes run (the view)
        self.tick_s = tick_s
        self.redis: RedisServer | None = None
        self.redis_url = plan.redis_url

    def request_stop(self) -> None:
        """First call: stop every node after its current step; a second: force them."""
        if self.stop.is_set():
            self.force.set()
        self.stop.set()

    def start(self) -> None:
        self.plan.data.mkdir(parents=True, exist_ok=True)
        if not self.redis_url:
            self.redis = RedisServer(self.plan.data / REDIS_DIR, persist=True).start()
            self.redis_url = self.redis.url
        check_plan(self.plan, self.redis_url)
        for i in range(self.plan.nodes):
            self.nodes.append(NodeProcess(i, node_command(self.plan, i, self.redis_url), self.plan.log_path(i)))

    def run(self) -> int:
        try:
            self.start()
            self._wait()
        finally:
            self._shutdown()
        if self.stop.is_set():
            return 130
        return 0 if all(n.returncode == 0 for n in self.nodes) else 1

    def _wait(self) -> None:
        forwarded = forced = 0.0
        while any(n.returncode is None for n in self.nodes):
            now = time.monotonic()
            if self.stop.is_set() and not forwarded:
                forwarded = now
                for node in self.nodes:
                    node.send(signal.SIGINT)
            if forwarded and not forced and (self.force.is_set() or now - forwarded > STOP_GRACE_S):
                forced = now  # a second SIGINT makes a node's run stop at once (KeyboardInterrupt)
                for node in self.nodes:
                    node.send(signal.SIGINT)
            if forced and now - forced > FORCE_GRACE_S:
                for node in self.nodes:
                    node.send(signal.SIGKILL)
            if self.on_tick is not None:
                self.on_tick(self)
            time.sleep(self.tick_s)
        if self.on_tick is not None:
            self.on_tick(self)

    def _shutdown(self) -> None:
        for node in self.nodes:  # only when the swarm itself failed: its nodes must not outlive it
            if node.returncode is None:
                node.send(signal.SIGKILL)
                node.proc.wait()
            node.close()
        if self.redis is not None:
            self.redis.stop()


def install_stop_handlers(swarm: Swarm):
    """Ctrl-C and SIGTERM ask the swarm to stop its nodes; a second one forces them."""

    def handler(signum: int, frame: Any) -> None:
        first = not swarm.stop.is_set()
        swarm.request_stop()
        print("\nstopping every node after its current step (Ctrl-C again to force)" if first
              else "\nforcing every node to stop", file=sys.stderr)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(s, h) for s, h in old.items()]
