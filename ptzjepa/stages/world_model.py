"""The train_world_model stage (and its masked `train` twin): a world model learns from the frames.

It leases one model of the population (another node may hold the others), loads it or starts it
(from scratch, or from the best existing model, as configured), and trains for up to `epochs`
with a plateau stop. Every epoch ends with an atomic checkpoint carrying the weights, the
optimiser, the session (epochs, best loss, plateau counter) and who trained it on how many frames,
so a run killed mid-epoch resumes at the last finished epoch. Per-step metrics go to the events
stream and, per epoch, to `metrics/world_model/<model>/c<cycle>-e<epoch>.jsonl` in the store.
"""

from __future__ import annotations

import json
import time

from ptzjepa import model_store
from ptzjepa.checkpoints import FenceRefused
from ptzjepa.data import FrameDataset, frame_loader
from ptzjepa.locks import LockerUnavailable, fenced
from ptzjepa.node import Node
from ptzjepa.learning.session import Session

STAGE = "train_world_model"
MIN_FRAMES = 2


def train_world_model(node: Node) -> str:
    return _train(node, mode="pairs", stage=STAGE)


def pretrain_world_model(node: Node) -> str:
    """The original's `train` mode: I-JEPA masked prediction within each stored image."""
    return _train(node, mode="masked", stage="pretrain_world_model")


def _train(node: Node, mode: str, stage: str) -> str:
    cfg = node.config.world_model
    records = list(node.frames.records())
    if cfg.max_train_frames:
        records = records[-cfg.max_train_frames :]
    if len(records) < MIN_FRAMES:
        if records:  # none at all is the ordinary start: the machine routes to capture
            node.events.emit("warning", message=f"{stage}: {len(records)} frame stored, needs at least {MIN_FRAMES}")
        return "no_data"
    asked = time.monotonic()
    try:
        leased = model_store.lease_world_model(node)
    except LockerUnavailable as exc:  # waiting_for_lock waits for the lock service to come back
        node.events.emit("warning", message=f"{exc}; waiting for it")
        return "locked"
    if leased is None:
        return "locked"
    name, lease = leased
    if lease is None:  # balancing: this node is ahead on every model it could lease now
        node.events.emit("balance", stage=stage, status="ahead on every free model: not training this cycle")
        return "done"
    resource = f"{model_store.WORLD_MODELS}/{name}"
    node.events.emit("lease", resource=resource, token=lease.token, acquire_s=time.monotonic() - asked)
    node.events.emit("lock", resource=resource, status=f"held by {node.name} (token {lease.token})")
    try:
        return _train_leased(node, mode, stage, name, lease, records)
    finally:
        lease.release()
        node.events.emit("lock", resource=resource, status="released")


def _train_leased(node: Node, mode: str, stage: str, name: str, lease, records: list) -> str:
    cfg = node.config.world_model
    device = node.device()
    dataset = FrameDataset(node.store.url, records, cfg.image_size, cfg.crop_scale,
                           cache_frames=cfg.cache_frames, seed=cfg.seed + node.cycle)
    loader = frame_loader(dataset, cfg.batch_size, cfg.num_workers, shuffle=True,
                          seed=cfg.seed * 7919 + node.cycle, pin_memory=device.type == "cuda")
    batches_per_epoch = len(loader)
    model, trainer, meta = model_store.load_or_new_world_model(node, name, mode, batches_per_epoch, device)
    session = Session.from_meta(meta, node.cycle, node.name, stage)
    if session.epochs_done == 0:
        trainer.updates = 0  # a new session: the schedules start over, as each original run did
    allowed = model_store.model_choice.allowance(node, model_store.world_models(node), name)
    if allowed is not None:
        node.events.emit("balance", stage=stage, model=name, allowed_updates=allowed,
                         status=f"{name}: at most {allowed} more updates from this node (balancing)")
    stage_updates = 0
    while session.epochs_done < cfg.epochs and not session.plateaued(cfg.patience):
        if node.stop.is_set():
            return "stopped"
        if allowed is not None and stage_updates >= allowed:
            break
        updates_before = trainer.updates
        node.events.emit("progress", stage=stage, done=session.epochs_done, total=cfg.epochs, unit="epochs",
                         batch=0, batches=batches_per_epoch)
        began = time.monotonic()
        lines: list[str] = []
        losses: list[float] = []
        images_seen = 0
        for batch in loader:
            if batch is None:
                continue
            images, poses = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            stats = trainer.train_batch(images, poses).as_floats()
            losses.append(stats["loss"])
            images_seen += images.shape[0]
            elapsed = max(time.monotonic() - began, 1e-9)
            node.events.emit("metric", stage="world_model", name="loss", value=stats["loss"], step=session.steps)
            lines.append(json.dumps({"step": session.steps, "epoch": session.epochs_done, **stats,
                                     "lr": trainer.lr, "images_per_s": images_seen / elapsed}))
            session.steps += 1
            node.events.emit("progress", stage=stage, done=session.epochs_done, total=cfg.epochs, unit="epochs",
                             batch=len(losses), batches=batches_per_epoch)
        trainer.flush()
        if not losses:
            node.events.emit("warning", message=f"world model {name}: no frame of the epoch could be read")
            return "failed"
        loss = sum(losses) / len(losses)
        session.end_epoch(loss, cfg.plateau_threshold)
        elapsed = max(time.monotonic() - began, 1e-9)
        node.events.emit("metric", stage="world_model", name="images_per_s", value=images_seen / elapsed,
                         step=session.epochs_done)
        node.events.emit("progress", stage=stage, done=session.epochs_done, total=cfg.epochs, unit="epochs")
        node.store.write_text(
            f"metrics/world_model/{name}/c{node.cycle:05d}-e{session.epochs_done:04d}.jsonl", "\n".join(lines) + "\n"
        )
        if not fenced(lease):
            node.events.emit("warning", message=f"lost the lease on world model {name}; its epoch is dropped")
            return "locked"
        work = {"updates": trainer.updates - updates_before, "frames": images_seen, "seconds": elapsed}
        stage_updates += int(work["updates"])
        try:
            meta = model_store.save_world_model(node, name, model, trainer, session, mode, frames=len(records),
                                                fence=lease.token, base=meta or {}, work=work)
        except FenceRefused as exc:
            node.events.emit("warning", message=f"commit refused by the store: {exc}; its epoch is dropped")
            node.events.emit("commit_refused", model=name, token=lease.token, reason=str(exc))
            return "locked"
        node.events.emit("model_saved", kind="world_models", name=name, version=meta["version"],
                         path=f"world_models/{name}", loss=loss)
    return "done"
