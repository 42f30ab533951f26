"""The built-in world: a landscape panorama made from a seed, no download.

Sky with sun and clouds, two ridges of hills, farm fields seen in perspective from a mast, a road,
a lake, buildings with windows and trees at varied azimuths and distances — so that every direction
looks different. Everything is drawn with vectorised numpy and OpenCV (4096 wide in about a second
on one core). The panorama is static; what changes with simulated time lives in sim/dynamics.py.
"""

from __future__ import annotations

import math

import attrs
import cv2
import numpy as np

CAMERA_HEIGHT_M = 12.0  # the mast: sets how the ground and everything on it is seen
_GROUND_HALF_M = 1600.0  # the ground texture covers ±this around the mast


@attrs.frozen
class Road:
    """A straight road: its closest point lies `distance_m` away at azimuth `az_deg`."""

    az_deg: float
    distance_m: float
    width_m: float = 8.0


@attrs.frozen(eq=False)
class Scene:
    """A generated panorama (read-only, shared) and the facts dynamics need to move things on it."""

    panorama: np.ndarray
    seed: int
    road: Road
    sun_az_deg: float
    sun_el_deg: float
    camera_height_m: float = CAMERA_HEIGHT_M


def make_scene(seed: int = 0, width: int = 4096) -> Scene:
    """The scene for a seed at a panorama width (height = width // 2); the same for the same
    arguments. Its panorama is read-only, so that callers may share it."""
    if not isinstance(width, (int, np.integer)) or width < 64:
        raise ValueError(f"scene width: expected an integer >= 64, got {width!r}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5CE7E])
    inner = -(-width // 256) * 256  # noise grids need a width divisible by 256
    road = Road(az_deg=float(rng.uniform(0, 360)), distance_m=float(rng.uniform(70, 140)))
    sun_az, sun_el = float(rng.uniform(0, 360)), float(rng.uniform(18, 48))
    img = _paint(rng, inner, road, sun_az, sun_el)
    if inner != width:
        img = cv2.resize(img, (width, width // 2), interpolation=cv2.INTER_AREA)
    img.setflags(write=False)
    return Scene(img, int(seed), road, sun_az, sun_el)


def _paint(rng: np.random.Generator, w: int, road: Road, sun_az: float, sun_el: float) -> np.ndarray:
    h = w // 2
    el = (90.0 - (np.arange(h, dtype=np.float32) + 0.5) * 180.0 / h)[:, None]
    az = ((np.arange(w, dtype=np.float32) + 0.5) * 360.0 / w)[None, :]
    img = np.empty((h, w, 3), np.float32)
    half = h // 2
    img[:half] = _sky(rng, half, w, sun_az, sun_el)
    horizon = img[half - 1].mean(axis=0)
    img[half:] = _ground(rng, el[half:], az, road, horizon, w)
    _ridges(rng, img, el, horizon)
    objects = _objects(rng, road)
    _draw_objects(img, objects)
    return cv2.convertScaleAbs(img, alpha=255.0)  # saturates to 0..255


# --- noise -----------------------------------------------------------------------------------


def _wrap_resize(src: np.ndarray, w: int, h: int) -> np.ndarray:
    """Cubic upscale that wraps around in x (azimuth), so no seam; w must be a multiple of width."""
    sw = src.shape[1]
    k = w // sw
    padded = np.concatenate([src[:, -2:], src, src[:, :2]], axis=1)
    big = cv2.resize(padded, (k * (sw + 4), h), interpolation=cv2.INTER_CUBIC)
    return big[:, 2 * k:2 * k + w]


def _fbm(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int], octaves: int,
         gain: float = 0.5, wrap_y: bool = False) -> np.ndarray:
    """Fractal value noise in [0, 1], periodic in x (and in y if asked, for tiles): octaves of
    random grids, each twice as fine."""
    total = np.zeros((h, w), np.float32)
    amp = 1.0
    cy, cx = cells
    for _ in range(octaves):
        grid = rng.random((min(cy, h) if wrap_y else cy, min(cx, w)), dtype=np.float32)
        if wrap_y:
            total += amp * _wrap_resize(_wrap_resize(grid, w, grid.shape[0]).T, h, w).T
        else:
            total += amp * _wrap_resize(grid, w, h)
        amp *= gain
        cy, cx = cy * 2, cx * 2
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --- sky -------------------------------------------------------------------------------------


def _sky(rng: np.random.Generator, h: int, w: int, sun_az: float, sun_el: float) -> np.ndarray:
    """Elevations 90..0 as (h, w, 3): gradient, sun glow and clouds, all smooth, so they are made
    at a quarter of the size and upscaled; only the sun's disc is drawn at full size."""
    hs, ws = max(h // 4, 8), max(w // 4, 64)
    el = (90.0 - (np.arange(hs, dtype=np.float32) + 0.5) * 90.0 / hs)[:, None]
    az = ((np.arange(ws, dtype=np.float32) + 0.5) * 360.0 / ws)[None, :]
    zenith = np.array([0.16, 0.33, 0.72], np.float32)
    horizon = np.array([0.72, 0.82, 0.93], np.float32)
    t = np.exp(-el / 14.0)[..., None]
    sky = zenith * (1.0 - t) + horizon * t
    r_el, r_sel = np.radians(el), math.radians(sun_el)
    cos_g = (np.sin(r_el) * math.sin(r_sel)
             + np.cos(r_el) * math.cos(r_sel) * np.cos(np.radians(az - sun_az)))
    gamma = np.degrees(np.arccos(np.clip(cos_g, -1.0, 1.0)))
    glow = 0.45 * np.exp(-gamma / 6.0) + 0.18 * np.exp(-gamma / 35.0)
    sky = sky + glow[..., None] * np.array([1.0, 0.9, 0.7], np.float32)
    # Clouds: thresholded fractal noise, thinning out toward the horizon and the zenith.
    dens = _fbm(rng, hs, ws, (3, 8), 5)
    cover = _smoothstep(0.5, 0.78, dens) * (_smoothstep(1.0, 6.0, el) * _smoothstep(75.0, 45.0, el))
    shade = 0.78 + 0.22 * _smoothstep(0.55, 0.95, dens)
    cloud = shade[..., None] * np.array([0.97, 0.97, 0.98], np.float32)
    sky += cover[..., None] * (cloud - sky)
    full = np.clip(_wrap_resize(np.clip(sky, 0.0, 1.0), w, h), 0.0, 1.0)
    ppd = w / 360.0
    radius = 0.55 * ppd
    centre = ((sun_az % 360.0) * ppd - 0.5, (90.0 - sun_el) * ppd - 0.5)
    axes = (radius / math.cos(math.radians(sun_el)), radius)
    for shift in (-w, 0, w):
        cv2.ellipse(full, ((centre[0] + shift, centre[1]), (2 * axes[0], 2 * axes[1]), 0.0),
                    (1.0, 1.0, 0.95), -1, cv2.LINE_AA)
    return full


# --- ground ----------------------------------------------------------------------------------


def _ground_texture(rng: np.random.Generator, n: int, road: Road) -> np.ndarray:
    """Top view of the land around the mast, ±_GROUND_HALF_M: fields, a lake, the road."""
    m_per_px = 2 * _GROUND_HALF_M / n
    palette = np.array([[0.33, 0.52, 0.20], [0.45, 0.58, 0.24], [0.62, 0.58, 0.30],
                        [0.48, 0.40, 0.26], [0.28, 0.44, 0.18], [0.70, 0.66, 0.38]], np.float32)
    cells, cell_px = 32, n // 32
    kinds = palette[rng.integers(0, len(palette), (cells + 1, cells + 1))]
    ways = rng.integers(0, 3, (cells + 1, cells + 1)).astype(np.uint8)  # along x, along y, unploughed
    sy, sx = (int(v) for v in rng.integers(0, cell_px, 2))  # so that the mast stands inside a field
    big = ((cells + 1) * cell_px,) * 2
    tex = cv2.resize(kinds, big, interpolation=cv2.INTER_NEAREST)[sy:sy + n, sx:sx + n]
    way = cv2.resize(ways, big, interpolation=cv2.INTER_NEAREST)[sy:sy + n, sx:sx + n]
    k = m_per_px * 2 * math.pi / 5.0  # crop rows every 5 m
    wave = np.sin(np.arange(n, dtype=np.float32) * k)
    rows = np.where(way == 0, wave[None, :], np.where(way == 1, wave[:, None], np.float32(0.0)))
    grain = cv2.resize(_fbm(rng, n // 2, n // 2, (8, 8), 5), (n, n))
    shade = (1.0 + 0.07 * rows) * (0.8 + 0.4 * grain)
    tex = tex * shade[..., None]
    centre = (n - 1) / 2.0
    to_px = 1.0 / m_per_px
    # A lake somewhere between 250 and 700 m.
    lake_az = math.radians(rng.uniform(0, 360))
    lake_d = rng.uniform(250, 700)
    lx = centre + math.sin(lake_az) * lake_d * to_px
    ly = centre - math.cos(lake_az) * lake_d * to_px
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    radius = rng.uniform(90, 180) * to_px * (0.7 + 0.3 * rng.random(24))
    poly = np.stack([lx + radius * np.cos(angles), ly + radius * np.sin(angles) * 0.6], 1)
    cv2.fillPoly(tex, [poly.astype(np.int32)], (0.25, 0.42, 0.58))
    # A concrete pad at the foot of the mast.
    cv2.circle(tex, (round(centre), round(centre)), max(1, round(1.5 * to_px)), (0.55, 0.55, 0.53), -1)
    return tex


def _ground(rng: np.random.Generator, el: np.ndarray, az: np.ndarray, road: Road,
            horizon: np.ndarray, w: int) -> np.ndarray:
    """Below the horizon: the ground texture seen from the mast, hazier with distance.

    Rows go from the horizon (far) to the nadir (near). Each effect touches only the rows where
    it shows: a blurred texture beyond 100 m (against aliasing), grass detail within 80 m, haze
    beyond 25 m."""
    n = 2048 if w >= 2048 else 1024
    tex = _ground_texture(rng, n, road)
    detail = 0.75 + 0.5 * _fbm(rng, 256, 256, (8, 8), 4, wrap_y=True)
    dist = CAMERA_HEIGHT_M / np.tan(np.radians(np.maximum(-el, 1e-3)))  # (rows, 1)
    to_px = n / (2 * _GROUND_HALF_M)
    centre = (n - 1) / 2.0
    raz = np.radians(az)
    map_x = (centre + (dist * to_px) * np.sin(raz)).astype(np.float32)
    map_y = (centre - (dist * to_px) * np.cos(raz)).astype(np.float32)
    ground = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    d = dist[:, 0]
    far_rows = int(np.searchsorted(-d, -100.0))  # rows [0, far_rows) lie beyond 100 m
    if far_rows:
        blurred = cv2.resize(cv2.resize(tex, (n // 8, n // 8), interpolation=cv2.INTER_AREA), (n, n))
        soft = cv2.remap(blurred, map_x[:far_rows], map_y[:far_rows], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        far = np.clip((dist[:far_rows] - 100.0) / 400.0, 0.0, 1.0)[..., None]
        ground[:far_rows] += far * (soft - ground[:far_rows])
    near_from = int(np.searchsorted(-d, -80.0))  # rows [near_from, end) lie within 80 m
    k = 256 / 20.0 / to_px  # texture pixels → pixels of the 20 m detail tile
    fine = cv2.remap(detail, (map_x[near_from:] - centre) * k, (map_y[near_from:] - centre) * k,
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    fade = np.clip(1.0 - dist[near_from:] / 80.0, 0.0, 1.0)
    ground[near_from:] *= (1.0 + fade * (fine - 1.0))[..., None]
    hazy = int(np.searchsorted(-d, -25.0))
    haze = (1.0 - np.exp(-(dist[:hazy] - 25.0) / 2200.0))[..., None]
    ground[:hazy] += haze * (horizon - ground[:hazy])
    _road(ground, dist, az, road)
    return ground


def _road(ground: np.ndarray, dist: np.ndarray, az: np.ndarray, road: Road) -> None:
    """Draw the straight road straight into the panorama, anti-aliased: a texture would blur it.

    A ground point at distance ρ in direction az lies ρ·cos(az − road az) metres out along the
    road's normal; the road covers the band distance ± width/2 of that, with pale shoulders."""
    c = np.cos(np.radians(az - road.az_deg))  # (1, w)
    reach = road.distance_m - road.width_m
    rows = int(np.searchsorted(-dist[:, 0], -reach * 0.98))  # beyond that, the road never shows
    rows = min(rows + 1, dist.shape[0] - 1)
    rho = dist[:rows + 1]
    along_n = rho[:-1] * c  # (rows, w): metres along the road's normal
    step = np.abs(rho[:-1] - rho[1:]) * np.abs(c) + 1e-3  # metres per pixel row, along the normal
    offset = np.abs(along_n - road.distance_m)
    bands = ((road.width_m / 2 + 1.5, (0.62, 0.60, 0.55)), (road.width_m / 2, (0.30, 0.30, 0.32)))
    for half, colour in bands:  # shoulders, then asphalt
        cover = np.clip((half - offset) / step + 0.5, 0.0, 1.0)
        cover[:, c[0] <= 0] = 0.0
        region = ground[:rows]
        region += cover[..., None] * (np.array(colour, np.float32) - region)


def _ridges(rng: np.random.Generator, img: np.ndarray, el: np.ndarray, horizon: np.ndarray) -> None:
    """Distant mountains (hazy, snow on the highest) and nearer wooded hills on the horizon."""
    w = img.shape[1]
    layers = [  # base height, relief, colour, haze, cells, snow line
        (0.8, 7.0, (0.42, 0.46, 0.55), 0.45, 4, 5.4),
        (0.1, 2.2, (0.18, 0.30, 0.16), 0.25, 16, None),
    ]
    for base, relief, colour, haze, cells, snow in layers:
        ridge = base + relief * _fbm(rng, 1, w, (1, cells), 6, gain=0.55)[0] ** 1.6
        top_row = int(np.argmax(el[:, 0] < ridge.max() + 0.1))
        bottom_row = int(np.argmax(el[:, 0] < -0.3))
        rows = el[top_row:bottom_row]
        mask = rows < ridge[None, :]
        tex = 0.85 + 0.3 * _fbm(rng, bottom_row - top_row, w, (2, cells * 8), 4)
        col = np.array(colour, np.float32) * tex[..., None]
        if snow is not None:
            snowy = rows > snow + 1.5 * (tex - 1.0)
            col[snowy] = (0.92, 0.93, 0.96)
        col += haze * (horizon - col)
        region = img[top_row:bottom_row]
        region[mask] = col[mask]


# --- buildings and trees --------------------------------------------------------------------


def _objects(rng: np.random.Generator, road: Road) -> list[dict]:
    """Buildings (some lining the road) and trees, each with an azimuth and a distance."""
    objs: list[dict] = []
    for i in range(int(rng.integers(12, 18))):
        if i % 2 == 0:  # along the far side of the road
            along = rng.uniform(-400, 400)
            off = road.distance_m + rng.uniform(20, 60)
            az = road.az_deg + math.degrees(math.atan2(along, off))
            dist = math.hypot(along, off)
        else:
            az, dist = rng.uniform(0, 360), rng.uniform(90, 800)
        objs.append(dict(kind="building", az=az, dist=dist, width=rng.uniform(10, 40),
                         height=rng.uniform(6, 36), colour=rng.integers(0, 5), lit=rng.random()))
    groves = rng.uniform(0, 360, 3)  # most trees stand in a few groves
    for _ in range(int(rng.integers(70, 110))):
        az = rng.normal(rng.choice(groves), 12.0) if rng.random() < 0.6 else rng.uniform(0, 360)
        objs.append(dict(kind="tree", az=az, dist=rng.uniform(25, 700),
                         height=rng.uniform(5, 16), crown=rng.uniform(0.25, 0.45),
                         shade=rng.uniform(0.7, 1.15)))
    objs.sort(key=lambda o: -o["dist"])  # far first, so near ones cover them
    return objs


_FACADES = np.array([[0.78, 0.74, 0.66], [0.62, 0.36, 0.28], [0.85, 0.85, 0.82],
                     [0.50, 0.52, 0.56], [0.72, 0.62, 0.46]], np.float32)


def _draw_objects(img: np.ndarray, objs: list[dict]) -> None:
    """Far to near, each at its azimuth, standing on the ground at its distance."""
    h, w = img.shape[:2]
    ppd = w / 360.0

    def col(az_deg: float) -> float:
        return (az_deg % 360.0) * ppd - 0.5

    def row(el_deg: float) -> float:
        return (90.0 - el_deg) * ppd - 0.5

    for o in objs:
        d = o["dist"]
        base = row(-math.degrees(math.atan2(CAMERA_HEIGHT_M, d)))
        top = row(math.degrees(math.atan2(o["height"] - CAMERA_HEIGHT_M, d)))
        x = col(o["az"])
        if o["kind"] == "building":
            half = math.degrees(math.atan2(o["width"] / 2, d)) * ppd
            for shift in (-w, 0, w):
                _building(img, x + shift - half, x + shift + half, top, base, o, d, ppd)
        else:
            crown_r = o["height"] * o["crown"]
            r_px = max(math.degrees(math.atan2(crown_r, d)) * ppd, 0.6)
            trunk = max(math.degrees(math.atan2(0.4, d)) * ppd, 0.5)
            green = np.array([0.16, 0.34, 0.12], np.float32) * o["shade"]
            cy = top + r_px
            for shift in (-w, 0, w):
                cx = x + shift
                if -3 * r_px < cx < w + 3 * r_px:
                    cv2.rectangle(img, (round(cx - trunk), round(cy)), (round(cx + trunk), round(base)),
                                  (0.30, 0.22, 0.14), -1)
                    cv2.ellipse(img, (round(cx * 16), round(cy * 16)),
                                (round(r_px * 16 * 0.8), round(r_px * 16)), 0, 0, 360,
                                tuple(float(c) for c in green), -1, cv2.LINE_AA, 4)
                    cv2.ellipse(img, (round((cx - r_px * 0.25) * 16), round((cy - r_px * 0.3) * 16)),
                                (round(r_px * 16 * 0.4), round(r_px * 16 * 0.45)), 0, 0, 360,
                                tuple(float(c) * 1.35 for c in green), -1, cv2.LINE_AA, 4)


def _building(img: np.ndarray, x0: float, x1: float, top: float, base: float, o: dict,
              d: float, ppd: float) -> None:
    """A facade facing the mast, with a roof band and a grid of windows (some lit)."""
    h, w = img.shape[:2]
    ix0, ix1 = max(int(round(x0)), 0), min(int(round(x1)), w)
    iy0, iy1 = max(int(round(top)), 0), min(int(round(base)), h)
    if ix1 <= ix0 or iy1 <= iy0:
        return
    facade = _FACADES[o["colour"]]
    region = img[iy0:iy1, ix0:ix1]
    region[:] = facade
    m_per_px = d * math.radians(1.0 / ppd)  # metres per panorama pixel at that distance
    ys = (np.arange(iy0, iy1) - top) * m_per_px  # metres below the roof
    xs = (np.arange(ix0, ix1) - x0) * m_per_px
    floor_m, bay_m = 3.4, 3.0
    in_row = ((ys % floor_m) > 1.0) & ((ys % floor_m) < 2.6) & (ys > 1.2) & (ys < o["height"] - 1.0)
    in_col = ((xs % bay_m) > 0.8) & ((xs % bay_m) < 2.2) & (xs > 1.0) & (xs < o["width"] - 1.0)
    windows = in_row[:, None] & in_col[None, :]
    floor_i = (ys // floor_m).astype(np.int64)[:, None]
    bay_i = (xs // bay_m).astype(np.int64)[None, :]
    lit = ((floor_i * 7919 + bay_i * 104729 + int(o["lit"] * 1e6)) % 5) == 0
    glass = np.where(lit[..., None], np.float32([0.95, 0.85, 0.45]), np.float32([0.24, 0.30, 0.38]))
    region[windows] = glass[windows]
    roof_px = max(1, int(round(0.8 / m_per_px)))
    region[: min(roof_px, region.shape[0])] = facade * 0.55
    # Shade the right edge a little, so a facade reads as a solid.
    edge = max(1, region.shape[1] // 6)
    region[:, -edge:] *= 0.8
