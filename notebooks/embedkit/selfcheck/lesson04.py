"""Self-checks of lesson 04, "What embeddings capture" (see the package docstring for how a check behaves).

Each ``check_*`` takes the learner's answer and the lesson's data as arguments. While the learner's
code runs, the library functions that would answer the exercise are switched off, and so is every
stand-in of this module: a stand-in kept under another name is not taken for an answer.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import sklearn.decomposition
import sklearn.metrics
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score, recall_score
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

import embedkit.maps
import embedkit.retrieval
from embedkit.selfcheck import is_stand_in, library_names, not_done, not_written, stand_in, switched_off

__all__ = [
    "check_pca",
    "check_overlap",
    "check_overlay_scores",
    "check_prediction",
    "check_ap",
    "check_recall",
    "check_recall_on_hard_task",
    "check_size_explains",
    "check_exercise_1",
    "check_exercise_2",
]

LIBRARIES = ("sklearn", "embedkit")
# The scoring functions a retrieval exercise could call instead of being written.
SCORING = [
    (sklearn.metrics, name)
    for name in (
        "average_precision_score",
        "recall_score",
        "top_k_accuracy_score",
        "precision_recall_fscore_support",
        "multilabel_confusion_matrix",
    )
]
SCORING += [
    (embedkit.retrieval, name)
    for name in ("average_precision", "recall_at_k", "first_relevant_rank", "evaluate_retrieval")
]
# The bodies of this module's stand-ins: switched off while the learner's code runs.
STAND_IN_BODIES = [
    "_pca_reference",
    "_overlap_reference",
    "_overlay_reference",
    "_ap_reference",
    "_recall_reference",
]


def _refuse_libraries(function: Callable, name: str, advice: str) -> None:
    used = library_names(function, LIBRARIES)
    assert not used, f"{name} uses {used}: {advice}"


@contextlib.contextmanager
def _learner_runs(targets, message: str) -> Iterator[None]:
    """While the block runs: ``targets`` refuse with ``message``; so does every stand-in of this module."""
    here = sys.modules[__name__]
    with (
        switched_off(targets, message),
        switched_off(
            [(here, body) for body in STAND_IN_BODIES],
            "that calls a stand-in of the check: write it yourself",
        ),
    ):
        yield


def _is_none(answer) -> bool:
    """A stub's answer: None, or a tuple whose first item is None."""
    return answer is None or (isinstance(answer, tuple) and len(answer) > 0 and answer[0] is None)


# --- PCA ------------------------------------------------------------------------------------------


def _pca_reference(points, axes):
    fitted = PCA(n_components=axes, svd_solver="full").fit(points)
    return fitted.transform(points), fitted.explained_variance_ratio_


@stand_in
def stand_in_pca(points, axes):
    """scikit-learn's PCA, in the place of ``pca_by_hand`` until it is written."""
    return _pca_reference(points, axes)


def check_pca(pca_by_hand: Callable, U: np.ndarray, X: np.ndarray) -> Callable:
    """Your PCA against scikit-learn's on the unit vectors (10 axes), the raw vectors (2 axes) and off-centre
    random points (3 axes), coordinates up to the sign of each axis, and the shares of the spread."""
    if is_stand_in(pca_by_hand) or _is_none(pca_by_hand(np.eye(3), 1)):
        not_done("pca_by_hand", "scikit-learn's PCA (the fallback)")
        return stand_in_pca
    probe = pca_by_hand(np.eye(3), 1)
    assert isinstance(probe, tuple) and len(probe) == 2 and probe[1] is not None, (
        "return two things: the coordinates and the shares"
    )
    _refuse_libraries(pca_by_hand, "pca_by_hand", "write it with NumPy")
    off_centre = np.random.default_rng(2).standard_normal((50, 6)) * [5, 3, 2, 1, 1, 0.5] + 10
    cases = [(U, 10), (X, 2), (off_centre, 3)]
    fitted = [PCA(n_components=axes, svd_solver="full").fit(points) for points, axes in cases]
    message = "write PCA yourself with np.linalg.svd, not with scikit-learn's PCA or project"
    with _learner_runs([(sklearn.decomposition, "PCA"), (embedkit.maps, "project")], message):
        yours = [pca_by_hand(points, axes) for points, axes in cases]
    for (points, axes), reference_fit, (coords, shares) in zip(cases, fitted, yours, strict=True):
        reference = reference_fit.transform(points)
        assert np.shape(coords) == reference.shape, (
            f"coordinates: expected shape {reference.shape}, got {np.shape(coords)}"
        )
        assert np.abs(coords).max(axis=0).min() > 0, (
            "an axis of all zeros: project the centred points onto the axes"
        )
        flip = np.where(
            np.sum(coords * reference, axis=0) < 0, -1.0, 1.0
        )  # +1 or -1 per axis, never per point
        assert np.allclose(coords, reference * flip, atol=1e-8), (
            "the coordinates differ from scikit-learn's: centred first?"
        )
        assert np.shape(shares) == (axes,), (
            f"shares: one per kept axis, shape ({axes},), got {np.shape(shares)}"
        )
        assert np.allclose(shares, reference_fit.explained_variance_ratio_, atol=1e-10), (
            "the shares differ from scikit-learn's: s squared, over the sum of s squared over all axes"
        )
    print("Correct!")
    return pca_by_hand


