"""The renderer's geometry: where things land in the view, the seam, the poles, the grid error."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from sim.camera import SimCamera
from sim.panorama import PanoramaRenderer, View

PANO_W = 1024


def _directions(w: int) -> np.ndarray:
    """Unit vectors (x right at azimuth 90, y up, z toward azimuth 0) of every panorama pixel."""
    h = w // 2
    az = np.radians((np.arange(w) + 0.5) * 360.0 / w)[None, :]
    el = np.radians(90.0 - (np.arange(h) + 0.5) * 180.0 / h)[:, None]
    return np.stack(np.broadcast_arrays(np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)), -1)


def _unit(az_deg: float, el_deg: float) -> np.ndarray:
    az, el = math.radians(az_deg), math.radians(el_deg)
    return np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])


def marker_panorama(az_deg: float, el_deg: float, radius_deg: float = 1.5) -> np.ndarray:
    """Grey panorama with one red disc (round on the sphere) centred at (az, el)."""
    dirs = _directions(PANO_W)
    pano = np.full(dirs.shape, 90, np.uint8)
    pano[dirs @ _unit(az_deg, el_deg) > math.cos(math.radians(radius_deg))] = (255, 0, 0)
    return pano


def red_centroid(image: np.ndarray) -> tuple[float, float]:
    red = (image[..., 0].astype(int) - image[..., 1].astype(int)).clip(0)
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    total = red.sum()
    assert total > 0, "the marker is not in the view"
    return float((xs * red).sum() / total), float((ys * red).sum() / total)


@pytest.mark.parametrize("az, el", [(10.0, 0.0), (359.6, 5.0), (0.2, -12.0), (180.0, 60.0),
                                    (77.0, 85.0), (200.0, 89.5), (300.0, -88.0)])
def test_marker_appears_at_the_centre_when_pointed_at(az, el):
    renderer = PanoramaRenderer(marker_panorama(az, el))
    image = renderer.render(az, el, 4.0, 96, 72)
    x, y = red_centroid(image)
    assert abs(x - 47.5) < 0.5 and abs(y - 35.5) < 0.5, (x, y)


def test_marker_right_of_centre_lands_at_the_pinhole_pixel_and_zoom_doubles_the_offset():
    renderer = PanoramaRenderer(marker_panorama(40.0, 0.0, radius_deg=0.8))
    w, h, hfov = 160, 120, 60.0
    offsets = []
    for zoom in (1.0, 2.0):
        view = View(30.0, 0.0, zoom, w, h, hfov)
        x, y = red_centroid(renderer.render_view(view))
        expected = view.focal * math.tan(math.radians(10.0))
        assert abs((x - (w / 2 - 0.5)) - expected) < 0.6, (zoom, x, expected)
        assert abs(y - (h / 2 - 0.5)) < 0.5
        offsets.append(x - (w / 2 - 0.5))
    assert offsets[1] / offsets[0] == pytest.approx(2.0, abs=0.02)


def test_marker_above_centre_when_camera_tilts_below_it():
    renderer = PanoramaRenderer(marker_panorama(120.0, 20.0))
    view = View(120.0, 12.0, 1.5, 128, 96)
    x, y = red_centroid(renderer.render_view(view))
    assert abs(x - 63.5) < 0.5
    assert abs((47.5 - y) - view.focal * math.tan(math.radians(8.0))) < 0.6


def smooth_sphere_panorama(w: int = PANO_W) -> np.ndarray:
    """Colour = a smooth function of the 3-D direction: continuous across the seam and the poles."""
    return np.round(127.5 + 120.0 * _directions(w)).astype(np.uint8)


def expected_view(view: View) -> np.ndarray:
    ys, xs = np.mgrid[0:view.height, 0:view.width]
    az, el = view.angles(xs, ys)
    az, el = np.radians(az), np.radians(el)
    dirs = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], -1)
    return 127.5 + 120.0 * dirs


@pytest.mark.parametrize("pan, tilt, zoom", [(0.0, 0.0, 1.0), (359.99, 10.0, 2.0), (180.0, -5.0, 1.0),
                                             (33.0, 90.0, 1.0), (250.0, 89.7, 1.5), (10.0, 70.0, 1.0),
                                             (95.0, -90.0, 1.0), (0.0, 75.0, 8.0)])
def test_views_across_the_seam_and_over_the_poles_are_right(pan, tilt, zoom):
    renderer = PanoramaRenderer(smooth_sphere_panorama())
    view = View(pan, tilt, zoom, 160, 120)
    error = np.abs(renderer.render_view(view).astype(np.float64) - expected_view(view))
    where = np.unravel_index(error.argmax(), error.shape)
    assert error.max() < 4.0, f"max error {error.max():.1f} at {where}"


@pytest.mark.parametrize("width, height", [(64, 64), (64, 48), (224, 224), (640, 360)])
def test_coarse_grid_error_stays_under_half_a_pixel(width, height):
    renderer = PanoramaRenderer(np.zeros((64, 128, 3), np.uint8))
    ys, xs = np.mgrid[0:height, 0:width]
    worst = 0.0
    for i, tilt in enumerate((-90.0, -20.0, 0.0, 30.0, 60.0, 75.0, 85.0, 89.0, 89.99, 90.0)):
        for zoom in (1.0, 1.7, 32.0):
            view = View((359.9, 0.0, 123.4)[i % 3], tilt, zoom, width, height, 60.0)
            az, el = renderer.angle_maps(view)
            x, y, front = view.project(az, el)
            assert front.all()
            worst = max(worst, float(np.hypot(x - xs, y - ys).max()))
    assert worst < 0.5, f"coarse grid is off by {worst:.3f} px"


def test_exact_angle_maps_are_exact():
    renderer = PanoramaRenderer(np.zeros((64, 128, 3), np.uint8))
    view = View(10.0, 89.0, 1.0, 32, 24)
    az, el = renderer.angle_maps(view, exact=True)
    x, y, _ = view.project(az, el)
    ys, xs = np.mgrid[0:24, 0:32]
    assert np.hypot(x - xs, y - ys).max() < 1e-6


def test_zoomed_out_views_sample_a_coarser_level_and_do_not_alias():
    stripes = np.zeros((1024, 2048, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: pure aliasing unless filtered
    renderer = PanoramaRenderer(stripes)
    wide = View(0.0, 0.0, 1.0, 64, 48)
    assert renderer.level_for(wide) > 0
    image = renderer.render_view(wide)
    assert abs(image.mean() - 127.5) < 3 and image.std() < 6
    close = View(0.0, 0.0, 32.0, 640, 360)
    assert renderer.level_for(close) == 0


def test_renderer_rejects_what_is_not_a_panorama():
    with pytest.raises(ValueError, match=r"panorama: expected a uint8 array \(H, W, 3\), got float32"):
        PanoramaRenderer(np.zeros((10, 20, 3), np.float32))
    with pytest.raises(ValueError, match="view zoom: expected a factor > 0"):
        View(0.0, 0.0, 0.0, 10, 10)
    with pytest.raises(ValueError, match="view width: expected an integer >= 1"):
        View(0.0, 0.0, 1.0, 0, 10)


def test_panorama_loads_from_a_png_as_rgb(tmp_path):
    rgb = marker_panorama(45.0, 10.0)[::4, ::4].copy()
    path = tmp_path / "pano.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    loaded = SimCamera.load_panorama(path)
    assert np.array_equal(loaded, rgb)
    cam = SimCamera(width=32, height=24, panorama=loaded)
    assert cam.grab().image.shape == (24, 32, 3)


def test_bad_panorama_files_give_one_line_errors(tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    with pytest.raises(ValueError, match=r"panorama .*notes\.png: not a readable image"):
        SimCamera.load_panorama(not_image)
    with pytest.raises(ValueError, match=r"panorama .*missing\.jpg: no such file"):
        SimCamera.load_panorama(tmp_path / "missing.jpg")
