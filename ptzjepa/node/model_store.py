"""The model store: the bridge between settings, stored checkpoints, leases and the torch models.

Stages ask here for "the world model to train", "a trained world model", "this node's agent";
this module turns config sections into model specs, checkpoints into modules, and back.
"""

from __future__ import annotations

import io
import math
import re
import zlib
from typing import Any

import torch

from ptzjepa.camera.base import PTZLimits
from ptzjepa.config.settings import CUDA_GRAPH_MODES, Config
from ptzjepa.distributed import contributions, model_choice
from ptzjepa.learning.agent.actions import ActionTable
from ptzjepa.learning.agent.dqn import DQNSettings, DQNTrainer
from ptzjepa.learning.agent.dreamer import Dreams
from ptzjepa.learning.agent.qnet import QNetSpec, QNetwork
from ptzjepa.learning.schedules import make_schedules
from ptzjepa.learning.session import Session
from ptzjepa.learning.world_model.jepa import WorldModel, WorldModelSpec, build_world_model
from ptzjepa.learning.world_model.masks import MaskSampler
from ptzjepa.learning.world_model.optim import WorldModelTrainer
from ptzjepa.node.context import Node
from ptzjepa.storage.checkpoints import AGENTS, WORLD_MODELS, Checkpoints, CheckpointError

# --- settings -> specs --------------------------------------------------------------------


def world_model_spec(config: Config) -> WorldModelSpec:
    """The architecture the settings ask for; the sizes are the settings' sections themselves."""
    wm = config.world_model
    return WorldModelSpec(image_size=wm.image_size, patch_size=wm.patch_size, encoder=wm.encoder,
                          predictor=wm.predictor)


def action_table(config: Config, limits: PTZLimits) -> ActionTable:
    mod = config.navigate.modulation
    return ActionTable(
        [a.name for a in config.actions], [[a.pan, a.tilt, a.zoom] for a in config.actions],
        modulation=(mod.pan, mod.tilt, mod.zoom), pan=(limits.pan.lo, limits.pan.hi),
        tilt=(limits.tilt.lo, limits.tilt.hi), zoom=(limits.zoom.lo, limits.zoom.hi), pan_wraps=limits.pan.wraps,
    )


# --- world models -------------------------------------------------------------------------


def world_models(node: Node) -> Checkpoints:
    """The population's checkpoints, in the shared store (storage.shared)."""
    return Checkpoints(node.shared, WORLD_MODELS, keep=node.config.storage.keep_checkpoints, warn=node.warn)


def population_names(config: Config) -> list[str]:
    return model_choice.population_names(config.world_model.population)


def trained_world_model(node: Node) -> tuple[str, dict[str, Any]] | None:
    """The trained world model to dream and navigate with: the one with the lowest last loss."""
    store = world_models(node)
    best: tuple[float, str, dict[str, Any]] | None = None
    for name in store.names():
        info = store.current(name) or {}
        if _number(info.get("epochs_trained"), 0) < 1:
            continue
        loss = _number(info.get("last_loss"), math.inf)
        if best is None or loss < best[0]:
            best = (loss, name, info)
    return None if best is None else (best[1], best[2])