# --- neighbour overlap ----------------------------------------------------------------------------


def _overlap_reference(full, on_map, k):
    return embedkit.maps.neighbour_overlap(full, on_map, k)


@stand_in
def stand_in_overlap(full, on_map, k):
    """embedkit.maps.neighbour_overlap, in the place of ``overlap_by_hand`` until it is written."""
    return _overlap_reference(full, on_map, k)


def _swappable(points: np.ndarray, k: int) -> np.ndarray:
    """Per row: how many of its k nearest could be exchanged for another row at exactly the k-th distance."""
    dist = cdist(points, points)
    np.fill_diagonal(dist, np.inf)
    kth = np.sort(dist, axis=1)[:, k - 1 : k]
    tied = np.isclose(dist, kth, rtol=1e-9, atol=1e-12)
    places = k - np.sum(~tied & (dist < kth), axis=1)  # the places among the k that the tied rows fill
    return np.minimum(places, tied.sum(axis=1) - places)


def check_overlap(
    overlap_by_hand: Callable, U: np.ndarray, xy_pca: np.ndarray, xy_tsne: np.ndarray
) -> Callable:
    """Your overlap against embedkit.maps.neighbour_overlap on both maps for k = 10 and 3, and a map against
    itself; where a tie at the k-th distance lets neighbours swap, an image may differ by 1/k per swap."""
    if not_written(overlap_by_hand, U[:5], xy_tsne[:5], 2):
        not_done("overlap_by_hand", "embedkit.maps.neighbour_overlap (the fallback)")
        return stand_in_overlap
    _refuse_libraries(overlap_by_hand, "overlap_by_hand", "use knn")
    n = len(U)
    cases = [(xy_pca, 10), (xy_tsne, 10), (xy_pca, 3)]
    expected = [embedkit.maps.neighbour_overlap(U, xy, k) for xy, k in cases]
    message = "write the overlap yourself from knn, not with embedkit.maps"
    with _learner_runs(
        [(embedkit.maps, "neighbour_overlap"), (embedkit.maps, "nearest_neighbours")], message
    ):
        yours = [overlap_by_hand(U, xy, k) for xy, k in cases]
        itself = overlap_by_hand(xy_tsne, xy_tsne, 10)
    assert np.shape(itself) == (n,), f"one share per image: expected shape {(n,)}, got {np.shape(itself)}"
    assert np.allclose(itself, 1), "a map against itself keeps every neighbour: 1 for every image"
    for (xy, k), mine, theirs in zip(cases, yours, expected, strict=True):
        assert np.shape(mine) == (n,), f"one share per image: expected shape {(n,)}, got {np.shape(mine)}"
        slack = (_swappable(U, k) + _swappable(xy, k)) / k
        assert np.all(np.abs(np.asarray(mine) - theirs) <= slack + 1e-9), (
            f"k={k}: differs from the package; per image, the neighbours found both ways (in any order), "
            "over k"
        )
    print("Correct!")
    return overlap_by_hand


# --- none, one or two overlays --------------------------------------------------------------------


def _overlay_reference(S, original_of, a, b):
    # One-hot rows pick each pair out of whole matrices: another way to read S than indexing it.
    A, B, R = (np.eye(len(S))[rows] for rows in (a, b, original_of))
    return tuple(np.einsum("pi,ij,pj->p", A, M, B) for M in (S, (S @ R.T + R @ S) / 2, R @ S @ R.T))


@stand_in
def stand_in_overlay_scores(S, original_of, a, b):
    """The scores read off whole matrices, in the place of ``overlay_scores`` until it is written."""
    return _overlay_reference(S, original_of, a, b)


