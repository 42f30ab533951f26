"""The ViT encoder: shapes, kept patches, the fixed position table, presets and bad sizes."""

from __future__ import annotations

import pytest
import torch

from ptzjepa.learning.world_model.vit import (
    ViTSpec,
    VisionTransformer,
    gather_tokens,
    preset,
    sincos_2d,
    vit_base,
    vit_small,
    vit_tiny,
)

TINY = ViTSpec(image_size=32, patch_size=8, width=32, depth=2, heads=2)


@pytest.fixture(scope="module")
def encoder() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(TINY).eval()


def test_tokens_shape_and_grid(encoder):
    images = torch.randn(3, 3, 32, 32)
    assert TINY.grid == 4 and TINY.num_patches == 16
    assert encoder(images).shape == (3, 16, 32)


def test_keeping_every_patch_in_order_is_the_full_forward(encoder):
    images = torch.randn(2, 3, 32, 32)
    every = torch.arange(16).expand(2, 16)
    torch.testing.assert_close(encoder(images, every), encoder(images))


def test_kept_patches_see_only_each_other(encoder):
    images = torch.randn(2, 3, 32, 32)
    keep = torch.tensor([[0, 5, 9], [3, 4, 15]])
    out = encoder(images, keep)
    assert out.shape == (2, 3, 32)
    # Changing a patch that is not kept (patch 1 of image 0 is pixels [0:8, 8:16]) changes nothing.
    edited = images.clone()
    edited[0, :, 0:8, 8:16] += 5.0
    torch.testing.assert_close(encoder(edited, keep), out)
    # Changing a kept one does.
    edited[0, :, 0:8, 0:8] += 5.0
    assert not torch.allclose(encoder(edited, keep)[0], out[0])


def test_gather_tokens_picks_per_sample():
    tokens = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    picked = gather_tokens(tokens, torch.tensor([[3, 0], [1, 1]]))
    torch.testing.assert_close(picked, torch.stack([tokens[0, [3, 0]], tokens[1, [1, 1]]]))


def test_sincos_table_is_fixed_distinct_and_row_major():
    table = sincos_2d(16, 4)
    assert table.shape == (16, 16)
    torch.testing.assert_close(table, sincos_2d(16, 4))
    assert torch.cdist(table, table).add(torch.eye(16)).min() > 0.1  # every patch has its own code
    # The first half encodes the row: patches 0..3 (row 0) share it, patch 4 (row 1) does not.
    torch.testing.assert_close(table[0, :8], table[3, :8])
    assert not torch.allclose(table[0, :8], table[4, :8])
    torch.testing.assert_close(table[0, 8:], table[4, 8:])
    # sin^2 + cos^2 = 1 for every frequency.
    quarter = table[:, :4] ** 2 + table[:, 4:8] ** 2
    torch.testing.assert_close(quarter, torch.ones_like(quarter))


def test_position_table_is_not_a_learned_weight(encoder):
    assert "pos_embed" not in encoder.state_dict()
    assert all("pos_embed" not in name for name, _ in encoder.named_parameters())


def test_presets_have_the_usual_sizes():
    assert (vit_tiny().width, vit_tiny().depth, vit_tiny().heads) == (192, 12, 3)
    assert (vit_small().width, vit_small().heads) == (384, 6)
    assert (vit_base().width, vit_base().heads) == (768, 12)
    assert vit_tiny().num_patches == 256  # 224 / 14 = 16 per side
    with pytest.raises(ValueError, match="arch: expected one of"):
        preset("vit_huge")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 30}, "ViTSpec.image_size: expected a multiple of patch_size=8"),
        ({"width": 30}, "ViTSpec.width: expected a multiple of heads=4"),
        ({"width": 6, "heads": 3}, r"ViTSpec.width: expected a multiple of 4"),
        ({"depth": 0}, "ViTSpec.depth: expected an integer >= 1"),
    ],
)
def test_bad_sizes_name_the_field(kwargs, message):
    base = {"image_size": 32, "patch_size": 8, "width": 32, "depth": 1, "heads": 4}
    with pytest.raises(ValueError, match=message):
        ViTSpec(**{**base, **kwargs})


def test_bad_inputs_are_one_line_errors(encoder):
    with pytest.raises(ValueError, match=r"images: expected \[B, 3, 32, 32\]"):
        encoder(torch.randn(2, 3, 24, 24))
    with pytest.raises(ValueError, match="keep_idx: expected"):
        encoder(torch.randn(2, 3, 32, 32), torch.zeros(3, 4, dtype=torch.long))
