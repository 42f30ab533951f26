"""The camera section of the settings: which camera, where, how patient, and its limits.

The network drivers take this section as it is (NetworkPTZCamera.from_config); the simulator has
its own (sim.settings). The password is never a setting: `password_env` or `password_file` names
where it is kept, and ptzjepa.secrets reads it when the driver opens.
"""

from __future__ import annotations

from typing import Literal

import attrs
from attrs.validators import ge, gt

from ptzjepa.camera.base import AxisRange, PTZLimits
from ptzjepa.secrets import read_secret


@attrs.frozen
class LimitsConfig:
    pan_min: float = 0.0
    pan_max: float = 360.0
    pan_wraps: bool = True
    tilt_min: float = -20.0
    tilt_max: float = 90.0
    zoom_min: float = attrs.field(default=1.0, validator=gt(0))
    zoom_max: float = 32.0

    def to_limits(self) -> PTZLimits:
        return PTZLimits(
            pan=AxisRange(self.pan_min, self.pan_max, wraps=self.pan_wraps),
            tilt=AxisRange(self.tilt_min, self.tilt_max),
            zoom=AxisRange(self.zoom_min, self.zoom_max),
        )


@attrs.frozen
class CameraConfig:
    """Which camera drives the node. The password is read from `password_env` or `password_file`."""

    kind: Literal["sim", "hanwha", "axis", "onvif"] = "sim"
    url: str = ""
    username: str = ""
    password_env: str = "PTZJEPA_CAMERA_PASSWORD"
    password_file: str = ""
    timeout_s: float = attrs.field(default=5.0, validator=gt(0))
    retries: int = attrs.field(default=3, validator=ge(0))
    move_timeout_s: float = attrs.field(default=20.0, validator=gt(0))
    poll_interval_s: float = attrs.field(default=0.2, validator=gt(0))
    position_tolerance: float = attrs.field(default=0.5, validator=gt(0))
    onvif_profile: str = ""
    limits: LimitsConfig = LimitsConfig()

    def password(self) -> str:
        """The camera password, from the environment or the secrets file; '' if neither is set."""
        return read_secret(self.password_env, self.password_file)
