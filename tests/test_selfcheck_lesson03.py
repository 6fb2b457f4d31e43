"""embedkit.selfcheck.lesson03: each check passes the lesson's model answer, stands in while the
exercise returns None, and turns away the mistakes a learner makes. Small hand-made data only."""

import heapq

import numpy as np
import pandas as pd
import pytest
import scipy.spatial.distance
from sklearn.metrics.pairwise import cosine_similarity as sklearn_cosine
from sklearn.preprocessing import normalize

from embedkit.selfcheck import is_stand_in, lesson03
from embedkit.similarity import pairwise_cosine, top_k

# --------------------------------------------------------------------------- the model answers


def cosine(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    largest_a, largest_b = np.abs(a).max(), np.abs(b).max()
    if largest_a == 0 or largest_b == 0:
        raise ValueError("cosine similarity is undefined for a zero vector: it has no direction")
    a, b = a / largest_a, b / largest_b
    return float(np.sum(a * b) / (np.sqrt(np.sum(a * a)) * np.sqrt(np.sum(b * b))))


def all_pairs_cosine(X):
    X = np.asarray(X, dtype=np.float64)
    largest = np.abs(X).max(axis=1, keepdims=True)
    if (largest == 0).any():
        raise ValueError(
            f"cosine similarity is undefined for a zero vector: rows {np.flatnonzero(largest[:, 0] == 0)}"
        )
    X = X / largest
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return U @ U.T


def top_neighbours(scores_row, k):
    scores_row = np.asarray(scores_row, dtype=np.float64)
    n = len(scores_row)
    kth = np.partition(scores_row, n - k)[n - k]
    above = np.flatnonzero(scores_row > kth)
    tied = np.flatnonzero(scores_row == kth)[: k - len(above)]
    chosen = np.concatenate([above, tied])
    return chosen[np.argsort(-scores_row[chosen], kind="stable")]


def angular_distance(a, b):
    return float(np.degrees(np.arccos(np.clip(cosine(a, b), -1.0, 1.0))))


def pearson(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return cosine(a - a.mean(), b - b.mean())


TRIANGLE_BREAKER = ([1, 0], [1, 1], [0, 1])


def stub(*args):
    return None


# --------------------------------------------------------------------------- small data

X_SMALL = np.random.default_rng(5).random((12, 6)).astype(np.float32)  # non-negative, like the embeddings


def _no_self(X):
    S_no_self = sklearn_cosine(np.asarray(X, dtype=np.float64))
    np.fill_diagonal(S_no_self, -np.inf)
    return S_no_self


def _not_done(capsys):
    return "Not done yet" in capsys.readouterr().out


def _correct(capsys):
    return "Correct!" in capsys.readouterr().out


# --------------------------------------------------------------------------- cosine


def test_cosine_right_answer_passes(capsys):
    assert lesson03.check_cosine(cosine) is cosine
    assert _correct(capsys)


def test_cosine_stub_gets_the_stand_in_every_time(capsys):
    fallback = lesson03.check_cosine(stub)
    assert is_stand_in(fallback) and _not_done(capsys)
    assert abs(fallback([1, 2], [2, 4]) - 1) < 1e-12
    assert lesson03.check_cosine(fallback) is fallback and _not_done(capsys)  # the cell run twice


def _cosine_via_scipy(a, b):  # calls the library
    return float(1 - scipy.spatial.distance.cosine(a, b))


def _cosine_numpy_scalar(a, b):  # forgets float(...)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not a.any() or not b.any():
        raise ValueError("zero vector")
    a, b = a / np.abs(a).max(), b / np.abs(b).max()
    return np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b))


def _cosine_unscaled(a, b):  # refuses zeros but lets [1e-200, 0] underflow
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not a.any() or not b.any():
        raise ValueError("zero vector")
    return float(a @ b / (np.sqrt(a @ a) * np.sqrt(b @ b)))


def _cosine_max_without_abs(a, b):  # scales by the largest entry, forgetting its sign
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.max() == 0 or b.max() == 0:
        raise ValueError("zero vector")
    a, b = a / a.max(), b / b.max()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _cosine_in_place(a, b):  # right number, but scales the caller's arrays
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not a.any() or not b.any():
        raise ValueError("zero vector")
    a /= np.abs(a).max()
    b /= np.abs(b).max()
    return float(a @ b / (np.sqrt(a @ a) * np.sqrt(b @ b)))


def _cosine_distance(a, b):  # mixes up distance and similarity
    return 1 - cosine(a, b)


