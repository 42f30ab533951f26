"""The Hanwha SUNAPI driver against its fake: units, arrival, relative moves, NG answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ptzjepa.camera.base import PTZ, AxisRange, CameraError, PTZCamera, PTZLimits
from ptzjepa.camera.hanwha import HanwhaCamera, hanwha_pan, sunapi_failure, sunapi_number
from tests.conftest import REPO
from tests.fake_cameras import FakeHanwha
from tests.camera_conformance import CameraConformance
from tests.fake_cameras.connect import FakeCameraSuite, driver_for


@pytest.fixture
def server():
    with FakeHanwha("admin", "hanwha-pw") as srv:
        yield srv


@pytest.fixture
def cam(server):
    with driver_for(server) as cam:
        yield cam


def test_is_a_ptz_camera(cam):
    assert isinstance(cam, PTZCamera)
    assert cam.limits == PTZLimits()


def test_absolute_move_waits_for_arrival(cam, server):
    reached = cam.move_to(PTZ(123.4, 12.5, 3.5))
    assert reached.as_tuple() == pytest.approx((123.4, 12.5, 3.5), abs=0.01)
    assert server.head.peek() == PTZ(123.4, 12.5, 3.5)
    # the head needs three polls to get there; the driver must not stop at the first
    assert server.count("position") >= server.head.polls_to_arrive
    q = server.last["absolute"].query
    assert (q["Pan"], q["Tilt"], q["Zoom"]) == ("123.4", "12.5", "3.5")


def test_target_is_fitted_to_limits_before_sending(cam, server):
    reached = cam.move_to(PTZ(-30.0, 150.0, 0.2))  # pan wraps, tilt and zoom clamp
    assert (reached.pan, reached.tilt, reached.zoom) == pytest.approx((330.0, 90.0, 1.0), abs=0.01)
    assert server.last["absolute"].query["Pan"] == "330"


def test_reading_of_360_is_zero(cam, server):
    cam.move_to(PTZ(359.998, 0.0, 1.0))  # the head reports this as Pan=360.00
    raw = server.head.peek().pan
    assert raw > 359.99
    assert cam.position().pan == 0.0
    assert hanwha_pan(360.0) == 0.0 and hanwha_pan(-90.0) == 270.0 and hanwha_pan(359.5) == 359.5


def test_relative_move_wraps_pan_and_clamps_tilt(cam, server):
    cam.move_to(PTZ(359.0, 85.0, 31.5))
    reached = cam.move_by(PTZ(2.0, 10.0, 1.0))
    assert reached.pan == pytest.approx(1.0, abs=0.01)
    assert (reached.tilt, reached.zoom) == pytest.approx((90.0, 32.0), abs=0.01)
    sent = server.last["relative"].query
    # only as far as the limits: the head's own end stops never decide where it ends up
    assert (sent["Pan"], sent["Tilt"], sent["Zoom"]) == ("2", "5", "0.5")


def test_grab_is_taken_where_the_camera_reports(cam):
    cam.move_to(PTZ(10.0, 0.0, 1.0))
    first = cam.grab()
    assert first.image.dtype == np.uint8 and first.image.shape == (48, 64, 3)
    assert first.ptz == cam.position() and first.time.tzinfo is not None
    cam.move_to(PTZ(190.0, 30.0, 4.0))
    second = cam.grab()
    assert second.ptz.pan == pytest.approx(190.0, abs=0.01)
    assert np.abs(first.image.astype(int) - second.image.astype(int)).mean() > 2.0


def test_ng_answer_is_an_error_with_the_details(server):
    # configured limits wider than the head's: the camera refuses and says why
    wide = PTZLimits(tilt=AxisRange(-90.0, 90.0))
    with driver_for(server, limits=wide) as cam, pytest.raises(CameraError) as err:
        cam.move_to(PTZ(0.0, -60.0, 1.0))
    assert err.value.call == "absolute move"
    assert "NG" in str(err.value) and "Out Of Range" in str(err.value)


def test_basic_auth_when_the_camera_asks_for_it():
    with FakeHanwha("admin", "pw", auth="basic") as srv, driver_for(srv) as cam:
        assert cam.move_to(PTZ(45.0, 5.0, 2.0)).pan == pytest.approx(45.0, abs=0.01)
        assert srv.auth_failures == 0


def test_stale_digest_nonce_is_renewed_silently():
    with FakeHanwha("admin", "pw", nonce_lifetime_s=0.05) as srv, driver_for(srv) as cam:
        cam.position()
        time.sleep(0.1)
        assert cam.position() == PTZ(0.0, 0.0, 1.0)
        assert srv.auth_failures == 0


def test_credentials_in_the_url_are_moved_out_of_it(server):
    url = server.url.replace("http://", "http://admin:hanwha-pw@")
    cam = HanwhaCamera(url, "", "", limits=PTZLimits(), timeout_s=1.0, retries=0,
                       move_timeout_s=1.0, poll_interval_s=0.01, position_tolerance=0.1)
    assert cam.position() == PTZ(0.0, 0.0, 1.0)
    assert "hanwha-pw" not in repr(cam) and "hanwha-pw" not in cam.http.base_url
    cam.close()


def test_sunapi_helpers():
    assert sunapi_number(-0.0001) == "0" and sunapi_number(12.3456) == "12.346"
    assert sunapi_number(-5.0) == "-5"
    assert sunapi_failure("OK\r\n") is None
    assert "604" in sunapi_failure("NG\r\nError Code: 604\r\nError Details: Bad\r\n")


@pytest.mark.parametrize("bad", [dict(move_timeout_s=0), dict(poll_interval_s=-1),
                                 dict(timeout_s=0), dict(retries=-1)])
def test_bad_settings_name_the_setting(server, bad):
    with pytest.raises(ValueError, match=f"camera.{next(iter(bad))}"):
        driver_for(server, **bad)


def test_bad_url_is_a_clear_error():
    with pytest.raises(ValueError, match="camera.url"):
        HanwhaCamera("ftp://cam", "u", "p", limits=PTZLimits(), timeout_s=1, retries=0,
                     move_timeout_s=1, poll_interval_s=0.1, position_tolerance=0.5)


def test_fake_runs_from_the_command_line():
    """`python -m tests.fake_cameras` serves a camera that the driver can log in to."""
    env = {**os.environ, "PTZJEPA_CAMERA_PASSWORD": "cli-pw", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.fake_cameras", "hanwha", "--port", "0", "--user", "op",
           "--width", "32", "--height", "24"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        cam = HanwhaCamera(url, "op", "cli-pw", limits=PTZLimits(), timeout_s=2.0, retries=0,
                           move_timeout_s=2.0, poll_interval_s=0.01, position_tolerance=0.1)
        assert cam.move_to(PTZ(30.0, 5.0, 2.0)).pan == pytest.approx(30.0, abs=0.01)
        assert cam.grab().image.shape == (24, 32, 3)
        cam.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    env.pop("PTZJEPA_CAMERA_PASSWORD")
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "PTZJEPA_CAMERA_PASSWORD" in done.stderr


@pytest.mark.parametrize("kind", ["hanwha", "axis", "onvif"])
def test_config_opens_the_driver(kind, monkeypatch):
    from ptzjepa.config.loading import ConfigError, load_config
    from ptzjepa.node.cameras import open_camera
    from tests.fake_cameras import FAKES
    from tests.fake_cameras.connect import DRIVER_OF

    monkeypatch.setenv("PTZJEPA_CAMERA_PASSWORD", "cfg-pw")
    with pytest.raises(ConfigError, match="camera.url"):
        open_camera(load_config("tiny", [f"camera.kind={kind}"]))
    with FAKES[kind]("op", "cfg-pw") as srv:
        cfg = load_config("tiny", [f"camera.kind={kind}", f"camera.url={srv.url}",
                                   "camera.username=op", "camera.poll_interval_s=0.01"])
        cam = open_camera(cfg)
        assert type(cam) is DRIVER_OF[type(srv)]
        assert cam.move_to(PTZ(20.0, 3.0, 2.0)).pan == pytest.approx(20.0, abs=0.5)
        cam.close()


class TestHanwhaConformance(FakeCameraSuite, CameraConformance):
    fake = FakeHanwha
