"""`cli.py experiment`: every navigation policy run K times on the simulator, then compared.

Each run is a normal `cli.py run --sim` in its own process and data folder `<out>/<policy>-s<i>`,
so it is resumable by itself: an interrupted experiment (Ctrl-C, SIGTERM, or its process killed:
the runs get SIGTERM when it dies, on Linux) is resumed by the same command, which skips the runs
whose folder already holds the wanted cycles and lets the others continue where they stopped.
Seed index i sets every run seed and the scene (`sim.seed`) to i for every policy, so each seed
index is a paired comparison: same scene, same capture plan, same round starts, same held-out set.
The figures are read back from the runs' stores (ptzjepa.metrics.summary) and summarised by
ptzjepa.experiment.compare.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from ptzjepa.run.machine import MACHINE_STATE_FILE
from ptzjepa.storage.store import Store, StoreError

log = logging.getLogger("ptzjepa.experiment")
REPO = Path(__file__).resolve().parents[2]
POLICIES = ("curiosity", "random", "sweep")
SEEDED = ("sim.seed", "capture.seed", "navigate.seed", "world_model.seed", "dream.seed", "agent.seed")
_STOP_GRACE_S = 120.0
PLAN_FILE = "experiment-settings.json"


@attrs.frozen
class RunSpec:
    policy: str
    seed: int
    out: str

    @property
    def name(self) -> str:
        return f"{self.policy}-s{self.seed}"

    @property
    def data(self) -> str:
        return str(Path(self.out) / self.name)

    @property
    def log_path(self) -> Path:
        return Path(self.out) / "logs" / f"{self.name}.log"

    def overrides(self, sets: list[str]) -> list[str]:
        """This run's settings: the policy and seeds first, so that the user's --set can override."""
        return [f"navigate.policy={self.policy}", *(f"{key}={self.seed}" for key in SEEDED), *sets]

    def command(self, profile: str, cycles: int, sets: list[str]) -> list[str]:
        cmd = [sys.executable, str(REPO / "cli.py"), "run", "--sim", "--profile", profile,
               "--cycles", str(cycles), "--data", self.data, "--no-view"]
        for item in self.overrides(sets):
            cmd += ["--set", item]
        return cmd


def plan(policies: list[str], seeds: int, out: str) -> list[RunSpec]:
    """Seed-major order: with fewer jobs than runs, every policy gets its first seeds done early."""
    return [RunSpec(policy, seed, out) for seed in range(seeds) for policy in policies]


def cycles_done(spec: RunSpec) -> int:
    """How many lifelong cycles the run's folder holds (0 if it has none yet)."""
    try:
        state = Store(spec.data, create=False).read_json(MACHINE_STATE_FILE, default=None)
    except StoreError:
        return 0
    if not isinstance(state, dict) or state.get("machine") != "lifelong":
        return 0
    return max(0, int(state.get("cycle", 0)) - int(state.get("first_cycle", 0)))


