"""`cli.py experiment` end to end at a tiny budget: three policies, two seeds, one cycle, in real
processes; then the same command again, which must redo nothing that finished."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from ptzjepa.metrics import heldout
from ptzjepa.metrics.coverage import frames_taken
from ptzjepa.metrics.summary import METRICS
from ptzjepa.storage.store import Store
from tests.conftest import REPO

SMALL = ["world_model.epochs=1", "agent.epochs=1", "dream.number_of_dreams=8", "dream.dream_length=2",
         "capture.iterations=1", "metrics.heldout_cases=6", "metrics.heldout_rollout=2",
         "metrics.choice_every=1", "navigate.iterations=1"]


def _experiment(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "cli.py", "experiment", "--sim", "--profile", "tiny", "--policies",
           "curiosity,random,sweep", "--seeds", "2", "--cycles", "1", "--out", str(out), "--jobs", "2", *extra]
    for item in SMALL:
        cmd += ["--set", item]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400)


def test_experiment_runs_every_policy_and_seed_and_resumes_without_redoing(tmp_path: Path):
    out = tmp_path / "exp"
    done = _experiment(out, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result == json.loads((out / "experiment.json").read_text())
    assert set(result["runs"]) == {"curiosity", "random", "sweep"}
    for policy, seeds in result["runs"].items():
        assert set(seeds) == {"0", "1"}
        for seed, run in seeds.items():
            assert run["complete"] and run["exit_code"] == 0
            (row,) = run["cycles"]
            missing = [m for m in METRICS if row.get(m) is None]
            assert not missing, (policy, seed, missing)
            assert 0 <= row["choice_percentile"] <= 100 and row["choices_graded"] == 3
        summary = result["summary"][policy]
        assert all(summary["overall"][m]["n"] == 2 for m in METRICS)
        assert all(len(summary["per_cycle"][m]) == 1 for m in METRICS)
    # paired: one held-out set per seed index, whatever the policy, and never a stored frame
    digests = {}
    for policy, seeds in result["runs"].items():
        for seed, run in seeds.items():
            measured = Store(run["data"]).read_json(f"{heldout.HELDOUT}/c00000.json")
            assert measured["excluded"] == 0
            digests.setdefault(seed, set()).add(measured["cases_digest"])
    assert all(len(d) == 1 for d in digests.values()) and digests["0"] != digests["1"]
    # cycle 0's world model has seen only the capture round, which every policy shares
    for seed in ("0", "1"):
        first = {p: result["runs"][p][seed]["cycles"][0]["heldout_one_step"] for p in result["runs"]}
        assert max(first.values()) - min(first.values()) <= 1e-4 * max(first.values()), first
    # the random policy's moves really are other moves than the sweep's
    actions = {p: {r.command.action for r in frames_taken(Store(result["runs"][p]["0"]["data"]))
                   if r.command.kind == "action"} for p in ("random", "sweep")}
    assert actions["sweep"] == {"jump_right"} and len(actions["random"]) > 1
    assert result["plots"] and "heldout_one_step.png" in result["plots"]
    for name in result["plots"]:
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100 and np.ptp(image) > 0, name

    # the same command again redoes nothing that finished, and resumes a run that did not: one
    # stopped in its last state (cheaper here than killing a run at the right moment)
    state = out / "sweep-s1" / "state" / "machine.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "cycle": 0, "state": "evaluate"}))
    (out / "sweep-s1" / heldout.HELDOUT / "c00000.json").unlink()
    again = _experiment(out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("started ") == 1 and "started sweep-s1" in again.stderr
    assert (out / "sweep-s1" / heldout.HELDOUT / "c00000.json").is_file()
    assert "experiment: tiny profile" in again.stdout and "curiosity" in again.stdout
    import cli

    assert cli.main(["experiment", "--sim", "--profile", "tiny", "--out", str(out)]) == 2  # other --set


def test_experiment_refuses_bad_arguments_with_one_line(tmp_path: Path, capsys):
    import cli

    for args, phrase in ((["--sim", "--policies", "curiosity,greedy"], "--policies"),
                         (["--sim", "--seeds", "0"], "--seeds"),
                         (["--sim", "--set", "navigate.movements=0"], "navigate.movements"),
                         ([], "--sim")):
        assert cli.main(["experiment", "--profile", "tiny", "--out", str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err
        assert phrase in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()
