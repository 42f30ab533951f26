"""What changes with simulated time, applied to each rendered view (never to the whole panorama).

Light follows a day cycle (level and colour temperature, applied as one 3x3 colour transform);
cars drive along the scene's road, a flock of birds circles, a few clouds drift, each drawn only
where it falls in the view. Every position is a pure function of (seed, sim_time), so the same
seed and the same call sequence give the same pictures, yet the world never stops changing, and
a world model never runs out of things to learn.
"""

from __future__ import annotations

import math

import attrs
import cv2
import numpy as np

from sim.panorama import View
from sim.scenes import CAMERA_HEIGHT_M, Road

_ROAD_SPAN_M = 1600.0  # cars loop over this stretch of road, centred on its closest point
_SHIFT = 4  # sub-pixel bits for OpenCV drawing


@attrs.frozen
class Sprites:
    """Things to draw now: centres (azimuth, elevation), sizes (degrees), RGB colours, kinds."""

    az: np.ndarray
    el: np.ndarray
    width_deg: np.ndarray
    height_deg: np.ndarray
    colour: np.ndarray  # (n, 3) uint8
    kind: tuple[str, ...]  # "car", "bird" or "cloud"


def _smoothstep(lo: float, hi: float, x: float) -> float:
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


class SceneDynamics:
    """The moving part of a scene, for one seed. `road` None (a user panorama): no cars."""

    def __init__(self, seed: int, road: Road | None, *, start_hour: float = 10.0,
                 camera_height_m: float = CAMERA_HEIGHT_M) -> None:
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xD1CE])
        self.road = road
        self.start_hour = start_hour
        self.camera_height_m = camera_height_m
        n_cars = 14
        self._car_phase = rng.uniform(0, _ROAD_SPAN_M, n_cars)
        self._car_speed = rng.uniform(8, 20, n_cars) * rng.choice([-1.0, 1.0], n_cars)
        self._car_lane = np.where(self._car_speed > 0, -2.0, 2.0)  # metres, keep right
        self._car_colour = rng.integers(20, 235, (n_cars, 3))
        self._flock_az0 = rng.uniform(0, 360)
        self._flock_period = rng.uniform(2.0, 4.0) * 3600.0  # one lap of the sky
        self._birds = rng.normal(0, 1.2, (6, 2))  # offsets in degrees within the flock
        self._cloud_az0 = rng.uniform(0, 360, 3)
        self._cloud_el = rng.uniform(10, 28, 3)
        self._cloud_size = rng.uniform(6, 14, 3)
        self._cloud_period = rng.uniform(6, 12) * 3600.0
        self._flap_phase = np.arange(len(self._birds), dtype=np.float64)
        # What does not change: counts, kinds, colours, and the sizes of birds and clouds.
        self._n_cars = n_cars if road is not None else 0
        n_birds, n_clouds = len(self._birds), len(self._cloud_el)
        self._count = self._n_cars + n_birds + n_clouds
        self._kind = ("car",) * self._n_cars + ("bird",) * n_birds + ("cloud",) * n_clouds
        self._colour = np.concatenate([self._car_colour[:self._n_cars], np.full((n_birds, 3), 30),
                                       np.full((n_clouds, 3), 244)]).astype(np.uint8)
        self._width = np.concatenate([np.zeros(self._n_cars), np.full(n_birds, 0.35), self._cloud_size])
        self._height = np.concatenate([np.zeros(self._n_cars), np.full(n_birds, 0.12),
                                       self._cloud_size * 0.3])

    def hour(self, sim_time: float) -> float:
        return (self.start_hour + sim_time / 3600.0) % 24.0

    def light_gain(self, sim_time: float) -> np.ndarray:
        """Per-channel RGB gain: dim and blue at night, warm at dawn and dusk, neutral at noon."""
        sun = math.sin(2 * math.pi * (self.hour(sim_time) - 6.0) / 24.0)  # 1 at noon, -1 at midnight
        day = _smoothstep(-0.15, 0.35, sun)
        warm = math.exp(-((sun - 0.05) / 0.18) ** 2)
        level = 0.22 + 0.78 * day
        # Passing overcast: a slow, deterministic wobble of a few per cent.
        level *= 0.93 + 0.07 * math.cos(2 * math.pi * sim_time / (5.3 * 3600.0))
        tint = np.array([1.0 + 0.22 * warm - 0.10 * (1 - day),
                         1.0 + 0.02 * warm - 0.04 * (1 - day),
                         1.0 - 0.22 * warm + 0.12 * (1 - day)])
        return level * tint

    def sprites(self, sim_time: float) -> Sprites:
        """Where every moving thing is at sim_time."""
        t = float(sim_time)
        az, el = np.empty(self._count), np.empty(self._count)
        width, height = self._width.copy(), self._height.copy()
        cars = self._n_cars
        if cars:
            along = (self._car_phase + self._car_speed * t) % _ROAD_SPAN_M - _ROAD_SPAN_M / 2
            across = self.road.distance_m + self._car_lane
            dist = np.hypot(along, across)
            az[:cars] = self.road.az_deg + np.degrees(np.arctan2(along, across))
            ground = np.degrees(np.arctan2(self.camera_height_m, dist))
            roof = np.degrees(np.arctan2(self.camera_height_m - 1.5, dist))
            el[:cars] = -(ground + roof) / 2
            cos_view = across / dist  # the road crosses the line of sight at this angle
            width[:cars] = np.degrees((4.5 * cos_view + 1.8 * np.sqrt(1 - cos_view ** 2)) / dist)
            height[:cars] = ground - roof
        birds = slice(cars, cars + len(self._birds))
        lap = 2 * math.pi * t / self._flock_period
        az[birds] = self._flock_az0 + math.degrees(lap) + self._birds[:, 0]
        el[birds] = (9.0 + 4.0 * math.sin(lap * 3.0) + self._birds[:, 1] * 0.5
                     + 0.1 * np.sin(t / 7.0 + self._flap_phase))
        clouds = slice(birds.stop, None)
        az[clouds] = self._cloud_az0 + 360.0 * t / self._cloud_period
        el[clouds] = self._cloud_el
        return Sprites(az % 360.0, el, width, height, self._colour, self._kind)

    def apply(self, image: np.ndarray, view: View, sim_time: float) -> np.ndarray:
        """Draw the moving things visible in `view` onto its rendered image, then light it."""
        draw_sprites(image, view, self.sprites(sim_time))
        return cv2.transform(image, np.diag(self.light_gain(sim_time)))


