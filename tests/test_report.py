"""`cli.py report`: from a real tiny run's data folder, and from small stores built by the stages, it
writes PNGs that decode and show something, and a summary.md whose links all exist; a folder it
cannot report on gets one line and exit 2."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

import cli
from ptzjepa.report.cells import cells_per_cycle
from ptzjepa.report.gather import Pose, gather
from ptzjepa.report.gather_files import flatten_numbers
from ptzjepa.report.plots_poses import rounds
from tests.lifelong_helpers import ONE_THREAD, run_command, run_to_end
from tests.stage_helpers import captured_node

EVERY_PLOT = {"losses.png", "cycles.png", "trajectories.png", "heatmap.png", "ptz_scatter.png",
              "embeddings.png", "samples.png",
              "heldout.png", "coverage.png", "choice.png"}  # the lifelong machine's evaluate state stores their metrics
_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def two_cycle_run(tmp_path_factory) -> Path:
    """`cli.py run --sim --profile tiny --cycles 2`: frames, checkpoints, losses, embeddings."""
    data = tmp_path_factory.mktemp("report") / "run"
    done = run_to_end(run_command(data, "run.node=report-test", cycles=2), env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    return data


def report(data: str, out: Path, capsys) -> tuple[int, str]:
    code = cli.main(["report", "--data", data, "--out", str(out)])
    return code, capsys.readouterr().err


def check_pictures(out: Path) -> set[str]:
    """Every PNG decodes and is not blank, summary.md links each one and nothing else; returns them."""
    pngs = {p.name for p in out.glob("*.png")}
    for name in pngs:
        image = cv2.imread(str(out / name))
        assert image is not None, f"{name} does not decode"
        assert image.std() > 10, f"{name} is nearly blank"
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20, f"{name} has almost no colours"
    links = set(_LINK.findall((out / "summary.md").read_text()))
    assert links == pngs
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"
    return pngs


def test_report_of_a_two_cycle_run(two_cycle_run, tmp_path, capsys):
    out = tmp_path / "new" / "report"  # made, parents too
    code, err = report(str(two_cycle_run), out, capsys)
    assert code == 0, err
    assert check_pictures(out) == EVERY_PLOT
    summary = (out / "summary.md").read_text()
    assert re.search(r"^\| 0 \| 16 \| 6 \| [0-9.]+ \| capture \d+, navigate \d+ \| wm-0 [0-9.]+ \| agent-report-test [0-9.]+ \| [0-9.]+ \| [0-9.]+% \| [0-9.]+ % of \d+ \|$",
                     summary, re.M), summary
    assert re.search(r"^\| 1 \| 8 \| 6 \| [0-9.]+ \| navigate \d+ \|", summary, re.M), summary
    assert "skipped: no metrics/" not in summary  # evaluate and navigate stored every metric
    assert "checkpoints' session" not in summary  # every cycle's agent losses are stored

    data = gather(str(two_cycle_run))
    assert {p.cycle for p in data.agent_losses} == {0, 1}
    assert len(data.rewards) == len(data.embedding_ids) == 12


@pytest.fixture
def s3_endpoint(monkeypatch) -> str:
    """moto's S3 server on loopback with a bucket `runs`; s3:// URLs reach it through fsspec's config."""
    import fsspec
    import s3fs
    from moto.server import ThreadedMotoServer

    for key, value in (("AWS_ACCESS_KEY_ID", "test-key"), ("AWS_SECRET_ACCESS_KEY", "test-secret"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": endpoint},
                                                       "skip_instance_cache": True})
        s3fs.S3FileSystem().mkdir("runs")
        yield endpoint
    finally:
        server.stop()


def test_report_from_s3_reads_what_the_local_folder_holds(two_cycle_run, s3_endpoint, tmp_path, capsys):
    import s3fs

    s3fs.S3FileSystem().put(str(two_cycle_run), "runs/node", recursive=True)
    out = tmp_path / "report"
    code, err = report("s3://runs/node", out, capsys)
    assert code == 0, err
    assert check_pictures(out) == EVERY_PLOT
    local, remote = gather(str(two_cycle_run)), gather("s3://runs/node")
    assert remote.poses == local.poses and remote.rewards == local.rewards
    assert remote.embedding_ids == local.embedding_ids and np.array_equal(remote.embeddings, local.embeddings)
    assert remote.world_model_losses == local.world_model_losses and remote.agent_losses == local.agent_losses


def test_report_of_one_cycle_without_embeddings_through_a_url(tmp_path, capsys):
    """A memory:// store after one capture: no rewards, embeddings or losses, yet the plots that
    apply are made and summary.md says why the others are not; damaged files are noted; an older
    report's picture that no longer applies goes, other files in the folder stay."""
    node = captured_node(url=f"memory://report-{uuid.uuid4().hex}")
    node.store.write_bytes("collected_embeds/c00000_capture_000001.pt", b"not a torch file")
    node.store.write_text("collected_positions/c00000_capture_999999.json", "{")
    # the metrics the evaluate and navigate stages store, as they store them
    node.store.write_json("metrics/heldout/c00000.json", {"cycle": 0, "one_step": 0.31, "k_step": 0.5,
                                                          "effective_rank": 7.5, "rollout": [0.3, 0.5]})
    part = {"frames": 15, "cells_visited": 6, "fraction": 0.05, "entropy": 1.7, "revisit_rate": 0.6}
    node.store.write_json("metrics/coverage/c00000.json", {
        "cycle": 0, "grid": {"pan_deg": 30.0, "tilt_deg": 15.0, "zoom_octaves": 1.0},
        "by_cycle": {"0": {"all": part, "navigate": part}}, "cumulative": {"0": part}})
    for step, value in enumerate([20.0, 80.0, 65.0]):
        node.store.write_json(f"metrics/choice/c00000_navigate_{step:06d}.json",
                              {"cycle": 0, "step": step, "percentile": value})
    node.store.write_text("metrics/choice/c00000_navigate_000009.json", "[]")
    out = tmp_path / "report"
    out.mkdir()
    (out / "samples.png").write_bytes(b"an older report's picture")
    (out / "notes.txt").write_text("mine")
    code, err = report(node.store.url, out, capsys)
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert check_pictures(out) == {"cycles.png", "trajectories.png", "heatmap.png", "ptz_scatter.png",
                                   "heldout.png", "coverage.png", "choice.png"}
    summary = (out / "summary.md").read_text()
    for needle in ("**Losses per cycle** skipped: no training losses",
                   "**Embeddings in 2-D** skipped: 0 stored embedding(s)",
                   "**Most and least rewarded views** skipped: 0 stored frame(s) with both an image and a reward",
                   "skipped collected_embeds/c00000_capture_000001.pt: not a stored embedding",
                   "skipped collected_positions/c00000_capture_999999.json: not a frame record",
                   "skipped metrics/choice/c00000_navigate_000009.json: not a graded move",
                   "| choice percentile (mean) |", "| 0.31 | 5.0% | 55.0 % of 3 |"):
        assert needle in summary, needle


