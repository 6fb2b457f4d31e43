"""Self-checks of lesson 05 (near duplicates with embeddings): one function per exercise.

Each check takes the learner's function(s) and the lesson data it needs, and prints ``Correct!``
(returning the learner's functions), raises ``AssertionError`` with what to try, or, while an
exercise still returns ``None``, prints "Not done yet" and returns a stand-in. Where the package
has a version of the exercise, the stand-in runs it; where it has none and no later cell needs the
function, the stand-in only says, when called, that the exercise is not done.

The package's own versions are switched off while the learner's code runs, in two ways: the
module's attribute raises (``switched_off``), and a name in the learner's code (or in a helper of
theirs it calls) that holds the package's function is refused before anything runs
(``_names_holding``, a helper of this module, which walks the code as ``library_names`` does).
Exercises 6 and 7 also refuse the libraries' cosines and searches, as lesson 03 does (``_searches_off``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

import embedkit.evaluation as evaluation
import embedkit.retrieval as retrieval
import embedkit.similarity as similarity
from embedkit.evaluation import (
    COSINE_GRID,
    choose_threshold,
    cross_validate_threshold,
    f_beta_by_threshold,
    group_folds,
    threshold_curve,
)
from embedkit.pairs import connected_groups
from embedkit.selfcheck import (
    LIBRARIES,
    library_cosines,
    library_names,
    not_done,
    not_written,
    reached,
    stand_in,
    switched_off,
)
from embedkit.splits import leak_report

__all__ = [
    "check_at_threshold",
    "check_rule",
    "check_f2",
    "check_one_fold",
    "check_keep_one",
    "check_leak_search",
    "check_chunked_pairs",
]


# --- helpers of this module -----------------------------------------------------------------------


def _names_holding(function: Callable, objects: Iterable[Any]) -> list[str]:
    """The names ``function``'s code uses that hold one of ``objects`` (compared by identity),
    followed through as :func:`embedkit.selfcheck.reached` follows. Sorted; empty when none."""
    objects = list(objects)
    return sorted({name for name, thing in reached(function)[1] if any(thing is o for o in objects)})


@contextlib.contextmanager
def _package_off(
    functions: Iterable[Callable], owner: Any, names: Iterable[str], message: str
) -> Iterator[None]:
    """Refuse the package's ``owner.<names>`` while the block runs ``functions``: by name in their code
    (checked first) and as module attributes (``switched_off``)."""
    names = list(names)
    package = [getattr(owner, name) for name in names]
    for function in functions:
        reached = _names_holding(function, package)
        assert not reached, f"{message} (your {function.__name__} uses {', '.join(reached)})"
    with switched_off([(owner, name) for name in names], message):
        yield


@contextlib.contextmanager
def _counting_calls(function: Callable) -> Iterator[list[int]]:
    """Count the calls of ``function`` while the block runs, however they reach it (``calls[0]``)."""
    code, calls, previous = function.__code__, [0], sys.gettrace()

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code is code:
            calls[0] += 1

    sys.settrace(tracer)
    try:
        yield calls
    finally:
        sys.settrace(previous)


def _not_written(name: str, exercise: int) -> Callable:
    """A stand-in for an exercise no later cell needs: it says so when called."""

    def placeholder(*args, **kwargs):
        raise NotImplementedError(f"{name} (exercise {exercise}) is not written yet")

    placeholder.__name__ = name
    return stand_in(placeholder)


# --- exercise 1 ---------------------------------------------------------------------------------


def _package_at_threshold(pairs, scores, groups, t):
    # the module's attribute, looked up at call time, so that switching it off reaches this too
    row = evaluation.threshold_curve(pairs, scores, groups, [t]).iloc[0]
    counts = (int(row["tp"]), int(row["fp"]), int(row["fn"]))
    return (*counts, float(row["precision"]), float(row["recall"]), int(row["merges"]))


def check_at_threshold(at_threshold: Callable, candidates, candidate_scores, groups, stored_threshold: float):
    """Exercise 1: ``at_threshold``'s six numbers against the package's ``threshold_curve`` in eight cases
    (two on pairs that leave true pairs out, one at a pair's own score, one with two photos called one),
    with the package's scoring switched off while it runs."""
    candidates, candidate_scores = np.asarray(candidates), np.asarray(candidate_scores)
    groups = np.asarray(groups)
    if not_written(at_threshold, candidates, candidate_scores, groups, 0.5):
        print("Not done yet: exercise 4 needs your at_threshold; nothing else below uses it")
        return stand_in(_package_at_threshold)
    high = candidate_scores >= 0.6  # fewer pairs: the true pairs scoring below 0.6 are not among them
    labels = sorted(set(groups.tolist()))
    one, other = ("grass", "gravel") if {"grass", "gravel"} <= set(labels) else labels[:2]
    other_labels = np.where(groups == one, other, groups)  # two photos called one
    cases = [(candidates, candidate_scores, groups, t) for t in (0.4, 0.5, stored_threshold, 0.8)]
    cases += [(candidates[high], candidate_scores[high], groups, t) for t in (0.65, 0.5)]
    at_a_score = float(candidate_scores[min(100, len(candidate_scores) - 1)])  # t equal to a pair's score
    cases.append((candidates, candidate_scores, groups, at_a_score))
    cases.append((candidates, candidate_scores, other_labels, 0.5))
    expected = [threshold_curve(p, s, g, [t]).iloc[0] for p, s, g, t in cases]
    message = "count them yourself: the package's scoring is switched off while at_threshold runs"
    with (
        _package_off(
            [at_threshold], evaluation, ("threshold_curve", "choose_threshold", "score_pairs"), message
        ),
        _package_off([at_threshold], sys.modules[__name__], ["_package_at_threshold"], message),
    ):
        yours = [at_threshold(p, s, g, t) for p, s, g, t in cases]
    for (p, _, g, t), row, got in zip(cases, expected, yours, strict=True):
        where = f"at {t:.2f}" + (" on the pairs scoring 0.60 or more" if len(p) < len(candidates) else "")
        where += "" if g is groups else f" with {one} and {other} called one photo"
        assert got is not None and len(got) == 6, "return (tp, fp, fn, precision, recall, merges)"
        counts, ratios, got_merges = tuple(got[:3]), got[3:5], got[5]
        theirs = int(row["tp"]), int(row["fp"]), int(row["fn"])
        assert counts == theirs, f"{where}: your tp, fp, fn {counts}, the package's {theirs}"
        assert np.allclose(ratios, [row["precision"], row["recall"]]), (
            f"{where}: precision {ratios[0]:.3f}, recall {ratios[1]:.3f}; the package's "
            f"{row['precision']:.3f}, {row['recall']:.3f}"
        )
        assert got_merges == row["merges"], (
            f"{where}: merges {got_merges}, the package's {int(row['merges'])}: "
            "count found groups that hold two or more photos"
        )
    print(
        f"Correct in all {len(cases)} cases; at 0.40: {yours[0][0]} true and {yours[0][1]} false pairs "
        f"found, "
        f"{yours[0][5]} found groups mixing photos"
    )
    return at_threshold


# --- exercise 2 ---------------------------------------------------------------------------------


def _training_pairs(candidates, held_out):
    return ~held_out[candidates[:, 0]] & ~held_out[candidates[:, 1]]


def check_rule(my_rule: Callable, curve: pd.DataFrame, candidates, candidate_scores, groups):
    """Exercise 2: on this curve and the 20 training sets' curves, at several settings, ``my_rule``'s
    threshold keeps both limits and has the best F1 of those that do (the package's choice has it). The
    package's threshold choice is switched off while ``my_rule`` runs."""
    if not_written(my_rule, curve):
        print("Not done yet: nothing below uses my_rule, so the lesson goes on without it")
        return stand_in(
            lambda curve, max_merges=0, min_precision=0.95: evaluation._pick_threshold(
                curve, True, min_precision, max_merges
            )
        )
    candidates, candidate_scores = np.asarray(candidates), np.asarray(candidate_scores)
    anything = len(groups)  # more merged groups than there can be
    tests = []
    for merges, floor in (
        (0, 0.95),
        (1, 0.95),
        (2, 0.95),
        (anything, 0.95),
        (anything, 0.99),
        (anything, 1.0),
    ):
        package = choose_threshold(
            candidates, candidate_scores, groups, max_merges=merges, min_precision=floor
        )
        tests.append(("all photos", curve, merges, floor, package.threshold))
    for repeat, fold, held_out in group_folds(groups):  # 20 training sets of 3/4 of the photos
        training_pair = _training_pairs(candidates, held_out)
        for merges, floor in ((0, 0.95), (1, 0.95), (anything, 0.99), (anything, 1.0)):
            package = choose_threshold(
                candidates[training_pair],
                candidate_scores[training_pair],
                groups,
                max_merges=merges,
                min_precision=floor,
                scored_items=~held_out,
            )
            tests.append((f"training set {repeat}.{fold}", package.curve, merges, floor, package.threshold))
    message = "write the rule yourself: the package's threshold choice is switched off while my_rule runs"
    with _package_off(
        [my_rule], evaluation, ["_pick_threshold", "choose_threshold", "threshold_curve"], message
    ):
        chosen = [my_rule(c, max_merges=merges, min_precision=floor) for _, c, merges, floor, _ in tests]
    for (name, test_curve, merges, floor, expected), yours in zip(tests, chosen, strict=True):
        setting = f"{name}, max_merges={merges}, min_precision={floor}"
        assert yours is not None and round(float(yours), 2) in test_curve.index, (
            f"{setting}: return a threshold of curve.index"
        )
        row = test_curve.loc[round(float(yours), 2)]
        assert row["merges"] <= merges, f"{setting}: {float(yours):.2f} merges {int(row['merges'])} groups"
        assert row["precision"] >= floor, (
            f"{setting}: {float(yours):.2f} has precision {row['precision']:.3f}"
        )
        best = test_curve.loc[expected, "f1"]
        assert np.isclose(row["f1"], best), (
            f"{setting}: F1 {row['f1']:.4f} at your {float(yours):.2f}, but "
            f"{best:.4f} at {expected:.2f} keeps both conditions too"
        )
    print(
        f"Correct: your rule keeps both conditions and has the best F1 on all {len(tests)} curves "
        "and settings"
    )
    return my_rule


# --- exercise 3 ---------------------------------------------------------------------------------


def _small_curve(tp, fp, merges):
    """A curve like choose_threshold's on 5 grid points, with 100 true pairs to find. ``merges`` must fit
    ``fp``: every false pair joins two photos into one found group, so a grid point has a merge exactly
    where it has a false pair, and no more merges than false pairs."""
    c = pd.DataFrame({"tp": tp, "fp": fp}, index=[0.4, 0.5, 0.6, 0.7, 0.8])
    c["fn"], c["found"] = 100 - c["tp"], c["tp"] + c["fp"]
    c["precision"], c["recall"] = c["tp"] / c["found"], c["tp"] / 100
    c["f1"] = 2 * c["precision"] * c["recall"] / (c["precision"] + c["recall"])
    c["merges"], c["ari"] = merges, np.nan
    return c


def _own_curves() -> dict[str, pd.DataFrame]:
    """The check's hand-made curves. On ``first`` the best F0.5, F1 and F2 are three different thresholds;
    on ``second`` the best F1.5, F2 and F3 are: only F2 picks both of the right ones. On ``merging`` the
    false pairs from 0.5 to 0.7 sit in one mixed group, so a limit on false pairs and a limit on merges
    give different answers there (precision stays at least 0.95 from 0.5 up; at 0.4 it is 0.625, where
    a limit of 3 merges tells a fit_for that also asks for the precision floor apart)."""
    return {
        "first": _small_curve([100, 100, 90, 70, 40], [200, 40, 15, 2, 0], [2, 1, 1, 1, 0]),
        "second": _small_curve([100, 97, 89, 86, 70], [195, 192, 125, 81, 10], [3, 3, 2, 1, 1]),
        "merging": _small_curve([100, 100, 95, 80, 50], [60, 4, 3, 1, 0], [3, 1, 1, 1, 0]),
    }


def _fit_cases(curve, threshold, candidates, candidate_scores, groups) -> list[tuple]:
    """fit_for's cases ``(curve, t, max_merges, answer)``: on this curve the answer comes from the pairs (not
    from the curve), on the check's ``merging`` curve from its counts."""

    def from_pairs(t, max_merges):
        mixed = _merges_from_pairs(candidates, candidate_scores, groups, t)
        return (curve, t, max_merges, "delete" if mixed <= max_merges else "flag")

    cases = [from_pairs(float(f_beta_by_threshold(curve, 2).idxmax()), 0), from_pairs(threshold, 0)]
    # On this curve, the strictest point with one merge and precision at least 0.95, if any (where the rule's
    # precision floor would not decide either).
    one_merge = curve.index[(curve["merges"] == 1) & (curve["precision"] >= 0.95)]
    if len(one_merge):
        cases.append(from_pairs(float(one_merge.max()), 1))
    merging = _own_curves()["merging"]
    cases += [
        (merging, 0.4, 1, "flag"),  # 3 mixed groups
        (merging, 0.4, 3, "delete"),  # precision 0.625: the rule's precision floor is no part of fit_for
        (merging, 0.5, 0, "flag"),
        (merging, 0.5, 1, "delete"),  # 4 false pairs, 1 mixed group
        (merging, 0.6, 1, "delete"),
        (merging, 0.7, 0, "flag"),
        (merging, 0.8, 0, "delete"),
    ]
    return cases


def _merges_from_pairs(candidates, candidate_scores, groups, t) -> int:
    """Found groups at ``t`` holding two or more photos, recounted from the pairs (not from a curve)."""
    labels = connected_groups(len(groups), candidates[candidate_scores >= t])
    return int((pd.Series(groups).groupby(labels).nunique() > 1).sum())


def check_f2(
    best_f2: Callable,
    fit_for: Callable,
    curve: pd.DataFrame,
    threshold: float,
    candidates,
    candidate_scores,
    groups,
):
    """Exercise 3: no grid threshold of each test curve has a higher F2 than ``best_f2``'s (F2 recounted
    from the pair counts), and ``fit_for`` says "delete" exactly where at most ``max_merges`` found groups
    mix photos (``_fit_cases``: from the check's ``merging`` curve, recounted from the pairs on this one);
    the package's F-beta is switched off while they run. Returns ``(best_f2, fit_for)``."""
    candidates, candidate_scores = np.asarray(candidates), np.asarray(candidate_scores)
    groups = np.asarray(groups)
    own, own_2 = _own_curves()["first"], _own_curves()["second"]
    best_here = float(f_beta_by_threshold(curve, 2).idxmax())
    fit_cases = _fit_cases(curve, threshold, candidates, candidate_scores, groups)
    fit_stand_in = _not_written("fit_for", 3)
    fit_done = not not_written(fit_for, curve, threshold)
    if not_written(best_f2, curve):
        print("Not done yet: nothing below uses best_f2 or fit_for, so the lesson goes on without them")
        return stand_in(lambda curve: float(f_beta_by_threshold(curve, 2).idxmax())), (
            fit_for if fit_done else fit_stand_in
        )
    test_curves = {"the check's first curve": own, "the check's second curve": own_2, "this curve": curve}
    for repeat, fold, held_out in group_folds(groups):
        training_pair = _training_pairs(candidates, held_out)
        test_curves[f"training set {repeat}.{fold}"] = choose_threshold(
            candidates[training_pair], candidate_scores[training_pair], groups, scored_items=~held_out
        ).curve
    message = "compute F2 yourself: the package's F-beta is switched off while your functions run"
    with _package_off([best_f2, fit_for], evaluation, ["f_beta_by_threshold"], message):
        yours = {name: best_f2(test_curve) for name, test_curve in test_curves.items()}
        fits = [fit_for(c, t, max_merges=m) for c, t, m, _ in fit_cases] if fit_done else None
    for name, test_curve in test_curves.items():
        assert yours[name] is not None and round(float(yours[name]), 2) in test_curve.index, (
            f"{name}: return a threshold of curve.index"
        )
        f2, mine = f_beta_by_threshold(test_curve, 2), round(float(yours[name]), 2)
        assert f2[mine] >= f2.max() - 1e-12, (
            f"{name}: F2 is {f2[mine]:.3f} at your {mine:.2f} but {f2.max():.3f} at {f2.idxmax():.2f}; "
            "try again"
        )
    differ = sum(
        f_beta_by_threshold(c, 2).idxmax() != f_beta_by_threshold(c, 1).idxmax() for c in test_curves.values()
    )
    print(
        f"Correct on {len(test_curves)} curves ({differ} where the best F1 and the best F2 are different "
        f"thresholds). On this curve: F2 {f_beta_by_threshold(curve, 2)[best_here]:.3f} at {best_here:.2f}; "
        f"the best F1 ({curve['f1'].max():.3f}) is at {float(curve['f1'].idxmax()):.2f}; the rule, which "
        f"checks merges first, chose {threshold:.2f}"
    )
    if fits is None:
        print("now write fit_for")
    else:
        for (c, t, m, want), got in zip(fit_cases, fits, strict=True):
            assert got == want, (
                f"fit_for(curve, {t:.2f}, max_merges={m}) is {got!r}, but at {t:.2f} that curve has "
                f"{int(c.loc[t, 'fp'])} false pairs in {int(c.loc[t, 'merges'])} found groups that mix "
                f"photos (precision {c.loc[t, 'precision']:.3f}); the rule allows {m} such groups, "
                "whatever the precision. Try again"
            )
        print(
            f"fit_for correct at {len(fit_cases)} thresholds. At F2's {best_here:.2f} on this curve, "
            f"{int(curve.loc[best_here, 'merges'])} found groups mix photos, so it is fit to {fits[0]}; "
            f"at the chosen {threshold:.2f}, fit to {fits[1]}"
        )
    for label, small, betas in (("first", own, (0.5, 1, 2)), ("second", own_2, (1.5, 2, 3))):
        print(f"the check's {label} curve, F-scores from its counts:")
        f_scores = {f"F{b:g}": f_beta_by_threshold(small, b) for b in betas}
        table = small[["tp", "fp", "fn", "merges"]].assign(**f_scores)
        print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    return best_f2, (fit_for if fits is not None else fit_stand_in)


# --- exercise 4 ---------------------------------------------------------------------------------


def check_one_fold(one_fold: Callable, at_threshold: Callable, candidates, candidate_scores, groups, folds):
    """Exercise 4: on the 20 folds of ``folds`` (``cross_validate_threshold``'s table, seed 0) and 4 folds
    of another shuffle, ``one_fold`` gives the package's threshold, in-sample and held-out scores,
    calling ``at_threshold`` for each fold, with ``threshold_curve`` and ``scored_items`` switched off."""
    candidates, candidate_scores = np.asarray(candidates), np.asarray(candidate_scores)
    groups = np.asarray(groups)
    if not_written(at_threshold, candidates, candidate_scores, groups, 0.5):
        print("do exercise 1 first: this step scores the held-out side with your at_threshold")
        return _not_written("one_fold", 4)
    if not_written(one_fold, next(group_folds(groups))[2]):
        print("Not done yet: nothing below uses one_fold, so the lesson goes on without it")
        return _not_written("one_fold", 4)
    other_folds = cross_validate_threshold(candidates, candidate_scores, groups, n_repeats=1, seed=9)
    cases = [
        *zip(group_folds(groups), folds.iterrows(), strict=True),
        *zip(group_folds(groups, n_repeats=1, seed=9), other_folds.iterrows(), strict=True),
    ]
    curve_off = "score the held-out side with your at_threshold: threshold_curve is switched off"
    package_curve, rule_code = evaluation.threshold_curve, evaluation.choose_threshold.__code__

    def only_inside_the_rule(*args, **kwargs):  # the rule scores its own curve, without scored_items
        if sys._getframe(1).f_code is not rule_code:
            raise AssertionError(curve_off)
        if kwargs.get("scored_items") is not None:
            raise AssertionError(
                "relabel the groups yourself: choose_threshold's scored_items is switched off"
            )
        return package_curve(*args, **kwargs)

    reached = _names_holding(one_fold, [package_curve, cross_validate_threshold])
    assert not reached, f"{curve_off} (your one_fold uses {', '.join(reached)})"
    with (
        mock.patch.object(evaluation, "threshold_curve", only_inside_the_rule),
        _counting_calls(at_threshold) as calls,
    ):
        yours = [one_fold(held_out) for (_, _, held_out), _ in cases]
    assert calls[0] >= len(cases), "score each fold's held-out side with your at_threshold from exercise 1"
    for ((repeat, fold, held_out), (_, row)), (rule, p, r) in zip(cases, yours, strict=True):
        where = f"fold {repeat}.{fold} ({held_out.sum()} held-out files)"
        assert np.isclose(rule.threshold, row["threshold"]), (
            f"{where}: threshold {rule.threshold:.2f}, the package's {row['threshold']:.2f}"
        )
        assert np.isclose(rule.precision, row["in_sample_precision"]) and np.isclose(
            rule.recall, row["in_sample_recall"]
        ), (
            f"{where}: in-sample precision {rule.precision:.3f}, recall {rule.recall:.3f}; the package's "
            f"{row['in_sample_precision']:.3f}, {row['in_sample_recall']:.3f}: "
            "which true pairs did the rule count?"
        )
        assert np.isclose(p, row["held_out_precision"]) and np.isclose(r, row["held_out_recall"]), (
            f"{where}: held-out precision {p:.3f}, recall {r:.3f}; the package's "
            f"{row['held_out_precision']:.3f}, {row['held_out_recall']:.3f}"
        )
    print(f"Correct: the same threshold, in-sample and held-out scores on all {len(cases)} folds")
    return one_fold


# --- exercise 5 ---------------------------------------------------------------------------------


def _rule_key(row):  # smaller is better: the most pixels, colour, the highest centrality, the first path
    return -row["pixels"], not row["colour"], -row["centrality"], row["path"]


def _by_the_rule(table: pd.DataFrame) -> pd.DataFrame:
    """The oracle: the rule applied file by file, one found group at a time."""
    return table.loc[
        [min(part.index, key=lambda k: _rule_key(part.loc[k])) for _, part in table.groupby("found")]
    ]


_HAND = pd.DataFrame(  # found, pixels, colour, centrality, path
    [
        (7, 200, False, 0.1, "b.png"),
        (3, 100, False, 0.9, "c.png"),
        (7, 100, True, 0.9, "a.png"),
        (3, 100, True, 0.2, "d.png"),
        (5, 100, True, 0.8, "f.png"),
        (5, 100, True, 0.3, "e.png"),
        (1, 100, True, 0.5, "h.png"),
        (9, 50, False, 0.0, "i.png"),
        (1, 100, True, 0.5, "g.png"),
    ],
    columns=["found", "pixels", "colour", "centrality", "path"],
    index=range(10, 19),
)
_WANT = {
    7: (10, "the most pixels come first, before colour and centrality"),
    3: (13, "with equal pixels, colour comes before grayscale and before centrality"),
    5: (14, "with equal pixels and colour, the highest centrality wins"),
    1: (18, "on a full tie, the path that sorts first wins"),
    9: (17, "a file alone in its found group is kept"),
}


def check_keep_one(keep_one: Callable, files: pd.DataFrame):
    """Exercise 5: ``keep_one`` on five hand-made found groups (one for each key of the rule and a file
    alone), then on ``files`` against the rule applied file by file (switched off while it runs)."""
    expected_files = _by_the_rule(files)  # computed before keep_one runs
    message = "apply the rule yourself: the check's own answer is switched off while keep_one runs"
    module = sys.modules[__name__]
    with _package_off([keep_one], module, ["_by_the_rule", "_rule_key"], message):
        kept_here = {
            name: keep_one(table.copy()) for name, table in (("the hand-made table", _HAND), ("files", files))
        }
    if kept_here["files"] is None:
        not_done("keep_one", "the rule's choice, made by this check,")
        return stand_in(lambda files: _by_the_rule(files))
    for (name, yours), table in zip(kept_here.items(), (_HAND, files), strict=True):
        assert isinstance(yours, pd.DataFrame), "return the rows to keep (a DataFrame), not their index"
        assert set(yours.index) <= set(table.index), "keep the index of files (no reset_index)"
        assert sorted(yours["found"]) == sorted(table["found"].unique()), f"{name}: one row per found group"
    hand = kept_here["the hand-made table"]
    kept_by_group = dict(zip(hand["found"], hand.index, strict=True))
    for group, (row, reason) in _WANT.items():
        assert kept_by_group[group] == row, f"found group {group} of the hand-made table: {reason}"
    assert set(kept_here["files"].index) == set(expected_files.index), (
        "files: not the file the rule keeps in every group"
    )
    print(
        f"Correct! One file per found group by the rule, here {len(kept_here['files'])} of {len(files)} files"
    )
    return keep_one


# --- exercise 6 ---------------------------------------------------------------------------------

_SEARCHES = ("top_k", "near_duplicate_pairs", "pairwise_cosine")


@contextlib.contextmanager
def _searches_off(functions: Iterable[Callable], message: str) -> Iterator[None]:
    """Exercises 6 and 7: refuse a function that reaches into a library with a cosine or a search
    (lesson 03's ``LIBRARIES``, and FAISS), then, while the block runs, switch off the package's searches,
    ``embedkit.ann``'s and ``retrieval.score_matrix``, and the libraries' cosines and normalisations."""
    for function in functions:
        used = library_names(function, (*LIBRARIES, "faiss"))
        assert not used, (
            f"normalise the rows and take the products in NumPy yourself: your {function.__name__} uses "
            f"{', '.join(used)} (the check refuses SciPy, scikit-learn, PyTorch, FAISS and the package)"
        )
    others = [(retrieval, "score_matrix")]
    # Without FAISS (lesson 05 in Colab installs none) embedkit.ann cannot load, nor be called.
    if importlib.util.find_spec("faiss") is not None:
        import embedkit.ann as ann

        others += [(ann, "build_flat"), (ann, "build_ivf"), (ann, "range_pairs")]
    with (
        _package_off(functions, similarity, _SEARCHES, message),
        switched_off([*library_cosines(), *others], message),
    ):
        yield


def _package_nearest_train(test_vectors, train_vectors):
    rows, scores = similarity.top_k(test_vectors, train_vectors, k=1)
    return rows[:, 0], scores[:, 0]


def check_leak_search(
    nearest_train: Callable,
    leaking: Callable,
    X,
    splits,
    new_split,
    paths,
    candidates,
    candidate_scores,
    threshold: float,
):
    """Exercise 6: ``nearest_train`` against a float64 brute force on two splits (the second with rescaled
    vectors), and the test files ``leaking`` flags against ``leak_report`` at three thresholds, with the
    package's and the libraries' searches and cosines switched off (``_searches_off``). Returns
    ``(nearest_train, leaking)``."""
    X, splits, new_split = np.asarray(X), np.asarray(splits), np.asarray(new_split)
    candidates, candidate_scores = np.asarray(candidates), np.asarray(candidate_scores)
    test_rows, train_rows = splits == "test", splits == "train"
    if not_written(nearest_train, X[test_rows], X[train_rows]) or not_written(leaking, np.array([0.5]), 0.4):
        print("Not done yet: nothing below uses nearest_train or leaking, so the lesson goes on without them")
        return stand_in(_package_nearest_train), _not_written("leaking", 6)
    n = len(X)
    unit_X = X.astype(np.float64) / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
    lengths = np.random.default_rng(5).uniform(0.5, 3, (n, 1))  # the same directions, other lengths
    cases = {"this split": (splits, X), "the re-split, rescaled": (new_split, X * lengths)}
    thresholds = sorted(
        {threshold, max(COSINE_GRID[0], round(threshold - 0.1, 2)), min(1.0, round(threshold + 0.05, 2))}
    )
    message = "search with NumPy yourself: the package's and the libraries' searches are off during the check"
    with _searches_off([nearest_train, leaking], message):
        yours = {
            case: nearest_train(v[split == "test"], v[split == "train"]) for case, (split, v) in cases.items()
        }
        flags = {t: leaking(np.asarray(yours["this split"][1]), t) for t in thresholds}
        at_t = np.asarray(leaking(np.array([0.5, 0.4999]), 0.5))
    for case, (split, _) in cases.items():
        nearest, nearest_scores = (np.asarray(a) for a in yours[case])
        exact = unit_X[split == "test"] @ unit_X[split == "train"].T  # float64
        shape = (int((split == "test").sum()),)
        assert nearest.shape == nearest_scores.shape == shape, (
            f"{case}: one entry per test file, shape {shape}"
        )
        assert ((nearest >= 0) & (nearest < exact.shape[1])).all(), (
            f"{case}: nearest holds rows of train_vectors"
        )
        assert np.allclose(nearest_scores, exact[np.arange(len(exact)), nearest], atol=1e-5), (
            f"{case}: nearest_scores are not the cosines of the test files with those training rows"
        )
        assert np.allclose(nearest_scores, exact.max(axis=1), atol=1e-5), (
            f"{case}: some test files have a more similar training file than the one in nearest"
        )
    assert np.array_equal(at_t, [True, False]), (
        "leaking: at least t, so a score equal to t leaks (and 0.4999 does not)"
    )
    best = (unit_X[test_rows] @ unit_X[train_rows].T).max(axis=1)
    for t in thresholds:
        flagged = np.asarray(flags[t])
        assert flagged.shape == best.shape and flagged.dtype == bool, (
            "leaking: one True or False per test file"
        )
        listed = leak_report(paths, splits, candidates[candidate_scores >= t])["test_path"]
        reference = np.isin(np.asarray(paths, dtype=object)[test_rows], listed.to_numpy())
        clear = np.abs(best - t) > 1e-4  # a file scoring within rounding of t may fall on either side
        assert np.array_equal(flagged[clear], reference[clear]), (
            f"at {t:.2f}: not the test files leak_report lists"
        )
    leaks = leak_report(paths, splits, candidates[candidate_scores >= threshold])
    print(
        f"Correct at {len(thresholds)} thresholds: at {threshold:.2f}, {np.asarray(flags[threshold]).sum()} "
        f"leaking test files (leak_report: {len(leaks)})"
    )
    return nearest_train, leaking


# --- exercise 7 ---------------------------------------------------------------------------------


def _counting_array() -> type:
    """A fresh spy class: an array that adds up the entries of every 2-D matrix product taken with it."""

    class Counting(np.ndarray):
        scores = 0

        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            def plain(xs):
                return tuple(x.view(np.ndarray) if isinstance(x, Counting) else x for x in xs)

            kwargs = {k: plain(v) if k == "out" else v for k, v in kwargs.items()}
            result = getattr(ufunc, method)(*plain(inputs), **kwargs)
            if ufunc is np.matmul and np.ndim(result) == 2:
                Counting.scores += result.size
                return result
            return result.view(Counting) if type(result) is np.ndarray else result

        def __array_function__(self, func, types, args, kwargs):  # np.dot, np.einsum, ...: counted like @
            if func not in (np.dot, np.einsum, np.inner, np.tensordot):
                return super().__array_function__(func, types, args, kwargs)

            def plain(x):
                if isinstance(x, Counting):
                    return x.view(np.ndarray)
                return type(x)(map(plain, x)) if isinstance(x, list | tuple) else x

            result = func(*plain(args), **kwargs)
            Counting.scores += result.size if np.ndim(result) == 2 else 0
            return result

        def dot(self, b, out=None):  # the method X.dot(Y), counted like np.dot
            return np.dot(self, b, out=out)

    return Counting


@contextlib.contextmanager
def _keeping_the_spy(spy: type) -> Iterator[None]:
    """While the block runs, np.asarray(spy, dtype=...) and the like hand the spy back, not a plain copy."""

    def keeping(convert):
        def converted(a, *args, **kwargs):
            result = convert(a, *args, **kwargs)
            return result.view(spy) if isinstance(a, spy) and type(result) is np.ndarray else result

        return converted

    with contextlib.ExitStack() as stack:
        for name in ("asarray", "array", "asanyarray", "ascontiguousarray"):
            stack.enter_context(mock.patch.object(np, name, keeping(getattr(np, name))))
        yield


def check_chunked_pairs(chunked_pairs: Callable, vectors, t: float, brute, chunked, block: int = 512):
    """Exercise 7: ``chunked_pairs`` gives the brute-force pairs (``brute``, sorted) and the package's
    (``chunked``) at block sizes 128, ``block`` and 2048, after one pair scoring exactly its ``t`` on
    three small vectors; its peak memory (tracemalloc) stays far below the full matrix, at most doubles
    when the rows double and grows with the block; a spy array counts the scores its matrix products
    compute on 3,000 rows. The package's and the libraries' searches are switched off meanwhile
    (``_searches_off``)."""
    if not_written(chunked_pairs, vectors[:3], t, 2):
        print("Not done yet: nothing below uses chunked_pairs, so the lesson goes on without it")
        return stand_in(
            lambda X, t, chunk_size: similarity.near_duplicate_pairs(
                X, threshold=t, chunk_size=chunk_size, precision="float32"
            )[0]
        )
    size = len(vectors)
    full_bytes = size * size * 4  # the float32 matrix of all scores
    spy = _counting_array()
    spy_rows, spy_block = (
        min(3000, size),
        512,
    )  # the rows from each block's start on: about half of all scores
    needed = sum(min(spy_block, spy_rows - s) * (spy_rows - s) for s in range(0, spy_rows, spy_block))
    your_pairs, your_peaks = {}, {}
    message = "write the loop yourself: the package's and the libraries' searches are off during the check"
    with _searches_off([chunked_pairs], message):
        # rows 0 and 1 are equal unit vectors, so their cosine is exactly 1.0 on any machine: "at least t"
        exact = np.asarray(chunked_pairs(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 1.0, 2))
        exact = exact.reshape(-1, 2).tolist()
        assert exact == [[0, 1]], (
            f"rows [1, 0], [1, 0], [0, 1] at t = 1.0, chunk_size 2: your pairs {exact}, expected [[0, 1]]: "
            + (
                "keep the scores at least t (>=), not only those above it"
                if not exact
                else "each pair once, as (i, j) with i < j, in row numbers of X"
            )
        )
        with _keeping_the_spy(spy):
            chunked_pairs(vectors[:spy_rows].view(spy), t, spy_block)
        for rows_per_block in ("half", 128, block, 2048):  # "half": the first half of the rows, blocks of 128
            tracemalloc.start()
            try:
                X, chunk_size = (
                    (vectors[: size // 2], 128) if rows_per_block == "half" else (vectors, rows_per_block)
                )
                your_pairs[rows_per_block] = np.asarray(chunked_pairs(X, t, chunk_size))
                your_peaks[rows_per_block] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    half_peak = your_peaks.pop("half")
    del your_pairs["half"]
    for rows_per_block, pairs in your_pairs.items():
        assert pairs.ndim == 2 and pairs.shape[1] == 2, "return a (p, 2) array of row numbers (i, j)"
        assert (pairs[:, 0] < pairs[:, 1]).all(), (
            "each pair once, as (i, j) with i < j: never a row with itself"
        )
        assert np.array_equal(pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))], brute), (
            f"chunk_size {rows_per_block}: {len(pairs)} pairs, brute force {len(brute)}; "
            "check the normalising, "
            f"the row numbers you add back to the block's positions, and the last, shorter block"
        )
    assert np.array_equal(np.unique(your_pairs[block], axis=0), np.unique(chunked, axis=0)), (
        "not the package's pairs"
    )
    assert spy.scores > 0, (
        "your pairs are right, but the check counted no scores: it counts the scores, and tracemalloc "
        "measures the memory, only of products taken in NumPy (@, np.matmul, np.dot, .dot or np.einsum) "
        "on X or arrays computed from it, not in another library such as PyTorch; take them in NumPy"
    )
    assert your_peaks[128] < full_bytes / 4, (
        f"at chunk_size 128 your peak extra memory was {your_peaks[128] / 1e6:.0f} MB: "
        "that is the full matrix's scale"
    )
    # Bounded memory (a unit copy, a block or two, the pairs) doubles when the rows double; anything kept
    # for every block (a mask, a block of scores) grows as n^2, so it more than doubles. The slack, a quarter
    # of one 128-row float32 block plus the pairs, is far below what a kept boolean mask adds (n^2 / 8 bytes).
    beyond_double = your_peaks[128] - 2 * half_peak
    assert beyond_double < 128 * size + your_pairs[128].nbytes, (
        f"at chunk_size 128 your peak extra memory was {half_peak / 1e6:.1f} MB on the first "
        f"{size // 2:,} rows and {your_peaks[128] / 1e6:.1f} MB on all {size:,}: it more than doubled "
        "with the rows, so it grows as n^2; keep no block's scores or mask once its pairs are taken: "
        "turn each block into pairs before the next"
    )
    grown, one_block = your_peaks[2048] - your_peaks[128], (2048 - 128) * size * 4
    assert grown > 0.8 * one_block, (
        f"from chunk_size 128 to 2048 your peak grew by {grown / 1e6:.0f} MB; "
        "a block of chunk_size rows against "
        f"the vectors from its first row on grows by at least {one_block / 1e6:.0f} MB"
    )
    assert spy.scores <= needed, (
        f"on {spy_rows:,} rows in blocks of {spy_block}, your matrix products computed "
        f"{spy.scores:,} scores; each block against the rows from its start on needs only "
        f"{needed:,}: a pair with an earlier row was found already"
    )
    counted = f"{spy.scores:,} scores on {spy_rows:,} rows in blocks of {spy_block}, not all {spy_rows**2:,}"
    print(
        f"Correct! The {len(brute)} brute-force pairs at every block size; your peak extra memory "
        + ", ".join(f"{peak / 1e6:.0f} MB at chunk_size {k}" for k, peak in your_peaks.items())
        + f" (the full matrix: {full_bytes / 1e6:.0f} MB), {half_peak / 1e6:.0f} MB on half the rows at 128;"
        + f" {counted}"
    )
    return chunked_pairs


