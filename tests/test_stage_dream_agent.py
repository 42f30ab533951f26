import torch

from ptzjepa.learning.agent.dreamer import Dreams
from ptzjepa.node import model_store
from ptzjepa.stages.agent import train_agent
from ptzjepa.stages.dream import DREAMS, complete_sets, dream, load_set
from ptzjepa.stages.navigate import navigate
from ptzjepa.stages.world_model import train_world_model
from ptzjepa.storage.embeddings import embedding_ids, read_embedding
from tests.stage_helpers import captured_node


def _trained(*overrides):
    node = captured_node("world_model.epochs=1", *overrides)
    assert train_world_model(node) == "done"
    return node


def test_dream_needs_a_trained_world_model():
    node = captured_node()
    assert dream(node) == "no_model"
    assert train_agent(node) == "no_data"
    assert navigate(node) == "no_model"


def test_dreams_have_the_promised_shapes_and_metadata():
    node = _trained("dream.number_of_dreams=12", "dream.dream_length=3", "dream.chunk_size=5")
    assert dream(node) == "done"
    (name,) = complete_sets(node)
    info, chunks = load_set(node, name)
    assert info["world_model"] == "wm-0" and info["version"] == 1 and info["chunks"] == 3
    assert info["actions"][0] == "noop" and len(info["actions"]) == 21
    dreams = Dreams.cat([Dreams.from_dict(c) for c in chunks])
    grid = (64 // 8) // 2  # tiny: 8x8 tokens, pooled by 2
    assert dreams.states.shape == (12, 4, grid * grid, 64) and dreams.states.dtype == torch.float16
    assert dreams.poses.shape == (12, 4, 3) and dreams.actions.shape == (12, 3)
    for field in ("reward_head", "delta_reward", "prediction_error"):
        assert getattr(dreams, field).shape == (12, 3) and torch.isfinite(getattr(dreams, field)).all()
    limits = node.config.camera.limits
    assert (dreams.poses[..., 1] >= limits.tilt_min).all() and (dreams.poses[..., 1] <= limits.tilt_max).all()


def test_a_dream_is_reproducible_from_its_seed():
    node = _trained()
    assert dream(node) == "done"
    (name,) = complete_sets(node)
    _, first = load_set(node, name)
    node.store.delete_tree(DREAMS)
    assert dream(node) == "done"
    _, second = load_set(node, name)
    for a, b in zip(first, second):
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_a_stop_request_inside_a_chunk_stops_the_stage_and_stores_no_partial_chunk():
    """Ctrl-C must not wait for a whole chunk (minutes at the sim config on a CPU)."""
    node = _trained("dream.number_of_dreams=4", "dream.dream_length=3", "dream.chunk_size=4")
    node.events.subscribe(lambda e: node.stop.set() if e.kind == "progress" and e.data["stage"] == "dream" else None)
    assert dream(node) == "stopped"
    assert complete_sets(node) == [] and not any(
        name.startswith("chunk-") for folder in node.store.list_dirs(DREAMS) for name in node.store.list(f"{DREAMS}/{folder}")
    )
    node.stop.clear()
    node.events = type(node.events)()
    assert dream(node) == "done" and len(complete_sets(node)) == 1


def test_agent_trains_then_navigates_and_stores_rewards():
    node = _trained("agent.epochs=2")
    assert navigate(node) == "no_agent"
    assert dream(node) == "done"
    assert train_agent(node) == "done"
    info = model_store.agents(node).info(f"agent-{node.name}")
    assert info["version"] == 2 and info["reward"] == "prediction_error" and info["world_model"] == "wm-0"
    before = node.frames.count()
    assert navigate(node) == "done"
    cfg = node.config.navigate
    nav = [r for r in node.frames.records() if r.stage == "navigate"]
    assert len(nav) == cfg.iterations * (cfg.movements + 1) == node.frames.count() - before
    actions = [r for r in nav if r.command.kind == "action"]
    assert len(actions) == cfg.iterations * cfg.movements
    embeds = embedding_ids(node.store)
    assert sorted(embeds) == sorted(r.id for r in actions)
    sample = read_embedding(node.store, embeds[0])
    assert sample.reward >= 0 and sample.q.shape == (21,) and sample.embedding.dtype == torch.float16


def test_agent_checkpoint_round_trip_gives_the_trained_agent_back(monkeypatch):
    """The agent navigate loads is the one train_agent trained (weights and Q-values exactly), and
    a resumed trainer gets back its target network and step count."""
    node = _trained("agent.epochs=2", "agent.patience=100")
    assert dream(node) == "done"
    saved = []
    real = model_store.save_agent

    def spy(node, name, agent, trainer, *args, **kwargs):
        saved.append((name, agent, trainer))
        return real(node, name, agent, trainer, *args, **kwargs)

    monkeypatch.setattr(model_store, "save_agent", spy)
    assert train_agent(node) == "done"
    assert len(saved) == 2
    name, trained, trainer = saved[-1]
    cpu = torch.device("cpu")
    loaded, meta = model_store.load_agent(node, cpu)
    assert meta["name"] == name and meta["version"] == 2 and meta["session"]["epochs_done"] == 2
    want, got = trained.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    _, chunks = load_set(node, complete_sets(node)[-1])
    dreams = Dreams.cat([Dreams.from_dict(c) for c in chunks])
    states, poses = dreams.states[:, 0].float(), dreams.poses[:, 0]
    with torch.no_grad():
        q_trained, q_loaded = trained.eval()(states, poses), loaded(states, poses)
        q_fresh = model_store.QNetwork(loaded.spec).eval()(states, poses)
    assert torch.equal(q_trained, q_loaded) and not torch.equal(q_fresh, q_loaded)
    _, resumed, _ = model_store.load_or_new_agent(node, name, dreams, cpu)
    assert resumed.steps == trainer.steps > 0
    target_want, target_got = trainer.target.state_dict(), resumed.target.state_dict()
    assert all(torch.equal(target_want[k], target_got[k]) for k in target_want)
