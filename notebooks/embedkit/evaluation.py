"""Score a duplicate finder against ground truth, and choose its threshold with a rule.

Any method (file hashes, pixel hashes, dhash, embeddings) ends in a list of item
pairs it calls duplicates. With the dataset's known duplicate groups,

- :func:`score_pairs` counts true positives, false positives and false negatives
  over unordered pairs and returns :class:`Scores`;
- :func:`true_pairs_from_groups` turns group labels into the set of true pairs;
- :func:`scores_by_kind` breaks recall and precision down by how each copy was
  made (resized, cropped, flipped, ...), the table that shows what a method misses.

The course's threshold rule lives here too, for any score (cosine similarity, where
higher is more similar, or a Hamming distance, where lower is):

- :func:`threshold_curve` scores every threshold of a grid, for pairs (precision,
  recall, F1) *and* for the groups the pairs chain into (merges, adjusted Rand index);
- :func:`choose_threshold` applies the rule: among thresholds whose found groups merge
  no two true groups and whose pair precision reaches a floor, the best F1;
- :func:`group_folds` and :func:`cross_validate_threshold` choose the threshold on some
  photo groups and score it on the others, repeatedly, so the spread shows too;
- :func:`summarise_cross_validation` turns the per-fold table into the few numbers a
  lesson prints and ``thresholds.json`` stores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .pairs import as_pairs, connected_groups, group_codes, pairs_from_labels, unordered_pairs

__all__ = [
    "COSINE_GRID",
    "MIN_PRECISION",
    "MAX_MERGES",
    "Scores",
    "ThresholdChoice",
    "choose_threshold",
    "cross_validate_threshold",
    "f_beta_by_threshold",
    "group_folds",
    "score_pairs",
    "scores_by_kind",
    "summarise_cross_validation",
    "threshold_curve",
    "true_pairs_from_groups",
]

#: The grid of cosine-similarity thresholds the course searches: 0.30 to 1.00 in steps of 0.01.
COSINE_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.30, 1.0001, 0.01), 2).tolist())
#: The rule's precision floor: at most one found pair in twenty may be false.
MIN_PRECISION = 0.95
#: The rule's grouping criterion: found groups may join this many pairs of true groups (none).
MAX_MERGES = 0


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 of predicted pairs, with the counts behind them.

    ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
    ``f1 = 2·tp / (2·tp + fp + fn)``. Where a denominator is 0 (nothing predicted,
    nothing to find, or both for F1) the value is the ``zero_division`` given to
    :func:`score_pairs`, exactly as scikit-learn's ``precision_score``,
    ``recall_score`` and ``f1_score`` (version 1.4 and later) do.
    """

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.3f}  recall {self.recall:.3f}  f1 {self.f1:.3f}  "
            f"(tp {self.tp}, fp {self.fp}, fn {self.fn})"
        )


def _pair_keys(pairs: np.ndarray, base: int) -> np.ndarray:
    return pairs[:, 0] * base + pairs[:, 1]


def _ratio(num: int, den: int, zero_division: float) -> float:
    return num / den if den else float(zero_division)


def score_pairs(predicted_pairs: Any, true_pairs: Any, zero_division: float = 0.0) -> Scores:
    """Compare predicted duplicate pairs with the true ones.

    Args:
        predicted_pairs: ``(m, 2)`` item indices (array, list of pairs or set of
            tuples). Pairs are unordered, ``(3, 1)`` is ``(1, 3)``, and repeats
            count once.
        true_pairs: the true duplicate pairs, in the same form (for example
            :func:`true_pairs_from_groups`).
        zero_division: value for a ratio whose denominator is 0, as scikit-learn's
            ``zero_division``: ``0.0`` (its default, without the warning), ``1.0``,
            or ``float("nan")`` to mark "undefined".

    Returns:
        :class:`Scores` with precision, recall, f1 and the tp / fp / fn counts.
    """
    pred = unordered_pairs(predicted_pairs, name="predicted_pairs")
    true = unordered_pairs(true_pairs, name="true_pairs")
    base = int(max(pred.max(initial=0), true.max(initial=0))) + 1
    tp = int(np.isin(_pair_keys(pred, base), _pair_keys(true, base)).sum())
    fp, fn = len(pred) - tp, len(true) - tp
    return Scores(
        precision=_ratio(tp, tp + fp, zero_division),
        recall=_ratio(tp, tp + fn, zero_division),
        f1=_ratio(2 * tp, 2 * tp + fp + fn, zero_division),
        tp=tp,
        fp=fp,
        fn=fn,
    )


