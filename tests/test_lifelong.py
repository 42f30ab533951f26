"""The whole lifelong loop as a user runs it: `cli.py run --sim --profile tiny` in a real process,
to the end, and killed with SIGKILL inside each of its stages, then run again to the end."""

from __future__ import annotations

import json
import time

import pytest

from tests.lifelong_helpers import (
    check_embeddings, check_frames, check_models, check_rounds, config_of, kill_inside, machine_state,
    ONE_THREAD, model_version, progress_done, read_json, run_command, run_to_end,
)

NODE = "run.node=lifelong-test"


@pytest.mark.slow
def test_two_cycles_end_to_end(tmp_path):
    """`python cli.py run --sim --profile tiny --cycles 2 --data DIR --no-view` from nothing."""
    data = tmp_path / "run"
    cmd = run_command(data, NODE, cycles=2)
    began = time.monotonic()
    done = run_to_end(cmd, timeout=280)
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"cycles-2 tiny run took {seconds:.1f} s")  # the 5 minutes is the subprocess timeout

    assert machine_state(data) | {"updated": 0} == {
        "machine": "lifelong", "state": "train_world_model", "cycle": 2, "first_cycle": 0, "updated": 0}
    config = config_of(NODE)
    steps = check_frames(data)
    check_rounds(steps, config, cycles=range(2))
    moves = check_embeddings(data)
    assert moves == 2 * config.navigate.iterations * config.navigate.movements
    meta = check_models(data, config)
    assert meta["world_model"]["cycle"] == 1 and meta["dreams"]["cycle"] == 1
    assert meta["agent"]["session"]["cycle"] == 1 and meta["agent"]["node"] == "lifelong-test"
    assert (data / "world_models" / "wm-0" / "model_info.json").is_file()
    assert (data / "agents" / "agent-lifelong-test" / "model_info.json").is_file()

    status = json.loads((data / "state" / "status.json").read_text())
    assert status["cycle"] == 2 and status["finished"] == "cycles"
    assert status["dreams"]["made"] == 2 * config.dream.number_of_dreams
    assert len(status["rewards"]) == moves and status["series"]["world_model.loss"]
    assert status["path"] == ["capture", "train_world_model", "dream", "train_agent", "navigate", "evaluate"]

    # the view draws the run's whole story from what its events left in the status file
    from rich.console import Console

    from ptzjepa.view.live import render

    console = Console(record=True, width=160, color_system=None)
    console.print(render(status))
    text = console.export_text()
    assert " train_world_model  ↻" not in text and "→  train_world_model  →" in text  # lit: next to run
    assert "cycle 2 · train_world_model" in text and "finished: cycles" in text
    for needle in ("world_model.loss", "agent.loss", "rewards", "dreams made", f"{status['dreams']['made']} · set",
                   "agents/agent-lifelong-test v", "world_models/wm-0 v", "frames stored", "[]"):
        assert needle in text, needle


