"""embedkit.similarity against SciPy, scikit-learn and hand-computed cases."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cosine as scipy_cosine_distance
from sklearn.metrics.pairwise import cosine_similarity as sklearn_cosine

from embedkit import similarity
from embedkit.similarity import (
    DEFAULT_CHUNK_BYTES,
    bfloat16_margin,
    cosine_similarity,
    default_chunk_size,
    near_duplicate_pairs,
    pairwise_cosine,
    top_k,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def planted():
    """3000 random 48-d vectors, with near-duplicates, exact and scaled copies planted.

    Unrelated vectors score below ~0.8; planted copies score above ~0.99, so a
    threshold of 0.9 separates them with a wide margin.
    """
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3000, 48))
    sources = rng.choice(3000, size=300, replace=False)
    targets, sources = sources[:150], sources[150:]
    X[targets] = X[sources] + 0.05 * rng.standard_normal((150, 48))  # near-duplicates
    X[targets[:20]] = X[sources[:20]]  # exact copies (ties)
    X[targets[20:40]] = 3.0 * X[sources[20:40]]  # scaled copies
    X[targets[40:45]] = X[targets[45:50]] + 0.05 * rng.standard_normal((5, 48))  # chains
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def planted_S(planted):
    """The full float64 cosine matrix of ``planted``, by scikit-learn."""
    return sklearn_cosine(planted.astype(np.float64))


@pytest.fixture(scope="module")
def planted_top(planted_S):
    """Reference top-6 (indices, scores) of every planted row, self excluded."""
    S = planted_S.copy()
    np.fill_diagonal(S, -np.inf)
    return reference_top_k(S, 6)


def reference_pairs(S: np.ndarray, threshold: float, square: bool):
    """All (i, j) with S[i, j] >= threshold by brute force on the full matrix."""
    mask = S >= threshold
    if square:
        mask = np.triu(mask, k=1)
    i, j = np.nonzero(mask)
    return np.stack([i, j], axis=1), S[i, j]


def by_pair(pairs, scores):
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], scores[order]


def assert_sorted_by_score_then_pair(pairs, scores):
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -scores))
    np.testing.assert_array_equal(order, np.arange(len(scores)))


def reference_top_k(S: np.ndarray, k: int):
    """Best-first top k per row of a full float64 matrix, ties by lower index."""
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(S, idx, axis=1)


CHUNK_SIZES = [1, 7, 256, 5000, None]

# --------------------------------------------------------------------------- cosine_similarity


def test_cosine_similarity_matches_scipy():
    rng = np.random.default_rng(0)
    for d in (1, 2, 3, 17, 512):
        for _ in range(20):
            a, b = rng.standard_normal(d), rng.standard_normal(d)
            expected = 1.0 - scipy_cosine_distance(a, b)
            assert cosine_similarity(a, b) == pytest.approx(expected, abs=1e-12)


def test_cosine_similarity_hand_computed_cases():
    assert cosine_similarity([1, 1, 1], [1, 1, 1]) == 1.0
    assert cosine_similarity([1, 0], [0, 1]) == 0.0
    assert cosine_similarity([5, 5, 5], [-5, -5, -5]) == -1.0
    assert cosine_similarity([3, 4], [4, 3]) == pytest.approx(24 / 25, abs=1e-15)
    assert cosine_similarity([1, 0], [1, 1]) == pytest.approx(1 / np.sqrt(2), abs=1e-15)


def test_cosine_similarity_returns_python_float():
    assert type(cosine_similarity(np.ones(3, np.float32), np.ones(3, np.float32))) is float


def test_cosine_similarity_is_scale_invariant():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    base = cosine_similarity(a, b)
    for sa, sb in [(3.7, 0.01), (1e-30, 1e30), (1e150, 1e150), (2.0, 0.5)]:
        assert cosine_similarity(sa * a, sb * b) == pytest.approx(base, abs=1e-14)
    assert cosine_similarity(a, 7.3 * a) == pytest.approx(1.0, abs=1e-15)
    assert cosine_similarity(a, 8.0 * a) == 1.0  # power of two: exact


def test_cosine_similarity_identical_vectors_give_exactly_one():
    rng = np.random.default_rng(2)
    for _ in range(300):
        d = int(rng.integers(1, 2048))
        x = rng.standard_normal(d) * 10.0 ** rng.integers(-20, 20)
        assert cosine_similarity(x, x.copy()) == 1.0
        assert cosine_similarity(x, -x) == -1.0
    x32 = rng.standard_normal(512).astype(np.float32)
    assert cosine_similarity(x32, list(map(float, x32))) == 1.0


def test_cosine_similarity_extreme_magnitudes_do_not_overflow():
    assert cosine_similarity([1e200, 1e200], [1e200, 0.0]) == pytest.approx(1 / np.sqrt(2))
    assert cosine_similarity([1e-200, 1e-200], [1e-200, 0.0]) == pytest.approx(1 / np.sqrt(2))


def test_cosine_similarity_int_and_small_int_dtypes():
    # uint8 would overflow if squared in its own dtype (200 * 200 > 255).
    a = np.array([200, 200], dtype=np.uint8)
    b = np.array([200, 0], dtype=np.uint8)
    assert cosine_similarity(a, b) == pytest.approx(1 / np.sqrt(2), abs=1e-15)
    assert cosine_similarity(np.array([3, 4], np.int64), [4, 3]) == pytest.approx(0.96)
    assert cosine_similarity([True, True], [True, False]) == pytest.approx(1 / np.sqrt(2))


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([0, 0, 0], [1, 2, 3], r"zero vector: vector a is all zeros"),
        ([1, 2, 3], [0.0, 0.0, 0.0], r"zero vector: vector b is all zeros"),
        ([1, np.nan, 3], [1, 2, 3], r"vector a contains NaN or infinity"),
        ([1, 2, 3], [1, np.inf, 3], r"vector b contains NaN or infinity"),
        ([], [1, 2], r"a is empty"),
        ([1, 2, 3], [1, 2], r"a has length 3 but b has length 2"),
        ([[1, 2], [3, 4]], [1, 2], r"a must be a 1-D vector, got an array of shape \(2, 2\)"),
    ],
)
def test_cosine_similarity_errors(a, b, message):
    with pytest.raises(ValueError, match=message):
        cosine_similarity(a, b)


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match="must hold real numbers"):
        cosine_similarity(["a", "b"], [1, 2])
    with pytest.raises(TypeError, match="must hold real numbers"):
        pairwise_cosine(np.array([[1 + 2j, 3]]))


# --------------------------------------------------------------------------- pairwise_cosine


def test_pairwise_cosine_matches_sklearn():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((200, 33))
    S = pairwise_cosine(A)
    assert S.shape == (200, 200) and S.dtype == np.float32
    np.testing.assert_allclose(S, sklearn_cosine(A), atol=2e-6)


def test_pairwise_cosine_self_diagonal_exactly_one_and_symmetric():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((300, 64)) * rng.uniform(0.01, 100, size=(300, 1))
    S = pairwise_cosine(A)
    assert np.all(np.diag(S) == 1.0)
    np.testing.assert_array_equal(S, S.T)


def test_pairwise_cosine_rectangular():
    rng = np.random.default_rng(5)
    A, B = rng.standard_normal((40, 10)), rng.standard_normal((70, 10))
    S = pairwise_cosine(A, B)
    assert S.shape == (40, 70)
    np.testing.assert_allclose(S, sklearn_cosine(A, B), atol=2e-6)


def test_pairwise_cosine_stays_within_minus_one_and_one():
    rng = np.random.default_rng(6)
    v = rng.standard_normal(256)
    copies = v + 1e-9 * rng.standard_normal((100, 256))
    A = np.vstack([copies, -copies]).astype(np.float32)
    S = pairwise_cosine(A)
    assert S.max() <= 1.0 and S.min() >= -1.0
    _, scores = near_duplicate_pairs(A, threshold=0.99)
    assert scores.max() <= 1.0
    _, scores = top_k(A, k=3)
    assert scores.max() <= 1.0


def test_pairwise_cosine_accepts_lists_ints_and_torch():
    torch = pytest.importorskip("torch")
    rows = [[3, 4, 0], [4, 3, 0], [0, 0, 2]]
    expected = np.array([[1, 0.96, 0], [0.96, 1, 0], [0, 0, 1]], dtype=np.float32)
    np.testing.assert_allclose(pairwise_cosine(rows), expected, atol=1e-7)
    np.testing.assert_allclose(pairwise_cosine(np.array(rows, np.int16)), expected, atol=1e-7)
    t = torch.tensor(rows, dtype=torch.float32, requires_grad=True)
    np.testing.assert_allclose(pairwise_cosine(t), expected, atol=1e-7)
    np.testing.assert_allclose(pairwise_cosine(t.to(torch.bfloat16)), expected, atol=1e-7)
    np.testing.assert_allclose(pairwise_cosine(t, torch.tensor(rows)), expected, atol=1e-7)
    assert cosine_similarity(t[0], t[1]) == pytest.approx(0.96)


# --------------------------------------------------------------------------- input errors


@pytest.mark.parametrize("function", ["pairwise", "top_k", "pairs"])
@pytest.mark.parametrize(
    ("A", "B", "message"),
    [
        ([[1, 2], [0, 0], [3, 4]], None, r"zero vector: row 1 of A is all zeros"),
        ([[1, 2], [3, 4]], [[1, 1], [0, 0]], r"zero vector: row 1 of B is all zeros"),
        (
            [[0, 0], [1, 2], [0, 0], [0, 0]],
            None,
            r"rows 0, 2, 3 of A \(3 rows\) are all zeros. Remove them",
        ),
        ([[1, 2], [3, 4], [np.nan, 1]], None, r"row 2 of A contains NaN or infinity"),
        ([[1, 2], [3, 4]], [[1, 2], [-np.inf, 1]], r"row 1 of B contains NaN or infinity"),
        (np.empty((0, 8)), None, r"A is empty \(shape \(0, 8\)\)"),
        ([], None, r"A is empty"),
        (
            np.vstack([np.zeros((1, 2)), np.ones((1, 2)), np.zeros((6, 2))]),
            None,
            r"rows 0, 2, 3, 4, 5 and 2 more of A \(7 rows\) are all zeros",
        ),
        (np.full((3, 2), np.nan), None, r"rows 0, 1, 2 of A \(3 rows\) contain NaN"),
        ([[1, 2]], np.empty((0, 2)), r"B is empty"),
        ([[1, 2, 3]], [[1, 2]], r"A has 3 values per row but B has 2"),
        ([1, 2, 3], None, r"A must be a 2-D array .* got a 1-D array .*x\[None, :\]"),
        (np.ones((2, 2, 2)), None, r"A must be a 2-D array .* got a 3-D array"),
        ([[1, 2]], [1, 2], r"B must be a 2-D array"),
        ([[1, 2], [3]], None, r"every vector must have the same length"),
    ],
)
def test_matrix_input_errors(function, A, B, message):
    call = {
        "pairwise": lambda: pairwise_cosine(A, B),
        "top_k": lambda: top_k(A, B, k=1),
        "pairs": lambda: near_duplicate_pairs(A, B, threshold=0.5),
    }[function]
    with pytest.raises(ValueError, match=message):
        call()


def test_top_k_k_errors():
    A = np.eye(5)
    with pytest.raises(
        ValueError,
        match=r"k=5 neighbours requested but A has only 5 rows, "
        r"so each row has 4 other rows; pass k <= 4",
    ):
        top_k(A, k=5)
    with pytest.raises(ValueError, match=r"k=4 neighbours requested but B has only 3 rows"):
        top_k(A, np.eye(5)[:3], k=4)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_k(A, k=0)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        top_k(A, k=1, chunk_size=0)


def test_near_duplicate_threshold_is_required_and_checked():
    A = np.eye(3)
    with pytest.raises(TypeError, match="threshold"):
        near_duplicate_pairs(A)  # no default on purpose
    with pytest.raises(ValueError, match=r"threshold must be in \[-1, 1\].*got 1.5"):
        near_duplicate_pairs(A, threshold=1.5)


# --------------------------------------------------------------------------- top_k


def test_top_k_hand_computed_ties_go_to_lower_index():
    A = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    idx, scores = top_k(A, k=2)
    np.testing.assert_array_equal(idx, [[1, 2], [0, 2], [0, 1], [0, 1]])
    np.testing.assert_array_equal(scores, [[1, 1], [1, 1], [1, 1], [0, 0]])
    assert idx.dtype == np.int64 and scores.dtype == np.float32


@pytest.mark.parametrize("chunk_size", [1, 3, 17, 1000])
def test_top_k_many_exact_ties(chunk_size):
    # Scores are exactly 0 or 1, so every tie is exact; argpartition alone would
    # pick arbitrary members of the tied set.
    rng = np.random.default_rng(8)
    kinds = rng.integers(0, 2, size=120)
    A = np.eye(2)[kinds]
    idx, scores = top_k(A, k=10, chunk_size=chunk_size)
    for i in range(len(A)):
        same = [j for j in range(len(A)) if j != i and kinds[j] == kinds[i]]
        np.testing.assert_array_equal(idx[i], same[:10])
    assert np.all(scores == 1.0)


def test_top_k_never_returns_self(planted):
    idx, _ = top_k(planted, k=5, chunk_size=100)
    assert not np.any(idx == np.arange(len(planted))[:, None])


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_top_k_chunked_matches_brute_force(planted, planted_S, planted_top, chunk_size):
    k = 5
    full_idx, full_scores = planted_top
    ref_idx, ref_scores = full_idx[:, :k], full_scores[:, :k]
    idx, scores = top_k(planted, k=k, chunk_size=chunk_size)
    assert idx.shape == scores.shape == (len(planted), k)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    # The returned neighbours really have the top scores (rows with near-ties may
    # legitimately order them differently in float32)...
    np.testing.assert_allclose(np.take_along_axis(planted_S, idx, axis=1), ref_scores, atol=1e-6)
    # ...and where the reference scores are clearly apart, the indices are identical.
    clear = (np.abs(np.diff(full_scores, axis=1)) > 1e-5).all(axis=1)
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(idx[clear], ref_idx[clear])
    # Best first.
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("chunk_size", [1, 13, 5000, None])
def test_top_k_rectangular_matches_brute_force(planted, chunk_size):
    A, B = planted[:500], planted[500:]
    S = sklearn_cosine(A.astype(np.float64), B.astype(np.float64))
    ref_idx, ref_scores = reference_top_k(S, 4)
    idx, scores = top_k(A, B, k=4, chunk_size=chunk_size)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(S, idx, axis=1), ref_scores, atol=1e-6)


def test_top_k_same_result_for_every_chunk_size(planted):
    k = 3
    base_idx, base_scores = top_k(planted, k=k + 1, chunk_size=None)
    # Rows whose k+1 best scores are clearly apart cannot reorder through rounding.
    clear = (np.abs(np.diff(base_scores, axis=1)) > 1e-5).all(axis=1)
    assert clear.mean() > 0.9
    for chunk_size in CHUNK_SIZES:
        idx, scores = top_k(planted, k=k, chunk_size=chunk_size)
        np.testing.assert_allclose(scores, base_scores[:, :k], atol=1e-6)
        np.testing.assert_array_equal(idx[clear], base_idx[clear, :k])


# --------------------------------------------------------------------------- near_duplicate_pairs


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_near_duplicate_pairs_chunked_matches_brute_force(planted, planted_S, chunk_size):
    threshold = 0.9
    S = planted_S
    assert not np.any(np.abs(np.triu(S, k=1) - threshold) < 1e-3)  # no borderline pairs
    ref_pairs, ref_scores = reference_pairs(S, threshold, square=True)
    assert len(ref_pairs) >= 150  # the planted ones are all there

    pairs, scores = near_duplicate_pairs(planted, threshold=threshold, chunk_size=chunk_size)
    assert pairs.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert_sorted_by_score_then_pair(pairs, scores)
    got_pairs, got_scores = by_pair(pairs, scores)
    np.testing.assert_array_equal(got_pairs, ref_pairs)
    np.testing.assert_allclose(got_scores, ref_scores, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 64, 5000, None])
def test_near_duplicate_pairs_rectangular(planted, chunk_size):
    A, B = planted[:1000], planted[1000:]
    S = sklearn_cosine(A.astype(np.float64), B.astype(np.float64))
    ref_pairs, ref_scores = reference_pairs(S, 0.9, square=False)
    assert len(ref_pairs) > 0
    pairs, scores = near_duplicate_pairs(A, B, threshold=0.9, chunk_size=chunk_size)
    assert_sorted_by_score_then_pair(pairs, scores)
    got_pairs, got_scores = by_pair(pairs, scores)
    np.testing.assert_array_equal(got_pairs, ref_pairs)
    np.testing.assert_allclose(got_scores, ref_scores, atol=1e-6)


def test_near_duplicate_pairs_hand_computed():
    A = [[1, 0], [2, 0], [0, 1], [1, 1], [-1, 0]]
    pairs, scores = near_duplicate_pairs(A, threshold=0.7)
    # (0,1): 1, (0,3) and (1,3): 1/sqrt(2) = 0.707, (2,3): 0.707
    np.testing.assert_array_equal(pairs, [[0, 1], [0, 3], [1, 3], [2, 3]])
    np.testing.assert_allclose(scores, [1, 0.70710677, 0.70710677, 0.70710677], rtol=1e-6)
    pairs, scores = near_duplicate_pairs(A, [[1, 0]], threshold=0.99)
    np.testing.assert_array_equal(pairs, [[0, 0], [1, 0]])


def test_near_duplicate_pairs_empty_result_has_the_right_shapes():
    pairs, scores = near_duplicate_pairs(np.eye(4), threshold=0.5)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64
    assert scores.shape == (0,) and scores.dtype == np.float32


def test_default_chunk_size_keeps_a_block_near_the_budget():
    for m in (1, 10, 1000, 10**6, 10**9):
        rows = default_chunk_size(m)
        assert rows >= 1
        assert rows == 1 or rows * m * 4 <= DEFAULT_CHUNK_BYTES
    assert default_chunk_size(1000) == DEFAULT_CHUNK_BYTES // 4000


def test_top_k_never_returns_the_row_itself_even_beside_opposite_vectors():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    indices, scores = top_k(X, k=2)
    np.testing.assert_array_equal(indices, [[2, 1], [2, 0], [0, 1]])
    np.testing.assert_allclose(scores, [[0, -1], [0, -1], [0, 0]], atol=1e-7)


# --------------------------------------------------------------------------- bfloat16 candidates


@pytest.fixture
def bf16_native(monkeypatch):
    """Take the bfloat16 path even where the CPU emulates it (slower, same arithmetic)."""
    monkeypatch.setattr(similarity, "bfloat16_is_native", lambda: True)


def pair_at(rng, d: int, cosine: float) -> np.ndarray:
    """Two float64 unit vectors whose cosine is exactly ``cosine`` (to float64 rounding)."""
    a = rng.standard_normal(d)
    a /= np.linalg.norm(a)
    b = rng.standard_normal(d)
    b -= (b @ a) * a
    b /= np.linalg.norm(b)
    return np.stack([a, cosine * a + np.sqrt(1 - cosine**2) * b])


@pytest.fixture(scope="module")
def borderline():
    """400 random 256-d rows plus pairs at 0.9 ± 1e-5, ± 1e-3 and ± 5e-3: closer to the
    threshold than bfloat16 can tell apart (its error is up to ~0.01), further than float32 can't."""
    rng = np.random.default_rng(11)
    offsets = [-5e-3, -1e-3, -1e-5, 1e-5, 1e-3, 5e-3, 0.05, 0.099]
    rows = [rng.standard_normal((400, 256))] + [pair_at(rng, 256, 0.9 + o) for o in offsets]
    X = np.vstack(rows)
    return X[rng.permutation(len(X))].astype(np.float32)


