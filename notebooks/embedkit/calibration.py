"""Measure a network's near-duplicate threshold on a person's own photos.

A cosine-similarity threshold belongs to one network: two networks put the same pair of
copies at different similarities. ``thresholds.json`` holds thresholds measured on the
bundled data for the networks that can be loaded where the course is built; for any
other network (ResNet-18 in Colab, a network of your own) :func:`calibrate_threshold`
measures one on the folder being curated, with copies whose truth is known because they
are made here:

1. **sample** up to ``sample`` photos of the folder (seeded), so the cost depends on the
   sample, not on the size of the folder;
2. **plant** one copy of each sampled photo per edit of :data:`embedkit.variants.PLANTED_EDITS`
   (re-encoded, resized, cropped, mirrored, brighter or darker, colour-shifted,
   watermarked, gray, a crop/mirror/resize mix), made in memory with
   :func:`embedkit.variants.plant_edit`;
3. **embed** the copies, and the originals unless their vectors are passed in (the folder
   was embedded anyway);
4. **guard**: drop sampled photos that are already duplicates of another sampled photo
   (see :func:`guard_duplicate_photos`), whose pairs would otherwise be counted as
   "different" although they are not;
5. **pairs**: every pair of items of one photo (original and copy, copy and copy) is a
   "same photo" pair, every pair of items of two photos a "different" pair;
6. **rule**: :func:`embedkit.evaluation.choose_threshold` on all of them gives the
   threshold, and :func:`embedkit.evaluation.cross_validate_threshold` (photos held out
   whole: choose on the others, score on them) its held-out precision and recall.

What planted copies cannot stand for: copies made some other way (a screenshot, a heavy
filter, a different shot of the same scene), and pairs of different photos that are more
alike than the sample's (a folder of near-identical product shots). The threshold is as
good as the edits are like the copies the folder really holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from .duplicates import dhash, hamming_matrix
from .evaluation import (
    COSINE_GRID,
    MAX_MERGES,
    MIN_PRECISION,
    choose_threshold,
    cross_validate_threshold,
    summarise_cross_validation,
)
from .images import MAX_ASPECT_RATIO, ImageLoadError, expand_paths, load_rgb
from .pairs import group_codes
from .similarity import near_duplicate_pairs
from .variants import PLANTED_EDITS, plant_edit

__all__ = [
    "DEFAULT_SAMPLE",
    "DHASH_GUARD_BITS",
    "EDIT_SIDE",
    "MIN_PHOTOS",
    "CalibrationError",
    "ThresholdCalibration",
    "calibrate_on_vectors",
    "calibrate_threshold",
    "guard_duplicate_photos",
]

#: Photos sampled from the folder by default: about 1,500 embeddings with the nine edits.
DEFAULT_SAMPLE = 150
#: Fewest photos (after the guard) the threshold is measured on.
MIN_PHOTOS = 8
#: Short side, in pixels, a sampled photo is brought to before it is edited.
EDIT_SIDE = 384
#: The guard's perceptual test: photos whose dHashes differ in at most this many of 64 bits.
DHASH_GUARD_BITS = 4
#: The guard's embedding test: the quantile of same-photo (original, copy) similarities
#: at or above which two sampled photos (or their copies) count as one photo already.
GUARD_QUANTILE = 0.02
#: Photos edited at a time (bounds the memory the decoded pictures take).
_CHUNK = 16


class CalibrationError(ValueError):
    """The folder cannot give a threshold: too few usable photos, or no threshold meets the rule."""


@dataclass(frozen=True)
class ThresholdCalibration:
    """A near-duplicate threshold measured on planted copies, with how it was obtained.

    Attributes:
        threshold: cosine similarity from which two images are near duplicates (the rule
            on every sampled photo).
        network: the network whose embeddings were used.
        held_out_precision_mean, held_out_precision_min: pair precision on held-out photos
            (each fold's threshold chosen without them): mean and worst fold.
        held_out_recall_mean, held_out_recall_min: the same for recall.
        in_sample_precision, in_sample_recall: ``threshold``'s scores on the pairs it was
            chosen on (optimistic; shown beside the held-out ones).
        threshold_min, threshold_max: spread of the folds' thresholds.
        folds_with_merge: fraction of folds whose held-out photos got merged with another.
        n_photos: sampled photos the threshold was measured on (after the guard).
        n_guarded: sampled photos dropped as duplicates of another sampled photo.
        n_unreadable: sampled files that could not be opened (others were drawn instead).
        n_same_pairs, n_different_pairs: pairs of each kind the rule was applied to.
        edits: the planted edits, one copy of each per photo.
        guard_similarity: the embedding guard's level (2nd percentile of original-to-copy similarities).
        folds, repeats, seed: the cross-validation and sampling settings.
        method: one sentence saying how the threshold was obtained.
    """

    threshold: float
    network: str
    held_out_precision_mean: float
    held_out_precision_min: float
    held_out_recall_mean: float
    held_out_recall_min: float
    in_sample_precision: float
    in_sample_recall: float
    threshold_min: float
    threshold_max: float
    folds_with_merge: float
    n_photos: int
    n_guarded: int
    n_unreadable: int
    n_same_pairs: int
    n_different_pairs: int
    edits: tuple[str, ...]
    guard_similarity: float
    folds: int
    repeats: int
    seed: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (floats rounded to 3 decimals, edits as a list)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, float):
                value = round(value, 3)
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out

    def __str__(self) -> str:
        return (
            f"threshold {self.threshold:.2f} for {self.network}, calibrated on {self.n_photos} "
            f"photos with {len(self.edits)} planted edits each: held-out precision "
            f"{self.held_out_precision_mean:.3f} (worst fold {self.held_out_precision_min:.3f}), "
            f"recall {self.held_out_recall_mean:.3f} (worst fold {self.held_out_recall_min:.3f})"
        )


# --------------------------------------------------------------------------- the guard


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("a vector is all zeros; its cosine similarity is undefined")
    return x / norms


def _original_rows(photo: np.ndarray, is_original: np.ndarray) -> np.ndarray:
    """Row of each photo's original, in photo-code order; exactly one per photo."""
    n_photos = int(photo.max()) + 1 if len(photo) else 0
    per_photo = np.bincount(photo[is_original], minlength=n_photos)
    if (per_photo != 1).any():
        bad = int(np.flatnonzero(per_photo != 1)[0])
        raise ValueError(f"photo {bad} has {per_photo[bad]} originals; give every photo exactly one")
    rows = np.empty(n_photos, dtype=np.int64)
    rows[photo[is_original]] = np.flatnonzero(is_original)
    return rows


def _closest_items(unit: np.ndarray, photo: np.ndarray, n_photos: int) -> np.ndarray:
    """``(p, p)``: for every two photos, the highest cosine of an item of one with an item of the other."""
    order = np.argsort(photo, kind="stable")
    items = unit[order]
    starts = np.searchsorted(photo[order], np.arange(n_photos))
    ends = np.r_[starts[1:], len(items)]
    closest = np.empty((n_photos, n_photos))
    for p in range(n_photos):  # one photo's items against all items at a time: memory linear in the items
        closest[p] = np.maximum.reduceat((items[starts[p] : ends[p]] @ items.T).max(axis=0), starts)
    return closest


def guard_duplicate_photos(
    vectors: Any,
    photo: Sequence[int],
    is_original: Sequence[bool],
    dhashes: Sequence[int] | None = None,
    *,
    quantile: float = GUARD_QUANTILE,
    dhash_bits: int = DHASH_GUARD_BITS,
) -> tuple[np.ndarray, float, list[tuple[int, int]]]:
    """Which sampled photos to keep so that no two kept ones are already duplicates.

    A folder being curated holds duplicates: that is why it is curated. Two of its photos
    that are copies of each other would enter the rule as "different" photos, and every
    pair of their items (originals and planted copies) as a "different" pair; since the
    rule merges no two photos, the most alike of those pairs would push the threshold above
    it, and the threshold would miss most copies. So two sampled photos count as one photo
    already when either

    - some item of one and some item of the other (the photos or their planted copies)
      are at least as alike as the ``quantile`` (default: the 2nd percentile) of the
      similarities between a photo and its own planted copies: the rule would have to give
      up more than that share of the copies to keep the two apart; or
    - their dHashes (where given) differ in at most ``dhash_bits`` bits: the same picture
      up to resizing or re-encoding (pixel-identical files differ in none), whatever the
      network says.

    The test looks at the same pairs the rule does (every item of one photo against every
    item of the other), so the folder's own crops, filtered versions and re-encodes are
    caught together with their copies. What it cannot tell apart: two *different* photos
    that the network finds as alike as a copy (burst shots, near-identical product shots)
    are dropped too, and the threshold is then not asked to keep them apart; ``dropped``
    names them, and the calibration counts them.

    Photos are taken in order and each is kept unless it is a duplicate of one kept before
    it, so of a set of duplicates the first stays.

    Args:
        vectors: ``(n, d)`` embeddings of every item (originals and copies).
        photo: ``(n,)`` photo number of each item, ``0 .. p-1``.
        is_original: ``(n,)`` True for each photo's original (exactly one per photo).
        dhashes: ``(p,)`` dHash of each photo's original, or ``None`` to skip that test.
        quantile: the embedding test's quantile of original-to-copy similarities.
        dhash_bits: the perceptual test's largest Hamming distance.

    Returns:
        ``(keep, level, dropped)``: ``(p,)`` bool mask of photos to keep, the similarity
        level of the embedding test, and ``(dropped photo, photo it duplicates)`` pairs.
    """
    unit = _unit(vectors)
    photo = np.asarray(photo, dtype=np.int64)
    is_original = np.asarray(is_original, dtype=bool)
    originals = _original_rows(photo, is_original)
    copies = np.flatnonzero(~is_original)
    if copies.size == 0:
        raise ValueError("no planted copies: the guard's level comes from them")
    same = np.einsum("nd,nd->n", unit[copies], unit[originals[photo[copies]]])
    level = float(np.quantile(same, quantile))
    alike = _closest_items(unit, photo, len(originals)) >= level
    if dhashes is not None:
        if len(dhashes) != len(originals):
            raise ValueError(f"{len(originals)} photos but {len(dhashes)} dHashes; give one per photo")
        alike |= hamming_matrix(list(dhashes)) <= dhash_bits
    keep = np.ones(len(originals), dtype=bool)
    dropped = []
    for p in range(len(originals)):
        earlier = np.flatnonzero(alike[p, :p] & keep[:p])
        if earlier.size:
            keep[p] = False
            dropped.append((p, int(earlier[0])))
    return keep, level, dropped


# --------------------------------------------------------------------------- the rule on vectors


def _method(n_photos: int, edits: Sequence[str], folds: int, repeats: int, min_precision: float) -> str:
    return (
        f"calibrated on this folder: {len(edits)} planted edits ({', '.join(edits)}) of each of "
        f"{n_photos} sampled photos; threshold by the package's rule "
        f"(embedkit.evaluation.choose_threshold: no two photos merged, pair precision >= "
        f"{min_precision:g}, best F1); held-out scores from {folds} folds x {repeats} repeats "
        "with photos held out whole"
    )


def calibrate_on_vectors(
    vectors: Any,
    photo: Sequence[int],
    is_original: Sequence[bool],
    *,
    dhashes: Sequence[int] | None = None,
    edits: Sequence[str] = PLANTED_EDITS,
    network: str = "unknown",
    seed: int = 0,
    folds: int = 4,
    repeats: int = 5,
    grid: Sequence[float] = COSINE_GRID,
    min_precision: float = MIN_PRECISION,
    max_merges: int = MAX_MERGES,
    n_unreadable: int = 0,
) -> ThresholdCalibration:
    """The guard, the pairs and the rule, on embeddings already made (steps 4 to 6).

    Args:
        vectors: ``(n, d)`` embeddings of every item: each photo's original and its copies.
        photo: ``(n,)`` photo number of each item, ``0 .. p-1``.
        is_original: ``(n,)`` True for each photo's original (exactly one per photo).
        dhashes: ``(p,)`` dHash of each photo's original for the guard, or ``None``.
        edits: the edits the copies were made with (recorded, not used).
        network: the network's name (recorded).
        seed: seeds the folds (and is recorded).
        folds, repeats: held-out photo folds, as :func:`~embedkit.evaluation.group_folds`.
        grid, min_precision, max_merges: the rule's settings, as
            :func:`~embedkit.evaluation.choose_threshold`.
        n_unreadable: sampled files that could not be opened (recorded).

    Returns:
        :class:`ThresholdCalibration`.

    Raises:
        CalibrationError: fewer than :data:`MIN_PHOTOS` photos after the guard, or fewer
            than ``folds``; or no grid threshold meets the rule.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    photo = np.asarray(photo, dtype=np.int64).reshape(-1)
    is_original = np.asarray(is_original, dtype=bool).reshape(-1)
    if vectors.ndim != 2 or not len(vectors) == len(photo) == len(is_original):
        raise ValueError("vectors, photo and is_original need one row / entry per item")
    keep, level, dropped = guard_duplicate_photos(vectors, photo, is_original, dhashes)
    kept_items = keep[photo]
    groups = group_codes(photo[kept_items])
    n_photos = int(keep.sum())
    if n_photos < max(MIN_PHOTOS, folds):
        raise CalibrationError(
            f"only {n_photos} usable photos ({len(dropped)} more were duplicates of others); "
            f"calibration needs at least {max(MIN_PHOTOS, folds)}"
        )
    sizes = np.bincount(groups).astype(np.int64)
    n_items = int(sizes.sum())
    n_same = int((sizes * (sizes - 1) // 2).sum())
    n_different = n_items * (n_items - 1) // 2 - n_same
    pairs, scores = near_duplicate_pairs(vectors[kept_items], threshold=float(min(grid)), precision="float32")
    rule = {"min_precision": min_precision, "max_merges": max_merges}
    try:
        chosen = choose_threshold(pairs, scores, groups, grid, **rule)
        table = cross_validate_threshold(
            pairs, scores, groups, grid, n_folds=folds, n_repeats=repeats, seed=seed, **rule
        )
    except ValueError as exc:
        raise CalibrationError(f"the planted copies give no threshold: {exc}") from None
    summary = summarise_cross_validation(table)
    return ThresholdCalibration(
        threshold=chosen.threshold,
        network=network,
        held_out_precision_mean=summary["held_out_precision_mean"],
        held_out_precision_min=summary["held_out_precision_min"],
        held_out_recall_mean=summary["held_out_recall_mean"],
        held_out_recall_min=summary["held_out_recall_min"],
        in_sample_precision=chosen.precision,
        in_sample_recall=chosen.recall,
        threshold_min=summary["threshold_min"],
        threshold_max=summary["threshold_max"],
        folds_with_merge=summary["folds_with_merge"],
        n_photos=n_photos,
        n_guarded=len(dropped),
        n_unreadable=n_unreadable,
        n_same_pairs=n_same,
        n_different_pairs=n_different,
        edits=tuple(edits),
        guard_similarity=level,
        folds=folds,
        repeats=repeats,
        seed=seed,
        method=_method(n_photos, edits, folds, repeats, min_precision),
    )


# --------------------------------------------------------------------------- from a folder


def _working_copy(path: os.PathLike | str) -> Image.Image:
    """The photo decoded (at reduced size where the format allows) with short side EDIT_SIDE."""
    picture = load_rgb(path, min_side=EDIT_SIDE, max_aspect_ratio=MAX_ASPECT_RATIO)
    short = min(picture.size)
    if short > EDIT_SIDE:
        scale = EDIT_SIDE / short
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture


def _try_working_copy(path) -> Image.Image | None:
    try:
        return _working_copy(path)
    except ImageLoadError:
        return None


def _sampled_chunks(
    files: list, sample: int, rng: np.random.Generator, pool: ThreadPoolExecutor, unreadable: list
) -> Iterable[list[tuple[int, Image.Image]]]:
    """Up to ``sample`` readable files in random order, as ``(file index, picture)`` chunks.

    A file that cannot be opened is recorded in ``unreadable`` and another one is drawn.
    """
    order = rng.permutation(len(files)).tolist()
    taken = 0
    while taken < sample and order:
        batch, order = order[: min(_CHUNK, sample - taken)], order[min(_CHUNK, sample - taken) :]
        chunk = []
        for index, picture in zip(batch, pool.map(_try_working_copy, [files[i] for i in batch]), strict=True):
            if picture is None:
                unreadable.append(files[index])
            else:
                chunk.append((index, picture))
        taken += len(chunk)
        if chunk:
            yield chunk


def _copies(picture: Image.Image, edits: Sequence[str], seed: int, number: int) -> list[Image.Image]:
    """The planted copies of sampled photo ``number``, from its own seeded stream."""
    rng = np.random.default_rng([seed, number])
    return [plant_edit(picture, kind, rng) for kind in edits]


def calibrate_threshold(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    backbone: Any = None,
    *,
    vectors: Any = None,
    sample: int = DEFAULT_SAMPLE,
    edits: Sequence[str] = PLANTED_EDITS,
    seed: int = 0,
    folds: int = 4,
    repeats: int = 5,
    embed: Callable[[list[Image.Image]], Any] | None = None,
    network: str | None = None,
    workers: int | None = None,
) -> ThresholdCalibration:
    """Measure the near-duplicate threshold of ``backbone`` on planted copies of a folder's photos.

    Args:
        paths: a folder, or the image files (as ``curate`` lists them).
        backbone: from :func:`embedkit.backbones.load_backbone`; embeds the copies unless
            ``embed`` is given.
        vectors: ``(len(paths), d)`` embeddings of ``paths`` in order, if already made
            (then originals are not embedded again); ``None`` to embed the sampled ones.
        sample: photos to sample (all of them when the folder has fewer).
        edits: the planted edits, names from :data:`embedkit.variants.PLANTED_EDITS`.
        seed: chooses the sample, the edits' parameters and the folds.
        folds, repeats: held-out photo folds for the reported precision and recall.
        embed: ``embed(pictures) -> (len(pictures), d)`` array, in place of the backbone
            (tests pass a stand-in; any embedding function works).
        network: the name to record; default ``backbone.name``.
        workers: threads that decode and edit the sampled photos (default: the CPU cores).

    Returns:
        :class:`ThresholdCalibration`; ``to_dict()`` is ready for ``findings.json``.

    Raises:
        CalibrationError: fewer than :data:`MIN_PHOTOS` usable photos, or no threshold
            meets the rule.
        ValueError: ``vectors`` does not have one row per file, or an unknown edit.
    """
    if embed is None:
        if backbone is None:
            raise ValueError("pass a backbone (from load_backbone) or an embed function")
        from .embeddings import embed_images

        def embed(pictures: list[Image.Image]) -> np.ndarray:
            return embed_images(pictures, backbone, progress=False).vectors

    if network is None:
        network = getattr(backbone, "name", "unknown")
    unknown = [kind for kind in edits if kind not in PLANTED_EDITS]
    if unknown or not edits:
        raise ValueError(f"edits must be names from {', '.join(PLANTED_EDITS)}; got {list(edits)!r}")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise ValueError(f"sample must be a whole number of photos, at least 1; got {sample!r}")
    files = expand_paths(paths)
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(files):
            raise ValueError(f"vectors must have one row per file ({len(files)}); got shape {vectors.shape}")

    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    hashes: list[int] = []
    unreadable: list = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for chunk in _sampled_chunks(files, sample, rng, pool, unreadable):
            first = len(hashes)
            pictures = [picture for _, picture in chunk]
            copies = list(
                pool.map(
                    _copies,
                    pictures,
                    [edits] * len(chunk),
                    [seed] * len(chunk),
                    range(first, first + len(chunk)),
                )
            )
            hashes.extend(pool.map(dhash, pictures))
            to_embed = [copy for made in copies for copy in made]
            if vectors is None:
                to_embed = pictures + to_embed
            found = np.asarray(embed(to_embed), dtype=np.float32)
            if found.ndim != 2 or found.shape[0] != len(to_embed):
                raise ValueError(f"embed returned {found.shape[0]} rows for {len(to_embed)} pictures")
            if vectors is None:
                originals, found = found[: len(chunk)], found[len(chunk) :]
            else:
                originals = vectors[[index for index, _ in chunk]]
            for k in range(len(chunk)):
                rows += [originals[k : k + 1], found[k * len(edits) : (k + 1) * len(edits)]]
    n_photos = len(hashes)
    photo = np.repeat(np.arange(n_photos), 1 + len(edits))
    is_original = np.tile([True] + [False] * len(edits), n_photos)
    n_unreadable = len(unreadable)
    if n_photos < MIN_PHOTOS:
        raise CalibrationError(
            f"only {n_photos} readable photos in the sample ({n_unreadable} unreadable); "
            f"calibration needs at least {MIN_PHOTOS}"
        )
    return calibrate_on_vectors(
        np.concatenate(rows),
        photo,
        is_original,
        dhashes=hashes,
        edits=edits,
        network=network,
        seed=seed,
        folds=folds,
        repeats=repeats,
        n_unreadable=n_unreadable,
    )
