"""Every bad input is refused when the settings load: exit code 2, one line naming the option or
setting, and nothing moved or written first (a real fake camera counts the requests it got).

`cli.main` runs in this process so that these stay fast; the settings are all it gets to."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import cli
from ptzjepa.config.checks import data_folder_problem
from ptzjepa.config.loading import ConfigError, load_config
from tests.fake_cameras import FAKES


def _run(capsys, *args: str) -> tuple[int, list[str]]:
    code = cli.main(["run", "--profile", "tiny", "--machine", "capture", "--no-view", *args])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def camera():
    """A real camera server: a refused run must not have sent it a single request."""
    with FAKES["hanwha"]("op", "pw-not-used") as server:
        yield server
    assert server.received == []


def _refused(capsys, camera, data: Path | str, *args: str) -> str:
    code, lines = _run(capsys, "--set", "camera.kind=hanwha", "--set", f"camera.url={camera.url}",
                       "--data", str(data), *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _image(path: Path, width: int, height: int) -> Path:
    cv2.imwrite(str(path), np.full((height, width, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize(
    "setting, message",
    [
        ("world_model.lr=.inf", "error: --set: world_model.lr: expected a finite number, got inf"),
        ("world_model.lr=.nan", "error: --set: world_model.lr: expected a finite number, got nan"),
        ("camera.timeout_s=-.inf", "error: --set: camera.timeout_s: expected a finite number, got -inf"),
        ("run.device=gpu", "error: --set: run.device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
        ("run.device=cuda:7", "error: --set: run.device: expected a device this machine has ("),
        ("capture.pan_steps=5", "error: --set: capture.pan_steps: expected a list of numbers, got 5"),
        ("capture.pan_steps=abc", "error: --set: capture.pan_steps: expected a list of numbers, got 'abc'"),
        ("world_model=5", "error: --set: world_model: expected a mapping of settings, got 5"),
        ("actions=[1]", "error: --set: actions[0]: expected a mapping of settings, got 1"),
        ("world_model.encoder=5", "error: --set: world_model.encoder: expected a mapping of settings, got 5"),
        ("camera.limits=[]", "error: --set: camera.limits: expected a mapping of settings, got []"),
        ("storage.data=", "error: --set: storage.data: expected a folder path or URL, got an empty value"),
    ],
)
def test_bad_settings_are_refused_at_load(capsys, camera, tmp_path, setting, message):
    data = tmp_path / "node"
    line = _refused(capsys, camera, data, "--set", setting)
    assert line.startswith(message), line
    assert not data.exists()


def test_a_device_that_is_here_loads():
    assert load_config("tiny", ["run.device=cpu"]).run.device == "cpu"
    import torch

    if torch.cuda.is_available():  # on a GPU machine: the GPUs it has load, one more does not
        count = torch.cuda.device_count()
        assert load_config("tiny", [f"run.device=cuda:{count - 1}"]).run.device == f"cuda:{count - 1}"
        with pytest.raises(ConfigError, match=f"cuda:0 to cuda:{count - 1}"):
            load_config("tiny", [f"run.device=cuda:{count}"])


@pytest.mark.parametrize("content", [b"", b"GIF89a but not really", b"\xff\xd8\xff\xe0 truncated"],
                         ids=["empty", "not-an-image", "broken-jpeg"])
def test_a_panorama_that_does_not_decode_is_refused(capsys, camera, tmp_path, content):
    pano = tmp_path / "pano.jpg"
    pano.write_bytes(content)
    line = _refused(capsys, camera, tmp_path / "node", "--panorama", str(pano))
    assert line.startswith(f"error: --panorama: sim.panorama: expected an image file, got '{pano}' ("), line
    assert not (tmp_path / "node").exists()


def test_data_that_is_a_file_is_refused(capsys, camera, tmp_path):
    data = tmp_path / "a-file"
    data.write_text("keep me")
    line = _refused(capsys, camera, data)
    assert line == f"error: --data: storage.data: expected a folder, got '{data}' (a file)"
    assert data.read_text() == "keep me"
    line = _refused(capsys, camera, data / "below")
    assert line.startswith("error: --data: storage.data: expected a folder, got") and "(under a file" in line


def test_data_under_proc_is_refused(capsys, camera):
    line = _refused(capsys, camera, "/proc/ptzjepa/node")
    assert line.startswith("error: --data: storage.data: expected a folder this user can write, "
                           "got '/proc/ptzjepa/node' (cannot make it in /proc")


def test_empty_data_option_is_an_error_not_the_profiles_folder(capsys, camera):
    line = _refused(capsys, camera, "")
    assert line == "error: --data: storage.data: expected a folder path or URL, got an empty value"


@pytest.fixture
def unwritable(tmp_path):
    """A folder this user cannot write in: by its mode, or (root ignores modes) made immutable."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
        pytest.skip("running as root where chattr +i is not available: no folder root cannot write")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_data_folder_is_refused(capsys, camera, unwritable):
    for data in (unwritable, unwritable / "node"):
        line = _refused(capsys, camera, data)
        assert line.startswith(f"error: --data: storage.data: expected a folder this user can write, "
                               f"got '{data}' ("), line
    assert list(unwritable.iterdir()) == []


def test_data_checks_leave_nothing_behind(tmp_path):
    assert data_folder_problem(str(tmp_path / "new" / "node")) is None
    assert data_folder_problem(str(tmp_path)) is None
    assert data_folder_problem(f"file://{tmp_path}") is None
    assert data_folder_problem("memory://node") is None  # remote stores are checked when opened
    assert list(tmp_path.iterdir()) == []


def test_data_option_is_a_path_not_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("123", "[x]", "yes"):
        assert load_config("tiny", flags={"storage.data": ("--data", name)}).storage.data == name


def test_set_errors_blame_set_and_suggest_the_closest_key(capsys, camera, tmp_path):
    line = _refused(capsys, camera, tmp_path / "node", "--set", "world_model.encoder.widht=3")
    assert line == ("error: --set: unknown key 'world_model.encoder.widht' "
                    "(did you mean 'world_model.encoder.width'?)")
    line = _refused(capsys, camera, tmp_path / "node", "--set", "wold_model.lr=0.1")
    assert line == "error: --set: unknown key 'wold_model' (did you mean 'world_model'?)"
    line = _refused(capsys, camera, tmp_path / "node", "--set", "capture.zzz=1")
    assert line == "error: --set: unknown key 'capture.zzz'"


def test_a_profile_error_still_blames_the_profile(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("extends: tiny\nworld_model:\n  lr: .inf\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(profile), ["world_model.epochs=2"])
    assert str(err.value) == f"profile {profile}: world_model.lr: expected a finite number, got inf"