def draw_sprites(image: np.ndarray, view: View, sprites: Sprites) -> None:
    """Project each sprite's centre into the view and draw it at its angular size (in place)."""
    x, y, front = view.project(sprites.az, sprites.el)
    px_per_deg = view.focal * math.pi / 180.0
    half_w = sprites.width_deg * px_per_deg / 2
    half_h = sprites.height_deg * px_per_deg / 2
    h, w = image.shape[:2]
    visible = (front & (x + half_w > -1) & (x - half_w < w) & (y + half_h > -1) & (y - half_h < h)
               & (np.abs(x) < 1e5) & (np.abs(y) < 1e5))
    scale = 1 << _SHIFT
    for i in np.flatnonzero(visible):
        colour = tuple(int(c) for c in sprites.colour[i])
        cx, cy = int(x[i] * scale), int(y[i] * scale)
        hw = max(int(half_w[i] * scale), scale // 2)
        hh = max(int(half_h[i] * scale), scale // 2)
        kind = sprites.kind[i]
        if kind == "car":
            cv2.rectangle(image, (cx - hw, cy - hh), (cx + hw, cy + hh), colour, -1, cv2.LINE_8, _SHIFT)
            glass = (cx - hw * 2 // 3, cy - hh), (cx + hw * 2 // 3, cy - hh // 3)
            cv2.rectangle(image, glass[0], glass[1], (40, 50, 60), -1, cv2.LINE_8, _SHIFT)
        elif kind == "bird":
            thick = max(1, int(hh / scale))
            tip = (cx, cy + hh)
            cv2.line(image, (cx - hw, cy - hh), tip, colour, thick, cv2.LINE_AA, _SHIFT)
            cv2.line(image, tip, (cx + hw, cy - hh), colour, thick, cv2.LINE_AA, _SHIFT)
        else:
            _cloud(image, cx, cy, hw, hh, colour)


def _cloud(image: np.ndarray, cx: int, cy: int, hw: int, hh: int, colour: tuple[int, ...]) -> None:
    """A soft puff: three overlapping ellipses blended at 70% inside their bounding box only."""
    scale = 1 << _SHIFT
    h, w = image.shape[:2]
    x0, x1 = max((cx - hw) // scale - 1, 0), min((cx + hw) // scale + 2, w)
    y0, y1 = max((cy - hh * 2) // scale - 1, 0), min((cy + hh) // scale + 2, h)
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    layer = roi.copy()
    ox, oy = x0 * scale, y0 * scale
    for dx, dy, sx, sy in ((0, 0, 1.0, 1.0), (-hw // 3, -hh // 2, 0.55, 1.1), (hw // 4, -hh // 3, 0.6, 1.0)):
        cv2.ellipse(layer, (cx + dx - ox, cy + dy - oy), (int(hw * sx), int(hh * sy)), 0, 0, 360,
                    colour, -1, cv2.LINE_AA, _SHIFT)
    cv2.addWeighted(layer, 0.7, roi, 0.3, 0, dst=roi)
