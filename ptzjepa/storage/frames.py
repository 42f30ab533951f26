"""Frames on disk: the JPEG, the position record, and the command that led there.

Layout (PTZJEPA's folder names, so that its users find their data):

    collected_imgs/<id>.jpg         the picture
    collected_commands/<id>.json    the command that moved the camera there
    collected_positions/<id>.json   the frame record: id, PTZ, UTC time, command, cycle, stage, node

The position record is written last and is the commit marker. A frame, as training, dreams and
the frame counts see it, is a record whose JPEG is stored: when the storage limits remove the image
but keep the position (`storage.track_positions`), the record stays as a tracked position, marked
`"image": ""`, and is no longer a frame (`ids`, `count`, `records`); `record_ids` lists both. Ids
are deterministic (cycle, stage, step), so a step repeated after a crash rewrites the same three
files instead of adding a duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Literal

import attrs
import cattrs
import cv2
import numpy as np

from ptzjepa.camera.base import PTZ, Frame
from ptzjepa.storage.embeddings import EMBEDS, embedding_path
from ptzjepa.storage.store import Store, StoreError

IMAGES = "collected_imgs"
POSITIONS = "collected_positions"
COMMANDS = "collected_commands"

log = logging.getLogger(__name__)
_conv = cattrs.Converter()
_conv.register_unstructure_hook(dt.datetime, lambda t: t.isoformat())
_conv.register_structure_hook(dt.datetime, lambda v, _: dt.datetime.fromisoformat(v))


@attrs.frozen
class Command:
    """How the camera was moved to take a frame."""

    kind: Literal["absolute", "relative", "action"]
    value: PTZ
    action: str = ""


@attrs.frozen
class FrameRecord:
    id: str
    ptz: PTZ
    time: dt.datetime
    command: Command
    cycle: int
    stage: str
    node: str
    image: str  # store-relative path of the JPEG; '' once retention removed it (a tracked position)
    width: int
    height: int


def frame_id(cycle: int, stage: str, step: int) -> str:
    return f"c{cycle:05d}_{stage}_{step:06d}"


class FrameStore:
    """Reads and writes frame records in a Store."""

    def __init__(self, store: Store, jpeg_quality: int = 90) -> None:
        self.store = store
        self.jpeg_quality = jpeg_quality
        self._warned: set[str] = set()  # damaged records already named in a warning

    def put(
        self, frame: Frame, command: Command, *, fid: str, cycle: int, stage: str, node: str
    ) -> FrameRecord:
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality],
        )
        if not ok:
            raise StoreError(f"frame {fid}: JPEG encoding failed")
        image_rel = f"{IMAGES}/{fid}.jpg"
        height, width = frame.image.shape[:2]
        record = FrameRecord(
            id=fid, ptz=frame.ptz, time=frame.time, command=command, cycle=cycle,
            stage=stage, node=node, image=image_rel, width=width, height=height,
        )
        self.store.write_bytes(image_rel, jpeg.tobytes())
        self.store.write_json(f"{COMMANDS}/{fid}.json", _conv.unstructure(command))
        self.store.write_json(f"{POSITIONS}/{fid}.json", _conv.unstructure(record))
        return record

    def ids(self) -> list[str]:
        """The frames, oldest first: records whose JPEG is stored. Two folder listings, not a read
        per record (remote stores are slow); an image-less record is a tracked position."""
        images = {name[: -len(".jpg")] for name in self.store.list(IMAGES, ".jpg")}
        return [fid for fid in self.record_ids() if fid in images]

    def record_ids(self) -> list[str]:
        """Every committed record, oldest first: the frames and the tracked positions."""
        return [name[: -len(".json")] for name in self.store.list(POSITIONS, ".json")]

    def count(self) -> int:
        return len(self.ids())

    def has_record(self, fid: str) -> bool:
        """Whether the frame `fid` was committed (its record written), a frame or a tracked position."""
        return self.store.exists(f"{POSITIONS}/{fid}.json")

    def record(self, fid: str) -> FrameRecord:
        data = self.store.read_json(f"{POSITIONS}/{fid}.json")
        try:
            return _conv.structure(data, FrameRecord)
        except Exception as exc:  # cattrs raises several kinds; all mean the same to a reader
            raise StoreError(f"{POSITIONS}/{fid}.json: not a frame record ({exc})") from None

    def records(self) -> Iterator[FrameRecord]:
        """The frames' records, for learning: never a tracked position without its image."""
        for fid in self.ids():
            try:
                record = self.record(fid)
            except StoreError as exc:  # left in place: its image and command stay a frame's
                if fid not in self._warned:
                    self._warned.add(fid)
                    log.warning("skipping frame record: %s", exc)
                continue
            if record.image:
                yield record

    def image(self, record: FrameRecord) -> np.ndarray:
        """The frame's pixels as RGB uint8; StoreError if missing or not a decodable JPEG."""
        if not record.image:
            raise StoreError(f"frame {record.id}: its image was removed by the storage limits")
        return decode_jpeg(self.store.read_bytes(record.image), record.image)

    def delete(self, fid: str) -> None:
        """Remove a frame: the record first, so a crash midway leaves no record without image."""
        self.store.delete(f"{POSITIONS}/{fid}.json")
        self.store.delete(f"{COMMANDS}/{fid}.json")
        self.store.delete(f"{IMAGES}/{fid}.jpg")
        self.store.delete(embedding_path(fid))

    def drop_image(self, fid: str, *, keep_embedding: bool) -> None:
        """Remove a frame's JPEG but keep its position record and command (storage.track_positions),
        and its embedding when asked (storage.track_all). The JPEG goes first: a crash before the
        record is marked leaves a record without image, which is a tracked position already."""
        self.store.delete(f"{IMAGES}/{fid}.jpg")
        if not keep_embedding:
            self.store.delete(embedding_path(fid))
        try:
            data = self.store.read_json(f"{POSITIONS}/{fid}.json", default=None)
        except StoreError:  # a damaged record: without its image it is no frame either way
            return
        if isinstance(data, dict) and data.get("image"):
            self.store.write_json(f"{POSITIONS}/{fid}.json", {**data, "image": ""})

    def sweep_orphans(self) -> int:
        """Delete images, commands and embeddings whose record was never written (a write cut
        short) or is gone (a removal cut short); a tracked position's files stay with its record."""
        known = set(self.record_ids())
        removed = 0
        for folder, suffix in ((IMAGES, ".jpg"), (COMMANDS, ".json"), (EMBEDS, ".pt")):
            for name in self.store.list(folder, suffix):
                if name[: -len(suffix)] not in known:
                    self.store.delete(f"{folder}/{name}")
                    removed += 1
        return removed


def decode_jpeg(data: bytes, name: str) -> np.ndarray:
    """A stored frame's pixels. A file cut short is refused too: the decoder would fill the missing
    rows with grey and train on them (every frame is stored by cv2, which ends it with FFD9)."""
    if not data:
        raise StoreError(f"{name}: empty file")
    if not data.endswith(b"\xff\xd9"):
        raise StoreError(f"{name}: not a whole JPEG (cut short: no end marker)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise StoreError(f"{name}: not a decodable JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
