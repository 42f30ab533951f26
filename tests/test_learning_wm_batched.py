"""The batched update (all micro-batches in one pass) is the micro-batch loop, exactly."""

from __future__ import annotations

import pytest
import torch

from ptzjepa.learning.world_model.batched import batched_pair_step, micro_pair_index
from ptzjepa.learning.world_model.steps import pair_index, pair_step
from tests.test_learning_wm_steps import double_model, take_grads

POSES = [[10.0, 5.0, 1.0], [200.0, -10.0, 2.0], [359.0, 40.0, 1.5], [90.0, 0.0, 3.0],
         [45.0, 20.0, 1.2], [300.0, -5.0, 2.5]]


def test_pairs_stay_inside_each_micro_batch_in_the_loops_order():
    ctx, tgt = micro_pair_index(3, 2, "cpu")
    one_c, one_t = pair_index(2, "cpu")
    assert ctx.tolist() == [*(one_c + 0).tolist(), *(one_c + 2).tolist(), *(one_c + 4).tolist()]
    assert tgt.tolist() == [*(one_t + 0).tolist(), *(one_t + 2).tolist(), *(one_t + 4).tolist()]


@pytest.mark.parametrize("reduction, micro_batch", [("mean", 2), ("sum", 3), ("mean", 6)])
def test_one_batched_pass_equals_the_micro_batch_loop(reduction, micro_batch):
    """Loss, surprise and error of every micro-batch and the accumulated gradients, float64."""
    model = double_model()
    torch.manual_seed(2)
    images = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    poses = torch.tensor(POSES, dtype=torch.float64)
    micro = 6 // micro_batch
    kw = {"reward_weight": 0.7, "surprise_reduction": reduction}
    loop = [pair_step(model, images[m * micro_batch:(m + 1) * micro_batch], poses[m * micro_batch:(m + 1) * micro_batch],
                      loss_scale=1.0 / micro, **kw) for m in range(micro)]
    want = take_grads(model)
    got = batched_pair_step(model, images, poses, micro_batch, **kw)
    grads = take_grads(model)
    assert got.pairs == micro * micro_batch**2 and got.surprise.shape == (micro,)
    for name in ("loss", "prediction_loss", "reward_loss", "surprise", "error"):
        expected = torch.stack([getattr(s, name) for s in loop])
        torch.testing.assert_close(getattr(got, name), expected, rtol=1e-11, atol=0, msg=name)
    assert len(set(got.surprise.tolist())) == micro  # a surprise of its own per micro-batch
    assert set(grads) == set(want)
    for name, g in grads.items():
        torch.testing.assert_close(g, want[name], rtol=1e-10, atol=1e-14, msg=name)
    assert all(p.grad is None and not p.requires_grad for p in model.target_encoder.parameters())


def test_bad_micro_batches_are_one_line_errors():
    model = double_model()
    images, poses = torch.randn(6, 3, 32, 32, dtype=torch.float64), torch.tensor(POSES, dtype=torch.float64)
    with pytest.raises(ValueError, match="micro_batch: expected a divisor of the 6 images, got 4"):
        batched_pair_step(model, images, poses, 4)
    with pytest.raises(ValueError, match=r"images, poses: expected \[G, 3, H, W\] and \[G, 3\]"):
        batched_pair_step(model, images, poses[:5], 2)


def test_trainer_update_batched_or_looped_gives_the_same_model_and_a_stop_drops_the_partial_update():
    from ptzjepa.learning.world_model.optim import WorldModelTrainer
    from tests.test_learning_wm_steps import flat_schedules

    images = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    poses = torch.tensor(POSES, dtype=torch.float64)
    models, values = [], []
    for batched in (False, True):
        model = double_model()
        trainer = WorldModelTrainer(model, flat_schedules(4), accumulation=3, batched=batched)
        values.append([trainer.update(images, poses) for _ in range(2)])
        assert trainer.updates == 2 and trainer.pending == 0
        models.append(model.state_dict())
    for key in ("loss", "surprise"):
        assert values[0][1][key] == pytest.approx(values[1][1][key], rel=1e-10)
    for key in models[0]:
        torch.testing.assert_close(models[0][key], models[1][key], rtol=1e-9, atol=1e-12, msg=key)
    model = double_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = WorldModelTrainer(model, flat_schedules(4), accumulation=3)
    asked = []
    assert trainer.update(images, poses, should_stop=lambda: asked.append(1) or True) is None
    assert len(asked) == 1 and trainer.updates == 0 and trainer.pending == 0  # stopped after one micro-batch
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
