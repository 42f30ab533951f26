"""Stored frames as a torch Dataset: decoded, cropped, resized and normalised for the world model.

Works over any store URL: each DataLoader worker opens its own handle to the store. Decoded
frames are kept in a small per-process cache (downscaled, so thousands fit), which makes every
epoch after the first on a small store free of JPEG decoding. A frame that cannot be read or
decoded is skipped with a warning, never a crash; an image that is there but does not decode is
moved aside (docs/resilience.md), so that later epochs and stages no longer read it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ptzjepa.storage.damage import move_aside
from ptzjepa.storage.frames import FrameRecord, decode_jpeg
from ptzjepa.storage.store import Store, StoreError

log = logging.getLogger(__name__)

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_CACHE_SCALE = 1.25  # cached frames keep a little more than the model's size, for random crops


def to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """The whole frame, resized to size x size and normalised: [3, size, size] float32."""
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return _normalise(resized)


def _normalise(image: np.ndarray) -> torch.Tensor:
    array = (image.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def random_crop(image: np.ndarray, size: int, scale: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """A crop keeping `scale` of the area (the image's aspect), resized to size x size."""
    h, w = image.shape[:2]
    area = float(rng.uniform(scale[0], scale[1]))
    ch, cw = max(1, int(round(h * area**0.5))), max(1, int(round(w * area**0.5)))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    crop = image[top : top + ch, left : left + cw]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def pose_of(record: FrameRecord) -> torch.Tensor:
    return torch.tensor([record.ptz.pan, record.ptz.tilt, record.ptz.zoom], dtype=torch.float32)


class FrameDataset(Dataset):
    """(image [3,S,S], pose [3]) per stored frame; None for a frame that cannot be read."""

    def __init__(
        self, store_url: str, records: Sequence[FrameRecord], image_size: int,
        crop_scale: Sequence[float] = (1.0, 1.0), cache_frames: int = 0, seed: int = 0,
    ) -> None:
        self.store_url = store_url
        self.records = list(records)
        self.image_size = image_size
        self.crop_scale = tuple(crop_scale)
        self.cache_frames = cache_frames
        self.seed = seed
        self._store: Store | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._draws = 0

    def __len__(self) -> int:
        return len(self.records)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_store"], state["_cache"] = None, OrderedDict()  # each worker opens its own
        return state

    def _image(self, record: FrameRecord) -> np.ndarray | None:
        cached = self._cache.get(record.id)
        if cached is not None:
            self._cache.move_to_end(record.id)
            return cached
        if self._store is None:
            self._store = Store(self.store_url)
        data = self._store.read_bytes(record.image)
        try:
            image = decode_jpeg(data, record.image)
        except StoreError as exc:  # read but damaged: kept aside, so the frame is read no more
            move_aside(self._store, record.image, str(exc).removeprefix(f"{record.image}: "),
                       f"frame {record.id} is skipped (its record stays, as a tracked position)")
            return None
        limit = int(self.image_size * _CACHE_SCALE)
        h, w = image.shape[:2]
        if min(h, w) > limit:
            factor = limit / min(h, w)
            image = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
        if self.cache_frames:
            self._cache[record.id] = image
            if len(self._cache) > self.cache_frames:
                self._cache.popitem(last=False)
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        record = self.records[index]
        try:
            image = self._image(record)
        except StoreError as exc:
            log.warning("skipping frame %s: %s", record.id, exc)
            return None
        if image is None:  # damaged, moved aside with its warning
            return None
        if self.crop_scale == (1.0, 1.0):
            tensor = to_tensor(image, self.image_size)
        else:
            info = torch.utils.data.get_worker_info()
            worker = info.id if info is not None else 0
            self._draws += 1
            rng = np.random.default_rng([self.seed, worker, index, self._draws])
            tensor = _normalise(random_crop(image, self.image_size, self.crop_scale, rng))
        return tensor, pose_of(record)


def collate_skipping_bad(batch: list) -> tuple[torch.Tensor, torch.Tensor] | None:
    good = [item for item in batch if item is not None]
    if not good:
        return None
    images, poses = zip(*good)
    return torch.stack(images), torch.stack(poses)


def frame_loader(
    dataset: FrameDataset, batch_size: int, num_workers: int, shuffle: bool, seed: int,
    pin_memory: bool = False,
) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
        collate_fn=collate_skipping_bad, generator=generator, pin_memory=pin_memory,
        persistent_workers=num_workers > 0, drop_last=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )
