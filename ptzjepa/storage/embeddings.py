"""A navigate move's embedding record, `collected_embeds/<frame id>.pt`: its one writer and reader.

One torch file per move (stored with `storage.track_all`): the pooled target-encoder tokens of the
frame the move reached (float16), where it was taken, the action, the real reward (the world
model's error on that view), the Q-value of every action and the navigation policy; where the
simulator graded the move, its choice percentile too. Plain tensors and strings, loaded with
`weights_only=True`, so reading a record never runs code from the store. Records written before
the policy was recorded have neither policy nor percentile.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import attrs

from ptzjepa.storage.damage import Damaged
from ptzjepa.storage.store import Store

if TYPE_CHECKING:  # torch loads where a record is written or read: the frame store needs only the names
    import torch

EMBEDS = "collected_embeds"


def embedding_path(fid: str) -> str:
    return f"{EMBEDS}/{fid}.pt"


@attrs.frozen(eq=False)
class EmbeddingRecord:
    embedding: torch.Tensor  # [D] pooled target-encoder tokens
    ptz: tuple[float, float, float]
    action: str
    reward: float
    q: torch.Tensor  # [actions]
    policy: str | None = None
    choice_percentile: float | None = None


def encode_embedding(record: EmbeddingRecord) -> bytes:
    import torch

    saved = {"embedding": record.embedding, "ptz": torch.tensor(record.ptz), "action": record.action,
             "reward": torch.tensor(record.reward), "q": record.q}
    if record.policy is not None:
        saved["policy"] = record.policy
    if record.choice_percentile is not None:
        saved["choice_percentile"] = record.choice_percentile
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    return buffer.getvalue()


def decode_embedding(raw: bytes) -> EmbeddingRecord:
    """The record in a stored file's bytes; Damaged if they are not one (torn, or another file)."""
    import torch

    try:
        saved = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        return EmbeddingRecord(
            embedding=saved["embedding"], ptz=tuple(float(v) for v in saved["ptz"].tolist()),
            action=str(saved["action"]), reward=float(saved["reward"]), q=saved["q"],
            policy=saved.get("policy"), choice_percentile=saved.get("choice_percentile"))
    except Exception as exc:  # a torn or foreign file raises whatever the unpickler meets
        raise Damaged(f"not a stored embedding ({type(exc).__name__})") from None


def write_embedding(store: Store, fid: str, record: EmbeddingRecord) -> None:
    store.write_bytes(embedding_path(fid), encode_embedding(record))


def read_embedding(store: Store, fid: str) -> EmbeddingRecord:
    """StoreError if the file is missing or unreadable, Damaged if it holds no record."""
    return decode_embedding(store.read_bytes(embedding_path(fid)))


def embedding_ids(store: Store) -> list[str]:
    """The frame ids that have a stored embedding record, oldest first."""
    return [name[: -len(".pt")] for name in store.list(EMBEDS, ".pt")]
