"""The one description of a transformer's size, shared by the settings and the model specs.

`TransformerSize` is a settings section as it is (`world_model.encoder`, `world_model.predictor`,
`agent.net` in a profile, loaded by cattrs) and a part of `WorldModelSpec`, so a size is never
copied field by field between the settings and the models. Its validators are per field only:
the checks that need two fields (width a multiple of heads, and of 4 for the sin-cos table) are
`check_transformer_dims`, which the specs run and whose rule the settings loader reports at load.
A plain dataclass, no torch: the settings import this without loading torch, and ptzjepa.learning
stays torch, numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransformerSize:
    """Width (token features), depth (blocks), attention heads and MLP ratio of a block stack."""

    width: int = 192
    depth: int = 12
    heads: int = 3
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        # Worded as attrs validators are, so the settings loader names the full key for these too.
        for name, low in (("width", 8), ("depth", 1), ("heads", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"'{name}' must be >= {low}: {getattr(self, name)}")
        if not self.mlp_ratio > 0:
            raise ValueError(f"'mlp_ratio' must be > 0: {self.mlp_ratio}")


def check_image_dims(owner: str, image_size: int, patch_size: int) -> None:
    """One-line errors for an image the patch grid cannot tile."""
    for name, value in (("image_size", image_size), ("patch_size", patch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}.{name}: expected an integer >= 1, got {value!r}")
    if image_size % patch_size:
        raise ValueError(f"{owner}.image_size: expected a multiple of patch_size={patch_size}, got {image_size}")


def check_transformer_dims(owner: str, width: int, depth: int, heads: int, mlp_ratio: float) -> None:
    """One-line errors for sizes the blocks or the sin-cos table cannot take."""
    for name, value in (("width", width), ("depth", depth), ("heads", heads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}.{name}: expected an integer >= 1, got {value!r}")
    if width % heads:
        raise ValueError(f"{owner}.width: expected a multiple of heads={heads}, got {width}")
    if width % 4:
        raise ValueError(f"{owner}.width: expected a multiple of 4 (2-D sin-cos table), got {width}")
    if not mlp_ratio > 0:
        raise ValueError(f"{owner}.mlp_ratio: expected > 0, got {mlp_ratio}")