def test_bfloat16_margin_bounds_the_real_error():
    rng = np.random.default_rng(12)
    for d in (8, 64, 512, 1280):
        assert 3 * 2**-8 < bfloat16_margin(d) < 3 * 2**-8 + 4 * 2**-16 + 2 * d * 2**-23
        # Rows of equal magnitude (the worst case for Cauchy-Schwarz) and random ones.
        X = np.vstack([np.sign(rng.standard_normal((200, d))), rng.standard_normal((200, d))])
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        X32 = X.astype(np.float32)
        bf = torch.from_numpy(X32).bfloat16()
        error = np.abs((bf @ bf.T).double().numpy() - X32.astype(np.float64) @ X32.T.astype(np.float64))
        assert error.max() < bfloat16_margin(d)
        assert error.max() > bfloat16_margin(d) / 50  # the margin is not wildly loose


@pytest.mark.parametrize("chunk_size", [1, 50, None])
def test_bfloat16_pairs_equal_the_float32_path_near_the_threshold(borderline, bf16_native, chunk_size):
    exact = sklearn_cosine(borderline.astype(np.float64))
    ref_pairs, _ = reference_pairs(exact, 0.9, square=True)
    assert len(ref_pairs) == 5  # + 1e-5, + 1e-3, + 5e-3, + 0.05, + 0.099
    f32 = near_duplicate_pairs(borderline, threshold=0.9, precision="float32", chunk_size=chunk_size)
    b16 = near_duplicate_pairs(borderline, threshold=0.9, precision="bfloat16", chunk_size=chunk_size)
    for pairs, scores in (f32, b16):
        got_pairs, got_scores = by_pair(pairs, scores)
        np.testing.assert_array_equal(got_pairs, ref_pairs)
        np.testing.assert_allclose(got_scores, exact[ref_pairs[:, 0], ref_pairs[:, 1]], atol=1e-6)
    # Rectangular, B given.
    A, B = borderline[:200], borderline[200:]
    f32 = near_duplicate_pairs(A, B, threshold=0.9, precision="float32")
    b16 = near_duplicate_pairs(A, B, threshold=0.9, precision="bfloat16")
    np.testing.assert_array_equal(by_pair(*f32)[0], by_pair(*b16)[0])