def true_pairs_from_groups(groups: Sequence[Any]) -> set[tuple[int, int]]:
    """All unordered pairs ``(i, j)``, ``i < j``, of items that share a group label.

    Args:
        groups: ``(n,)`` group label per item (ints, strings, ...); ``None`` or
            ``NaN`` means "no group" (the item pairs with nothing).
    """
    return set(map(tuple, pairs_from_labels(groups).tolist()))


def scores_by_kind(
    predicted_pairs: Any,
    groups: Sequence[Any],
    kinds: Sequence[str],
    reference_kind: str = "original",
) -> pd.DataFrame:
    """Recall and precision per kind of copy, plus an ``all`` row.

    Ground truth: every item whose kind is not ``reference_kind`` is a positive pair
    with the reference item (the original) of its group. A predicted pair is correct
    when both items share a group, so a resized copy paired with a cropped copy of
    the same photo is correct too (it only counts towards precision, not recall).

    Args:
        predicted_pairs: ``(m, 2)`` item indices, unordered, repeats counted once.
        groups: ``(n,)`` group label per item; ``None``/``NaN`` means "no group".
            A group with more than one item must hold exactly one item of
            ``reference_kind``.
        kinds: ``(n,)`` kind per item ("original", "resized", "flipped", ...).
        reference_kind: the kind of the item every copy is compared with.

    Returns:
        DataFrame indexed by kind (in order of first appearance, then ``all``) with
        columns

        - ``positives``: (item of this kind, its original) pairs to find;
        - ``found``: how many of them were predicted;
        - ``recall``: ``found / positives`` (NaN when there are no positives, as
          for the reference kind itself);
        - ``predicted``: predicted pairs with at least one item of this kind;
        - ``precision``: the fraction of those that are correct (NaN when none
          was predicted).

        The ``all`` row has recall over all positives and precision over all
        predicted pairs. NaN here means "nothing to measure", unlike
        :func:`score_pairs`, which follows scikit-learn's ``zero_division``.
    """
    codes = group_codes(groups)
    kind_codes, kind_names, is_ref = _kind_codes(kinds, len(codes), reference_kind)
    positives = _copy_original_pairs(codes, is_ref, reference_kind)
    pred = unordered_pairs(predicted_pairs, len(codes), "predicted_pairs")
    found = np.isin(_pair_keys(positives, len(codes)), _pair_keys(pred, len(codes)))
    correct = codes[pred[:, 0]] == codes[pred[:, 1]]

    n_kinds = len(kind_names)
    copy_kinds = kind_codes[positives[:, 0] + positives[:, 1] - _original_of(positives, is_ref)]
    table = pd.DataFrame(
        {
            "positives": np.append(np.bincount(copy_kinds, minlength=n_kinds), len(positives)),
            "found": np.append(
                np.bincount(copy_kinds, weights=found, minlength=n_kinds).astype(np.int64), int(found.sum())
            ),
            "predicted": np.append(_count_per_kind(pred, kind_codes, np.ones(len(pred)), n_kinds), len(pred)),
            "correct": np.append(_count_per_kind(pred, kind_codes, correct, n_kinds), int(correct.sum())),
        },
        index=pd.Index([*map(str, kind_names), "all"], name="kind"),
    )
    table["recall"] = _nan_ratio(table["found"].to_numpy(), table["positives"].to_numpy())
    table["precision"] = _nan_ratio(table["correct"].to_numpy(), table["predicted"].to_numpy())
    return table[["positives", "found", "recall", "predicted", "precision"]]


def _kind_codes(kinds: Sequence[str], n: int, reference_kind: str) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """``(codes, names, is_reference)`` of the per-item kinds, checked."""
    kind_arr = np.asarray(list(kinds), dtype=object)
    if len(kind_arr) != n:
        raise ValueError(f"groups has {n} items but kinds has {len(kind_arr)}; pass one of each per item")
    if pd.isna(pd.Series(kind_arr, dtype=object)).any():
        raise ValueError("kinds has a missing value; give every item a kind")
    kind_codes, kind_names = pd.factorize(pd.Series(kind_arr, dtype=object))
    if "all" in set(kind_names):
        raise ValueError("a kind is named 'all', which is reserved for the summary row; rename it")
    return kind_codes, kind_names, kind_arr == reference_kind


