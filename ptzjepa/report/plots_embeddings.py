"""What the world model saw: the stored embeddings projected to 2-D and coloured by reward, and the
frames of the most and the least rewarded moves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ptzjepa.report.figures import REWARD_CMAP, Skip, new_figure, reward_colorbar, reward_norm
from ptzjepa.report.gather import RunData, read_many
from ptzjepa.report.projection import TSNE_MIN_POINTS, pca_2d, tsne_2d, tsne_available
from ptzjepa.storage.frames import decode_jpeg
from ptzjepa.storage.store import StoreError

MIN_PROJECTED = 3
SAMPLES_PER_ROW = 6


def projection(data: RunData) -> tuple[Figure, str]:
    """The PCA panel, and a t-SNE panel when it can be made; the second value notes a missing one."""
    count = len(data.embedding_ids)
    if count < MIN_PROJECTED:
        raise Skip(f"{count} stored embedding(s) in collected_embeds/, a projection needs {MIN_PROJECTED} "
                   "(they are stored for navigate moves when storage.track_all is on)")
    rewards = np.array([data.rewards.get(fid, np.nan) for fid in data.embedding_ids])
    note = ""
    if not tsne_available():
        note = "t-SNE panel left out: scikit-learn is not installed"
    elif count < TSNE_MIN_POINTS:
        note = f"t-SNE panel left out: {count} embeddings, it needs {TSNE_MIN_POINTS}"
    panels = 1 if note else 2
    figure = new_figure(5.2 * panels + 1.0, 4.4)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    norm = reward_norm(rewards[np.isfinite(rewards)])
    points, share = pca_2d(data.embeddings)
    _scatter(axes[0], points, rewards, norm)
    axes[0].set_title(f"PCA ({share[0]:.0%} + {share[1]:.0%} of the variance)")
    axes[0].set_xlabel("PC 1")
    axes[0].set_ylabel("PC 2")
    if panels == 2:
        points, used = tsne_2d(data.embeddings)
        _scatter(axes[1], points, rewards[used], norm)
        axes[1].set_title(f"t-SNE ({len(used)} points)")
    figure.suptitle(f"{count} stored embeddings of navigate frames, coloured by the reward of the move")
    reward_colorbar(figure, axes, norm)
    return figure, note


def _scatter(ax, points: np.ndarray, rewards: np.ndarray, norm) -> None:
    known = np.isfinite(rewards)
    if (~known).any():
        ax.scatter(points[~known, 0], points[~known, 1], s=10, c="#b0b0b0")
    ax.scatter(points[known, 0], points[known, 1], s=14, c=rewards[known], cmap=REWARD_CMAP, norm=norm)


def samples(data: RunData) -> Figure:
    """Two rows: the frames of the most rewarded moves, then of the least rewarded."""
    with_image = {p.id: p for p in data.poses if p.image and p.id in data.rewards}
    ranked = sorted(with_image, key=lambda fid: data.rewards[fid], reverse=True)
    if len(ranked) < 2:
        raise Skip(f"{len(ranked)} stored frame(s) with both an image and a reward; the grid needs 2")
    per_row = min(SAMPLES_PER_ROW, len(ranked) // 2)
    rows = {"most rewarded": ranked[:per_row], "least rewarded": ranked[::-1][:per_row]}
    images = read_many(data.store, [with_image[fid].image for ids in rows.values() for fid in ids])
    figure = new_figure(2.2 * per_row, 5.0)
    axes = figure.subplots(2, per_row, squeeze=False)
    for row, (label, ids) in enumerate(rows.items()):
        for ax, fid in zip(axes[row], ids):
            pose = with_image[fid]
            ax.set_xticks([])
            ax.set_yticks([])
            try:
                ax.imshow(decode_jpeg(images.get(pose.image, b""), pose.image))
            except StoreError:
                ax.text(0.5, 0.5, "image\nunreadable", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(f"{data.rewards[fid]:.3g} · {pose.action or pose.kind}\n"
                         f"{pose.pan:.0f}°, {pose.tilt:.0f}°, {pose.zoom:.1f}×", fontsize="small")
        axes[row][0].set_ylabel(label)
    figure.suptitle("Frames after the most (top) and least (bottom) rewarded moves: reward · action, pan, tilt, zoom")
    return figure
