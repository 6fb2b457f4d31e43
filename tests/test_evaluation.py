"""embedkit.evaluation: hand-computed cases and scikit-learn as an oracle."""

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.metrics import adjusted_rand_score, f1_score, precision_score, recall_score

from embedkit.evaluation import (
    Scores,
    choose_threshold,
    cross_validate_threshold,
    f_beta_by_threshold,
    group_folds,
    score_pairs,
    scores_by_kind,
    summarise_cross_validation,
    threshold_curve,
    true_pairs_from_groups,
)
from embedkit.pairs import connected_groups

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
    cases = [
        ([], [(0, 1)], [0, 0, 0], [1, 0, 0]),
        ([(0, 1)], [], [1, 0, 0], [0, 0, 0]),
        ([], [], [0, 0, 0], [0, 0, 0]),
    ]
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
    positives = {
        (min(i, r), max(i, r))
        for i in range(n)
        for r in range(n)
        if kinds[r] == "original" and kinds[i] != "original" and codes[i] == codes[r]
    }
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


# --------------------------------------------------------------------------- the threshold rule


def chained_case():
    """Two photos of five files each: 20 true pairs, and one false pair that chains them.

    True pairs score 0.9, except (0, 1) at 0.5; the false pair (4, 5) scores 0.55; every
    other pair 0.1. At 0.5 the pairs are best (tp 20, fp 1: precision 0.952, F1 0.976),
    but the false pair joins the two photos into one group. At 0.6: tp 19, fp 0, F1 0.974,
    two groups.
    """
    groups = [0] * 5 + [1] * 5
    pairs = np.array(list(itertools.combinations(range(10), 2)))
    same = np.array([groups[i] == groups[j] for i, j in pairs])
    scores = np.where(same, 0.9, 0.1)
    scores[(pairs == [0, 1]).all(axis=1)] = 0.5
    scores[(pairs == [4, 5]).all(axis=1)] = 0.55
    return pairs, scores, groups


def brute_force_merges(n, found_pairs, groups):
    """Found groups holding two or more true groups, by plain union-find."""
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in found_pairs:
        parent[root(i)] = root(j)
    members = {}
    for i in range(n):
        members.setdefault(root(i), set()).add(groups[i])
    return sum(len(g) > 1 for g in members.values())


def test_grouping_safe_threshold_refuses_the_pair_optimal_one_that_merges_two_photos():
    pairs, scores, groups = chained_case()
    grid = [0.5, 0.6, 0.95]
    curve = threshold_curve(pairs, scores, groups, grid)
    assert curve.loc[0.5, "precision"] == pytest.approx(20 / 21)
    assert curve.loc[0.5, "f1"] == pytest.approx(40 / 41) and curve.loc[0.6, "f1"] == pytest.approx(38 / 39)
    assert curve["merges"].tolist() == [1, 0, 0]
    assert curve.loc[0.95, "found"] == 0 and math.isnan(curve.loc[0.95, "precision"])
    # Pairs alone (merges allowed) prefer 0.5; the rule keeps the groups apart.
    assert choose_threshold(pairs, scores, groups, grid, max_merges=1).threshold == 0.5
    chosen = choose_threshold(pairs, scores, groups, grid)
    assert chosen.threshold == 0.6
    assert (chosen.precision, chosen.merges, chosen.ari) == (1.0, 0, 1.0)
    assert chosen.recall == pytest.approx(19 / 20)
    assert str(chosen).startswith("threshold >= 0.6: precision 1.000, recall 0.950")


def test_precision_floor_binds():
    pairs, scores, groups = chained_case()
    # A floor above 20/21 rules out 0.5 even when merges are allowed.
    chosen = choose_threshold(pairs, scores, groups, [0.5, 0.6], min_precision=0.96, max_merges=1)
    assert chosen.threshold == 0.6


