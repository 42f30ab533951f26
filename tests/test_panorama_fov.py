"""A panorama that is not 2:1: a warning saying it is stretched over the whole sphere, unless its
field of view is given (sim.panorama_hfov / panorama_vfov), which places it at its own scale."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ptzjepa.camera.base import PTZ, PTZLimits, AxisRange
from ptzjepa.config.loading import ConfigError, config_notes, load_config
from sim.camera import SimCamera
from sim.field_of_view import fields, on_sphere


def _write(path, width, height, colour=(0, 0, 255)):
    cv2.imwrite(str(path), np.full((height, width, 3), colour, np.uint8))  # BGR: red
    return str(path)


def test_a_panorama_that_is_not_2_to_1_warns_what_will_happen(tmp_path):
    pano = _write(tmp_path / "wide.png", 300, 100)
    notes = config_notes(load_config("tiny", [f"sim.panorama={pano}"]))
    assert len(notes) == 1
    assert notes[0].startswith(f"sim.panorama {pano} is 300x100, not 2:1: it is stretched over the whole sphere")
    assert "sim.panorama_hfov" in notes[0]
    assert config_notes(load_config("tiny", [f"sim.panorama={pano}", "sim.panorama_hfov=120"])) == []
    assert config_notes(load_config("tiny", [f"sim.panorama={_write(tmp_path / 'ok.png', 400, 200)}"])) == []


@pytest.mark.parametrize("setting, message", [
    ("sim.panorama_hfov=400", "sim.panorama_hfov: expected less than or equal to 360, got 400"),
    ("sim.panorama_vfov=-1", "sim.panorama_vfov: expected greater than or equal to 0, got -1"),
])
def test_field_of_view_settings_are_checked(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [setting])


def test_fields_follow_the_aspect_when_one_is_given():
    assert fields(300, 100, 0, 0) == (360.0, 180.0)
    assert fields(300, 100, 120, 0) == (120.0, 40.0)
    assert fields(300, 100, 0, 40) == (120.0, 40.0)
    assert fields(300, 100, 90, 60) == (90.0, 60.0)


def test_a_partial_panorama_is_placed_centred_on_pan_0_and_the_horizon(tmp_path):
    pano = _write(tmp_path / "wide.png", 300, 100)
    image = SimCamera.load_panorama(pano, hfov_deg=120)
    assert image.shape == (450, 900, 3)  # 2.5 pixels per degree over the whole sphere
    camera = SimCamera(width=32, height=24, hfov_deg=30, panorama=image,
                       limits=PTZLimits(pan=AxisRange(-180, 180, wraps=True), tilt=AxisRange(-90, 90)))
    red = lambda ptz: camera.move_to(ptz) and camera.grab().image[..., 0].mean()  # noqa: E731
    assert red(PTZ(0, 0, 1)) > 250 and red(PTZ(40, 5, 1)) > 250  # inside 120° x 40°
    assert red(PTZ(180, 0, 1)) < 5 and red(PTZ(0, 60, 1)) < 5  # behind it and above it: black
    assert on_sphere(np.zeros((100, 200, 3), np.uint8)).shape == (100, 200, 3)  # whole sphere as is


def test_the_run_shows_the_warning(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    pano = _write(tmp_path / "wide.png", 300, 100)
    done = subprocess.run(
        [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", "capture", "--no-view",
         "--panorama", pano, "--data", str(tmp_path / "node"), "--set", "capture.iterations=1",
         "--set", "capture.movements=1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is 300x100, not 2:1: it is stretched over the whole sphere" in done.stderr
    status = (tmp_path / "node" / "state" / "status.json").read_text()
    assert "not 2:1" in status
