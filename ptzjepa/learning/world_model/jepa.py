"""The world model: context encoder, EMA target encoder and a pose-conditioned predictor.

The predictor answers "what would the target encoder see at pose p2, given what the context
encoder saw at pose p1": context tokens carry an embedding of p1, and one query token per patch
of the wanted view carries p2 (and the move p1 -> p2). Its reward head gives two channels per
predicted token:

- channel 0, the surprise: how hard the target encoder was pulled by the prediction
  error (the size of its gradient, see steps.py);
- channel 1, the model's own per-token prediction error. Dreams have no real next frame, so this
  is how a dream estimates how wrong the world model is about where it went.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ptzjepa.learning.sizes import TransformerSize, check_image_dims, check_transformer_dims
from ptzjepa.learning.world_model.vit import Block, ViTSpec, VisionTransformer, init_weights, rescale_residuals, sincos_2d

REWARD_CHANNELS = 2  # 0: surprise (target-encoder gradient size), 1: own prediction error
POSE_FEATURES = 4
SOURCES = ("context", "target")  # which encoder made the tokens the predictor is given


@dataclass(frozen=True)
class WorldModelSpec:
    """The whole architecture: the image, the patches and the sizes of the two block stacks.

    The sizes are the settings' own sections (TransformerSize); a checkpoint stores the spec flat
    (`encoder_width`, ..., `predictor_mlp_ratio`), the layout every stored world model has."""

    image_size: int = 224
    patch_size: int = 14
    encoder: TransformerSize = TransformerSize()
    predictor: TransformerSize = TransformerSize(width=384, depth=12, heads=6)

    def __post_init__(self) -> None:
        check_image_dims("WorldModelSpec", self.image_size, self.patch_size)
        for part in ("encoder", "predictor"):
            size = getattr(self, part)
            if not isinstance(size, TransformerSize):
                raise ValueError(f"WorldModelSpec.{part}: expected a TransformerSize, got {type(size).__name__}")
            check_transformer_dims(f"WorldModelSpec.{part}", size.width, size.depth, size.heads, size.mlp_ratio)

    @property
    def encoder_spec(self) -> ViTSpec:
        return ViTSpec.of(self.image_size, self.patch_size, self.encoder)

    @property
    def grid(self) -> int:
        return self.encoder_spec.grid

    @property
    def num_patches(self) -> int:
        return self.encoder_spec.num_patches

    @property
    def embed_dim(self) -> int:
        return self.encoder.width

    def to_dict(self) -> dict[str, Any]:
        flat: dict[str, Any] = {"image_size": self.image_size, "patch_size": self.patch_size}
        for part in _PARTS:
            flat.update({f"{part}_{name}": value for name, value in asdict(getattr(self, part)).items()})
        return flat

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "WorldModelSpec") -> WorldModelSpec:
        """Rebuild from to_dict(); an unknown key is an error (a typo would silently change sizes)."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a dict of sizes, got {type(data).__name__}")
        names = set(cls().to_dict())
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown key {unknown[0]!r} (expected some of {sorted(names)})")
        sizes = {part: {name: data[f"{part}_{name}"] for name in _SIZE_FIELDS if f"{part}_{name}" in data}
                 for part in _PARTS}
        default = cls()
        return cls(
            image_size=data.get("image_size", default.image_size),
            patch_size=data.get("patch_size", default.patch_size),
            **{part: replace(getattr(default, part), **sizes[part]) for part in _PARTS},
        )


_PARTS = ("encoder", "predictor")
_SIZE_FIELDS = tuple(f.name for f in fields(TransformerSize))


def pose_features(poses: torch.Tensor) -> torch.Tensor:
    """[B, 3] (pan deg, tilt deg, zoom factor) -> [B, 4]: sin/cos pan, tilt/90, log zoom.

    sin/cos makes 359 deg a neighbour of 0 deg; log zoom makes 2x->4x the same step as 1x->2x.
    """
    pan = torch.deg2rad(poses[:, 0])
    zoom = poses[:, 2].clamp_min(1e-3)
    return torch.stack((pan.sin(), pan.cos(), poses[:, 1] / 90.0, zoom.log()), dim=-1)


def move_features(pose_from: torch.Tensor, pose_to: torch.Tensor) -> torch.Tensor:
    """[B, 4] description of the move itself: wrapped pan change, tilt change, zoom ratio."""
    dpan = torch.deg2rad(pose_to[:, 0] - pose_from[:, 0])
    dtilt = (pose_to[:, 1] - pose_from[:, 1]) / 90.0
    dzoom = pose_to[:, 2].clamp_min(1e-3).log() - pose_from[:, 2].clamp_min(1e-3).log()
    return torch.stack((dpan.sin(), dpan.cos(), dtilt, dzoom), dim=-1)


def _mlp(inputs: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, width), nn.GELU(), nn.Linear(width, width))


def _check_pose(name: str, pose: torch.Tensor, batch: int) -> None:
    if pose.shape != (batch, 3):
        raise ValueError(f"{name}: expected [{batch}, 3] (pan, tilt, zoom), got {list(pose.shape)}")