def _cosine_divide_by_zero(a, b):  # no check: ZeroDivisionError on a zero vector, from Python floats
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = a / np.abs(a).max(), b / np.abs(b).max()
    return float(a @ b) / float(np.sqrt(a @ a) * np.sqrt(b @ b))


def _cosine_sum_is_zero(a, b):  # takes "entries sum to 0" for a zero vector
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.sum() == 0 or b.sum() == 0:
        raise ValueError("zero vector")
    a, b = a / np.abs(a).max(), b / np.abs(b).max()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(
    "wrong",
    [
        _cosine_sum_is_zero,
        _cosine_via_scipy,
        _cosine_numpy_scalar,
        _cosine_unscaled,
        _cosine_max_without_abs,
        _cosine_distance,
        _cosine_in_place,
    ],
)
def test_cosine_wrong_answers_fail(wrong):
    with np.errstate(all="ignore"), pytest.raises(AssertionError):
        lesson03.check_cosine(wrong)


def test_cosine_max_without_abs_is_told_to_use_abs():
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match="np.abs"):
        lesson03.check_cosine(_cosine_max_without_abs)


def test_cosine_a_zero_vector_that_is_not_refused_fails():
    with np.errstate(all="ignore"), pytest.raises(AssertionError):
        lesson03.check_cosine(_cosine_divide_by_zero)


# --------------------------------------------------------------------------- zero vector, SciPy, PyTorch


def test_zero_vector_right_answer_and_stand_in(capsys):
    assert lesson03.check_zero_vector(cosine) is cosine and _correct(capsys)
    assert is_stand_in(lesson03.check_zero_vector(stub)) and _not_done(capsys)
    fallback = lesson03.check_cosine(stub)
    capsys.readouterr()
    assert lesson03.check_zero_vector(fallback) is fallback and _not_done(capsys)


