"""The damage sweep: every kind of file the node stores, damaged (garbage, empty, cut short),
then the same run again. Each run must complete its cycles, warn about every file it found damaged
(naming it), and keep every checkpoint that was good. One pristine store (a lifelong run of one
cycle) is copied per case. To keep the sweep within the suite's time, a case damages one file of
each kind at once, choosing files that no two damages share (another frame, the other checkpoint
version, another model): two groups per kind of damage cover every (file, damage) pair.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.damage_helpers import (
    DAMAGES, NODE, assert_no_good_checkpoint_lost, copy_store, damage, good_checkpoints, pristine_store, run_node,
)

AGENT = f"agents/agent-{NODE}"

# (what, a glob under the store naming the file [:index], group, whether the node reads it back).
# The files it never reads (commands, embeddings, metrics: records for people and tools) cannot
# stop it; they are left as they are.
TARGETS = [
    ("machine state", "state/machine.json", 0, True),
    ("status", "state/status.json", 1, True),
    ("capture progress", "state/progress/capture.json", 0, True),
    ("navigate progress", "state/progress/navigate.json", 1, True),
    ("config snapshot", "state/config.json", 0, True),
    ("world-model info", "world_models/wm-0/model_info.json", 0, True),
    ("newest world-model checkpoint", "world_models/wm-0/ckpt-*.pt:-1", 1, True),
    ("older world-model checkpoint", "world_models/wm-0/ckpt-*.pt:0", 0, True),
    ("agent info", f"{AGENT}/model_info.json", 1, True),
    ("newest agent checkpoint", f"{AGENT}/ckpt-*.pt:-1", 0, True),
    ("older agent checkpoint", f"{AGENT}/ckpt-*.pt:0", 1, True),
    ("dream chunk", "dreams/*/chunk-0001.pt", 0, True),
    ("dream info", "dreams/*/info.json", 1, True),
    ("frame image", "collected_imgs/*.jpg:0", 0, True),
    ("frame record", "collected_positions/*.json:1", 1, True),
    ("command", "collected_commands/*.json:2", 0, False),
    ("embedding", "collected_embeds/*.pt:0", 1, False),
    ("metrics", "metrics/world_model/wm-0/*.jsonl:0", 0, False),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return pristine_store(tmp_path_factory)


def _find(data: Path, pattern: str) -> Path:
    glob, _, pick = pattern.partition(":")
    found = sorted(data.glob(glob))
    assert found, f"the pristine store has no {glob}"
    return found[int(pick or 0)]


@pytest.mark.parametrize("group", [0, 1])
@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_files_never_stop_the_node_nor_lose_a_good_checkpoint(pristine, tmp_path, capsys, how, group):
    data = copy_store(pristine, tmp_path / "store")
    targets = [(what, _find(data, pattern), read_back) for what, pattern, g, read_back in TARGETS if g == group]
    before = good_checkpoints(data)
    for _, path, _ in targets:
        damage(path, how)
    assert run_node(data, cycles=2) == 0, capsys.readouterr().err[-3000:]
    err = capsys.readouterr().err
    saved = json.loads((data / "state/machine.json").read_text())
    assert (saved["cycle"], saved["state"]) == (2, "train_world_model"), saved  # both cycles complete
    assert_no_good_checkpoint_lost(before, data)
    warnings = [line for line in err.splitlines() if " WARNING " in line]
    for what, path, read_back in targets:
        rel = path.relative_to(data).as_posix()
        if read_back:
            assert any(rel in line for line in warnings), f"{what}: no warning names {rel}: {warnings}"
        else:  # never read back by the node: left as it is, and no run trips on it
            assert path.exists(), what