def _copy_original_pairs(codes: np.ndarray, is_ref: np.ndarray, reference_kind: str) -> np.ndarray:
    """``(p, 2)`` sorted pairs: every item of a group of two or more, with its group's original."""
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(codes, minlength=n_groups)
    refs_per_group = np.bincount(codes[is_ref], minlength=n_groups)
    bad = np.flatnonzero((sizes > 1) & (refs_per_group != 1))
    if bad.size:
        members = np.flatnonzero(codes == bad[0]).tolist()
        raise ValueError(
            f"the group of items {members} has {refs_per_group[bad[0]]} items of kind "
            f"{reference_kind!r}; every group of two or more needs exactly one (its original)"
        )
    ref_of_group = np.full(n_groups, -1, dtype=np.int64)
    ref_of_group[codes[is_ref]] = np.flatnonzero(is_ref)
    copies = np.flatnonzero(~is_ref & (sizes[codes] > 1))
    return np.sort(np.stack([copies, ref_of_group[codes[copies]]], axis=1), axis=1).reshape(-1, 2)


def _original_of(pairs: np.ndarray, is_ref: np.ndarray) -> np.ndarray:
    """The reference item of each (copy, original) pair, whichever column it sits in."""
    return np.where(is_ref[pairs[:, 0]], pairs[:, 0], pairs[:, 1])


def _count_per_kind(pred: np.ndarray, kind_codes: np.ndarray, weights: Any, n_kinds: int) -> np.ndarray:
    """Sum of ``weights`` over pairs, once for each distinct kind among a pair's two items."""
    weights = np.asarray(weights, dtype=np.float64)
    ka, kb = kind_codes[pred[:, 0]], kind_codes[pred[:, 1]]
    other = ka != kb
    return (
        np.bincount(ka, weights=weights, minlength=n_kinds)
        + np.bincount(kb[other], weights=weights[other], minlength=n_kinds)
    ).astype(np.int64)


def _nan_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


# --------------------------------------------------------------------------- the threshold rule
#
# A finder calls a pair a duplicate when its score passes a threshold t: ``score >= t``
# for similarities (higher is more similar), ``score <= t`` for distances (lower is).
# Internally every score is turned into a "similarity key" (the score, or minus the
# distance), so one code path serves both.


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold the rule chose, its scores on the data it was chosen on, and the rule.

    Attributes:
        threshold: the chosen grid value.
        precision, recall, f1: pair scores at ``threshold`` (on the data it was chosen on:
            in-sample, so optimistic; see :func:`cross_validate_threshold`).
        merges: found groups (connected components of the found pairs) that join items
            of two or more true groups.
        ari: adjusted Rand index of the found groups against the true ones.
        higher_is_similar, min_precision, max_merges: the rule that chose it.
        curve: :func:`threshold_curve` over the whole grid, for plots and tables.
    """

    threshold: float
    precision: float
    recall: float
    f1: float
    merges: int
    ari: float
    higher_is_similar: bool
    min_precision: float
    max_merges: int
    curve: pd.DataFrame

    def __str__(self) -> str:
        side = ">=" if self.higher_is_similar else "<="
        return (
            f"threshold {side} {self.threshold:g}: precision {self.precision:.3f}, recall "
            f"{self.recall:.3f}, F1 {self.f1:.3f}, {self.merges} merged groups, ARI {self.ari:.3f}"
        )


def _similarity_key(values: Any, higher_is_similar: bool, name: str) -> np.ndarray:
    """``values`` as float64, negated for distances, so "found" is always ``key >= t_key``."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values; every value must be a finite number")
    return arr if higher_is_similar else -arr


