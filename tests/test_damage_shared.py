"""Damage in the shared store (storage.shared): the fenced version files stay the truth, status
only reports, a node's own damaged dream count is moved aside, and the start-up sweep treats a
store set apart for sharing as holding other nodes' live writes (docs/resilience.md)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch

from ptzjepa.config.loading import config_to_dict, load_config
from ptzjepa.config.settings import StorageConfig
from ptzjepa.distributed import contributions
from ptzjepa.distributed.shared_store import models_shared
from ptzjepa.run import app
from ptzjepa.storage.checkpoints import Checkpoints, FenceRefused
from ptzjepa.storage.store import Store

KIND = "world_models"


def _aside(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.damaged-*"))


def _save(ckpts: Checkpoints, value: float, fence: int, **kw) -> int:
    return ckpts.save("wm-0", {"w": torch.full((3,), value)}, {"epochs_trained": int(value)}, fence=fence, **kw)


def test_a_version_moved_aside_keeps_its_number_taken(tmp_path, caplog):
    """v2 does not decode and is moved aside, and the pointer is lost too: the next save is v3, as
    a writer that listed the folder before the move-aside would also pick, so the two race for one
    name (one is refused) instead of both committing."""
    store = Store(str(tmp_path))
    ckpts = Checkpoints(store, KIND, keep=3)
    _save(ckpts, 1.0, fence=1)
    _save(ckpts, 2.0, fence=1)
    (tmp_path / KIND / "wm-0/ckpt-000002.pt").write_bytes(b"\x00garbage")
    with caplog.at_level(logging.WARNING):
        _, meta = ckpts.load("wm-0")
    assert meta["version"] == 1 and "ckpt-000002.pt: does not load" in caplog.text
    (tmp_path / KIND / "wm-0/model_info.json").unlink()
    assert _save(ckpts, 3.0, fence=1, base_version=1) == 3
    assert sorted(p.name for p in (tmp_path / KIND / "wm-0").glob("ckpt-*.pt")) == ["ckpt-000001.pt", "ckpt-000003.pt"]
    (tmp_path / KIND / "wm-0/model_info.json").unlink()
    with pytest.raises(FenceRefused):  # the rebuilt pointer keeps v3's token: a lower one is refused
        _save(ckpts, 4.0, fence=0)


def test_a_rebuilt_model_info_carries_the_fencing_tokens_of_the_version_files(tmp_path):
    store = Store(str(tmp_path))
    ckpts = Checkpoints(store, KIND, keep=2)
    _save(ckpts, 1.0, fence=3)
    _save(ckpts, 2.0, fence=5)
    (tmp_path / KIND / "wm-0/model_info.json").write_text("{")
    info = ckpts.info("wm-0")
    assert (info["version"], info["fence"], [v["fence"] for v in info["versions"]]) == (2, 5, [3, 5])
    assert len(_aside(tmp_path / KIND / "wm-0", "model_info.json")) == 1


def test_status_reports_a_damaged_shared_model_info_and_moves_nothing(tmp_path, capsys):
    shared = Store(str(tmp_path / "shared"))
    own = Store(str(tmp_path / "own"))
    config = load_config("tiny", [f"storage.data={own.url}", f"storage.shared={shared.url}"])
    own.write_json(app.CONFIG_SNAPSHOT, config_to_dict(config))
    own.write_json("state/status.json", {"machine": "lifelong", "state": "dream", "cycle": 3})
    _save(Checkpoints(shared, KIND), 2.0, fence=4)
    info = tmp_path / "shared" / KIND / "wm-0/model_info.json"
    info.write_text('{"version": "one"}')
    assert app.status(own.url, as_json=True) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["shared"]["models"]["wm-0"]["version"] == 1 and snap["shared"]["models"]["wm-0"]["fence"] == 4
    assert any("wm-0/model_info.json" in line for line in snap["damaged"])
    assert info.read_text() == '{"version": "one"}' and not _aside(info.parent, "model_info.json")


def test_a_damaged_dream_count_is_moved_aside_and_counting_starts_afresh(tmp_path):
    shared = Store(str(tmp_path))
    warnings: list[str] = []
    (tmp_path / "contributions").mkdir()
    (tmp_path / "contributions/dreams-cam-b.json").write_text('{"wm-0": "many"}')  # another node's
    (tmp_path / "contributions/dreams-cam-a.json").write_text("{")
    contributions.count_dreams(shared, "cam-a", "wm-0", 16, warnings.append)
    assert len(warnings) == 1 and "contributions/dreams-cam-a.json" in warnings[0]
    assert len(_aside(tmp_path / "contributions", "dreams-cam-a.json")) == 1
    assert contributions.dreams_by_node(shared) == {"cam-a": {"wm-0": 16}}  # cam-b's is skipped, left alone
    assert (tmp_path / "contributions/dreams-cam-b.json").exists()


def test_world_models_count_as_shared_only_in_a_store_set_apart(tmp_path):
    data = str(tmp_path / "own")
    assert not models_shared(StorageConfig(data=data))
    assert not models_shared(StorageConfig(data=data, shared=data + "/"))
    assert models_shared(StorageConfig(data=data, shared=str(tmp_path / "shared")))


def test_a_run_sweeps_a_set_apart_shared_store_by_whose_the_temporary_files_are(tmp_path):
    """The node's own world_models folder is no one else's: its leftovers go at once. In the shared
    store a live writer's fresh temporary file (this test's process stands for another node's
    writer) is left alone."""
    from ptzjepa.storage.store import _temp_tag

    own, shared = tmp_path / "own", tmp_path / "shared"
    live = shared / KIND / "wm-0" / f".ckpt-000001.pt.tmp-{_temp_tag()}"
    mine = own / KIND / "wm-0" / f".ckpt-000001.pt.tmp-{_temp_tag()}"
    for path in (live, mine):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"partial")
    config = load_config("tiny", [f"storage.data={own}", f"storage.shared={shared}"])
    assert app.run(config, "lifelong", cycles=0, view=False, debug=False) == 0
    assert live.exists() and not mine.exists()
    assert os.path.getsize(live) == len(b"partial")
