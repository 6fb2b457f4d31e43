"""embedkit.retrieval against hand-computed cases and scikit-learn."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import average_precision_score, label_ranking_average_precision_score

from embedkit.retrieval import (
    average_precision,
    evaluate_retrieval,
    first_relevant_rank,
    recall_at_k,
    relevance_from_keys,
    score_matrix,
)

# One query, five items ranked by score: relevant at positions 1, 3 and 5.
HAND_SCORES = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
HAND_RELEVANT = np.array([[True, False, True, False, True]])


def test_average_precision_by_hand():
    # precision at each relevant item: 1/1, 2/3, 3/5
    ap = average_precision(HAND_SCORES, HAND_RELEVANT, exclude_self=False)
    assert ap == pytest.approx([(1 + 2 / 3 + 3 / 5) / 3])


def test_ranks_and_recall_by_hand():
    # relevant only at positions 3 and 5: the best relevant item is third
    relevant = np.array([[False, False, True, False, True]])
    assert first_relevant_rank(HAND_SCORES, relevant, exclude_self=False).tolist() == [3.0]
    assert recall_at_k(HAND_SCORES, relevant, 2, exclude_self=False) == 0.0
    assert recall_at_k(HAND_SCORES, relevant, 3, exclude_self=False) == 1.0
    ap = average_precision(HAND_SCORES, relevant, exclude_self=False)
    assert ap == pytest.approx([(1 / 3 + 2 / 5) / 2])


def test_a_tie_with_a_stranger_counts_against_the_query():
    scores = np.array([[0.5, 0.5, 0.1]])
    relevant = np.array([[False, True, False]])
    assert first_relevant_rank(scores, relevant, exclude_self=False).tolist() == [2.0]
    # AP treats tied items as entering together, like scikit-learn: precision 1/2
    assert average_precision(scores, relevant, exclude_self=False) == pytest.approx([0.5])
    assert average_precision_score(relevant[0], scores[0]) == pytest.approx(0.5)


def test_the_query_itself_is_left_out():
    # Three items; the query scores highest with itself, but it is not a result.
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    keys = ["a", "b", "a"]
    S = score_matrix(X)
    rel = relevance_from_keys(keys)
    assert not rel.diagonal().any()
    # query 0: item 1 (other key) ranks before item 2 (same key)
    assert first_relevant_rank(S, rel)[0] == 2.0
    # query 1 has no relevant item: nan, skipped and counted
    assert np.isnan(first_relevant_rank(S, rel)[1])
    assert np.isnan(average_precision(S, rel)[1])
    summary = evaluate_retrieval(S, rel, ks=(1, 2))
    assert summary.n_queries == 2 and summary.n_skipped == 1
    assert summary.recall == {1: 0.0, 2: 1.0}
    # the input matrices are not modified
    assert S[0, 0] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    keys = rng.integers(0, 7, size=60)
    keys[0] = 99  # one query with no relevant item
    return X, keys


def test_average_precision_matches_scikit_learn_per_query(random_case):
    X, keys = random_case
    S = score_matrix(X)
    rel = relevance_from_keys(keys)
    ours = average_precision(S, rel)
    off = ~np.eye(len(X), dtype=bool)
    for i in range(len(X)):
        y, s = rel[i][off[i]], S[i][off[i]]
        if y.any():
            assert ours[i] == pytest.approx(average_precision_score(y, s), abs=1e-12)
        else:
            assert np.isnan(ours[i])


def test_average_precision_matches_label_ranking_ap_with_ties():
    # Scores rounded to one decimal: many ties, which both must treat the same way.
    rng = np.random.default_rng(1)
    scores = np.round(rng.uniform(size=(40, 25)), 1)
    relevant = rng.uniform(size=(40, 25)) < 0.3
    relevant[:, 0] = True  # every query has a relevant item
    ours = average_precision(scores, relevant, exclude_self=False)
    assert ours.mean() == pytest.approx(label_ranking_average_precision_score(relevant, scores), abs=1e-12)


def test_recall_at_k_against_a_sort(random_case):
    X, keys = random_case
    S = score_matrix(X)
    rel = relevance_from_keys(keys)
    order = np.argsort(-np.where(np.eye(len(X), dtype=bool), -np.inf, S), axis=1)  # no ties here
    has = rel.any(axis=1)
    for k in (1, 3, 10):
        top = np.take_along_axis(rel, order[:, :k], axis=1).any(axis=1)
        assert recall_at_k(S, rel, k) == pytest.approx(top[has].mean())


def test_score_matrix_against_scipy(random_case):
    X, _ = random_case
    assert np.allclose(score_matrix(X, "cosine"), 1 - cdist(X, X, "cosine"), atol=1e-12)
    assert np.allclose(score_matrix(X, "euclidean"), -cdist(X, X), atol=1e-6)
    assert np.allclose(score_matrix(X, "dot"), X @ X.T)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: score_matrix(np.zeros((0, 3))), "non-empty"),
        (lambda: score_matrix(np.ones((3, 2)), "manhattan"), "unknown metric"),
        (lambda: score_matrix(np.array([[1.0, 0.0], [0.0, 0.0]])), "zero vector"),
        (lambda: score_matrix(np.array([[np.nan, 1.0]])), "NaN"),
        (lambda: average_precision(np.ones((2, 3)), np.ones((3, 2), dtype=bool)), "shape"),
        (lambda: average_precision(np.ones((2, 3)), np.ones((2, 3), dtype=bool)), "square"),
        (lambda: recall_at_k(np.ones((2, 2)), np.ones((2, 2), dtype=bool), 0), "positive integer"),
        (lambda: evaluate_retrieval(np.ones((2, 2)), relevance_from_keys([1, 2])), "no query"),
        (lambda: relevance_from_keys([]), "non-empty"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
