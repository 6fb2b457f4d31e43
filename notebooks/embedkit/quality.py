"""Image-quality, outlier and label checks: per file, a score and a one-line reason.

The checks a practitioner runs before training, beside duplicates and leaks:

=================  ==========================================================  ==========
kind               score (what is measured)                                    fires when
=================  ==========================================================  ==========
``dark``           brightness (0-255) that 99 % of pixels stay below           score <= T
``bright``         mean brightness (0-255)                                     score >= T
``low_information````contrast``: standard deviation of brightness (0-255)      score <= T
``blurry``         variance of the Laplacian of brightness (fine detail)       score <= T
``odd_aspect``     long side over short side                                   score >= T
``tiny``           square root of the pixel count (the side of a square of     score <= T
                   as many pixels)
``grayscale``      mean saturation, (max - min) / max over R, G, B (0-1)       score <= T
``outlier``        robust z-score of the cosine distance to the centre of the  score >= T
                   file's class folder (the whole folder when the folders are
                   not class folders); the centre is the mean of the others
``label``          share of the k nearest files that carry one other label     score >= T
                   (only when the folders look like class folders)
=================  ==========================================================  ==========

A more basic problem explains a later one, which is then not reported
(:data:`EXPLAINED_BY`): a dark or over-exposed picture has little contrast, and a dark,
over-exposed or flat one little fine detail; a flat one has no colour to speak of.

Each default ``T`` (:data:`THRESHOLDS`) was chosen on planted truth and its precision and
recall measured on other photos: ``scripts/measure_quality.py`` builds both parts from
photos that ship with scikit-image, scikit-learn and matplotlib (for the outlier check:
class folders of one kind of picture with screenshots, document scans, charts and photos
of another kind planted in them), and the README shows its held-out tables. The
image measures are pure functions of arrays, computed on the picture resized to a short side
of :data:`MEASURE_SIDE` pixels (the size a network sees; a smaller picture is measured as it
is, never enlarged): ``curate`` computes them from the pixels it already decoded to hash, so
no file is decoded again for them.

A file whose picture hides its content (:data:`HIDES_CONTENT`: dark, over-exposed, flat,
blurry or tiny) shapes no class centre and is nobody's neighbour in the ``label`` check,
which leaves it out (its neighbours say nothing about its label). It is still scored as an
``outlier``, but not reported as one where a dark, flat, blurry or tiny picture explains its
distance (:data:`EXPLAINED_BY`); an over-exposed one can be both, since a screenshot or a
scanned page is as bright as an over-exposed photo. A grayscale or oddly shaped file is
checked like any other.

Folders are labels only when they look like class folders (:func:`class_folder_labels`):
``2019/``, ``2020/`` or one ``vacation/`` folder say when or where, not what, and a label
check on them would mean nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

__all__ = [
    "EMBEDDING_KINDS",
    "EXPLAINED_BY",
    "HIDES_CONTENT",
    "IMAGE_KINDS",
    "KINDS",
    "LABEL_RULES",
    "MEASURE_SIDE",
    "NEIGHBOURS",
    "OUTLIER_MIN_FILES",
    "SPLIT_NAMES",
    "THRESHOLDS",
    "brightness",
    "check_kinds",
    "class_folder_labels",
    "saturation",
    "contrast",
    "detail",
    "folder_labels",
    "looks_like_a_date",
    "image_issues",
    "label_scores",
    "laplacian",
    "measure",
    "measure_image",
    "outlier_scores",
]

#: The checks on one picture's pixels and size.
IMAGE_KINDS = ("dark", "bright", "low_information", "blurry", "odd_aspect", "tiny", "grayscale")
#: The checks on the embeddings of the whole folder.
EMBEDDING_KINDS = ("outlier", "label")
#: Image kinds that leave a file out of the outlier and label checks.
HIDES_CONTENT = ("dark", "bright", "low_information", "blurry", "tiny")
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

#: Default thresholds, chosen on the choice part of the planted folders
#: (``scripts/measure_quality.py``, EfficientNet-Lite0); the README reports them on the
#: held-out parts under both offline networks.
THRESHOLDS = {
    "dark": 63.3,
    "bright": 221.0,
    "low_information": 5.80,
    "blurry": 5.92,
    "odd_aspect": 3.30,
    "tiny": 63.9,
    "grayscale": 0.0164,
    "outlier": 9.6,
    "label": 1.0,
}

#: Nearest neighbours the label check looks at.
NEIGHBOURS = {"label": 3}

#: Fewest files without an image issue a class needs before its files are scored as outliers.
OUTLIER_MIN_FILES = 5

#: The short side, in pixels, larger pictures are resized to before they are measured.
MEASURE_SIDE = 224

#: Kinds not reported for a file when one of the kinds listed fires for it (the cause shown once).
EXPLAINED_BY = {
    "low_information": ("dark", "bright"),
    "blurry": ("dark", "bright", "low_information"),
    "grayscale": ("low_information",),
    "outlier": ("dark", "low_information", "blurry", "tiny"),
}

#: Top-level folder names that are splits, not labels (then the next folder down is the label).
SPLIT_NAMES = frozenset({"train", "test", "val", "valid", "validation", "dev", "holdout", "eval"})

#: How ``curate`` decides which folders are labels (``labels=``): ``"auto"`` only folders that
#: look like class folders (:func:`class_folder_labels`), ``"folders"`` every folder
#: (:func:`folder_labels`), ``"none"`` no labels.
LABEL_RULES = ("auto", "folders", "none")

_WHAT = {
    "dark": "99 % of pixels darker than {s:.0f} of 255 (dark from {t:.0f} down)",
    "bright": "mean brightness {s:.0f} of 255 (over-exposed from {t:.0f} up)",
    "low_information": "contrast {s:.1f} of 255 (low information from {t:.1f} down)",
    "blurry": "fine detail {s:.1f} (blurry from {t:.1f} down: variance of the Laplacian at 224 px)",
    "odd_aspect": "aspect ratio {s:.2f}:1 (odd from {t:.2f}:1)",
    "tiny": "{s:.0f} px on the side of a square of as many pixels (tiny from {t:.0f} down)",
    "grayscale": "saturation {s:.3f} (grayscale from {t:.3f} down)",
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


def detail(gray: np.ndarray) -> float:
    """Variance of the Laplacian of ``gray`` (0 for a flat picture or one under 3 pixels a side).

    Blur removes fine detail, which is what the Laplacian responds to; the value depends on
    the picture's scale, so :func:`measure_image` measures every picture at the same size.
    """
    gray = np.asarray(gray, dtype=np.float64)
    if min(gray.shape) < 3:
        return 0.0
    return float(laplacian(gray).var())


def contrast(gray: np.ndarray) -> float:
    """Standard deviation of ``gray`` (0-255): 0 for a flat picture."""
    return float(np.asarray(gray, dtype=np.float64).std())


def saturation(rgb: np.ndarray, floor: float = 16.0) -> float:
    """Mean over pixels of ``(max - min) / max`` of R, G, B (the HSV saturation), 0 for a gray
    picture; near-black pixels are divided by ``floor`` instead, so their noise does not count.
    Darkening a picture keeps its saturation."""
    rgb = np.asarray(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]  # channel by channel: max(axis=-1) is ~10x slower
    top = np.maximum(np.maximum(r, g), b)
    spread = (top - np.minimum(np.minimum(r, g), b)).astype(np.float32)  # no negative values, any dtype
    return float((spread / np.maximum(top.astype(np.float32), floor)).mean())


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
        "dark": float(np.percentile(gray, 99, method="linear")),
        "bright": float(gray.mean()),
        "blurry": detail(gray),
        "low_information": contrast(gray),
        "odd_aspect": max(width, height) / max(1, min(width, height)),
        "tiny": float(np.sqrt(width * height)),
        "grayscale": saturation(rgb),
    }


def measure_image(image: Image.Image, side: int = MEASURE_SIDE) -> dict[str, float]:
    """:func:`measure` of an RGB picture resized to a short side of ``side`` pixels when it is
    larger (never enlarged), with its full size for ``odd_aspect`` and ``tiny``."""
    w, h = image.size
    scale = side / min(w, h)
    small = image
    if scale < 1:
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = image.resize(new, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return measure(np.asarray(small.convert("RGB")), image.size)


def image_issues(
    measures: dict[str, float], kinds: Sequence[str] = IMAGE_KINDS, thresholds: dict[str, float] | None = None
) -> list[tuple[str, float, str]]:
    """``(kind, score, reason)`` for each kind of ``kinds`` whose score passes its threshold."""
    limits = {**THRESHOLDS, **(thresholds or {})}
    fired = {}
    for kind in IMAGE_KINDS:  # in this order, so a cause is known before what it explains
        if kind not in kinds:
            continue
        score, limit = measures[kind], limits[kind]
        if score >= limit if HIGHER_IS_WORSE[kind] else score <= limit:
            if not any(cause in fired for cause in EXPLAINED_BY.get(kind, ())):
                fired[kind] = (kind, score, _WHAT[kind].format(s=score, t=limit))
    return list(fired.values())


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
    vectors: np.ndarray,
    classes: Sequence[str | None] | None = None,
    voters: np.ndarray | None = None,
    min_files: int = OUTLIER_MIN_FILES,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust z-scores of each row's cosine distance to the centre of its class.

    A row's class is its entry of ``classes`` (default: one class for every row; a ``None``
    entry is in no class and not scored). The centre is the mean of the unit vectors of the
    class's ``voters`` (default: every row), without the row itself, so a row does not pull
    its own centre. With ``d`` a row's distance to that centre:
    ``z = (d - median of d over the class's voters) / (1.4826 * MAD)``, where the MAD is the
    median absolute deviation from their class's median, pooled over every class's voters
    (what a normal distribution's standard deviation would be; a few far files move neither).
    Copies of a picture only weigh its class's centre, so a photo that has none is not far
    for that alone.

    Returns:
        ``(z, d)``: ``(n,)`` float64 z-scores and distances; ``nan`` for a row in no class or
        in a class with fewer than ``min_files`` voters, and ``z = 0`` where the MAD is 0.
    """
    unit = _unit(vectors).astype(np.float64)
    n = len(unit)
    voting = np.zeros(n, dtype=bool)
    voting[np.arange(n) if voters is None else np.asarray(voters, dtype=np.int64)] = True
    names = ["" for _ in range(n)] if classes is None else list(classes)
    d = np.full(n, np.nan)
    deviation = np.full(n, np.nan)
    for name in sorted({c for c in names if c is not None}):
        members = np.flatnonzero([c == name for c in names])
        pool = members[voting[members]]
        if len(pool) < min_files:
            continue
        total = unit[pool].sum(axis=0)
        centres = total[None, :] - unit[members] * voting[members, None]  # each without itself
        centres /= np.linalg.norm(centres, axis=1, keepdims=True).clip(min=1e-12)
        d[members] = 1.0 - np.einsum("ij,ij->i", unit[members], centres)
        deviation[members] = d[members] - np.median(d[pool])
    scored = voting & ~np.isnan(d)
    mad = 1.4826 * float(np.median(np.abs(deviation[scored]))) if scored.any() else 0.0
    if mad <= 1e-12:
        return np.where(np.isnan(d), np.nan, 0.0), d
    return deviation / mad, d


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