# ------------------------------------------------------------------- given plotting and printing code
# (not exercises): what the lesson's cells call to draw the figures. The notebook keeps the lines that
# compute what the lesson is about (the scores, the folds, the pairs and copies shown); the layout,
# labels and annotations around them live here.


def plot_score_histograms(false_scores, true_scores, stored_threshold, not_drawn, true_below, network):
    """Left: every candidate pair's score on a log axis, false and true pairs apart, the stored threshold
    dashed and a note counting the ``not_drawn`` pairs below the grid (``true_below`` of them true).
    Right: the range around the highest false pair on a linear axis, the two kinds side by side."""
    import matplotlib.pyplot as plt

    bins = np.round(np.arange(30, 101) / 100, 2)  # edges on the 0.01 grid: the threshold is a bin edge
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    ax.hist(false_scores, bins=bins, color="C0", alpha=0.7, label="different photos (false pairs)")
    ax.hist(true_scores, bins=bins, histtype="step", lw=2, color="C1", label="same photo (true pairs)")
    ax.axvline(stored_threshold, color="black", ls="--", label=f"stored threshold {stored_threshold:.2f}")
    ax.set_yscale("log")
    ax.set(
        xlabel="cosine similarity",
        ylabel="pairs (log scale)",
        xlim=(COSINE_GRID[0], 1.0),
        title=f"All pairs from {COSINE_GRID[0]:.2f} up ({network})",
    )
    all_scores = np.concatenate([false_scores, true_scores])
    ax.set_ylim(top=np.histogram(all_scores, bins=bins)[0].max() * 30)  # room for the note and the legend
    ax.text(
        0.01,
        0.97,
        f"not drawn:\n{not_drawn:,} pairs\nbelow {COSINE_GRID[0]:.2f}, {true_below} true",
        transform=ax.transAxes,
        va="top",
        fontsize=11,
        bbox={"fc": "white", "ec": "none", "alpha": 0.8},
    )
    ax.legend(loc="upper right", fontsize=11)
    # Right: where the two kinds overlap, side by side on a linear axis, so no bar hides another.
    highest_false = false_scores.max()
    lo = np.floor((highest_false - 0.10) * 100)  # in grid steps: 0.10 below the highest false pair ...
    near = np.round(np.arange(lo, np.ceil((highest_false + 0.05) * 100) + 1) / 100, 2)  # ... to 0.05 above
    false_n, _ = np.histogram(false_scores, bins=near)
    true_n, _ = np.histogram(true_scores, bins=near)
    zoom.bar(near[:-1] + 0.0025, false_n, width=0.0045, color="C0", label="false pairs")
    zoom.bar(near[:-1] + 0.0075, true_n, width=0.0045, color="C1", label="true pairs")
    zoom.axvline(stored_threshold, color="black", ls="--")
    zoom.set(
        xlabel="cosine similarity",
        ylabel="pairs (linear scale)",
        xlim=(near[0], near[-1]),
        ylim=(0, 1.4 * max(false_n.max(), true_n.max())),
        title=f"Near the highest false pair ({highest_false:.3f})",
    )
    zoom.yaxis.set_major_locator(plt.MaxNLocator(integer=True))  # pairs are counted: whole-number ticks
    zoom.xaxis.set_major_locator(plt.MultipleLocator(0.02))
    zoom.xaxis.set_minor_locator(plt.MultipleLocator(0.01))  # one tick per bin
    zoom.legend(loc="upper right", fontsize=11)  # the headroom keeps the legend above every bar
    fig.tight_layout()


