"""Opens the camera that the config names. The only place that knows every camera kind."""

from __future__ import annotations

from ptzjepa.camera.base import PTZCamera
from ptzjepa.config import Config, ConfigError


def open_camera(config: Config) -> PTZCamera:
    cam = config.camera
    limits = cam.limits.to_limits()
    if cam.kind == "sim":
        from sim.camera import SimCamera

        s = config.sim
        panorama = SimCamera.load_panorama(s.panorama) if s.panorama else None
        return SimCamera(
            width=s.width, height=s.height, hfov_deg=s.hfov_deg, limits=limits, seed=s.seed,
            panorama=panorama, scene_width=s.scene_width, move_latency_s=s.move_latency_s,
            noise_std=s.noise_std, seconds_per_step=s.seconds_per_step,
        )
    raise ConfigError(f"camera.kind: {cam.kind!r} has no driver wired in yet")