def _cosine_wrong_message(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not a.any() or not b.any():
        raise ValueError("bad input")
    return cosine(a, b)


@pytest.mark.parametrize("wrong", [_cosine_unscaled, _cosine_wrong_message, _cosine_divide_by_zero])
def test_zero_vector_wrong_answers_fail(wrong):
    with np.errstate(all="ignore"), pytest.raises(AssertionError):
        lesson03.check_zero_vector(wrong)


PAIRS = np.random.default_rng(0).standard_normal((50, 2, 16))


def test_against_libraries_right_answer_and_stand_in(capsys):
    assert lesson03.check_against_libraries(cosine, PAIRS) is cosine and _correct(capsys)
    assert is_stand_in(lesson03.check_against_libraries(stub, PAIRS)) and _not_done(capsys)


def _cosine_float32(a, b):  # computes in float32
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("wrong", [_cosine_distance, _cosine_float32])
def test_against_libraries_wrong_answers_fail(wrong):
    with pytest.raises(AssertionError):
        lesson03.check_against_libraries(wrong, PAIRS)


# --------------------------------------------------------------------------- all pairs


def test_all_pairs_right_answer_passes(capsys):
    assert lesson03.check_all_pairs(all_pairs_cosine, X_SMALL, cosine) is all_pairs_cosine
    assert _correct(capsys)


def test_all_pairs_stub_gets_the_stand_in(capsys):
    fallback = lesson03.check_all_pairs(stub, X_SMALL, cosine)
    assert is_stand_in(fallback) and _not_done(capsys)
    assert np.allclose(fallback(X_SMALL), pairwise_cosine(X_SMALL), atol=1e-6)
    assert lesson03.check_all_pairs(fallback, X_SMALL, cosine) is fallback and _not_done(capsys)


def _all_pairs_by_cosine(X):  # one cosine() per pair
    X = np.asarray(X, dtype=np.float64)
    return np.array([[cosine(a, b) for b in X] for a in X])


def _all_pairs_loop(X):  # a Python loop over the rows, no cosine()
    X = np.asarray(X, dtype=np.float64)
    U = np.empty_like(X)
    for i, x in enumerate(X):
        U[i] = x / np.linalg.norm(x)
    return U @ U.T


def _all_pairs_sklearn_normalize(X):  # calls the library's normalize
    U = normalize(np.asarray(X, dtype=np.float64))
    return U @ U.T


def _all_pairs_max_without_abs(X):
    X = np.asarray(X, dtype=np.float64)
    largest = X.max(axis=1, keepdims=True)
    if (largest == 0).any():
        raise ValueError("zero vector")
    X = X / largest
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return U @ U.T


def _all_pairs_float32(X):  # right, but in float32
    X = np.asarray(X, dtype=np.float32)
    if not np.abs(X).max(axis=1).all():
        raise ValueError("zero vector")
    U = X / np.abs(X).max(axis=1, keepdims=True)
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    return U @ U.T


def _all_pairs_in_place(X):  # right numbers, but scales the caller's rows
    X = np.asarray(X, dtype=np.float64)
    largest = np.abs(X).max(axis=1, keepdims=True)
    if (largest == 0).any():
        raise ValueError("zero vector")
    X /= largest
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X @ X.T


def _all_pairs_no_zero_check(X):  # a zero row quietly gives nan
    X = np.asarray(X, dtype=np.float64)
    X = X / np.abs(X).max(axis=1, keepdims=True)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return U @ U.T


def _all_pairs_sum_is_zero(X):  # takes a row whose entries sum to 0 for a zero row
    X = np.asarray(X, dtype=np.float64)
    if (X.sum(axis=1) == 0).any():
        raise ValueError("zero vector")
    X = X / np.abs(X).max(axis=1, keepdims=True)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return U @ U.T


@pytest.mark.parametrize(
    "wrong",
    [
        _all_pairs_sum_is_zero,
        _all_pairs_by_cosine,
        _all_pairs_loop,
        _all_pairs_sklearn_normalize,
        _all_pairs_max_without_abs,
        _all_pairs_float32,
        _all_pairs_no_zero_check,
        _all_pairs_in_place,
    ],
)
def test_all_pairs_wrong_answers_fail(wrong):
    with np.errstate(all="ignore"), pytest.raises(AssertionError):
        lesson03.check_all_pairs(wrong, X_SMALL, cosine)


def test_loop_and_matrix(capsys):
    m = 5
    S_loop = np.array([[cosine(a, b) for b in X_SMALL[:m]] for a in X_SMALL[:m]])
    lesson03.check_loop_and_matrix(S_loop, all_pairs_cosine(X_SMALL), X_SMALL, cosine, all_pairs_cosine)
    out = capsys.readouterr().out
    assert "largest difference" in out and "Correct!" in out
    fallback = lesson03.check_all_pairs(stub, X_SMALL, cosine)
    capsys.readouterr()
    lesson03.check_loop_and_matrix(S_loop, fallback(X_SMALL), X_SMALL, cosine, fallback)
    assert _not_done(capsys)


def test_loop_and_matrix_wrong_answers_fail():
    m = 5
    S_loop = np.array([[cosine(a, b) for b in X_SMALL[:m]] for a in X_SMALL[:m]])
    raw = X_SMALL.astype(np.float64) @ X_SMALL.T.astype(np.float64)  # forgets to normalise
    with pytest.raises(AssertionError):
        lesson03.check_loop_and_matrix(S_loop, raw, X_SMALL, cosine, all_pairs_cosine)
    with pytest.raises(AssertionError):  # a loop over the cosine distance
        lesson03.check_loop_and_matrix(
            1 - S_loop, all_pairs_cosine(X_SMALL), X_SMALL, cosine, all_pairs_cosine
        )


# --------------------------------------------------------------------------- top neighbours

QUERY, K = 3, 4


def test_top_neighbours_right_answer_passes(capsys):
    S_no_self = _no_self(X_SMALL)
    assert lesson03.check_top_neighbours(top_neighbours, S_no_self, X_SMALL, QUERY, K) is top_neighbours
    assert _correct(capsys)


def test_top_neighbours_stub_gets_the_stand_in(capsys):
    S_no_self = _no_self(X_SMALL)
    fallback = lesson03.check_top_neighbours(stub, S_no_self, X_SMALL, QUERY, K)
    assert is_stand_in(fallback) and _not_done(capsys)
    assert fallback(S_no_self[QUERY], K).tolist() == top_k(X_SMALL, k=K)[0][QUERY].tolist()
    assert lesson03.check_top_neighbours(fallback, S_no_self, X_SMALL, QUERY, K) is fallback and _not_done(
        capsys
    )
    assert top_k(X_SMALL, k=1)[0].shape == (12, 1)  # the package's top_k is whole again


def _top_heapq(scores_row, k):  # another right answer: a heap of k, no sort of the whole row
    scores_row = np.asarray(scores_row, dtype=np.float64)
    return np.array(heapq.nlargest(k, range(len(scores_row)), key=scores_row.__getitem__))


def test_top_neighbours_heap_passes(capsys):
    assert lesson03.check_top_neighbours(_top_heapq, _no_self(X_SMALL), X_SMALL, QUERY, K) is _top_heapq
    assert _correct(capsys)
    assert np.argsort(np.array([2.0, 1.0, 3.0])).tolist() == [1, 0, 2] and sorted([3, 1, 2]) == [1, 2, 3]


def _top_ascending(scores_row, k):  # the lowest scores, not the highest
    row = np.asarray(scores_row, dtype=np.float64)
    chosen = np.argpartition(row, k - 1)[:k]
    return chosen[np.argsort(row[chosen], kind="stable")]


def _top_scores(scores_row, k):  # the scores, not their positions
    row = np.asarray(scores_row, dtype=np.float64)
    return -np.sort(-np.partition(row, len(row) - k)[len(row) - k :])


def _top_skips_first(scores_row, k):  # drops the first place, as if it were the query itself
    return top_neighbours(scores_row, k + 1)[1:]


def _top_by_package(scores_row, k):  # calls the package's top_k
    return top_k(np.asarray(scores_row)[:, None], k=k)[0][0]


def _top_full_argsort(scores_row, k):  # right order, but sorts the whole row to keep k
    return np.argsort(-np.asarray(scores_row, dtype=np.float64), kind="stable")[:k]


def _top_full_method(scores_row, k):  # the same, as a method no spy can watch
    return (-np.asarray(scores_row, dtype=np.float64)).argsort(kind="stable")[:k]


def _top_full_sorted(scores_row, k):  # the same with Python's sorted
    row = np.asarray(scores_row, dtype=np.float64)
    return np.array(sorted(range(len(row)), key=lambda i: -row[i])[:k])


def _top_partition_any_tie(scores_row, k):  # argpartition keeps any of the scores tied at the cut
    row = np.asarray(scores_row, dtype=np.float64)
    chosen = np.argpartition(-row, k - 1)[:k]
    return chosen[np.lexsort((chosen, -row[chosen]))]


def _top_partition_sorted_k(scores_row, k):  # np.argpartition puts the k in sorted order, ties in any order
    return np.argpartition(-np.asarray(scores_row, dtype=np.float64), range(k))[:k]


def _top_partition_stable(scores_row, k):  # any of the tied scores at the cut, then a stable sort
    row = np.asarray(scores_row, dtype=np.float64)
    chosen = np.argpartition(-row, k - 1)[:k]
    return chosen[np.argsort(-row[chosen], kind="stable")]


def _top_partition_method(scores_row, k):  # the same as a method no spy can watch
    return (-np.asarray(scores_row, dtype=np.float64)).argpartition(range(k))[:k]


def _top_partition_every_place(scores_row, k):  # a full sort by np.argpartition
    row = np.asarray(scores_row, dtype=np.float64)
    return np.argpartition(-row, range(len(row)))[:k]


def _top_unique(scores_row, k):  # a full sort hidden in np.unique, then the positions of each score
    row = np.asarray(scores_row, dtype=np.float64)
    return np.concatenate([np.flatnonzero(row == v) for v in np.unique(row)[::-1]])[:k]


def _top_partition_unordered(scores_row, k):  # the right k, not best first
    return np.sort(top_neighbours(scores_row, k))


def _top_pandas_nlargest(scores_row, k):  # pandas does the selection the lesson teaches
    return pd.Series(np.asarray(scores_row, dtype=np.float64)).nlargest(k, keep="first").index.to_numpy()


def _top_argmax_in_place(scores_row, k):  # the best k times, each then set to -inf in the caller's row
    r = np.asarray(scores_row, dtype=np.float64)
    out = []
    for _ in range(k):
        i = int(np.argmax(r))
        out.append(i)
        r[i] = -np.inf
    return np.array(out)


def _top_argmax_copy(scores_row, k):  # the same on a copy: right (a loop of k passes over the row)
    return _top_argmax_in_place(np.array(scores_row, dtype=np.float64), k)


def _top_in_place_on_query_only(scores_row, k):  # right, but writes into the row of S_no_self alone
    row = np.asarray(scores_row, dtype=np.float64)
    if len(row) == len(X_SMALL) and np.isneginf(row).sum() == 1:
        return _top_argmax_in_place(row, k)
    return top_neighbours(row, k)


@pytest.mark.parametrize("wrong", [_top_argmax_in_place, _top_in_place_on_query_only])
def test_top_neighbours_writing_into_its_row_fails(wrong):
    S_no_self = _no_self(X_SMALL)
    before = S_no_self.copy()
    with pytest.raises(AssertionError, match="changed the row it was given"):
        lesson03.check_top_neighbours(wrong, S_no_self, X_SMALL, QUERY, K)
    assert np.array_equal(S_no_self, before)  # the check passed it a copy
    assert top_k(X_SMALL, k=1)[0].shape == (12, 1)  # the package's top_k is whole again


def test_top_neighbours_argmax_on_a_copy_passes(capsys):
    S_no_self = _no_self(X_SMALL)
    assert lesson03.check_top_neighbours(_top_argmax_copy, S_no_self, X_SMALL, QUERY, K) is _top_argmax_copy
    assert _correct(capsys)


@pytest.mark.parametrize(
    "wrong",
    [
        _top_ascending,
        _top_scores,
        _top_skips_first,
        _top_by_package,
        _top_full_argsort,
        _top_full_method,
        _top_full_sorted,
        _top_partition_any_tie,
        _top_partition_unordered,
        _top_pandas_nlargest,
        _top_partition_sorted_k,
        _top_partition_stable,
        _top_partition_method,
        _top_partition_every_place,
        _top_unique,
    ],
)
def test_top_neighbours_wrong_answers_fail(wrong):
    with pytest.raises(AssertionError):
        lesson03.check_top_neighbours(wrong, _no_self(X_SMALL), X_SMALL, QUERY, K)
    assert np.argsort(np.array([2.0, 1.0, 3.0])).tolist() == [1, 0, 2] and sorted([3, 1, 2]) == [1, 2, 3]


# --------------------------------------------------------------------------- exercise 1: angular distance


def test_angular_distance_right_answer_passes(capsys):
    assert lesson03.check_angular_distance(angular_distance, TRIANGLE_BREAKER) is angular_distance
    assert _correct(capsys)
    assert cosine.__name__ == "cosine" and globals()["cosine"] is cosine  # the spies were taken away


def test_angular_distance_not_done(capsys):
    assert lesson03.check_angular_distance(None, None) is None and _not_done(capsys)
    assert lesson03.check_angular_distance(angular_distance, None) is angular_distance
    assert "set triangle_breaker" in capsys.readouterr().out


def _angle_default(a, b, cos=cosine):  # right, with cosine held as a default argument
    return float(np.degrees(np.arccos(np.clip(cos(a, b), -1.0, 1.0))))


def _angle_closure():  # right, with cosine held in a closure
    cos = cosine

    def angle(a, b):
        return float(np.degrees(np.arccos(np.clip(cos(a, b), -1.0, 1.0))))

    return angle


def _angle_default_not_the_modules():  # right, with a function named cosine that is not the module's
    model = globals()["cosine"]

    def cosine(a, b, of=model):
        return of(a, b)

    def angle(a, b, cos=cosine):
        return float(np.degrees(np.arccos(np.clip(cos(a, b), -1.0, 1.0))))

    return angle


def _pearson_default(a, b, *, cos=cosine):  # right, with cosine held as a keyword-only default
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return cos(a - a.mean(), b - b.mean())


@pytest.mark.parametrize(
    "right",
    [_angle_default, _angle_closure(), _angle_default_not_the_modules()],
    ids=["default", "closure", "a default named cosine"],
)
def test_angular_distance_holding_cosine_passes(right, capsys):
    assert lesson03.check_angular_distance(right, TRIANGLE_BREAKER) is right and _correct(capsys)
    if right.__defaults__:  # the spies were taken away
        assert right.__defaults__[0].__name__ == "cosine"
    assert all(c.cell_contents is cosine for c in right.__closure__ or ())


def test_pearson_holding_cosine_passes(capsys):
    assert lesson03.check_pearson(_pearson_default) is _pearson_default and _correct(capsys)
    assert _pearson_default.__kwdefaults__ == {"cos": cosine}


def _angle_default_own_formula(a, b, cos=None):  # a default that is not cosine: still no call of cosine()
    return _angle_own_formula(a, b)


def _angle_radians(a, b):
    return float(np.arccos(np.clip(cosine(a, b), -1.0, 1.0)))


def _angle_unclipped(a, b):  # nan for a cosine a hair past 1
    return float(np.degrees(np.arccos(cosine(a, b))))


def _angle_own_formula(a, b):  # does not call cosine()
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.degrees(np.arccos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))))


