"""A panorama that covers less than the whole sphere, placed on it instead of stretched over it.

The renderer (sim/panorama.py) maps any image's columns to 360° of azimuth and its rows to 180° of
elevation. An image of, say, 120° × 40° would be stretched three and four and a half times; given
its field of view it is instead drawn at its own scale on a black sphere, centred on pan 0 and the
horizon, so that the camera sees it undistorted straight ahead and nothing beyond its edges.
"""

from __future__ import annotations

import cv2
import numpy as np

# The widest whole-sphere canvas made for a partial panorama (its height is half of it): a 120°
# image 6000 pixels wide would otherwise need 18000 × 9000 pixels of mostly black.
MAX_CANVAS_WIDTH = 8192


def fields(width: int, height: int, hfov_deg: float, vfov_deg: float) -> tuple[float, float]:
    """The degrees an image covers across and up: 0 means the whole turn (360) or half turn (180),
    or, with the other one given, follows from the image's aspect (square pixels)."""
    if not hfov_deg and not vfov_deg:
        return 360.0, 180.0
    if not hfov_deg:
        hfov_deg = min(360.0, vfov_deg * width / height)
    if not vfov_deg:
        vfov_deg = min(180.0, hfov_deg * height / width)
    return float(hfov_deg), float(vfov_deg)


def on_sphere(image: np.ndarray, hfov_deg: float = 0.0, vfov_deg: float = 0.0) -> np.ndarray:
    """An equirectangular (2:1) panorama of the whole sphere holding `image` at the field it
    covers; the image itself when it covers the whole sphere."""
    height, width = image.shape[:2]
    hfov, vfov = fields(width, height, hfov_deg, vfov_deg)
    if hfov >= 360.0 and vfov >= 180.0:
        return image
    per_degree = min(width / hfov, MAX_CANVAS_WIDTH / 360.0)
    cols = max(1, min(round(hfov * per_degree), round(360 * per_degree)))
    rows = max(1, min(round(vfov * per_degree), round(180 * per_degree)))
    if (cols, rows) != (width, height):
        image = cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((round(180 * per_degree), round(360 * per_degree), 3), np.uint8)
    top = (canvas.shape[0] - rows) // 2
    canvas[top : top + rows, :cols] = image
    # centre the image on pan 0: the renderer's column 0 is azimuth 0
    return np.ascontiguousarray(np.roll(canvas, -(cols // 2), axis=1))
