"""Populations: `world_model.population` (shared models a node trains in rotation, new ones from
scratch or from the best existing one per `world_model.init_from`) and `agent.population` (a
node's own agents, one trained per cycle in round robin; navigation takes the newest)."""

from __future__ import annotations

import attrs
import pytest
import torch

from ptzjepa.distributed.locks import LocalLocker
from ptzjepa.node import model_store
from ptzjepa.node.context import Node
from ptzjepa.stages.agent import train_agent
from ptzjepa.stages.dream import dream
from ptzjepa.stages.world_model import train_world_model
from tests.stage_helpers import captured_node

CPU = torch.device("cpu")
NODE = "run.node=cam"  # a fixed name: the rotation and which model ends up best do not vary by host


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: extra threads only stall on a busy small machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rotation(node: Node) -> list[str]:
    """The population in the order lease_world_model's rule tries it in cycle 0."""
    names = model_store.population_names(node.config)
    start = model_store.stable_hash(node.name) % len(names)
    return names[start:] + names[:start]


def _record_starts(monkeypatch) -> list[tuple[str, dict[str, torch.Tensor], dict | None]]:
    """Each model the stage is about to train: its name, a copy of its weights, its metadata."""
    starts: list = []
    real = model_store.load_or_new_world_model

    def spy(node, name, *args, **kwargs):
        model, trainer, meta = real(node, name, *args, **kwargs)
        starts.append((name, {k: v.detach().clone() for k, v in model.state_dict().items()}, meta))
        return model, trainer, meta

    monkeypatch.setattr(model_store, "load_or_new_world_model", spy)
    return starts


