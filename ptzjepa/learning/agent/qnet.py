"""The agent's Q-network: a small pre-norm transformer over world-model tokens plus a pose token.

It reads the same thing the dreams hold (a state's tokens and the pose it was seen from) and
gives one Q-value per action. It runs on edge devices during navigation, so it is kept light:
`pool` average-pools the token grid (2 -> 4x fewer tokens, attention ~16x cheaper) before
anything learned sees it. Pooling has no weights, so the replay memory can store pooled tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ptzjepa.learning.world_model.jepa import pose_features  # the same pose code the world model reads
from ptzjepa.learning.world_model.vit import Block, init_weights


@dataclass(frozen=True)
class QNetSpec:
    embed_dim: int  # the world model's token width D
    num_tokens: int  # tokens per state N (a square grid)
    num_actions: int
    width: int = 192
    depth: int = 4
    heads: int = 3
    mlp_ratio: float = 4.0
    pool: int = 2  # average-pool the token grid by this factor; 1 keeps every token

    def __post_init__(self) -> None:
        for name in ("embed_dim", "num_tokens", "num_actions", "width", "depth", "heads", "pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"QNetSpec.{name}: expected >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"QNetSpec.width: expected a multiple of heads={self.heads}, got {self.width}")
        side = math.isqrt(self.num_tokens)
        if side * side != self.num_tokens:
            raise ValueError(f"QNetSpec.num_tokens: expected a square grid, got {self.num_tokens}")
        if side % self.pool:
            raise ValueError(
                f"QNetSpec.pool: expected a divisor of the grid side {side}, got {self.pool}"
            )

    @property
    def grid(self) -> int:
        return math.isqrt(self.num_tokens)

    @property
    def pooled_tokens(self) -> int:
        return (self.grid // self.pool) ** 2


# An agent stored with its blocks' parameters under these names (blocks.<i>.qkv, ...) loads under
# the ViT block's, so that a node keeps the agent it trained: same weights, same order.
_EARLIER_BLOCK_NAMES = {"qkv.": "attn.qkv.", "proj.": "attn.proj.", "mlp.0.": "fc1.", "mlp.2.": "fc2."}


def _rename_earlier_block_keys(module: nn.Module, state_dict: dict, prefix: str, *_: object) -> None:
    for key in [k for k in state_dict if k.startswith(f"{prefix}blocks.")]:
        index, _, rest = key[len(f"{prefix}blocks."):].partition(".")
        for earlier, now in _EARLIER_BLOCK_NAMES.items():
            if rest.startswith(earlier):
                state_dict[f"{prefix}blocks.{index}.{now}{rest[len(earlier):]}"] = state_dict.pop(key)
                break


class QNetwork(nn.Module):
    """Q[B, A] from state tokens [B, N, D] and poses [B, 3]."""

    def __init__(self, spec: QNetSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width
        self.in_norm = nn.LayerNorm(spec.embed_dim)
        self.embed = nn.Linear(spec.embed_dim, w)
        self.pos = nn.Parameter(torch.zeros(1, spec.pooled_tokens, w))
        self.pose_embed = nn.Sequential(nn.Linear(4, w), nn.GELU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(Block(w, spec.heads, spec.mlp_ratio) for _ in range(spec.depth))
        self.out_norm = nn.LayerNorm(w)
        self.head = nn.Linear(2 * w, spec.num_actions)
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.apply(init_weights)
        self.register_load_state_dict_pre_hook(_rename_earlier_block_keys)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Average-pool the token grid [B, N, D] -> [B, N / pool^2, D] (no weights)."""
        s = self.spec
        if tokens.ndim != 3 or tokens.shape[1:] != (s.num_tokens, s.embed_dim):
            raise ValueError(
                f"QNetwork: tokens must be [B, {s.num_tokens}, {s.embed_dim}], got {list(tokens.shape)}"
            )
        if s.pool == 1:
            return tokens
        b, _, d = tokens.shape
        grid = tokens.transpose(1, 2).reshape(b, d, s.grid, s.grid)
        return F.avg_pool2d(grid, s.pool).flatten(2).transpose(1, 2)

    def forward(self, tokens: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        return self.forward_pooled(self.pool(tokens), poses)

    def forward_pooled(self, pooled: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        """Q-values from tokens that pool() already reduced (what the replay memory stores)."""
        s = self.spec
        if pooled.ndim != 3 or pooled.shape[1:] != (s.pooled_tokens, s.embed_dim):
            raise ValueError(
                f"QNetwork: pooled tokens must be [B, {s.pooled_tokens}, {s.embed_dim}], "
                f"got {list(pooled.shape)}"
            )
        if poses.shape != (pooled.shape[0], 3):
            raise ValueError(f"QNetwork: poses must be [{pooled.shape[0]}, 3], got {list(poses.shape)}")
        dtype = self.embed.weight.dtype
        x = self.embed(self.in_norm(pooled.to(dtype))) + self.pos
        pose_token = self.pose_embed(pose_features(poses.to(dtype))).unsqueeze(1)
        x = torch.cat((pose_token, x), dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.out_norm(x)
        return self.head(torch.cat((x[:, 0], x[:, 1:].mean(dim=1)), dim=-1))
