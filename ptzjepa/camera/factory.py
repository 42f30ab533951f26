"""Opens the camera that the config names. The only place that knows every camera kind."""

from __future__ import annotations

from ptzjepa.camera.base import PTZCamera, PTZLimits
from ptzjepa.config import CameraConfig, Config
from ptzjepa.config_loading import ConfigError


def open_camera(config: Config) -> PTZCamera:
    cam = config.camera
    limits = cam.limits.to_limits()
    if cam.kind == "sim":
        from sim.camera import SimCamera

        s = config.sim
        panorama = SimCamera.load_panorama(s.panorama, s.panorama_hfov, s.panorama_vfov) if s.panorama else None
        return SimCamera(
            width=s.width, height=s.height, hfov_deg=s.hfov_deg, limits=limits, seed=s.seed,
            panorama=panorama, scene_width=s.scene_width, move_latency_s=s.move_latency_s,
            noise_std=s.noise_std, seconds_per_step=s.seconds_per_step,
        )
    if cam.kind in ("hanwha", "axis", "onvif"):
        return _open_network(cam, limits)
    raise ConfigError(f"camera.kind: {cam.kind!r} has no driver wired in yet")


def _open_network(cam: CameraConfig, limits: PTZLimits) -> PTZCamera:
    """A Hanwha, Axis or ONVIF driver; the password comes from the env or secrets file."""
    from ptzjepa.camera.axis import AxisCamera
    from ptzjepa.camera.hanwha import HanwhaCamera
    from ptzjepa.camera.onvif import OnvifCamera

    if not cam.url:
        raise ConfigError(f"camera.url: required for camera.kind {cam.kind!r}, "
                          "e.g. http://192.168.1.20")
    settings = dict(limits=limits, timeout_s=cam.timeout_s, retries=cam.retries,
                    move_timeout_s=cam.move_timeout_s, poll_interval_s=cam.poll_interval_s,
                    position_tolerance=cam.position_tolerance)
    try:
        if cam.kind == "onvif":
            return OnvifCamera(cam.url, cam.username, cam.password(), profile=cam.onvif_profile,
                               **settings)
        driver = HanwhaCamera if cam.kind == "hanwha" else AxisCamera
        return driver(cam.url, cam.username, cam.password(), **settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
