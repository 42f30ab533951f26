"""Batched dreams with the real (tiny) world model, and the action table that moves them."""

from __future__ import annotations

import copy

import pytest
import torch

from ptzjepa.camera.settings import LimitsConfig
from ptzjepa.config.settings import Modulation, default_actions
from ptzjepa.learning.agent.actions import ActionTable
from ptzjepa.learning.agent.dreamer import DreamInterrupted, Dreams, rollout, rollout_one_at_a_time
from ptzjepa.learning.sizes import TransformerSize
from ptzjepa.learning.world_model.jepa import WorldModelSpec, build_world_model

B, T = 6, 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: threads only add contention (a busy 2-core box ran 30x slower with 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world_model():
    torch.manual_seed(0)
    return build_world_model(TINY_SPEC).eval()


TINY_SPEC = WorldModelSpec(
    image_size=32,
    patch_size=8,
    encoder=TransformerSize(width=32, depth=1, heads=2),
    predictor=TransformerSize(width=32, depth=1, heads=2),
)


def original_actions(modulation: Modulation = Modulation(), limits: LimitsConfig = LimitsConfig()) -> ActionTable:
    """The profile's 21 actions, converted the way a stage converts config into the table."""
    acts = default_actions()
    return ActionTable(
        [a.name for a in acts],
        [[a.pan, a.tilt, a.zoom] for a in acts],
        (modulation.pan, modulation.tilt, modulation.zoom),
        pan=(limits.pan_min, limits.pan_max), tilt=(limits.tilt_min, limits.tilt_max),
        zoom=(limits.zoom_min, limits.zoom_max), pan_wraps=limits.pan_wraps,
    )


@pytest.fixture(scope="module")
def start(world_model):
    g = torch.Generator().manual_seed(5)
    images = torch.rand(B, 3, TINY_SPEC.image_size, TINY_SPEC.image_size, generator=g)
    tokens = world_model.encode_target(images)
    poses = torch.tensor([[0.0, 0.0, 1.0], [359.9, 89.0, 31.9], [180.0, -19.5, 2.0]] * 2)
    return tokens, poses


def dream(world_model, start, seed=0, length=T, **kwargs) -> Dreams:
    tokens, poses = start
    gen = torch.Generator().manual_seed(seed)
    return rollout(world_model, tokens, poses, original_actions(), length, gen, **kwargs)


# --- action table -------------------------------------------------------------------------------


def test_action_table_wraps_pan_and_clamps_tilt_and_zoom():
    table = ActionTable(
        ["noop", "right", "left", "up", "zoom"],
        [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, 1]],
        modulation=(2.0, 3.0, 0.5),
        zoom=(1.0, 4.0),
    )
    poses = torch.tensor([[359.0, 0.0, 1.0], [0.5, 0.0, 1.0], [10.0, 88.0, 1.0], [10.0, 0.0, 3.8], [5.0, 5.0, 2.0]])
    got = table.apply(poses, torch.tensor([1, 2, 3, 4, 0]))
    expected = torch.tensor([[1.0, 0.0, 1.0], [358.5, 0.0, 1.0], [10.0, 90.0, 1.0], [10.0, 0.0, 4.0], [5.0, 5.0, 2.0]])
    torch.testing.assert_close(got, expected)
    # Landing exactly on hi is the same point as lo.
    assert float(table.apply(torch.tensor([[358.0, 0.0, 1.0]]), torch.tensor([1]))[0, 0]) == 0.0


def test_action_table_clamps_a_pan_that_does_not_wrap():
    table = ActionTable(["left", "right"], [[-5, 0, 0], [5, 0, 0]], pan=(-180, 180), pan_wraps=False)
    got = table.apply(torch.tensor([[-178.0, 0, 1], [179.0, 0, 1]]), torch.tensor([0, 1]))
    torch.testing.assert_close(got[:, 0], torch.tensor([-180.0, 180.0]))