def _angle_rounded(a, b):  # rounds instead of clipping: loses tiny angles
    return float(np.degrees(np.arccos(round(cosine(a, b), 6))))


@pytest.mark.parametrize(
    "wrong",
    [_angle_radians, _angle_unclipped, _angle_own_formula, _angle_rounded, _angle_default_own_formula],
)
def test_angular_distance_wrong_answers_fail(wrong):
    with np.errstate(all="ignore"), pytest.raises(AssertionError):
        lesson03.check_angular_distance(wrong, TRIANGLE_BREAKER)


@pytest.mark.parametrize(
    "breaker",
    [
        ([1, 0], [0, 1], [-1, 0]),
        ([1, 0], [2, 0], [3, 0]),
        ([1, 0, 0], [1, 1, 0], [0, 1, 0]),
        ([0, 0], [1, 1], [0, 1]),
    ],
    ids=["180 degrees keeps it", "one direction", "3-D", "a zero vector"],
)
def test_triangle_breakers_that_do_not_break_fail(breaker):
    with pytest.raises(AssertionError):
        lesson03.check_angular_distance(angular_distance, breaker)


# --------------------------------------------------------------------------- exercise 2: Pearson


def test_pearson_right_answer_passes(capsys):
    assert lesson03.check_pearson(pearson) is pearson and _correct(capsys)
    assert lesson03.check_pearson(None) is None and _not_done(capsys)


