"""How fast the simulator makes pictures, on ONE CPU core: `python benchmarks/sim_render.py`.

Renders random poses (pan, tilt, zoom drawn uniformly within the default PTZ limits) of the
built-in scene. `render` is PanoramaRenderer.render alone; `grab` is SimCamera.move_to + grab
(render, moving things, light, Frame); `grab+noise` adds Gaussian sensor noise. The target is
>= 2,000 renders/s at 224x224. Also times building the scene itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ptzjepa.camera.base import PTZ, PTZLimits  # noqa: E402
from sim.camera import SimCamera  # noqa: E402
from sim.panorama import PanoramaRenderer  # noqa: E402
from sim.scenes import make_scene  # noqa: E402


def random_poses(n: int, seed: int) -> list[PTZ]:
    limits = PTZLimits()
    rng = np.random.default_rng(seed)
    return [PTZ(float(rng.uniform(limits.pan.lo, limits.pan.hi)),
                float(rng.uniform(limits.tilt.lo, limits.tilt.hi)),
                float(rng.uniform(limits.zoom.lo, limits.zoom.hi))) for _ in range(n)]


def rate(fn, poses: list[PTZ], min_seconds: float) -> float:
    """Calls per second of fn(pose), cycling through the poses for at least min_seconds."""
    for pose in poses[:20]:  # warm caches
        fn(pose)
    count, start = 0, time.perf_counter()
    while True:
        for pose in poses:
            fn(pose)
        count += len(poses)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene-width", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--poses", type=int, default=500)
    args = parser.parse_args()
    cv2.setNumThreads(1)

    t0 = time.perf_counter()
    scene = make_scene(0, args.scene_width)
    t_scene = time.perf_counter() - t0
    t0 = time.perf_counter()
    renderer = PanoramaRenderer(scene.panorama)
    t_pyramid = time.perf_counter() - t0
    print(f"scene {args.scene_width}x{args.scene_width // 2}: generated in {t_scene:.2f} s, "
          f"mip pyramid {renderer.level_widths} in {t_pyramid * 1000:.0f} ms (one core)")

    poses = random_poses(args.poses, seed=1)
    print(f"\n{'size':>9}  {'what':<12} {'frames/s':>9}  {'ms/frame':>8}")
    for width, height in ((224, 224), (640, 360)):
        def render(p: PTZ, w: int = width, h: int = height) -> None:
            renderer.render(p.pan, p.tilt, p.zoom, w, h)

        rows = [("render", render)]
        for label, noise in (("grab", 0.0), ("grab+noise", 3.0)):
            cam = SimCamera(width=width, height=height, scene_width=args.scene_width, noise_std=noise)

            def grab(p: PTZ, cam: SimCamera = cam) -> None:
                cam.move_to(p)
                cam.grab()

            rows.append((label, grab))
        for label, fn in rows:
            fps = rate(fn, poses, args.seconds)
            print(f"{width:>4}x{height:<4}  {label:<12} {fps:>9,.0f}  {1000 / fps:>8.3f}")


if __name__ == "__main__":
    main()
