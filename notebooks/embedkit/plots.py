"""Pictures the lessons show: image grids, pairs with scores, heatmaps, PR curves."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from .images import ImageLoadError, as_rgb

__all__ = ["image_grid", "pair_grid", "precision_recall_plot", "similarity_heatmap"]


def _format(value) -> str:
    """An integer score (a Hamming distance) as is, a float one rounded to 3 decimals."""
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.3f}"


def _as_image(item) -> Image.Image | None:
    """The picture as a person sees it (RGB, transparency over white), or None if unreadable."""
    try:
        return as_rgb(item)
    except (ImageLoadError, ValueError):
        return None


def image_grid(
    images: Sequence[str | os.PathLike | Image.Image],
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    size: float = 2.0,
    suptitle: str | None = None,
):
    """Show images in a grid, each with an optional title; returns the figure.

    An unreadable file is shown as an empty panel titled with the reason, not skipped.
    """
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    title_lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    row_height = size + 0.18 * title_lines
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, row_height * nrows + (0.4 if suptitle else 0.1)), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, item in enumerate(images):
        ax = axes.flat[i]
        image = _as_image(item)
        if image is None:
            ax.set_title("unreadable", fontsize=8, color="crimson")
            continue
        ax.imshow(image)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def pair_grid(
    pairs: Sequence[tuple],
    scores: Sequence[float] | None = None,
    captions: Sequence[str] | None = None,
    size: float = 2.0,
    score_name: str = "cos",
):
    """Show image pairs side by side, one pair per column, the score above each pair.

    ``pairs`` holds ``(left, right)`` paths or images; ``captions`` one line per pair.
    """
    n = len(pairs)
    fig, axes = plt.subplots(2, n, figsize=(size * n, size * 2 + 0.6), squeeze=False)
    for j, (left, right) in enumerate(pairs):
        for row, item in enumerate((left, right)):
            ax = axes[row, j]
            ax.axis("off")
            image = _as_image(item)
            if image is not None:
                ax.imshow(image)
        title = [] if captions is None else [captions[j]]
        if scores is not None:
            title.append(f"{score_name} = {_format(scores[j])}")
        axes[0, j].set_title("\n".join(title), fontsize=8)
    fig.tight_layout()
    return fig


def similarity_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str] | None = None,
    title: str = "cosine similarity",
    vmin: float | None = None,
    vmax: float = 1.0,
    size: float = 7.0,
):
    """Show an ``(n, n)`` similarity matrix; ``labels`` (n,) mark where each run of equal labels starts."""
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(matrix, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title)
    if labels is not None:
        labels = list(labels)
        starts = [i for i in range(len(labels)) if i == 0 or labels[i] != labels[i - 1]]
        for s in starts[1:]:
            ax.axhline(s - 0.5, color="white", lw=0.4)
            ax.axvline(s - 0.5, color="white", lw=0.4)
        ax.set_yticks(starts, [labels[s] for s in starts], fontsize=7)
        ax.set_xticks([])
    fig.tight_layout()
    return fig


def precision_recall_plot(
    thresholds: np.ndarray,
    precision: np.ndarray,
    recall: np.ndarray,
    chosen: float | None = None,
    xlabel: str = "threshold",
    title: str = "precision and recall against the threshold",
):
    """Precision and recall as functions of a threshold, the chosen threshold marked."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(thresholds, precision, label="precision")
    ax.plot(thresholds, recall, label="recall")
    if chosen is not None:
        ax.axvline(chosen, color="crimson", ls="--", label=f"chosen = {_format(chosen)}")
    ax.set_xlabel(xlabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig
