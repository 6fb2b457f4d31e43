"""Maps of an embedding space: 2-D projections, how far to trust them, and a thumbnail scatter.

- :func:`project` squeezes ``(n, d)`` embeddings to ``(n, 2)`` with PCA (a linear view
  that keeps the directions of largest spread) or t-SNE (a non-linear map that tries to keep
  each point's near neighbours near).
- :func:`neighbour_overlap` measures how many of each point's ``k`` nearest neighbours in
  the full space are still among its ``k`` nearest on the map.
- :func:`thumbnail_scatter` draws every point as a small picture of its image, framed in the
  colour of its category, with a legend readable on a projector.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.patches import Patch
from PIL import Image

from .images import ImageLoadError, as_rgb

__all__ = ["PROJECTIONS", "neighbour_overlap", "nearest_neighbours", "project", "thumbnail_scatter"]

#: The methods :func:`project` knows.
PROJECTIONS = ("pca", "tsne")


def _check_points(X: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array, got shape {X.shape}")
    if X.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {X.shape[0]}")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no columns (shape {X.shape})")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity; fix the rows that produced them")
    return X


def project(
    X: np.ndarray,
    method: str = "pca",
    n_components: int = 2,
    random_state: int = 0,
    perplexity: float = 30.0,
) -> np.ndarray:
    """Project ``(n, d)`` embeddings to ``(n, n_components) float64``.

    Args:
        X: the embeddings (scale rows to length 1 first to map cosine similarity).
        method: ``"pca"`` (``sklearn.decomposition.PCA``, exact SVD) or ``"tsne"``
            (``sklearn.manifold.TSNE``, initialised with PCA, ``random_state`` fixed; the
            exact gradient below 1,000 points, Barnes-Hut above).
        n_components: output dimensions.
        random_state: seed for t-SNE; the same seed gives the same map on the same machine.
        perplexity: t-SNE's effective number of neighbours; lowered to ``(n - 1) / 3``
            when there are too few points for it.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; choose one of {PROJECTIONS}")
    X = _check_points(X, "X", min_rows=max(3, n_components + 1))
    if n_components < 1 or n_components > X.shape[1]:
        raise ValueError(f"n_components must be between 1 and {X.shape[1]}, got {n_components}")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, svd_solver="full").fit_transform(X)
    from sklearn.manifold import TSNE

    tsne = TSNE(
        n_components=n_components,
        perplexity=min(perplexity, (X.shape[0] - 1) / 3),
        init="pca",
        random_state=random_state,
        # the exact gradient is faster than Barnes-Hut's approximation below a thousand points
        method="exact" if X.shape[0] < 1000 else "barnes_hut",
    )
    return tsne.fit_transform(X).astype(np.float64)


def nearest_neighbours(X: np.ndarray, k: int) -> np.ndarray:
    """``(n, k) int``: each row's ``k`` nearest other rows by Euclidean distance, nearest first."""
    X = _check_points(X, "X", min_rows=2)
    if not 1 <= k < X.shape[0]:
        raise ValueError(f"k must be between 1 and n - 1 = {X.shape[0] - 1}, got {k}")
    squared = np.sum(X * X, axis=1)
    d2 = squared[:, None] + squared[None, :] - 2.0 * (X @ X.T)
    np.fill_diagonal(d2, np.inf)
    nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(d2, nearest, axis=1), axis=1, kind="stable")
    return np.take_along_axis(nearest, order, axis=1)


def neighbour_overlap(X: np.ndarray, xy: np.ndarray, k: int = 10) -> np.ndarray:
    """For each point, the fraction of its ``k`` nearest neighbours in ``X`` that are also among
    its ``k`` nearest on the map ``xy``; ``(n,) float64`` in [0, 1] (1: the map kept them all).
    """
    X = _check_points(X, "X", min_rows=2)
    xy = _check_points(xy, "xy", min_rows=2)
    if len(X) != len(xy):
        raise ValueError(f"X has {len(X)} rows but the map xy has {len(xy)}: one map point per row")
    n = len(X)
    full = np.zeros((n, n), dtype=bool)
    mapped = np.zeros((n, n), dtype=bool)
    rows = np.arange(n)[:, None]
    full[rows, nearest_neighbours(X, k)] = True
    mapped[rows, nearest_neighbours(xy, k)] = True
    return (full & mapped).sum(axis=1) / k


