"""SimCamera: the shared camera suite, plus what only the simulator promises (clock, noise, scene)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from ptzjepa.camera.base import PTZ, AxisRange, CameraError, PTZCamera, PTZLimits
from sim.camera import SimCamera
from sim.dynamics import SceneDynamics
from sim.panorama import PanoramaRenderer, View
from sim.scenes import make_scene
from tests.camera_conformance import CameraConformance

SMALL = dict(width=64, height=48, scene_width=1024)


class TestSimConformance(CameraConformance):
    def make_camera(self, seed: int) -> PTZCamera:
        return SimCamera(seed=seed, **SMALL)


class TestSimConformanceAxisLikeLimits(CameraConformance):
    """The same suite on a head whose pan runs -180..180 and whose tilt stops at 0 (hangs down)."""

    def make_camera(self, seed: int) -> PTZCamera:
        limits = PTZLimits(pan=AxisRange(-180.0, 180.0, wraps=True), tilt=AxisRange(-90.0, 0.0),
                           zoom=AxisRange(1.0, 18.0))
        return SimCamera(seed=seed, limits=limits, **SMALL)


def test_is_a_ptz_camera_and_starts_where_told():
    cam = SimCamera(start=PTZ(400.0, 100.0, 0.5), **SMALL)
    assert isinstance(cam, PTZCamera)
    assert cam.position() == PTZ(40.0, 90.0, 1.0)  # fitted: pan wraps, tilt and zoom clamp
    assert cam.name == "sim" and cam.limits == PTZLimits()


def test_sim_time_advances_per_move_not_per_grab():
    cam = SimCamera(seconds_per_step=30.0, **SMALL)
    assert cam.sim_time == 0.0
    cam.grab()
    assert cam.sim_time == 0.0
    cam.move_to(PTZ(10, 0, 1))
    cam.move_by(PTZ(1, 0, 0))
    assert cam.sim_time == 60.0


def test_move_latency_takes_real_time():
    cam = SimCamera(move_latency_s=0.05, **SMALL)
    t0 = time.perf_counter()
    cam.move_by(PTZ(1, 0, 0))
    assert time.perf_counter() - t0 >= 0.05


def test_noise_is_gaussian_and_deterministic_per_seed():
    clean = SimCamera(seed=3, **SMALL).grab().image.astype(np.float64)
    a, b = SimCamera(seed=3, noise_std=8.0, **SMALL), SimCamera(seed=3, noise_std=8.0, **SMALL)
    first, again = a.grab().image, b.grab().image
    assert np.array_equal(first, again)
    assert not np.array_equal(first, a.grab().image)  # a new draw for every grab
    residual = first.astype(np.float64) - clean
    unclipped = (clean > 30) & (clean < 225)
    assert 7.0 < residual[unclipped].std() < 9.0
    assert abs(residual[unclipped].mean()) < 0.5


def test_close_is_idempotent_and_later_calls_fail():
    cam = SimCamera(**SMALL)
    cam.close()
    cam.close()
    for call in (cam.grab, cam.position, lambda: cam.move_to(PTZ(0, 0, 1)),
                 lambda: cam.move_by(PTZ(1, 0, 0))):
        with pytest.raises(CameraError, match="closed"):
            call()


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=0, height=48), "width: expected an integer >= 1"),
    (dict(width=64, height=2.5), "height: expected an integer >= 1"),
    (dict(width=64, height=48, hfov_deg=180.0), "hfov_deg: expected 0 < hfov_deg < 180"),
    (dict(width=64, height=48, noise_std=-1.0), "noise_std: expected a number >= 0"),
    (dict(width=64, height=48, panorama=np.zeros((10, 20), np.uint8)), "panorama: expected a uint8"),
])
def test_bad_arguments_say_which(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimCamera(**kwargs)


def test_non_finite_move_is_refused():
    cam = SimCamera(**SMALL)
    with pytest.raises(ValueError, match="tilt must be a finite number"):
        cam.move_to(PTZ(0.0, math.nan, 1.0))
    assert cam.position() == PTZ(0, 0, 1)


def test_user_panorama_is_what_the_camera_sees():
    pano = np.zeros((128, 256, 3), np.uint8)
    pano[:] = (200, 60, 20)
    cam = SimCamera(width=32, height=24, panorama=pano)
    cam.move_to(PTZ(90, -30, 1))  # below the horizon: no birds or clouds there
    image = cam.grab().image.reshape(-1, 3)
    assert np.abs(np.median(image, axis=0) - (200, 60, 20)).max() <= 3


def test_scene_is_deterministic_and_seed_dependent():
    a, b, c = make_scene(5, 256), make_scene(5, 256), make_scene(6, 256)
    assert a.panorama.shape == (128, 256, 3) and a.panorama.dtype == np.uint8
    assert np.array_equal(a.panorama, b.panorama)
    assert np.abs(a.panorama.astype(int) - c.panorama.astype(int)).mean() > 5
    assert not a.panorama.flags.writeable
    assert make_scene(0, 1000).panorama.shape == (500, 1000, 3)
    with pytest.raises(ValueError, match="scene width: expected an integer >= 64"):
        make_scene(0, 10)


def test_light_follows_a_day_cycle():
    dyn = SceneDynamics(0, None, start_hour=10.0)
    noon, night, dusk = dyn.light_gain(2 * 3600.0), dyn.light_gain(14 * 3600.0), dyn.light_gain(7.5 * 3600)
    assert noon.mean() > 0.8 and night.mean() < 0.35
    assert dusk[0] > dusk[2] + 0.1  # warm at sunset
    assert night[2] > 1.15 * night[0]  # blue at night
    assert dyn.hour(0.0) == 10.0 and dyn.hour(86400.0 * 3 + 1800.0) == 10.5


def test_the_same_view_changes_over_simulated_time():
    cam = SimCamera(seconds_per_step=3 * 3600.0, **SMALL)
    means = []
    for _ in range(4):
        cam.move_to(PTZ(120, 5, 1))
        means.append(cam.grab().image.mean())
    assert max(means) - min(means) > 40  # day to night and back


def test_cars_move_along_the_road_and_are_drawn():
    scene = make_scene(0, 1024)
    dyn = SceneDynamics(0, scene.road)
    now, later = dyn.sprites(0.0), dyn.sprites(60.0)
    cars = [i for i, k in enumerate(now.kind) if k == "car"]
    assert len(cars) >= 8
    assert np.abs(now.az[cars] - later.az[cars]).max() > 1.0  # they drive
    assert np.all(now.el[cars] < 0)  # on the ground
    # Point at the nearest car, zoomed so that it is about 40 pixels long: drawn over the road.
    i = cars[int(np.argmax(now.width_deg[cars]))]
    view = View(float(now.az[i]), float(now.el[i]), 1.0, 64, 64)
    zoom = min(40.0 / (now.width_deg[i] * view.focal * math.pi / 180.0), 32.0)
    cam = SimCamera(width=64, height=64, scene_width=1024, seconds_per_step=0.0)
    cam.move_to(PTZ(float(now.az[i]), float(now.el[i]), zoom))
    bare = PanoramaRenderer(scene.panorama).render_view(
        View(float(now.az[i]), float(now.el[i]), zoom, 64, 64))
    drawn = cam.grab().image
    centre = (slice(28, 36), slice(20, 44))
    assert np.abs(drawn[centre].astype(int) - bare[centre].astype(int)).mean() > 10


def test_sprites_land_where_the_view_projects_them():
    from sim.dynamics import Sprites, draw_sprites

    view = View(30.0, 10.0, 2.0, 120, 90)
    sprites = Sprites(az=np.array([30.0 + 5.0]), el=np.array([10.0]), width_deg=np.array([2.0]),
                      height_deg=np.array([1.0]), colour=np.array([[255, 0, 0]], np.uint8),
                      kind=("car",))
    image = np.zeros((90, 120, 3), np.uint8)
    draw_sprites(image, view, sprites)
    ys, xs = np.nonzero(image[..., 0] == 255)
    x, y, _ = view.project(np.array([35.0]), np.array([10.0]))
    assert len(xs) > 10
    assert abs(xs.mean() - x[0]) < 1.0 and abs(ys.max() - (y[0] + 1.0 * view.focal * math.pi / 360)) < 1.5
    assert xs.mean() > 60  # 5 degrees right of the centre: right of the image centre