def plot_fold_scores(folds: pd.DataFrame, threshold: float) -> None:
    """One point per fold: its held-out precision (left) and recall (right) at the threshold it chose; a red
    diamond where it merged held-out photos, ×k where k folds coincide (scores rounded to 0.01), and along
    the top how many folds chose each threshold; dashed: ``threshold``, chosen on all photos."""
    import matplotlib.pyplot as plt

    merged = (folds["held_out_merges"] > 0).to_numpy()
    chose = folds["threshold"].to_numpy()
    counts = folds["threshold"].value_counts()
    lower = chose < threshold - 1e-9
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4))  # own y axes: recall spans far less than precision
    for ax, metric in zip(axes, ["precision", "recall"], strict=True):
        y = folds[f"held_out_{metric}"].round(2).to_numpy()
        same = pd.DataFrame({"t": chose, "y": y, "merged": merged}).value_counts().reset_index(name="count")
        for is_merged, style in (
            (False, {"s": 55, "color": "C0", "label": "held-out photos kept apart"}),
            (True, {"s": 70, "marker": "D", "color": "crimson", "label": "held-out photos merged"}),
        ):
            part = same[same["merged"] == is_merged]
            ax.scatter(part["t"], part["y"], alpha=0.85, **style)
            for t, yy, k in zip(part["t"], part["y"], part["count"], strict=True):
                if k > 1:
                    ax.annotate(
                        f"\u00d7{k}", (t, yy), xytext=(6, -4), textcoords="offset points", fontsize=11
                    )
        ax.axvline(
            threshold,
            color="black",
            ls="--",
            lw=1.2,
            zorder=0,
            label=f"chosen on all photos ({threshold:.2f})",
        )
        ax.xaxis.set_major_locator(plt.MultipleLocator(0.02))
        ax.xaxis.set_minor_locator(plt.MultipleLocator(0.01))  # one minor tick per grid step
        ax.set_xlim(min(chose.min(), threshold) - 0.012, max(chose.max(), threshold) + 0.02)
        for t, k in counts.items():  # how many folds chose each threshold, along the top
            ax.annotate(
                str(k),
                (t, 1),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=11,
                color="dimgrey",
            )
        ax.set_title(f"held-out {metric}", pad=20)  # room for the counts above the panel
        ax.set_xlabel("threshold the fold chose on 3/4 of the photos")
    axes[0].set_ylabel("score on the held-out 1/4")
    axes[0].legend(loc="lower right")
    fig.suptitle(
        f"{len(folds)} folds (seed 0): {int((lower & merged).sum())} of the {int(lower.sum())} folds "
        f"that chose below {threshold:.2f} merged held-out photos",
        fontsize=13,
    )
    fig.tight_layout()