class PosePredictor(nn.Module):
    """Context tokens at pose p1 -> target-encoder tokens at pose p2, plus two reward channels."""

    def __init__(self, spec: WorldModelSpec) -> None:
        super().__init__()
        width = spec.predictor.width
        self.embed_dim = spec.embed_dim
        self.num_patches = spec.num_patches
        self.embed = nn.Linear(spec.embed_dim, width)
        self.register_buffer("pos_embed", sincos_2d(width, spec.grid), persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pose_from_embed = _mlp(POSE_FEATURES, width)
        self.pose_to_embed = _mlp(2 * POSE_FEATURES, width)
        self.blocks = nn.ModuleList(
            Block(width, spec.predictor.heads, spec.predictor.mlp_ratio)
            for _ in range(spec.predictor.depth)
        )
        self.norm = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width, spec.embed_dim)
        self.reward_head = nn.Linear(width, REWARD_CHANNELS)
        self.apply(init_weights)
        rescale_residuals(self.blocks)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def _positions(self, index: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        table = self.pos_embed.to(dtype)
        return table.unsqueeze(0) if index is None else table[index]

    def forward(
        self,
        ctx_tokens: torch.Tensor,
        pose_from: torch.Tensor,
        pose_to: torch.Tensor,
        ctx_idx: torch.Tensor | None = None,
        tgt_idx: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ctx_idx / tgt_idx: patch indices [B, K] of the given / wanted tokens (None: all N)."""
        if ctx_tokens.ndim != 3 or ctx_tokens.shape[-1] != self.embed_dim:
            raise ValueError(
                f"ctx_tokens: expected [B, N, {self.embed_dim}], got {list(ctx_tokens.shape)}"
            )
        batch, given = ctx_tokens.shape[:2]
        expected = self.num_patches if ctx_idx is None else ctx_idx.shape[1]
        if given != expected:
            raise ValueError(f"ctx_tokens: expected {expected} tokens, got {given}")
        _check_pose("pose_from", pose_from, batch)
        _check_pose("pose_to", pose_to, batch)
        weight_dtype = self.embed.weight.dtype
        pose_from, pose_to = pose_from.to(weight_dtype), pose_to.to(weight_dtype)
        x = self.embed(ctx_tokens)
        x = x + self._positions(ctx_idx, x.dtype)
        x = x + self.pose_from_embed(pose_features(pose_from)).unsqueeze(1).to(x.dtype)
        move = torch.cat((pose_features(pose_to), move_features(pose_from, pose_to)), dim=-1)
        wanted = self.num_patches if tgt_idx is None else tgt_idx.shape[1]
        queries = self.mask_token.to(x.dtype) + self._positions(tgt_idx, x.dtype)
        queries = queries + self.pose_to_embed(move).unsqueeze(1).to(x.dtype)
        seq = torch.cat((x, queries.expand(batch, wanted, -1)), dim=1)
        for block in self.blocks:
            seq = block(seq)
        out = self.norm(seq[:, given:])
        return self.out_proj(out), self.reward_head(out)


class WorldModel(nn.Module):
    """The three networks of the world model and the operations the rest of ptzjepa needs."""

    def __init__(self, spec: WorldModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = VisionTransformer(spec.encoder_spec)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_encoder.requires_grad_(False)
        self.predictor = PosePredictor(spec)

    @property
    def num_tokens(self) -> int:
        return self.spec.num_patches

    @property
    def embed_dim(self) -> int:
        return self.spec.embed_dim

    def encode_context(
        self, images: torch.Tensor, keep_idx: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Context encoder tokens [B, N, D] (or of the kept patches, [B, K, D])."""
        return self.encoder(images, keep_idx)

    def target_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Target encoder tokens, layer-normed over features; differentiable if grads are on."""
        tokens = self.target_encoder(images)
        return F.layer_norm(tokens, (tokens.shape[-1],))

    def encode_target(self, images: torch.Tensor) -> torch.Tensor:
        """What the predictor is trained to predict: [B, N, D], never tracked by autograd."""
        with torch.no_grad():
            return self.target_tokens(images)

    def predict(
        self, tokens: torch.Tensor, pose_from: torch.Tensor, pose_to: torch.Tensor, source: str = "context"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens at pose_to [B, N, D] and reward [B, N, 2], from tokens [B, N, D] at pose_from.

        source names the encoder the given tokens came from: "context" (a real view through the
        context encoder) or "target" (target-encoder tokens, as dreams feed back their own output).
        """
        if source not in SOURCES:
            raise ValueError(f"source: expected one of {list(SOURCES)}, got {source!r}")
        return self.predictor(tokens, pose_from, pose_to)

    @torch.no_grad()
    def ema_update(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * context encoder."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1], got {momentum}")
        target = list(self.target_encoder.parameters())
        online = [p.detach() for p in self.encoder.parameters()]
        torch._foreach_mul_(target, momentum)
        torch._foreach_add_(target, online, alpha=1.0 - momentum)


def build_world_model(spec: WorldModelSpec) -> WorldModel:
    """A freshly initialised world model; the target encoder starts as an exact copy."""
    if not isinstance(spec, WorldModelSpec):
        raise ValueError(f"spec: expected a WorldModelSpec, got {type(spec).__name__}")
    return WorldModel(spec)
