"""Drivers pointed at fakes, with settings small enough for tests to fail fast."""

from __future__ import annotations

from typing import Any

import pytest

from ptzjepa.camera.axis import AxisCamera
from ptzjepa.camera.base import PTZLimits
from ptzjepa.camera.driver import NetworkPTZCamera
from ptzjepa.camera.hanwha import HanwhaCamera
from ptzjepa.camera.onvif import OnvifCamera
from tests.fake_cameras.axis import FakeAxis
from tests.fake_cameras.hanwha import FakeHanwha
from tests.fake_cameras.onvif import FakeOnvif
from tests.fake_cameras.server import FakeCameraServer

DRIVER_OF: dict[type[FakeCameraServer], type[NetworkPTZCamera]] = {
    FakeHanwha: HanwhaCamera, FakeAxis: AxisCamera, FakeOnvif: OnvifCamera}

FAST = dict(limits=PTZLimits(), timeout_s=1.0, retries=2, move_timeout_s=2.0,
            poll_interval_s=0.005, position_tolerance=0.1)


def driver_for(server: FakeCameraServer, password: str | None = None,
               **settings: Any) -> NetworkPTZCamera:
    """The matching driver, logged in as the fake's user (with `password` to log in wrongly)."""
    cls = DRIVER_OF[type(server)]
    return cls(server.url, server.username, server.password if password is None else password,
               **{**FAST, **settings})


class FakeCameraSuite:
    """Mixin for tests.camera_conformance.CameraConformance: each camera is a driver talking to
    its own fake server, whose pictures come from SimCamera(seed). Set `fake` in the subclass."""

    fake: type[FakeCameraServer]
    # The driver stops polling once within this of the target; the suite allows for that plus
    # the brand's rounding on the wire (Hanwha: 0.01 degree, Axis: one zoom step).
    arrival_tolerance = 0.01
    position_tolerance = 0.02
    image_size = (96, 72)

    @pytest.fixture(autouse=True)
    def _fake_servers(self):
        self._servers: list[FakeCameraServer] = []
        yield
        for server in self._servers:
            server.stop()

    def make_camera(self, seed: int) -> NetworkPTZCamera:
        width, height = self.image_size
        server = self.fake("admin", f"suite-{seed}", seed=seed, width=width, height=height)
        self._servers.append(server.start())
        return driver_for(server, position_tolerance=self.arrival_tolerance)
