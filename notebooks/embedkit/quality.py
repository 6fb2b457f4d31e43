"""Image-quality, outlier and label checks: per file, a score and a one-line reason.

The checks a practitioner runs before training, beside duplicates and leaks:

=================  =========================================================  ==========
kind               score (what is measured)                                   fires when
=================  =========================================================  ==========
``dark``           brightness (0-255) that 95 % of pixels stay below          score <= T
``bright``         brightness (0-255) that 95 % of pixels stay above          score >= T
``blurry``         sharpness: variance of the Laplacian over the variance     score <= T
                   of brightness (a contrast-free measure of fine detail)
``low_information``entropy of the brightness histogram, in bits (0-8)         score <= T
``odd_aspect``     long side over short side                                  score >= T
``tiny``           short side, in pixels                                      score <= T
``grayscale``      colourfulness: mean of (max - min) over R, G, B (0-255)    score <= T
``outlier``        robust z-score of the cosine distance to the k-th nearest  score >= T
                   other file (median and MAD over the folder)
``label``          share of the k nearest files that carry one other label    score >= T
=================  =========================================================  ==========

Each default ``T`` (:data:`THRESHOLDS`) was chosen on planted truth and its precision and
recall measured on other photos: ``scripts/measure_quality.py`` builds both parts from
photos that ship with scikit-image, scikit-learn and matplotlib, and the README shows its
held-out table. The image measures are pure functions of arrays, computed on the picture
box-reduced to a short side of about :data:`MEASURE_SIDE` pixels (the size a network sees):
``curate`` computes them from the pixels it already decoded to hash, so no file is decoded
again for them.

A file with an image-quality issue is left out of the ``outlier`` and ``label`` checks (a
dark or flat picture is far from everything, and its neighbours say nothing about its
label) and does not vote on other files' labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

__all__ = [
    "EMBEDDING_KINDS",
    "IMAGE_KINDS",
    "KINDS",
    "MEASURE_SIDE",
    "NEIGHBOURS",
    "SPLIT_NAMES",
    "THRESHOLDS",
    "brightness",
    "check_kinds",
    "colourfulness",
    "entropy_bits",
    "folder_labels",
    "image_issues",
    "label_scores",
    "laplacian",
    "measure",
    "measure_image",
    "outlier_scores",
    "sharpness",
]

#: The checks on one picture's pixels and size.
IMAGE_KINDS = ("dark", "bright", "blurry", "low_information", "odd_aspect", "tiny", "grayscale")
#: The checks on the embeddings of the whole folder.
EMBEDDING_KINDS = ("outlier", "label")
#: Every kind, in the order the report shows them.
KINDS = IMAGE_KINDS + EMBEDDING_KINDS

#: Whether a higher score is worse (``True``) or a lower one (``False``), per kind.
HIGHER_IS_WORSE = {
    "dark": False,
    "bright": True,
    "blurry": False,
    "low_information": False,
    "odd_aspect": True,
    "tiny": False,
    "grayscale": False,
    "outlier": True,
    "label": True,
}

#: Default thresholds, chosen on the choice part of the planted folder
#: (``scripts/measure_quality.py``); the README reports them on the held-out part.
THRESHOLDS = {
    "dark": 60.0,
    "bright": 190.0,
    "blurry": 0.012,
    "low_information": 4.0,
    "odd_aspect": 2.6,
    "tiny": 96.0,
    "grayscale": 3.0,
    "outlier": 3.5,
    "label": 0.6,
}

#: Nearest neighbours the outlier and label checks look at.
NEIGHBOURS = {"outlier": 5, "label": 5}

#: The short side, in pixels, pictures are box-reduced to (by an integer factor) before measuring.
MEASURE_SIDE = 256

#: Top-level folder names that are splits, not labels (then the next folder down is the label).
SPLIT_NAMES = frozenset({"train", "test", "val", "valid", "validation", "dev", "holdout", "eval"})

_WHAT = {
    "dark": "95th-percentile brightness {s:.0f} of 255 (dark from {t:.0f} down)",
    "bright": "5th-percentile brightness {s:.0f} of 255 (over-exposed from {t:.0f} up)",
    "blurry": "sharpness {s:.4f} (blurry from {t:.4f} down: little fine detail for its contrast)",
    "low_information": "brightness entropy {s:.2f} bits (low information from {t:.2f} down)",
    "odd_aspect": "aspect ratio {s:.2f}:1 (odd from {t:.2f}:1)",
    "tiny": "short side {s:.0f} px (tiny from {t:.0f} px down)",
    "grayscale": "colourfulness {s:.1f} of 255 (grayscale from {t:.1f} down)",
}


def check_kinds(checks: str | Iterable[str] | None) -> tuple[str, ...]:
    """The kinds to run, in :data:`KINDS` order: ``None`` or ``"all"`` for every one, ``"none"``
    or ``""`` for none, else names separated by commas (or an iterable of names).

    Raises:
        ValueError: a name that is not a kind.
    """
    if checks is None:
        return KINDS
    if isinstance(checks, str):
        text = checks.strip().lower()
        if text == "all":
            return KINDS
        names = [] if text in ("", "none") else [c.strip() for c in text.split(",") if c.strip()]
    else:
        names = list(checks)
    unknown = sorted(set(names) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown check {', '.join(unknown)}; choose from all, none, {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in names)


# --------------------------------------------------------------------------- measures of one picture


def brightness(rgb: np.ndarray) -> np.ndarray:
    """``(h, w)`` float32 perceived brightness (ITU-R BT.601 weights, 0-255) of ``(h, w, 3)`` RGB."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def laplacian(gray: np.ndarray) -> np.ndarray:
    """The 4-neighbour Laplacian of a ``(h, w)`` array, edges mirrored (as ``scipy.ndimage.laplace``)."""
    g = np.pad(np.asarray(gray, dtype=np.float64), 1, mode="symmetric")
    return g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian over the variance of ``gray`` (0 for a flat picture).

    Dividing by the picture's own variance makes the measure independent of contrast and
    brightness (a dark sharp photo stays sharp); what is left is how much of the picture's
    variation is fine detail, which blur removes.
    """
    gray = np.asarray(gray, dtype=np.float64)
    spread = float(gray.var())
    if spread < 1e-6 or min(gray.shape) < 3:
        return 0.0
    return float(laplacian(gray).var() / spread)


def entropy_bits(gray: np.ndarray) -> float:
    """Shannon entropy, in bits, of the 256-bin histogram of ``gray`` (0-255): 0 for one value, 8 at most."""
    counts = np.bincount(np.clip(np.rint(np.asarray(gray).ravel()), 0, 255).astype(np.int64), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def colourfulness(rgb: np.ndarray) -> float:
    """Mean over pixels of the largest minus the smallest of R, G, B (0 for a gray picture)."""
    rgb = np.asarray(rgb)
    return float((rgb.max(axis=-1).astype(np.float32) - rgb.min(axis=-1)).mean())


def measure(rgb: np.ndarray, size: tuple[int, int] | None = None) -> dict[str, float]:
    """The image measures of ``(h, w, 3)`` RGB pixels: one score per kind of :data:`IMAGE_KINDS`.

    Args:
        rgb: the picture's pixels (0-255), at any size.
        size: the picture's full ``(width, height)`` when ``rgb`` is a reduced copy;
            ``odd_aspect`` and ``tiny`` use it. Default: ``rgb``'s own size.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected (h, w, 3) RGB pixels, got shape {rgb.shape}")
    width, height = size if size is not None else (rgb.shape[1], rgb.shape[0])
    gray = brightness(rgb)
    return {
        "dark": float(np.percentile(gray, 95)),
        "bright": float(np.percentile(gray, 5)),
        "blurry": sharpness(gray),
        "low_information": entropy_bits(gray),
        "odd_aspect": max(width, height) / max(1, min(width, height)),
        "tiny": float(min(width, height)),
        "grayscale": colourfulness(rgb),
    }


