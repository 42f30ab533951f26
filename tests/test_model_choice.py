"""Choosing a model of the shared population (world_model.choose), contributions and balancing,
and what waiting_for_lock shows about the holders."""

from __future__ import annotations

import uuid

import pytest
import torch

from ptzjepa.config.loading import load_config
from ptzjepa.distributed import contributions, model_choice
from ptzjepa.distributed.locks import LocalLocker
from ptzjepa.node import model_store
from ptzjepa.node.context import Node
from ptzjepa.stages.wait_for_lock import wait_for_lock
from ptzjepa.stages.world_model import train_world_model
from ptzjepa.storage.store import Store
from ptzjepa.view.events import Events
from tests.stage_helpers import captured_node


def _node(*overrides: str, name: str = "cam", cycle: int = 0, store: Store | None = None) -> Node:
    config = load_config("tiny", ["world_model.population=3", *overrides])
    return Node(config=config, store=store or Store(f"memory://choice-{uuid.uuid4().hex}"), name=name, cycle=cycle)


def _contributed(node: Node, model: str, **updates: int) -> None:
    """A committed version of `model` whose metadata says who contributed how many updates."""
    table = {n: {"updates": u, "frames": u, "epochs": 1, "seconds": 1.0} for n, u in updates.items()}
    model_store.world_models(node).save(model, {"w": torch.zeros(1)}, {"contributions": table})


def test_rotate_moves_each_node_through_the_population_cycle_by_cycle():
    orders = [model_choice.order(_node(cycle=c), model_store.world_models(_node())) for c in range(3)]
    assert [o[0] for o in orders] == [orders[0][c % 3] for c in range(3)] and len({o[0] for o in orders}) == 3
    assert all(sorted(o) == ["wm-0", "wm-1", "wm-2"] for o in orders)


def test_least_contributed_puts_the_models_this_node_trained_least_first():
    node = _node("world_model.choose=least_contributed")
    _contributed(node, "wm-0", cam=30, other=1)
    _contributed(node, "wm-1", cam=5, other=90)
    assert model_choice.order(node, model_store.world_models(node)) == ["wm-2", "wm-1", "wm-0"]


def test_random_is_a_permutation_drawn_again_the_same_on_resume():
    nodes = [_node("world_model.choose=random", cycle=c) for c in range(6)]
    orders = [tuple(model_choice.order(n, model_store.world_models(n))) for n in nodes]
    assert all(sorted(o) == ["wm-0", "wm-1", "wm-2"] for o in orders) and len(set(orders)) > 1
    again = _node("world_model.choose=random", cycle=3)
    assert tuple(model_choice.order(again, model_store.world_models(again))) == orders[3]


def test_a_leased_model_is_passed_over_for_a_free_one():
    node = _node()
    first, *rest = model_choice.order(node, model_store.world_models(node))
    held = LocalLocker(node.store, "other").acquire(f"world_models/{first}")
    name, lease = model_store.lease_world_model(node)
    assert name == rest[0] and lease is not None
    lease.release()
    held.release()


def test_the_allowance_keeps_a_node_within_the_margin_of_the_others_mean():
    table = {"fast": {"updates": 100}, "slow": {"updates": 20}, "mid": {"updates": 60}}
    assert contributions.allowance(table, "fast", 0.25) == 0  # 100 > 1.25 * 40
    assert contributions.allowance(table, "slow", 0.25) == int(80 * 1.25) - 20
    assert contributions.allowance({"fast": {"updates": 100}}, "fast", 0.25) is None  # nobody to balance against
    assert contributions.allowance({"old": 3, "new": {"updates": 4}}, "new", 0.0) == 0  # an older bare count


def test_balancing_skips_the_models_a_node_is_ahead_on_and_yields_when_it_is_ahead_on_all():
    node = _node("world_model.balance=true")
    for model in ("wm-0", "wm-1", "wm-2"):
        _contributed(node, model, cam=100, other=10)
    assert model_store.lease_world_model(node) == (model_choice.YIELDED, None)
    _contributed(node, "wm-1", cam=10, other=100)
    name, lease = model_store.lease_world_model(node)
    assert name == "wm-1"
    lease.release()
    unbalanced = Node(config=load_config("tiny", ["world_model.population=3"]), store=node.store, name="cam")
    name, lease = model_store.lease_world_model(unbalanced)  # off by default: the rotation's first model
    assert name == model_choice.order(unbalanced, model_store.world_models(unbalanced))[0]
    lease.release()


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_balanced_node_trains_only_up_to_the_others_and_then_yields(one_thread):
    """Node `other` trains one epoch; node `cam` (the same updates per epoch, four epochs), with
    balancing at margin 0.25, stops at its allowance, checked per update: 1.25 x other's updates,
    one epoch and a quarter (not a whole number of epochs), and the next time yields the model
    instead of training it. Every node's contributions are in the model's metadata."""
    other = captured_node("run.node=other", "world_model.epochs=1")
    assert train_world_model(other) == "done"
    per_epoch = model_store.world_models(other).current("wm-0")["contributions"]["other"]["updates"]
    events = Events()
    seen: list = []
    events.subscribe(seen.append)
    config = load_config("tiny", ["world_model.epochs=4", f"world_model.updates_per_cycle={4 * per_epoch}",
                                  "world_model.patience=4", "world_model.balance=true"])
    cam = Node(config=config, store=other.store, events=events, name="cam", cycle=1)
    assert train_world_model(cam) == "done"
    table = model_store.world_models(cam).current("wm-0")["contributions"]
    allowed = int(per_epoch * 1.25)
    assert per_epoch >= 4 and table["cam"]["updates"] == allowed and table["cam"]["epochs"] == 1, table
    assert table["other"]["epochs"] == 1 and table["other"]["frames"] > 0
    assert any(e.kind == "balance" and e.data.get("allowed_updates") == allowed for e in seen)
    version = model_store.world_models(cam).current("wm-0")["version"]
    assert train_world_model(cam) == "done"  # ahead now: yields
    assert model_store.world_models(cam).current("wm-0")["version"] == version
    assert any(e.kind == "balance" and "not training" in e.data.get("status", "") for e in seen)


def test_waiting_for_lock_shows_who_holds_each_model_and_for_how_long():
    node = _node("locks.wait_s=0.3", "world_model.population=2")
    events = Events()
    seen: list = []
    events.subscribe(seen.append)
    node.events = events
    held = [LocalLocker(node.store, "cam2").acquire(f"world_models/wm-{i}") for i in range(2)]
    assert wait_for_lock(node) == "timeout"
    statuses = {e.data["resource"]: e.data["status"] for e in seen if e.kind == "lock"}
    assert statuses["world_models/wm-0"].startswith("held by cam2 for ")
    assert statuses["world_models/wm-1"].endswith(f"(token {held[1].token})")
    held[0].release()
    assert wait_for_lock(node) == "free"
    held[1].release()
