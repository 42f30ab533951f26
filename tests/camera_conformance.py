"""What every PTZCamera must do, as a base class of pytest tests that any driver can inherit.

Use it by subclassing (the class name must start with Test, this one's does not, so pytest only
collects it through a subclass):

    class TestHanwhaConformance(CameraConformance):
        position_tolerance = 0.1        # degrees / zoom factor: the brand's units round

        def make_camera(self, seed: int) -> PTZCamera:
            ...                         # a camera whose pictures come from SimCamera(seed=seed)

`make_camera(seed)` must return a fresh, open camera showing the simulator's scene for that seed
(drivers do this with a fake HTTP server backed by sim.SimCamera). Cameras it returns are closed
after each test; the `camera` fixture is make_camera(0). A subclass may add autouse fixtures
(a fake server, say) and keep what they build on `self`: pytest makes one instance per test.
"""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pytest

from ptzjepa.camera.base import PTZ, Frame, PTZCamera, PTZLimits, pan_distance


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Zero-mean normalised cross-correlation of two equally sized images (grey)."""
    x, y = _gray(a), _gray(b)
    x -= x.mean()
    y -= y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def centre_crop_upscaled(image: np.ndarray, factor: float) -> np.ndarray:
    """The centre 1/factor of an image, scaled back up to the full size."""
    h, w = image.shape[:2]
    ch, cw = max(round(h / factor), 2), max(round(w / factor), 2)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(image[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


class CameraConformance:
    """The shared suite. Subclasses supply make_camera(seed) and may loosen the tolerances."""

    position_tolerance: float = 1e-6  # pan and tilt, degrees
    zoom_tolerance: float | None = None  # zoom factor; None: the same as position_tolerance

    @pytest.fixture(autouse=True)
    def _close_cameras(self):
        self._opened: list[PTZCamera] = []
        yield
        for cam in self._opened:
            cam.close()

    def fresh(self, seed: int = 0) -> PTZCamera:
        cam = self.make_camera(seed)
        self._opened.append(cam)
        return cam

    @pytest.fixture
    def camera(self) -> PTZCamera:
        return self.fresh(0)

    # --- helpers ---------------------------------------------------------------------------

    def assert_at(self, got: PTZ, want: PTZ, limits: PTZLimits, what: str = "position") -> None:
        zoom_tol = self.position_tolerance if self.zoom_tolerance is None else self.zoom_tolerance
        tol = self.position_tolerance + 1e-9
        if limits.pan.wraps:
            pan_err = pan_distance(got.pan, want.pan, limits.pan.span)
        else:
            pan_err = abs(got.pan - want.pan)
        assert pan_err <= tol, f"{what}: pan {got.pan} != {want.pan} (tolerance {tol})"
        assert abs(got.tilt - want.tilt) <= tol, f"{what}: tilt {got.tilt} != {want.tilt}"
        assert abs(got.zoom - want.zoom) <= zoom_tol + 1e-9, f"{what}: zoom {got.zoom} != {want.zoom}"

    @staticmethod
    def middle(limits: PTZLimits) -> PTZ:
        """A position well inside the limits, away from every end."""
        return PTZ(limits.pan.fit(limits.pan.lo + 0.37 * limits.pan.span),
                   limits.tilt.lo + 0.4 * limits.tilt.span,
                   limits.zoom.lo + 0.1 * limits.zoom.span)

    @staticmethod
    def level_tilt(limits: PTZLimits, tilt: float) -> float:
        return min(max(tilt, limits.tilt.lo), limits.tilt.hi)

    # --- moves -----------------------------------------------------------------------------

    def test_move_to_reaches_target(self, camera: PTZCamera) -> None:
        target = self.middle(camera.limits)
        reached = camera.move_to(target)
        self.assert_at(reached, target, camera.limits, "move_to's answer")
        self.assert_at(camera.position(), target, camera.limits, "position() after move_to")

    def test_move_by_is_relative(self, camera: PTZCamera) -> None:
        limits = camera.limits
        start = camera.move_to(self.middle(limits))
        delta = PTZ(5.0, -3.0, 0.5)
        reached = camera.move_by(delta)
        want = limits.fit(start + delta)
        self.assert_at(reached, want, limits, "move_by's answer")
        self.assert_at(camera.position(), want, limits, "position() after move_by")

    def test_pan_wraps_or_clamps(self, camera: PTZCamera) -> None:
        limits = camera.limits
        if limits.pan.wraps:
            camera.move_to(PTZ(limits.pan.fit(350.0), 0.0 if limits.tilt.contains(0.0) else
                               limits.tilt.lo, limits.zoom.lo))
            reached = camera.move_by(PTZ(20.0, 0.0, 0.0))
            want = limits.pan.fit(370.0)  # 10 degrees, in the head's own range
            assert limits.pan.lo - 1e-9 <= reached.pan < limits.pan.hi + 1e-9, reached
        else:
            camera.move_to(PTZ(limits.pan.hi - 5.0, limits.tilt.lo, limits.zoom.lo))
            reached = camera.move_by(PTZ(20.0, 0.0, 0.0))
            want = limits.pan.hi
        self.assert_at(reached, PTZ(want, reached.tilt, reached.zoom), limits, "pan after move_by")
        self.assert_at(camera.position(), PTZ(want, reached.tilt, reached.zoom), limits, "position()")

    def test_tilt_and_zoom_clamp_at_limits(self, camera: PTZCamera) -> None:
        limits = camera.limits
        mid = self.middle(limits)
        high = camera.move_to(PTZ(mid.pan, limits.tilt.hi + 30.0, limits.zoom.hi * 2.0))
        self.assert_at(high, PTZ(mid.pan, limits.tilt.hi, limits.zoom.hi), limits, "clamped high")
        low = camera.move_by(PTZ(0.0, -1000.0, -1000.0))
        self.assert_at(low, PTZ(mid.pan, limits.tilt.lo, limits.zoom.lo), limits, "clamped low")
        self.assert_at(camera.position(), low, limits, "position() after clamping")

    # --- pictures --------------------------------------------------------------------------

    def test_zoom_narrows_the_field_of_view(self, camera: PTZCamera) -> None:
        limits = camera.limits
        factor = min(2.0, limits.zoom.hi / limits.zoom.lo)
        pan, tilt = limits.pan.fit(limits.pan.lo + 40.0), self.level_tilt(limits, -3.0)
        camera.move_to(PTZ(pan, tilt, limits.zoom.lo))
        wide = camera.grab().image
        camera.move_to(PTZ(pan, tilt, limits.zoom.lo * factor))
        narrow = camera.grab().image
        right = correlation(centre_crop_upscaled(wide, factor), narrow)
        too_little = correlation(centre_crop_upscaled(wide, 1 + (factor - 1) * 0.8), narrow)
        too_much = correlation(centre_crop_upscaled(wide, 1 + (factor - 1) * 1.25), narrow)
        assert right > 0.8, f"zoom x{factor:g} does not show the centre 1/{factor:g} (r={right:.3f})"
        assert right > too_little + 0.02 and right > too_much + 0.02, (
            f"zoom x{factor:g} matches another field of view better: r={right:.3f} "
            f"vs {too_little:.3f} (less zoom) and {too_much:.3f} (more zoom)")

    def test_grab_gives_rgb_frame_at_position(self, camera: PTZCamera) -> None:
        limits = camera.limits
        up = min(limits.tilt.hi, 90.0)
        camera.move_to(PTZ(limits.pan.fit(limits.pan.lo + 10.0), up, limits.zoom.lo))
        before = dt.datetime.now(dt.timezone.utc)
        frame = camera.grab()
        assert isinstance(frame, Frame)
        image = frame.image
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, image.shape
        assert frame.time.utcoffset() == dt.timedelta(0), f"frame time is not UTC: {frame.time}"
        assert abs((frame.time - before).total_seconds()) < 60, frame.time
        self.assert_at(frame.ptz, camera.position(), limits, "frame.ptz vs position()")
        if up >= 70.0:  # the simulator's clear sky near the zenith: blue, so channel order is RGB
            r, _, b = image.reshape(-1, 3).mean(axis=0)
            assert b > r + 30, f"sky is not blue in RGB order (mean R={r:.0f}, B={b:.0f}): BGR?"

    def test_different_directions_look_different(self, camera: PTZCamera) -> None:
        limits = camera.limits
        level = self.level_tilt(limits, 0.0)
        poses = [PTZ(limits.pan.fit(limits.pan.lo + p), level, limits.zoom.lo) for p in (0, 90, 180, 270)]
        poses.append(PTZ(poses[0].pan, self.level_tilt(limits, 45.0), limits.zoom.lo))
        poses.append(PTZ(poses[0].pan, limits.tilt.lo, limits.zoom.lo))
        images = []
        for pose in poses:
            camera.move_to(pose)
            images.append(camera.grab().image)
        for i in range(len(images)):
            for j in range(i + 1, len(images)):
                if poses[i] == poses[j]:
                    continue
                diff = mean_abs_diff(images[i], images[j])
                assert diff > 6.0, f"{poses[i]} and {poses[j]} look alike (mean |diff| {diff:.1f})"

    def _walk(self, cam: PTZCamera) -> list[np.ndarray]:
        limits = cam.limits
        images = []
        cam.move_to(PTZ(limits.pan.fit(limits.pan.lo + 30.0), self.level_tilt(limits, -2.0),
                        limits.zoom.lo))
        images.append(cam.grab().image)
        cam.move_by(PTZ(25.0, 4.0, 0.3))
        images.append(cam.grab().image)
        return images

    def test_same_seed_same_pictures_other_seed_other_scene(self) -> None:
        first, second, other = self.fresh(0), self.fresh(0), self.fresh(1)
        a, b, c = self._walk(first), self._walk(second), self._walk(other)
        for i, (x, y) in enumerate(zip(a, b)):
            assert np.array_equal(x, y), f"picture {i}: same seed and moves gave different images"
        for i, (x, z) in enumerate(zip(a, c)):
            diff = mean_abs_diff(x, z)
            assert diff > 4.0, f"picture {i}: seeds 0 and 1 show the same scene (mean |diff| {diff:.1f})"
