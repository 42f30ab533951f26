"""The train_world_model stage (and its masked `train` twin): a world model learns from the frames.

It leases one model of the population (another node may hold the others), loads it or starts it
(from scratch, or from the best existing model, as configured), and trains a bounded number of
updates per cycle (`updates_per_cycle`, in `epochs` epochs, with a plateau stop), each on a global
batch drawn by FrameSampler from the frames FrameBank keeps decoded on the device.

A stop request is honoured between updates (on the micro-batch loop, between micro-batches): the
work done is saved and the next run goes on at the next update, drawing the same frames an
unbroken run would have. Checkpoints (weights, and the optimiser beside them) are written at the
stage's end, at a stop, and every `checkpoint_every_s` in between; each carries the session
(updates and epochs done, best loss, plateau counter). Per-update metrics go to the events
stream and, per epoch, to `metrics/world_model/<model>/c<cycle>-e<epoch>.jsonl` in the store.
Each save records this node's work since the last one (updates, frames, seconds) in the model's
contributions; with balancing on, the loop stops at this node's update allowance. A save whose
lease is lost or whose commit the store refuses (a newer holder committed) drops the work since
the last save and ends the stage `locked`; a lock service that is down ends it `locked` too.
The lease's claim goes into the model's folder before the model is read (docs/distributed.md).
Frame images that do not decode are moved aside with one warning; when fewer than two frames are
left, capture's progress in this cycle goes and the stage ends `no_data`, so the frames are taken
afresh instead of training on nothing.
"""

from __future__ import annotations

import json
import math
import time

from ptzjepa.distributed.locks import LockerUnavailable, fenced
from ptzjepa.learning.session import Session
from ptzjepa.node import model_store
from ptzjepa.node.context import PROGRESS_DIR, Node
from ptzjepa.node.training_frames import FrameBank, FrameSampler
from ptzjepa.storage.checkpoints import FenceRefused

STAGE = "train_world_model"
MIN_FRAMES = 2


def train_world_model(node: Node) -> str:
    return _train(node, mode="pairs", stage=STAGE)


