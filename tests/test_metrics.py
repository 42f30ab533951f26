"""Coverage, the choice percentile and the baseline policies on hand-made cases with known answers."""

import datetime as dt
import math

import numpy as np
import pytest
import torch

from ptzjepa.camera.base import PTZ, AxisRange, PTZLimits
from ptzjepa.config.loading import load_config
from ptzjepa.learning.world_model.jepa import build_world_model
from ptzjepa.metrics.choice import action_errors, percentile
from ptzjepa.metrics.coverage import CellGrid, coverage, coverage_report
from ptzjepa.node import model_store
from ptzjepa.stages.navigate_policy import random_action, sweep_action
from ptzjepa.storage.frames import Command, FrameRecord

LIMITS = PTZLimits(AxisRange(0, 360, wraps=True), AxisRange(-20, 90), AxisRange(1, 32))
GRID = CellGrid(LIMITS, pan_deg=30, tilt_deg=15, zoom_octaves=1)


def test_the_grid_counts_cells_over_the_reachable_space():
    assert GRID.shape == (12, 8, 5)  # 360/30, ceil(110/15), log2(32/1)
    assert GRID.cells == 480
    assert GRID.cell(PTZ(359.99, -20, 1)) == (11, 0, 0)
    assert GRID.cell(PTZ(360.0, 90, 32)) == (0, 7, 4)  # pan wraps to 0; the top edges are in the last cells
    assert GRID.cell(PTZ(45, 10, 2.5)) == (1, 2, 1)


def test_coverage_entropy_and_revisit_rate_of_hand_made_poses():
    poses = [PTZ(10, 0, 1), PTZ(20, 5, 1.5), PTZ(100, 0, 1), PTZ(10, 0, 3)]  # the first two share a cell
    got = coverage(poses, GRID)
    assert (got.frames, got.cells_visited) == (4, 3)
    assert got.fraction == pytest.approx(3 / 480)
    assert got.entropy == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert got.revisit_rate == pytest.approx(1 / 4)
    same = coverage([PTZ(1, 1, 1)] * 5, GRID)
    assert (same.cells_visited, same.entropy, same.revisit_rate) == (1, 0.0, 0.8)
    spread = coverage([PTZ(30 * i + 1, 0, 1) for i in range(12)], GRID)
    assert spread.entropy == pytest.approx(math.log(12)) and spread.revisit_rate == 0.0
    assert coverage([], GRID).frames == 0


def _record(fid, cycle, stage, ptz):
    return FrameRecord(id=fid, ptz=ptz, time=dt.datetime.now(dt.timezone.utc), command=Command("absolute", ptz),
                       cycle=cycle, stage=stage, node="n", image="", width=8, height=8)


def test_coverage_report_splits_by_stage_and_cycle_and_accumulates():
    records = [_record("a", 0, "capture", PTZ(10, 0, 1)), _record("b", 0, "navigate", PTZ(10, 0, 1)),
               _record("c", 1, "navigate", PTZ(100, 0, 1)), _record("d", 1, "navigate", PTZ(200, 0, 1))]
    report = coverage_report(records, GRID)
    assert report["all"]["cells_visited"] == 3 and report["all"]["frames"] == 4
    assert report["by_stage"]["navigate"]["frames"] == 3
    assert report["by_cycle"][0]["navigate"]["revisit_rate"] == 0.0
    assert report["by_cycle"][0]["all"]["revisit_rate"] == 0.5
    assert report["by_cycle"][1]["all"]["cells_visited"] == 2
    assert [report["cumulative"][c]["cells_visited"] for c in (0, 1)] == [1, 3]


