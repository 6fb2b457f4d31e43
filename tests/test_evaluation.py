"""embedkit.evaluation: hand-computed cases and scikit-learn as an oracle."""

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.metrics import f1_score, precision_score, recall_score

from embedkit.evaluation import Scores, score_pairs, scores_by_kind, true_pairs_from_groups

# Six items, two photos, each as original + resized + flipped copy.
GROUPS = [0, 0, 0, 1, 1, 1]
KINDS = ["original", "resized", "flipped", "original", "resized", "flipped"]
# Predicted: (1,0) twice in two orders, (3,4), (1,2) (two copies of one photo), and
# (2,3), which joins a copy of photo 0 to photo 1 (wrong).
PREDICTED = [(1, 0), (0, 1), (3, 4), (1, 2), (2, 3)]

# scikit-learn 1.4 settled F1's zero_division: used only when tp + fp + fn == 0.
sklearn_f1_semantics = pytest.mark.skipif(
    tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 4),
    reason="scikit-learn < 1.4 applied zero_division to F1 differently",
)


def test_true_pairs_from_groups():
    assert true_pairs_from_groups(GROUPS) == {(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)}
    # Labels of any type; None and NaN mean "no group".
    assert true_pairs_from_groups(["a", None, "a", float("nan"), "b", "b", None]) == {
        (0, 2),
        (4, 5),
    }
    assert true_pairs_from_groups([7, 8, 9]) == set()
    assert true_pairs_from_groups([]) == set()


def test_score_pairs_hand_computed():
    # Unique predicted pairs: (0,1) (3,4) (1,2) (2,3).  True pairs: 6 (above).
    # tp = (0,1) (3,4) (1,2) = 3; fp = (2,3) = 1; fn = (0,2) (3,5) (4,5) = 3.
    # precision = 3/4, recall = 3/6, f1 = 2*3 / (2*3 + 1 + 3) = 0.6.
    scores = score_pairs(PREDICTED, true_pairs_from_groups(GROUPS))
    assert scores == Scores(precision=0.75, recall=0.5, f1=0.6, tp=3, fp=1, fn=3)
    assert str(scores) == "precision 0.750  recall 0.500  f1 0.600  (tp 3, fp 1, fn 3)"


def test_score_pairs_accepts_arrays_and_sets_in_any_order():
    true = {(0, 1), (2, 3)}
    assert score_pairs(np.array([[1, 0], [3, 2]]), true).f1 == 1.0
    assert score_pairs({(3, 2)}, np.array([[0, 1], [2, 3]])).tp == 1


@sklearn_f1_semantics
@pytest.mark.parametrize("zero_division", [0.0, 1.0, float("nan")])
def test_score_pairs_matches_sklearn_on_random_examples(zero_division):
    rng = np.random.default_rng(0)
    n = 14
    all_pairs = list(itertools.combinations(range(n), 2))
    for trial in range(30):
        groups = rng.integers(0, 5, size=n)
        true = true_pairs_from_groups(groups.tolist())
        keep = rng.random(len(all_pairs)) < rng.uniform(0, 0.3)
        if trial == 0:
            keep[:] = False  # nothing predicted
        predicted = [p for p, k in zip(all_pairs, keep, strict=True) if k]
        # Present some predictions reversed and repeated: they must not matter.
        noisy = [(j, i) for i, j in predicted[::2]] + predicted
        y_true = [p in true for p in all_pairs]
        y_pred = keep.tolist()
        got = score_pairs(noisy, true, zero_division=zero_division)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = (
                precision_score(y_true, y_pred, zero_division=zero_division),
                recall_score(y_true, y_pred, zero_division=zero_division),
                f1_score(y_true, y_pred, zero_division=zero_division),
            )
        np.testing.assert_allclose((got.precision, got.recall, got.f1), expected, rtol=1e-12)
        assert got.tp == sum(t and p for t, p in zip(y_true, y_pred, strict=True))
        assert got.tp + got.fp == sum(y_pred)
        assert got.tp + got.fn == sum(y_true)


@sklearn_f1_semantics
@pytest.mark.parametrize("zero_division", [0.0, 1.0, float("nan")])
def test_score_pairs_edge_cases_follow_sklearn(zero_division):
    # Nothing predicted, nothing true, neither: compare with sklearn on 3 possible pairs.
    cases = [([], [(0, 1)], [0, 0, 0], [1, 0, 0]), ([(0, 1)], [], [1, 0, 0], [0, 0, 0]),
             ([], [], [0, 0, 0], [0, 0, 0])]
    for predicted, true, y_pred, y_true in cases:
        got = score_pairs(predicted, true, zero_division=zero_division)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = [
                metric(y_true, y_pred, zero_division=zero_division)
                for metric in (precision_score, recall_score, f1_score)
            ]
        np.testing.assert_allclose([got.precision, got.recall, got.f1], expected)


