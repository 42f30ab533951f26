"""SimCamera: a PTZCamera over a panorama, so that the whole loop runs with no hardware.

It honours limits exactly like a head would (pan wraps, tilt and zoom clamp), can take real time
to move, adds sensor noise if asked, and keeps a simulated clock that advances with every move so
that the scene's light and moving things change as the camera works. Everything that looks random
is drawn from the seed: the same seed and the same calls give the same pictures.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from ptzjepa.camera.base import PTZ, CameraError, Frame, PTZLimits, utc_now
from sim.dynamics import SceneDynamics
from sim.field_of_view import on_sphere
from sim.panorama import PanoramaRenderer, View
from sim.scenes import make_scene
from sim.settings import SimConfig


@functools.lru_cache(maxsize=4)
def _builtin(seed: int, scene_width: int) -> tuple[PanoramaRenderer, SceneDynamics]:
    """Renderer and dynamics of the built-in scene, shared by every camera of this process."""
    scene = make_scene(seed, scene_width)
    return PanoramaRenderer(scene.panorama), SceneDynamics(seed, scene.road)


class SimCamera:
    """A simulated PTZ camera. Implements ptzjepa.camera.base.PTZCamera."""

    def __init__(self, *, width: int, height: int, hfov_deg: float = 60.0,
                 limits: PTZLimits = PTZLimits(), seed: int = 0, panorama: np.ndarray | None = None,
                 scene_width: int = 4096, move_latency_s: float = 0.0, noise_std: float = 0.0,
                 seconds_per_step: float = 60.0, start: PTZ = PTZ(0, 0, 1), name: str = "sim") -> None:
        for field, value in (("width", width), ("height", height)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SimCamera {field}: expected an integer >= 1, got {value!r}")
        if not 0.0 < hfov_deg < 180.0:
            raise ValueError(f"SimCamera hfov_deg: expected 0 < hfov_deg < 180, got {hfov_deg!r}")
        for field, value in (("move_latency_s", move_latency_s), ("noise_std", noise_std),
                             ("seconds_per_step", seconds_per_step)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"SimCamera {field}: expected a number >= 0, got {value!r}")
        if limits.zoom.lo <= 0:
            raise ValueError(f"SimCamera limits.zoom: expected factors > 0, got lo={limits.zoom.lo}")
        self.name = name
        self._limits = limits
        self._width, self._height, self._hfov = int(width), int(height), float(hfov_deg)
        self._seed = int(seed)
        self._latency = float(move_latency_s)
        self._noise = float(noise_std)
        self._step_s = float(seconds_per_step)
        if panorama is None:
            self._renderer, self._dynamics = _builtin(self._seed, int(scene_width))
        else:
            self._renderer = PanoramaRenderer(panorama)  # checks the array, one-line error
            self._dynamics = SceneDynamics(self._seed, None)
        self._at = limits.fit(_finite(start, "start"))
        self._sim_time = 0.0
        self._grabs = 0
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, section: SimConfig, limits: PTZLimits) -> SimCamera:
        """The simulator the `sim:` settings describe, within the camera's limits."""
        panorama = cls.load_panorama(section.panorama, section.panorama_hfov, section.panorama_vfov) \
            if section.panorama else None
        return cls(
            width=section.width, height=section.height, hfov_deg=section.hfov_deg, limits=limits,
            seed=section.seed, panorama=panorama, scene_width=section.scene_width,
            move_latency_s=section.move_latency_s, noise_std=section.noise_std,
            seconds_per_step=section.seconds_per_step,
        )

    @staticmethod
    def load_panorama(path: str | Path, hfov_deg: float = 0.0, vfov_deg: float = 0.0) -> np.ndarray:
        """An equirectangular image file as RGB uint8, or a one-line error naming the file; one
        covering less than the whole sphere (hfov/vfov, sim/field_of_view.py) is placed on it."""
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"panorama {p}: no such file")
        image = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"panorama {p}: not a readable image (expected PNG, JPEG, ...)")
        if image.shape[0] < 2 or image.shape[1] < 4:
            raise ValueError(f"panorama {p}: too small ({image.shape[1]}x{image.shape[0]})")
        return on_sphere(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), hfov_deg, vfov_deg)

    @property
    def limits(self) -> PTZLimits:
        return self._limits

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the camera started: seconds_per_step per move."""
        return self._sim_time

    def position(self) -> PTZ:
        self._check_open("position")
        return self._at

    def move_to(self, target: PTZ) -> PTZ:
        self._check_open("move_to")
        return self._move(self._limits.fit(_finite(target, "move_to target")))

    def move_by(self, delta: PTZ) -> PTZ:
        self._check_open("move_by")
        return self._move(self._limits.fit(self._at + _finite(delta, "move_by delta")))

    def grab(self) -> Frame:
        self._check_open("grab")
        with self._lock:
            at, sim_time, index = self._at, self._sim_time, self._grabs
            self._grabs += 1
        view = View(at.pan, at.tilt, at.zoom, self._width, self._height, self._hfov)
        image = self._dynamics.apply(self._renderer.render_view(view), view, sim_time)
        if self._noise > 0:
            rng = np.random.default_rng([self._seed & 0xFFFFFFFF, index])
            noise = rng.standard_normal(image.shape, dtype=np.float32)
            noise *= np.float32(self._noise)
            image = cv2.add(image, noise, dtype=cv2.CV_8U)  # rounds and saturates
        return Frame(image=image, ptz=at, time=utc_now())

    def render_at(self, ptz: PTZ, sim_time: float | None = None) -> np.ndarray:
        """The picture at `ptz` (fitted to the limits) without moving, ticking the clock or drawing
        sensor noise, so evaluation can look at views the camera never takes. `sim_time` None: the
        time the camera's next move will reach, i.e. what a grab after moving there would show."""
        self._check_open("render_at")
        at = self._limits.fit(_finite(ptz, "render_at pose"))
        when = self._sim_time + self._step_s if sim_time is None else float(sim_time)
        view = View(at.pan, at.tilt, at.zoom, self._width, self._height, self._hfov)
        return self._dynamics.apply(self._renderer.render_view(view), view, when)

    def close(self) -> None:
        self._closed = True

    def _move(self, target: PTZ) -> PTZ:
        if self._latency > 0:
            time.sleep(self._latency)
        with self._lock:
            self._at = target
            self._sim_time += self._step_s
        return target

    def _check_open(self, call: str) -> None:
        if self._closed:
            raise CameraError(self.name, call, "the camera is closed")

    def __repr__(self) -> str:
        return f"SimCamera(name={self.name!r}, {self._width}x{self._height}, at {self._at})"


def _finite(ptz: PTZ, what: str) -> PTZ:
    if not isinstance(ptz, PTZ):
        raise ValueError(f"{what}: expected a PTZ, got {type(ptz).__name__}")
    for axis, value in zip(("pan", "tilt", "zoom"), ptz.as_tuple()):
        if not math.isfinite(value):
            raise ValueError(f"{what}: {axis} must be a finite number, got {value!r}")
    return ptz
