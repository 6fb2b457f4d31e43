"""Train/test leaks and the re-split that removes them.

- :func:`leak_report` lists test items that have a duplicate in train: the leaks
  that inflate test scores.
- :func:`folder_leaks` lists the duplicate groups whose files lie in two or more
  top-level folders (``train/``, ``test/``, ``val/``, ...): the leaks of a folder on disk.
- :func:`group_aware_split` moves whole duplicate groups to one side, moving as few
  items as possible.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .pairs import as_pairs, group_codes, is_missing

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["folder_leaks", "group_aware_split", "leak_report"]


def leak_report(
    paths: Sequence[str | os.PathLike],
    splits: Sequence[str],
    pairs: Any,
    *,
    train: str = "train",
    test: str = "test",
) -> pd.DataFrame:
    """Test items that have a duplicate in train: the leaks that inflate test scores.

    Args:
        paths: every item's path (``n`` of them).
        splits: every item's split; items labelled neither ``train`` nor ``test``
            (e.g. "val") are ignored.
        pairs: ``(m, 2)`` duplicate pairs as indices into ``paths``, in any order.
            Only direct pairs count; for a chain a–b–c pass
            ``pairs_from_groups`` of the groups so that a–c is a pair too.
        train, test: the labels used in ``splits``.

    Returns:
        One row per leaking test item, sorted by ``test_path``, with columns
        ``test_path`` (str), ``train_matches`` (sorted list of str paths of its train
        duplicates) and ``n_matches``. No leaks gives an empty frame with the same
        columns.
    """
    path_arr = np.array([str(p) for p in paths], dtype=object)
    split_arr = np.asarray(splits, dtype=object)
    if len(split_arr) != len(path_arr):
        raise ValueError(
            f"paths has {len(path_arr)} items but splits has {len(split_arr)}; pass one split per path"
        )
    if len(split_arr) and not ((split_arr == train).any() or (split_arr == test).any()):
        found = sorted({str(s) for s in split_arr})[:5]
        raise ValueError(
            f"no item is labelled {train!r} or {test!r} (found {found}); "
            "pass train= and test= with the labels your splits use"
        )
    p = as_pairs(pairs, len(path_arr))
    a, b = p[:, 0], p[:, 1]
    a_test = (split_arr[a] == test) & (split_arr[b] == train)
    b_test = (split_arr[b] == test) & (split_arr[a] == train)
    test_idx = np.concatenate([a[a_test], b[b_test]])
    train_idx = np.concatenate([b[a_test], a[b_test]])
    import pandas as pd  # here, not at the top: curating a folder needs no pandas

    leaks = pd.DataFrame(
        {"test": test_idx, "test_path": path_arr[test_idx], "train_path": path_arr[train_idx]}
    )
    leaks = leaks.drop_duplicates(["test", "train_path"]).sort_values(["test_path", "test", "train_path"])
    report = (
        leaks.groupby(["test_path", "test"], sort=False)["train_path"]
        .agg(list)
        .rename("train_matches")
        .reset_index()
    )
    report["n_matches"] = report["train_matches"].map(len).astype(np.int64)
    return report[["test_path", "train_matches", "n_matches"]].reset_index(drop=True)


def folder_leaks(groups: Sequence[Sequence[str]]) -> list[dict[str, dict[str, list[str]]]]:
    """The groups whose files lie in two or more top-level folders, with their files by folder.

    Args:
        groups: duplicate groups of ``/``-separated paths relative to the folder curated
            (``"train/cat/1.jpg"``); a file at the top level (no ``/``) belongs to no split.

    Returns:
        One ``{"splits": {folder: [paths in it], ...}}`` per leaking group, in the order of
        ``groups``, the folders sorted. Any two splits count (``val`` with ``test`` too): a
        file seen while choosing or tuning a model should not be scored on again.
    """
    leaks = []
    for members in groups:
        by_split: dict[str, list[str]] = {}
        for path in members:
            if "/" in path:
                by_split.setdefault(path.split("/")[0], []).append(path)
        if len(by_split) >= 2:
            leaks.append({"splits": dict(sorted(by_split.items()))})
    return leaks


def group_aware_split(groups: Any, splits: Sequence[str], *, train: str = "train") -> np.ndarray:
    """Re-split items so that every duplicate group sits wholly on one side.

    Each group goes to the split most of its members already have (ties go to
    ``train``, then to the split seen first); items outside any group stay where
    they are. This is the minimal-move fix: for each group it moves the fewest
    items, so a curated split stays as close as possible to the original (the
    train/test proportions can shift a little). For a fresh random split that
    respects groups, use ``sklearn.model_selection.GroupShuffleSplit`` with
    ``groups=`` instead.

    Args:
        groups: ``(n,)`` group label per item, e.g. from :func:`connected_groups`;
            ``None``/``NaN`` means "no group".
        splits: ``(n,)`` current split per item ("train", "test", ...).

    Returns:
        ``(n,)`` array of str, the new split per item.
    """
    split_arr = np.asarray(splits, dtype=object)
    codes = group_codes(groups)
    if len(codes) != len(split_arr):
        raise ValueError(
            f"groups has {len(codes)} items but splits has {len(split_arr)}; pass one of each per item"
        )
    if len(codes) == 0:
        return np.array([], dtype=str)
    missing = [i for i, split in enumerate(split_arr) if is_missing(split)]
    if missing:
        raise ValueError(f"splits has a missing value at index {missing[0]}")
    split_codes = group_codes(split_arr)
    labels = list(dict.fromkeys(split_arr))  # each split once, in order of first appearance, as coded
    # Column order decides ties: train first, then the other splits in order of appearance.
    preference = sorted(range(len(labels)), key=lambda c: (labels[c] != train, c))
    position = np.empty(len(labels), dtype=np.int64)
    position[preference] = np.arange(len(labels))
    counts = np.zeros((codes.max() + 1, len(labels)), dtype=np.int64)
    np.add.at(counts, (codes, position[split_codes]), 1)
    winner = np.asarray(preference)[counts.argmax(axis=1)]
    return np.asarray(labels, dtype=object)[winner[codes]].astype(str)