def test_score_pairs_default_zero_division_is_zero():
    empty = score_pairs([], [(0, 1)])
    assert (empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0)
    assert (empty.tp, empty.fp, empty.fn) == (0, 0, 1)
    assert math.isnan(score_pairs([], [(0, 1)], zero_division=float("nan")).precision)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([(2, 2)], "pairs item 2 with itself"),
        ([(0, -1)], r"pair \(0, -1\) in predicted_pairs has an index outside the non-negative range"),
        ([(0, 1, 2)], r"predicted_pairs must have shape \(m, 2\)"),
        ([(0.5, 1.0)], "integer item indices"),
    ],
)
def test_score_pairs_errors(pairs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        score_pairs(pairs, [(0, 1)])


def test_scores_by_kind_hand_computed():
    # positives: resized (1,0) (4,3); flipped (2,0) (5,3).
    #   found:  resized both (0,1) (3,4) -> recall 1;  flipped none -> recall 0.
    # predicted pairs involving each kind (unique pairs (0,1) (3,4) (1,2) (2,3)):
    #   original 0,3: (0,1) (3,4) (2,3) -> 3, correct (0,1) (3,4) -> 2/3
    #   resized 1,4:  (0,1) (3,4) (1,2) -> 3, all correct        -> 1
    #   flipped 2,5:  (1,2) (2,3)       -> 2, correct (1,2)      -> 1/2
    # all: 4 positives, 2 found -> 0.5; 4 predicted, 3 correct -> 0.75.
    table = scores_by_kind(PREDICTED, GROUPS, KINDS)
    expected = pd.DataFrame(
        {
            "positives": [0, 2, 2, 4],
            "found": [0, 2, 0, 2],
            "recall": [np.nan, 1.0, 0.0, 0.5],
            "predicted": [3, 3, 2, 4],
            "precision": [2 / 3, 1.0, 0.5, 0.75],
        },
        index=pd.Index(["original", "resized", "flipped", "all"], name="kind"),
    )
    pd.testing.assert_frame_equal(table, expected)


def test_scores_by_kind_nan_precision_when_a_kind_is_never_predicted():
    groups = [0, 0, 0, 1]
    kinds = ["original", "cropped", "grayscale", "original"]
    table = scores_by_kind([(0, 1)], groups, kinds)
    assert math.isnan(table.loc["grayscale", "precision"])
    assert table.loc["grayscale", "predicted"] == 0
    assert table.loc["grayscale", "recall"] == 0.0
    assert table.loc["cropped", "recall"] == 1.0
    assert list(table.index) == ["original", "cropped", "grayscale", "all"]


def test_scores_by_kind_agrees_with_score_pairs_on_the_all_row():
    rng = np.random.default_rng(4)
    groups, kinds = [], []
    for g in range(6):
        copies = rng.choice(["resized", "cropped", "flipped"], size=rng.integers(1, 4))
        groups += [g] * (1 + len(copies))
        kinds += ["original", *copies]
    groups += [None, None]  # unrelated images in no group
    kinds += ["original", "original"]
    n = len(groups)
    all_pairs = np.array(list(itertools.combinations(range(n), 2)))
    predicted = all_pairs[rng.random(len(all_pairs)) < 0.3]
    table = scores_by_kind(predicted, groups, kinds)
    codes = np.array([g if g is not None else -1 - i for i, g in enumerate(groups)])
    positives = {(min(i, r), max(i, r)) for i in range(n) for r in range(n)
                 if kinds[r] == "original" and kinds[i] != "original" and codes[i] == codes[r]}
    recall = score_pairs(predicted, positives).recall
    same_group = score_pairs(predicted, true_pairs_from_groups(groups)).precision
    assert table.loc["all", "recall"] == pytest.approx(recall)
    assert table.loc["all", "precision"] == pytest.approx(same_group)
    assert table.loc["all", "positives"] == len(positives)


@pytest.mark.parametrize(
    ("groups", "kinds", "pairs", "message"),
    [
        ([0, 0], ["resized", "flipped"], [], r"items \[0, 1\] has 0 items of kind 'original'"),
        ([0, 0], ["original", "original"], [], r"has 2 items of kind 'original'"),
        ([0, 0], ["original"], [], "groups has 2 items but kinds has 1"),
        ([0, 0], ["original", "all"], [], "reserved for the summary row"),
        ([0, 0], ["original", "resized"], [(0, 2)], r"pair \(0, 2\) in predicted_pairs has an index outside"),
    ],
)
def test_scores_by_kind_errors(groups, kinds, pairs, message):
    with pytest.raises(ValueError, match=message):
        scores_by_kind(pairs, groups, kinds)


def test_scores_by_kind_other_reference_kind():
    table = scores_by_kind([(0, 1)], [0, 0], ["source", "copy"], reference_kind="source")
    assert table.loc["copy", "recall"] == 1.0