@pytest.mark.parametrize("case", ["missing", "a_file", "empty", "not_a_run"])
def test_a_folder_with_nothing_to_report_is_one_line_and_exit_2(tmp_path, capsys, case):
    data = tmp_path / "data"
    if case == "a_file":
        data.write_text("frames?")
    elif case != "missing":
        data.mkdir()
    if case == "not_a_run":
        (data / "holiday.jpg").write_bytes(b"\xff\xd8")
    out = tmp_path / "report"
    code, err = report(str(data), out, capsys)
    assert code == 2
    expected = {"missing": "no such folder", "a_file": "not a folder"}.get(case, "no frame records in collected_positions/")
    assert err.count("\n") == 1 and err.startswith(f"error: --data {data}: {expected}"), err
    assert not data.exists() or case != "missing"  # a reader never creates the folder it was given
    assert not out.exists()


def test_out_must_be_a_folder(two_cycle_run, tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("a file")
    code, err = report(str(two_cycle_run), out, capsys)
    assert code == 2 and err == f"error: --out {out}: not a folder\n"


def pose(pan: float, tilt: float, cycle: int = 0, stage: str = "navigate", kind: str = "action") -> Pose:
    return Pose(id=f"{cycle}-{pan}-{tilt}", cycle=cycle, stage=stage, time="", pan=pan, tilt=tilt, zoom=1.0,
                kind=kind, action="", image="")


def test_cells_count_distinct_pan_tilt_cells_per_stage_and_cycle():
    poses = [pose(0, 0), pose(29, 14), pose(30, 0), pose(359, -1), pose(-1, -1),  # 3 cells: 0/0, 1/0, 11/-1
             pose(10, 10, cycle=1), pose(10, 10, cycle=1, stage="capture")]
    assert cells_per_cycle(poses) == {"capture": {1: 1}, "navigate": {0: 3, 1: 1}}


def test_rounds_start_at_each_absolute_command():
    poses = [pose(0, 0, kind="absolute"), pose(1, 0), pose(2, 0, kind="absolute"), pose(3, 0), pose(4, 0)]
    assert [len(r) for r in rounds(poses)] == [2, 3]
    assert [len(r) for r in rounds(poses[1:])] == [1, 3]  # a store cut before its first start


def test_flatten_numbers_keeps_numeric_leaves():
    assert flatten_numbers({"a": 1, "b": {"c": 2.5, "d": "x", "e": [1]}, "f": True}) == {"a": 1.0, "b.c": 2.5}
    assert flatten_numbers(3) == {"value": 3.0}


def test_agent_losses_of_an_older_store_come_from_the_checkpoint_session():
    """Stores written before metrics/agent/ existed: the newest cycle's epoch means, and a note."""
    node = captured_node(url=f"memory://report-{uuid.uuid4().hex}")
    node.store.write_json("agents/agent-old/model_info.json",
                          {"version": 3, "session": {"cycle": 4, "losses": [0.5, 0.25, 0.125]}})
    data = gather(node.store.url)
    assert [(p.model, p.cycle, p.epoch, p.loss) for p in data.agent_losses] == [
        ("agent-old", 4, 1, 0.5), ("agent-old", 4, 2, 0.25), ("agent-old", 4, 3, 0.125)]
    assert any("only the newest cycle's epoch means" in note for note in data.notes)
