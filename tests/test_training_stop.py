"""A stop inside a world-model epoch: it ends at the next update, keeps the work, and the resumed
run goes on from that update exactly as an unbroken run would; progress without the view."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
from rich.console import Console

from ptzjepa.node import model_store as models
from ptzjepa.stages.world_model import train_world_model
from ptzjepa.view.events import Event, Events
from ptzjepa.view.live import render
from ptzjepa.view.progress_lines import ProgressLines
from ptzjepa.view.status import NodeStatus
from tests.conftest import REPO
from tests.stage_helpers import captured_node

SETTINGS = ("world_model.epochs=3", "world_model.updates_per_cycle=12", "world_model.patience=100",
            "world_model.global_batch_size=8")  # 4 updates per epoch, 2 micro-batches per update


def _updates(node) -> list[int]:
    """The update numbers the node's world model trains, as its loss events report them."""
    seen: list[int] = []
    node.events.subscribe(lambda e: seen.append(e.data["step"]) if e.kind == "metric" and e.data["name"] == "loss" else None)
    return seen


def test_a_stop_mid_epoch_ends_at_the_next_update_and_the_resumed_run_goes_on_from_it():
    node = captured_node(*SETTINGS)
    seen = _updates(node)
    at_request: list[int] = []

    def stop_at_update_6(event: Event) -> None:
        if event.kind == "metric" and event.data["step"] == 6:
            at_request.append(len(seen))
            node.stop.set()

    node.events.subscribe(stop_at_update_6)
    assert train_world_model(node) == "stopped"
    assert at_request == [6] and len(seen) - at_request[0] <= 1  # no more than one update after the request
    info = models.world_models(node).info("wm-0")
    assert info["session"]["steps"] == len(seen) and info["session"]["epochs_done"] == 1  # inside epoch 2
    assert info["epochs_trained"] == 1 and len(info["session"]["epoch_losses"]) == len(seen) - 4

    done_before = len(seen)
    node.stop.clear()
    resumed = _updates(node)
    assert train_world_model(node) == "done"
    assert resumed == list(range(done_before + 1, 13))  # from the next update, not the epoch's start
    stopped_then_resumed = models.load_world_model(node, "wm-0", torch.device("cpu"))[0].state_dict()

    unbroken = captured_node(*SETTINGS)
    assert train_world_model(unbroken) == "done"
    want = models.load_world_model(unbroken, "wm-0", torch.device("cpu"))[0].state_dict()
    for key in want:  # the same frames, crops and optimiser state; only CPU threads' sum order differs
        torch.testing.assert_close(stopped_then_resumed[key], want[key], rtol=1e-5, atol=1e-7, msg=key)
    after = models.world_models(node).info("wm-0")
    assert after["session"]["losses"] == pytest.approx(models.world_models(unbroken).info("wm-0")["session"]["losses"],
                                                       rel=1e-6)


def test_the_view_says_a_stop_is_pending():
    events, status = Events(), NodeStatus()
    events.subscribe(status)
    events.emit("run_started", machine="lifelong", states=["train_world_model"], state="train_world_model",
                cycle=0, data="runs/x", frames=0)
    console = Console(record=True, width=120, color_system=None)
    events.emit("stopping", message="stopping after this step…")
    console.print(render(status.snapshot()))
    assert "stopping after this step" in console.export_text()
    events.emit("run_finished", reason="stopped", state="train_world_model", cycle=0)
    assert not status.snapshot()["stopping"]


def test_progress_lines_at_epoch_ends_and_on_a_heartbeat(caplog):
    now = [0.0]
    lines = ProgressLines(every_s=30.0, min_gap_s=5.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="ptzjepa")
    update = {"stage": "train_world_model", "done": 0, "total": 2, "unit": "epochs", "batch": 1, "batches": 50,
              "loss": 0.5, "images_per_s": 12.0, "eta_s": 125.0}
    for t, data in ((10.0, update), (31.0, {**update, "batch": 2}), (33.0, {**update, "batch": 3}),
                    (34.0, {"stage": "train_world_model", "done": 1, "total": 2, "unit": "epochs"}),
                    (40.0, {"stage": "train_world_model", "done": 2, "total": 2, "unit": "epochs"})):
        now[0] = t
        lines(Event("progress", t, data))
    got = [r.getMessage() for r in caplog.records]
    assert len(got) == 2, got  # the heartbeat at 31 s; the epoch end at 34 s is too close; the last one ends it
    assert "update=2/50" in got[0] and "loss=0.5" in got[0] and "images_per_s=12" in got[0] and "eta=2:05" in got[0]
    assert "epoch=2/2" in got[1]


def test_headless_run_prints_progress_lines(tmp_path):
    data = tmp_path / "run"
    captured_node(url=str(data))
    args = [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", "world_model_train",
            "--data", str(data), "--no-view", "--set", "world_model.patience=100"]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "event=progress" in line]
    assert lines and "stage=train_world_model" in lines[-1] and "epoch=3/3" in lines[-1], done.stderr
    assert all("loss=" in x and "images_per_s=" in x and "eta=" in x for x in lines)
