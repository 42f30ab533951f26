"""The held-out set, the evaluate stage and graded navigation on the tiny profile's simulator."""

import attrs
import pytest
import torch

from ptzjepa.camera.base import PTZ
from ptzjepa.config.loading import load_config
from ptzjepa.metrics import heldout
from ptzjepa.metrics.choice import load_choices
from ptzjepa.metrics.coverage import frames_taken
from ptzjepa.node import model_store
from ptzjepa.node.context import Node
from ptzjepa.stages.evaluate import COVERAGE, evaluate
from ptzjepa.stages.navigate import navigate
from ptzjepa.stages.world_model import train_world_model
from ptzjepa.storage.embeddings import read_embedding
from tests.stage_helpers import captured_node


def _cases(*sets):
    config = load_config("tiny", list(sets))
    limits = config.camera.limits.to_limits()
    return heldout.make_cases(config, limits, model_store.action_table(config, limits))


def test_held_out_cases_depend_only_on_their_seed_and_the_scene():
    first, second = _cases(), _cases("navigate.seed=7", "capture.seed=3", "navigate.policy=random")
    assert first == second and heldout.digest(first) == heldout.digest(second)
    assert len(first) == 8 and all(len(c.poses) == 3 for c in first)  # the tiny profile's 8
    assert _cases("metrics.heldout_seed=1") != first and _cases("sim.seed=1") != first
    limits = load_config("tiny").camera.limits.to_limits()
    assert all(limits.contains(p) for c in first for p in c.all_poses())


def test_held_out_cases_are_disjoint_from_stored_frames_and_a_coinciding_one_is_found():
    node = captured_node()
    cases = _cases()
    records = frames_taken(node.store)
    assert len(records) == 15 and heldout.overlapping(cases, records) == set()
    moved = attrs.evolve(records[0], ptz=PTZ(cases[4].poses[1].pan + 1e-4, cases[4].poses[1].tilt,
                                              cases[4].poses[1].zoom))
    assert heldout.overlapping(cases, [*records, moved]) == {4}


def test_effective_rank_counts_the_directions_the_embeddings_use():
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(16, 16))[0][:3]
    spread = torch.cat([basis * s for s in (1.0, -1.0)])  # 3 directions, equal weight
    assert heldout.effective_rank(spread) == pytest.approx(3.0, rel=1e-4)
    assert heldout.effective_rank(torch.ones(10, 16)) == 0.0  # collapsed: every view the same
    assert heldout.effective_rank(torch.randn(10, 1) * torch.randn(1, 16)) == pytest.approx(1.0, abs=1e-3)


def test_evaluate_stores_coverage_and_held_out_figures_of_the_trained_world_model():
    node = captured_node("world_model.epochs=1", "metrics.heldout_cases=6", "metrics.heldout_rollout=2")
    assert evaluate(node) == "done"  # no world model yet: coverage only
    assert node.store.exists(f"{COVERAGE}/c00000.json")
    assert not node.store.exists(f"{heldout.HELDOUT}/c00000.json")
    assert train_world_model(node) == "done"
    seen = []
    node.events.subscribe(lambda e: seen.append(e.data["name"]) if e.kind == "metric" else None)
    assert evaluate(node) == "done"
    result = node.store.read_json(f"{heldout.HELDOUT}/c00000.json")
    assert result["cases"] == 6 and result["excluded"] == 0 and result["k"] == 2
    assert result["world_model"] == "wm-0" and len(result["rollout"]) == 2
    assert result["k_step"] == result["rollout"][-1]
    for key in ("one_step", "k_step", "target_std_mean", "target_std_min", "reward_channel_mean"):
        assert result[key] >= 0 and result[key] == result[key], key
    assert 1.0 <= result["effective_rank"] <= result["embed_dim"] and result["views"] == 18
    assert {"coverage", "heldout_one_step", "heldout_k_step"} <= set(seen)
    cover = node.store.read_json(f"{COVERAGE}/c00000.json")
    assert cover["all"]["frames"] == 15 and cover["by_stage"]["capture"]["frames"] == 15
    assert evaluate(node) == "done"  # a repeated stage gives the same figures
    assert node.store.read_json(f"{heldout.HELDOUT}/c00000.json")["one_step"] == result["one_step"]


@pytest.mark.parametrize("policy", ["random", "sweep"])
def test_baseline_policies_navigate_without_an_agent_and_every_move_is_graded(policy):
    node = captured_node("world_model.epochs=1", f"navigate.policy={policy}", "metrics.choice_every=1")
    assert train_world_model(node) == "done"
    assert navigate(node) == "done"  # no agent trained: the baselines need none
    moves = node.config.navigate.iterations * node.config.navigate.movements
    graded = load_choices(node.store)
    assert len(graded) == moves
    assert all(0.0 <= g["percentile"] <= 100.0 and g["policy"] == policy and len(g["errors"]) == 21
               for g in graded)
    nav = sorted((r for r in frames_taken(node.store) if r.stage == "navigate"), key=lambda r: r.id)
    by_id = {g["id"]: g for g in graded}
    for record in nav:
        if record.command.kind != "action":
            continue
        assert by_id[record.id]["action"] == record.command.action
        stored = read_embedding(node.store, record.id)
        assert stored.policy == policy and stored.choice_percentile == by_id[record.id]["percentile"]
    if policy == "sweep":
        assert {r.command.action for r in nav if r.command.kind == "action"} == {"jump_right"}  # 3 moves a round
    else:  # the agent's own policy still needs the agent
        config = node.config
        curious = Node(config=attrs.evolve(config, navigate=attrs.evolve(config.navigate, policy="curiosity")),
                       store=node.store, cycle=1)
        curious.use_camera(node.camera())
        assert navigate(curious) == "no_agent"