def test_lower_is_similar_scores_such_as_hamming_distances():
    pairs, scores, groups = chained_case()
    # Distances: true 1, the weak true pair 5, the false pair 4, the rest 9.
    distances = np.select([scores == 0.9, scores == 0.5, scores == 0.55], [1, 5, 4], default=9)
    chosen = choose_threshold(pairs, distances, groups, range(0, 11), higher_is_similar=False)
    # 1, 2 and 3 find the same 19 true pairs and tie: the middle one is taken.
    assert chosen.threshold == 2
    assert str(chosen).startswith("threshold <= 2: ")
    # With merges allowed, 5 (every true pair, one false one) has the best F1; 6 to 8 tie
    # with it, so the grid stops at 5 here.
    assert (
        choose_threshold(
            pairs, distances, groups, range(0, 6), higher_is_similar=False, max_merges=1
        ).threshold
        == 5
    )
    # Mirror image: the distance rule equals the similarity rule on minus the distance.
    curve = threshold_curve(pairs, distances, groups, range(0, 11), higher_is_similar=False)
    mirrored = threshold_curve(pairs, -distances, groups, -np.arange(11))
    assert np.array_equal(curve.to_numpy(), mirrored.to_numpy(), equal_nan=True)


def test_ties_take_the_middle_threshold():
    pairs, scores, groups = chained_case()
    # 0.6 to 0.9 find the same pairs: four tied grid points, the stricter middle one is 0.8.
    assert choose_threshold(pairs, scores, groups, [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]).threshold == 0.8
    assert choose_threshold(pairs, scores, groups, [0.6, 0.7, 0.8]).threshold == 0.7


def test_threshold_curve_matches_score_pairs_union_find_and_sklearn_ari():
    rng = np.random.default_rng(3)
    n = 30
    groups = rng.integers(0, 8, size=n).tolist()
    groups[5] = None  # an item in no group pairs with nothing
    pairs = np.array(list(itertools.combinations(range(n), 2)))[rng.random(435) < 0.5]
    scores = rng.random(len(pairs)).round(2)
    grid = np.round(np.arange(0.0, 1.01, 0.05), 2)
    curve = threshold_curve(pairs, scores, groups, grid)
    truth = true_pairs_from_groups(groups)
    codes = pd.factorize(pd.Series(groups, dtype=object))[0]
    codes[codes < 0] = 100
    for t in grid:
        found = pairs[scores >= t]
        expected = score_pairs(found, truth, zero_division=float("nan"))
        row = curve.loc[t]
        counts = (row["found"], row["tp"], row["fp"], row["fn"])
        assert counts == (len(found), expected.tp, expected.fp, expected.fn)
        for column in ("precision", "recall", "f1"):
            assert row[column] == pytest.approx(getattr(expected, column), nan_ok=True)
        assert row["merges"] == brute_force_merges(n, found, codes)
        assert row["ari"] == pytest.approx(adjusted_rand_score(codes, connected_groups(n, found)))


def test_choose_threshold_errors():
    pairs, scores, groups = chained_case()
    with pytest.raises(ValueError, match="extend the grid"):
        choose_threshold(pairs, scores, groups, [0.3, 0.5])
    with pytest.raises(ValueError, match="one score per pair"):
        choose_threshold(pairs, scores[:-1], groups)
    with pytest.raises(ValueError, match="finite"):
        choose_threshold(pairs, np.full(len(pairs), np.nan), groups)
    with pytest.raises(ValueError, match="repeated"):
        choose_threshold(pairs, scores, groups, [0.5, 0.5])
    with pytest.raises(ValueError, match="outside"):
        choose_threshold(pairs, scores, groups[:5])


def test_group_folds_hold_each_group_out_whole_once_per_repeat():
    groups = np.repeat(list("abcdefghij"), 3)
    folds = list(group_folds(groups, n_folds=4, n_repeats=3, seed=1))
    assert len(folds) == 12
    for repeat in range(3):
        masks = [held for r, _, held in folds if r == repeat]
        assert (np.sum(masks, axis=0) == 1).all()  # every item held out exactly once
        for held in masks:
            assert not set(groups[held]) & set(groups[~held])  # no group on both sides
            assert len(set(groups[held])) in (2, 3)
    assert [held.tolist() for *_, held in folds] == [
        held.tolist() for *_, held in group_folds(groups, n_folds=4, n_repeats=3, seed=1)
    ]
    with pytest.raises(ValueError, match="n_folds"):
        next(group_folds(groups, n_folds=11))


