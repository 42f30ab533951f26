"""The DQN agent: Q-network shapes, replay ring, transitions from dreams, and that it learns.

The learning test is built to be able to fail: the same training run is repeated with the
reward moved to another action (the agent must follow it) and with a learning rate of 0 (the
agent must not find the rewarded action by accident).
"""

from __future__ import annotations

import pytest
import torch

from ptzjepa.learning.agent.dqn import (
    DQNSettings,
    DQNTrainer,
    dreams_to_transitions,
    param_groups,
    select_reward,
)
from ptzjepa.learning.agent.dreamer import Dreams
from ptzjepa.learning.agent.qnet import QNetSpec, QNetwork
from ptzjepa.learning.agent.replay import ReplayBuffer, Transitions

D, N, A = 16, 16, 5  # token width, tokens (4x4 grid), actions


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: threads only add contention (a busy 2-core box ran 30x slower with 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_dreams(num: int, length: int, seed: int, best: int = 3) -> Dreams:
    """Random states and actions; action `best` earns 1, every other action at most 0.5."""
    g = torch.Generator().manual_seed(seed)
    actions = torch.randint(0, A, (num, length), generator=g)
    reward = torch.where(actions == best, 1.0, 0.5 * torch.rand(num, length, generator=g))
    poses = torch.stack(
        (
            360 * torch.rand(num, length + 1, generator=g),
            -20 + 110 * torch.rand(num, length + 1, generator=g),
            1 + 3 * torch.rand(num, length + 1, generator=g),
        ),
        dim=-1,
    )
    return Dreams(
        states=torch.randn(num, length + 1, N, D, generator=g),
        poses=poses,
        actions=actions,
        reward_head=torch.zeros(num, length),
        delta_reward=torch.zeros(num, length),
        prediction_error=reward,
    )


def tiny_spec(pool: int = 2) -> QNetSpec:
    return QNetSpec(embed_dim=D, num_tokens=N, num_actions=A, width=32, depth=1, heads=2, pool=pool)


def train_agent(dreams: Dreams, lr: float, steps: int = 150, seed: int = 0) -> DQNTrainer:
    torch.manual_seed(seed)
    trainer = DQNTrainer(
        QNetwork(tiny_spec()), DQNSettings(gamma=0.5, tau=0.01, lr=lr, weight_decay=0.0)
    )
    replay = ReplayBuffer(capacity=4096)
    trainer.add_to_replay(replay, dreams_to_transitions(dreams, "prediction_error"))
    trainer.train_steps(replay, steps, 32, torch.Generator().manual_seed(seed))
    return trainer


def held_out_pick_rate(trainer: DQNTrainer, action: int) -> float:
    held_out = make_dreams(64, 1, seed=999)
    picks = trainer.greedy_actions(held_out.states[:, 0], held_out.poses[:, 0])
    return float((picks == action).float().mean())


def test_agent_learns_the_rewarded_action():
    trainer = train_agent(make_dreams(64, 4, seed=1), lr=3e-3)
    assert held_out_pick_rate(trainer, 3) >= 0.9


def test_agent_follows_the_reward_when_it_moves_to_another_action():
    trainer = train_agent(make_dreams(64, 4, seed=1, best=1), lr=3e-3)
    assert held_out_pick_rate(trainer, 1) >= 0.9
    assert held_out_pick_rate(trainer, 3) <= 0.1


def test_agent_with_shuffled_rewards_does_not_find_the_action():
    dreams = make_dreams(64, 4, seed=1)
    order = torch.randperm(dreams.actions.numel(), generator=torch.Generator().manual_seed(0))
    dreams.prediction_error = dreams.prediction_error.flatten()[order].view_as(dreams.actions)
    trainer = train_agent(dreams, lr=3e-3)
    assert held_out_pick_rate(trainer, 3) < 0.5


def test_agent_with_zero_learning_rate_does_not_find_the_action():
    trainer = train_agent(make_dreams(64, 4, seed=1), lr=0.0)
    assert held_out_pick_rate(trainer, 3) < 0.5


def test_qnetwork_shapes_and_pooling_equivalence():
    torch.manual_seed(0)
    net = QNetwork(tiny_spec(pool=2)).eval()
    tokens, poses = torch.randn(3, N, D), torch.tensor([[10.0, 5.0, 1.0]] * 3)
    q = net(tokens, poses)
    assert q.shape == (3, A) and q.dtype == torch.float32
    assert net.pool(tokens).shape == (3, N // 4, D)
    torch.testing.assert_close(net.forward_pooled(net.pool(tokens), poses), q)
    # The pooled grid averages 2x2 neighbours: token 0 of the pool is tokens 0, 1, 4, 5.
    torch.testing.assert_close(net.pool(tokens)[:, 0], tokens[:, [0, 1, 4, 5]].mean(dim=1))
    with pytest.raises(ValueError, match=r"tokens must be \[B, 16, 16\]"):
        net(torch.randn(3, 9, D), poses)


def test_an_agent_stored_under_the_earlier_block_names_loads_the_same_weights():
    torch.manual_seed(0)
    net = QNetwork(tiny_spec(pool=2)).eval()
    earlier = {"attn.qkv.": "qkv.", "attn.proj.": "proj.", "fc1.": "mlp.0.", "fc2.": "mlp.2."}
    stored = {}
    for key, value in net.state_dict().items():
        for now, before in earlier.items():
            key = key.replace(f".{now}", f".{before}")
        stored[key] = value
    assert "blocks.0.mlp.2.weight" in stored and "blocks.0.fc2.weight" not in stored
    torch.manual_seed(1)
    loaded = QNetwork(tiny_spec(pool=2)).eval()
    tokens, poses = torch.randn(2, N, D), torch.tensor([[10.0, 5.0, 1.0]] * 2)
    assert not torch.equal(loaded(tokens, poses), net(tokens, poses))
    loaded.load_state_dict(stored)  # strict: every parameter found under its name
    assert torch.equal(loaded(tokens, poses), net(tokens, poses))
    assert [n for n, _ in loaded.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_qnet_spec_rejects_bad_sizes():
    with pytest.raises(ValueError, match="QNetSpec.num_tokens"):
        QNetSpec(embed_dim=8, num_tokens=15, num_actions=3)
    with pytest.raises(ValueError, match="QNetSpec.pool"):
        QNetSpec(embed_dim=8, num_tokens=16, num_actions=3, pool=3, width=6, heads=3)
    with pytest.raises(ValueError, match="QNetSpec.width"):
        QNetSpec(embed_dim=8, num_tokens=16, num_actions=3, width=10, heads=3)


def _transitions(first: int, n: int) -> Transitions:
    """n transitions whose reward (and state value) is their running number."""
    ids = torch.arange(first, first + n, dtype=torch.float32)
    return Transitions(
        states=ids.view(n, 1, 1).expand(n, 4, 2).clone(),
        poses=torch.zeros(n, 3),
        actions=torch.arange(n) % 3,
        next_states=ids.view(n, 1, 1).expand(n, 4, 2).clone() + 0.5,
        next_poses=torch.ones(n, 3),
        rewards=ids,
    )


def test_replay_ring_wraps_and_keeps_the_newest():
    replay = ReplayBuffer(capacity=5, state_dtype=torch.float32)
    replay.add(_transitions(0, 3))
    assert len(replay) == 3 and replay.allocated == 3  # grows on demand, not up front
    replay.add(_transitions(3, 4))  # 7 added into 5 slots: 0 and 1 are overwritten
    assert len(replay) == 5 and replay.allocated == 5
    batch = replay.sample(200, torch.Generator().manual_seed(0))
    assert set(batch.rewards.tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}
    torch.testing.assert_close(batch.states[:, 0, 0], batch.rewards)  # rows stay together
    torch.testing.assert_close(batch.next_states[:, 0, 0], batch.rewards + 0.5)
    replay.add(_transitions(100, 12))  # more than the capacity: only the newest 5 stay
    batch = replay.sample(200, torch.Generator().manual_seed(1))
    assert set(batch.rewards.tolist()) == {107.0, 108.0, 109.0, 110.0, 111.0}


def test_replay_stores_compact_states_and_checks_shapes():
    replay = ReplayBuffer(capacity=8)
    replay.add(_transitions(0, 2))
    assert replay._store["states"].dtype == torch.float16
    assert replay.sample(4, torch.Generator()).states.dtype == torch.float32
    with pytest.raises(ValueError, match=r"states must be \[B, 4, 2\]"):
        bad = _transitions(0, 2)
        replay.add(Transitions(**{**bad.__dict__, "states": torch.zeros(2, 3, 2), "next_states": torch.zeros(2, 3, 2)}))
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(capacity=2).sample(1, torch.Generator())


def test_dreams_to_transitions_pairs_each_state_with_the_next():
    dreams = make_dreams(3, 4, seed=0)
    dreams.delta_reward = torch.arange(12.0).view(3, 4)
    tr = dreams_to_transitions(dreams, "delta_reward")
    assert len(tr) == 12
    # Transition 6 = dream 1, step 2.
    torch.testing.assert_close(tr.states[6], dreams.states[1, 2])
    torch.testing.assert_close(tr.next_states[6], dreams.states[1, 3])
    torch.testing.assert_close(tr.next_poses[6], dreams.poses[1, 3])
    assert int(tr.actions[6]) == int(dreams.actions[1, 2]) and float(tr.rewards[6]) == 6.0
    with pytest.raises(ValueError, match="reward: expected one of"):
        select_reward(dreams, "surprise")


def test_td_target_is_double_dqn():
    torch.manual_seed(0)
    trainer = DQNTrainer(QNetwork(tiny_spec()), DQNSettings(gamma=0.9))
    with torch.no_grad():  # make the two networks disagree
        for p in trainer.target.parameters():
            p.add_(0.5 * torch.randn_like(p))
    batch = _pooled_batch(trainer, 6)
    q_next_online = trainer.online.forward_pooled(batch.next_states, batch.next_poses)
    q_next_target = trainer.target.forward_pooled(batch.next_states, batch.next_poses)
    best = q_next_online.argmax(dim=1, keepdim=True)
    expected = batch.rewards + 0.9 * q_next_target.gather(1, best).squeeze(1)
    torch.testing.assert_close(trainer.td_target(batch), expected)


def _pooled_batch(trainer: DQNTrainer, n: int) -> Transitions:
    replay = ReplayBuffer(capacity=64)
    trainer.add_to_replay(replay, dreams_to_transitions(make_dreams(n, 2, seed=3)))
    return replay.sample(n, torch.Generator().manual_seed(0))


def test_step_soft_updates_target_and_skips_decay_on_biases_and_norms():
    torch.manual_seed(0)
    trainer = DQNTrainer(QNetwork(tiny_spec()), DQNSettings(tau=0.25, lr=1e-2))
    before = [p.clone() for p in trainer.target.parameters()]
    trainer.step(_pooled_batch(trainer, 8))
    for old, new, online in zip(before, trainer.target.parameters(), trainer.online.parameters()):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * online)
    decay, no_decay = param_groups(trainer.online, 0.04)
    assert all(p.ndim == 2 for p in decay["params"]) and decay["weight_decay"] == 0.04
    assert no_decay["weight_decay"] == 0.0
    assert any(p is trainer.online.pos for p in no_decay["params"])
    assert all(p.ndim == 1 or p is trainer.online.pos for p in no_decay["params"])


def test_standard_reward_norm_keeps_the_order_and_sets_the_scale():
    from ptzjepa.learning.agent.dqn import normalise_rewards

    raw = torch.tensor([[0.20, 0.21, 0.25], [0.19, 0.30, 0.22]])
    z = normalise_rewards(raw, "standard")
    assert torch.equal(z.flatten().argsort(), raw.flatten().argsort())
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1.0) < 1e-5
    assert torch.equal(normalise_rewards(raw, "none"), raw)
    with pytest.raises(ValueError, match="reward_norm"):
        normalise_rewards(raw, "minmax")


def test_transitions_carry_normalised_rewards():
    dreams = make_dreams(6, 3, seed=1)
    tr = dreams_to_transitions(dreams, "prediction_error", "standard")
    assert abs(float(tr.rewards.mean())) < 1e-5
    assert abs(float(tr.rewards.std()) - 1.0) < 1e-4