def test_bfloat16_pairs_on_planted_data(planted, planted_S, bf16_native):
    ref_pairs, ref_scores = reference_pairs(planted_S, 0.9, square=True)
    pairs, scores = near_duplicate_pairs(planted, threshold=0.9, precision="bfloat16", chunk_size=256)
    assert_sorted_by_score_then_pair(pairs, scores)
    got_pairs, got_scores = by_pair(pairs, scores)
    np.testing.assert_array_equal(got_pairs, ref_pairs)
    np.testing.assert_allclose(got_scores, ref_scores, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [7, 256, None])
def test_bfloat16_top_k_equals_the_float32_path(planted, planted_S, planted_top, bf16_native, chunk_size):
    k = 5
    ref_idx, ref_scores = planted_top[0][:, :k], planted_top[1][:, :k]
    idx, scores = top_k(planted, k=k, chunk_size=chunk_size, precision="bfloat16")
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(planted_S, idx, axis=1), ref_scores, atol=1e-6)
    clear = (np.abs(np.diff(planted_top[1], axis=1)) > 1e-5).all(axis=1)
    np.testing.assert_array_equal(idx[clear], ref_idx[clear])
    f32_idx, _ = top_k(planted, k=k, chunk_size=chunk_size, precision="float32")
    np.testing.assert_array_equal(idx[clear], f32_idx[clear])


