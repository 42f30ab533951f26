"""Double DQN over dreamed transitions: the agent learns which move is most rewarding.

The online network picks the best next action and the slowly-following target network values
it (double DQN), which keeps the max in the target from chasing its own noise. Loss is Huber;
AdamW decays only weight matrices (not biases, norms or the position table); gradients are
clipped; the target follows the online network by a soft update with `tau` after every step.
The learning-rate schedule and the plateau stop belong to the caller: step() takes the lr.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ptzjepa.learning.agent.dreamer import Dreams
from ptzjepa.learning.agent.qnet import QNetwork
from ptzjepa.learning.agent.replay import ReplayBuffer, Transitions

REWARD_NAMES = ("prediction_error", "reward_head", "delta_reward")
REWARD_NORMS = ("none", "standard")


@dataclass(frozen=True)
class DQNSettings:
    gamma: float = 0.99
    tau: float = 0.0005
    lr: float = 1e-4
    weight_decay: float = 0.04
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    huber_beta: float = 1.0
    double: bool = True  # False: the plain max over the target network, which overestimates Q
    autocast_bf16: bool = False  # bfloat16 forward passes on CUDA (ignored on CPU)

    def __post_init__(self) -> None:
        checks = {
            "gamma": 0.0 <= self.gamma <= 1.0,
            "tau": 0.0 < self.tau <= 1.0,
            "lr": self.lr >= 0.0,
            "weight_decay": self.weight_decay >= 0.0,
            "grad_clip": self.grad_clip >= 0.0,
            "huber_beta": self.huber_beta > 0.0,
        }
        for name, ok in checks.items():
            if not ok or not math.isfinite(getattr(self, name)):
                raise ValueError(f"DQNSettings.{name}: out of range, got {getattr(self, name)}")


def select_reward(dreams: Dreams, reward_name: str) -> torch.Tensor:
    """The [B, T] reward the agent learns from, chosen by name."""
    if reward_name not in REWARD_NAMES:
        raise ValueError(f"reward: expected one of {', '.join(REWARD_NAMES)}, got {reward_name!r}")
    return getattr(dreams, reward_name)


def normalise_rewards(rewards: torch.Tensor, norm: str) -> torch.Tensor:
    """Rewards on a scale the Q-network can tell apart, the same for every dream set.

    A world model's error shrinks as it learns (0.25 one cycle, 0.05 a few later), so raw rewards
    differ between actions by a few hundredths: less than the noise of a freshly initialised
    target network that the TD target adds at gamma near 1, which then decides the argmax alone.
    `standard` turns each set's rewards into z-scores (mean 0, std 1 over all its steps), which
    keeps their order, and so the best move, and makes their spread the same in every cycle.
    """
    if norm not in REWARD_NORMS:
        raise ValueError(f"reward_norm: expected one of {', '.join(REWARD_NORMS)}, got {norm!r}")
    if norm == "none" or rewards.numel() < 2:
        return rewards
    r = rewards.float()
    return (r - r.mean()) / r.std().clamp_min(1e-8)


def dreams_to_transitions(dreams: Dreams, reward_name: str = "prediction_error",
                          reward_norm: str = "none") -> Transitions:
    """Every step of every dream as one transition (B*T of them), dream-major order."""
    rewards = normalise_rewards(select_reward(dreams, reward_name), reward_norm)
    b, t = dreams.actions.shape
    n, d = dreams.states.shape[2:]
    return Transitions(
        states=dreams.states[:, :-1].reshape(b * t, n, d),
        poses=dreams.poses[:, :-1].reshape(b * t, 3),
        actions=dreams.actions.reshape(b * t),
        next_states=dreams.states[:, 1:].reshape(b * t, n, d),
        next_poses=dreams.poses[:, 1:].reshape(b * t, 3),
        rewards=rewards.reshape(b * t).float(),
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight matrices decay; biases, norm scales and 1-D/learned-table parameters do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.rsplit(".", 1)[-1] in ("bias", "pos"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class DQNTrainer:
    """Owns the online network, its target copy and the optimiser; one step() per batch.

    Move the network to its device before building the trainer: the target copy and the
    optimiser are made where the network is.
    """

    def __init__(self, online: QNetwork, settings: DQNSettings | None = None) -> None:
        self.settings = settings or DQNSettings()
        self.online = online
        self.target = copy.deepcopy(online).eval()
        for p in self.target.parameters():
            p.requires_grad_(False)
        on_cuda = next(online.parameters()).device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            param_groups(online, self.settings.weight_decay),
            lr=self.settings.lr,
            fused=True if on_cuda else None,  # one kernel for the whole update on a GPU
        )
        self.steps = 0

    @property
    def device(self) -> torch.device:
        return next(self.online.parameters()).device

    def _amp(self) -> contextlib.AbstractContextManager:
        if self.settings.autocast_bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def add_to_replay(self, replay: ReplayBuffer, transitions: Transitions) -> None:
        """Pool the states (no weights, so exact) and store them: 4x less memory at pool 2."""
        with torch.no_grad():
            pooled = Transitions(
                states=self.online.pool(transitions.states.float()),
                poses=transitions.poses,
                actions=transitions.actions,
                next_states=self.online.pool(transitions.next_states.float()),
                next_poses=transitions.next_poses,
                rewards=transitions.rewards,
            )
        replay.add(pooled)

    def td_target(self, batch: Transitions) -> torch.Tensor:
        """r + gamma * Q_target(s', a*), a* from the online net (double) or the target net."""
        with torch.no_grad(), self._amp():
            next_target = self.target.forward_pooled(batch.next_states, batch.next_poses).float()
            if self.settings.double:
                best = self.online.forward_pooled(batch.next_states, batch.next_poses).argmax(dim=1)
            else:
                best = next_target.argmax(dim=1)
            next_value = next_target.gather(1, best.unsqueeze(1)).squeeze(1)
        return batch.rewards.float() + self.settings.gamma * next_value

    def step(self, batch: Transitions, lr: float | None = None) -> float:
        """One gradient step on a batch of pooled transitions; returns the Huber loss."""
        return float(self._step(batch, lr))

    def _step(self, batch: Transitions, lr: float | None) -> torch.Tensor:
        """step() without reading the loss back, so a run of steps syncs a GPU only once."""
        batch = batch.to(self.device)
        if lr is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.online.train()
        target = self.td_target(batch)
        with self._amp():
            q = self.online.forward_pooled(batch.states, batch.poses).float()
        q_taken = q.gather(1, batch.actions.long().unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, target, beta=self.settings.huber_beta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.online.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.soft_update()
        self.steps += 1
        return loss.detach()

    @torch.no_grad()
    def soft_update(self) -> None:
        """target <- (1 - tau) * target + tau * online."""
        tau = self.settings.tau
        online = list(self.online.parameters())
        target = list(self.target.parameters())
        torch._foreach_lerp_(target, online, tau)

    def train_steps(
        self,
        replay: ReplayBuffer,
        steps: int,
        batch_size: int,
        generator: torch.Generator,
        lr: float | None = None,
    ) -> float:
        """`steps` steps on batches drawn from the replay; returns the mean loss."""
        if steps < 1:
            raise ValueError(f"train_steps: steps must be >= 1, got {steps}")
        losses = [self._step(replay.sample(batch_size, generator), lr) for _ in range(steps)]
        return float(torch.stack(losses).mean())

    @torch.no_grad()
    def greedy_actions(self, tokens: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
        """argmax_a Q(s, a) of the online network for full (unpooled) state tokens [B, N, D]."""
        self.online.eval()
        q = self.online(tokens.to(self.device).float(), poses.to(self.device).float())
        return q.argmax(dim=1)
