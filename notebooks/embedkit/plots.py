"""Pictures the lessons show: image grids, pairs with scores, heatmaps, PR curves."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from mpl_toolkits.axes_grid1 import make_axes_locatable
from PIL import Image

from .images import ImageLoadError, as_rgb

__all__ = ["image_grid", "pair_grid", "precision_recall_plot", "similarity_heatmap"]


def _format(value) -> str:
    """An integer score (a Hamming distance) as is, a float one rounded to 3 decimals."""
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.3f}"


def _as_image(item) -> tuple[Image.Image | None, str]:
    """The picture as a person sees it (RGB, transparency over white), or None and the reason."""
    try:
        return as_rgb(item), ""
    except (ImageLoadError, ValueError, TypeError) as exc:
        return None, getattr(exc, "reason", None) or str(exc)


def _unreadable(ax, reason: str) -> None:
    """An empty panel that says why the picture is missing."""
    short = reason if len(reason) <= 60 else reason[:57] + "..."
    ax.text(
        0.5,
        0.5,
        "unreadable:\n" + short,
        ha="center",
        va="center",
        wrap=True,
        fontsize=7,
        color="crimson",
        transform=ax.transAxes,
    )


def _sequence(items, name: str) -> list:
    """``items`` as a non-empty list, or embedkit's own error."""
    if items is None or isinstance(items, (str, bytes)) or not hasattr(items, "__len__"):
        raise TypeError(f"{name} must be a list (or array) of items; got {type(items).__name__}")
    if len(items) == 0:
        raise ValueError(f"{name} is empty: there is nothing to plot")
    return list(items)


def _same_length(values, n: int, name: str, of: str) -> None:
    if values is not None and len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} {of}; give one per {of[:-1]}")


def image_grid(
    images: Sequence[str | os.PathLike | Image.Image],
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    size: float = 2.0,
    suptitle: str | None = None,
    title_size: float = 8,
):
    """Show images in a grid, each with an optional title; returns the figure.

    ``title_size`` is the titles' font size in points; the rows grow with it.

    An unreadable file is shown as an empty panel titled with the reason, not skipped.

    Raises:
        TypeError, ValueError: ``images`` is None or empty, or ``titles`` does not
            have one entry per image.
    """
    images = _sequence(images, "images")
    n = len(images)
    _same_length(titles, n, "titles", "images")
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    title_lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    row_height = size + 0.18 * title_lines * title_size / 8
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, row_height * nrows + (0.4 if suptitle else 0.1)), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, item in enumerate(images):
        ax = axes.flat[i]
        image, reason = _as_image(item)
        if image is None:
            ax.set_title("unreadable", fontsize=title_size, color="crimson")
            _unreadable(ax, reason)
            continue
        ax.imshow(image)
        if titles is not None:
            ax.set_title(titles[i], fontsize=title_size)
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
    title_size: float = 8,
):
    """Show image pairs one pair per column, the first image on top and the second below it.

    ``pairs`` holds ``(top, bottom)`` paths or images; ``scores`` and ``captions`` go into the
    title above each pair, in ``title_size`` points.
    An unreadable file is shown as an empty panel titled with the reason.

    Raises:
        TypeError, ValueError: ``pairs`` is None or empty, an item is not a pair, or
            ``scores``/``captions`` do not have one entry per pair.
    """
    pairs = _sequence(pairs, "pairs")
    n = len(pairs)
    _same_length(scores, n, "scores", "pairs")
    _same_length(captions, n, "captions", "pairs")
    if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise ValueError("pairs must hold (left, right) tuples, one per pair")
    fig, axes = plt.subplots(2, n, figsize=(size * n, size * 2 + 0.6 * title_size / 8), squeeze=False)
    for j, (left, right) in enumerate(pairs):
        for row, item in enumerate((left, right)):
            ax = axes[row, j]
            ax.axis("off")
            image, reason = _as_image(item)
            if image is not None:
                ax.imshow(image)
            else:
                _unreadable(ax, reason)
        title = [] if captions is None else [captions[j]]
        if scores is not None:
            title.append(f"{score_name} = {_format(scores[j])}")
        axes[0, j].set_title("\n".join(title), fontsize=title_size)
    fig.tight_layout()
    return fig


def similarity_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str] | None = None,
    title: str = "cosine similarity",
    vmin: float | None = None,
    vmax: float = 1.0,
    size: float = 7.0,
    colorbar_label: str = "cosine similarity",
    label_size: float = 9,
):
    """Show an ``(n, n)`` similarity matrix; rows and columns in the same order.

    ``labels`` (n,): each run of equal labels is a block, separated by white lines and named
    at the middle of its rows (``label_size`` points).

    Raises:
        TypeError, ValueError: ``matrix`` is None, empty or not square, or ``labels``
            does not have one entry per row.
    """
    if matrix is None:
        raise TypeError("matrix is None; give an (n, n) similarity matrix, e.g. pairwise_cosine(vectors)")
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"matrix must be a non-empty square (n, n) array; got shape {matrix.shape}")
    _same_length(labels, len(matrix), "labels", "rows")
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(matrix, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.15)  # as tall as the matrix
    bar = fig.colorbar(im, cax=cax)
    bar.set_label(colorbar_label, fontsize=11)
    ax.set_title(title)
    if labels is not None:
        labels = list(labels)
        starts = [i for i in range(len(labels)) if i == 0 or labels[i] != labels[i - 1]]
        for s in starts[1:]:
            ax.axhline(s - 0.5, color="white", lw=0.4)
            ax.axvline(s - 0.5, color="white", lw=0.4)
        ends = [*starts[1:], len(labels)]
        middles = [(s + e - 1) / 2 for s, e in zip(starts, ends, strict=True)]
        ax.set_yticks(middles, [labels[s] for s in starts], fontsize=label_size)
        ax.set_xticks([])
        ax.set_xlabel("the same images, in the same order as the rows", fontsize=11)
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
    """Precision and recall as functions of a threshold, the chosen threshold marked.

    Raises:
        TypeError, ValueError: an input is None or empty, or the three have different lengths.
    """
    thresholds = _sequence(thresholds, "thresholds")
    _sequence(precision, "precision")
    _sequence(recall, "recall")
    _same_length(precision, len(thresholds), "precision", "thresholds")
    _same_length(recall, len(thresholds), "recall", "thresholds")
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