def show_pair_panels(false_pairs, copy_pairs, threshold: float, files, labels) -> None:
    """Each pair as a column of two images: first the ``false_pairs``, then, past a grey divider, the
    ``copy_pairs`` (copy, original); each a tuple (row a, row b, cosine) into ``files`` (image paths) and
    ``labels`` (the text under each image). A red title marks a mistake at ``threshold``."""
    import matplotlib.pyplot as plt

    from embedkit.images import load_rgb

    panels = [(*p, "false pair") for p in false_pairs] + [(*p, "copy, original") for p in copy_pairs]
    fig, axes = plt.subplots(2, len(panels), figsize=(12, 6.5), squeeze=False)
    for j, (a, b, score, what) in enumerate(panels):
        for row, item in enumerate((a, b)):
            ax = axes[row, j]
            ax.imshow(load_rgb(files[item]))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(labels[item], fontsize=11)
        wrong = (score >= threshold) == (what == "false pair")  # a false pair found, or a copy missed
        verdict = (
            ("merged" if wrong else "kept apart")
            if what == "false pair"
            else ("missed" if wrong else "found")
        )
        axes[0, j].set_title(
            f"{what}\ncos {score:.3f}: {verdict}", fontsize=11, color="crimson" if wrong else "black"
        )
    fig.suptitle(
        f"Left: the {len(false_pairs)} highest false pairs with a new file. Right: the {len(copy_pairs)} "
        f"new copies least like their original (one per photo).\nRed title: a mistake at the threshold "
        f"{threshold:.2f}",
        fontsize=12,
    )
    fig.tight_layout()
    if false_pairs and copy_pairs:
        left, right = axes[1, len(false_pairs) - 1].get_position(), axes[0, len(false_pairs)].get_position()
        fig.add_artist(plt.Line2D([(left.x1 + right.x0) / 2] * 2, [left.y0, right.y1], color="grey", lw=1.5))


