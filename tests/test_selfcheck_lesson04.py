"""The self-checks of lesson 04: each accepts the right answer, lets a stub through with a stand-in and
"Not done yet", and refuses the mistakes a learner makes. Small data made here, no network."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score

from embedkit.maps import neighbour_overlap
from embedkit.retrieval import relevance_from_keys
from embedkit.selfcheck import is_stand_in, lesson04

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 12)) * np.linspace(3, 0.5, 12) + 2
U = X / np.linalg.norm(X, axis=1, keepdims=True)
XY_PCA, XY_TSNE = RNG.standard_normal((40, 2)), RNG.standard_normal((40, 2))

# A small retrieval set: 8 photo groups of 4 images (an original and three edits), 4 labels.
N_GROUPS, PER_GROUP = 8, 4
GROUPS = np.repeat([f"g{i}" for i in range(N_GROUPS)], PER_GROUP)
LABELS = np.repeat(["a", "a", "b", "b", "b", "c", "d", "d"], PER_GROUP)
KINDS = np.tile(["original", "watermark", "crop", "resize"], N_GROUPS)
_points = np.repeat(RNG.standard_normal((N_GROUPS, 16)), PER_GROUP, axis=0) + 0.9 * RNG.standard_normal(
    (32, 16)
)
_unit = _points / np.linalg.norm(_points, axis=1, keepdims=True)
S = _unit @ _unit.T
SAME_PHOTO = relevance_from_keys(GROUPS)
ORIGINAL_OF = np.repeat(np.arange(0, 32, PER_GROUP), PER_GROUP)
WATERMARKED = KINDS == "watermark"
N = len(S)
IS_SELF = np.eye(N, dtype=bool)


def knn(points, k):
    dist = cdist(points, points)
    np.fill_diagonal(dist, np.inf)
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def not_done(capsys, check, stub, *data):
    returned = check(stub, *data)
    assert "Not done yet" in capsys.readouterr().out
    return returned


# --- PCA ---


def pca_right(points, axes):
    centred = points - points.mean(axis=0)
    _, s, Vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ Vt[:axes].T, (s**2 / np.sum(s**2))[:axes]


def pca_not_centred(points, axes):
    _, s, Vt = np.linalg.svd(points, full_matrices=False)
    return points @ Vt[:axes].T, (s**2 / np.sum(s**2))[:axes]


def pca_shares_of_kept(points, axes):
    coords, _ = pca_right(points, axes)
    centred = points - points.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)[:axes]
    return coords, s**2 / np.sum(s**2)


def pca_library(points, axes):
    fitted = PCA(n_components=axes).fit(points)
    return fitted.transform(points), fitted.explained_variance_ratio_


def test_pca(capsys):
    assert lesson04.check_pca(pca_right, U, X) is pca_right
    assert "Correct!" in capsys.readouterr().out
    stand_in = not_done(capsys, lesson04.check_pca, lambda points, axes: (None, None), U, X)
    assert is_stand_in(stand_in) and stand_in(U, 2)[0].shape == (40, 2)
    assert is_stand_in(not_done(capsys, lesson04.check_pca, stand_in, U, X))  # run twice: still the stand-in
    for wrong in (pca_not_centred, pca_shares_of_kept, pca_library):
        with pytest.raises(AssertionError):
            lesson04.check_pca(wrong, U, X)


# --- neighbour overlap ---


def overlap_right(full, on_map, k):
    nn_full, nn_map = knn(full, k), knn(on_map, k)
    return np.array([len(set(a) & set(b)) / k for a, b in zip(nn_full, nn_map, strict=True)])


def overlap_over_union(full, on_map, k):
    return np.array(
        [
            len(set(a) & set(b)) / len(set(a) | set(b))
            for a, b in zip(knn(full, k), knn(on_map, k), strict=True)
        ]
    )


def overlap_with_itself(full, on_map, k):  # forgets to leave each point out: itself is its first neighbour
    def near(points):
        return np.argsort(cdist(points, points), axis=1, kind="stable")[:, :k]

    return np.array([len(set(a) & set(b)) / k for a, b in zip(near(full), near(on_map), strict=True)])


def overlap_library(full, on_map, k):
    return neighbour_overlap(full, on_map, k)


def test_overlap(capsys):
    assert lesson04.check_overlap(overlap_right, U, XY_PCA, XY_TSNE) is overlap_right
    assert "Correct!" in capsys.readouterr().out
    stand_in = not_done(capsys, lesson04.check_overlap, lambda full, on_map, k: None, U, XY_PCA, XY_TSNE)
    assert is_stand_in(stand_in) and stand_in(U, XY_PCA, 3).shape == (40,)
    for wrong in (overlap_over_union, overlap_with_itself, overlap_library):
        with pytest.raises(AssertionError):
            lesson04.check_overlap(wrong, U, XY_PCA, XY_TSNE)


# --- none, one or two overlays ---


def overlay_right(S, original_of, a, b):
    return S[a, b], (S[a, original_of[b]] + S[original_of[a], b]) / 2, S[original_of[a], original_of[b]]


def overlay_one_way(S, original_of, a, b):
    return S[a, b], S[a, original_of[b]], S[original_of[a], original_of[b]]


def overlay_own_original(S, original_of, a, b):
    return S[a, b], (S[a, original_of[a]] + S[b, original_of[b]]) / 2, S[original_of[a], original_of[b]]


def test_overlay_scores(capsys):
    data = (S, ORIGINAL_OF, WATERMARKED, GROUPS)
    assert lesson04.check_overlay_scores(overlay_right, *data) is overlay_right
    assert "Correct!" in capsys.readouterr().out
    stand_in = not_done(capsys, lesson04.check_overlay_scores, lambda S, o, a, b: (None, None, None), *data)
    assert is_stand_in(stand_in)
    assert all(
        np.allclose(x, y)
        for x, y in zip(
            stand_in(S, ORIGINAL_OF, [1, 5], [9, 13]),
            overlay_right(S, ORIGINAL_OF, np.array([1, 5]), np.array([9, 13])),
            strict=True,
        )
    )
    kept = [stand_in]  # the stand-in held under another name is switched off while the learner's code runs

    def overlay_through_stand_in(S, original_of, a, b):
        return kept[0](S, original_of, a, b)

    for wrong in (overlay_one_way, overlay_own_original, overlay_through_stand_in):
        with pytest.raises(AssertionError):
            lesson04.check_overlay_scores(wrong, *data)


def test_prediction(capsys):
    for step_two in (0.05, 0.001):  # nothing about the steps before the guess is made
        lesson04.check_prediction(None, 0.01, step_two)
        out = capsys.readouterr().out
        assert "Not done yet" in out and "+0.0" not in out
        assert "sharing" not in out and "first overlay" not in out
    lesson04.check_prediction("b", 0.01, 0.05)
    assert "Correct!" in capsys.readouterr().out
    lesson04.check_prediction("a", 0.01, 0.05)
    assert "did not hold" in capsys.readouterr().out
    for wrong in ("c", "B", True):
        with pytest.raises(AssertionError):
            lesson04.check_prediction(wrong, 0.01, 0.05)
    # the build run's numbers that the lesson quotes are checked on EfficientNet-Lite0 only
    lesson04.check_prediction("b", 0.01, 0.05, "efficientnet_lite0", lesson04.BUILD_RUN_LITE0)
    assert "Correct!" in capsys.readouterr().out
    drifted = np.add(lesson04.BUILD_RUN_LITE0, [0, 0, 0.01, 0, 0])
    with pytest.raises(AssertionError, match="out of date"):
        lesson04.check_prediction("b", 0.01, 0.05, "efficientnet_lite0", drifted)
    lesson04.check_prediction("b", 0.01, 0.05, "efficientnet_lite2", drifted)
    assert "Correct!" in capsys.readouterr().out


# --- average precision and recall@k ---


def ap_right(scores, relevant):
    hits = relevant[np.argsort(-scores, kind="stable")]
    return float((np.cumsum(hits) / np.arange(1, len(hits) + 1))[hits].mean())


def ap_ascending(scores, relevant):  # ranks worst first
    hits = relevant[np.argsort(scores, kind="stable")]
    return float((np.cumsum(hits) / np.arange(1, len(hits) + 1))[hits].mean())


def ap_over_all_places(scores, relevant):  # averages the precision at every place, not only at relevant ones
    hits = relevant[np.argsort(-scores, kind="stable")]
    return float((np.cumsum(hits) / np.arange(1, len(hits) + 1)).mean())


def ap_library(scores, relevant):
    return float(average_precision_score(relevant, scores))


def recall_right(scores, relevant, k):
    return float(relevant[np.argsort(-scores, kind="stable")[:k]].any())


def recall_counts(scores, relevant, k):  # how many relevant, not whether any
    return float(relevant[np.argsort(-scores, kind="stable")[:k]].sum())


def recall_off_by_one(scores, relevant, k):
    return float(relevant[np.argsort(-scores, kind="stable")[: k + 1]].any())


def recall_fraction_of_all(scores, relevant, k):
    found = relevant[np.argsort(-scores, kind="stable")[:k]].sum()
    return float(found / relevant.sum()) if relevant.any() else 0.0


def test_ap(capsys):
    assert lesson04.check_ap(ap_right, S, SAME_PHOTO) is ap_right
    assert "Correct!" in capsys.readouterr().out
    stand_in = not_done(capsys, lesson04.check_ap, lambda scores, relevant: None, S, SAME_PHOTO)
    assert is_stand_in(stand_in) and stand_in(np.array([0.9, 0.1]), np.array([False, True])) == 0.5
    for wrong in (ap_ascending, ap_over_all_places, ap_library):
        with pytest.raises(AssertionError):
            lesson04.check_ap(wrong, S, SAME_PHOTO)


def test_recall(capsys):
    assert lesson04.check_recall(recall_right, S, SAME_PHOTO, LABELS) is recall_right
    assert "Correct!" in capsys.readouterr().out
    stand_in = not_done(
        capsys, lesson04.check_recall, lambda scores, relevant, k: None, S, SAME_PHOTO, LABELS
    )
    assert is_stand_in(stand_in) and stand_in(np.array([0.9, 0.1]), np.array([False, True]), 1) == 0.0
    for wrong in (recall_counts, recall_off_by_one, recall_fraction_of_all):
        with pytest.raises(AssertionError):
            lesson04.check_recall(wrong, S, SAME_PHOTO, LABELS)


def test_recall_on_hard_task(capsys):
    lesson04.check_recall_on_hard_task(recall_right, S, GROUPS, LABELS)
    assert "so does yours" in capsys.readouterr().out
    lesson04.check_recall_on_hard_task(lesson04.stand_in_recall, S, GROUPS, LABELS)
    assert "not compared" in capsys.readouterr().out
    for wrong in (recall_off_by_one, recall_fraction_of_all):
        with pytest.raises(AssertionError):
            lesson04.check_recall_on_hard_task(wrong, S, GROUPS, LABELS)


# --- does size explain the lowest resize copy? ---

SIDES = np.array([112, 112, 112, 134, 134, 146, 146, 157, 157, 168, 168, 168])
SCORES = {  # the lowest is always the first 112 px copy
    # smaller copies lower, but another 112 px copy keeps 0.97, above the median
    "not alone": [0.60, 0.97, 0.70, 0.80, 0.82, 0.84, 0.86, 0.95, 0.96, 0.98, 0.99, 0.985],
    # the same, with no keeper
    "yes": [0.60, 0.75, 0.70, 0.80, 0.82, 0.84, 0.86, 0.95, 0.96, 0.98, 0.99, 0.985],
    # smaller copies score higher
    "no": [0.60, 0.99, 0.98, 0.97, 0.96, 0.90, 0.85, 0.80, 0.75, 0.70, 0.65, 0.62],
}


def size_facts(scores):
    """The right share_below and best_as_small for SIDES and scores (the lowest is the first 112 px copy)."""
    scores = np.asarray(scores)
    median, shrunk = np.median(scores), SIDES <= 112
    below = scores < median
    return (below[shrunk].mean(), below[~shrunk].mean()), scores[1:3].max()


def size_rule(rho, share_below, best_as_small, median):
    if not (rho > 0 and share_below[0] > share_below[1]):
        return "no"
    return "not alone" if best_as_small >= median else "yes"


def size_stub(rho, share_below, best_as_small, median):
    return None


def rule_without_rho(rho, share_below, best_as_small, median):
    return size_rule(1.0, share_below, best_as_small, median)


def rule_without_shares(rho, share_below, best_as_small, median):
    return size_rule(rho, (1, 0), best_as_small, median)


def rule_swapped(rho, share_below, best_as_small, median):
    return {"yes": "not alone", "not alone": "yes", "no": "no"}[
        size_rule(rho, share_below, best_as_small, median)
    ]


def rule_keeper_ignored(rho, share_below, best_as_small, median):
    return "no" if size_rule(rho, share_below, best_as_small, median) == "no" else "not alone"


def rule_either_signal(rho, share_below, best_as_small, median):  # "or" where the lesson says "and"
    if not (rho > 0 or share_below[0] > share_below[1]):
        return "no"
    return "not alone" if best_as_small >= median else "yes"


def rule_strictly_above(rho, share_below, best_as_small, median):  # ">" where the lesson says "at or above"
    if size_rule(rho, share_below, best_as_small, median) == "no":
        return "no"
    return "not alone" if best_as_small > median else "yes"


def rule_rho_only(rho, share_below, best_as_small, median):
    if rho <= 0:
        return "no"
    return "not alone" if best_as_small >= median else "yes"


@pytest.mark.parametrize("answer", SCORES)
def test_size_explains(capsys, answer):
    shares, best = size_facts(SCORES[answer])
    lesson04.check_size_explains(shares, best, size_rule, SIDES, SCORES[answer])
    assert f"Correct! On this set your rule reads '{answer}'" in capsys.readouterr().out
    lesson04.check_size_explains(None, None, size_stub, SIDES, SCORES[answer])
    assert "Not done yet: share_below, best_as_small, the function size_explains" in capsys.readouterr().out
    lesson04.check_size_explains(shares, best, size_stub, SIDES, SCORES[answer])
    assert "Not done yet: the function size_explains" in capsys.readouterr().out
    # Trying the answers in turn: a rule that always gives one answer fails; the message shows the evidence it
    # misread (a rule is submitted, so that cannot be gamed), never the answer.
    for constant in SCORES:
        with pytest.raises(AssertionError, match="not quite") as refused:
            lesson04.check_size_explains(shares, best, lambda *evidence, c=constant: c, SIDES, SCORES[answer])
        message = str(refused.value)
        assert not any(f'"{name}"' in message or f"'{name}'" in message for name in SCORES)
        assert "rho " in message and "share_below (" in message and "median " in message
    for not_an_answer in (True, "No"):
        with pytest.raises(AssertionError, match="returns"):
            lesson04.check_size_explains(
                shares, best, lambda *evidence, c=not_an_answer: c, SIDES, SCORES[answer]
            )
    for wrong_rule in (
        rule_without_rho,
        rule_without_shares,
        rule_swapped,
        rule_keeper_ignored,
        rule_either_signal,
        rule_rho_only,
        rule_strictly_above,
    ):
        with pytest.raises(AssertionError, match="not quite"):
            lesson04.check_size_explains(shares, best, wrong_rule, SIDES, SCORES[answer])
    with pytest.raises(AssertionError, match="a function"):  # an answer, not a rule
        lesson04.check_size_explains(shares, best, answer, SIDES, SCORES[answer])
    counts = (shares[0] * 3, shares[1] * 9)
    for wrong_shares, wrong_best, _why in [
        (shares[::-1], best, "the two shares swapped"),
        (counts, best, "counts, not shares"),
        ((0.5, 0.5), best, "made up"),
        (shares, min(SCORES[answer]), "the lowest's own score"),
        (shares, np.median(SCORES[answer][1:3]), "the median of the others, not the highest"),
        (shares, -np.inf, "none, though two others share the side"),
    ]:
        if np.allclose(wrong_shares, shares) and np.isclose(wrong_best, best):
            continue
        with pytest.raises(AssertionError, match="share_below|best_as_small"):
            lesson04.check_size_explains(wrong_shares, wrong_best, size_rule, SIDES, SCORES[answer])


def test_size_explains_none_shrunk_as_far(capsys):
    sides, scores = SIDES.copy(), np.array(SCORES["yes"])
    sides[0] = 100  # the lowest alone at its side: best_as_small is -inf (nan is taken too)
    shares = ((scores[:1] < np.median(scores)).mean(), (scores[1:] < np.median(scores)).mean())
    for best in (-np.inf, np.nan):
        lesson04.check_size_explains(shares, best, size_rule, sides, scores)
        assert "Correct!" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="best_as_small"):
        lesson04.check_size_explains(shares, 0.75, size_rule, sides, scores)


# --- exercise 1 ---

OWN_GROUP_REMOVED = np.where(SAME_PHOTO, -np.inf, S)
HARD_RELEVANT = relevance_from_keys(LABELS) & ~SAME_PHOTO


def recall_fraction(k):
    top = np.argsort(-np.where(IS_SELF, -np.inf, OWN_GROUP_REMOVED), axis=1, kind="stable")[:, :k]
    found = np.take_along_axis(HARD_RELEVANT, top, axis=1).sum(axis=1)
    relevant = HARD_RELEVANT.sum(axis=1)
    return top, float(np.mean(found[relevant > 0] / relevant[relevant > 0]))


def best_possible(k):
    relevant = HARD_RELEVANT.sum(axis=1)
    relevant = relevant[relevant > 0]
    return float(np.mean(np.minimum(k, relevant) / relevant))


def recall_fraction_any(k):  # the table's recall@k: at least one
    top = np.argsort(-np.where(IS_SELF, -np.inf, OWN_GROUP_REMOVED), axis=1, kind="stable")[:, :k]
    found = np.take_along_axis(HARD_RELEVANT, top, axis=1).any(axis=1)
    return top, float(found[HARD_RELEVANT.any(axis=1)].mean())


def recall_fraction_with_self(k):  # forgets to push the query itself down
    top = np.argsort(-OWN_GROUP_REMOVED, axis=1, kind="stable")[:, :k]
    found = np.take_along_axis(HARD_RELEVANT, top, axis=1).sum(axis=1)
    relevant = HARD_RELEVANT.sum(axis=1)
    return top, float(np.mean(found[relevant > 0] / relevant[relevant > 0]))


def best_possible_k_over_r(k):  # k / R, not min(k, R) / R
    relevant = HARD_RELEVANT.sum(axis=1)
    relevant = relevant[relevant > 0]
    return float(np.mean(k / relevant))


def exercise_1(fraction, best):
    top10, at_10 = fraction(10)
    relevant = HARD_RELEVANT.sum(axis=1)
    return (
        fraction,
        best,
        top10,
        at_10,
        best(10),
        lambda k: int((relevant[relevant > 0] > k).sum()),
        S,
        GROUPS,
        LABELS,
    )


def test_exercise_1(capsys):
    lesson04.check_exercise_1(*exercise_1(recall_fraction, best_possible))
    assert "Correct!" in capsys.readouterr().out
    stub = (lambda k: (None, None), lambda k: None, None, None, None, lambda k: None, S, GROUPS, LABELS)
    lesson04.check_exercise_1(*stub)
    assert "Not done yet: recall_fraction, best_possible, short_of_one" in capsys.readouterr().out
    top10, fraction_at_10, best_at_10 = *recall_fraction(10), best_possible(10)
    lesson04.check_exercise_1(
        recall_fraction, best_possible, top10, fraction_at_10, best_at_10, lambda k: None, S, GROUPS, LABELS
    )
    assert "Not done yet: short_of_one" in capsys.readouterr().out  # names what is left
    for fraction, best in [
        (recall_fraction_any, best_possible),
        (recall_fraction_with_self, best_possible),
        (recall_fraction, best_possible_k_over_r),
    ]:
        with pytest.raises(AssertionError):
            lesson04.check_exercise_1(*exercise_1(fraction, best))
    relevant = HARD_RELEVANT.sum(axis=1)
    relevant = relevant[relevant > 0]
    answers = list(exercise_1(recall_fraction, best_possible))
    for short_of_one in [
        lambda k: int((relevant >= k).sum()),  # R = k counted as short, though its top k holds them all
        lambda k: int((relevant > k).sum()) + 1,  # miscounted
        lambda k: int((relevant > 10).sum()),  # k = 10 whatever k is
    ]:
        answers[5] = short_of_one
        with pytest.raises(AssertionError, match="short_of_one"):
            lesson04.check_exercise_1(*answers)


# --- exercise 2 ---

MANIFEST = pd.DataFrame({"group": GROUPS, "transformation": KINDS})
COS_WITH_ORIGINAL = S[np.arange(N), ORIGINAL_OF]
MEDIAN_COS = pd.Series(COS_WITH_ORIGINAL[KINDS != "original"]).groupby(KINDS[KINDS != "original"]).median()
MAP = 0.4 * RNG.standard_normal((N, 2)) + np.repeat(RNG.standard_normal((N_GROUPS, 2)), PER_GROUP, axis=0)


def exercise_2(on_map, leave_self_out=True):
    if leave_self_out:
        nearest = knn(on_map, 1)[:, 0]
    else:
        nearest = np.argsort(cdist(on_map, on_map), axis=1, kind="stable")[:, 0]
    kinds = MANIFEST["transformation"][KINDS != "original"]
    astray = pd.Series(GROUPS[nearest] != GROUPS)[KINDS != "original"].groupby(kinds).mean()
    from scipy.stats import spearmanr

    rho = spearmanr(astray, MEDIAN_COS.loc[astray.index]).statistic
    return astray, astray.idxmax(), kinds.value_counts(), rho


@pytest.mark.filterwarnings("ignore:An input array is constant")  # a wrong answer: nothing astray
def test_exercise_2(capsys):
    data = (MAP, MANIFEST, MEDIAN_COS)
    lesson04.check_exercise_2(*exercise_2(MAP), None, *data)  # the sign is a prediction: nothing before it
    out = capsys.readouterr().out
    assert "Not done yet" in out and "Correct!" not in out and "rho " not in out and "verdict" not in out
    lesson04.check_exercise_2(None, None, None, None, "-", *data)
    assert "Not done yet" in capsys.readouterr().out
    rho = exercise_2(MAP)[3]
    for sign, held in [("-", rho < 0), ("+", rho >= 0)]:
        lesson04.check_exercise_2(*exercise_2(MAP), sign, *data)
        assert ("which held" if held else "which did not hold") in capsys.readouterr().out
    for wrong in ("negative", -1):
        with pytest.raises(AssertionError, match="expected_sign"):
            lesson04.check_exercise_2(*exercise_2(MAP), wrong, *data)
    lesson04.check_exercise_2(None, None, None, None, None, *data)
    assert "Not done yet" in capsys.readouterr().out
    astray, most, counts, rho = exercise_2(MAP)
    wrong_answers = [
        exercise_2(MAP, leave_self_out=False),  # every point finds itself
        exercise_2(MAP * [1, 8]),  # another map
        (astray, astray.idxmin(), counts, rho),  # the least often astray
        (astray, most, counts, rho + 0.1),
        (astray, most, counts * 0 + 1, rho),  # copies per kind miscounted
    ]
    for answer in wrong_answers:
        with pytest.raises(AssertionError):
            lesson04.check_exercise_2(*answer, "-", *data)
