"""`cli.py status` shows what every node contributed to every shared model, as a table and in --json."""

from __future__ import annotations

import json

import torch

from ptzjepa.config.loading import config_to_dict, load_config
from ptzjepa.distributed import contributions
from ptzjepa.run import app
from ptzjepa.storage.checkpoints import Checkpoints
from ptzjepa.storage.store import Store


def test_status_lists_contributions_per_model_and_node_from_the_shared_store(tmp_path, capsys):
    shared = Store(str(tmp_path / "shared"))
    own = Store(str(tmp_path / "own"))
    config = load_config("tiny", [f"storage.data={own.url}", f"storage.shared={shared.url}"])
    own.write_json(app.CONFIG_SNAPSHOT, config_to_dict(config))
    own.write_json("state/status.json", {"machine": "lifelong", "state": "dream", "cycle": 3})
    ckpts = Checkpoints(shared, "world_models")
    table = contributions.add(None, "cam-a", updates=40, frames=160, epochs=2, seconds=12.5)
    table = contributions.add(table, "cam-b", updates=10, frames=40, epochs=1, seconds=3.0)
    ckpts.save("wm-0", {"w": torch.zeros(1)}, {"contributions": table, "epochs_trained": 3}, fence=7)
    ckpts.save("wm-1", {"w": torch.zeros(1)}, {"contributions": contributions.add(None, "cam-b", 5, 20, 1, 1.0)},
               fence=2)
    contributions.count_dreams(shared, "cam-a", "wm-0", 16)
    contributions.count_dreams(shared, "cam-a", "wm-0", 16)
    contributions.count_dreams(shared, "cam-b", "wm-1", 8)

    assert app.status(own.url, as_json=True) == 0
    snap = json.loads(capsys.readouterr().out)["shared"]
    wm0 = snap["models"]["wm-0"]
    assert wm0["version"] == 1 and wm0["fence"] == 7 and wm0["epochs_trained"] == 3
    assert wm0["contributions"]["cam-a"] == {"updates": 40, "frames": 160, "epochs": 2, "seconds": 12.5, "dreams": 32}
    assert wm0["contributions"]["cam-b"]["updates"] == 10 and wm0["contributions"]["cam-b"]["dreams"] == 0
    assert snap["models"]["wm-1"]["contributions"]["cam-b"]["dreams"] == 8
    assert snap["nodes"]["cam-b"]["updates"] == 15 and snap["nodes"]["cam-a"]["dreams"] == 32
    assert snap["url"] == shared.url

    assert app.status(own.url, as_json=False) == 0
    text = capsys.readouterr().out
    assert "shared world models" in text and "cam-a" in text and "80%" in text  # cam-a's 40 of 50 updates