def test_the_choice_percentile_ranks_the_chosen_error_among_the_others():
    errors = [0.1, 0.3, 0.2, 0.4]
    assert percentile(errors, 3) == 100.0  # the largest error: the best a curious agent can do
    assert percentile(errors, 0) == 0.0
    assert percentile(errors, 2) == pytest.approx(100 / 3)
    assert percentile([0.5, 0.5, 0.1], 0) == 75.0  # a tie counts half
    assert percentile([0.7], 0) == 100.0
    with pytest.raises(ValueError, match="chosen"):
        percentile(errors, 4)
    # a uniformly random choice gets 50 % on average, ties or not
    tied = np.random.default_rng(0).integers(0, 5, 21).astype(float)
    assert np.mean([percentile(tied, i) for i in range(21)]) == pytest.approx(50.0)


def test_action_errors_are_each_moves_real_error_as_navigation_measures_it():
    config = load_config("tiny")
    torch.manual_seed(0)
    model = build_world_model(model_store.world_model_spec(config)).eval()
    table = model_store.action_table(config, config.camera.limits.to_limits())
    rng = np.random.default_rng(1)
    views = {}

    def render(ptz):  # a different hand-made picture for every pose
        return views.setdefault(ptz.as_tuple(), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))

    from ptzjepa.node.frame_tensors import to_tensor

    image = to_tensor(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), 64).unsqueeze(0)
    pose = torch.tensor([[100.0, 10.0, 1.0]])
    errors = action_errors(model, image, pose, table, render)
    assert len(errors) == table.num_actions
    for action in (0, 5, 20):
        after = table.apply(pose, torch.tensor([action]))
        with torch.no_grad():
            predicted, _ = model.predict(model.encode_context(image), pose, after)
        target = model.encode_target(to_tensor(render(PTZ(*after[0].tolist())), 64).unsqueeze(0))
        expected = torch.nn.functional.smooth_l1_loss(predicted, target)
        assert errors[action] == pytest.approx(float(expected), rel=1e-4)
    assert percentile(errors, int(np.argmax(errors))) == 100.0


def test_sweep_rasters_pan_rows_then_tilt_then_zoom_and_turns_at_the_limits():
    config = load_config("tiny")
    table = model_store.action_table(config, config.camera.limits.to_limits())
    names = [table.names[sweep_action(table, m, PTZ(0, 0, 1), row=2)] for m in range(8)]
    assert names == ["jump_right", "jump_right", "jump_up", "jump_left", "jump_left", "jump_up",
                     "long_zoom_in", "jump_right"]
    assert table.names[sweep_action(table, 2, PTZ(0, 89, 1), row=2)] == "jump_down"  # would pass 90°
    assert table.names[sweep_action(table, 6, PTZ(0, 0, 32), row=2)] == "long_zoom_out"
    rng = np.random.default_rng(0)
    drawn = [random_action(table, rng) for _ in range(2000)]
    assert set(drawn) == set(range(table.num_actions))


def test_status_and_view_show_the_newest_coverage_choice_and_held_out_error():
    from rich.console import Console

    from ptzjepa.view.events import Events
    from ptzjepa.view.live import render
    from ptzjepa.view.status import NodeStatus

    events, status = Events(), NodeStatus(limits=LIMITS)
    events.subscribe(status)
    assert status.snapshot()["choice_percentile"] is None
    events.emit("metric", stage="navigate", name="choice_percentile", value=40.0, step=1)
    events.emit("metric", stage="navigate", name="choice_percentile", value=85.0, step=6)
    events.emit("metric", stage="evaluate", name="coverage", value=0.0625, step=0)
    events.emit("metric", stage="evaluate", name="heldout_one_step", value=0.42, step=0)
    snap = status.snapshot()
    assert (snap["choice_percentile"], snap["coverage_fraction"], snap["heldout_error"]) == (85.0, 0.0625, 0.42)
    resumed = NodeStatus(limits=LIMITS)
    resumed.restore(snap)  # a resumed run (and `status`) starts from the stored snapshot
    assert resumed.snapshot()["choice_percentile"] == 85.0
    console = Console(record=True, width=160)
    console.print(render(snap))
    text = console.export_text()
    assert "6.2 % of cells" in text and "85 % percentile" in text and "error 0.42" in text
