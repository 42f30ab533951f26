"""Opens the camera a node's settings name: the one place that knows every camera kind.

It sits at the node level, above both ptzjepa.camera (the network drivers) and sim (the
simulator), so that neither has to know the other or the whole Config: each takes its own
settings section (`camera:` for the drivers, `sim:` for the simulator).
"""

from __future__ import annotations

from ptzjepa.camera.base import PTZCamera
from ptzjepa.config.settings import Config
from ptzjepa.errors import ConfigError


def open_camera(config: Config) -> PTZCamera:
    """The camera of `config.camera.kind`, opened; drivers are imported only when chosen."""
    section = config.camera
    if section.kind == "sim":
        from sim.camera import SimCamera

        return SimCamera.from_config(config.sim, section.limits.to_limits())
    if section.kind == "hanwha":
        from ptzjepa.camera.hanwha import HanwhaCamera

        return HanwhaCamera.from_config(section)
    if section.kind == "axis":
        from ptzjepa.camera.axis import AxisCamera

        return AxisCamera.from_config(section)
    if section.kind == "onvif":
        from ptzjepa.camera.onvif import OnvifCamera

        return OnvifCamera.from_config(section)
    raise ConfigError(f"camera.kind: {section.kind!r} has no driver wired in yet")
