"""The world model: predict/encode shapes, pose handling, EMA math, spec and state round trips."""

from __future__ import annotations

import pytest
import torch

from ptzjepa.learning.world_model.jepa import (
    WorldModelSpec,
    build_world_model,
    move_features,
    pose_features,
)
from ptzjepa.learning.sizes import TransformerSize

SPEC = WorldModelSpec(
    image_size=32,
    patch_size=8,
    encoder=TransformerSize(width=32, depth=1, heads=2),
    predictor=TransformerSize(width=48, depth=2, heads=3),
)
B, N, D = 3, 16, 32


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_world_model(SPEC).eval()


def poses() -> torch.Tensor:
    return torch.tensor([[10.0, 5.0, 1.0], [200.0, -10.0, 2.0], [359.0, 40.0, 1.5]])


def test_the_interface_shapes(model):
    images = torch.randn(B, 3, 32, 32)
    target = model.encode_target(images)
    context = model.encode_context(images)
    assert target.shape == context.shape == (B, N, D)
    assert (model.num_tokens, model.embed_dim) == (N, D)
    pred, reward = model.predict(context, poses(), poses().flip(0))
    assert pred.shape == (B, N, D)
    assert reward.shape == (B, N, 2)


def test_encode_target_is_untracked_and_layer_normed(model):
    images = torch.randn(B, 3, 32, 32, requires_grad=True)
    target = model.encode_target(images)
    assert not target.requires_grad
    torch.testing.assert_close(target.mean(-1), torch.zeros(B, N), atol=1e-5, rtol=0)
    torch.testing.assert_close(target.var(-1, unbiased=False), torch.ones(B, N), atol=1e-3, rtol=0)


def test_target_encoder_starts_as_a_frozen_copy():
    torch.manual_seed(1)
    fresh = build_world_model(SPEC)
    for online, target in zip(fresh.encoder.parameters(), fresh.target_encoder.parameters()):
        torch.testing.assert_close(online, target)
        assert not target.requires_grad
        assert online.data_ptr() != target.data_ptr()


def test_predictor_uses_both_poses_and_wraps_pan(model):
    tokens = torch.randn(B, N, D)
    p = poses()
    base, _ = model.predict(tokens, p, p)
    turned = p.clone()
    turned[:, 0] += 360.0
    torch.testing.assert_close(model.predict(tokens, turned, turned)[0], base, atol=1e-5, rtol=1e-4)
    moved = p.clone()
    moved[:, 0] += 30.0
    assert not torch.allclose(model.predict(tokens, p, moved)[0], base)
    assert not torch.allclose(model.predict(tokens, moved, p)[0], base)


def test_pose_features_values():
    f = pose_features(torch.tensor([[90.0, 45.0, 1.0], [0.0, -90.0, torch.e]]))
    expected_f = torch.tensor([[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, -1.0, 1.0]])
    torch.testing.assert_close(f, expected_f, atol=1e-6, rtol=0)
    m = move_features(torch.tensor([[350.0, 0.0, 2.0]]), torch.tensor([[10.0, 9.0, 4.0]]))
    # 350 -> 10 is a 20 degree turn, whichever way the numbers wrap.
    turn = torch.tensor(20.0).deg2rad()
    expected = torch.tensor([[turn.sin(), turn.cos(), 0.1, torch.tensor(2.0).log()]])
    torch.testing.assert_close(m, expected, atol=1e-6, rtol=0)


def test_predictor_with_patch_indices(model):
    ctx_idx = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [1, 3, 5, 7, 9]])
    tgt_idx = torch.tensor([[10, 11], [12, 13], [14, 15]])
    pred, reward = model.predictor(torch.randn(B, 5, D), poses(), poses(), ctx_idx, tgt_idx)
    assert pred.shape == (B, 2, D) and reward.shape == (B, 2, 2)


def test_bad_inputs_are_one_line_errors(model):
    with pytest.raises(ValueError, match=r"ctx_tokens: expected \[B, N, 32\]"):
        model.predict(torch.randn(B, N, 7), poses(), poses())
    with pytest.raises(ValueError, match="ctx_tokens: expected 16 tokens, got 9"):
        model.predict(torch.randn(B, 9, D), poses(), poses())
    with pytest.raises(ValueError, match=r"pose_to: expected \[3, 3\]"):
        model.predict(torch.randn(B, N, D), poses(), poses()[:2])
    with pytest.raises(ValueError, match="momentum: expected a value in"):
        model.ema_update(1.5)


def test_ema_update_math():
    torch.manual_seed(2)
    m = build_world_model(SPEC)
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.add_(torch.randn_like(p))
    online = [p.detach().clone() for p in m.encoder.parameters()]
    before = [p.detach().clone() for p in m.target_encoder.parameters()]
    m.ema_update(0.9)
    for t, o, b in zip(m.target_encoder.parameters(), online, before):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    m.ema_update(1.0)  # momentum 1 keeps the target
    for t, o, b in zip(m.target_encoder.parameters(), online, before):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    m.ema_update(0.0)  # momentum 0 copies the encoder
    for t, o in zip(m.target_encoder.parameters(), online):
        torch.testing.assert_close(t, o)
    assert all(not p.requires_grad for p in m.target_encoder.parameters())


def test_spec_round_trip_and_errors():
    assert WorldModelSpec.from_dict(SPEC.to_dict()) == SPEC
    default = WorldModelSpec()
    assert (default.image_size, default.patch_size, default.num_patches) == (224, 14, 256)
    assert (default.encoder.width, default.predictor.width, default.predictor.depth) == (192, 384, 12)
    with pytest.raises(ValueError, match="unknown key 'encoder_widht'"):
        WorldModelSpec.from_dict({**SPEC.to_dict(), "encoder_widht": 32})
    with pytest.raises(ValueError, match="expected a dict"):
        WorldModelSpec.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="WorldModelSpec.image_size: expected a multiple of patch_size=8"):
        WorldModelSpec(image_size=36, patch_size=8)
    with pytest.raises(ValueError, match="WorldModelSpec.predictor.width: expected a multiple of heads=5"):
        WorldModelSpec(predictor=TransformerSize(width=48, heads=5))
    with pytest.raises(ValueError, match="spec: expected a WorldModelSpec"):
        build_world_model(SPEC.to_dict())  # type: ignore[arg-type]


def test_state_dict_round_trip_gives_identical_outputs(model):
    copy = build_world_model(WorldModelSpec.from_dict(model.spec.to_dict())).eval()
    assert not all(
        torch.equal(a, b) for a, b in zip(copy.state_dict().values(), model.state_dict().values())
    )
    copy.load_state_dict(model.state_dict())
    images, p = torch.randn(B, 3, 32, 32), poses()
    torch.testing.assert_close(copy.encode_target(images), model.encode_target(images), rtol=0, atol=0)
    ctx = model.encode_context(images)
    torch.testing.assert_close(copy.encode_context(images), ctx, rtol=0, atol=0)
    for a, b in zip(copy.predict(ctx, p, p.flip(0)), model.predict(ctx, p, p.flip(0))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not any("pos_embed" in key for key in model.state_dict())