def test_cross_validation_chooses_on_calibration_groups_and_scores_on_the_others():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(8), 4)
    n = len(groups)
    pairs = np.array(list(itertools.combinations(range(n), 2)))
    same = groups[pairs[:, 0]] == groups[pairs[:, 1]]
    scores = np.where(same, rng.uniform(0.5, 1.0, len(pairs)), rng.uniform(0.0, 0.75, len(pairs))).round(2)
    grid = np.round(np.arange(0.3, 1.001, 0.01), 2)
    table = cross_validate_threshold(pairs, scores, groups, grid, n_folds=4, n_repeats=2, seed=5)
    assert len(table) == 8 and set(table["held_out_groups"]) == {2}
    for (_, _, held), row in zip(group_folds(groups, 4, 2, 5), table.itertuples(), strict=True):
        # Oracle for the choice: the rule run on the calibration items alone, renumbered.
        keep = np.flatnonzero(~held)
        inside = (~held[pairs]).all(axis=1)
        renumber = np.full(n, -1)
        renumber[keep] = np.arange(len(keep))
        alone = choose_threshold(renumber[pairs[inside]], scores[inside], groups[keep], grid)
        assert row.threshold == alone.threshold and row.in_sample_f1 == alone.f1
        # Oracle for the held-out scores: score_pairs over the pairs touching held-out items.
        touching = held[pairs].any(axis=1)
        found = pairs[touching & (scores >= row.threshold)]
        truth = {(i, j) for i, j in true_pairs_from_groups(groups) if held[i]}
        expected = score_pairs(found, truth)
        held_out = (row.held_out_precision, row.held_out_recall)
        assert held_out == pytest.approx((expected.precision, expected.recall))
        assert row.held_out_merges == brute_force_merges(n, found, groups)
    summary = summarise_cross_validation(table, stored=0.7)
    assert summary["folds"] == 8
    assert summary["threshold_min"] <= summary["threshold_median"] <= summary["threshold_max"]
    assert summary["folds_with_merge"] == pytest.approx((table["held_out_merges"] > 0).mean(), abs=1e-3)
    assert summary["folds_at_stored"] == (table["threshold"] >= 0.7).sum()


@pytest.mark.parametrize("seed", range(6))
def test_curve_ari_equals_sklearn_including_trivial_groupings(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 25))
    groups = rng.integers(0, int(rng.integers(1, n + 1)), size=n)
    pairs = np.array(list(itertools.combinations(range(n), 2)))
    scores = rng.random(len(pairs)).round(1)
    curve = threshold_curve(pairs, scores, groups, [0.0, 0.5, 0.9, 1.1])
    for t, ari in curve["ari"].items():
        expected = adjusted_rand_score(groups, connected_groups(n, pairs[scores >= t]))
        assert ari == pytest.approx(expected)


def test_f_beta_by_threshold_matches_sklearn_and_weights_recall():
    curve = pd.DataFrame({"tp": [100, 90, 70, 0], "fp": [200, 15, 2, 0]}, index=[0.4, 0.5, 0.6, 0.7])
    curve["fn"] = 100 - curve["tp"]
    for beta in (0.5, 1, 2):
        f = f_beta_by_threshold(curve, beta)
        for t, row in curve.iterrows():
            p = row["tp"] / (row["tp"] + row["fp"]) if row["tp"] + row["fp"] else 0.0
            r = row["tp"] / (row["tp"] + row["fn"])
            want = 0.0 if p == 0 or r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)
            assert f[t] == pytest.approx(want)
    assert f_beta_by_threshold(curve, 1).idxmax() == 0.5
    assert f_beta_by_threshold(curve, 2).idxmax() < f_beta_by_threshold(curve, 0.5).idxmax()
    assert f_beta_by_threshold(curve, 2)[0.7] == 0.0