def _pearson_uncentred(a, b):
    return cosine(a, b)


def _pearson_corrcoef(a, b):  # right number, but no cosine()
    return float(np.corrcoef(a, b)[0, 1])


def _pearson_centres_one(a, b):
    a = np.asarray(a, dtype=np.float64)
    return cosine(a - a.mean(), b)


def _pearson_centres_by_median(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return cosine(a - np.median(a), b - np.median(b))


def _pearson_without_asarray(a, b):  # right for arrays; a list has no .mean()
    return cosine(a - a.mean(), b - b.mean())


def test_pearson_of_lists_without_asarray_fails_with_advice():
    advice = r"pearson\(\[1, 2, 10\], \[1, 3, 2\]\) raised AttributeError.*np\.asarray"
    with pytest.raises(AssertionError, match=advice):
        lesson03.check_pearson(_pearson_without_asarray)


@pytest.mark.parametrize(
    "wrong", [_pearson_uncentred, _pearson_corrcoef, _pearson_centres_one, _pearson_centres_by_median]
)
def test_pearson_wrong_answers_fail(wrong):
    with pytest.raises(AssertionError):
        lesson03.check_pearson(wrong)


# --------------------------------------------------------------------------- exercise 3: train/test pair

MANIFEST = pd.DataFrame(
    {
        "path": ["train/a_original.jpg", "test/a_crop.jpg", "train/b_original.jpg", "test/c_original.jpg",
                 "train/d_original.jpg", "test/e_original.jpg"],
        "split": ["train", "test", "train", "test", "train", "test"],
        "group": ["a", "a", "b", "c", "d", "e"],
        "source": ["one", "one", "one", "three", "four", "five"],
        "label": ["person", "person", "person", "texture", "texture", "animal"],
    }
)  # fmt: skip
# a and its crop score highest; b (another view of a's photo) comes next to the crop; the rest further off.
X_PAIRS = np.array(
    [[1.0, 0.1, 0.0], [0.9, 0.2, 0.0], [0.7, 0.5, 0.1], [0.1, 0.2, 1.0], [0.6, 0.1, 0.7], [0.0, 1.0, 0.3]]
)
S_PAIRS = sklearn_cosine(X_PAIRS)


def _closest_pair():
    # The lesson's Solution, on the small data.
    group_of = MANIFEST["group"].to_numpy()
    train = np.flatnonzero((MANIFEST["split"] == "train").to_numpy())
    test = np.flatnonzero((MANIFEST["split"] == "test").to_numpy())
    block = np.where(
        group_of[train][:, None] != group_of[test][None, :], S_PAIRS[np.ix_(train, test)], -np.inf
    )
    i, j = np.unravel_index(np.argmax(block), block.shape)
    answer = (MANIFEST.loc[train[i], "path"], MANIFEST.loc[test[j], "path"], float(block[i, j]))
    return answer, train[i], test[j]


def test_closest_pair_right_answer_passes(capsys):
    answer, i, j = _closest_pair()
    assert (i, j) == (2, 1)  # the hand-made data are as the comment says
    lowest = 0.99
    lesson03.check_closest_train_test_pair(
        answer, False, "source photo", 0, MANIFEST, X_PAIRS, S_PAIRS, lowest
    )
    assert _correct(capsys)
    lesson03.check_closest_train_test_pair(
        answer, True, "source photo", _flagged(0.5, "group"), MANIFEST, X_PAIRS, S_PAIRS, 0.5
    )
    assert _correct(capsys)


def _flagged(lowest, by):
    # Train x test pairs above `lowest`, from different groups (right) or different source photos (wrong).
    train, test = np.flatnonzero(MANIFEST["split"] == "train"), np.flatnonzero(MANIFEST["split"] == "test")
    of = MANIFEST[by].to_numpy()
    return int(np.sum((of[train][:, None] != of[test][None, :]) & (S_PAIRS[np.ix_(train, test)] > lowest)))


def test_n_flagged_by_source_photo_fails():
    # The closest pair is a view of the same source photo: a filter by source drops it from the count.
    answer, _, _ = _closest_pair()
    assert _flagged(0.5, "source") < _flagged(0.5, "group")
    for wrong in [_flagged(0.5, "source"), _flagged(0.5, "group") - 1, True, float(_flagged(0.5, "group"))]:
        with pytest.raises(AssertionError):
            lesson03.check_closest_train_test_pair(
                answer, True, "source photo", wrong, MANIFEST, X_PAIRS, S_PAIRS, 0.5
            )


def test_closest_pair_not_done(capsys):
    lesson03.check_closest_train_test_pair(None, None, None, None, MANIFEST, X_PAIRS, S_PAIRS, 0.9)
    assert _not_done(capsys)
    answer, _, _ = _closest_pair()
    lesson03.check_closest_train_test_pair(answer, None, None, None, MANIFEST, X_PAIRS, S_PAIRS, 0.9)
    assert "set flags_as_leak, shares, n_flagged too" in capsys.readouterr().out
    lesson03.check_closest_train_test_pair(answer, False, "label", None, MANIFEST, X_PAIRS, S_PAIRS, 0.9)
    assert "set n_flagged too" in capsys.readouterr().out


def _pair(i, j):
    return (MANIFEST.loc[i, "path"], MANIFEST.loc[j, "path"], float(S_PAIRS[i, j]))


@pytest.mark.parametrize(
    "answer, flags_as_leak, shares",
    [
        (_pair(0, 1), False, "source photo"),  # the planted copy itself
        (_pair(1, 2), False, "source photo"),  # (test, train): the wrong order
        (_pair(0, 5), False, "neither"),  # the least similar pair: distance taken for similarity
        (_pair(2, 1), True, "source photo"),  # a score of 0.91 against a lowest copy of 0.99 does not flag it
        (_pair(2, 1), False, "label"),  # they share the source photo, not only the label
        (_pair(2, 1)[:2] + (0.5,), False, "source photo"),  # a score that is not theirs
    ],
    ids=["same group", "test first", "least similar", "flag inverted", "shares wrong", "score wrong"],
)
def test_closest_pair_wrong_answers_fail(answer, flags_as_leak, shares):
    with pytest.raises(AssertionError):
        lesson03.check_closest_train_test_pair(
            answer, flags_as_leak, shares, 0, MANIFEST, X_PAIRS, S_PAIRS, 0.99
        )


@pytest.mark.parametrize(
    "flags_as_leak, shares", [(True, "source photo"), (False, "label"), (True, "neither")]
)
def test_closest_pair_guessed_answers_are_not_named(flags_as_leak, shares):
    # flags_as_leak and shares have few values: a wrong one is refused without saying which.
    with pytest.raises(AssertionError, match="not both right") as refused:
        lesson03.check_closest_train_test_pair(
            _pair(2, 1), flags_as_leak, shares, 0, MANIFEST, X_PAIRS, S_PAIRS, 0.99
        )
    assert "is wrong" not in str(refused.value)


def _top_unstable_sort(scores_row, k):  # the right k, sorted without kind="stable": ties in any order
    scores_row = np.asarray(scores_row, dtype=np.float64)
    n = len(scores_row)
    kth = np.partition(scores_row, n - k)[n - k]
    above = np.flatnonzero(scores_row > kth)
    tied = np.flatnonzero(scores_row == kth)[: k - len(above)]
    chosen = np.concatenate([above, tied])
    return chosen[np.argsort(-scores_row[chosen])]


def test_top_neighbours_unstable_sort_fails_on_every_cpu():
    with pytest.raises(AssertionError, match="of equal scores"):
        lesson03.check_top_neighbours(_top_unstable_sort, _no_self(X_SMALL), X_SMALL, QUERY, K)
    assert np.argsort(np.array([2.0, 1.0, 3.0])).tolist() == [1, 0, 2]  # np.argsort is whole again


def test_failure_messages_show_the_case():
    with pytest.raises(AssertionError, match=r"top_neighbours\(\[0\.2, 0\.9.*gave \[4, 1"):
        lesson03.check_top_neighbours(_top_unstable_sort, _no_self(X_SMALL), X_SMALL, QUERY, K)
    zero_by_sum = r"cosine\(\[1, -1\], \[1, 0\]\) gave"
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match=zero_by_sum):
        lesson03.check_cosine(_cosine_sum_is_zero)
    with pytest.raises(AssertionError, match=r"returned .*a float64"):
        lesson03.check_cosine(_cosine_numpy_scalar)
    with pytest.raises(AssertionError, match=r"the rows \[-1, -2\], \[1, 2\], \[-2, -1\] gave"):
        lesson03.check_all_pairs(_all_pairs_max_without_abs, X_SMALL, cosine)


_numpy_argsort = np.argsort  # kept before the check's spies take its place


def _lucky_argpartition(a, kth, *args, **kwargs):  # a NumPy whose ties happen to fall in position order
    return _numpy_argsort(np.asarray(a), kind="stable")


@pytest.mark.parametrize("wrong", [_top_partition_sorted_k, _top_partition_stable, _top_partition_any_tie])
def test_top_neighbours_argpartition_tie_order_fails_on_every_numpy(wrong, monkeypatch):
    monkeypatch.setattr(np, "argpartition", _lucky_argpartition)
    with pytest.raises(AssertionError, match="lower|lowest"):
        lesson03.check_top_neighbours(wrong, _no_self(X_SMALL), X_SMALL, QUERY, K)


def test_top_neighbours_tie_cases_and_random_ties():
    with pytest.raises(AssertionError, match=r"\[1\.0, 1\.0, 2\.0\], k=2\) gave \[2, 1\], not \[2, 0\]"):
        lesson03.check_top_neighbours(
            _tie_cases_only(_top_partition_sorted_k), _no_self(X_SMALL), X_SMALL, QUERY, K
        )
    with pytest.raises(AssertionError, match=r"of equal scores, the lower position first"):
        wrong = _random_rows_only(_top_partition_sorted_k)
        lesson03.check_top_neighbours(wrong, _no_self(X_SMALL), X_SMALL, QUERY, K)


