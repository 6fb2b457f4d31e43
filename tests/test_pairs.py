"""embedkit.pairs: pair arrays, group labels and connected groups."""

import numpy as np
import pytest

from embedkit.pairs import (
    as_pairs,
    connected_groups,
    group_codes,
    groups_from_labels,
    is_missing,
    pairs_from_groups,
    pairs_from_labels,
    unordered_pairs,
)


def test_pairs_from_groups():
    pairs = pairs_from_groups([[5, 2, 0], [1, 3]])
    assert pairs.dtype == np.int64
    np.testing.assert_array_equal(pairs, [[0, 2], [0, 5], [1, 3], [2, 5]])
    # Overlapping groups give each pair once.
    np.testing.assert_array_equal(pairs_from_groups([[0, 1], [1, 0, 2]]), [[0, 1], [0, 2], [1, 2]])
    assert pairs_from_groups([]).shape == (0, 2)
    assert pairs_from_groups([[4]]).shape == (0, 2)
    with pytest.raises(TypeError, match="list of item indices"):
        pairs_from_groups([0, 0, 1])  # labels per item, not lists of indices


def test_connected_groups_hand_example():
    # 0-4, 1-3-5 (a chain), 6-7; item 2 alone.
    pairs = [(6, 7), (3, 5), (1, 3), (4, 0)]
    labels = connected_groups(8, pairs)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [0, 1, 2, 1, 0, 1, 3, 3])
    np.testing.assert_array_equal(connected_groups(3, []), [0, 1, 2])


def test_connected_groups_matches_union_find():
    rng = np.random.default_rng(3)
    n = 60
    pairs = rng.integers(0, n, size=(40, 2))
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(a)] = find(b)
    roots = [find(i) for i in range(n)]
    first_seen: dict[int, int] = {}
    expected = [first_seen.setdefault(r, len(first_seen)) for r in roots]
    np.testing.assert_array_equal(connected_groups(n, pairs), expected)


def test_connected_groups_rejects_out_of_range_pairs():
    with pytest.raises(ValueError, match=r"pair \(1, 5\) in pairs has an index outside the item range"):
        connected_groups(5, [(0, 1), (1, 5)])


def test_as_pairs_and_unordered_pairs():
    assert as_pairs([]).shape == (0, 2)
    assert as_pairs({(2, 1), (0, 3)}).tolist() == [[0, 3], [2, 1]]
    np.testing.assert_array_equal(unordered_pairs([(3, 1), (1, 3), (0, 2)]), [[0, 2], [1, 3]])
    with pytest.raises(TypeError, match="pairs is None"):
        as_pairs(None)
    with pytest.raises(TypeError, match="integer item indices"):
        as_pairs([(0.0, 1.0)])
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        as_pairs([0, 1, 2])
    with pytest.raises(ValueError, match="pairs item 4 with itself"):
        unordered_pairs([(4, 4)])


def test_group_codes_and_labels():
    labels = ["b", "a", "b", None, float("nan"), "a", "c"]
    codes = group_codes(labels)
    # equal labels share a code, numbered by first appearance; missing labels get their own
    np.testing.assert_array_equal(codes, [0, 1, 0, 3, 4, 1, 2])
    assert groups_from_labels(labels) == [[0, 2], [1, 5]]
    np.testing.assert_array_equal(pairs_from_labels(labels), [[0, 2], [1, 5]])
    assert pairs_from_labels([]).shape == (0, 2)
    with pytest.raises(TypeError, match="labels is None"):
        group_codes(None)


def test_connected_groups_errors():
    with pytest.raises(TypeError, match="pairs is None"):
        connected_groups(3, None)
    with pytest.raises(TypeError, match="number of items"):
        connected_groups(None, [])
    with pytest.raises(TypeError, match="number of items"):
        connected_groups(-1, [])
    assert connected_groups(0, []).shape == (0,)


def test_group_codes_agree_with_pandas_factorize():
    # pandas' factorize is the oracle: codes by first appearance, missing labels (None, NaN, NaT, NA) as -1,
    # which group_codes numbers after the others, each a group of its own.
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    cases = [
        rng.integers(0, 7, 300),
        rng.integers(0, 7, 300).astype(float),
        np.array(["x", "y", "x", "z"]),
        np.array([b"a", b"b", b"a"]),
        np.array([True, False, True]),
        np.array([], dtype=np.int64),
        ["b", None, "a", float("nan"), "b", pd.NA, pd.NaT, np.float32("nan"), "a"],
        [1, 1.0, True, "1", (1, 2), (1, 2)],
        list(rng.choice(["train", "test", None], 500)),
    ]
    for labels in cases:
        codes, uniques = pd.factorize(pd.Series(list(labels), dtype=object))
        missing = codes < 0
        codes[missing] = len(uniques) + np.arange(missing.sum())
        got = group_codes(labels)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, codes)


def test_is_missing_agrees_with_pandas_isna():
    pd = pytest.importorskip("pandas")
    values = [
        None,
        float("nan"),
        np.float32("nan"),
        pd.NA,
        pd.NaT,
        np.datetime64("NaT"),
        0,
        "",
        "nan",
        b"",
        False,
        (1,),
    ]
    for value in values:
        assert is_missing(value) == bool(pd.isna(value)), value
