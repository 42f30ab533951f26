import subprocess
import sys

import cv2
import numpy as np
import pytest

from ptzjepa.config.loading import ConfigError, apply_overrides, config_from_dict, load_config, load_profile_dict
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
        (
            {"world_model": {"compile": "max-autotune", "pair_chunk": 8}},
            "world_model.pair_chunk: expected 0 with compile max-autotune (CUDA graphs), got 8",
        ),
        # settings wrong only together: refused at load, not when a stage first builds the model
        (
            {"world_model": {"image_size": 100, "patch_size": 14}},
            "world_model.image_size: expected a multiple of world_model.patch_size (14), got 100",
        ),
        (
            {"world_model": {"encoder": {"width": 100, "heads": 3}}},
            "world_model.encoder.width: expected a multiple of world_model.encoder.heads (3), got 100",
        ),
        (
            {"world_model": {"predictor": {"width": 18, "heads": 3}}},
            "world_model.predictor.width: expected a multiple of 4 (the 2-D sin-cos position table), got 18",
        ),
        (
            {"agent": {"net": {"width": 32, "heads": 3}}},
            "agent.net.width: expected a multiple of agent.net.heads (3), got 32",
        ),
        (
            {"camera": {"limits": {"tilt_min": 30.0, "tilt_max": 30.0}}},
            "camera.limits.tilt_max: expected greater than camera.limits.tilt_min (30.0), got 30.0",
        ),
        (
            {"camera": {"limits": {"pan_min": 10.0, "pan_max": 5.0}}},
            "camera.limits.pan_max: expected greater than camera.limits.pan_min (10.0), got 5.0",
        ),
        (
            {"camera": {"limits": {"zoom_max": float("inf")}}},
            "camera.limits.zoom_max: expected a finite number, got inf",
        ),
        (
            {"sim": {"panorama": "no/such/panorama.jpg"}},
            "sim.panorama: expected an image file, got 'no/such/panorama.jpg' (no such file)",
        ),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, "profile x")
    text = str(err.value)
    assert message in text and "\n" not in text
    assert text.startswith("profile x: ")


PW = "Url-Pw-9z"


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"camera": {"kind": "hanwha", "url": f"http://admin:{PW}@10.0.0.5"}},
            "camera.url: expected no user or password in the URL (set camera.username, and the password "
            "in $PTZJEPA_CAMERA_PASSWORD or camera.password_file), got http://***@10.0.0.5",
        ),
        ({"camera": {"url": "http://admin@10.0.0.5/x"}}, "camera.url: expected no user or password in the URL"),
        (
            {"locks": {"redis_url": f"redis://:{PW}@10.0.0.9:6379/0"}},
            "locks.redis_url: expected no user or password in the URL (set the password in "
            "$PTZJEPA_REDIS_PASSWORD or locks.password_file), got redis://***@10.0.0.9:6379/0",
        ),
        ({"storage": {"data": f"sftp://me:{PW}@host/srv/node"}}, "storage.data: expected no password in the URL"),
        (
            {"storage": {"data": f"simplecache::s3://key:{PW}@bucket/node"}},
            "storage.data: expected no password in the URL",
        ),
    ],
)
def test_credentials_in_urls_are_refused_without_showing_them(data, message):
    """A URL's password would be stored verbatim in state/config.json: passwords come only from the
    environment or a secrets file."""
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, "profile x")
    text = str(err.value)
    assert message in text and "\n" not in text
    assert PW not in text and "admin" not in text


def test_urls_without_credentials_and_an_existing_panorama_load(tmp_path):
    pano = tmp_path / "pano.png"
    cv2.imwrite(str(pano), np.zeros((8, 16, 3), np.uint8))
    cfg = config_from_dict({
        "camera": {"url": "http://10.0.0.5:8080/ptz", "username": "admin"},
        "locks": {"redis_url": "redis://10.0.0.9:6379/0"},
        "storage": {"data": "sftp://me@host/srv/node"},
        "sim": {"panorama": str(pano)},
    })
    assert cfg.camera.url == "http://10.0.0.5:8080/ptz" and cfg.sim.panorama == str(pano)


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
    assert lines == ["error: --set: capture.movements: expected greater than or equal to 0, got -1"]


@pytest.mark.parametrize(
    "setting, message",
    [
        (f"camera.url=http://op:{PW}@127.0.0.1:9", "--set: camera.url: expected no user or password"),
        ("world_model.image_size=60", "--set: world_model.image_size: expected a multiple of"),
        ("camera.limits.zoom_min=40", "--set: camera.limits.zoom_max: expected greater than"),
        ("sim.panorama=missing.jpg", "--set: sim.panorama: expected an image file"),
    ],
)
def test_cli_refuses_bad_combinations_before_doing_anything(tmp_path, setting, message):
    data = tmp_path / "node"
    proc = subprocess.run(
        [sys.executable, "cli.py", "run", "--profile", "tiny", "--set", "camera.kind=hanwha",
         "--machine", "capture", "--data", str(data), "--no-view", "--set", setting],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines
    assert PW not in proc.stdout + proc.stderr
    assert not data.exists()  # stopped before opening the store: no config.json holding the URL


def test_log_lines_hide_url_user_info_even_with_no_known_secret():
    """A URL's user info in any log line (an exception naming a URL, a third-party debug line) is
    blanked, though the password was never a setting the filter could know."""
    import logging

    from ptzjepa.logs import RedactSecrets

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "connect %s failed (%s)",
                               (f"http://op:{PW}@10.0.0.5/cgi", "sftp://me@host/a@b/c"), None)
    assert RedactSecrets([]).filter(record)
    assert record.getMessage() == "connect http://***@10.0.0.5/cgi failed (sftp://***@host/a@b/c)"