def _stored_weights(node: Node, name: str) -> dict[str, torch.Tensor]:
    state, _ = model_store.world_models(node).load(name)
    return state["model"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train_cycle(node: Node, cycle: int, stage=train_world_model) -> None:
    node.cycle = cycle
    assert stage(node) == "done"


# --- world models -------------------------------------------------------------------------


def test_a_lone_node_trains_every_model_of_the_population_in_turn():
    node = captured_node(NODE, "world_model.population=2", "world_model.epochs=1", "world_model.init_from=scratch")
    order = _rotation(node)
    store = model_store.world_models(node)
    for cycle in range(3):
        _train_cycle(node, cycle)
        assert store.info(order[cycle % 2])["cycle"] == cycle, f"cycle {cycle} trained another model"
    assert sorted(store.names()) == ["wm-0", "wm-1"]
    assert store.info(order[0])["epochs_trained"] == 2 and store.info(order[1])["epochs_trained"] == 1
    assert store.info(order[0])["contributions"][node.name]["epochs"] == 2


def _killed_after_first_save(monkeypatch, node, save: str, stage) -> None:
    """Run `stage` until its first checkpoint is saved, then stop it there, as an interrupted run."""
    real = getattr(model_store, save)

    def stop_after_first_epoch(node, *args, **kwargs):
        saved = real(node, *args, **kwargs)
        node.stop.set()
        return saved

    monkeypatch.setattr(model_store, save, stop_after_first_epoch)
    assert stage(node) == "stopped"
    monkeypatch.setattr(model_store, save, real)
    node.stop.clear()


def test_a_run_resumed_in_the_same_cycle_goes_back_to_its_model(monkeypatch):
    node = captured_node(NODE, "world_model.population=2", "world_model.epochs=2", "world_model.patience=100",
                         "world_model.checkpoint_every_s=0")
    _killed_after_first_save(monkeypatch, node, "save_world_model", train_world_model)
    assert train_world_model(node) == "done"
    first = _rotation(node)[0]
    assert model_store.world_models(node).names() == [first]
    assert model_store.world_models(node).info(first)["session"]["epochs_done"] == 2


def test_init_from_best_starts_each_new_model_from_the_best_one(monkeypatch):
    node = captured_node(NODE, "world_model.population=3", "world_model.epochs=1", "world_model.init_from=best")
    starts = _record_starts(monkeypatch)
    order = _rotation(node)
    store = model_store.world_models(node)
    _train_cycle(node, 0)
    assert starts[0][0] == order[0] and starts[0][2] is None  # nothing to start from yet
    _train_cycle(node, 1)
    name, weights, meta = starts[1]
    assert name == order[1] and meta == {"parent": f"{order[0]} v1"}
    assert _same(weights, _stored_weights(node, order[0]))  # equal before training...
    assert not _same(_stored_weights(node, order[1]), _stored_weights(node, order[0]))  # ...not after
    assert store.info(order[1])["parent"] == f"{order[0]} v1"
    best, other = sorted(order[:2], key=lambda n: store.info(n)["last_loss"])
    _train_cycle(node, 2)
    name, weights, meta = starts[2]
    assert name == order[2] and meta == {"parent": f"{best} v1"}
    assert _same(weights, _stored_weights(node, best)) and not _same(weights, _stored_weights(node, other))


def test_init_from_scratch_starts_a_new_model_from_its_own_seeded_init(monkeypatch):
    node = captured_node(NODE, "world_model.population=2", "world_model.epochs=1", "world_model.init_from=scratch")
    starts = _record_starts(monkeypatch)
    order = _rotation(node)
    _train_cycle(node, 0)
    _train_cycle(node, 1)
    name, weights, meta = starts[1]
    assert name == order[1] and meta is None
    trained_first = _stored_weights(node, order[0])
    assert all(not torch.equal(weights[k], trained_first[k]) for k in weights if k.endswith(".weight"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(node.config.world_model.seed * 1_000_003 + model_store.stable_hash(name))
        fresh = model_store.build_world_model(model_store.world_model_spec(node.config))
    assert _same(weights, fresh.state_dict())
    assert model_store.world_models(node).info(order[1])["parent"] is None


def test_a_node_takes_the_next_free_model_and_is_locked_out_when_none_is():
    node = captured_node(NODE, "world_model.population=2")
    order = _rotation(node)
    other = LocalLocker(node.store, "other-node")
    held = other.acquire(f"{model_store.WORLD_MODELS}/{order[0]}")
    assert held is not None
    try:
        name, lease = model_store.lease_world_model(node)
        assert name == order[1]
        lease.release()
        second = other.acquire(f"{model_store.WORLD_MODELS}/{order[1]}")
        try:
            assert model_store.lease_world_model(node) is None
            assert train_world_model(node) == "locked"
        finally:
            second.release()
    finally:
        held.release()


# --- agents -------------------------------------------------------------------------------


def _dreamed(*overrides: str) -> Node:
    node = captured_node("world_model.epochs=1", "agent.epochs=2", "agent.patience=100", *overrides)
    assert train_world_model(node) == "done"
    assert dream(node) == "done"
    return node


def test_an_agent_population_trains_one_agent_per_cycle_and_navigates_with_the_newest():
    node = _dreamed("agent.population=2", NODE)
    store = model_store.agents(node)
    for cycle, name, version in ((0, "agent-cam-0", 2), (1, "agent-cam-1", 2), (2, "agent-cam-0", 4)):
        _train_cycle(node, cycle, train_agent)
        info = store.info(name)
        assert info["version"] == version and info["session"]["cycle"] == cycle
        assert model_store.load_agent(node, CPU)[1]["name"] == name
    assert sorted(store.names()) == ["agent-cam-0", "agent-cam-1"]
    config = attrs.evolve(node.config, agent=attrs.evolve(node.config.agent, population=1))
    single = Node(config=config, store=node.store, cycle=5)
    assert model_store.agent_names(single) == ["agent-cam"] and model_store.agent_name(single) == "agent-cam"


def test_an_agent_run_resumed_in_the_same_cycle_goes_back_to_its_agent(monkeypatch):
    node = _dreamed("agent.population=2", NODE)
    _killed_after_first_save(monkeypatch, node, "save_agent", train_agent)
    assert train_agent(node) == "done"
    store = model_store.agents(node)
    assert store.names() == ["agent-cam-0"]
    assert store.info("agent-cam-0")["session"]["epochs_done"] == 2


def test_a_node_never_navigates_with_another_nodes_agent():
    """Agents stay with their node, even when one node's name begins with another's."""
    node = _dreamed("agent.population=2", "run.node=cam1")
    assert train_agent(node) == "done"
    neighbour = Node(config=node.config, store=node.store, name="cam10")
    assert train_agent(neighbour) == "done"  # saved later, so the newest agent in the store
    assert sorted(model_store.agents(node).names()) == ["agent-cam1-0", "agent-cam10-0"]
    assert model_store.load_agent(node, CPU)[1]["name"] == "agent-cam1-0"
    assert model_store.load_agent(neighbour, CPU)[1]["name"] == "agent-cam10-0"