def _watermarked_pairs(watermarked: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of watermarked images from two photo groups, as two arrays of rows."""
    wm = np.flatnonzero(watermarked)
    w1, w2 = (wm[i] for i in np.triu_indices(len(wm), k=1))
    keep = groups[w1] != groups[w2]
    return w1[keep], w2[keep]


def check_overlay_scores(overlay_scores: Callable, S, original_of, watermarked, groups) -> Callable:
    """Your overlay_scores on a score matrix worked out by hand (rows 0 and 1: the originals of photos A
    and B; rows 2 and 3: their watermarked copies), then on every pair of watermarked copies of two photos,
    against the scores read off S another way (one-hot rows that pick each pair out of whole matrices)."""
    toy_S = np.array([[1.0, 0.1, 0.8, 0.3], [0.1, 1.0, 0.2, 0.7], [0.8, 0.2, 1.0, 0.5], [0.3, 0.7, 0.5, 1.0]])
    toy = (toy_S, np.array([0, 1, 0, 1]), np.array([2, 3]), np.array([3, 2]))
    w1, w2 = _watermarked_pairs(watermarked, groups)
    expected = _overlay_reference(S, original_of, w1, w2)
    if is_stand_in(overlay_scores):
        probe = None
    else:
        with _learner_runs([], "overlay_scores calls the stand-in: index S yourself"):
            probe, real = overlay_scores(*toy), overlay_scores(S, original_of, w1, w2)
    if _is_none(probe):
        not_done("overlay_scores", "a stand-in (the fallback)")
        return stand_in_overlay_scores
    _refuse_libraries(overlay_scores, "overlay_scores", "index S yourself")
    assert len(probe) == 3, "return three arrays: two overlays, one overlay, none"
    for name, got, want, why in zip(
        ["two overlays", "one overlay", "none"],
        probe,
        [[0.5, 0.5], [0.25, 0.25], [0.1, 0.1]],
        [
            "the two copies with each other, S[2, 3]",
            "copy 2 against original 1 (0.2) and copy 3 against original 0 (0.3), averaged",
            "the two originals, S[0, 1]",
        ],
        strict=True,
    ):
        assert np.shape(got) == (2,), f"{name}: one score per pair, shape (2,), got {np.shape(got)}"
        assert np.allclose(got, want), f"{name} on the toy matrix: expected {want[0]} ({why}), got {got}"
    assert len(real) == 3, "return three arrays: two overlays, one overlay, none"
    for name, got, want in zip(["two overlays", "one overlay", "none"], real, expected, strict=True):
        assert np.shape(got) == np.shape(want) and np.allclose(got, want), (
            f"{name}: differs from the expected scores on the real pairs"
        )
    print("Correct!")
    return overlay_scores


# What the course's build run printed on EfficientNet-Lite0 (the offline default), quoted in the lesson's
# "after you predict" block: the medians none, one overlay, two overlays, and the shares of pairs of two
# watermarked copies and of all stranger pairs that score above the lowest copy pair.
BUILD_RUN_LITE0 = (0.166, 0.196, 0.284, 0.091, 0.020)


def check_prediction(prediction, step_one: float, step_two: float, network=None, quoted=None) -> None:
    """Your prediction ("a" or "b") against the step that the medians make larger on this network. A
    prediction is a guess, not an answer: one that did not hold is said so, not refused. On
    EfficientNet-Lite0, ``quoted`` (the five numbers of ``BUILD_RUN_LITE0``, from this run) must match what
    the lesson quotes."""
    if prediction is None:  # nothing about the steps until the guess is made
        print('Not done yet: set prediction ("a" or "b") in the cell above, then run the medians cell again')
        return
    bigger = "b" if step_two > step_one else "a"
    steps = f"none -> one {step_one:+.3f}, one -> two {step_two:+.3f}: " + (
        "sharing the overlay adds more than the first overlay does"
        if bigger == "b"
        else "the first overlay adds at least as much as sharing it"
    )
    assert prediction in ("a", "b"), f'prediction = {prediction!r}: set it to "a" or "b"'
    if network == "efficientnet_lite0" and quoted is not None:
        assert np.allclose(quoted, BUILD_RUN_LITE0, atol=0.003), (
            f"this run's numbers {np.round(quoted, 3)} differ from the build run's {BUILD_RUN_LITE0}, which "
            "the lesson quotes for EfficientNet-Lite0: the quote is out of date"
        )
    print(
        (
            "Correct! Your prediction held: "
            if prediction == bigger
            else f"Your prediction {prediction!r} did not hold on this network: "
        )
        + steps
    )


# --- average precision and recall@k ---------------------------------------------------------------


def _ap_reference(scores, relevant):
    return float(average_precision_score(relevant, scores))


def _recall_reference(scores, relevant, k):
    return float(
        relevant.any() and embedkit.retrieval.recall_at_k(scores[None], relevant[None], k, exclude_self=False)
    )


@stand_in
def stand_in_ap(scores, relevant):
    """scikit-learn's average_precision_score, in the place of ``ap_by_hand`` until it is written."""
    return _ap_reference(scores, relevant)


@stand_in
def stand_in_recall(scores, relevant, k):
    """embedkit's recall_at_k, in the place of ``recall_by_hand`` until it is written."""
    return _recall_reference(scores, relevant, k)


AP_CASES = [  # scores, relevant, AP, what the case tests
    ([0.9, 0.8, 0.7, 0.6], [True, False, True, False], (1 / 1 + 2 / 3) / 2, "relevant at places 1 and 3"),
    ([0.9, 0.8, 0.7], [False, False, True], 1 / 3, "the one relevant item last"),
    ([0.1, 0.8, 0.3], [True, False, False], 1 / 3, "sort by score, best first"),
    ([0.2, 0.9, 0.5, 0.4], [False, True, True, False], 1.0, "every relevant item before the others"),
]
RECALL_CASES = [  # scores, relevant, k, recall, what the case tests
    ([0.9, 0.8, 0.7], [False, False, True], 2, 0.0, "the one relevant item third, k=2"),
    ([0.9, 0.8, 0.7], [False, False, True], 3, 1.0, "the one relevant item third, k=3"),
    ([0.1, 0.8, 0.3], [True, False, False], 2, 0.0, "sort by score, best first"),
    ([0.9, 0.8, 0.1], [True, True, False], 2, 1.0, "two relevant items in the top 2: still 1, not 2"),
    ([0.5, 0.4], [False, False], 2, 0.0, "nothing relevant"),
]


def _random_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    cases = []
    for _ in range(100):
        scores, relevant = rng.random(40), rng.random(40) < 0.2
        relevant[rng.integers(40)] = True  # at least one relevant item
        cases.append((scores, relevant))
    return cases


def _photo_cases(S, same_photo) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every query of the real data: its scores and relevance (same photo), itself left out."""
    others = ~np.eye(len(S), dtype=bool)
    return [(S[i, others[i]], same_photo[i, others[i]]) for i in range(len(S))]


def _label_cases(S, same_photo, labels) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every query of the real data: same label is relevant, its own photo group left out."""
    outside = ~same_photo & ~np.eye(len(S), dtype=bool)
    return [(S[i, outside[i]], labels[outside[i]] == labels[i]) for i in range(len(S))]


def check_ap(ap_by_hand: Callable, S, same_photo) -> Callable:
    """Your average precision on cases worked out by hand, on random scores and on every query of the real
    data, against scikit-learn's average_precision_score (switched off, with the package's, while yours
    runs)."""
    if not_written(ap_by_hand, np.array([0.9, 0.1]), np.array([True, False])):
        not_done("ap_by_hand", "scikit-learn's average_precision_score (the fallback)")
        return stand_in_ap
    _refuse_libraries(ap_by_hand, "ap_by_hand", "write it with NumPy only (argsort, cumsum)")
    cases = _random_cases() + _photo_cases(S, same_photo)
    expected = [_ap_reference(scores, relevant) for scores, relevant in cases]
    message = "write it yourself with NumPy, not with scikit-learn or embedkit.retrieval"
    with _learner_runs(SCORING, message):
        for scores, relevant, want, case in AP_CASES:
            hand = ap_by_hand(np.array(scores), np.array(relevant))
            assert abs(hand - want) < 1e-12, f"ap_by_hand, {case}: expected {want:.4f}, got {hand}"
        for (scores, relevant), want in zip(cases, expected, strict=True):
            assert abs(ap_by_hand(scores, relevant) - want) < 1e-9, "ap_by_hand differs from scikit-learn"
    print("Correct! ap_by_hand")
    return ap_by_hand


def check_recall(recall_by_hand: Callable, S, same_photo, labels) -> Callable:
    """Your recall@k (at least one relevant item in the top k) on cases worked out by hand, on random scores
    and on every query of the real data at k = 1, 3 and 10, against embedkit's recall_at_k (switched off, with
    scikit-learn's scoring, while yours runs)."""
    if not_written(recall_by_hand, np.array([0.9, 0.1]), np.array([True, False]), 1):
        not_done("recall_by_hand", "embedkit's recall_at_k (the fallback)")
        return stand_in_recall
    _refuse_libraries(recall_by_hand, "recall_by_hand", "write it with NumPy only (argsort, cumsum)")
    cases = _random_cases() + _photo_cases(S, same_photo) + _label_cases(S, same_photo, labels)
    expected = [[_recall_reference(scores, relevant, k) for k in (1, 3, 10)] for scores, relevant in cases]
    message = "write it yourself with NumPy, not with scikit-learn or embedkit.retrieval"
    with _learner_runs(SCORING, message):
        for scores, relevant, k, want, case in RECALL_CASES:
            hand = recall_by_hand(np.array(scores), np.array(relevant), k)
            assert hand == want, f"recall_by_hand, {case}: expected {want}, got {hand}"
        for (scores, relevant), want in zip(cases, expected, strict=True):
            got = [recall_by_hand(scores, relevant, k) for k in (1, 3, 10)]
            assert got == want, (
                f"recall_by_hand differs from recall_at_k at k = 1, 3, 10: {got}, expected {want}"
            )
    print("Correct! recall_by_hand")
    return recall_by_hand


def check_recall_on_hard_task(recall_by_hand: Callable, S, groups, labels) -> None:
    """embedkit's recall@k against a case worked out by hand and against a plain NumPy ranking on the hard
    task (same label, own photo group out), where recall is not 1; and your recall_by_hand, once written."""
    n = len(S)
    is_self = np.eye(n, dtype=bool)
    same_photo = embedkit.retrieval.relevance_from_keys(groups)
    hard_scores = np.where(same_photo, -np.inf, S)  # own group out of the ranking
    hard_relevant = embedkit.retrieval.relevance_from_keys(labels) & ~same_photo
    asked = hard_relevant.any(axis=1)  # queries with something to find
    # Worked out by hand: 4 items, each also a query (the diagonal is the query itself). The relevant item
    # of query 0 ranks 2nd, of query 1 3rd, of query 3 1st; query 2 has none and is skipped. So recall@1,
    # @2, @3 = 1/3, 2/3, 1.
    toy_scores = np.array([[1, 0.9, 0.5, 0.1], [0.2, 1, 0.8, 0.3], [0.7, 0.6, 1, 0.1], [0.4, 0.9, 0.95, 1]])
    toy_relevant = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]], dtype=bool)
    toy = embedkit.retrieval.evaluate_retrieval(toy_scores, toy_relevant, ks=(1, 2, 3))
    assert (
        np.allclose([toy.recall[1], toy.recall[2], toy.recall[3]], [1 / 3, 2 / 3, 1]) and toy.n_skipped == 1
    )
    yours = not is_stand_in(recall_by_hand)
    top = np.argsort(
        -np.where(is_self, -np.inf, hard_scores), axis=1, kind="stable"
    )  # best first, itself last
    for k in (1, 5, 10):
        numpy_recall = np.take_along_axis(hard_relevant, top[:, :k], axis=1).any(axis=1)[asked].mean()
        assert np.isclose(
            embedkit.retrieval.evaluate_retrieval(hard_scores, hard_relevant, ks=(k,)).recall[k], numpy_recall
        ), k
        if yours:
            with _learner_runs(
                SCORING, "write it yourself with NumPy, not with scikit-learn or embedkit.retrieval"
            ):
                by_hand = np.mean(
                    [
                        recall_by_hand(hard_scores[i, ~is_self[i]], hard_relevant[i, ~is_self[i]], k)
                        for i in np.flatnonzero(asked)
                    ]
                )
            assert np.isclose(by_hand, numpy_recall), (
                f"recall_by_hand at k={k}: {by_hand:.4f}, a NumPy ranking gives {numpy_recall:.4f}"
            )
    print(
        "recall@1, 5, 10 on the hard task: embedkit agrees with a case worked out by hand and with a NumPy "
        "ranking" + ("; so does yours" if yours else " (recall_by_hand not written: not compared)")
    )


