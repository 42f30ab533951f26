"""What a report draws, read from a run's store in a few bulk reads (so an S3 store is not a
request per frame): the frames' poses, the navigate moves' real rewards and embeddings, the
training losses, and any per-cycle metric files. A damaged file is skipped and noted, never fatal.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter

import attrs
import numpy as np

from ptzjepa.logs import redact_url
from ptzjepa.report.gather_files import read_many
from ptzjepa.report.stored_metrics import StoredMetrics, read_stored_metrics
from ptzjepa.run.app import CONFIG_SNAPSHOT
from ptzjepa.storage.checkpoints import AGENTS, INFO
from ptzjepa.storage.damage import Damaged
from ptzjepa.storage.frames import POSITIONS
from ptzjepa.storage.store import Store

_EPOCH_FILE = re.compile(r"^c(\d+)-e(\d+)\.jsonl$")


class ReportError(ValueError):
    """The data folder cannot be reported on; the message is the one line the user sees."""


@attrs.frozen
class Pose:
    """One stored frame (or tracked position): where the camera was, and how it got there."""

    id: str
    cycle: int
    stage: str
    time: str
    pan: float
    tilt: float
    zoom: float
    kind: str  # the command: "absolute" starts a round, "action" is a move, "relative" a capture step
    action: str
    image: str  # store-relative JPEG path; '' once the storage limits removed it


@attrs.frozen
class LossPoint:
    model: str
    cycle: int
    epoch: int
    step: int
    loss: float


@attrs.define
class RunData:
    store: Store
    url: str  # redacted: safe to print
    poses: list[Pose]
    rewards: dict[str, float]  # frame id -> real reward of the move that led there
    embedding_ids: list[str]
    embeddings: np.ndarray  # [n, d] float32, one row per id above
    world_model_losses: list[LossPoint]
    agent_losses: list[LossPoint]
    metrics: StoredMetrics  # held-out error, coverage, choice percentiles, when the run stored them
    limits: dict[str, tuple[float, float]]  # pan/tilt/zoom ranges of the camera
    pan_wraps: bool
    notes: list[str] = attrs.field(factory=list)

    @property
    def cycles(self) -> list[int]:
        return sorted({p.cycle for p in self.poses})


def gather(url: str) -> RunData:
    """Everything a report needs from the store at `url`; ReportError if there is nothing."""
    shown = redact_url(url)
    store = Store(url, create=False)
    if not store.is_folder():
        raise ReportError(f"--data {shown}: {'not a folder' if store.fs.exists(store.root) else 'no such folder'}")
    notes: list[str] = []
    poses = _poses(store, notes)
    if not poses:
        raise ReportError(f"--data {shown}: no frame records in {POSITIONS}/ (nothing was captured there, "
                          "or it is not a ptzjepa data folder)")
    rewards, ids, matrix = _embeddings(store, notes)
    limits, wraps = _limits(store, poses)
    agent_losses = _epoch_losses(store, "metrics/agent", notes)
    if not agent_losses:
        agent_losses = _session_losses(store)
        if agent_losses:
            notes.append("agent losses: only the newest cycle's epoch means (the checkpoints' session); "
                         "this store has no metrics/agent/ files")
    return RunData(
        store=store, url=shown, poses=poses, rewards=rewards, embedding_ids=ids, embeddings=matrix,
        world_model_losses=_epoch_losses(store, "metrics/world_model", notes), agent_losses=agent_losses,
        metrics=read_stored_metrics(store, notes),
        limits=limits, pan_wraps=wraps, notes=notes,
    )


def _poses(store: Store, notes: list[str]) -> list[Pose]:
    names = [f"{POSITIONS}/{n}" for n in store.list(POSITIONS, ".json")]
    poses = []
    for name, raw in read_many(store, names).items():
        try:
            rec = json.loads(raw)
            ptz, command = rec["ptz"], rec.get("command") or {}
            poses.append(Pose(
                id=str(rec["id"]), cycle=int(rec["cycle"]), stage=str(rec["stage"]), time=str(rec.get("time", "")),
                pan=float(ptz["pan"]), tilt=float(ptz["tilt"]), zoom=float(ptz["zoom"]),
                kind=str(command.get("kind", "")), action=str(command.get("action", "")),
                image=str(rec.get("image", "")),
            ))
        except (ValueError, KeyError, TypeError) as exc:
            notes.append(f"skipped {name}: not a frame record ({type(exc).__name__})")
    return sorted(poses, key=lambda p: (p.cycle, p.time, p.id))


def _embeddings(store: Store, notes: list[str]) -> tuple[dict[str, float], list[str], np.ndarray]:
    """Rewards of the navigate moves and their pooled embeddings, from collected_embeds/."""
    from ptzjepa.storage.embeddings import decode_embedding, embedding_ids, embedding_path

    rewards: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    paths = {embedding_path(fid): fid for fid in embedding_ids(store)}
    for name, raw in sorted(read_many(store, list(paths)).items()):
        fid = paths[name]
        try:
            record = decode_embedding(raw)
        except Damaged as exc:
            notes.append(f"skipped {name}: {exc}")
            continue
        reward = record.reward
        vector = record.embedding.float().flatten().numpy()
        if np.isfinite(reward):
            rewards[fid] = reward
        if np.isfinite(vector).all():
            vectors[fid] = vector
    if not vectors:
        return rewards, [], np.zeros((0, 0), dtype=np.float32)
    # a world model whose shape changed between cycles stores other sizes: keep the commonest
    size = Counter(v.size for v in vectors.values()).most_common(1)[0][0]
    ids = [fid for fid, v in vectors.items() if v.size == size]
    if len(ids) < len(vectors):
        notes.append(f"embeddings: {len(vectors) - len(ids)} of another size left out of the projection")
    return rewards, ids, np.stack([vectors[fid] for fid in ids]).astype(np.float32)


def _epoch_losses(store: Store, folder: str, notes: list[str]) -> list[LossPoint]:
    """Per-step losses from <folder>/<model>/c<cycle>-e<epoch>.jsonl files."""
    names = []
    for model in store.list_dirs(folder):
        names += [f"{folder}/{model}/{n}" for n in store.list(f"{folder}/{model}", ".jsonl") if _EPOCH_FILE.match(n)]
    points = []
    for name, raw in read_many(store, names).items():
        model = posixpath.basename(posixpath.dirname(name))
        match = _EPOCH_FILE.match(posixpath.basename(name))
        cycle, epoch = int(match[1]), int(match[2])
        for line in raw.decode(errors="replace").splitlines():
            try:
                row = json.loads(line)
                points.append(LossPoint(model, cycle, epoch, int(row["step"]), float(row["loss"])))
            except (ValueError, KeyError, TypeError):
                if line.strip():
                    notes.append(f"skipped a line of {name}: not a loss record")
    return sorted(points, key=lambda p: (p.model, p.cycle, p.epoch, p.step))


def _session_losses(store: Store) -> list[LossPoint]:
    """The agents' epoch losses kept in their checkpoints' session (the newest cycle only)."""
    points = []
    for model in store.list_dirs(AGENTS):
        info = store.read_json(f"{AGENTS}/{model}/{INFO}", default=None)
        session = info.get("session") if isinstance(info, dict) else None
        if not isinstance(session, dict):
            continue
        for epoch, loss in enumerate(session.get("losses") or []):
            points.append(LossPoint(model, int(session.get("cycle", 0)), epoch + 1, epoch, float(loss)))
    return points


def _limits(store: Store, poses: list[Pose]) -> tuple[dict[str, tuple[float, float]], bool]:
    """The camera's ranges from the run's config snapshot; the poses' own range if it has none."""
    config = store.read_json(CONFIG_SNAPSHOT, default=None)
    limits = ((config or {}).get("camera") or {}).get("limits") if isinstance(config, dict) else None
    try:
        return ({axis: (float(limits[f"{axis}_min"]), float(limits[f"{axis}_max"])) for axis in ("pan", "tilt", "zoom")},
                bool(limits.get("pan_wraps", False)))
    except (TypeError, KeyError, ValueError):
        pass
    ranges = {}
    for axis in ("pan", "tilt", "zoom"):
        values = [getattr(p, axis) for p in poses]
        lo, hi = min(values), max(values)
        ranges[axis] = (lo, hi if hi > lo else lo + 1.0)
    return ranges, False
