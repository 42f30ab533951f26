"""Fake PTZ cameras on real HTTP servers, one per protocol, backed by the simulator.

    with FakeHanwha("admin", "secret") as srv:
        cam = HanwhaCamera(srv.url, "admin", "secret", ...)
        srv.faults.error_count = 2          # the next two calls answer 500

`python -m tests.fake_cameras hanwha|axis|onvif --port P --user U` serves one for a person.
"""

from tests.fake_cameras.axis import FakeAxis
from tests.fake_cameras.hanwha import FakeHanwha
from tests.fake_cameras.onvif import FakeOnvif
from tests.fake_cameras.server import FakeCameraServer, Faults

FAKES: dict[str, type[FakeCameraServer]] = {"hanwha": FakeHanwha, "axis": FakeAxis,
                                             "onvif": FakeOnvif}

__all__ = ["FAKES", "FakeAxis", "FakeCameraServer", "FakeHanwha", "FakeOnvif", "Faults"]