# --- does size explain the lowest resize copy? ----------------------------------------------------

SIZE_ANSWERS = ("yes", "not alone", "no")
# Made-up evidence (rho, share_below, best_as_small, median) for the learner's rule, and the reading each
# calls for: all three answers occur, so a rule that always gives one answer fails; each fact varies alone.
SIZE_CASES = [
    ((0.5, (0.7, 0.4), 0.99, 0.95), "not alone"),
    ((0.5, (0.7, 0.4), 0.95, 0.95), "not alone"),  # at the median counts as keeping its score
    ((0.5, (0.7, 0.4), 0.80, 0.95), "yes"),
    ((0.5, (0.7, 0.4), -np.inf, 0.95), "yes"),
    ((-0.3, (0.7, 0.4), 0.80, 0.95), "no"),
    ((-0.3, (0.7, 0.4), 0.99, 0.95), "no"),
    ((0.5, (0.3, 0.6), 0.80, 0.95), "no"),
    ((0.5, (0.3, 0.6), 0.99, 0.95), "no"),
]


def _size_reading(rho, share_below, best_as_small, median):
    lower = rho > 0 and share_below[0] > share_below[1]  # smaller copies score lower, by trend and by shares
    return "no" if not lower else ("not alone" if best_as_small >= median else "yes")


