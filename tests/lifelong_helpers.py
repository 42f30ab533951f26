"""Running `cli.py run` as a real process on a data folder, killing it where wanted, and checking
what it left behind: the shared parts of the end-to-end and kill-and-resume tests."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ptzjepa.config.loading import load_config
from ptzjepa.config.settings import Config
from ptzjepa.learning.agent.dreamer import pool_tokens
from ptzjepa.node import model_store
from ptzjepa.node.context import PROGRESS_DIR, Node
from ptzjepa.run.machine import MACHINE_STATE_FILE
from ptzjepa.stages.dream import complete_sets, load_set
from ptzjepa.storage.embeddings import EMBEDS, embedding_ids, read_embedding
from ptzjepa.storage.frames import COMMANDS, IMAGES, FrameStore, decode_jpeg
from ptzjepa.storage.store import Store
from tests.conftest import REPO

_ID = re.compile(r"^c(\d{5})_([a-z_]+)_(\d{6})$")

# One torch thread per run. On a small shared machine (CI, two cores) two intra-op threads gain
# nothing for the tiny models, and when other processes compete for the cores their spin-waiting
# makes a run several times slower; the kill tests need stable timing, not the default threads.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_command(data: Path, *sets: str, cycles: int = 1, machine: str = "lifelong") -> list[str]:
    """The `cli.py run --sim --profile tiny` command line for a data folder and settings."""
    cmd = [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", machine,
           "--cycles", str(cycles), "--data", str(data), "--no-view"]
    for item in sets:
        cmd += ["--set", item]
    return cmd


def run_to_end(cmd: list[str], timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def config_of(*sets: str) -> Config:
    """The config that run_command(…, *sets) runs with (the data folder aside)."""
    return load_config("tiny", list(sets))


def read_json(path: Path) -> Any:
    """A JSON file the run writes atomically, or None while it does not exist yet."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def machine_state(data: Path) -> dict[str, Any]:
    return read_json(data / MACHINE_STATE_FILE) or {}


def progress_done(data: Path, stage: str, cycle: int = 0) -> int:
    """How many steps of `stage` the run has saved as done in `cycle` (0 before it has any)."""
    saved = read_json(data / PROGRESS_DIR / f"{stage}.json") or {}
    return int(saved.get("done", 0)) if saved.get("cycle") == cycle else 0


def model_version(data: Path, kind: str, name: str) -> int:
    return int((read_json(data / kind / name / "model_info.json") or {}).get("version", 0))


def kill_inside(cmd: list[str], data: Path, state: str, ready: Callable[[], bool],
                timeout: float = 120, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start the run, wait until the machine is in `state` and `ready()` holds, SIGKILL it, and
    return the machine state it left (asserting that the kill did land inside that state)."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if machine_state(data).get("state") == state and ready():
                break
            if proc.poll() is not None:
                raise AssertionError(f"the run ended (exit {proc.returncode}) before it could be killed in "
                                     f"{state}: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the run did not reach {state} within {timeout} s: {machine_state(data)}")
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    left = machine_state(data)
    assert left.get("state") == state, f"the kill meant for {state} landed in {left}"
    return left


def check_frames(data: Path) -> dict[tuple[int, str], list[int]]:
    """Every frame whole and counted once: each record has its image (decodable) and command, no
    image, command or embedding lacks a record, no temporary file is left, and each id is the
    record's own (cycle, stage, step). Returns the steps stored per (cycle, stage)."""
    store = Store(str(data))
    frames = FrameStore(store)
    ids = frames.ids()
    assert len(ids) == len(set(ids))
    leftovers = [str(p.relative_to(data)) for p in data.rglob(".*") if ".tmp-" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    steps: dict[tuple[int, str], list[int]] = defaultdict(list)
    for record in frames.records():
        match = _ID.match(record.id)
        assert match, record.id
        cycle, stage, step = int(match[1]), match[2], int(match[3])
        assert (record.cycle, record.stage) == (cycle, stage), record
        assert record.image == f"{IMAGES}/{record.id}.jpg"
        decode_jpeg(store.read_bytes(record.image), record.image)
        assert store.exists(f"{COMMANDS}/{record.id}.json")
        steps[(cycle, stage)].append(step)
    known = set(ids)
    for folder, suffix in ((IMAGES, ".jpg"), (COMMANDS, ".json"), (EMBEDS, ".pt")):
        orphans = [n for n in store.list(folder, suffix) if n[: -len(suffix)] not in known]
        assert not orphans, f"{folder}: files without a frame record: {orphans}"
    return {key: sorted(value) for key, value in steps.items()}


def check_rounds(steps: dict[tuple[int, str], list[int]], config: Config, cycles: range) -> None:
    """Capture (cycle 0) and every cycle's navigation stored each step of their plan exactly once:
    iterations × (movements + 1) frames, a start frame and `movements` moves per round."""
    cap, nav = config.capture, config.navigate
    expected = {(0, "capture"): cap.iterations * (cap.movements + 1)}
    for cycle in cycles:
        expected[(cycle, "navigate")] = nav.iterations * (nav.movements + 1)
    assert set(steps) == set(expected), sorted(steps)
    for key, count in expected.items():
        assert steps[key] == list(range(count)), (key, steps[key])


def check_embeddings(data: Path) -> int:
    """Each navigation move's frame has its embedding with a finite reward; returns how many."""
    store = Store(str(data))
    frames = FrameStore(store)
    moves = [r for r in frames.records() if r.stage == "navigate" and r.command.kind == "action"]
    for record in moves:
        saved = read_embedding(store, record.id)
        assert math.isfinite(saved.reward) and saved.embedding.dtype == torch.float16
        assert saved.action == record.command.action
    assert len(embedding_ids(store)) == len(moves)
    return len(moves)


def check_models(data: Path, config: Config) -> dict[str, Any]:
    """The world model, the newest dream set and the agent all load; returns their metadata."""
    node = Node(config=config, store=Store(str(data)))
    cpu = torch.device("cpu")
    picked = model_store.trained_world_model(node)
    assert picked is not None, "no trained world model"
    world_model, wm_meta = model_store.load_world_model(node, picked[0], cpu)
    sets = complete_sets(node)
    assert sets, "no complete dream set"
    info, chunks = load_set(node, sets[-1])
    assert sum(c["states"].shape[0] for c in chunks) == info["number_of_dreams"] == config.dream.number_of_dreams
    loaded = model_store.load_agent(node, cpu)
    assert loaded is not None, "no agent"
    agent, agent_meta = loaded
    with torch.no_grad():
        image = torch.zeros(1, 3, world_model.spec.image_size, world_model.spec.image_size)
        tokens = pool_tokens(world_model.encode_target(image), config.dream.state_pool)
        q = agent(tokens, torch.zeros(1, 3))
    assert q.shape == (1, len(config.actions)) and torch.isfinite(q).all()
    return {"world_model": wm_meta, "dreams": info, "agent": agent_meta}
