"""Every driver against every fault its fake can stage: each ends as one clear CameraError.

Timeouts here are tenths of a second so that the whole file runs in a few seconds.
"""

from __future__ import annotations

import logging
import time
import traceback

import pytest

from ptzjepa.camera.base import PTZ, CameraError
from tests.fake_cameras import FakeAxis, FakeHanwha, FakeOnvif
from tests.fake_cameras.connect import driver_for

PASSWORD = "Pw-9f3kq-Secret"
FAKES = [FakeHanwha, FakeAxis, FakeOnvif]


@pytest.fixture(params=FAKES, ids=lambda f: f.__name__[4:].lower())
def server(request):
    with request.param("admin", PASSWORD) as srv:
        yield srv


def connect(server, **settings):
    cam = driver_for(server, **settings)
    cam.position()  # ONVIF discovers its services on first use; faults target the calls after
    return cam


def test_timeout_names_camera_and_call_and_is_bounded(server):
    cam = connect(server, timeout_s=0.15, retries=1)
    server.faults.delay_s = 3.0
    server.faults.delay_kinds = frozenset({"snapshot"})
    started = time.monotonic()
    with pytest.raises(CameraError) as err:
        cam.grab()
    elapsed = time.monotonic() - started
    backoff = cam.http.backoff_s
    assert elapsed < 0.15 * 2 + backoff + 0.5  # timeout x (retries + 1), plus backoff and slack
    assert elapsed >= 0.15 * 2
    assert err.value.camera == cam.name and cam.name in str(err.value)
    assert err.value.call == "snapshot" and "timed out" in str(err.value)
    assert "after 2 tries" in str(err.value)
    assert server.received.count("snapshot") == 2
    cam.close()


def test_5xx_then_success_is_retried(server):
    cam = connect(server)
    server.faults.error_count = 2
    server.faults.error_kinds = frozenset({"snapshot"})
    frame = cam.grab()
    assert frame.image.shape == (48, 64, 3)
    assert server.count("snapshot") == 3
    cam.close()


def test_5xx_that_persists_gives_up_after_the_retries(server):
    cam = connect(server, retries=1)
    server.faults.error_count = -1
    with pytest.raises(CameraError) as err:
        cam.move_to(PTZ(10.0, 0.0, 1.0))
    assert err.value.call == "absolute move" and "HTTP 500" in str(err.value)
    assert server.count("absolute") == 2
    cam.close()


def test_relative_move_is_not_resent_after_a_500(server):
    cam = connect(server)
    server.faults.error_count = 1
    server.faults.error_kinds = frozenset({"relative"})
    with pytest.raises(CameraError) as err:
        cam.move_by(PTZ(5.0, 0.0, 0.0))
    assert err.value.call == "relative move"
    assert server.count("relative") == 1  # sending it again might move the head twice
    cam.close()


def test_relative_move_is_resent_after_a_503(server):
    cam = connect(server)
    server.faults.error_count = 1
    server.faults.error_status = 503
    server.faults.error_kinds = frozenset({"relative"})
    before = cam.position()
    assert cam.move_by(PTZ(5.0, 0.0, 0.0)).pan == pytest.approx((before.pan + 5.0) % 360, abs=0.01)
    assert server.count("relative") == 2
    cam.close()


def test_wrong_password_is_not_retried_and_says_so(server):
    cam = driver_for(server, password="not-the-password", retries=3)
    with pytest.raises(CameraError) as err:
        cam.position()
    assert "authentication failed" in str(err.value) and "'admin'" in str(err.value)
    assert server.auth_failures == 1
    cam.close()


@pytest.mark.parametrize("spoiled", ["truncated", "not_jpeg"])
def test_spoiled_snapshot_never_becomes_a_frame(server, spoiled):
    cam = connect(server)
    server.faults.snapshot = spoiled
    with pytest.raises(CameraError, match="JPEG") as err:
        cam.grab()
    assert err.value.call == "snapshot"
    server.faults.snapshot = "ok"
    assert cam.grab().image.shape == (48, 64, 3)
    cam.close()


@pytest.mark.parametrize("move", ["absolute", "relative"])
def test_move_that_never_arrives(server, move):
    cam = connect(server, move_timeout_s=0.15, poll_interval_s=0.02)
    server.faults.never_arrive = True
    started = time.monotonic()
    with pytest.raises(CameraError) as err:
        if move == "absolute":
            cam.move_to(PTZ(90.0, 10.0, 2.0))
        else:
            cam.move_by(PTZ(-20.0, 5.0, 0.0))
    assert 0.15 <= time.monotonic() - started < 0.15 + 0.5
    assert err.value.call == f"{move} move" and "did not arrive" in str(err.value)
    cam.close()


def test_connection_refused_is_a_camera_error():
    with FakeHanwha("admin", PASSWORD) as srv:
        url = srv.url
    cam = driver_for(srv, retries=1)
    with pytest.raises(CameraError, match="position query failed: connection refused") as err:
        cam.position()
    assert err.value.camera == url.removeprefix("http://") and "after 2 tries" in str(err.value)


def test_password_never_leaks(server, caplog):
    """Messages, reprs, tracebacks and DEBUG logs of every kind of failure stay clean."""
    caplog.set_level(logging.DEBUG)
    errors = []
    cam = connect(server, timeout_s=0.15, retries=0, move_timeout_s=0.15)
    faults = server.faults
    for stage in ("timeout", "500", "jpeg", "stuck"):
        faults.delay_s = 1.0 if stage == "timeout" else 0.0
        faults.error_count = -1 if stage == "500" else 0
        faults.snapshot = "truncated" if stage == "jpeg" else "ok"
        faults.never_arrive = stage == "stuck"
        try:
            cam.grab() if stage in ("timeout", "jpeg") else cam.move_to(PTZ(77.0, 7.0, 7.0))
        except CameraError as exc:
            errors.append(exc)
    wrong = driver_for(server, password=PASSWORD[::-1])
    try:
        wrong.position()
    except CameraError as exc:
        errors.append(exc)
    assert len(errors) == 5
    texts = [repr(cam), repr(cam.http), repr(wrong), caplog.text]
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        assert exc.__cause__ is None and exc.__context__ is None
    for text in texts:
        assert PASSWORD not in text and PASSWORD[::-1] not in text
    cam.close()
    wrong.close()
