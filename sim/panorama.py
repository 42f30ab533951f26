"""Equirectangular panorama → pinhole view at any pan/tilt/zoom, thousands of frames per second.

Conventions (pixel areas, so that every mip level maps the same way):
- column j of a W-wide panorama covers azimuth [j, j+1)·360/W, azimuth growing to the right;
- row i of an H-high panorama covers elevation 90 − [i, i+1)·180/H (row 0 touches the zenith);
- a view pointing at (pan, tilt) has its optical axis at azimuth=pan, elevation=tilt; image x
  grows with azimuth, image y grows downward; tan(hfov/2) = tan(hfov_deg/2) / zoom.

Speed comes from three things: the ray → (azimuth, elevation) mapping is computed on a coarse grid
of nodes and upsampled linearly (exact per-pixel only in the few cells next to a pole or the
longitude cut behind it); the map depends on pan only through an offset; and the panorama is
sampled from the mip level whose texel matches the view's pixel, so zoomed-out views do not alias.
"""

from __future__ import annotations

import functools
import math

import attrs
import cv2
import numpy as np

from ptzjepa.camera.base import finite

GRID_STEP = 8  # pixels between coarse-grid nodes
_PAD = 2  # rows added above and below each level: the continuation over the pole
_MID_ERROR_PX = 0.25  # a cell whose middle is off by more than this is computed exactly


@attrs.frozen
class View:
    """Where a pinhole camera points and how its image is laid out. Angles in degrees."""

    pan: float = attrs.field(validator=finite)
    tilt: float = attrs.field(validator=finite)
    zoom: float = attrs.field(validator=finite)
    width: int = attrs.field()
    height: int = attrs.field()
    hfov_deg: float = attrs.field(default=60.0, validator=finite)

    def __attrs_post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"view {name}: expected an integer >= 1, got {value!r}")
        if not 0.0 < self.hfov_deg < 180.0:
            raise ValueError(f"view hfov_deg: expected 0 < hfov_deg < 180, got {self.hfov_deg}")
        if self.zoom <= 0.0:
            raise ValueError(f"view zoom: expected a factor > 0, got {self.zoom}")

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return (self.width / 2.0) * self.zoom / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def centre(self) -> tuple[float, float]:
        """The optical axis in pixel-index coordinates (pixel (0, 0) has its centre at 0, 0)."""
        return (self.width / 2.0 - 0.5, self.height / 2.0 - 0.5)

    def angles(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact azimuth (unwrapped around pan) and elevation, degrees, of the rays through (x, y)."""
        cx, cy = self.centre
        f = self.focal
        rel, el = _ray_angles((np.asarray(x, np.float64) - cx) / f,
                              (np.asarray(y, np.float64) - cy) / f, math.radians(self.tilt))
        return self.forward_az + np.degrees(rel), np.degrees(el)

    @property
    def forward_az(self) -> float:
        """Azimuth of the optical axis: pan, or pan + 180 once tilted past a pole (upside down)."""
        return self.pan + (180.0 if math.cos(math.radians(self.tilt)) < 0.0 else 0.0)

    def project(self, az_deg: np.ndarray, el_deg: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates (x, y) of directions, and whether each lies in front of the camera."""
        az = np.radians(np.asarray(az_deg, np.float64) - self.pan)
        el = np.radians(np.asarray(el_deg, np.float64))
        t = math.radians(self.tilt)
        # Direction in a frame turned by -pan: x right, y up, z toward azimuth=pan on the horizon.
        dx, dy, dz = np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)
        right = dx
        up = -math.sin(t) * dz + math.cos(t) * dy
        fwd = math.cos(t) * dz + math.sin(t) * dy
        front = fwd > 1e-9
        safe = np.where(front, fwd, 1.0)
        cx, cy = self.centre
        f = self.focal
        return cx + f * right / safe, cy - f * up / safe, front

    def pole_row(self) -> float | None:
        """Image row of the pole in front of the camera (on the centre column), if one is."""
        t = math.radians(self.tilt)
        if abs(math.sin(t)) < 1e-12:
            return None
        return self.centre[1] - self.focal * math.cos(t) / math.sin(t)


