"""The panorama simulator: a PTZ camera with no hardware, for development, tests and benchmarks.

Depends only on ptzjepa.camera.base (plus numpy and OpenCV), never on the rest of ptzjepa.
"""

from sim.camera import SimCamera
from sim.dynamics import SceneDynamics
from sim.panorama import PanoramaRenderer, View
from sim.scenes import Road, Scene, make_scene

__all__ = ["PanoramaRenderer", "Road", "Scene", "SceneDynamics", "SimCamera", "View", "make_scene"]