def show_missed_copies(missed: pd.DataFrame, photos: dict, threshold: float, most: int = 6) -> None:
    """The ``most`` lowest-scoring rows of ``missed`` (new copies with ``file``, ``photo``, ``edits``,
    ``short side`` and ``cosine``), each above its original (``photos``: photo -> path)."""
    import matplotlib.pyplot as plt

    from embedkit.images import load_rgb

    shown = missed.sort_values("cosine", kind="stable").head(most)
    if not len(shown):
        return
    fig, axes = plt.subplots(2, len(shown), figsize=(max(1.75 * len(shown), 5), 4.9), squeeze=False)
    for j, (_, row) in enumerate(shown.iterrows()):
        for r, (path, label) in enumerate(
            (
                (row["file"], f"{row['short side']} px, {row['edits']}"),
                (photos[row["photo"]], f"original, {row['photo']}"),
            )
        ):
            axes[r, j].imshow(load_rgb(path))
            axes[r, j].set(xticks=[], yticks=[])
            axes[r, j].set_xlabel(label.replace(", ", ",\n"), fontsize=11)
        axes[0, j].set_title(f"cos {row['cosine']:.3f}", fontsize=12, color="crimson")
    which = (
        f"All {len(shown)}"
        if len(shown) == len(missed)
        else f"The {len(shown)} lowest-scoring of the {len(missed)}"
    )
    fig.suptitle(
        f"{which} resized new copies without a sticker\nmissed at {threshold:.2f} (top), "
        "above their originals",
        fontsize=12,
    )
    fig.tight_layout()