def _ray_angles(a: np.ndarray, b: np.ndarray, tilt_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth relative to the optical axis's azimuth, and elevation (radians), of the ray through
    normalised image point (a right, b down): forward + a·right − b·up in a frame turned by -pan.
    Measuring azimuth from the axis keeps it continuous everywhere but on the cut behind a pole."""
    st, ct = math.sin(tilt_rad), math.cos(tilt_rad)
    z = ct + b * st
    y = st - b * ct
    rel = np.arctan2(-a, -z) if ct < 0.0 else np.arctan2(a, z)
    return rel, np.arctan2(y, np.hypot(a, z))


@functools.lru_cache(maxsize=64)
def _grid(width: int, height: int, step: int) -> _Grid:
    return _Grid(width, height, step)


class _Grid:
    """Node positions of the coarse grid and the pixel → cell lookup for one image size.

    Node k sits at pixel coordinate (k − ½)·step − ½, which is exactly where cv2.resize's linear
    upsampling by `step` puts source sample k once `step` output pixels are cropped off each side;
    one node lies beyond each image border so that the border pixels are interpolated, never
    clamped.
    """

    def __init__(self, width: int, height: int, step: int) -> None:
        self.step = step
        self.nx = math.ceil((width - 0.5) / step + 1.5)
        self.ny = math.ceil((height - 0.5) / step + 1.5)
        self.node_x = (np.arange(self.nx) - 0.5) * step - 0.5
        self.node_y = (np.arange(self.ny) - 0.5) * step - 0.5
        self.dx = self.node_x - (width / 2.0 - 0.5)
        self.dy = (self.node_y - (height / 2.0 - 0.5))[:, None]
        self.cell_x = (np.arange(width) + step // 2) // step
        self.cell_y = (np.arange(height) + step // 2) // step
        self.width, self.height = width, height

    def upsample(self, nodes: np.ndarray) -> np.ndarray:
        """(ny, nx, C) node values → (height, width, C) per-pixel values, linearly interpolated."""
        s = self.step
        big = cv2.resize(nodes, (self.nx * s, self.ny * s), interpolation=cv2.INTER_LINEAR)
        if big.ndim == 2:
            big = big[:, :, None]
        return big[s:s + self.height, s:s + self.width]


def _bad_cells(view: View, grid: _Grid, rel: np.ndarray, el: np.ndarray) -> np.ndarray | None:
    """Cells where linear interpolation is wrong: on the longitude cut behind a pole, or where
    longitude curves too fast near one. None when the view is nowhere near a pole.

    Longitude is smooth away from the poles, and relative azimuth cannot wrap unless a pole lies
    on the grid, so the per-cell check (exact angles at each cell's middle against the corners'
    mean, turned into pixels) runs only when a pole is within an image size of the grid."""
    pole_y = view.pole_row()
    if pole_y is None:
        return None
    s = grid.step
    cx = view.centre[0]
    margin = max(grid.width, grid.height) + 2 * s
    if not (grid.node_y[0] - margin <= pole_y <= grid.node_y[-1] + margin
            and grid.node_x[0] - margin <= cx <= grid.node_x[-1] + margin):
        return None
    corners = np.stack([rel[:-1, :-1], rel[:-1, 1:], rel[1:, :-1], rel[1:, 1:]])
    bad = corners.max(axis=0) - corners.min(axis=0) > math.pi
    near = np.hypot(grid.node_x[None, :] - cx, grid.node_y[:, None] - pole_y) < 2 * s
    bad |= near[:-1, :-1] | near[:-1, 1:] | near[1:, :-1] | near[1:, 1:]
    f = view.focal
    a = (grid.dx[None, :-1] + s / 2) / f
    b = (grid.dy[:-1] + s / 2) / f
    rel_mid, el_mid = _ray_angles(a, b, math.radians(view.tilt))
    d_rel = rel_mid - corners.mean(axis=0)
    d_el = el_mid - (el[:-1, :-1] + el[:-1, 1:] + el[1:, :-1] + el[1:, 1:]) / 4
    # A pinhole pixel spans at most 1/(f·(1 + a² + b²)) radians there.
    err_px = np.hypot(d_rel * np.cos(el_mid), d_el) * f * (1.0 + a * a + b * b)
    bad |= err_px > _MID_ERROR_PX
    return bad if bad.any() else None


def _node_angles(view: View, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    f = view.focal
    return _ray_angles(grid.dx[None, :] / f, grid.dy / f, math.radians(view.tilt))


def _pixel_values(view: View, grid: _Grid, affine: tuple[float, float, float, float],
                  dtype: type) -> np.ndarray:
    """Per-pixel (u, v) = (a0 + a1·rel_az, b0 + b1·elevation), rel_az and elevation in radians:
    built on the coarse grid, upsampled, then patched exactly in the cells that need it."""
    a0, a1, b0, b1 = affine
    rel, el = _node_angles(view, grid)
    nodes = np.empty((grid.ny, grid.nx, 2), dtype)
    nodes[..., 0] = a0 + a1 * rel
    nodes[..., 1] = b0 + b1 * el
    values = grid.upsample(nodes)
    bad = _bad_cells(view, grid, rel, el)
    if bad is not None:
        values = np.ascontiguousarray(values)
        ys, xs = np.nonzero(bad[grid.cell_y][:, grid.cell_x])
        cx, cy = view.centre
        f = view.focal
        rel_px, el_px = _ray_angles((xs - cx) / f, (ys - cy) / f, math.radians(view.tilt))
        values[ys, xs, 0] = a0 + a1 * rel_px
        values[ys, xs, 1] = b0 + b1 * el_px
    return values


class PanoramaRenderer:
    """Renders perspective views of one equirectangular RGB panorama."""

    def __init__(self, panorama: np.ndarray, *, grid_step: int = GRID_STEP,
                 min_level_width: int = 64) -> None:
        if not isinstance(panorama, np.ndarray) or panorama.dtype != np.uint8 \
                or panorama.ndim != 3 or panorama.shape[2] != 3:
            got = f"{panorama.dtype} {panorama.shape}" if isinstance(panorama, np.ndarray) \
                else type(panorama).__name__
            raise ValueError(f"panorama: expected a uint8 array (H, W, 3), got {got}")
        if panorama.shape[0] < 2 or panorama.shape[1] < 4:
            raise ValueError(f"panorama: expected at least 2 rows and 4 columns, got {panorama.shape}")
        if grid_step < 2 or grid_step % 2:
            raise ValueError(f"grid_step: expected an even integer >= 2, got {grid_step}")
        self.grid_step = grid_step
        self.height, self.width = panorama.shape[:2]
        levels = [np.ascontiguousarray(panorama)]
        while levels[-1].shape[1] // 2 >= min_level_width and levels[-1].shape[0] >= 4:
            top = levels[-1]
            levels.append(cv2.resize(top, (top.shape[1] // 2, top.shape[0] // 2),
                                     interpolation=cv2.INTER_AREA))
        self._levels = [_pad_poles(level) for level in levels]

    @property
    def level_widths(self) -> list[int]:
        return [level.shape[1] for level in self._levels]

    def step_for(self, view: View) -> int:
        """Coarse-grid step: the view's curvature grows as its focal length shrinks, so tiny or
        very wide views get a finer grid (keeps the sampling error under half a pixel)."""
        step = self.grid_step
        while step > 2 and view.focal < 6 * step:
            step //= 2
        return step

    def level_for(self, view: View) -> int:
        """The mip level whose texel is closest (in log scale) to the view's centre pixel."""
        texels_per_pixel = self.width / (2.0 * math.pi * view.focal)
        if texels_per_pixel <= 1.0:
            return 0
        return min(int(math.floor(math.log2(texels_per_pixel) + 0.5)), len(self._levels) - 1)

    def render(self, pan: float, tilt: float, zoom: float, width: int, height: int,
               hfov_deg: float = 60.0) -> np.ndarray:
        """The (height, width, 3) uint8 view at azimuth=pan, elevation=tilt, zoom factor."""
        return self.render_view(View(pan, tilt, zoom, width, height, hfov_deg))

    def render_view(self, view: View) -> np.ndarray:
        level = self.level_for(view)
        image = self._levels[level]
        w_l = image.shape[1]
        h_l = image.shape[0] - 2 * _PAD
        kx = w_l / (2.0 * math.pi)
        ky = h_l / math.pi
        pan = view.forward_az % 360.0
        affine = (pan * w_l / 360.0 - 0.5, kx, 0.5 * h_l - 0.5 + _PAD, -ky)
        grid = _grid(view.width, view.height, self.step_for(view))
        coords = _pixel_values(view, grid, affine, np.float32)
        fixed, frac = cv2.convertMaps(coords, None, cv2.CV_16SC2)
        return cv2.remap(image, fixed, frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)

    def angle_maps(self, view: View, *, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Azimuth and elevation (degrees) that each view pixel samples: through the coarse grid
        exactly as render does, or computed exactly per pixel (to measure the grid's error)."""
        if exact:
            ys, xs = np.mgrid[0:view.height, 0:view.width]
            return view.angles(xs, ys)
        grid = _grid(view.width, view.height, self.step_for(view))
        values = _pixel_values(view, grid, (view.forward_az, math.degrees(1.0), 0.0, math.degrees(1.0)),
                               np.float64)
        return values[..., 0], values[..., 1]


def _pad_poles(level: np.ndarray) -> np.ndarray:
    """Add _PAD rows above and below: past a pole the sphere continues half a turn around."""
    half = level.shape[1] // 2
    top = np.roll(level[:_PAD][::-1], half, axis=1)
    bottom = np.roll(level[-_PAD:][::-1], half, axis=1)
    return np.ascontiguousarray(np.concatenate([top, level, bottom], axis=0))