def check_size_explains(share_below, best_as_small, size_explains: Callable, side, cos_with_original) -> None:
    """Your two facts against the resize copies' sides and scores, then your rule ``size_explains(rho,
    share_below, best_as_small, median)`` on this evidence and on made-up evidence that calls for each of the
    three answers (the rule is the one in the lesson's Solution). A wrong rule is shown the first evidence it
    misread, never the answer: the learner submits a rule, so the evidence cannot be gamed."""
    copies = pd.DataFrame({"side": np.asarray(side), "cos": np.asarray(cos_with_original, dtype=float)})
    lowest = copies["cos"].idxmin()
    median, low_side = copies["cos"].median(), copies.loc[lowest, "side"]
    rho = spearmanr(copies["side"], copies["cos"]).statistic
    shrunk = copies["side"] <= low_side
    below = copies["cos"] < median
    shares = (below[shrunk].mean(), below[~shrunk].mean() if (~shrunk).any() else np.nan)
    same_size = copies.loc[(copies["side"] == low_side) & (copies.index != lowest), "cos"]
    best = same_size.max() if len(same_size) else -np.inf
    assert callable(size_explains), "size_explains: a function of (rho, share_below, best_as_small, median)"
    missing = [
        name
        for name, answer in [("share_below", share_below), ("best_as_small", best_as_small)]
        if answer is None
    ]
    if not_written(size_explains, rho, shares, best, median):
        missing.append("the function size_explains")
    if missing:
        print("Not done yet: " + ", ".join(missing))
        return
    assert np.shape(share_below) == (2,) and np.allclose(share_below, shares, equal_nan=True), (
        f"share_below: two fractions from `copies <= {low_side} px:`, of the copies below the resize median: "
        "first among the copies shrunk as far as the lowest (itself included), then among the larger ones"
    )
    assert (np.isneginf(best) and not np.isfinite(best_as_small)) or np.isclose(best_as_small, best), (
        f"best_as_small: the highest score among the other copies shrunk to {low_side} px "
        "(the lowest left out; -inf if there are none)"
    )
    cases = [((rho, shares, best, median), _size_reading(rho, shares, best, median)), *SIZE_CASES]
    readings = [size_explains(*evidence) for evidence, _ in cases]
    assert all(reading in SIZE_ANSWERS for reading in readings), (
        'size_explains returns "yes", "not alone" or "no", whatever the evidence'
    )
    wants = [want for _, want in cases]
    misread = [i for i, (reading, want) in enumerate(zip(readings, wants, strict=True)) if reading != want]
    if misread:
        (r, (below_small, below_large), top, mid), _ = cases[misread[0]]
        raise AssertionError(
            f"not quite: your rule misreads {len(misread)} of the {len(cases)} sets of evidence the check "
            f"tries; the first is {'this set' if misread[0] == 0 else 'a made-up one'}: rho {r:.2f}, "
            f"share_below "
            f"({below_small:.2f}, {below_large:.2f}), best_as_small {top:.2f}, median {mid:.2f}. Does each "
            "signal point to size there, and does another copy shrunk as far keep its score?"
        )
    expected = cases[0][1]
    print(
        f"Correct! On this set your rule reads {expected!r}: "
        + {
            "no": "smaller copies do not score lower here, so size does not explain the lowest",
            "not alone": "smaller copies score lower, but a copy shrunk as far keeps its score: size is not "
            "enough on its own, the lowest combines its size with what its photo holds, and this set cannot "
            "separate the two",
            "yes": "smaller copies score lower, and no other copy shrunk as far keeps its score: size may "
            "explain the lowest",
        }[expected]
    )