def test_action_table_from_the_profile_and_bad_input():
    table = original_actions(Modulation(pan=2.0, tilt=2.0, zoom=1.0))
    assert table.num_actions == 21 and table.names[0] == "noop"
    torch.testing.assert_close(table.deltas[table.index("jump_left")], torch.tensor([-10.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"ActionTable.deltas: expected shape \[2, 3\]"):
        ActionTable(["a", "b"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="unique names"):
        ActionTable(["a", "a"], [[0, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"action_idx must lie in \[0, 21\)"):
        table.apply(torch.zeros(1, 3), torch.tensor([21]))
    with pytest.raises(ValueError, match="unknown action 'spin'"):
        table.index("spin")
    with pytest.raises(ValueError, match="ActionTable.tilt: expected finite lo < hi"):
        ActionTable(["a"], [[0, 0, 0]], tilt=(10.0, -10.0))


# --- dreams -------------------------------------------------------------------------------------


def test_dream_shapes_dtypes_and_moves(world_model, start):
    tokens, poses = start
    d = dream(world_model, start)
    n, dim = tokens.shape[1:]
    assert d.states.shape == (B, T + 1, n, dim) and d.states.dtype == torch.float32
    assert d.poses.shape == (B, T + 1, 3) and d.actions.shape == (B, T) and d.actions.dtype == torch.int64
    for name in ("reward_head", "delta_reward", "prediction_error"):
        value = getattr(d, name)
        assert value.shape == (B, T) and value.dtype == torch.float32 and torch.isfinite(value).all()
    torch.testing.assert_close(d.states[:, 0], tokens)
    torch.testing.assert_close(d.poses[:, 0], poses)
    table = original_actions()
    for t in range(T):  # each pose is the previous one moved by the drawn action, within limits
        torch.testing.assert_close(d.poses[:, t + 1], table.apply(d.poses[:, t], d.actions[:, t]))
    assert not torch.equal(d.states[:, 1], d.states[:, 0])


def test_dream_rewards_come_from_the_two_heads(world_model, start):
    tokens, poses = start
    d = dream(world_model, start)
    with torch.no_grad():
        pred, reward = world_model.predict(tokens, poses, d.poses[:, 1])
        _, stay = world_model.predict(tokens, poses, poses)
    torch.testing.assert_close(d.states[:, 1], pred)
    torch.testing.assert_close(d.reward_head[:, 0], reward[..., 0].mean(dim=1))
    torch.testing.assert_close(d.prediction_error[:, 0], reward[..., 1].clamp_min(0).mean(dim=1))
    # The first delta is measured from the start state's own ("stay put") surprise.
    torch.testing.assert_close(d.delta_reward[:, 0], d.reward_head[:, 0] - stay[..., 0].mean(dim=1))
    torch.testing.assert_close(d.delta_reward[:, 1:], d.reward_head[:, 1:] - d.reward_head[:, :-1])


def test_prediction_error_rewards_are_never_negative(world_model, start):
    """The own-error head estimates an error, which is >= 0; its linear output is not, so a head
    that overshoots below zero on some tokens must not turn into a negative reward."""
    tokens, poses = start
    shifted = copy.deepcopy(world_model)
    with torch.no_grad():
        shifted.predictor.reward_head.bias[1] -= 0.12  # about the untrained head's mean: half below 0
        _, raw = shifted.predict(tokens, poses, poses)
    assert (raw[..., 1].mean(dim=1) < 0).any() and (raw[..., 1] > 0).any()  # both signs, or the test proves nothing
    d = dream(shifted, start, action_indices=torch.zeros(B, T, dtype=torch.long))  # noop: pose stays
    assert (d.prediction_error >= 0).all()
    torch.testing.assert_close(d.prediction_error[:, 0], raw[..., 1].clamp_min(0).mean(dim=1))


def test_dreams_are_reproducible_from_a_seed(world_model, start):
    a, b = dream(world_model, start, seed=3), dream(world_model, start, seed=3)
    for name, value in a.as_dict().items():
        assert torch.equal(value, getattr(b, name)), name
    assert not torch.equal(a.actions, dream(world_model, start, seed=4).actions)


def test_batched_dreams_match_one_at_a_time(world_model, start):
    tokens, poses = start
    batched = dream(world_model, start, seed=7, chunk_size=4)  # two chunks, the second partial
    single = rollout_one_at_a_time(
        world_model, tokens, poses, original_actions(), T, torch.Generator().manual_seed(7)
    )
    assert torch.equal(batched.actions, single.actions)
    for name, value in batched.as_dict().items():
        torch.testing.assert_close(value, getattr(single, name), atol=1e-4, rtol=1e-4, msg=name)


def test_given_actions_and_compact_states(world_model, start):
    plan = torch.full((B, T), original_actions().index("jump_right"))
    d = dream(world_model, start, action_indices=plan, state_dtype=torch.float16)
    assert torch.equal(d.actions, plan) and d.states.dtype == torch.float16
    full = dream(world_model, start, action_indices=plan)
    # Only the stored copy is compact: the rollout itself runs at full precision.
    torch.testing.assert_close(d.states.float(), full.states, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(d.prediction_error, full.prediction_error)
    with pytest.raises(ValueError, match=r"action_indices must be \[6, 3\]"):
        dream(world_model, start, action_indices=plan[:, :2])


def test_rollout_keeps_the_model_mode_and_checks_inputs(world_model, start):
    tokens, poses = start
    world_model.train()
    try:
        dream(world_model, start)
        assert world_model.training
    finally:
        world_model.eval()
    with pytest.raises(ValueError, match=r"start_poses must be \[6, 3\]"):
        rollout(world_model, tokens, poses[:2], original_actions(), T, torch.Generator())
    with pytest.raises(ValueError, match="length must be >= 1"):
        rollout(world_model, tokens, poses, original_actions(), 0, torch.Generator())


def test_dreams_round_trip_and_join(world_model, start):
    d = dream(world_model, start)
    again = Dreams.from_dict(d.as_dict())
    assert all(torch.equal(v, getattr(again, k)) for k, v in d.as_dict().items())
    joined = Dreams.cat([d.select(slice(0, 2)), d.select(slice(2, None))])
    assert torch.equal(joined.states, d.states)
    with pytest.raises(ValueError, match="Dreams.cat: part 1 has states"):
        Dreams.cat([d, dream(world_model, start, length=T + 1)])
    broken = d.as_dict()
    del broken["poses"]
    with pytest.raises(ValueError, match="missing key 'poses'"):
        Dreams.from_dict(broken, source="dream_00.pt")
    with pytest.raises(ValueError, match=r"Dreams.actions: expected shape \[6, 3\]"):
        Dreams(**{**d.as_dict(), "actions": d.actions[:, :2]})


def test_a_stop_request_interrupts_between_steps(world_model, start):
    asked = []

    def stop_on_third_question() -> bool:
        asked.append(1)
        return len(asked) == 3

    with pytest.raises(DreamInterrupted, match=f"before dream step 3 of {T}"):
        dream(world_model, start, should_stop=stop_on_third_question)
    assert len(asked) == 3
    never = dream(world_model, start, should_stop=lambda: False)
    for name, value in dream(world_model, start).as_dict().items():
        assert torch.equal(value, getattr(never, name)), name
