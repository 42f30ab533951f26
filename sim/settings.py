"""The simulator's section of the settings (`sim:` in a profile); SimCamera.from_config takes it.

Plain attrs, no simulator code, so that the settings can name it without loading OpenCV.
"""

from __future__ import annotations

import attrs
from attrs.validators import and_, ge, gt, le


@attrs.frozen
class SimConfig:
    """The panorama simulator. Sim time advances by `seconds_per_step` per move, so the scene drifts."""

    panorama: str = ""
    # The degrees of azimuth and elevation the panorama covers, about pan 0 and the horizon; 0: the
    # whole sphere (360 x 180), or, with one given, the other from the image's aspect (square pixels).
    panorama_hfov: float = attrs.field(default=0.0, validator=and_(ge(0), le(360)))
    panorama_vfov: float = attrs.field(default=0.0, validator=and_(ge(0), le(180)))
    seed: int = 0
    width: int = attrs.field(default=640, validator=ge(8))
    height: int = attrs.field(default=360, validator=ge(8))
    hfov_deg: float = attrs.field(default=60.0, validator=and_(gt(0), le(170)))
    scene_width: int = attrs.field(default=4096, validator=ge(64))
    move_latency_s: float = attrs.field(default=0.0, validator=ge(0))
    noise_std: float = attrs.field(default=0.0, validator=ge(0))
    seconds_per_step: float = attrs.field(default=60.0, validator=ge(0))
