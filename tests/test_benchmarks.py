"""The benchmarks run end to end at their tiniest settings and print the figures they promise.

CI has two cores and no GPU, so nothing here is timed: each benchmark runs once on the CPU, in a
subprocess exactly as a user starts it, must exit 0, and every figure it promises must be a finite
number > 0 (a row that fails prints an error instead of numbers, and the regex misses it). The
torch benchmarks also keep their docstrings' promise to import nothing but ptzjepa.learning:
`-X importtime` logs every import of the run, lazy ones included. Left out: world_model.py's
`compiled` path (torch.compile on a CPU takes ~40 s for one tiny row) and cycle.py's sim profile
(a 224 px ViT-tiny epoch on a CPU takes minutes).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPTS = ("sim_render.py", "world_model.py", "dream.py", "agent.py", "cycle.py", "swarm.py")

# One torch thread: on a shared 2-core box, spin-waiting intra-op threads make tiny runs erratic.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

NUM = r"(-?[\d,]*\.?\d+(?:e[+-]?\d+)?|nan|inf)"  # sim_render groups thousands with commas

# What "imports nothing but ptzjepa.learning" rules out: the project's other dependencies (by
# import name, from pyproject.toml), the simulator, and ptzjepa's parts outside learning.
NOT_LEARNING = {"cv2", "rich", "fsspec", "redis", "transitions", "attr", "attrs", "cattrs", "yaml", "requests", "sim"}


def run_bench(script: str, *args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    """`python benchmarks/<script> args` from the repo root; fails the test on a non-zero exit."""
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), f"benchmarks/{script}", *args]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180, env=ONE_THREAD)
    errors = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
    tail = f"{result.stdout[-3000:]}\n{errors[-5000:]}"
    assert result.returncode == 0, f"{' '.join(cmd)} exited {result.returncode}\n{tail}"
    return result


def figure(text: str) -> float:
    """A printed figure as a float, which must be finite and > 0."""
    value = float(text.replace(",", ""))
    assert math.isfinite(value) and value > 0, f"expected a finite figure > 0, got {text!r}"
    return value


def row(pattern: str, stdout: str) -> tuple[str, ...]:
    """The groups of the one output line matching pattern (anchored per line)."""
    found = re.findall(pattern, stdout, re.MULTILINE)
    assert len(found) == 1, f"expected one line matching {pattern!r}, found {len(found)} in:\n{stdout}"
    return found[0] if isinstance(found[0], tuple) else (found[0],)


def imported_modules(stderr: str) -> list[str]:
    """Module names from `-X importtime` lines: 'import time: self | cumulative | name'."""
    names = [line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")]
    return [name for name in names if name and name != "imported package"]


def beyond_learning(module: str) -> bool:
    """A module the promise "imports nothing but ptzjepa.learning" rules out."""
    if module.startswith("ptzjepa."):
        return module != "ptzjepa.learning" and not module.startswith("ptzjepa.learning.")
    return module.split(".")[0] in NOT_LEARNING


def assert_only_learning(stderr: str) -> None:
    """The run imported ptzjepa.learning and nothing of the project beyond it."""
    modules = imported_modules(stderr)
    # Without this the check below would pass on a log that was not parsed at all.
    assert "ptzjepa.learning" in modules, f"no ptzjepa.learning in the import log ({len(modules)} modules)"
    outside = sorted({m if m.startswith("ptzjepa") else m.split(".")[0] for m in modules if beyond_learning(m)})
    assert not outside, f"imports beyond ptzjepa.learning (torch, numpy and stdlib): {outside}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    """--help parses: every argparse option is well-formed (a bad default or help % breaks it)."""
    out = run_bench(script, "--help").stdout
    assert out.startswith("usage:") and script in out, out


def test_sim_render() -> None:
    """frames/s and ms/frame for render, grab and grab+noise at both sizes."""
    out = run_bench("sim_render.py", "--scene-width", "1024", "--seconds", "0.02", "--poses", "20").stdout
    row(rf"^scene 1024x512: generated in {NUM} s, mip pyramid \[[\d, ]+\] in {NUM} ms", out)
    assert "frames/s" in out and "ms/frame" in out, out
    for size in ("224x224", "640x360"):
        for label in ("render", "grab", "grab+noise"):
            fps, ms = (figure(x) for x in row(rf"^\s*{size}\s+{re.escape(label)}\s+{NUM}\s+{NUM}\s*$", out))
            # both columns are rounded: fps to ±0.5, ms to ±0.0005
            assert ms == pytest.approx(1000 / fps, abs=0.0006 + 600 / fps**2), (size, label, fps, ms)


def test_world_model() -> None:
    """pairs/s (and images/s, step ms) for original, naive and efficient, with their speed-ups."""
    out = run_bench(
        "world_model.py", "--device", "cpu", "--quick", "--batches", "2", "--image-size", "28",
        "--pred-width", "32", "--pred-depth", "1", "--pred-heads", "2", "--steps", "1",
        "--pair-chunk", "2", importtime=True,
    )  # fmt: skip
    assert "pairs/s" in out.stdout, out.stdout
    for path in ("original", "naive", "efficient"):  # batch 2, 4 pairs in chunks of 2
        cols = row(rf"^{path}\s+2\s+4\s+2\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+-\s*$", out.stdout)
        images_s, pairs_s, step_ms = (figure(x) for x in cols[:3])
        assert pairs_s == pytest.approx(2 * images_s, abs=0.2), (path, images_s, pairs_s)  # B² / B
        # both rounded to ±0.05: step ms = 4 pairs / pairs/s
        assert step_ms == pytest.approx(4000 / pairs_s, abs=0.06 + 240 / pairs_s**2), (path, pairs_s, step_ms)
        assert all(math.isfinite(float(x)) and float(x) >= 0 for x in cols[3:]), (path, cols)  # may round to 0
    for fast, slow in (("efficient", "original"), ("efficient", "naive")):
        figure(row(rf"^\s+2\s+speed-up {fast}/{slow}: {NUM}x pairs/s$", out.stdout)[0])
    assert_only_learning(out.stderr)


def test_dream() -> None:
    """dream steps/s batched (over two chunks) and one at a time, and the speed-up."""
    out = run_bench(
        "dream.py", "--device", "cpu", "--dreams", "3", "--chunk", "2", "--length", "1",
        "--single-dreams", "1", "--threads", "1", importtime=True,
    )  # fmt: skip
    assert "cpu (1 threads)" in out.stdout, out.stdout
    figure(row(rf"^\s+batched\s+:\s+{NUM} dream steps/s \({NUM} s for 3 dreams\)$", out.stdout)[0])
    figure(row(rf"^\s+one at a time:\s+{NUM} dream steps/s \({NUM} s for 1 dreams", out.stdout)[0])
    figure(row(rf"^\s+speed-up\s+:\s+{NUM}x$", out.stdout)[0])
    assert_only_learning(out.stderr)


def test_agent() -> None:
    """transitions/s, steps/s and decision latency for token pooling 1 and 2."""
    out = run_bench(
        "agent.py", "--device", "cpu", "--batch", "4", "--steps", "2", "--warmup", "1", "--decisions", "2",
        "--replay", "16", "--width", "32", "--depth", "1", "--heads", "2", "--threads", "1", importtime=True,
    )  # fmt: skip
    for pool, tokens in ((1, 256), (2, 64)):
        pattern = (rf"^\s+pool {pool} \(\s*{tokens} tokens, {NUM} M params\): train\s+{NUM} transitions/s "
                   rf"\(\s*{NUM} steps/s\), decision\s+{NUM} ms$")  # fmt: skip
        _params, transitions_s, steps_s, _decision_ms = (figure(x) for x in row(pattern, out.stdout))
        assert transitions_s == pytest.approx(4 * steps_s, abs=0.8), (pool, transitions_s, steps_s)  # batch 4
    assert_only_learning(out.stderr)


def test_cycle() -> None:
    """Seconds per stage of one tiny lifelong cycle (a stage that never reports fails the script)."""
    out = run_bench("cycle.py", "--profiles", "tiny", "--set", "world_model.epochs=1", "--set", "agent.epochs=1").stdout
    stages = ("capture", "train_world_model", "dream", "train_agent", "navigate", "total")
    assert re.search(r"^profile\s+" + r"\s+".join(stages), out, re.MULTILINE), out
    cols = row(r"^tiny\s+" + r"s\s+".join([NUM] * 6) + r"s\s+(\d+)\s+(\d+)\s+(\d+)$", out)
    seconds = [figure(x) for x in cols[:6]]
    assert sum(seconds[:5]) <= seconds[5] + 0.04, dict(zip(stages, seconds))  # stages lie within the total
    frames, wm_epochs, agent_epochs = (int(x) for x in cols[6:])
    assert frames > 0 and (wm_epochs, agent_epochs) == (1, 1), out  # the --set overrides reached the run


def test_swarm() -> None:
    """Three unequal tiny nodes, balancing off and on: per node updates, frames, leases, lock wait and
    acquire latency percentiles, and the spread of contributions for each setting."""
    out = run_bench("swarm.py", "--quick").stdout
    for balance in ("off", "on"):
        row(rf"^balancing {balance}: 3 nodes, 1 cycles, {NUM} s$", out)
        figure(row(rf"^spread of contributions \(max/min updates\), balancing {balance}: {NUM}$", out)[0])
    for name, iterations in (("A", 4), ("B", 2), ("C", 1)):
        found = re.findall(rf"^{name}\s+{iterations}\s+(\d+)\s+(\d+)\s+(\d+)\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s*$",
                           out, re.MULTILINE)
        assert len(found) == 2, out  # one row per setting
        for updates, frames, leases, wait50, wait99, acquire50, acquire99 in found:
            assert int(updates) > 0 and int(frames) > 0 and int(leases) >= 1, out
            assert 0 <= float(wait50) <= float(wait99), out  # a lease taken at once waited 0 s
            assert 0 < figure(acquire50) <= figure(acquire99), out