# Per stage: settings that make that stage last a few seconds (the same for the killed run and
# the one that resumes it), and when the stage has done enough of its work to be killed.
KILLS = {
    "capture": (
        ["sim.move_latency_s=0.05", "capture.iterations=3", "capture.movements=5"],
        lambda data: progress_done(data, "capture") >= 3,
    ),
    "train_world_model": (
        ["world_model.epochs=30", "world_model.patience=100"],
        lambda data: model_version(data, "world_models", "wm-0") >= 1,
    ),
    "dream": (
        ["dream.number_of_dreams=240", "dream.chunk_size=4"],
        lambda data: any(data.glob("dreams/*/chunk-0000.pt")),
    ),
    "train_agent": (
        ["agent.epochs=100", "agent.patience=1000"],
        lambda data: model_version(data, "agents", "agent-lifelong-test") >= 2,
    ),
    "navigate": (
        ["sim.move_latency_s=0.05", "navigate.iterations=3", "navigate.movements=5"],
        lambda data: progress_done(data, "navigate") >= 3,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(KILLS))
def test_sigkill_inside_a_stage_then_the_same_command_finishes(tmp_path, stage):
    sets, ready = KILLS[stage]
    sets = [NODE, *sets]
    config = config_of(*sets)
    data = tmp_path / "run"
    cmd = run_command(data, *sets, cycles=1)
    left = kill_inside(cmd, data, stage, lambda: ready(data), env=ONE_THREAD)
    assert left["cycle"] == 0
    killed = _stage_files(data)
    wm_before = read_json(data / "world_models" / "wm-0" / "model_info.json")
    agent_before = read_json(data / "agents" / "agent-lifelong-test" / "model_info.json")
    _assert_cut_short(data, stage, config, killed)

    done = run_to_end(cmd, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    assert machine_state(data)["cycle"] == 1
    check_rounds(check_frames(data), config, cycles=range(1))
    assert check_embeddings(data) == config.navigate.iterations * config.navigate.movements
    meta = check_models(data, config)
    wm, agent = meta["world_model"], meta["agent"]
    # no epoch lost or counted twice across the kill
    assert wm["epochs_trained"] == wm["session"]["epochs_done"] == len(wm["session"]["losses"])
    assert agent["session"]["epochs_done"] == len(agent["session"]["losses"])
    if stage == "train_world_model":
        assert wm["epochs_trained"] == config.world_model.epochs
    if stage == "train_agent":
        assert agent["session"]["epochs_done"] == config.agent.epochs
    if stage == "dream":
        assert meta["dreams"]["chunks"] == config.dream.number_of_dreams // config.dream.chunk_size

    # resumed, not started over: what the killed run had finished is kept as it was
    after = _stage_files(data)
    redone = [name for name, stamp in killed.items() if after.get(name) != stamp]
    assert len(redone) <= 1, f"rewritten after the resume: {redone}"  # at most the step in flight
    if stage == "train_world_model":
        kept = wm_before["session"]["losses"]
        assert wm["session"]["losses"][: len(kept)] == kept
    if stage == "train_agent":
        kept = agent_before["session"]["losses"]
        assert agent["session"]["losses"][: len(kept)] == kept


def _stage_files(data):
    """Frame records and dream chunks by name, with their modification times."""
    found = list(data.glob("collected_positions/*.json")) + list(data.glob("dreams/*/chunk-*.pt"))
    return {str(p.relative_to(data)): p.stat().st_mtime_ns for p in found}


def _assert_cut_short(data, stage, config, files):
    """The kill left the stage's work partly done."""
    if stage == "capture":
        total = config.capture.iterations * (config.capture.movements + 1)
        assert 3 <= len(files) < total
    elif stage == "navigate":
        total = config.navigate.iterations * (config.navigate.movements + 1)
        assert 3 <= progress_done(data, "navigate") < total
    elif stage == "dream":
        assert 1 <= len(list(data.glob("dreams/*/chunk-*.pt"))) < config.dream.number_of_dreams // config.dream.chunk_size
        assert not list(data.glob("dreams/*/info.json"))
    elif stage == "train_world_model":
        assert 1 <= model_version(data, "world_models", "wm-0") < config.world_model.epochs
    elif stage == "train_agent":
        assert 2 <= model_version(data, "agents", "agent-lifelong-test") < config.agent.epochs


def test_a_dream_set_resumed_after_a_stop_equals_an_unbroken_one():
    """Each chunk's random seed is drawn whether the chunk is made or found already stored, so
    a set finished after a crash holds the very dreams an unbroken run would have made."""
    import torch

    from ptzjepa.stages.dream import DREAMS, complete_sets, dream, load_set
    from ptzjepa.stages.world_model import train_world_model
    from tests.stage_helpers import captured_node

    node = captured_node("world_model.epochs=1", "dream.number_of_dreams=24", "dream.chunk_size=8")
    assert train_world_model(node) == "done"
    assert dream(node) == "done"
    (name,) = complete_sets(node)
    _, unbroken = load_set(node, name)

    node.store.delete_tree(DREAMS)
    stop_after_first = lambda e: e.kind == "dreams_stored" and node.stop.set()  # noqa: E731
    node.events.subscribe(stop_after_first)
    assert dream(node) == "stopped"
    assert complete_sets(node) == [] and node.store.list(f"{DREAMS}/{name}", ".pt") == ["chunk-0000.pt"]
    node.events.unsubscribe(stop_after_first)
    node.stop.clear()
    assert dream(node) == "done"
    _, resumed = load_set(node, name)
    assert len(resumed) == len(unbroken) == 3
    for a, b in zip(unbroken, resumed):
        for key in a:
            assert torch.equal(a[key], b[key]), key