def test_bfloat16_top_k_settles_rows_with_a_clear_gap_and_redoes_the_rest():
    """Rows whose k-th neighbour stands clear are settled by bfloat16 candidates; crowded rows
    (non-negative random 256-d vectors: cosines 0.64 ± 0.03) are redone; both give float32's result."""
    rng = np.random.default_rng(13)
    base = rng.standard_normal((50, 64))
    clustered = np.vstack([base + 0.01 * rng.standard_normal((50, 64)) for _ in range(3)])
    crowded = np.abs(rng.standard_normal((300, 256)))
    for X, settled in ((clustered, True), (crowded, False)):
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        rows, searched = Xn.astype(np.float32), np.ascontiguousarray(Xn.T, dtype=np.float32)
        idx, scores, redone = similarity._top_k_block_bfloat16(
            rows,
            torch.from_numpy(rows).bfloat16(),
            searched,
            torch.from_numpy(searched).bfloat16(),
            rows,
            2,
            np.arange(len(rows)),
            bfloat16_margin(Xn.shape[1]),
        )
        assert (redone == 0) if settled else (redone > 0)
        ref_idx, ref_scores = top_k(X, k=2, precision="float32")
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-6)


def test_bfloat16_without_native_support_warns_and_uses_float32(planted, monkeypatch):
    monkeypatch.setattr(similarity, "bfloat16_is_native", lambda: False)
    with pytest.warns(RuntimeWarning, match="no native bfloat16"):
        got = near_duplicate_pairs(planted, threshold=0.9, precision="bfloat16")
    want = near_duplicate_pairs(planted, threshold=0.9, precision="float32")
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision must be one of"):
        top_k(np.eye(3), k=1, precision="float16")
    with pytest.raises(ValueError, match="precision must be one of"):
        near_duplicate_pairs(np.eye(3), threshold=0.5, precision="int8")