def default_jobs(runs: int) -> int:
    """Runs at once: on one GPU up to 4 (the loop's small batches leave the GPU idle most of the
    time, so a few processes overlap well); on a CPU one per two cores."""
    import torch

    if torch.cuda.is_available():
        return max(1, min(runs, 4))
    return max(1, min(runs, (os.cpu_count() or 1) // 2))


def _die_with_parent() -> None:
    """In the child: SIGTERM (a clean, resumable stop) when the experiment's process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: a killed experiment leaves its runs to finish
        pass


class Interrupted(Exception):
    """The experiment was asked to stop; the runs were stopped cleanly and can be resumed."""


def run_all(specs: list[RunSpec], profile: str, cycles: int, sets: list[str], jobs: int,
            progress=None) -> dict[str, int]:
    """Run every unfinished spec, at most `jobs` at a time; exit code per run name (0 for a run
    found complete). Raises Interrupted after stopping the runs on Ctrl-C or SIGTERM."""
    codes = {s.name: 0 for s in specs if cycles_done(s) >= cycles}
    waiting = [s for s in specs if s.name not in codes]
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    running: dict[str, tuple[subprocess.Popen, Any]] = {}
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                spec = waiting.pop(0)
                spec.log_path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(spec.log_path, "ab")
                proc = subprocess.Popen(spec.command(profile, cycles, sets), cwd=REPO, env=env,
                                        stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True,  # Ctrl-C reaches only us; we forward one SIGTERM
                                        preexec_fn=_die_with_parent if os.name == "posix" else None)
                running[spec.name] = (proc, handle)
                if progress:
                    progress(f"started {spec.name} (log: {spec.log_path})")
            for name, (proc, handle) in list(running.items()):
                if proc.poll() is not None:
                    handle.close()
                    codes[name] = proc.returncode
                    del running[name]
                    if progress:
                        progress(f"finished {name}: exit code {proc.returncode}")
            time.sleep(0.2)
    except KeyboardInterrupt:
        _stop(running)
        raise Interrupted(f"{len(running) + len(waiting)} run(s) unfinished") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return codes


def _stop(running: dict[str, tuple[subprocess.Popen, Any]]) -> None:
    """Ask each run to stop after its current step (SIGTERM), wait, then force the stragglers."""
    for proc, _ in running.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_S
    for proc, handle in running.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        handle.close()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class ExperimentUsage(ValueError):
    """A bad argument of `cli.py experiment`: one line, exit code 2."""


def run(profile: str, policies: list[str], seeds: int, cycles: int, out: str, sets: list[str],
        jobs: int | None, as_json: bool) -> int:
    """The whole experiment: run (or resume) every run, then summarise; the process exit code."""
    import json

    from rich.console import Console

    from ptzjepa.config.loading import load_config
    from ptzjepa.experiment.compare import RESULT_FILE, aggregate, table, write_plots
    from ptzjepa.metrics.coverage import CellGrid
    from ptzjepa.metrics.summary import run_summary

    unknown = [p for p in policies if p not in POLICIES]
    if not policies or unknown or len(set(policies)) != len(policies):
        raise ExperimentUsage(f"--policies: expected distinct names among {','.join(POLICIES)}, got "
                              f"{','.join(policies) or 'nothing'}")
    if seeds < 1 or cycles < 1 or (jobs is not None and jobs < 1):
        raise ExperimentUsage("--seeds, --cycles and --jobs: expected whole numbers >= 1")
    if "://" in out:
        raise ExperimentUsage(f"--out: expected a local folder (the runs' logs are files), got {out}")
    out = str(Path(out).expanduser().resolve())  # the runs work in the repository, not in our cwd
    if Path(profile).suffix in (".yaml", ".yml") and Path(profile).is_file():
        profile = str(Path(profile).resolve())
    specs = plan(policies, seeds, out)
    # Every run's settings are checked before any run starts (a bad --set stops here, exit 2).
    configs = {s.name: load_config(profile, ["camera.kind=sim", f"storage.data={s.data}", *s.overrides(sets)])
               for s in specs}
    store = Store(out, create=False)
    previous = store.read_json(PLAN_FILE, default=None) if store.is_folder() else None
    settings = {"profile": profile, "sets": sets}
    if isinstance(previous, dict) and previous != settings:
        raise ExperimentUsage(f"--out {out}: holds runs made with other settings ({previous}); resume with "
                              f"those or choose another folder")
    jobs = jobs or default_jobs(len(specs))
    err = Console(stderr=True)
    store = Store(out)
    store.write_json(PLAN_FILE, settings)  # more seeds, cycles or policies may follow; other settings not
    try:
        codes = run_all(specs, profile, cycles, sets, jobs, progress=lambda line: err.print(f"experiment: {line}"))
    except Interrupted as exc:
        err.print(f"experiment: interrupted, {exc}; the same command resumes them")
        return 130
    measured = list(range(cycles))
    runs: dict[str, dict[str, Any]] = {p: {} for p in policies}
    for spec in specs:
        done = cycles_done(spec)
        rows = run_summary(Store(spec.data), CellGrid.from_config(configs[spec.name]), measured)
        runs[spec.policy][str(spec.seed)] = {
            "data": spec.data, "exit_code": codes.get(spec.name), "cycles_done": done,
            "complete": done >= cycles, "log": str(spec.log_path), "cycles": rows,
        }
    result = {
        "profile": profile, "policies": policies, "seeds": seeds, "cycles": cycles,
        "cycles_measured": measured, "sets": sets, "jobs": jobs, "runs": runs,
        "summary": aggregate(runs, measured),
    }
    result["plots"] = write_plots(store, result)
    store.write_json(RESULT_FILE, result)
    incomplete = [f"{p}-s{s}" for p, seeds_ in runs.items() for s, r in seeds_.items() if not r["complete"]]
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        Console().print(table(result))
        Console().print(f"written: {store.url}/{RESULT_FILE} and {len(result['plots'])} plot(s)")
    if incomplete:
        err.print(f"experiment: {len(incomplete)} run(s) did not complete: {', '.join(incomplete)} "
                  f"(see {out}/logs/)")
        return 1
    return 0
