"""The panorama simulator: a PTZ camera with no hardware, for development, tests and benchmarks.

Depends only on ptzjepa.camera.base (plus numpy, OpenCV and attrs), never on the rest of ptzjepa.
Modules: camera (SimCamera), panorama (the renderer), scenes and dynamics (what moves in the
built-in scene), settings (the `sim:` section SimCamera.from_config takes). Nothing is imported
here, so that loading the settings does not load OpenCV.
"""