def measure_image(image: Image.Image, side: int = MEASURE_SIDE) -> dict[str, float]:
    """:func:`measure` of an RGB picture box-reduced by the largest integer factor that keeps its
    short side at least ``side`` pixels (what a network sees), with its full size for
    ``odd_aspect`` and ``tiny``."""
    factor = min(image.size) // side
    small = image.reduce(factor) if factor >= 2 else image
    return measure(np.asarray(small.convert("RGB")), image.size)


def image_issues(
    measures: dict[str, float], kinds: Sequence[str] = IMAGE_KINDS, thresholds: dict[str, float] | None = None
) -> list[tuple[str, float, str]]:
    """``(kind, score, reason)`` for each kind of ``kinds`` whose score passes its threshold."""
    limits = {**THRESHOLDS, **(thresholds or {})}
    found = []
    for kind in kinds:
        if kind not in IMAGE_KINDS:
            continue
        score, limit = measures[kind], limits[kind]
        if score >= limit if HIGHER_IS_WORSE[kind] else score <= limit:
            found.append((kind, score, _WHAT[kind].format(s=score, t=limit)))
    return found


# --------------------------------------------------------------------------- checks on embeddings


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True).clip(min=1e-12)


def _neighbours(
    unit: np.ndarray, voters: np.ndarray, k: int, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """For every row, the ``k`` most similar rows among ``voters`` (never itself), best first:
    ``(indices, similarities)``, each ``(n, k)``; computed in blocks of rows."""
    n = len(unit)
    k = min(k, max(0, len(voters) - 1)) if n else 0
    idx = np.zeros((n, k), np.int64)
    sim = np.zeros((n, k), np.float32)
    if k == 0:
        return idx, sim
    pool = unit[voters]
    for start in range(0, n, block):
        s = unit[start : start + block] @ pool.T
        own = voters[None, :] == np.arange(start, min(start + block, n))[:, None]
        s[own] = -np.inf  # a file is not its own neighbour
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        idx[start : start + block] = voters[np.take_along_axis(part, order, axis=1)]
        sim[start : start + block] = np.take_along_axis(top, order, axis=1)
    return idx, sim


def outlier_scores(
    vectors: np.ndarray, k: int = NEIGHBOURS["outlier"], voters: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Robust z-scores of each row's cosine distance to its ``k``-th nearest other row.

    ``z = (d - median(d)) / (1.4826 * MAD(d))`` over the rows (the median and MAD are what a
    normal distribution's mean and standard deviation would be, but a few far files do not
    move them). Neighbours are looked for among ``voters`` (default: every row).

    Returns:
        ``(z, d)``: ``(n,)`` float64 z-scores (``0`` where the MAD is 0) and distances.
    """
    n = len(vectors)
    voters = np.arange(n) if voters is None else np.asarray(voters, dtype=np.int64)
    _, sim = _neighbours(_unit(vectors), voters, k)
    if sim.shape[1] == 0:
        return np.zeros(n), np.zeros(n)
    d = 1.0 - sim[:, -1].astype(np.float64)
    centre = float(np.median(d[voters])) if len(voters) else 0.0
    mad = 1.4826 * float(np.median(np.abs(d[voters] - centre))) if len(voters) else 0.0
    if mad <= 1e-12:
        return np.zeros(n), d
    return (d - centre) / mad, d


def label_scores(
    vectors: np.ndarray,
    labels: Sequence[str | None],
    k: int = NEIGHBOURS["label"],
    voters: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """For each row, the share of its ``k`` nearest labelled rows that carry the most common
    label other than its own, and that label (the suggestion).

    Neighbours are looked for among ``voters`` with a label (default: every labelled row).
    A row without a label scores 0 with no suggestion; ties between other labels go to the
    nearer neighbour.
    """
    n = len(vectors)
    labelled = np.array([lab is not None for lab in labels], dtype=bool)
    pool = np.arange(n) if voters is None else np.asarray(voters, dtype=np.int64)
    pool = pool[labelled[pool]]
    idx, _ = _neighbours(_unit(vectors), pool, k)
    scores = np.zeros(n)
    suggested: list[str | None] = [None] * n
    if idx.shape[1] == 0:
        return scores, suggested
    for i in range(n):
        if not labelled[i]:
            continue
        others = [labels[j] for j in idx[i] if labels[j] != labels[i]]
        if not others:
            continue
        counts = Counter(others)
        best = max(counts.values())
        top = next(lab for lab in others if counts[lab] == best)  # nearest among the tied
        scores[i] = best / idx.shape[1]
        suggested[i] = top
    return scores, suggested


def folder_labels(paths: Sequence[str]) -> list[str | None]:
    """The label of each path (``/``-separated, relative to the folder), from its folders.

    A path's top-level folder is its label, unless that folder is a split (:data:`SPLIT_NAMES`,
    any case), when the next folder down is; a file with no such folder has no label (``None``).
    """
    out: list[str | None] = []
    for path in paths:
        parts = path.split("/")[:-1]
        if parts and parts[0].lower() in SPLIT_NAMES:
            parts = parts[1:]
        out.append(parts[0] if parts else None)
    return out
