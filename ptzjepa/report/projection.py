"""2-D projections of the stored embeddings: PCA always (a torch SVD), t-SNE when scikit-learn is
installed. Both are seeded, so the same store gives the same picture."""

from __future__ import annotations

import numpy as np
import torch

TSNE_MAX_POINTS = 2000  # t-SNE's cost grows with n²; beyond this a seeded sample is drawn
TSNE_MIN_POINTS = 5


def pca_2d(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points on their first two principal axes, and the share of variance each explains."""
    centred = torch.from_numpy(matrix).double()
    centred = centred - centred.mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    points = (centred @ vh[:2].T).numpy()
    if points.shape[1] < 2:  # one-dimensional embeddings: the second axis is flat
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    variance = (singular**2).numpy()
    share = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return points.astype(np.float32), np.pad(share, (0, 2 - share.size))


def tsne_available() -> bool:
    try:
        import sklearn.manifold  # noqa: F401
    except ImportError:
        return False
    return True


def tsne_2d(matrix: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE of the points (at most TSNE_MAX_POINTS of them); returns (points, indices used)."""
    from sklearn.manifold import TSNE

    indices = np.arange(len(matrix))
    if len(indices) > TSNE_MAX_POINTS:
        indices = np.sort(np.random.default_rng(seed).choice(indices, TSNE_MAX_POINTS, replace=False))
    chosen = matrix[indices].astype(np.float64)
    perplexity = float(min(30.0, max(1.0, (len(chosen) - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(chosen)
    return points.astype(np.float32), indices
