"""2-D projections of the stored embeddings: PCA always (a torch SVD), t-SNE when scikit-learn is
installed. Both are seeded, so the same store gives the same picture."""

from __future__ import annotations

import numpy as np
import torch

TSNE_MAX_POINTS = 1000  # t-SNE's cost grows with n log n and its constant is large: beyond, a seeded sample
TSNE_MIN_POINTS = 5
TSNE_INPUT_DIMS = 50  # the usual PCA reduction before t-SNE: same picture, much faster neighbour search


def _svd(matrix: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The centred points and their singular values and axes."""
    centred = torch.from_numpy(matrix).double()
    centred = centred - centred.mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    return centred, singular, vh


def _principal(matrix: np.ndarray, dims: int) -> np.ndarray:
    """The points on their first `dims` principal axes (all of them when there are fewer)."""
    centred, _, vh = _svd(matrix)
    return (centred @ vh[:dims].T).numpy()


def pca_2d(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points on their first two principal axes, and the share of variance each explains."""
    centred, singular, vh = _svd(matrix)
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
    """t-SNE of the points (at most TSNE_MAX_POINTS of them, reduced to TSNE_INPUT_DIMS by PCA);
    returns (points, indices used). It runs on one thread: the same picture every time, and no
    stall when the cores are busy (its OpenMP threads spin-wait)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    indices = np.arange(len(matrix))
    if len(indices) > TSNE_MAX_POINTS:
        indices = np.sort(np.random.default_rng(seed).choice(indices, TSNE_MAX_POINTS, replace=False))
    chosen = _principal(matrix[indices], TSNE_INPUT_DIMS)
    perplexity = float(min(30.0, max(1.0, (len(chosen) - 1) / 3)))
    with threadpool_limits(limits=1):
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(chosen)
    return points.astype(np.float32), indices