# --- exercises ------------------------------------------------------------------------------------


def check_exercise_1(
    recall_fraction: Callable,
    best_possible: Callable,
    top10,
    recall_fraction_at_10,
    best_possible_at_10,
    short_of_one: Callable,
    S,
    groups,
    labels,
) -> None:
    """Exercise 1 at k = 5 and 10: each query's top k holds its k highest scores on the hard task, and the
    fractions agree with scikit-learn's recall_score (multilabel, one row per query) over the network's top k
    and over a perfect ranking's; the scoring functions are switched off while your functions run. Then
    short_of_one(k) at every k from 1 to one past the largest R, so k = R occurs for some query."""
    answers = {
        "recall_fraction": None if top10 is None else recall_fraction_at_10,
        "best_possible": best_possible_at_10,
        "short_of_one": short_of_one(10),
    }
    missing = [name for name, answer in answers.items() if answer is None]
    if missing:
        print("Not done yet: " + ", ".join(missing))
        return
    for function in (recall_fraction, best_possible, short_of_one):
        _refuse_libraries(function, function.__name__, "NumPy only")
    n = len(S)
    is_self = np.eye(n, dtype=bool)
    same_photo = embedkit.retrieval.relevance_from_keys(groups)
    own_group_removed = np.where(same_photo, -np.inf, S)
    relevant = embedkit.retrieval.relevance_from_keys(labels) & ~same_photo
    asked = relevant.any(axis=1)
    ranked = np.argsort(-np.where(is_self, -np.inf, own_group_removed), axis=1, kind="stable")
    perfect = np.argsort(~relevant, axis=1, kind="stable")  # every relevant image first
    table = embedkit.retrieval.evaluate_retrieval(own_group_removed, relevant, ks=(5, 10)).recall
    expected = {}
    for k in (5, 10):
        chosen, ideal = np.zeros((n, n), dtype=bool), np.zeros((n, n), dtype=bool)
        chosen[np.arange(n)[:, None], ranked[:, :k]] = ideal[np.arange(n)[:, None], perfect[:, :k]] = True
        expected[k] = [
            recall_score(relevant[asked], picked[asked], average="samples", zero_division=0)
            for picked in (chosen, ideal)
        ]
    with _learner_runs(SCORING, "write it yourself with NumPy, not with scikit-learn or embedkit.retrieval"):
        yours = {k: (recall_fraction(k), best_possible(k)) for k in (5, 10)}
    for k, ((top, fraction), best) in yours.items():
        top = np.asarray(top)
        assert top.shape == (n, k), f"one row of {k} per query: expected shape {(n, k)}, got {top.shape}"
        chosen = np.zeros((n, n), dtype=bool)
        chosen[np.arange(n)[:, None], top] = True
        assert (chosen.sum(axis=1) == k).all(), f"{k} different images per query"
        assert not chosen[is_self].any(), "a query is never its own result: leave it out"
        worst_kept = np.where(chosen, own_group_removed, np.inf).min(axis=1)
        best_left = np.where(chosen | is_self, -np.inf, own_group_removed).max(axis=1)
        assert (worst_kept >= best_left).all(), (
            f"the top {k} should hold the {k} highest scores of own_group_removed"
        )
        assert np.isfinite(fraction) and np.isfinite(best), (
            "nan: skip the queries with R = 0 (nothing to find); for them found / R is 0/0, which is nan"
        )
        assert abs(fraction - table[k]) > 1e-6, (
            f"that is the table's recall@{k} (at least one relevant image in the top {k}): count them all"
        )
        assert abs(fraction - expected[k][0]) < 1e-9, (
            f"not quite at k = {k}: per query, the relevant images in its top k over all its relevant "
            "images; skip queries with nothing to find, then average"
        )
        assert abs(best - expected[k][1]) < 1e-9, (
            f"best_possible({k}): a perfect top k holds min(k, R) of a query's R relevant images; "
            "average min(k, R) / R over the same queries"
        )
    assert np.shape(top10) == (n, 10) and abs(recall_fraction_at_10 - expected[10][0]) < 1e-9, (
        "top10, recall_fraction_at_10: what recall_fraction(10) returns"
    )
    assert abs(best_possible_at_10 - expected[10][1]) < 1e-9, (
        "best_possible_at_10: what best_possible(10) returns"
    )
    R = relevant.sum(axis=1)[asked]
    for k in range(1, R.max() + 2):
        with _learner_runs(SCORING, "NumPy only"):
            yours = short_of_one(k)
        assert yours == int((R > k).sum()), (
            f"short_of_one({k}): count the queries with anything to find whose perfect top {k}, "
            f"min({k}, R) of their R relevant images, is not all of them"
            + (f" (a query with R = {k} has all {k} in its top {k})" if (R == k).any() else "")
        )
    many = int((R > 10).sum())
    print(
        f"Correct! {recall_fraction_at_10:.3f}, at best {best_possible_at_10:.3f}; "
        f"{many} of {asked.sum()} queries have more relevant images than fit in a top 10"
    )