def _as_grid(grid: Any) -> np.ndarray:
    arr = np.asarray(list(grid) if not isinstance(grid, np.ndarray) else grid, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("grid must be a non-empty 1-D list of thresholds, e.g. COSINE_GRID")
    if len(np.unique(arr)) != arr.size:
        raise ValueError("grid has repeated thresholds; give each threshold once")
    return arr


def _scored_mask(scored_items: Any, n: int) -> np.ndarray:
    if scored_items is None:
        return np.ones(n, dtype=bool)
    mask = np.asarray(scored_items, dtype=bool).reshape(-1)
    if mask.shape != (n,):
        raise ValueError(f"scored_items must be one True/False per item ({n}), got {mask.shape[0]}")
    return mask


def _true_pair_count(codes: np.ndarray, scored: np.ndarray) -> int:
    """Pairs of items sharing a true group, with at least one scored item."""
    sizes = np.bincount(codes).astype(np.int64)
    unscored = np.bincount(codes[~scored], minlength=len(sizes)).astype(np.int64)
    return int((sizes * (sizes - 1) // 2 - unscored * (unscored - 1) // 2).sum())


def _pair_counts(key: np.ndarray, is_true: np.ndarray, grid_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(found, tp)`` per grid threshold: pairs with ``key >= t``, and how many are true."""
    order = np.argsort(-key, kind="stable")
    descending = key[order]
    tp_cumulative = np.concatenate([[0], np.cumsum(is_true[order])])
    found = np.searchsorted(-descending, -grid_key, side="right")
    return found, tp_cumulative[found]


def _grouping_scores(found: np.ndarray, codes: np.ndarray, scored: np.ndarray) -> tuple[int, float]:
    """Merged groups and adjusted Rand index of found groups ``found`` (a label per item).

    A merge is a found group (connected component of the found pairs) that holds items of
    two or more true groups: with chaining, one false pair is enough to make one. The
    adjusted Rand index compares found and true groups over the scored items only.
    """
    combos = np.unique(np.stack([found, codes], axis=1), axis=0)
    merges = int((np.bincount(combos[:, 0]) > 1).sum())
    return merges, _adjusted_rand_index(codes[scored], found[scored])


def _groupings(
    n: int, ranked_pairs: np.ndarray, counts: np.ndarray, codes: np.ndarray, scored: np.ndarray
) -> dict[int, tuple[int, float]]:
    """:func:`_grouping_scores` of the groups the first ``c`` ranked pairs chain into, per count ``c``.

    Counts are taken in increasing order and each step joins only the pairs it adds to the
    groups found so far (components of components are components), so every pair is
    looked at once however many thresholds the grid has.
    """
    found = np.arange(n, dtype=np.int64)
    done = 0
    out = {}
    for count in np.unique(counts):
        new = ranked_pairs[done:count]
        if len(new):
            found = connected_groups(int(found.max()) + 1, found[new])[found]
        done = int(count)
        out[int(count)] = _grouping_scores(found, codes, scored)
    return out


def _together(counts: np.ndarray) -> float:
    """Pairs of items that share a cell, for cell sizes ``counts``."""
    counts = counts.astype(np.float64)
    return float((counts * (counts - 1) / 2).sum())


def _adjusted_rand_index(true: np.ndarray, found: np.ndarray) -> float:
    """scikit-learn's ``adjusted_rand_score`` from pair counts, without its per-call checks.

    The rule evaluates it for every threshold of every fold, where the checks cost more
    than the arithmetic; the tests compare it with scikit-learn's.
    """
    n = len(true)
    if n < 2:
        return 1.0
    _, cells = np.unique(np.stack([true, found], axis=1), axis=0, return_counts=True)
    both = _together(cells)
    together_true = _together(np.unique(true, return_counts=True)[1])
    together_found = _together(np.unique(found, return_counts=True)[1])
    tp, fn, fp = both, together_true - both, together_found - both
    tn = n * (n - 1) / 2 - tp - fn - fp
    if fn == 0 and fp == 0:
        return 1.0
    return float(2 * (tn * tp - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)))


def threshold_curve(
    pairs: Any,
    scores: Any,
    groups: Sequence[Any],
    grid: Sequence[float],
    *,
    higher_is_similar: bool = True,
    scored_items: Any = None,
) -> pd.DataFrame:
    """Pair and grouping scores of every threshold on ``grid``.

    Args:
        pairs: ``(m, 2)`` candidate pairs of item indices, each pair once (for example
            ``near_duplicate_pairs(X, threshold=min(grid))``, or every pair). A true pair
            missing from ``pairs`` counts as missed at every threshold.
        scores: ``(m,)`` score of each pair.
        groups: ``(n,)`` true group label per item (the manifest's ``group``);
            ``None``/``NaN`` makes an item a group of its own.
        grid: thresholds to score, in any order (the table keeps it).
        higher_is_similar: ``True`` for similarities (a pair is found when
            ``score >= t``), ``False`` for distances such as dHash's Hamming distance
            (found when ``score <= t``).
        scored_items: ``(n,)`` bool, the items being evaluated (``None``: all). Only
            pairs with at least one scored item count, and the true pairs to find are
            those with at least one scored item. :func:`cross_validate_threshold` uses
            it to score held-out groups.

    Returns:
        DataFrame indexed by ``threshold`` with columns ``found`` (pairs found), ``tp``,
        ``fp``, ``fn``, ``precision`` (NaN when nothing is found), ``recall`` (NaN when
        there is nothing to find), ``f1`` (NaN when both), ``merges`` (found groups that
        join two or more true groups) and ``ari`` (adjusted Rand index of the found
        groups against the true ones, over the scored items).
    """
    codes = group_codes(groups)
    n = len(codes)
    p = as_pairs(pairs, n, "pairs")
    key = _similarity_key(scores, higher_is_similar, "scores")
    if len(key) != len(p):
        raise ValueError(f"{len(p)} pairs but {len(key)} scores; pass one score per pair")
    scored = _scored_mask(scored_items, n)
    keep = scored[p[:, 0]] | scored[p[:, 1]]
    p, key = p[keep], key[keep]
    thresholds = _as_grid(grid)
    grid_key = thresholds if higher_is_similar else -thresholds

    found, tp = _pair_counts(key, codes[p[:, 0]] == codes[p[:, 1]], grid_key)
    n_true = _true_pair_count(codes, scored)
    # thresholds that find the same pairs share one grouping
    grouping = _groupings(n, p[np.argsort(-key, kind="stable")], found, codes, scored)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "found": found,
                "tp": tp,
                "fp": found - tp,
                "fn": n_true - tp,
                "precision": np.where(found > 0, tp / np.maximum(found, 1), np.nan),
                "recall": np.where(n_true > 0, tp / max(n_true, 1), np.nan),
                "f1": np.where(found + n_true > 0, 2 * tp / np.maximum(found + n_true, 1), np.nan),
                "merges": [grouping[int(c)][0] for c in found],
                "ari": [grouping[int(c)][1] for c in found],
            },
            index=pd.Index(thresholds, name="threshold"),
        )
    return table


def _pick_threshold(
    curve: pd.DataFrame, higher_is_similar: bool, min_precision: float, max_merges: int
) -> float:
    """The rule on a curve: eligible thresholds, best F1 among them, the middle of ties."""
    precise = (curve["precision"] >= min_precision) | (curve["found"] == 0)
    eligible = precise & (curve["merges"] <= max_merges)
    if not eligible.any():
        raise ValueError(
            f"no threshold on the grid keeps pair precision >= {min_precision} with at most "
            f"{max_merges} merged groups; extend the grid towards stricter thresholds"
        )
    f1 = curve["f1"].fillna(0.0)[eligible]
    tied = np.sort(f1.index[f1 == f1.max()].to_numpy())
    lenient_to_strict = tied if higher_is_similar else tied[::-1]
    return float(lenient_to_strict[len(lenient_to_strict) // 2])


def choose_threshold(
    pairs: Any,
    scores: Any,
    groups: Sequence[Any],
    grid: Sequence[float] = COSINE_GRID,
    *,
    higher_is_similar: bool = True,
    min_precision: float = MIN_PRECISION,
    max_merges: int = MAX_MERGES,
    scored_items: Any = None,
) -> ThresholdChoice:
    """The course's threshold rule: safe for grouping first, then precise, then the best F1.

    Among the thresholds on ``grid``

    1. whose found pairs, chained into groups (connected components: a~b and b~c put
       a, b and c in one group), merge at most ``max_merges`` pairs of true groups
       (default 0: no found group holds two different photos), and
    2. whose pair precision is at least ``min_precision`` (a threshold that finds
       nothing passes: it makes no false pair),

    take the one with the highest pair F1. Several grid points often tie (no score lies
    between them, so they find the same pairs); then the middle one is taken (the
    stricter of the two middle ones for an even number), so the threshold sits away
    from the scores on both sides.

    Why the grouping criterion: duplicates are removed by group, and chaining turns one
    false pair into a merged group, whose members are then all but one thrown away. A
    threshold that is optimal for pairs can still merge two photos; the rule refuses it.

    The scores returned are in-sample (measured on the data the threshold was chosen
    on) and therefore optimistic; report :func:`cross_validate_threshold` beside them.

    Args:
        pairs, scores, groups, higher_is_similar, scored_items: as for
            :func:`threshold_curve`. For dHash distances pass
            ``higher_is_similar=False`` and an integer grid such as ``range(0, 65)``.
        grid: candidate thresholds; default :data:`COSINE_GRID` (0.30 to 1.00 by 0.01).
        min_precision: the pair precision floor (default :data:`MIN_PRECISION`).
        max_merges: merged groups allowed (default :data:`MAX_MERGES`, none).

    Returns:
        :class:`ThresholdChoice`.

    Raises:
        ValueError: no grid threshold meets both criteria (extend the grid to stricter values).
    """
    curve = threshold_curve(
        pairs, scores, groups, grid, higher_is_similar=higher_is_similar, scored_items=scored_items
    )
    threshold = _pick_threshold(curve, higher_is_similar, min_precision, max_merges)
    row = curve.loc[threshold]
    return ThresholdChoice(
        threshold=threshold,
        precision=float(row["precision"]),
        recall=float(row["recall"]),
        f1=float(row["f1"]),
        merges=int(row["merges"]),
        ari=float(row["ari"]),
        higher_is_similar=higher_is_similar,
        min_precision=float(min_precision),
        max_merges=int(max_merges),
        curve=curve,
    )


def group_folds(
    groups: Sequence[Any], n_folds: int = 4, n_repeats: int = 5, seed: int = 0
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Group-aware folds: every true group is held out whole, once per repeat.

    Each repeat shuffles the groups (seeded) and cuts them into ``n_folds`` folds of
    (nearly) equal numbers of groups, as scikit-learn's ``GroupKFold`` with shuffling.

    Yields:
        ``(repeat, fold, held_out)`` with ``held_out`` an ``(n,)`` bool mask of the items
        whose groups are held out.
    """
    codes = group_codes(groups)
    unique = np.unique(codes)
    if not 2 <= n_folds <= len(unique):
        raise ValueError(f"n_folds must be between 2 and the number of groups ({len(unique)}), got {n_folds}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be at least 1, got {n_repeats}")
    rng = np.random.default_rng(seed)
    for repeat in range(n_repeats):
        for fold, chunk in enumerate(np.array_split(rng.permutation(unique), n_folds)):
            yield repeat, fold, np.isin(codes, chunk)


def cross_validate_threshold(
    pairs: Any,
    scores: Any,
    groups: Sequence[Any],
    grid: Sequence[float] = COSINE_GRID,
    *,
    higher_is_similar: bool = True,
    min_precision: float = MIN_PRECISION,
    max_merges: int = MAX_MERGES,
    n_folds: int = 4,
    n_repeats: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Choose the threshold on some groups and score it on the others, fold by fold.

    For every fold of :func:`group_folds`:

    - **in-sample**: :func:`choose_threshold` on the pairs of two calibration items
      (items of the groups not held out), and its scores on those same pairs;
    - **held out**: that threshold's scores on every pair with at least one held-out
      item, i.e. each held-out photo compared with the whole collection, as a new photo
      would be in use. Pairs of two calibration items are left out: the threshold was
      chosen on them. The true pairs to find are those inside the held-out groups;
      merges count found groups (over those pairs) joining two or more true groups.

    Repeating with reshuffled groups gives the spread: how much the chosen threshold
    and its held-out scores depend on which photos happened to be used to choose it.

    Args:
        pairs, scores, groups, grid, higher_is_similar, min_precision, max_merges: as
            for :func:`choose_threshold`.
        n_folds, n_repeats, seed: as for :func:`group_folds`.

    Returns:
        DataFrame, one row per ``(repeat, fold)``, with ``held_out_groups``,
        ``threshold``, ``in_sample_{precision,recall,f1,merges}`` and
        ``held_out_{precision,recall,f1,merges,ari}``.
    """
    codes = group_codes(groups)
    p = as_pairs(pairs, len(codes), "pairs")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(p):
        raise ValueError(f"{len(p)} pairs but {len(s)} scores; pass one score per pair")
    rule = {"higher_is_similar": higher_is_similar}
    rows = []
    for repeat, fold, held_out in group_folds(codes, n_folds, n_repeats, seed):
        calibration = ~held_out
        inside = calibration[p[:, 0]] & calibration[p[:, 1]]
        chosen = choose_threshold(
            p[inside],
            s[inside],
            codes,
            grid,
            min_precision=min_precision,
            max_merges=max_merges,
            scored_items=calibration,
            **rule,
        )
        unseen = threshold_curve(
            p[~inside], s[~inside], codes, [chosen.threshold], scored_items=held_out, **rule
        ).iloc[0]
        rows.append(
            {
                "repeat": repeat,
                "fold": fold,
                "held_out_groups": len(np.unique(codes[held_out])),
                "threshold": chosen.threshold,
                "in_sample_precision": chosen.precision,
                "in_sample_recall": chosen.recall,
                "in_sample_f1": chosen.f1,
                "in_sample_merges": chosen.merges,
                "held_out_precision": float(unseen["precision"]),
                "held_out_recall": float(unseen["recall"]),
                "held_out_f1": float(unseen["f1"]),
                "held_out_merges": int(unseen["merges"]),
                "held_out_ari": float(unseen["ari"]),
            }
        )
    return pd.DataFrame(rows)


def f_beta_by_threshold(curve: pd.DataFrame, beta: float) -> pd.Series:
    """F-beta at every threshold of a :func:`threshold_curve` table, from its pair counts.

    ``F_beta = (1 + beta²)·tp / ((1 + beta²)·tp + beta²·fn + fp)``: recall weighs ``beta`` times
    as much as precision. A threshold with no true pair found (``tp == 0``) scores 0.
    """
    b2 = float(beta) ** 2
    tp, fp, fn = (curve[c].astype(float) for c in ("tp", "fp", "fn"))
    den = (1 + b2) * tp + b2 * fn + fp
    return ((1 + b2) * tp / den.where(den > 0)).fillna(0.0).rename(f"f{beta:g}")


def summarise_cross_validation(
    table: pd.DataFrame, stored: float | None = None, higher_is_similar: bool = True
) -> dict[str, float]:
    """The few numbers to print and store from :func:`cross_validate_threshold`'s table.

    Args:
        table: :func:`cross_validate_threshold`'s result.
        stored: the threshold that is kept (the rule on all the data), to say how safe
            for grouping it is on held-out groups; ``None`` to leave that out.
        higher_is_similar: as for the rule (which side is stricter).

    Returns:
        ``folds``; ``threshold_median``, ``threshold_min``, ``threshold_max`` (spread
        of the chosen thresholds); mean in-sample precision and recall and mean and
        min held-out precision and recall (the side-by-side); ``folds_with_merge``,
        the fraction of folds whose held-out groups got merged. With ``stored``:
        ``folds_at_stored``, the folds whose threshold was at least as strict as
        ``stored``, and ``folds_at_stored_with_merge``, how many of those still merged
        held-out groups. That count is arithmetic, not held-out evidence on the stored
        value: ``stored`` was chosen on all the data, held-out groups included, so where it
        sits above every false pair no fold at or above it can merge anything. Counts are
        ints, the rest plain floats rounded to 3 decimals, ready for JSON.
    """
    summary = {
        "folds": len(table),
        "threshold_median": table["threshold"].median(),
        "threshold_min": table["threshold"].min(),
        "threshold_max": table["threshold"].max(),
        "in_sample_precision_mean": table["in_sample_precision"].mean(),
        "in_sample_recall_mean": table["in_sample_recall"].mean(),
        "held_out_precision_mean": table["held_out_precision"].mean(),
        "held_out_precision_min": table["held_out_precision"].min(),
        "held_out_recall_mean": table["held_out_recall"].mean(),
        "held_out_recall_min": table["held_out_recall"].min(),
        "folds_with_merge": (table["held_out_merges"] > 0).mean(),
    }
    if stored is not None:
        sign = 1.0 if higher_is_similar else -1.0
        at_stored = sign * table["threshold"] >= sign * stored - 1e-12
        summary["folds_at_stored"] = int(at_stored.sum())
        summary["folds_at_stored_with_merge"] = int((at_stored & (table["held_out_merges"] > 0)).sum())
    return {key: v if isinstance(v, int) else round(float(v), 3) for key, v in summary.items()}
