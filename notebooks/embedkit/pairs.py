"""Pairs of items and the groups they form: the common language of every duplicate finder.

Any method (file hashes, pixel hashes, dHash, embeddings) ends in pairs of item
indices it calls duplicates; ground truth comes as one group label per item. This
module is the one place that turns one into the other:

- :func:`as_pairs` validates pairs as an ``(m, 2)`` int64 array;
- :func:`unordered_pairs` makes them sorted, unique and ``i < j``;
- :func:`group_codes` turns any labels (strings, ints, ``None``) into integer codes;
- :func:`pairs_from_groups` lists every pair inside groups of indices;
- :func:`pairs_from_labels` lists every pair of items that share a label;
- :func:`connected_groups` joins pairs into groups (a chain a–b, b–c puts a, b and c
  in one group);
- :func:`groups_from_labels` lists the members of each group of two or more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "as_pairs",
    "connected_groups",
    "group_codes",
    "groups_from_labels",
    "is_missing",
    "pairs_from_groups",
    "pairs_from_labels",
    "unordered_pairs",
]


def as_pairs(pairs: Any, n: int | None = None, name: str = "pairs") -> np.ndarray:
    """Pairs of item indices as an ``(m, 2)`` int64 array, checked.

    Args:
        pairs: an array or list of ``(i, j)`` rows, or a set of tuples; ``[]`` for none.
        n: number of items; indices must lie in ``[0, n)`` (only ``>= 0`` when ``None``).
        name: what the caller calls ``pairs``, for error messages.

    Raises:
        TypeError: ``None``, or indices that are not integers.
        ValueError: a shape other than ``(m, 2)``, or an index out of range.
    """
    if pairs is None:
        raise TypeError(f"{name} is None; pass an (m, 2) array of item indices ([] for no pairs)")
    if isinstance(pairs, (set, frozenset)):
        pairs = sorted(pairs)
    arr = np.asarray(pairs)
    if arr.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (m, 2), one (i, j) pair per row; got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer item indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    outside = (arr < 0).any(axis=1)
    if n is not None:
        outside |= (arr >= n).any(axis=1)
    if outside.any():
        bad = tuple(int(v) for v in arr[np.argmax(outside)])
        limit = f"the item range [0, {n})" if n is not None else "the non-negative range"
        raise ValueError(f"pair {bad} in {name} has an index outside {limit}")
    return arr


def unordered_pairs(pairs: Any, n: int | None = None, name: str = "pairs") -> np.ndarray:
    """Pairs as unordered pairs: ``(m, 2)`` int64, each row ``i < j``, sorted, no repeats.

    ``(3, 1)`` and ``(1, 3)`` are the same pair. A pair of an item with itself is an
    error, since a duplicate pair needs two different items.
    """
    arr = np.sort(as_pairs(pairs, n, name), axis=1)
    self_pairs = arr[:, 0] == arr[:, 1]
    if self_pairs.any():
        i = int(arr[np.argmax(self_pairs), 0])
        raise ValueError(f"{name} pairs item {i} with itself; a duplicate pair needs two different items")
    return np.unique(arr, axis=0)


def is_missing(label: Any) -> bool:
    """``None``, or a value not equal to itself (NaN, NaT) or that cannot say (pandas' NA)."""
    if label is None:
        return True
    try:
        return bool(label != label)
    except (TypeError, ValueError):
        return True


def group_codes(labels: Any) -> np.ndarray:
    """``(n,)`` int64 code per item, equal codes for equal labels, numbered by first appearance.

    A missing label (``None``, ``NaN``, ``NaT``, pandas' ``NA``) makes its item a group of its own.
    """
    if labels is None:
        raise TypeError("labels is None; pass one group label per item")
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "biuUS":  # none missing
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first)] = np.arange(len(first))
        return rank[inverse.reshape(-1)]
    items = list(labels)
    codes = np.empty(len(items), dtype=np.int64)
    seen: dict[Any, int] = {}
    alone = [i for i, label in enumerate(items) if is_missing(label)]
    lone = set(alone)
    for i, label in enumerate(items):
        if i not in lone:
            codes[i] = seen.setdefault(label, len(seen))
    codes[alone] = len(seen) + np.arange(len(alone), dtype=np.int64)
    return codes


def pairs_from_groups(groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Every pair of items inside each group, as ``(m, 2)`` int64 rows ``(i, j)`` with ``i < j``.

    Rows are sorted (by ``i``, then ``j``) and unique, even if groups overlap.
    ``[[0, 2, 5]]`` gives ``[[0, 2], [0, 5], [2, 5]]``.
    """
    chunks = []
    for group in groups:
        members = np.asarray(group)
        if members.ndim != 1 or not (members.size == 0 or np.issubdtype(members.dtype, np.integer)):
            raise TypeError(
                f"each group must be a list of item indices (as exact_duplicate_groups returns), "
                f"got {group!r}; for one group label per item use pairs_from_labels"
            )
        members = np.unique(members.astype(np.int64))
        if members.size and members[0] < 0:
            raise ValueError(f"group {list(group)} holds a negative index")
        i, j = np.triu_indices(members.size, k=1)
        chunks.append(np.stack([members[i], members[j]], axis=1))
    if not chunks:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(chunks).reshape(-1, 2)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def groups_from_labels(labels: Any) -> list[list[int]]:
    """Member indices of every group of two or more items, ordered by first member.

    ``["a", "b", "a", None, "b"]`` gives ``[[0, 2], [1, 4]]``.
    """
    codes = group_codes(labels)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return [members.tolist() for members in np.split(order, bounds) if len(members) > 1]


def pairs_from_labels(labels: Any) -> np.ndarray:
    """Every unordered pair ``(i, j)``, ``i < j``, of items that share a label, as ``(m, 2)`` int64.

    ``None`` or ``NaN`` means "no group": such an item pairs with nothing.
    """
    return pairs_from_groups(groups_from_labels(labels))


def connected_groups(n: int, pairs: Any) -> np.ndarray:
    """Group label per item: items joined by a chain of pairs share a label.

    Args:
        n: number of items.
        pairs: ``(m, 2)`` item indices in ``[0, n)``, in any order (``[]`` for none).

    Returns:
        ``(n,)`` int64 labels numbered by first appearance: item 0 has label 0, the
        next item not in its group has label 1, and so on. An item in no pair is a
        group of its own.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise TypeError(f"n must be the number of items (an int >= 0), got {n!r}")
    p = as_pairs(pairs, int(n))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(p), dtype=np.int8), (p[:, 0], p[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.reshape(-1)]