def _number(value: Any, default: float) -> float:
    """A metadata number, or `default` where it is absent or not a number (never a crash)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def load_world_model(node: Node, name: str, device: torch.device) -> tuple[WorldModel, dict[str, Any]]:
    """A world model that has been trained at least one epoch, in eval mode on `device`."""
    state, meta = world_models(node).load(name, map_location="cpu")
    if int(meta.get("epochs_trained", 0)) < 1:
        raise CheckpointError(f"{WORLD_MODELS}/{name}: has never been trained")
    model = build_world_model(WorldModelSpec.from_dict(meta["spec"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), meta


def lease_world_model(node: Node):
    """A free model of the population and its lease (ptzjepa.distributed.model_choice: world_model.choose and
    balancing decide the order), None when others hold them all, (YIELDED, None) when balancing
    leaves this node nothing to train now."""
    return model_choice.lease_world_model(node, world_models(node))


def load_or_new_world_model(node: Node, name: str, mode: str, updates_per_epoch: int, device: torch.device):
    """The model to train, with its trainer; starts a new one from scratch or from the best.

    The optimiser's state comes from `optimizer-<version>.pt` of the version loaded (it is kept
    for the newest version only); otherwise the optimiser starts afresh, with a warning."""
    cfg = node.config.world_model
    spec = world_model_spec(node.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed * 1_000_003 + stable_hash(name))  # the same start for a name and seed
        model = build_world_model(spec)
    state, meta = None, None
    try:
        state, meta = world_models(node).load(name, map_location="cpu")
    except CheckpointError:
        pass
    if meta is not None and meta.get("spec") != spec.to_dict():
        node.events.emit("warning", message=f"world model {name}: architecture changed, starting it afresh")
        state, meta = None, None
    if state is not None:
        model.load_state_dict(state["model"])
    elif cfg.init_from == "best" and (best := trained_world_model(node)) is not None:
        try:
            parent_state, parent_meta = world_models(node).load(best[0], map_location="cpu")
        except CheckpointError:  # none of its versions loads: it was moved aside, start from scratch
            parent_state, parent_meta = None, {}
        if parent_state is not None and parent_meta.get("spec") == spec.to_dict():
            model.load_state_dict(parent_state["model"])
            meta = {"parent": f"{best[0]} v{parent_meta['version']}"}
    model = model.to(device)
    compiled = cfg.compile != "off" and device.type == "cuda" and mode == "pairs"  # masks change shapes per batch
    if compiled:
        # A fresh model each stage: without a reset dynamo's guards fail on the new weights and it
        # recompiles until its cache limit, then silently runs eager. Static shapes: a batch size
        # seen once (an epoch's last batch) compiles once more instead of going dynamic.
        torch._dynamo.reset()
        for module in (model.encoder, model.target_encoder, model.predictor):
            module.compile(mode=cfg.compile, dynamic=False)  # in place: parameter names stay the checkpoints'
    schedules = make_schedules(
        iterations_per_epoch=max(1, updates_per_epoch), epochs=cfg.epochs,
        lr=cfg.lr, start_lr=cfg.start_lr, final_lr=cfg.final_lr, warmup_epochs=cfg.warmup_epochs,
        weight_decay=cfg.weight_decay, final_weight_decay=cfg.final_weight_decay,
        ema=(cfg.ema[0], cfg.ema[1]), ipe_scale=cfg.ipe_scale,
    )
    masks = None
    if mode == "masked":
        m = cfg.mask
        masks = MaskSampler(
            grid=spec.grid, enc_mask_scale=tuple(m.enc_mask_scale), pred_mask_scale=tuple(m.pred_mask_scale),
            aspect_ratio=tuple(m.aspect_ratio), num_enc_masks=m.num_enc_masks, num_pred_masks=m.num_pred_masks,
            min_keep=min(m.min_keep, spec.grid * spec.grid), allow_overlap=m.allow_overlap,
        )
    trainer = WorldModelTrainer(
        model, schedules, mode=mode, reward_weight=cfg.reward_weight, accumulation=_accumulation(node.config),
        amp_dtype=torch.bfloat16 if cfg.bfloat16 and device.type == "cuda" else None, masks=masks,
        pair_chunk=cfg.pair_chunk or None,
        seed=cfg.seed + node.cycle, cuda_graphs=compiled and cfg.compile in CUDA_GRAPH_MODES,
        batched=batched_update(node.config, device) and not compiled, graph_update=cfg.cuda_graph,
    )
    if state is not None:
        trainer_state = state.get("trainer") or _optimizer_of(node, name, meta)
        if trainer_state is not None:
            trainer.load_state_dict(trainer_state)
        elif meta is not None and "version" in meta:
            node.events.emit("warning", message=f"world model {name} v{meta['version']}: no optimiser state "
                             "of that version; its optimiser starts afresh")
    return model, trainer, meta


def batched_update(config: Config, device: torch.device) -> bool:
    """Whether updates run as one batched pass (see world_model.update_path)."""
    path = config.world_model.update_path
    return path == "batched" or (path == "auto" and device.type == "cuda")


_OPTIMIZER_FILE = re.compile(r"optimizer-(\d{6,})\.pt")


def optimizer_file(version: int) -> str:
    """The name of the optimiser-state file of one version (beside its `ckpt-<version>.pt`)."""
    return f"optimizer-{version:06d}.pt"


def _optimizer_of(node: Node, name: str, meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """The trainer state saved with version meta['version'], or None (another version's, or none)."""
    if meta is None or "version" not in meta:
        return None
    store = world_models(node).store
    path = f"{WORLD_MODELS}/{name}/{optimizer_file(int(meta['version']))}"
    if not store.exists(path):
        return None
    try:
        saved = torch.load(io.BytesIO(store.read_bytes(path)), map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or garbled file: the weights are still good
        node.events.emit("warning", message=f"{path} does not load ({exc})")
        return None
    if not isinstance(saved, dict) or saved.get("version") != meta.get("version"):
        return None
    return saved.get("trainer")


def _accumulation(config: Config) -> int:
    wm = config.world_model
    return max(1, wm.global_batch_size // wm.batch_size)


def save_world_model(node: Node, name: str, model: WorldModel, trainer: WorldModelTrainer, session: Session,
                     mode: str, frames: int, fence: int, base: dict[str, Any], work: dict[str, float],
                     new_epochs: int = 1) -> dict[str, Any]:
    """Commit `name` after `new_epochs` more finished epochs (0: a save inside an epoch); returns
    the new version's metadata, the next save's base. FenceRefused when the store refuses the
    commit (a newer lease holder has committed).

    `base` is the metadata of the version the weights came from (what load returned, or the last
    save), not model_info.json's: after a fallback past a broken version, its epochs and
    contributions were never part of these weights. `work` is this save's share since the last
    save: updates, frames (seen) and seconds. The version's file holds the weights (what dreams,
    navigation and other nodes read); the optimiser's state, needed only to resume the newest
    version, goes to `optimizer-<version>.pt`, written create-only and only after the version's
    own create-only commit succeeded: a stale holder whose commit is refused writes none, so it
    can never replace the newest version's optimiser (docs/distributed.md)."""
    meta = {
        "spec": model.spec.to_dict(), "session": session.to_dict(), "mode": mode,
        "epochs_trained": int(base.get("epochs_trained", 0)) + new_epochs,
        "last_loss": session.last_loss(), "trained_by": node.name, "frames": frames,
        "contributions": contributions.add(base.get("contributions"), node.name, updates=int(work["updates"]),
                                           frames=int(work["frames"]), epochs=new_epochs, seconds=work["seconds"]),
        "parent": base.get("parent"), "cycle": node.cycle,
        "base_version": base.get("version"),  # what these weights were trained from (a chain check)
    }
    store = world_models(node)
    version = store.save(name, {"model": model.state_dict()}, meta, base_version=base.get("version"), fence=fence,
                         node=node.name)
    buffer = io.BytesIO()
    torch.save({"version": version, "trainer": trainer.state_dict()}, buffer)
    folder = f"{WORLD_MODELS}/{name}"
    store.store.create_bytes(f"{folder}/{optimizer_file(version)}", buffer.getvalue())
    for file in store.store.list(folder, ".pt"):  # older versions' optimisers: never resumed from
        match = _OPTIMIZER_FILE.fullmatch(file)
        if match and int(match.group(1)) < version:
            store.store.delete(f"{folder}/{file}")
    return {**meta, "version": version, "fence": fence}


# --- agents -------------------------------------------------------------------------------


def agents(node: Node) -> Checkpoints:
    return Checkpoints(node.store, AGENTS, keep=node.config.storage.keep_checkpoints, warn=node.warn)


def agent_names(node: Node) -> list[str]:
    """This node's own agents (agents are never shared): `agent-<node>`, or with a population
    `agent-<node>-<i>`, i < population."""
    size = node.config.agent.population
    return [f"agent-{node.name}"] if size == 1 else [f"agent-{node.name}-{i}" for i in range(size)]


def agent_name(node: Node) -> str:
    """The agent to train this cycle: with a population, agent-<node>-(cycle mod population), a
    round robin over cycles. Chosen by cycle rather than by save time so that a run killed mid
    training resumes the same agent in the same cycle instead of starting the next one."""
    names = agent_names(node)
    return names[node.cycle % len(names)]


def _qnet_spec(config: Config, tokens: int, dim: int, actions: int) -> QNetSpec:
    net = config.agent.net
    return QNetSpec(embed_dim=dim, num_tokens=tokens, num_actions=actions, width=net.width,
                    depth=net.depth, heads=net.heads, mlp_ratio=net.mlp_ratio, pool=1)


def _dqn_settings(config: Config, device: torch.device) -> DQNSettings:
    a = config.agent
    return DQNSettings(gamma=a.gamma, tau=a.tau, lr=a.lr, weight_decay=a.weight_decay,
                       autocast_bf16=config.world_model.bfloat16 and device.type == "cuda")


def load_or_new_agent(node: Node, name: str, dreams: Dreams, device: torch.device):
    """The node's agent (a new one if it has none, or if the dreams' shapes changed)."""
    tokens, dim = dreams.states.shape[2], dreams.states.shape[3]
    spec = _qnet_spec(node.config, tokens, dim, len(node.config.actions))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(node.config.agent.seed * 1_000_003 + stable_hash(name))
        agent = QNetwork(spec).to(device)
    trainer = DQNTrainer(agent, _dqn_settings(node.config, device))
    try:
        state, meta = agents(node).load(name, map_location=device)
    except CheckpointError:
        return agent, trainer, None
    if meta.get("spec") != _spec_dict(spec):
        node.events.emit("warning", message=f"agent {name}: shapes changed, starting a new agent")
        return agent, trainer, None
    agent.load_state_dict(state["online"])
    trainer.target.load_state_dict(state["target"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.steps = int(state.get("steps", 0))
    return agent, trainer, meta


def _spec_dict(spec: QNetSpec) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(spec)


def save_agent(node: Node, name: str, agent: QNetwork, trainer: DQNTrainer, session: Session,
               dream_set: str, info: dict[str, Any]) -> int:
    state = {"online": agent.state_dict(), "target": trainer.target.state_dict(),
             "optimizer": trainer.optimizer.state_dict(), "steps": trainer.steps}
    meta = {"spec": _spec_dict(agent.spec), "session": session.to_dict(), "node": node.name,
            "dream_set": dream_set, "world_model": info.get("world_model"),
            "world_model_version": info.get("version"), "last_loss": session.losses[-1] if session.losses else None,
            "reward": node.config.agent.reward, "actions": [a.name for a in node.config.actions]}
    return agents(node).save(name, state, meta)


def load_agent(node: Node, device: torch.device) -> tuple[QNetwork, dict[str, Any]] | None:
    name = agent_name(node) if node.config.agent.population == 1 else _newest_agent(node)
    if name is None:
        return None
    try:
        state, meta = agents(node).load(name, map_location=device)
    except CheckpointError:
        return None
    agent = QNetwork(QNetSpec(**meta["spec"])).to(device).eval()
    agent.load_state_dict(state["online"])
    return agent, meta


def _newest_agent(node: Node) -> str | None:
    """The node's most recently saved agent (by exact name: node `cam1` never takes `cam10`'s)."""
    store = agents(node)
    mine = set(agent_names(node))
    found = [(_number(((store.info(n) or {}).get("versions") or [{}])[-1].get("saved"), 0), n)
             for n in store.names() if n in mine]
    return max(found)[1] if found else None


def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())
