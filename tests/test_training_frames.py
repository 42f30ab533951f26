"""The world model's frames: a bank decoded once per process, a sampler reproducible per update."""

from __future__ import annotations

import torch

from ptzjepa.node.frame_tensors import pose_of, to_tensor
from ptzjepa.node.training_frames import FrameBank, FrameSampler
from tests.stage_helpers import captured_node


def test_sampler_is_seeded_per_update_favours_the_newest_and_keeps_the_old():
    sampler = FrameSampler(1000, 32, seed=3, cycle=2, updates_per_epoch=10, recent_frames=100, recent_share=0.5)
    again = FrameSampler(1000, 32, seed=3, cycle=2, updates_per_epoch=10, recent_frames=100, recent_share=0.5)
    assert torch.equal(sampler.rows(7), again.rows(7))  # a resumed run draws what an unbroken one did
    assert not torch.equal(sampler.rows(7), sampler.rows(8))
    assert not torch.equal(sampler.rows(7), FrameSampler(1000, 32, seed=3, cycle=3, updates_per_epoch=10).rows(7))
    draws = torch.cat([sampler.rows(u) for u in range(300)])
    assert all(len(set(sampler.rows(u).tolist())) == 32 for u in range(20))  # no frame twice in a batch
    recent = float((draws >= 900).float().mean())
    assert 0.42 < recent < 0.58, recent  # the newest 10 % get half of the draws
    assert len(set(draws[draws < 900].tolist())) > 850  # and the old ones are still seen


def test_passes_mode_visits_every_frame_once_per_epoch_with_static_batches():
    sampler = FrameSampler(10, 4, seed=0, cycle=0)
    assert sampler.passes and sampler.updates_per_epoch == 3
    epoch = torch.cat([sampler.rows(u) for u in range(3)])
    assert epoch.shape == (12,) and set(epoch.tolist()) == set(range(10))
    assert FrameSampler(3, 8, seed=0, cycle=0, updates_per_epoch=2).rows(0).shape == (8,)  # more than stored


def test_bank_decodes_once_drops_removed_frames_and_matches_the_models_input():
    node = captured_node()
    records = list(node.frames.records())
    bank = FrameBank(64, torch.device("cpu"))
    assert bank.select(node.store, records[:-2]) == records[:-2]
    first = bank.pixels
    assert bank.select(node.store, records) == records and torch.equal(bank.pixels[: len(records) - 2], first)
    kept = records[1:]
    assert bank.select(node.store, kept) == kept and bank.pixels.shape[0] == len(kept)
    images, poses = bank.batch(bank.rows(kept[:3]), (1.0, 1.0), torch.Generator().manual_seed(0))
    single = [(to_tensor(node.frames.image(r), 64), pose_of(r)) for r in kept[:3]]  # what navigation reads
    torch.testing.assert_close(images, torch.stack([x for x, _ in single]), atol=1e-5, rtol=0)
    torch.testing.assert_close(poses, torch.stack([p for _, p in single]))
    cropped, _ = bank.batch(bank.rows(kept[:3]), (0.5, 0.6), torch.Generator().manual_seed(0))
    assert cropped.shape == images.shape and not torch.allclose(cropped, images)
