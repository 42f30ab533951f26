import subprocess
import sys

import pytest

from ptzjepa.config_loading import ConfigError, apply_overrides, config_from_dict, load_config, load_profile_dict
from tests.conftest import REPO


@pytest.mark.parametrize(
    "data, message",
    [
        ({"capture": {"iterations": 0}}, "capture.iterations: expected greater than or equal to 1, got 0"),
        ({"capture": {"iteratons": 3}}, "unknown key 'capture.iteratons'"),
        ({"world_model": {"encoder": {"width": "x"}}}, "world_model.encoder.width: expected an integer, got 'x'"),
        ({"camera": {"kind": "nikon"}}, "camera.kind: expected one of sim, hanwha, axis, onvif, got 'nikon'"),
        ({"actions": [{"name": "a", "pan": "q"}]}, "actions[0].pan: expected a number"),
        ({"world_model": {"epochs": 2.5}}, "world_model.epochs: expected an integer, got 2.5"),
        ({"storage": {"keep_images": "yes"}}, "storage.keep_images: expected true or false"),
        ({"navigate": {"exploration": 1.5}}, "navigate.exploration: expected less than or equal to 1"),
        ({"capture": {"start_zoom": [2, 1]}}, "capture.start_zoom: expected [low, high]"),
        ({"run": {"threads": -1}}, "run.threads: expected greater than or equal to 0, got -1"),
        ({"run": {"threads": 1.5}}, "run.threads: expected an integer, got 1.5"),
        (
            {"world_model": {"compile": "reduce-overhead", "pair_chunk": 8}},
            "world_model.pair_chunk: expected 0 with compile reduce-overhead (CUDA graphs), got 8",
        ),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, "profile x")
    text = str(err.value)
    assert message in text and "\n" not in text


def test_profiles_load_and_tiny_extends_sim():
    sim = load_config("sim")
    tiny = load_config("tiny")
    assert sim.sim.width == 640 and sim.sim.height == 360
    assert tiny.sim.width == 64 and tiny.world_model.patch_size == 8
    assert tiny.camera.kind == "sim"  # inherited through `extends`
    assert len(sim.actions) == 21 and sim.actions[0].name == "noop"
    assert load_config("waggle").storage.data == "/persistence"


def test_overrides_apply_nested_values():
    cfg = load_config("tiny", ["world_model.epochs=7", "camera.limits.pan_max=300", "capture.pan_steps=[1, 2]"])
    assert cfg.world_model.epochs == 7
    assert cfg.camera.limits.pan_max == 300.0
    assert cfg.capture.pan_steps == [1.0, 2.0]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["world_model.epochs"])


def test_unknown_profile_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such profile"):
        load_profile_dict("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("capture: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile_dict(str(bad))


def test_secrets_come_from_env_or_file(tmp_path, monkeypatch):
    cfg = load_config("tiny")
    monkeypatch.delenv("PTZJEPA_CAMERA_PASSWORD", raising=False)
    assert cfg.camera.password() == ""
    monkeypatch.setenv("PTZJEPA_CAMERA_PASSWORD", "s3cret-env")
    assert cfg.camera.password() == "s3cret-env"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.delenv("PTZJEPA_CAMERA_PASSWORD")
    cfg = load_config("tiny", [f"camera.password_file={secret}"])
    assert cfg.camera.password() == "from-file"


def test_cli_bad_value_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "cli.py", "run", "--sim", "--profile", "tiny", "--machine", "capture",
         "--data", str(tmp_path), "--no-view", "--set", "capture.movements=-1"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: profile tiny: capture.movements: expected greater than or equal to 0, got -1"]
