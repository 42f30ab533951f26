"""The Axis VAPIX driver against its fake: pan -180..180 and zoom steps <-> project units."""

from __future__ import annotations

import numpy as np
import pytest

from ptzjepa.camera.axis import (AxisCamera, axis_pan, steps_to_zoom, zoom_delta_to_steps,
                                 zoom_to_steps)
from ptzjepa.camera.base import PTZ, AxisRange, CameraError, PTZCamera, PTZLimits
from tests.fake_cameras import FakeAxis
from tests.camera_conformance import CameraConformance
from tests.fake_cameras.connect import FakeCameraSuite, driver_for

ZOOM = AxisRange(1.0, 32.0)


@pytest.fixture
def server():
    with FakeAxis("root", "axis-pw") as srv:
        yield srv


@pytest.fixture
def cam(server):
    with driver_for(server) as cam:
        yield cam


def test_zoom_step_mapping_is_linear_over_the_limits():
    assert zoom_to_steps(1.0, ZOOM) == 1 and zoom_to_steps(32.0, ZOOM) == 9999
    assert zoom_to_steps(16.5, ZOOM) == 5000
    assert zoom_to_steps(100.0, ZOOM) == 9999  # fitted to the limits first
    for factor in (1.0, 2.7, 16.5, 31.99):
        assert steps_to_zoom(zoom_to_steps(factor, ZOOM), ZOOM) == pytest.approx(factor, abs=2e-3)
    assert zoom_delta_to_steps(0.1, ZOOM) == 32 and zoom_delta_to_steps(-31.0, ZOOM) == -9998


def test_pan_mapping():
    assert axis_pan(270.0) == -90.0 and axis_pan(90.0) == 90.0 and axis_pan(180.0) == -180.0
    assert axis_pan(-190.0) == 170.0


def test_position_is_read_in_project_units(cam, server):
    assert isinstance(cam, PTZCamera)
    server.head.move_to(PTZ(-90.0, 20.0, 16.5))  # the head's own units: Axis pan, optical factor
    for _ in range(server.head.polls_to_arrive):
        server.head.poll()
    at = cam.position()
    assert at.pan == pytest.approx(270.0) and at.tilt == pytest.approx(20.0)
    assert at.zoom == pytest.approx(16.5, abs=2e-3)


def test_absolute_move_speaks_axis_units(cam, server):
    reached = cam.move_to(PTZ(270.0, -10.0, 16.5))
    assert reached.as_tuple() == pytest.approx((270.0, -10.0, 16.5), abs=0.01)
    sent = server.last["absolute"].query
    assert (sent["pan"], sent["tilt"], sent["zoom"]) == ("-90", "-10", "5000")
    assert server.head.peek().pan == pytest.approx(-90.0)
    assert server.count("position") >= server.head.polls_to_arrive


def test_relative_move_across_the_seam(cam, server):
    cam.move_to(PTZ(179.0, 0.0, 10.0))
    reached = cam.move_by(PTZ(2.0, -1.0, -0.5))
    assert reached.as_tuple() == pytest.approx((181.0, -1.0, 9.5), abs=0.01)
    sent = server.last["relative"].query
    assert (sent["rpan"], sent["rtilt"], sent["rzoom"]) == ("2", "-1", "-161")
    assert server.head.peek().pan == pytest.approx(-179.0)


def test_pan_limits_of_minus_180_to_180_are_kept(server):
    limits = PTZLimits(pan=AxisRange(-180.0, 180.0, wraps=True))
    with driver_for(server, limits=limits) as cam:
        assert cam.move_to(PTZ(-90.0, 0.0, 1.0)).pan == pytest.approx(-90.0)
        assert cam.move_by(PTZ(-100.0, 0.0, 0.0)).pan == pytest.approx(170.0)


def test_grab(cam):
    a = cam.move_to(PTZ(0.0, 0.0, 1.0)) and cam.grab()
    b = cam.move_to(PTZ(120.0, 20.0, 6.0)) and cam.grab()
    assert a.image.shape == b.image.shape == (48, 64, 3)
    assert b.ptz.pan == pytest.approx(120.0, abs=0.01)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 2.0


def test_refused_command_is_an_error(server):
    wide = PTZLimits(tilt=AxisRange(-90.0, 90.0))
    with driver_for(server, limits=wide) as cam, pytest.raises(CameraError) as err:
        cam.move_to(PTZ(0.0, -60.0, 1.0))
    assert err.value.call == "absolute move" and "value out of range" in str(err.value)


def test_repr_has_no_password(cam):
    assert "axis-pw" not in repr(cam) and "AxisCamera" in repr(cam)
    assert isinstance(cam, AxisCamera)


class TestAxisConformance(FakeCameraSuite, CameraConformance):
    fake = FakeAxis