_DATE = re.compile(r"(?<!\d)(19|20)\d\d(?!\d)|^[\d\W_]+$")


def looks_like_a_date(name: str) -> bool:
    """Whether a folder name holds a year (1900-2099) or only digits and separators
    (``2019``, ``2019-07``, ``holiday 2023``, ``001``): a folder of when, not of what."""
    return bool(_DATE.search(name.strip()))


def class_folder_labels(
    paths: Sequence[str], k: int = NEIGHBOURS["label"], rule: str = "auto"
) -> tuple[list[str | None], bool, str]:
    """The labels of ``paths`` when their folders look like class folders, whether they do,
    and why (one sentence).

    ``rule="auto"``: the folders :func:`folder_labels` reads are class folders when there are
    at least two, each holds at least ``k + 1`` files directly (a file and its ``k`` neighbours
    can share a label), none holds a deeper folder, and no name looks like a date
    (:func:`looks_like_a_date`); otherwise no file has a label. ``rule="folders"``: every such
    folder is a label (:func:`folder_labels`); ``rule="none"``: no labels.

    Raises:
        ValueError: ``rule`` is not one of :data:`LABEL_RULES`.
    """
    if rule not in LABEL_RULES:
        raise ValueError(f"unknown label rule {rule!r}; choose from {', '.join(LABEL_RULES)}")
    n = len(paths)
    if rule == "none":
        return [None] * n, False, "no labels asked for (--labels none)"
    labels = folder_labels(paths)
    if rule == "folders":
        named = sorted({lab for lab in labels if lab is not None})
        why = f"every folder is a label, as asked (--labels folders): {len(named)} labels"
        return labels, len(named) >= 2, why
    counts = Counter(lab for lab in labels if lab is not None)
    deeper = set()
    for path, lab in zip(paths, labels, strict=True):
        if lab is not None:
            parts = path.split("/")[:-1]
            if parts[0].lower() in SPLIT_NAMES:
                parts = parts[1:]
            if len(parts) > 1:
                deeper.add(lab)
    dated = sorted(lab for lab in counts if looks_like_a_date(lab))
    small = sorted(lab for lab, c in counts.items() if c < k + 1)
    if len(counts) < 2:
        why = f"{len(counts)} top-level folder{'' if len(counts) == 1 else 's'} (class folders: at least 2)"
    elif dated:
        why = f"folder names that look like dates, not classes: {', '.join(map(repr, dated[:3]))}"
    elif deeper:
        why = f"folders with folders inside, not class folders: {', '.join(map(repr, sorted(deeper)[:3]))}"
    elif small:
        why = f"folders with fewer than {k + 1} files: {', '.join(map(repr, small[:3]))}"
    else:
        return (
            labels,
            True,
            (
                f"{len(counts)} class folders, each with at least {k + 1} files directly inside "
                "and no folder inside"
            ),
        )
    return [None] * n, False, f"the folders do not look like class folders: {why}"
