"""A plain pre-norm Vision Transformer: the world model's encoders and the predictor's blocks.

Position embeddings are fixed 2-D sine-cosine tables (not learned), so a
checkpoint holds only trained weights and the tables are rebuilt from the spec. Attention goes
through `scaled_dot_product_attention`, which picks the flash / memory-efficient kernels on CUDA
under bfloat16 without any code here knowing about them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ptzjepa.learning.sizes import TransformerSize, check_image_dims, check_transformer_dims


@dataclass(frozen=True)
class ViTSpec:
    """Everything needed to rebuild an encoder: image and patch size, width, depth, heads."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 192
    depth: int = 12
    heads: int = 3
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        check_transformer_dims("ViTSpec", self.width, self.depth, self.heads, self.mlp_ratio)
        check_image_dims("ViTSpec", self.image_size, self.patch_size)

    @classmethod
    def of(cls, image_size: int, patch_size: int, size: TransformerSize) -> ViTSpec:
        """The encoder for `image_size` images cut in `patch_size` patches, of `size`."""
        return cls(image_size, patch_size, size.width, size.depth, size.heads, size.mlp_ratio)

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid


# Widths, depths and heads of the usual ViT sizes (the sim profile's encoder is vit_tiny).
PRESETS: dict[str, tuple[int, int, int]] = {
    "vit_tiny": (192, 12, 3),
    "vit_small": (384, 12, 6),
    "vit_base": (768, 12, 12),
}


def preset(name: str, image_size: int = 224, patch_size: int = 14) -> ViTSpec:
    """A ViTSpec by its usual name (vit_tiny, vit_small, vit_base)."""
    if name not in PRESETS:
        raise ValueError(f"arch: expected one of {sorted(PRESETS)}, got {name!r}")
    width, depth, heads = PRESETS[name]
    return ViTSpec(image_size, patch_size, width, depth, heads)


def vit_tiny(image_size: int = 224, patch_size: int = 14) -> ViTSpec:
    return preset("vit_tiny", image_size, patch_size)


def vit_small(image_size: int = 224, patch_size: int = 14) -> ViTSpec:
    return preset("vit_small", image_size, patch_size)


def vit_base(image_size: int = 224, patch_size: int = 14) -> ViTSpec:
    return preset("vit_base", image_size, patch_size)


def sincos_2d(width: int, grid: int) -> torch.Tensor:
    """[grid*grid, width] fixed position table, patches in row-major order.

    Half of the channels encode the row, half the column; each half is sin and cos at
    geometrically spaced frequencies, so nearby patches get similar codes at every scale.
    """
    quarter = width // 4
    freqs = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    coords = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * freqs.reshape(1, -1)
        return torch.cat((angles.sin(), angles.cos()), dim=1)

    return torch.cat((encode(rows), encode(cols)), dim=1).float()


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tokens[b, index[b, k]] for every b, k: [B, N, D] and [B, K] -> [B, K, D]."""
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def init_weights(module: nn.Module) -> None:
    """Truncated-normal linear/conv weights, zero biases, unit norms."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def rescale_residuals(blocks: nn.ModuleList) -> None:
    """Shrink each block's output projections by 1/sqrt(2 * layer) so deep stacks start tame."""
    with torch.no_grad():
        for layer, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
            block.fc2.weight.div_(math.sqrt(2.0 * layer))


class VisionTransformer(nn.Module):
    """Images [B, 3, H, W] -> patch tokens [B, N, D] (or [B, K, D] for the kept patches)."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.spec = spec
        self.patch_embed = nn.Conv2d(3, spec.width, spec.patch_size, stride=spec.patch_size)
        self.register_buffer("pos_embed", sincos_2d(spec.width, spec.grid), persistent=False)
        self.blocks = nn.ModuleList(
            Block(spec.width, spec.heads, spec.mlp_ratio) for _ in range(spec.depth)
        )
        self.norm = nn.LayerNorm(spec.width)
        self.apply(init_weights)
        rescale_residuals(self.blocks)

    def forward(self, images: torch.Tensor, keep_idx: torch.Tensor | None = None) -> torch.Tensor:
        size = self.spec.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(
                f"images: expected [B, 3, {size}, {size}], got {list(images.shape)}"
            )
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = x + self.pos_embed.to(x.dtype)
        if keep_idx is not None:
            if keep_idx.ndim != 2 or keep_idx.shape[0] != x.shape[0]:
                raise ValueError(
                    f"keep_idx: expected [{x.shape[0]}, K] patch indices, got {list(keep_idx.shape)}"
                )
            x = gather_tokens(x, keep_idx)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