def _thumbnail(item, pixels: int) -> np.ndarray:
    """The picture as an ``(h, w, 3) uint8`` array at most ``pixels`` on a side (grey if unreadable)."""
    try:
        image = as_rgb(item)
    except (ImageLoadError, ValueError):
        return np.full((pixels, pixels, 3), 128, dtype=np.uint8)
    image = image.copy()
    image.thumbnail((pixels, pixels), Image.Resampling.LANCZOS)
    return np.asarray(image.convert("RGB"))


def thumbnail_scatter(
    xy: np.ndarray,
    images: Sequence[str | os.PathLike | Image.Image],
    categories: Sequence[str] | None = None,
    ax=None,
    title: str | None = None,
    thumb_pixels: int = 40,
    zoom: float = 0.6,
    legend: bool = True,
    cmap: str = "tab20",
    fontsize: int = 14,
):
    """Draw each point of the ``(n, 2)`` map ``xy`` as a thumbnail of its image; returns the axes.

    Args:
        xy: map coordinates, one row per image.
        images: ``n`` paths or PIL images, in the same order as ``xy``.
        categories: ``n`` category names (label, photo group); each thumbnail gets a frame in
            its category's colour, and the legend names the colours.
        ax: axes to draw on; a new 10 x 8 inch figure when None.
        thumb_pixels: longest side of a thumbnail in pixels, before ``zoom``.
        fontsize: title and legend size; the default reads from the back of a classroom.

    Every thumbnail is an ``AnnotationBbox`` whose ``xy`` is its map point, and an invisible
    scatter of the points sets the axis limits.
    """
    xy = _check_points(xy, "xy")
    if xy.shape[1] != 2:
        raise ValueError(f"xy must have 2 columns (a 2-D map), got shape {xy.shape}")
    if len(images) != len(xy):
        raise ValueError(f"got {len(xy)} map points but {len(images)} images: one image per point")
    if categories is not None and len(categories) != len(xy):
        raise ValueError(f"got {len(xy)} map points but {len(categories)} categories: one per point")
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 8))
    names = sorted(set(categories)) if categories is not None else []
    palette = plt.get_cmap(cmap, max(len(names), 1))
    colour_of = {name: palette(i) for i, name in enumerate(names)}
    ax.scatter(xy[:, 0], xy[:, 1], s=1, alpha=0)  # sets the limits; the thumbnails are artists
    for i, (point, item) in enumerate(zip(xy, images, strict=True)):
        frame = colour_of[categories[i]] if categories is not None else "0.6"
        box = AnnotationBbox(
            OffsetImage(_thumbnail(item, thumb_pixels), zoom=zoom),
            tuple(point),
            frameon=True,
            pad=0.15,
            bboxprops={"edgecolor": frame, "linewidth": 2.5},
        )
        box.set_gid(f"thumbnail-{i}")
        ax.add_artist(box)
    margin = 0.06 * (np.ptp(xy, axis=0) + 1e-12)
    ax.set_xlim(xy[:, 0].min() - margin[0], xy[:, 0].max() + margin[0])
    ax.set_ylim(xy[:, 1].min() - margin[1], xy[:, 1].max() + margin[1])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    if legend and names:
        handles = [Patch(facecolor="white", edgecolor=colour_of[n], linewidth=3, label=n) for n in names]
        ax.legend(
            handles=handles,
            fontsize=fontsize - 2,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            frameon=False,
            ncols=1 if len(names) <= 18 else 2,
        )
    return ax