def check_exercise_2(
    astray_fraction,
    kind_most_often_astray,
    copies_per_kind,
    rho_with_full_space,
    expected_sign,
    xy_pca,
    manifest: pd.DataFrame,
    median_cos: pd.Series,
) -> None:
    """Exercise 2 against scikit-learn's 1-nearest-neighbour classifier, asked to predict each image's group
    on the PCA map with that image left out (leave-one-out); rho against SciPy's spearmanr with ``median_cos``
    (each kind's median cosine of a copy with its original) matched kind by kind. Nothing is checked or
    shown until ``expected_sign`` ("+" or "-") is set; then the verdict says whether it held."""
    if expected_sign is None:  # a prediction first: nothing about rho until it is made
        print('Not done yet: set expected_sign ("+" or "-") first, in its own cell, before you compute rho')
        return
    assert expected_sign in ("+", "-"), f'expected_sign = {expected_sign!r}: set it to "+" or "-"'
    if any(
        answer is None
        for answer in (astray_fraction, kind_most_often_astray, copies_per_kind, rho_with_full_space)
    ):
        print(
            "Not done yet: set astray_fraction, kind_most_often_astray, copies_per_kind "
            "and rho_with_full_space"
        )
        return
    groups = manifest["group"].to_numpy()
    is_original = (manifest["transformation"] == "original").to_numpy()
    kinds = manifest.loc[~is_original, "transformation"]
    fraction = pd.Series(astray_fraction, dtype=float)
    assert set(fraction.index) == set(kinds), (
        f"one value per kind of edit, originals left out: {sorted(set(kinds))}"
    )
    assert fraction.between(0, 1).all(), "a fraction lies between 0 and 1"
    assert fraction.max() > 0, (
        "every copy finds its own group: leave each point itself out, and use the PCA map, xy_pca"
    )
    predicted = cross_val_predict(KNeighborsClassifier(n_neighbors=1), xy_pca, groups, cv=LeaveOneOut())
    reference = pd.Series(predicted != groups, index=manifest.index)[~is_original].groupby(kinds).mean()
    assert np.allclose(fraction[reference.index], reference), (
        "not quite: per kind, the copies whose nearest other point on the PCA map (xy_pca) is from another "
        "group, over that kind's number of copies"
    )
    assert fraction[kind_most_often_astray] == fraction.max(), (
        "kind_most_often_astray should have the largest fraction"
    )
    counts = kinds.value_counts()
    per_kind = pd.Series(copies_per_kind)
    assert set(per_kind.index) == set(counts.index) and (per_kind[counts.index] == counts).all(), (
        "copies_per_kind: the number of edited copies of each kind (originals left out)"
    )
    rho = spearmanr(reference, median_cos.loc[reference.index]).statistic
    assert np.isfinite(rho_with_full_space) and abs(rho_with_full_space - rho) < 1e-9, (
        "rho_with_full_space: Spearman's rho of astray_fraction with by_kind's median_cos_with_original, "
        "the two matched kind by kind (by index, not by position)"
    )
    print(
        f"Correct! The kinds have {counts.min()} to {counts.max()} copies, "
        "so a count would favour the common ones."
    )
    held = (rho < 0) == (expected_sign == "-")
    print(
        f"verdict: rho {rho:+.2f} over {len(reference)} kinds (you expected {expected_sign}, "
        + ("which held" if held else "which did not hold")
        + "): "
        + (
            "the kinds whose copies stay closer to their original in the full space stray less often on the "
            "map"
            if rho < 0
            else "straying on the map does not fall as copies stay closer to their original"
        )
    )
