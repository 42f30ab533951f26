"""The ONVIF driver against its fake: discovery, WS-UsernameToken, normalised spaces."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import numpy as np
import pytest
import requests

from ptzjepa.camera.base import PTZ, CameraError, PTZCamera, PTZLimits
from ptzjepa.camera.onvif import (OnvifCamera, delta_to_normalised, from_normalised,
                                  to_normalised)
from ptzjepa.camera.soap import element, envelope, password_digest, read_body, security_header
from tests.fake_cameras import FakeOnvif
from tests.camera_conformance import CameraConformance
from tests.fake_cameras.connect import FakeCameraSuite, driver_for

LIMITS = PTZLimits()  # pan 0..360, tilt -20..90, zoom 1..32


@pytest.fixture
def server():
    with FakeOnvif("operator", "onvif-pw") as srv:
        yield srv


@pytest.fixture
def cam(server):
    with driver_for(server) as cam:
        yield cam


def test_normalised_space_mapping():
    assert to_normalised(PTZ(180.0, 35.0, 16.5), LIMITS) == pytest.approx((0.0, 0.0, 0.5))
    assert to_normalised(PTZ(0.0, -20.0, 1.0), LIMITS) == pytest.approx((-1.0, -1.0, 0.0))
    assert from_normalised(1.0, 1.0, 1.0, LIMITS) == PTZ(360.0, 90.0, 32.0)
    for ptz in (PTZ(12.3, -4.5, 2.2), PTZ(359.0, 89.0, 31.0)):
        back = from_normalised(*to_normalised(ptz, LIMITS), LIMITS)
        assert back.as_tuple() == pytest.approx(ptz.as_tuple())
    assert delta_to_normalised(PTZ(18.0, 11.0, 3.1), LIMITS) == pytest.approx((0.1, 0.2, 0.1))


def test_password_digest_is_the_ws_security_formula():
    nonce, created = b"0123456789abcdef", "2024-05-01T12:00:00.000Z"
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"pw").digest()).decode()
    assert password_digest(nonce, created, "pw") == expected


def test_discovery_keeps_our_host_and_picks_the_ptz_profile(cam, server):
    assert isinstance(cam, PTZCamera)
    cam.position()
    session = cam._onvif()
    assert session.profile == "Profile_Main"  # the first profile has no PTZ configuration
    assert (session.ptz_path, session.media_path) == ("/onvif/ptz_service", "/onvif/media_service")
    assert session.snapshot_path == "/onvif/snapshot?profile=Profile_Main"


def test_position_from_the_generic_space(cam, server):
    server.head.move_to(PTZ(180.0, 35.0, 16.5))  # x=0, y=0, z=0.5 on the wire
    for _ in range(server.head.polls_to_arrive):
        server.head.poll()
    assert cam.position().as_tuple() == pytest.approx((180.0, 35.0, 16.5), abs=1e-3)


def test_moves_arrive(cam, server):
    reached = cam.move_to(PTZ(270.0, 10.0, 5.0))
    assert reached.as_tuple() == pytest.approx((270.0, 10.0, 5.0), abs=0.01)
    assert server.count("position") >= server.head.polls_to_arrive
    reached = cam.move_by(PTZ(100.0, -5.0, 1.0))  # pan wraps through 360
    assert reached.as_tuple() == pytest.approx((10.0, 5.0, 6.0), abs=0.01)
    assert server.head.peek().pan == pytest.approx(10.0, abs=0.01)


def test_grab_uses_the_snapshot_uri_with_http_auth(cam, server):
    a = cam.grab()
    b = cam.move_to(PTZ(90.0, 30.0, 3.0)) and cam.grab()
    assert a.image.shape == (48, 64, 3) and b.ptz.pan == pytest.approx(90.0, abs=0.01)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 2.0
    assert server.auth_failures == 0


def test_device_clock_offset_is_used_for_tokens():
    with FakeOnvif("operator", "pw", clock_offset_s=3600.0) as srv:
        with driver_for(srv) as cam:
            assert cam.move_to(PTZ(45.0, 0.0, 1.0)).pan == pytest.approx(45.0, abs=0.01)
        with driver_for(srv) as cam:
            cam._clock_offset = lambda: 0.0  # a client that ignores the device's clock
            with pytest.raises(CameraError, match="authentication failed"):
                cam.position()


def test_named_profile_must_exist(server):
    with driver_for(server, profile="Nope") as cam, pytest.raises(CameraError) as err:
        cam.position()
    assert "Nope" in str(err.value) and "Profile_Main" in str(err.value)


def test_profile_without_ptz_gives_the_soap_fault(server):
    with driver_for(server, profile="Profile_Sub") as cam, pytest.raises(CameraError) as err:
        cam.position()
    assert err.value.call == "position query" and "NoPTZProfile" in str(err.value)


def test_fake_refuses_a_replayed_token(server):
    body = element("tptz:GetStatus", children=[element("tptz:ProfileToken", "Profile_Main")])
    token = security_header("operator", "onvif-pw", dt.datetime.now(dt.timezone.utc))
    message = envelope(body, token)
    url = server.url + "/onvif/ptz_service"
    first = requests.post(url, data=message, timeout=2)
    replay = requests.post(url, data=message, timeout=2)
    assert first.status_code == 200 and read_body(first.content).tag.endswith("GetStatusResponse")
    assert replay.status_code == 400 and b"NotAuthorized" in replay.content


def test_url_with_a_path_is_the_device_service(server):
    cam = OnvifCamera(server.url + "/onvif/device_service", "operator", "onvif-pw",
                      limits=LIMITS, timeout_s=1.0, retries=0, move_timeout_s=1.0,
                      poll_interval_s=0.01, position_tolerance=0.1)
    assert cam.position().as_tuple() == pytest.approx((0.0, 0.0, 1.0), abs=1e-4)
    cam.close()


class TestOnvifConformance(FakeCameraSuite, CameraConformance):
    fake = FakeOnvif
