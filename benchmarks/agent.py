"""How fast the DQN agent trains and acts, at the sim config (ViT-tiny world model tokens).

    python benchmarks/agent.py [--device cpu|cuda] [--batch 64] [--steps 200] [--pools 1,2]
                               [--bf16|--no-bf16] [--quick]

Prints training transitions/s (batch of 64 from the replay memory, double-DQN step, soft update)
and the latency of one navigation decision (one state, Q for every action), for token pooling
1 (every token) and 2 (the default). Needs only torch: it imports nothing but ptzjepa.learning.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from device_setup import add_device_args, parse_with_quick, setup_device  # noqa: E402
from ptzjepa.learning.agent.dqn import DQNSettings, DQNTrainer  # noqa: E402
from ptzjepa.learning.agent.qnet import QNetSpec, QNetwork  # noqa: E402
from ptzjepa.learning.agent.replay import ReplayBuffer, Transitions  # noqa: E402

EMBED_DIM, NUM_TOKENS, NUM_ACTIONS = 192, 256, 21  # ViT-tiny, 224 px / patch 14, the 21 moves


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_transitions(n: int, generator: torch.Generator) -> Transitions:
    def poses() -> torch.Tensor:
        return torch.rand(n, 3, generator=generator) * torch.tensor([360.0, 110.0, 3.0]) + torch.tensor([0.0, -20.0, 1.0])

    return Transitions(
        states=torch.randn(n, NUM_TOKENS, EMBED_DIM, generator=generator),
        poses=poses(),
        actions=torch.randint(0, NUM_ACTIONS, (n,), generator=generator),
        next_states=torch.randn(n, NUM_TOKENS, EMBED_DIM, generator=generator),
        next_poses=poses(),
        rewards=torch.rand(n, generator=generator),
    )


def bench(args: argparse.Namespace, device: torch.device, pool: int) -> dict[str, float]:
    torch.manual_seed(0)
    spec = QNetSpec(EMBED_DIM, NUM_TOKENS, NUM_ACTIONS, args.width, args.depth, args.heads, pool=pool)
    net = QNetwork(spec).to(device)
    trainer = DQNTrainer(net, DQNSettings(autocast_bf16=args.bf16))
    replay = ReplayBuffer(args.replay, device=device)
    gen = torch.Generator().manual_seed(0)
    for lo in range(0, args.replay, 512):
        trainer.add_to_replay(replay, random_transitions(min(512, args.replay - lo), gen).to(device))
    trainer.train_steps(replay, args.warmup, args.batch, gen)
    sync(device)
    start = time.perf_counter()
    trainer.train_steps(replay, args.steps, args.batch, gen)
    sync(device)
    train_s = time.perf_counter() - start

    tokens = torch.randn(1, NUM_TOKENS, EMBED_DIM, device=device)
    pose = torch.tensor([[10.0, 5.0, 1.0]], device=device)
    for _ in range(args.warmup):
        trainer.greedy_actions(tokens, pose)
    sync(device)
    start = time.perf_counter()
    for _ in range(args.decisions):
        trainer.greedy_actions(tokens, pose)
    sync(device)
    act_s = (time.perf_counter() - start) / args.decisions
    params = sum(p.numel() for p in net.parameters())
    return {
        "params": params,
        "steps_per_s": args.steps / train_s,
        "transitions_per_s": args.steps * args.batch / train_s,
        "decision_ms": 1000 * act_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_args(parser)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--decisions", type=int, default=100)
    parser.add_argument("--replay", type=int, default=4096, help="transitions in the replay memory")
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--pools", default="1,2", help="token pooling factors to compare")
    parser.add_argument("--quick", action="store_true", help="few steps, for a smoke run on a CPU")
    args = parse_with_quick(parser, batch=16, steps=5, warmup=1, decisions=5, replay=256)
    device, name = setup_device(args, "agent.py")
    print(f"agent benchmark on {name}, torch {torch.__version__}")
    print(
        f"Q-network width {args.width} depth {args.depth} heads {args.heads} over {NUM_TOKENS} tokens "
        f"x {EMBED_DIM}, {NUM_ACTIONS} actions, batch {args.batch}, {args.steps} timed steps"
        + (", bf16 autocast" if args.bf16 else "")
    )
    for pool in (int(p) for p in args.pools.split(",")):
        r = bench(args, device, pool)
        tokens = (16 // pool) ** 2
        print(
            f"  pool {pool} ({tokens:3d} tokens, {r['params'] / 1e6:.2f} M params): "
            f"train {r['transitions_per_s']:9.0f} transitions/s ({r['steps_per_s']:7.1f} steps/s), "
            f"decision {r['decision_ms']:7.2f} ms"
        )


if __name__ == "__main__":
    main()