def pretrain_world_model(node: Node) -> str:
    """I-JEPA masked prediction within each stored image (the `train` machine)."""
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
    try:
        # The claim goes into the model's folder before the model is read: from here on the store
        # refuses every commit of an older lease, whether or not this one has committed yet.
        model_store.world_models(node).claim(name, lease.token, node.name)
    except FenceRefused as exc:  # a newer lease claimed it already: ours is stale before it began
        lease.release()
        node.events.emit("warning", message=f"claim refused by the store: {exc}")
        node.events.emit("commit_refused", model=name, token=lease.token, reason=str(exc))
        return "locked"
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
    bank = FrameBank.for_store(node.store.url, cfg.image_size, device)
    damaged: list[tuple[str, str]] = []
    records = bank.select(node.store, records, cfg.num_workers, damaged)
    if (damaged or len(records) < MIN_FRAMES) and (outcome := _damaged_frames(node, stage, damaged, records)):
        return outcome
    accumulation = max(1, cfg.global_batch_size // cfg.batch_size)
    per_epoch = math.ceil(cfg.updates_per_cycle / cfg.epochs) if cfg.updates_per_cycle else None
    sampler = FrameSampler(len(records), cfg.batch_size * accumulation, seed=cfg.seed, cycle=node.cycle,
                           updates_per_epoch=per_epoch, recent_frames=cfg.recent_frames,
                           recent_share=cfg.recent_share)
    rows = bank.rows(records)
    per_epoch = sampler.updates_per_epoch
    model, trainer, meta = model_store.load_or_new_world_model(node, name, mode, per_epoch, device)
    session = Session.from_meta(meta, node.cycle, node.name, stage)
    trainer.updates = session.steps  # the schedules' index: a new session starts them over
    allowed = model_store.model_choice.allowance(node, model_store.world_models(node), name)
    if allowed is not None:
        node.events.emit("balance", stage=stage, model=name, allowed_updates=allowed,
                         status=f"{name}: at most {allowed} more updates from this node (balancing)")
    run = _Run(node, stage, name, lease, mode, model, trainer, session, len(records), meta or {})
    total = cfg.epochs * per_epoch
    clock = _Clock(total - session.steps)
    stage_updates = 0
    while session.steps < total and not session.plateaued(cfg.patience):
        if node.stop.is_set():
            return run.stop()
        if allowed is not None and stage_updates >= allowed:
            break
        update = session.steps
        images, poses = bank.batch(rows[sampler.rows(update).to(device)], cfg.crop_scale,
                                   sampler.generator(update, stream=1))
        stats = trainer.update(images, poses, should_stop=node.stop.is_set)
        if stats is None:  # stopped between micro-batches: the model is as after the last update
            return run.stop()
        session.steps += 1
        stage_updates += 1
        session.epoch_losses.append(stats["loss"])
        clock.tick(images.shape[0])
        run.record(stats, trainer.lr, images.shape[0], clock)
        within = session.steps - session.epochs_done * per_epoch
        node.events.emit("progress", stage=stage, done=session.epochs_done, total=cfg.epochs, unit="epochs",
                         batch=within, batches=per_epoch, loss=stats["loss"],
                         images_per_s=clock.images_per_s(), eta_s=clock.eta_s())
        if within == per_epoch:
            run.end_epoch(clock)
        if run.due() and not run.save():
            return "locked"
    if run.unsaved and not run.save():
        return "locked"
    return "done"


def _damaged_frames(node: Node, stage: str, damaged: list[tuple[str, str]], records: list) -> str:
    """One warning for all the frame images that did not decode (they were moved aside); when too
    few frames are left to train on, capture's progress in this cycle is dropped, so that `no_data`
    (which every machine routes to capture, or to its end) takes the frames afresh."""
    left = len(records) >= MIN_FRAMES
    if damaged:
        shown = ", ".join(image for image, _ in sorted(damaged)[:3])
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        reasons = sorted({why for _, why in damaged})
        instead = ("their records stay, as tracked positions" if left else
                   f"{len(records)} readable frame(s) left, {MIN_FRAMES} needed: capturing afresh")
        node.events.emit("warning", message=f"damaged file(s) {shown}{more}: {len(damaged)} frame image(s) "
                         f"do not decode ({'; '.join(reasons)}); moved aside as <name>.damaged-<UTC time>; "
                         f"{instead}")
    if left:
        return ""
    if not damaged:
        node.events.emit("warning", message=f"{stage}: {len(records)} stored frame(s) could be read, "
                         f"needs at least {MIN_FRAMES}: capturing afresh")
    if node.progress("capture"):
        node.store.delete(f"{PROGRESS_DIR}/capture.json")
    return "no_data"


class _Clock:
    """Images/s and the time left, from the updates of this run after its first (the warm-up)."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.began = time.monotonic()
        self.first: float | None = None
        self.images = 0
        self.updates = 0

    def tick(self, images: int) -> None:
        self.remaining -= 1
        if self.first is None:
            self.first = time.monotonic()
            return
        self.images += images
        self.updates += 1

    def images_per_s(self) -> float:
        if self.first is None or not self.updates:
            return 0.0
        return self.images / max(time.monotonic() - self.first, 1e-9)

    def eta_s(self) -> float:
        if self.first is None or not self.updates:
            return 0.0
        return self.remaining * (time.monotonic() - self.first) / self.updates


class _Run:
    """One stage run's bookkeeping: per-update metric lines, epoch ends, and when and how to save."""

    def __init__(self, node: Node, stage: str, name: str, lease, mode: str, model, trainer, session: Session,
                 frames: int, base: dict) -> None:
        self.node, self.stage, self.name, self.lease, self.mode = node, stage, name, lease, mode
        self.model, self.trainer, self.session, self.frames, self.base = model, trainer, session, frames, base
        self.cfg = node.config.world_model
        self.lines: list[str] = []
        self.new_epochs = 0
        self.unsaved = 0  # updates since the last save
        self.images = 0  # images seen since the last save
        self.saved_at = time.monotonic()
        self.epoch_ended = False
        self.warned = False

    def record(self, stats: dict[str, float], lr: float, images: int, clock: _Clock) -> None:
        s = self.session
        self.unsaved += 1
        self.images += images
        graphed = self.trainer.graphed
        if graphed is not None and graphed.failure and not self.warned:
            self.warned = True
            self.node.events.emit("warning", message=f"world model {self.name}: CUDA graph capture failed, "
                                  f"training eagerly ({graphed.failure})")
        self.node.events.emit("metric", stage="world_model", name="loss", value=stats["loss"], step=s.steps)
        self.lines.append(json.dumps({"step": s.steps, "epoch": s.epochs_done, **stats, "lr": lr,
                                      "images_per_s": clock.images_per_s()}))

    def end_epoch(self, clock: _Clock) -> None:
        s = self.session
        loss = sum(s.epoch_losses) / len(s.epoch_losses)
        s.end_epoch(loss, self.cfg.plateau_threshold)
        self.node.events.emit("metric", stage="world_model", name="images_per_s", value=clock.images_per_s(),
                              step=s.epochs_done)
        self.new_epochs += 1
        self.epoch_ended = True
        self.node.events.emit("progress", stage=self.stage, done=s.epochs_done, total=self.cfg.epochs, unit="epochs")
        self.node.store.write_text(
            f"metrics/world_model/{self.name}/c{self.node.cycle:05d}-e{s.epochs_done:04d}.jsonl",
            "\n".join(self.lines) + "\n")
        self.lines = []

    def due(self) -> bool:
        every = self.cfg.checkpoint_every_s
        ended, self.epoch_ended = self.epoch_ended, False
        return ended if every == 0 else time.monotonic() - self.saved_at >= every

    def stop(self) -> str:
        if self.unsaved and not self.save():
            return "locked"
        return "stopped"

    def save(self) -> bool:
        """Checkpoint now; False when the lease is lost or the store refuses the commit (a newer
        holder committed): the work since the last save is dropped and the stage ends `locked`."""
        if not fenced(self.lease):
            self.node.events.emit("warning", message=f"lost the lease on world model {self.name}; "
                                  "its updates since the last checkpoint are dropped")
            return False
        work = {"updates": self.unsaved, "frames": self.images, "seconds": time.monotonic() - self.saved_at}
        try:
            self.base = model_store.save_world_model(
                self.node, self.name, self.model, self.trainer, self.session, self.mode, frames=self.frames,
                fence=self.lease.token, base=self.base, work=work, new_epochs=self.new_epochs)
        except FenceRefused as exc:
            self.node.events.emit("warning", message=f"commit refused by the store: {exc}; "
                                  "its updates since the last checkpoint are dropped")
            self.node.events.emit("commit_refused", model=self.name, token=self.lease.token, reason=str(exc))
            return False
        self.node.events.emit("model_saved", kind="world_models", name=self.name, version=self.base["version"],
                              path=f"world_models/{self.name}", loss=self.session.last_loss())
        self.new_epochs, self.unsaved, self.images, self.saved_at = 0, 0, 0, time.monotonic()
        return True
