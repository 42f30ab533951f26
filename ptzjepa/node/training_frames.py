"""The world model's training frames: decoded once per process, kept on the device, drawn per update.

FrameBank holds every trainable frame as uint8 [N, 3, S, S] on the training device (150 KB a
frame at 224 px: 10,000 frames are 1.5 GB), so after the first stage of a process only the
frames captured since are decoded, and a batch is an index, a crop and a normalisation on the
device: decoding is never what the GPU waits for. Banks live for the process, one per store,
image size and device.

FrameSampler says which frames each update trains on, as a pure function of (seed, cycle,
update), so a run stopped after update k and resumed draws for k + 1 exactly what an unbroken
run would have. Two ways:

- a fixed budget of updates per cycle (`world_model.updates_per_cycle` > 0): each update draws
  its global batch without replacement from all stored frames, the newest `recent_frames`
  together getting `recent_share` of the probability. A cycle's cost is then flat however large
  the store grows, the newest views are learnt at once, and the old ones keep being seen;
- whole epochs (`updates_per_cycle` 0): each epoch a fresh permutation of all frames in
  global batches, the last batch filled from the permutation's start (shapes stay static).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ptzjepa.node.frame_tensors import MEAN, STD, pose_of
from ptzjepa.storage.damage import move_aside
from ptzjepa.storage.frames import FrameRecord, decode_jpeg
from ptzjepa.storage.store import Store, StoreError

log = logging.getLogger(__name__)


class FrameBank:
    """Decoded frames on a device, by record id; `select` turns records into bank rows."""

    _banks: dict[tuple[str, int, str], FrameBank] = {}

    def __init__(self, image_size: int, device: torch.device) -> None:
        self.image_size = image_size
        self.device = device
        self.ids: dict[str, int] = {}
        self.pixels = torch.empty(0, 3, image_size, image_size, dtype=torch.uint8, device=device)
        self.poses = torch.empty(0, 3, device=device)

    @classmethod
    def for_store(cls, store_url: str, image_size: int, device: torch.device) -> FrameBank:
        key = (store_url, image_size, str(device))
        if key not in cls._banks:
            cls._banks[key] = cls(image_size, device)
        return cls._banks[key]

    def select(self, store: Store, records: Sequence[FrameRecord], threads: int = 2,
               damaged: list[tuple[str, str]] | None = None) -> list[FrameRecord]:
        """Decode the records not yet held; drop rows no longer listed; returns the records that
        are held, in order (an unreadable frame is skipped, never a crash). A frame image that is
        there but does not decode is moved aside; with `damaged` given, (image, why) of each goes
        there for the caller's one warning, else each gets a warning of its own."""
        missing = [r for r in records if r.id not in self.ids]
        with ThreadPoolExecutor(max(1, threads)) as pool:  # OpenCV decodes with the GIL released
            decoded = list(pool.map(lambda r: self._decode(store, r, damaged), missing))
        fresh = [(r, img) for r, img in zip(missing, decoded) if img is not None]
        wanted = {r.id for r in records}
        keep = [row for fid, row in self.ids.items() if fid in wanted]
        if len(keep) < len(self.ids):  # frames removed by the storage limits leave the bank
            index = torch.tensor(keep, dtype=torch.long, device=self.device)
            self.pixels, self.poses = self.pixels[index], self.poses[index]
            self.ids = {fid: i for i, fid in enumerate(fid for fid in self.ids if fid in wanted)}
        if fresh:
            pixels = torch.from_numpy(np.stack([img for _, img in fresh])).permute(0, 3, 1, 2)
            poses = torch.stack([pose_of(r) for r, _ in fresh])
            start = len(self.ids)
            self.pixels = torch.cat((self.pixels, pixels.to(self.device)))
            self.poses = torch.cat((self.poses, poses.to(self.device)))
            self.ids.update({r.id: start + i for i, (r, _) in enumerate(fresh)})
        return [r for r in records if r.id in self.ids]

    def _decode(self, store: Store, record: FrameRecord, damaged: list[tuple[str, str]] | None
                ) -> np.ndarray | None:
        try:
            data = store.read_bytes(record.image)
        except StoreError as exc:
            log.warning("skipping frame %s: %s", record.id, exc)
            return None
        try:
            image = decode_jpeg(data, record.image)
        except StoreError as exc:  # read but damaged: kept aside, so the frame is read no more
            why = str(exc).removeprefix(f"{record.image}: ")
            if damaged is None:
                move_aside(store, record.image, why,
                           f"frame {record.id} is skipped (its record stays, as a tracked position)")
            else:  # list.append is atomic: the decoding threads share the list
                move_aside(store, record.image, why, "", warn=lambda _message: None)
                damaged.append((record.image, why))
            return None
        size = self.image_size
        return np.ascontiguousarray(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))

    def rows(self, records: Sequence[FrameRecord]) -> torch.Tensor:
        return torch.tensor([self.ids[r.id] for r in records], dtype=torch.long, device=self.device)

    def batch(self, rows: torch.Tensor, crop_scale: Sequence[float], generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float images [G, 3, S, S] and poses [G, 3] of the given bank rows, each a
        random crop keeping crop_scale of its area (resized back to S, bilinear)."""
        images = self.pixels[rows].float().div_(255.0)
        lo, hi = float(crop_scale[0]), float(crop_scale[1])
        if (lo, hi) != (1.0, 1.0):
            count = rows.shape[0]
            side = (lo + (hi - lo) * torch.rand(count, generator=generator)).sqrt()
            shift = (1.0 - side)[:, None] * (2.0 * torch.rand(count, 2, generator=generator) - 1.0)
            theta = torch.zeros(count, 2, 3)
            theta[:, 0, 0] = theta[:, 1, 1] = side
            theta[:, :, 2] = shift
            grid = F.affine_grid(theta.to(self.device), list(images.shape), align_corners=False)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        mean = torch.as_tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.as_tensor(STD, device=self.device).view(1, 3, 1, 1)
        return (images - mean) / std, self.poses[rows]


class FrameSampler:
    """Which of `count` frames (oldest first) each update of a cycle trains on."""

    def __init__(self, count: int, global_batch: int, *, seed: int, cycle: int,
                 updates_per_epoch: int | None = None, recent_frames: int = 0, recent_share: float = 0.0) -> None:
        if count < 1 or global_batch < 1:
            raise ValueError(f"sampler: expected frames and a batch, got {count} frames, batch {global_batch}")
        self.count, self.global_batch = count, global_batch
        self.seed, self.cycle = seed, cycle
        self.passes = updates_per_epoch is None  # whole epochs: every frame once per epoch
        self.updates_per_epoch = (math.ceil(count / global_batch) if updates_per_epoch is None
                                  else updates_per_epoch)
        weights = torch.ones(count, dtype=torch.float64)
        recent = min(recent_frames, count)
        if 0 < recent < count and recent_share > 0:
            weights[: count - recent] = (1.0 - recent_share) / (count - recent)
            weights[count - recent:] = recent_share / recent
        self.weights = weights

    def generator(self, update: int, stream: int = 0) -> torch.Generator:
        """The seeded generator of one update's draws (stream 1: its crops)."""
        return torch.Generator().manual_seed(hash((self.seed, self.cycle, update, stream)) & (2**63 - 1))

    def rows(self, update: int) -> torch.Tensor:
        """Indices (into the frames, oldest first) of update `update`'s global batch."""
        if self.passes:
            epoch, within = divmod(update, self.updates_per_epoch)
            order = torch.randperm(self.count, generator=self.generator(epoch, stream=2))
            return order[(within * self.global_batch + torch.arange(self.global_batch)) % self.count]
        replace = self.global_batch > self.count
        return torch.multinomial(self.weights, self.global_batch, replacement=replace,
                                 generator=self.generator(update))
