"""The dream stage: the world model imagines where sampled actions lead, from real frames.

Dreams start from the target encoder's tokens of stored frames (drawn from (seed, cycle)), roll
out `dream_length` steps batched on the device, and are written in chunk files under
`dreams/<set>/` with an info.json that names the world model and its version. info.json is written
last and marks the set complete; a run killed midway resumes at the first missing chunk, and a
chunk found damaged later is moved aside and remade the same way (load_set).
"""

from __future__ import annotations

import io

import numpy as np
import torch

from ptzjepa.distributed import contributions
from ptzjepa.learning.agent.dreamer import DreamInterrupted, Dreams, pool_tokens, rollout
from ptzjepa.node import model_store
from ptzjepa.node.context import Node
from ptzjepa.node.frame_tensors import pose_of, to_tensor
from ptzjepa.storage.checkpoints import CheckpointError
from ptzjepa.storage.damage import Damaged, is_damaged_name, is_int, load_reason, move_aside, read_json_checked, require
from ptzjepa.storage.store import StoreError

STAGE = "dream"
DREAMS = "dreams"


def dream(node: Node) -> str:
    cfg = node.config.dream
    picked = model_store.trained_world_model(node)
    if picked is None:
        return "no_model"
    name, info = picked
    records = list(node.frames.records())
    if not records:
        return "no_data"
    device = node.device()
    try:
        world_model, meta = model_store.load_world_model(node, name, device)
    except CheckpointError:  # none of its versions loads (moved aside, with a warning): train one
        return "no_model"
    set_name = f"c{node.cycle:05d}-{name}-v{meta['version']:04d}"
    folder = f"{DREAMS}/{set_name}"
    rng = np.random.default_rng([cfg.seed, node.cycle])
    starts = rng.integers(0, len(records), size=cfg.number_of_dreams)
    table = model_store.action_table(node.config, node.limits)
    chunks = list(range(0, cfg.number_of_dreams, cfg.chunk_size))
    image_size = node.config.world_model.image_size
    use_bf16 = node.config.world_model.bfloat16 and device.type == "cuda"
    for index, lo in enumerate(chunks):
        if node.stop.is_set():
            return "stopped"
        chunk_file = f"{folder}/chunk-{index:04d}.pt"
        node.events.emit("progress", stage=STAGE, done=lo, total=cfg.number_of_dreams, unit="dreams")
        # Drawn before the skip, so a resumed set gets the very chunks an unbroken run would have.
        chunk_seed = int(rng.integers(2**62)) + index
        if node.store.exists(chunk_file):
            continue
        picks = [records[i] for i in starts[lo : lo + cfg.chunk_size]]
        images, poses = _start_batch(node, picks, image_size)
        with torch.no_grad():
            tokens = world_model.encode_target(images.to(device))
        generator = torch.Generator().manual_seed(chunk_seed)
        try:
            dreams = rollout(
                world_model, tokens, poses.to(device), table, cfg.dream_length, generator,
                chunk_size=cfg.chunk_size, autocast_bf16=use_bf16, out_device="cpu", should_stop=node.stop.is_set,
            )
        except DreamInterrupted:  # Ctrl-C mid-chunk: the chunk is redone, with the same seed, on resume
            return "stopped"
        dreams.states = pool_tokens(dreams.states, cfg.state_pool).to(torch.float16)
        buffer = io.BytesIO()
        torch.save(dreams.as_dict(), buffer)
        node.store.write_bytes(chunk_file, buffer.getvalue())
        node.events.emit("dreams_stored", set=set_name, chunk=index, dreams=len(picks),
                         done=lo + len(picks), total=cfg.number_of_dreams)
        node.events.emit("metric", stage=STAGE, name="prediction_error",
                         value=float(dreams.prediction_error.mean()), step=node.cycle)
    node.store.write_json(f"{folder}/info.json", {
        "world_model": name, "version": meta["version"], "cycle": node.cycle, "node": node.name,
        "number_of_dreams": cfg.number_of_dreams, "dream_length": cfg.dream_length,
        "chunks": len(chunks), "state_pool": cfg.state_pool, "actions": list(table.names),
    })
    node.events.emit("progress", stage=STAGE, done=cfg.number_of_dreams, total=cfg.number_of_dreams, unit="dreams")
    contributions.count_dreams(node.shared, node.name, name, cfg.number_of_dreams, node.warn)
    _prune(node, keep=cfg.keep_sets)
    return "done"


def _start_batch(node: Node, records: list, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, poses = [], []
    for record in records:
        try:
            images.append(to_tensor(node.frames.image(record), size))
        except Exception as exc:  # a corrupt frame: dream from the others
            node.events.emit("warning", message=f"dream start frame {record.id} skipped: {exc}")
            continue
        poses.append(pose_of(record))
    if not images:
        raise RuntimeError("dream: none of the chosen start frames could be read")
    good = len(images)
    for i in range(len(records) - good):  # keep the chunk's size: repeat good frames
        images.append(images[i % good])
        poses.append(poses[i % good])
    return torch.stack(images), torch.stack(poses)


def complete_sets(node: Node) -> list[str]:
    """Dream sets whose info.json exists, oldest first (names sort by cycle)."""
    return [s for s in node.store.list_dirs(DREAMS)
            if not is_damaged_name(s) and node.store.exists(f"{DREAMS}/{s}/info.json")]


def check_dream_info(data: object) -> None:
    """Raise unless an info.json's content is one (for read_json_checked)."""
    require(isinstance(data, dict), "not an object")
    require(is_int(data.get("chunks")) and data["chunks"] >= 0, "no number of chunks")  # type: ignore[union-attr]


def load_set(node: Node, set_name: str) -> tuple[dict, list[dict[str, torch.Tensor]]]:
    """A complete set's info and chunks. Damaged (after moving the damaged file aside, with a
    warning, and removing info.json) when a file of it does not load: the set is then incomplete,
    and the dream stage remakes the missing chunk from the chunk's own seed."""
    folder = f"{DREAMS}/{set_name}"
    redo = "the dream stage remakes the set (each chunk from its own seed)"
    try:
        info = read_json_checked(node.store, f"{folder}/info.json", check_dream_info)
    except Damaged as exc:
        move_aside(node.store, f"{folder}/info.json", str(exc), redo, node.warn)
        raise
    if info is None:
        raise Damaged(f"{folder}/info.json: no such file")
    chunks = []
    for index in range(int(info["chunks"])):
        rel = f"{folder}/chunk-{index:04d}.pt"
        try:
            raw = node.store.read_bytes(rel)
            if not raw:
                raise Damaged("empty file")
            chunk = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
            Dreams.from_dict(chunk, source=rel)
        except StoreError:
            why = "missing"
        except Exception as exc:  # a cut-short or garbled file raises whatever the unpickler meets
            why = str(exc) if isinstance(exc, Damaged) else f"does not load ({load_reason(exc)})"
        else:
            chunks.append(chunk)
            continue
        if why != "missing":
            move_aside(node.store, rel, why, redo, node.warn)
        else:
            node.events.emit("warning", message=f"dream chunk {rel} is missing; {redo}")
        node.store.delete(f"{folder}/info.json")
        raise Damaged(f"{rel}: {why}")
    return info, chunks


def _prune(node: Node, keep: int) -> None:
    for old in complete_sets(node)[:-keep]:
        node.store.delete_tree(f"{DREAMS}/{old}")
