"""Grouping a folder: the blockwise search against every pair at once, the chain guard by hand."""

import numpy as np
import pytest

from embedkit.grouping import guarded_groups, search_groups
from embedkit.pairs import connected_groups
from embedkit.similarity import near_duplicate_pairs
from embedkit.splits import folder_leaks


def _unit(angles_deg):
    a = np.radians(angles_deg)
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def test_chain_is_flagged_and_cut_by_average_similarity():
    # Angles 0, 30, 60 degrees: cos 30 = 0.866 links neighbours at threshold 0.8, but the
    # ends are cos 60 = 0.5 apart. A fourth vector at 5 degrees makes 0 and 5 one tight pair.
    vectors = _unit([0, 5, 30, 60])
    edges = np.array([[0, 1], [1, 2], [0, 2], [2, 3]])
    groups, review = guarded_groups(4, edges, vectors, threshold=0.8)
    assert len(review) == 1
    assert review[0]["min_similarity"] == pytest.approx(0.5, abs=1e-6)
    assert set(review[0]["weakest_pair"]) == {0, 3}
    # average linkage: {0,1} (cos 5 = 0.996), then 2 joins at mean(cos 30, cos 25) = 0.886;
    # 3 would join at mean(cos 60, cos 55, cos 30) = 0.646 < 0.8, so it stays alone.
    assert sorted(map(sorted, (g.tolist() for g in groups))) == [[0, 1, 2]]


def test_coherent_group_is_not_flagged():
    vectors = _unit([0, 10, 20])
    groups, review = guarded_groups(3, np.array([[0, 1], [1, 2]]), vectors, threshold=0.9)
    assert review == [] and [g.tolist() for g in groups] == [[0, 1, 2]]


def test_pairs_are_joined_block_by_block_as_if_all_were_held():
    # Oracle: every pair at once (near_duplicate_pairs) joined by connected_groups, and the
    # borderline pairs picked from the full list; the blockwise search, forced into blocks of
    # 3 rows, must give the same groups and the same borderline pairs.
    rng = np.random.default_rng(3)
    base = rng.standard_normal((12, 6)).astype(np.float32)
    vectors = np.concatenate([base, base[:8] + 0.3 * rng.standard_normal((8, 6)).astype(np.float32)])
    exact_of = np.arange(len(vectors))
    vectors[19] = vectors[18]  # 18 and 19 are pixel-identical copies
    exact_of[19] = 18
    threshold = 0.8
    labels, borderline = search_groups(vectors, threshold, exact_of, block=3 * len(vectors))
    pairs, scores = near_duplicate_pairs(vectors, threshold=threshold - 0.1)
    strong = pairs[scores >= threshold]
    expected = connected_groups(len(vectors), np.concatenate([strong, [[18, 19]]]))
    assert (labels == expected).all()
    reps = np.sort(exact_of[pairs], axis=1)
    seen, distinct = set(), []
    for (a, b), (i, j), s in zip(reps.tolist(), pairs.tolist(), scores.tolist(), strict=True):
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            distinct.append((i, j, s))
    below = [p for p in distinct if p[2] < threshold][:6][::-1]
    above = [p for p in distinct if p[2] >= threshold][::-1][:6][::-1]
    assert [(a, b) for a, b, _ in borderline] == [(a, b) for a, b, _ in below + above]


def test_folder_leaks_are_groups_across_top_level_folders():
    groups = [
        ["train/a.jpg", "test/a.jpg"],  # a leak
        ["train/b.jpg", "train/x/b.jpg"],  # one split: no leak
        ["top.jpg", "val/top.jpg"],  # a file at the top level belongs to no split
        ["val/c.jpg", "test/c.jpg", "train/c.jpg", "test/d/c.jpg"],  # any two splits count
    ]
    assert folder_leaks(groups) == [
        {"splits": {"test": ["test/a.jpg"], "train": ["train/a.jpg"]}},
        {"splits": {"test": ["test/c.jpg", "test/d/c.jpg"], "train": ["train/c.jpg"], "val": ["val/c.jpg"]}},
    ]
    assert folder_leaks([]) == []
