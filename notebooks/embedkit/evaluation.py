"""Score a duplicate finder against ground truth: precision, recall and F1 of pairs.

Any method (file hashes, pixel hashes, dhash, embeddings) ends in a list of item
pairs it calls duplicates. With the dataset's known duplicate groups,

- :func:`score_pairs` counts true positives, false positives and false negatives
  over unordered pairs and returns :class:`Scores`;
- :func:`true_pairs_from_groups` turns group labels into the set of true pairs;
- :func:`scores_by_kind` breaks recall and precision down by how each copy was
  made (resized, cropped, flipped, ...), the table that shows what a method misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .pairs import group_codes, pairs_from_labels, unordered_pairs

__all__ = ["Scores", "score_pairs", "true_pairs_from_groups", "scores_by_kind"]


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
    kind_arr = np.asarray(list(kinds), dtype=object)
    n = len(codes)
    if len(kind_arr) != n:
        raise ValueError(
            f"groups has {n} items but kinds has {len(kind_arr)}; pass one of each per item"
        )
    if pd.isna(pd.Series(kind_arr, dtype=object)).any():
        raise ValueError("kinds has a missing value; give every item a kind")
    kind_codes, kind_names = pd.factorize(pd.Series(kind_arr, dtype=object))
    if "all" in set(kind_names):
        raise ValueError("a kind is named 'all', which is reserved for the summary row; rename it")
    n_kinds = len(kind_names)

    # The reference item of every group.
    is_ref = kind_arr == reference_kind
    n_groups = int(codes.max()) + 1 if n else 0
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

    # Positive pairs: every non-reference item in a group, with its group's original.
    copies = np.flatnonzero(~is_ref & (sizes[codes] > 1))
    positives = np.sort(np.stack([copies, ref_of_group[codes[copies]]], axis=1), axis=1)

    pred = unordered_pairs(predicted_pairs, n, "predicted_pairs")
    found = np.isin(_pair_keys(positives, n), _pair_keys(pred, n))
    correct = codes[pred[:, 0]] == codes[pred[:, 1]]

    copy_kinds = kind_codes[copies]
    positives_per_kind = np.bincount(copy_kinds, minlength=n_kinds)
    found_per_kind = np.bincount(copy_kinds, weights=found, minlength=n_kinds).astype(np.int64)
    # A pair counts once for each distinct kind among its two items.
    ka, kb = kind_codes[pred[:, 0]], kind_codes[pred[:, 1]]
    other = ka != kb

    def per_kind(weights: np.ndarray) -> np.ndarray:
        return (
            np.bincount(ka, weights=weights, minlength=n_kinds)
            + np.bincount(kb[other], weights=weights[other], minlength=n_kinds)
        ).astype(np.int64)

    predicted_per_kind = per_kind(np.ones(len(pred)))
    correct_per_kind = per_kind(correct.astype(np.float64))

    def nan_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1), np.nan)

    table = pd.DataFrame(
        {
            "positives": np.append(positives_per_kind, len(positives)),
            "found": np.append(found_per_kind, int(found.sum())),
            "predicted": np.append(predicted_per_kind, len(pred)),
            "correct": np.append(correct_per_kind, int(correct.sum())),
        },
        index=pd.Index([*map(str, kind_names), "all"], name="kind"),
    )
    table["recall"] = nan_ratio(table["found"].to_numpy(), table["positives"].to_numpy())
    table["precision"] = nan_ratio(table["correct"].to_numpy(), table["predicted"].to_numpy())
    return table[["positives", "found", "recall", "predicted", "precision"]]
