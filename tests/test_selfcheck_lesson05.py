"""Lesson 05's self-checks (``embedkit.selfcheck.lesson05``): each passes the right answer, stands in
for a stub that returns ``None``, and fails the mistakes a learner makes. Small made-up data: photo
groups with scored pairs, vectors with a threshold no pair sits on."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics.pairwise
from sklearn.metrics.pairwise import cosine_similarity

import embedkit.ann as ann
import embedkit.evaluation as evaluation
import embedkit.retrieval as retrieval
from embedkit.evaluation import (
    _pick_threshold,
    choose_threshold,
    cross_validate_threshold,
    f_beta_by_threshold,
    threshold_curve,
    true_pairs_from_groups,
)
from embedkit.pairs import connected_groups
from embedkit.selfcheck import is_stand_in, lesson05
from embedkit.selfcheck.lesson05 import _package_at_threshold
from embedkit.similarity import near_duplicate_pairs, pairwise_cosine


@pytest.fixture(scope="module")
def scored():
    """12 photos of 5 files each; true pairs score high, false pairs lower, a few false pairs high."""
    rng = np.random.default_rng(3)
    names = ["grass", "gravel", *(f"photo{k}" for k in range(10))]
    groups = np.repeat(names, 5)
    i, j = np.triu_indices(len(groups), k=1)
    same = groups[i] == groups[j]
    scores = np.where(same, rng.uniform(0.5, 1.0, len(i)), rng.uniform(0.1, 0.62, len(i)))
    scores[rng.choice(np.flatnonzero(~same), 4, replace=False)] = [0.71, 0.74, 0.78, 0.83]
    scores = np.round(scores, 4) + 0.00005  # no score on a grid point
    keep = scores >= 0.3
    candidates, candidate_scores = np.stack([i, j], axis=1)[keep], scores[keep]
    chosen = choose_threshold(candidates, candidate_scores, groups)
    folds = cross_validate_threshold(candidates, candidate_scores, groups)
    return candidates, candidate_scores, groups, chosen.curve, chosen.threshold, folds


def _not_done_then_stand_in(capsys, result, line="Not done yet"):
    assert line in capsys.readouterr().out
    for function in result if isinstance(result, tuple) else (result,):
        assert is_stand_in(function)


# --- exercise 1 ---------------------------------------------------------------------------------


def _at_threshold(pairs, scores, groups, t):
    found = pairs[scores >= t]
    same_photo = groups[found[:, 0]] == groups[found[:, 1]]
    tp, fp = int(same_photo.sum()), int((~same_photo).sum())
    fn = len(true_pairs_from_groups(groups)) - tp
    labels = connected_groups(len(groups), found)
    merges = int((pd.Series(groups).groupby(labels).nunique() > 1).sum())
    return tp, fp, fn, tp / (tp + fp), tp / (tp + fn), merges


def _fn_from_pairs(pairs, scores, groups, t):  # misses only the true pairs among `pairs`
    tp, fp, _, precision, _, merges = _at_threshold(pairs, scores, groups, t)
    fn = int((groups[pairs[:, 0]] == groups[pairs[:, 1]]).sum()) - tp
    return tp, fp, fn, precision, tp / (tp + fn), merges


def _merges_are_false_pairs(pairs, scores, groups, t):
    result = _at_threshold(pairs, scores, groups, t)
    return (*result[:5], result[1])


def _strictly_above(pairs, scores, groups, t):
    return _at_threshold(pairs, scores + (scores == t) * -1.0, groups, t)


def _the_package(pairs, scores, groups, t):
    row = threshold_curve(pairs, scores, groups, [t]).iloc[0]
    return int(row["tp"]), int(row["fp"]), int(row["fn"]), row["precision"], row["recall"], int(row["merges"])


def test_at_threshold_right_answer_passes(scored, capsys):
    candidates, candidate_scores, groups, _, threshold, _ = scored
    got = lesson05.check_at_threshold(_at_threshold, candidates, candidate_scores, groups, threshold)
    assert got is _at_threshold and "Correct in all 8 cases" in capsys.readouterr().out


def test_at_threshold_stub_gets_a_stand_in(scored, capsys):
    candidates, candidate_scores, groups, _, threshold, _ = scored
    got = lesson05.check_at_threshold(lambda *a: None, candidates, candidate_scores, groups, threshold)
    _not_done_then_stand_in(capsys, got)
    assert got(candidates, candidate_scores, groups, 0.5) == _at_threshold(
        candidates, candidate_scores, groups, 0.5
    )


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_fn_from_pairs, "your tp, fp, fn"),
        (_merges_are_false_pairs, "merges"),
        (_strictly_above, "at 0"),
        (_the_package, "switched off"),
        (lambda p, s, g, t: lesson05._package_at_threshold(p, s, g, t), "switched off"),
        (_package_at_threshold, "switched off"),
    ],
)
def test_at_threshold_wrong_answers_fail(scored, wrong, message):
    candidates, candidate_scores, groups, _, threshold, _ = scored
    with pytest.raises(AssertionError, match=message):
        lesson05.check_at_threshold(wrong, candidates, candidate_scores, groups, threshold)


# --- exercise 2 ---------------------------------------------------------------------------------


def _my_rule(curve, max_merges=0, min_precision=0.95):
    allowed = curve[(curve["merges"] <= max_merges) & (curve["precision"] >= min_precision)]
    return float(allowed["f1"].idxmax())


def test_rule_right_answer_passes_and_stub_gets_a_stand_in(scored, capsys):
    candidates, candidate_scores, groups, curve, _, _ = scored
    assert lesson05.check_rule(_my_rule, curve, candidates, candidate_scores, groups) is _my_rule
    assert "Correct: your rule" in capsys.readouterr().out
    got = lesson05.check_rule(lambda curve, **kw: None, curve, candidates, candidate_scores, groups)
    _not_done_then_stand_in(capsys, got)
    assert got(curve) == choose_threshold(candidates, candidate_scores, groups).threshold


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda curve, max_merges=0, min_precision=0.95: float(curve["f1"].idxmax()), "merges|precision"),
        (
            lambda curve, max_merges=0, min_precision=0.95: float(
                curve[curve["merges"] <= max_merges]["f1"].idxmax()
            ),
            "precision",
        ),
        (lambda curve, max_merges=0, min_precision=0.95: float(curve.index[-1]), "precision nan"),
        (
            lambda curve, max_merges=0, min_precision=0.95: evaluation._pick_threshold(
                curve, True, min_precision, max_merges
            ),
            "switched off",
        ),
        (
            lambda curve, max_merges=0, min_precision=0.95: _pick_threshold(
                curve, True, min_precision, max_merges
            ),
            "uses _pick_threshold",
        ),
    ],
    ids=["best F1 alone", "no precision floor", "strictest threshold", "the package's rule", "its name"],
)
def test_rule_wrong_answers_fail(scored, wrong, message):
    candidates, candidate_scores, groups, curve, _, _ = scored
    with pytest.raises(AssertionError, match=message):
        lesson05.check_rule(wrong, curve, candidates, candidate_scores, groups)


# --- exercise 3 ---------------------------------------------------------------------------------


def _best_f2(curve):
    p, r = curve["precision"], curve["recall"]
    return float((5 * p * r / (4 * p + r)).fillna(0).idxmax())


def _fit_for(curve, t, max_merges=0):
    return "delete" if curve.loc[t, "merges"] <= max_merges else "flag"


def test_f2_every_curve_the_check_uses_is_possible_data(scored):
    """Every false pair joins two photos into one found group: a grid point has a merge exactly where it
    has a false pair, and no more merges than false pairs; the counts add up and only shrink as t rises."""
    candidates, candidate_scores, groups, curve, threshold, _ = scored
    cases = lesson05._fit_cases(curve, threshold, candidates, candidate_scores, groups)
    assert {m for _, _, m, _ in cases} == {0, 1, 3} and {a for *_, a in cases} == {"delete", "flag"}
    for c in [*lesson05._own_curves().values(), *(c for c, *_ in cases)]:
        assert ((c["fp"] > 0) == (c["merges"] > 0)).all() and (c["merges"] <= c["fp"]).all()
        assert (c["found"] == c["tp"] + c["fp"]).all() and (c["tp"] + c["fn"]).nunique() == 1
        assert c["tp"].is_monotonic_decreasing and c["fp"].is_monotonic_decreasing


def test_f2_right_answer_passes_and_stub_gets_a_stand_in(scored, capsys):
    candidates, candidate_scores, groups, curve, threshold, _ = scored
    args = (curve, threshold, candidates, candidate_scores, groups)
    assert lesson05.check_f2(_best_f2, _fit_for, *args) == (_best_f2, _fit_for)
    out = capsys.readouterr().out
    assert "Correct on 23 curves" in out and "fit_for correct at 10 thresholds" in out

    capsys.readouterr()
    _not_done_then_stand_in(capsys, lesson05.check_f2(lambda c: None, lambda c, t, max_merges=0: None, *args))
    best, fit = lesson05.check_f2(_best_f2, lambda c, t, max_merges=0: None, *args)
    assert best is _best_f2 and is_stand_in(fit) and "now write fit_for" in capsys.readouterr().out


@pytest.mark.parametrize(
    "best_f2, fit_for, message",
    [
        (
            lambda c: float((3 * c["precision"] * c["recall"] / (2 * c["precision"] + c["recall"])).idxmax()),
            _fit_for,
            "F2",
        ),
        (lambda c: float(c["f1"].idxmax()), _fit_for, "F2"),
        (lambda c: float(f_beta_by_threshold(c, 2).idxmax()), _fit_for, "switched off"),
        (_best_f2, lambda c, t, max_merges=0: "delete" if c.loc[t, "fp"] == 0 else "flag", "fit_for"),
        (_best_f2, lambda c, t, max_merges=0: _fit_for(c.assign(merges=c["fp"]), t, max_merges), "fit_for"),
        (_best_f2, lambda c, t, max_merges=0: "delete" if c.loc[t, "merges"] == 0 else "flag", "fit_for"),
        (_best_f2, lambda c, t, max_merges=0: _fit_for(c, t, max_merges - 1), "fit_for"),
        (_best_f2, lambda c, t, max_merges=0: "delete" if t >= 0.59 else "flag", "fit_for"),
        (
            _best_f2,
            lambda c, t, max_merges=0: "flag" if c.loc[t, "precision"] < 0.95 else _fit_for(c, t, max_merges),
            "whatever the precision",
        ),
    ],
    ids=[
        "beta for beta squared",
        "best F1",
        "the package's F-beta",
        "fit_for on no false pairs",
        "fit_for on false pairs up to max_merges",
        "fit_for ignoring max_merges",
        "fit_for with fewer merges than max_merges",
        "fit_for by a fixed threshold",
        "fit_for with the precision floor",
    ],
)
def test_f2_wrong_answers_fail(scored, best_f2, fit_for, message):
    candidates, candidate_scores, groups, curve, threshold, _ = scored
    with pytest.raises(AssertionError, match=message):
        lesson05.check_f2(best_f2, fit_for, curve, threshold, candidates, candidate_scores, groups)


# --- exercise 4 ---------------------------------------------------------------------------------


def _one_fold_maker(candidates, candidate_scores, groups, at_threshold, relabel_rule=True, relabel_held=True):
    n = len(groups)

    def one_fold(held_out):
        training = ~held_out
        inside = training[candidates[:, 0]] & training[candidates[:, 1]]
        alone = np.array([f"_{i}" for i in range(n)], dtype=object)
        rule_groups = np.where(training, groups, alone) if relabel_rule else groups
        rule = choose_threshold(candidates[inside], candidate_scores[inside], rule_groups)
        held_groups = np.where(held_out, groups, alone) if relabel_held else groups
        result = at_threshold(candidates[~inside], candidate_scores[~inside], held_groups, rule.threshold)
        return rule, result[3], result[4]

    return one_fold


def test_one_fold_right_answer_passes(scored, capsys):
    candidates, candidate_scores, groups, _, _, folds = scored
    one_fold = _one_fold_maker(candidates, candidate_scores, groups, _at_threshold)
    got = lesson05.check_one_fold(one_fold, _at_threshold, candidates, candidate_scores, groups, folds)
    assert got is one_fold and "Correct: the same threshold" in capsys.readouterr().out


def test_one_fold_stubs_get_stand_ins(scored, capsys):
    candidates, candidate_scores, groups, _, _, folds = scored
    args = (candidates, candidate_scores, groups, folds)
    got = lesson05.check_one_fold(lambda held: None, _at_threshold, *args)
    _not_done_then_stand_in(capsys, got)
    one_fold = _one_fold_maker(candidates, candidate_scores, groups, _at_threshold)
    _not_done_then_stand_in(
        capsys, lesson05.check_one_fold(one_fold, lambda *a: None, *args), "do exercise 1 first"
    )


def _with_scored_items(candidates, candidate_scores, groups):
    def one_fold(held_out):
        inside = ~held_out[candidates[:, 0]] & ~held_out[candidates[:, 1]]
        rule = choose_threshold(candidates[inside], candidate_scores[inside], groups, scored_items=~held_out)
        result = _at_threshold(candidates, candidate_scores, groups, rule.threshold)
        return rule, result[3], result[4]

    return one_fold


def _held_out_by_the_package(candidates, candidate_scores, groups):
    rule_side = _one_fold_maker(candidates, candidate_scores, groups, _at_threshold)

    def one_fold(held_out):
        rule, _, _ = rule_side(held_out)
        row = threshold_curve(
            candidates, candidate_scores, groups, [rule.threshold], scored_items=held_out
        ).iloc[0]
        _at_threshold(candidates, candidate_scores, groups, rule.threshold)
        return rule, row["precision"], row["recall"]

    return one_fold


def _scored_by_hand(pairs, scores, groups, t):  # at_threshold's numbers, not by calling it
    found = pairs[scores >= t]
    tp = int((groups[found[:, 0]] == groups[found[:, 1]]).sum())
    fn = len(true_pairs_from_groups(groups)) - tp
    return tp, len(found) - tp, fn, tp / len(found), tp / (tp + fn), 0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda c, s, g: _one_fold_maker(c, s, g, _at_threshold, relabel_rule=False), "in-sample"),
        (lambda c, s, g: _one_fold_maker(c, s, g, _at_threshold, relabel_held=False), "held-out"),
        (_with_scored_items, "scored_items"),
        (_held_out_by_the_package, "threshold_curve is switched off"),
    ],
    ids=["rule not relabelled", "held-out side not relabelled", "scored_items", "threshold_curve"],
)
def test_one_fold_wrong_answers_fail(scored, make, message):
    candidates, candidate_scores, groups, _, _, folds = scored
    one_fold = make(candidates, candidate_scores, groups)
    with pytest.raises(AssertionError, match=message):
        lesson05.check_one_fold(one_fold, _at_threshold, candidates, candidate_scores, groups, folds)


def test_one_fold_must_score_with_at_threshold(scored):
    candidates, candidate_scores, groups, _, _, folds = scored
    own_copy = _one_fold_maker(candidates, candidate_scores, groups, _scored_by_hand)
    with pytest.raises(AssertionError, match="with your at_threshold"):
        lesson05.check_one_fold(own_copy, _at_threshold, candidates, candidate_scores, groups, folds)


# --- exercise 5 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files():
    rng = np.random.default_rng(4)
    return pd.DataFrame(
        {
            "path": [f"data/file{k:02d}.jpg" for k in range(40)],
            "found": rng.integers(0, 12, 40),
            "pixels": rng.choice([50_176, 40_000, 25_000], 40),
            "colour": rng.random(40) < 0.8,
            "centrality": np.round(rng.random(40), 1),
        }
    )


def _keep_one(files):
    ranked = files.sort_values(
        ["pixels", "colour", "centrality", "path"], ascending=[False, False, False, True]
    )
    return ranked.groupby("found").head(1)


def test_keep_one_right_answer_passes_and_stub_gets_a_stand_in(files, capsys):
    assert lesson05.check_keep_one(_keep_one, files) is _keep_one
    assert "Correct! One file per found group" in capsys.readouterr().out
    got = lesson05.check_keep_one(lambda files: None, files)
    _not_done_then_stand_in(capsys, got)
    assert set(got(files).index) == set(_keep_one(files).index)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda f: (
                f.sort_values(
                    ["pixels", "colour", "centrality", "path"], ascending=[False, True, False, True]
                )
                .groupby("found")
                .head(1)
            ),
            "colour",
        ),
        (
            lambda f: (
                f.sort_values(
                    ["pixels", "colour", "centrality", "path"], ascending=[False, False, False, False]
                )
                .groupby("found")
                .head(1)
            ),
            "path",
        ),
        (
            lambda f: (
                f.sort_values(
                    ["colour", "pixels", "centrality", "path"], ascending=[False, False, False, True]
                )
                .groupby("found")
                .head(1)
            ),
            "most pixels",
        ),
        (lambda f: _keep_one(f).reset_index(drop=True), "index"),
        (lambda f: lesson05._by_the_rule(f), "switched off"),
    ],
    ids=["grayscale first", "last path", "colour before pixels", "reset index", "the check's own"],
)
def test_keep_one_wrong_answers_fail(files, wrong, message):
    with pytest.raises(AssertionError, match=message):
        lesson05.check_keep_one(wrong, files)


# --- exercise 6 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_data():
    rng = np.random.default_rng(6)
    X = np.abs(rng.standard_normal((80, 8))).astype(np.float32) * rng.uniform(0.2, 5, (80, 1)).astype(
        np.float32
    )
    splits = np.where(rng.random(80) < 0.7, "train", "test")
    new_split = np.where(rng.random(80) < 0.7, "train", "test")
    paths = [f"f{k}.jpg" for k in range(80)]
    candidates, candidate_scores = near_duplicate_pairs(X, threshold=0.3, precision="float32")
    return X, splits, new_split, paths, candidates, candidate_scores, 0.9


def _nearest_train(test_vectors, train_vectors):
    unit_test = test_vectors / np.linalg.norm(test_vectors, axis=1, keepdims=True)
    unit_train = train_vectors / np.linalg.norm(train_vectors, axis=1, keepdims=True)
    scores = unit_test @ unit_train.T
    nearest = scores.argmax(axis=1)
    return nearest, scores[np.arange(len(scores)), nearest]


def _leaking(nearest_scores, t):
    return nearest_scores >= t


def test_leak_search_right_answer_passes_and_stub_gets_a_stand_in(split_data, capsys):
    got = lesson05.check_leak_search(_nearest_train, _leaking, *split_data)
    assert got == (_nearest_train, _leaking) and "Correct at 3 thresholds" in capsys.readouterr().out
    _not_done_then_stand_in(
        capsys, lesson05.check_leak_search(lambda a, b: None, lambda s, t: None, *split_data)
    )


def _by_sklearn(test_vectors, train_vectors):  # a library's cosine, then argmax
    scores = cosine_similarity(test_vectors, train_vectors)
    return scores.argmax(axis=1), scores.max(axis=1)


def _by_faiss(test_vectors, train_vectors):  # the package's FAISS index (lesson 07)
    scores, rows = ann.build_flat(train_vectors).search(ann.unit_rows(test_vectors).astype(np.float32), 1)
    return rows[:, 0], scores[:, 0]


def _by_hidden_module(test_vectors, train_vectors):  # reaches the library at run time, by a module's name
    pairwise = importlib.import_module("sklearn.metrics.pairwise")
    scores = getattr(pairwise, "cosine_similarity")(test_vectors, train_vectors)  # noqa: B009
    return scores.argmax(axis=1), scores.max(axis=1)


def _by_hidden_score_matrix(test_vectors, train_vectors):  # the package's scores, reached at run time
    n = len(test_vectors)
    both = np.vstack([test_vectors, train_vectors])
    scores = importlib.import_module("embedkit.retrieval").score_matrix(both)[:n, n:]
    return scores.argmax(axis=1), scores.max(axis=1)


def _raw_dot(test_vectors, train_vectors):  # no normalising: the largest dot product, not cosine
    scores = test_vectors @ train_vectors.T
    nearest = scores.argmax(axis=1)
    return nearest, scores[np.arange(len(scores)), nearest]


@pytest.mark.parametrize(
    "nearest_train, leaking, message",
    [
        (_raw_dot, _leaking, "not the cosines"),
        (_nearest_train, lambda s, t: s > t, "at least t"),
        (lambda a, b: (_nearest_train(a, b)[0], 1 - _nearest_train(a, b)[1]), _leaking, "cosines"),
        (
            lambda a, b: (pairwise_cosine(a, b).argmax(axis=1), pairwise_cosine(a, b).max(axis=1)),
            _leaking,
            "NumPy",
        ),
        (_by_sklearn, _leaking, "NumPy yourself: your _by_sklearn uses cosine_similarity"),
        (_by_faiss, _leaking, "NumPy yourself: your _by_faiss uses ann"),
        (_by_hidden_module, _leaking, "libraries' searches are off"),
        (_by_hidden_score_matrix, _leaking, "libraries' searches are off"),
    ],
    ids=[
        "no normalising",
        "strictly above",
        "distance for similarity",
        "the package's search",
        "scikit-learn's cosine",
        "the package's FAISS index",
        "scikit-learn reached at run time",
        "score_matrix reached at run time",
    ],
)
def test_leak_search_wrong_answers_fail(split_data, nearest_train, leaking, message):
    originals = [sklearn.metrics.pairwise.cosine_similarity, ann.build_flat, retrieval.score_matrix]
    with pytest.raises(AssertionError, match=message):
        lesson05.check_leak_search(nearest_train, leaking, *split_data)
    # everything switched off is back afterwards
    assert [sklearn.metrics.pairwise.cosine_similarity, ann.build_flat, retrieval.score_matrix] == originals
    assert ann.build_flat(np.eye(3, dtype=np.float32)).ntotal == 3


# --- exercise 7 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_vectors():
    """2,600 random vectors and 30 planted pairs, some a little above the threshold, some a little below."""
    rng = np.random.default_rng(7)
    size, dim, t = 2600, 32, 0.9
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    planted = rng.permutation(size)[:60].reshape(-1, 2)
    for (i, j), off in zip(
        planted, rng.choice([-0.01, -0.003, 0.003, 0.01, 0.04], len(planted)), strict=True
    ):
        u = vectors[i].astype(np.float64) / np.linalg.norm(vectors[i])
        w = rng.standard_normal(dim)
        w -= (w @ u) * u  # at right angles to u
        c = t + off
        vectors[j] = (c * u + np.sqrt(1 - c**2) * w / np.linalg.norm(w)) * rng.uniform(0.5, 2)
    unit = vectors / np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    full = unit @ unit.T
    np.fill_diagonal(full, 0.0)
    assert np.abs(full - t).min() > 1e-4  # no pair on the threshold: any rounding agrees
    rows, cols = np.nonzero(np.triu(full >= t, k=1))
    brute = np.stack([rows, cols], axis=1)
    chunked, _ = near_duplicate_pairs(vectors, threshold=t, chunk_size=512, precision="float32")
    assert len(brute) > 10
    return vectors, t, brute, chunked


def _chunked_pairs(X, t, chunk_size, against_all=False, normalise=True, shift=0, strict=False):
    unit = X / np.linalg.norm(X, axis=1, keepdims=True) if normalise else X
    per_block = []
    for start in range(0, len(unit), chunk_size):
        first = 0 if against_all else start
        block = unit[start : start + chunk_size] @ unit[first:].T
        r, c = np.nonzero(block > t if strict else block >= t)
        later = c + first > r + start
        per_block.append(np.stack([r[later] + start, c[later] + first + shift], axis=1))
    return np.concatenate(per_block)


def _sklearn_per_block(X, t, chunk_size):  # the loop is the learner's, the cosine scikit-learn's
    per_block = []
    for start in range(0, len(X), chunk_size):
        r, c = np.nonzero(cosine_similarity(X[start : start + chunk_size], X[start:]) >= t)
        later = c > r
        per_block.append(np.stack([r[later] + start, c[later] + start], axis=1))
    return np.concatenate(per_block)


def _all_at_once(X, t, chunk_size):
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    return np.argwhere(np.triu(unit @ unit.T >= t, k=1))


def _masks_kept(X, t, chunk_size):  # every block's mask kept, pairs taken at the end: n^2 / 2 bytes
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    masks = [
        (start, unit[start : start + chunk_size] @ unit[start:].T >= t)
        for start in range(0, len(unit), chunk_size)
    ]
    per_block = []
    for start, mask in masks:
        r, c = np.nonzero(mask)
        later = c > r
        per_block.append(np.stack([r[later] + start, c[later] + start], axis=1))
    return np.concatenate(per_block)


def test_chunked_pairs_right_answer_passes_and_stub_gets_a_stand_in(many_vectors, capsys):
    assert lesson05.check_chunked_pairs(_chunked_pairs, *many_vectors) is _chunked_pairs
    assert "Correct! The" in capsys.readouterr().out
    got = lesson05.check_chunked_pairs(lambda X, t, c: None, *many_vectors)
    _not_done_then_stand_in(capsys, got)
    assert len(got(many_vectors[0], many_vectors[1], 512)) == len(many_vectors[2])


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda X, t, c: _chunked_pairs(X, t, c, against_all=True), "needs only"),
        (lambda X, t, c: _chunked_pairs(X, t, c, normalise=False), "brute force"),
        (lambda X, t, c: _chunked_pairs(X, t, c, shift=-1), "brute force|i < j"),
        (_all_at_once, "full matrix's scale"),
        (_masks_kept, "more than doubled"),
        (lambda X, t, c: _chunked_pairs(X, t, c, strict=True), r"at least t \(>=\)"),
        (lambda X, t, c: near_duplicate_pairs(X, threshold=t, chunk_size=c)[0], "NumPy yourself"),
        (_sklearn_per_block, "NumPy yourself: your _sklearn_per_block uses cosine_similarity"),
    ],
    ids=[
        "blocks against all rows",
        "no normalising",
        "off by one",
        "the whole matrix",
        "every block's mask kept",
        "strictly above t",
        "the package's search",
        "scikit-learn's cosine per block",
    ],
)
def test_chunked_pairs_wrong_answers_fail(many_vectors, wrong, message):
    with pytest.raises(AssertionError, match=message):
        lesson05.check_chunked_pairs(wrong, *many_vectors)
    assert sklearn.metrics.pairwise.cosine_similarity is cosine_similarity  # put back afterwards


def test_chunked_pairs_with_torch_products_is_refused(many_vectors):
    torch = pytest.importorskip("torch")

    def torch_pairs(X, t, chunk_size):  # a correct loop, its products taken in PyTorch
        unit = torch.nn.functional.normalize(torch.as_tensor(np.asarray(X, dtype=np.float32)), dim=1)
        per_block = []
        for start in range(0, len(unit), chunk_size):
            r, c = torch.nonzero(unit[start : start + chunk_size] @ unit[start:].T >= t, as_tuple=True)
            later = c > r
            per_block.append(torch.stack([r[later] + start, c[later] + start], dim=1))
        return torch.cat(per_block).numpy()

    with pytest.raises(AssertionError, match="NumPy yourself: your torch_pairs uses"):
        lesson05.check_chunked_pairs(torch_pairs, *many_vectors)
