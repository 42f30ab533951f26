"""The navigate move's embedding record: what is written reads back the same, the file keeps the
layout earlier runs stored (so their data still reads), and a torn or foreign file is refused."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import numpy as np
import pytest
import torch

from ptzjepa.camera.base import PTZ, Frame
from ptzjepa.storage.damage import Damaged
from ptzjepa.storage.embeddings import (
    EMBEDS,
    EmbeddingRecord,
    decode_embedding,
    embedding_ids,
    embedding_path,
    read_embedding,
    write_embedding,
)
from ptzjepa.storage.frames import Command, FrameStore, frame_id
from ptzjepa.storage.store import Store, StoreError


def _store() -> Store:
    return Store(f"memory://embeds-{uuid.uuid4().hex}")


def _record(**changes) -> EmbeddingRecord:
    fields = dict(embedding=torch.arange(8, dtype=torch.float16), ptz=(12.5, -3.0, 2.0), action="jump_left",
                  reward=0.375, q=torch.linspace(-1, 1, 21), policy="curiosity", choice_percentile=87.5)
    return EmbeddingRecord(**(fields | changes))


def test_a_record_reads_back_as_written():
    store = _store()
    write_embedding(store, "c00001_navigate_000003", _record())
    got = read_embedding(store, "c00001_navigate_000003")
    assert torch.equal(got.embedding, _record().embedding) and got.embedding.dtype == torch.float16
    assert got.ptz == (12.5, -3.0, 2.0) and got.action == "jump_left" and got.reward == 0.375
    assert torch.equal(got.q, _record().q)
    assert got.policy == "curiosity" and got.choice_percentile == 87.5
    assert embedding_ids(store) == ["c00001_navigate_000003"]
    assert embedding_path("c00001_navigate_000003") == f"{EMBEDS}/c00001_navigate_000003.pt"


def test_the_file_is_plain_tensors_under_the_stored_keys():
    store = _store()
    write_embedding(store, "f", _record(choice_percentile=None))
    saved = torch.load(io.BytesIO(store.read_bytes(embedding_path("f"))), weights_only=True)
    assert list(saved) == ["embedding", "ptz", "action", "reward", "q", "policy"]  # ungraded: no percentile
    assert saved["ptz"].dtype == torch.float32 and saved["reward"].ndim == 0
    assert torch.equal(saved["ptz"], torch.tensor([12.5, -3.0, 2.0]))


def test_a_record_from_before_the_policy_was_kept_still_reads():
    buffer = io.BytesIO()
    torch.save({"embedding": torch.zeros(4, dtype=torch.float16), "ptz": torch.tensor([1.0, 2.0, 3.0]),
                "action": "noop", "reward": torch.tensor(0.5), "q": torch.zeros(21)}, buffer)
    got = decode_embedding(buffer.getvalue())
    assert got.reward == 0.5 and got.policy is None and got.choice_percentile is None


@pytest.mark.parametrize("raw", [b"", b"cut short", b"PK\x03\x04 not a whole archive"])
def test_a_torn_or_foreign_file_is_refused_as_damaged(raw):
    store = _store()
    store.write_bytes(embedding_path("bad"), raw)
    with pytest.raises(Damaged, match="not a stored embedding"):
        read_embedding(store, "bad")
    buffer = io.BytesIO()
    torch.save({"reward": torch.tensor(1.0)}, buffer)  # a torch file, but not this record
    with pytest.raises(Damaged, match=r"not a stored embedding \(KeyError\)"):
        decode_embedding(buffer.getvalue())
    with pytest.raises(StoreError):
        read_embedding(store, "missing")


def test_the_frame_store_says_which_frames_were_committed():
    frames = FrameStore(_store())
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    kept, dropped = frame_id(0, "capture", 0), frame_id(0, "capture", 1)
    for fid in (kept, dropped):
        frames.put(Frame(image, PTZ(0, 0, 1), dt.datetime.now(dt.timezone.utc)), Command("absolute", PTZ(0, 0, 1)),
                   fid=fid, cycle=0, stage="capture", node="n")
    frames.drop_image(dropped, keep_embedding=False)  # a tracked position is committed too
    assert frames.has_record(kept) and frames.has_record(dropped)
    assert not frames.has_record(frame_id(0, "capture", 2))
    frames.delete(kept)
    assert not frames.has_record(kept)