def _tie_cases_only(wrong):  # right on every case but [1, 1, 2] and [0.5, 0.5, 0.5, 0.9]
    def answer(scores_row, k):
        row = np.asarray(scores_row, dtype=np.float64)
        return wrong(row, k) if row.tolist() in ([1, 1, 2], [0.5, 0.5, 0.5, 0.9]) else top_neighbours(row, k)

    return answer


def _random_rows_only(wrong):  # right on every case but the rows of whole numbers
    def answer(scores_row, k):
        row = np.asarray(scores_row, dtype=np.float64)
        whole = len(row) <= 16 and np.all(row == np.round(row)) and row.tolist() != [1, 1, 2]
        return wrong(row, k) if whole else top_neighbours(row, k)

    return answer


def test_partition_spies_are_valid_partitions_with_ties_reversed():
    rng = np.random.default_rng(0)
    for _ in range(200):
        row = rng.integers(0, 4, int(rng.integers(1, 30))).astype(np.float64)
        kth = rng.integers(0, len(row), int(rng.integers(1, 4)))
        with lesson03._sorts_limited([100]):
            order, values = np.argpartition(row, kth), np.partition(row, kth)
        assert sorted(order.tolist()) == list(range(len(row))) and np.array_equal(values, row[order])
        for (
            i
        ) in kth:  # NumPy's promise: the kth place sorted, nothing larger before it, nothing smaller after
            assert row[order[i]] == np.sort(row)[i]
            assert (row[order[:i]] <= row[order[i]]).all() and (row[order[i + 1 :]] >= row[order[i]]).all()
        for i in range(len(row) - 1):  # equal values: the higher position first
            if row[order[i]] == row[order[i + 1]]:
                assert order[i] > order[i + 1]
    assert np.argpartition(np.array([1.0, 1.0, 2.0]), 1)[1] in (0, 1)  # NumPy's own again
    assert np.unique([2, 1, 2]).tolist() == [1, 2] and heapq.nlargest(2, [1, 3, 2]) == [3, 2]


def test_all_pairs_without_keepdims_names_the_shapes():
    def no_keepdims(X):
        X = np.asarray(X, dtype=np.float64)
        largest = np.abs(X).max(axis=1)
        if (largest == 0).any():
            raise ValueError("zero vector")
        X = X / largest
        U = X / np.linalg.norm(X, axis=1)
        return U @ U.T

    shapes = r"raised ValueError.*\(30, 1\) column, not shape \(30,\): keepdims"
    with pytest.raises(AssertionError, match=shapes):
        lesson03.check_all_pairs(no_keepdims, X_SMALL, cosine)
