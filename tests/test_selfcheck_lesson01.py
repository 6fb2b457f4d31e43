"""embedkit.selfcheck.lesson01: each check passes the lesson's answer, gives a stand-in for a stub that
still returns None, and refuses the mistakes a learner makes (with an AssertionError that says what).

The lesson's data are built once, as the lesson builds them, from the bundled manifest.
"""

import hashlib
from hashlib import sha256
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.sparse.csgraph import breadth_first_order, connected_components, depth_first_order

from embedkit import duplicates, evaluation, pairs, splits
from embedkit.images import load_rgb
from embedkit.selfcheck import is_stand_in, lesson01

LANCZOS = Image.Resampling.LANCZOS


@pytest.fixture(scope="module")
def lesson(manifest):
    """What the lesson has computed by the time each check runs."""
    files = manifest["file"].tolist()
    groups = manifest["group"].to_numpy()
    kinds = manifest["transformation"].to_numpy()
    n = len(files)
    dhashes = [duplicates.dhash(f) for f in files]
    iu, ju = np.triu_indices(n, k=1)
    all_pairs = np.stack([iu, ju], axis=1)
    distance = duplicates.hamming_matrix(dhashes)[iu, ju]
    curve = evaluation.threshold_curve(all_pairs, distance, groups, range(65), higher_is_similar=False)
    threshold = int(evaluation._pick_threshold(curve, False, evaluation.MIN_PRECISION, 0))

    def score(found):
        table = evaluation.scores_by_kind(found, groups, kinds)
        return pd.concat([table.drop(index=["original", "all"]).sort_index(), table.loc[["all"]]])

    pixel_hashes = [duplicates.pixel_hash(f) for f in files]
    methods = {
        "SHA-256": pairs.pairs_from_groups(duplicates.exact_duplicate_groups(manifest["sha256"].tolist())),
        "pixel hash": pairs.pairs_from_groups(duplicates.exact_duplicate_groups(pixel_hashes)),
        f"dHash <= {threshold}": all_pairs[distance <= threshold],
    }
    found_groups = pairs.connected_groups(n, np.concatenate(list(methods.values())))
    return SimpleNamespace(
        manifest=manifest,
        files=files,
        paths=manifest["path"],
        split=manifest["split"].to_numpy(),
        groups=groups,
        kinds=kinds,
        n=n,
        dhashes=dhashes,
        pixel_hashes=pixel_hashes,
        iu=iu,
        ju=ju,
        all_pairs=all_pairs,
        distance=distance,
        same_group=groups[iu] == groups[ju],
        curve=curve,
        threshold=threshold,
        score=score,
        dhash_scores=score(all_pairs[distance <= threshold]),
        methods=methods,
        found_groups=found_groups,
        folds=evaluation.cross_validate_threshold(
            all_pairs, distance, groups, range(65), higher_is_similar=False
        ),
    )


def stub(*args, **kwargs):
    return None


def refused(check, *args, match, **kwargs):
    """``check(*args, **kwargs)`` raises an AssertionError whose message contains ``match``."""
    with pytest.raises(AssertionError, match=match):
        check(*args, **kwargs)


def not_done(capsys, result):
    assert is_stand_in(result) and not lesson01.passed(result)
    assert "Not done yet" in capsys.readouterr().out
    return result


# --------------------------------------------------------------------------- the pixel hash


def pixel_hash_right(path):
    rgb = load_rgb(path)
    digest = hashlib.sha256(f"RGB {rgb.width}x{rgb.height}\n".encode("ascii"))
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def pixel_hash_without_size(path):
    return hashlib.sha256(load_rgb(path).tobytes()).hexdigest()


def pixel_hash_without_a_separator(path):  # 1×11 and 11×1 both read "111"
    rgb = load_rgb(path)
    return hashlib.sha256(f"{rgb.width}{rgb.height}".encode() + rgb.tobytes()).hexdigest()


def pixel_hash_of_the_bytes(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def pixel_hash_without_load_rgb(path):  # drops transparency instead of laying it over white
    rgb = Image.open(path).convert("RGB")
    return hashlib.sha256(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest()


def pixel_hash_in_gray(path):
    gray = load_rgb(path).convert("L")
    return hashlib.sha256(f"{gray.size}".encode() + gray.tobytes()).hexdigest()


def pixel_hash_by_blake2s(path):  # 64 hex digits, but not SHA-256
    rgb = load_rgb(path)
    return hashlib.blake2s(f"RGB {rgb.width}x{rgb.height}\n".encode() + rgb.tobytes()).hexdigest()


def pixel_hash_by_sha3(path):
    rgb = load_rgb(path)
    return hashlib.sha3_256(f"RGB {rgb.width}x{rgb.height}\n".encode() + rgb.tobytes()).hexdigest()


def pixel_hash_size_last(path):  # another layout of the size and the pixels: still SHA-256 of both
    rgb = load_rgb(path)
    return hashlib.sha256(rgb.tobytes() + f"|{rgb.width}x{rgb.height}".encode()).hexdigest()


def pixel_hash_by_the_package(path):
    return duplicates.pixel_hash(path)


def test_pixel_hash(lesson, capsys):
    files, theirs = lesson.files[::10], lesson.pixel_hashes[::10]
    assert lesson01.check_pixel_hash(pixel_hash_right, files, theirs) is pixel_hash_right
    assert "Correct" in capsys.readouterr().out and lesson01.passed(pixel_hash_right)
    standin = not_done(capsys, lesson01.check_pixel_hash(stub, files, theirs))
    assert standin(files[0]) == theirs[0]
    check = lesson01.check_pixel_hash
    refused(check, pixel_hash_without_size, files, theirs, match="hash the size too")
    refused(check, pixel_hash_without_a_separator, files, theirs, match="put a separator")
    refused(check, pixel_hash_of_the_bytes, files, theirs, match="another compression level")
    refused(check, pixel_hash_without_load_rgb, files, theirs, match="cut-out laid over white")
    refused(check, pixel_hash_in_gray, files, theirs, match="one blue value")
    refused(check, pixel_hash_by_the_package, files, theirs, match="switched off")
    refused(check, pixel_hash_by_blake2s, files, theirs, match="hashlib.sha256")
    refused(check, pixel_hash_by_sha3, files, theirs, match="hashlib.sha256")
    assert check(pixel_hash_size_last, files, theirs) is pixel_hash_size_last
    assert hashlib.sha256 is sha256  # put back
    assert duplicates.pixel_hash(files[0]) == theirs[0]  # put back


# --------------------------------------------------------------------------- dHash


def with_thumbnail(hash_from_thumbnail):
    """The lesson's my_dhash, calling the hash_from_thumbnail given."""
    return lambda path: hash_from_thumbnail(np.asarray(load_rgb(path).convert("L").resize((9, 8), LANCZOS)))


def dhash_right(px):
    return int.from_bytes(np.packbits((px[:, :-1] > px[:, 1:]).ravel()).tobytes(), "big")


def dhash_turned_round(px):  # compares with the left neighbour
    return int.from_bytes(np.packbits((px[:, 1:] > px[:, :-1]).ravel()).tobytes(), "big")


def dhash_by_subtraction(px):  # uint8 wraps around
    return int.from_bytes(np.packbits(((px[:, :-1] - px[:, 1:]) > 0).ravel()).tobytes(), "big")


def dhash_column_by_column(px):
    return int.from_bytes(np.packbits((px[:, :-1] > px[:, 1:]).T.ravel()).tobytes(), "big")


def dhash_as_numpy_int(px):
    return np.packbits((px[:, :-1] > px[:, 1:]).ravel()).view(">u8")[0]


def dhash_by_the_package(px):
    return duplicates.dhash(Image.fromarray(px))


def test_hash_from_thumbnail(lesson, capsys):
    files, theirs = lesson.files[::10], lesson.dhashes[::10]
    check = lesson01.check_hash_from_thumbnail
    assert check(dhash_right, with_thumbnail(dhash_right), files, theirs) is dhash_right
    assert "Correct" in capsys.readouterr().out and lesson01.passed(dhash_right)
    standin = not_done(capsys, check(stub, with_thumbnail(stub), files, theirs))
    assert [with_thumbnail(standin)(f) for f in files] == theirs
    refused(check, dhash_turned_round, with_thumbnail(dhash_turned_round), files, theirs, match="falling row")
    refused(
        check, dhash_by_subtraction, with_thumbnail(dhash_by_subtraction), files, theirs, match="wraps around"
    )
    refused(
        check,
        dhash_column_by_column,
        with_thumbnail(dhash_column_by_column),
        files,
        theirs,
        match="along a row",
    )
    refused(check, dhash_as_numpy_int, with_thumbnail(dhash_as_numpy_int), files, theirs, match="Python int")
    refused(
        check, dhash_by_the_package, with_thumbnail(dhash_by_the_package), files, theirs, match="switched off"
    )


# --------------------------------------------------------------------------- pair scores and the rule


def pair_scores_right(t, distance, same_group):
    found = distance <= t
    return same_group[found].mean(), same_group[found].sum() / same_group.sum()


def pair_scores_swapped(t, distance, same_group):
    return pair_scores_right(t, distance, same_group)[::-1]


def pair_scores_below(t, distance, same_group):  # < where the rule says <=
    return pair_scores_right(t - 1, distance, same_group)


def pair_scores_one_bit_more(t, distance, same_group):  # right for whole bits only
    found = distance < t + 1
    return same_group[found].mean(), same_group[found].sum() / same_group.sum()


def pair_scores_over_every_pair(t, distance, same_group):
    found = distance <= t
    return same_group[found].mean(), same_group[found].sum() / len(same_group)


def threshold_right(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    allowed = curve[(curve["merges"] <= max_merges) & (curve["precision"] >= min_precision)]
    return allowed["f1"].idxmax()


def threshold_before_the_first_merge(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    return curve[curve["merges"] == 0].index.max()  # ignores the limits it is given


def threshold_without_the_floor(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    return curve[curve["merges"] <= max_merges]["f1"].idxmax()


def threshold_above_the_floor(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    return curve[(curve["merges"] <= max_merges) & (curve["precision"] > min_precision)]["f1"].idxmax()


def threshold_below_the_merge_limit(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    allowed = curve[(curve["merges"] < max(max_merges, 1)) & (curve["precision"] >= min_precision)]
    return allowed["f1"].idxmax()


def threshold_last_of_a_tie(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    allowed = curve[(curve["merges"] <= max_merges) & (curve["precision"] >= min_precision)]
    return allowed.index[allowed["f1"] == allowed["f1"].max()].max()


def threshold_the_only_best(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    allowed = curve[(curve["merges"] <= max_merges) & (curve["precision"] >= min_precision)]
    return allowed.index[allowed["f1"] == allowed["f1"].max()].item()  # fails where several tie


def threshold_by_recall(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    allowed = curve[(curve["merges"] <= max_merges) & (curve["precision"] >= min_precision)]
    return allowed["recall"].idxmax()


def threshold_by_the_package(curve, max_merges=0, min_precision=evaluation.MIN_PRECISION):
    return evaluation._pick_threshold(curve, False, min_precision, max_merges)


def rule_args(lesson):
    return lesson.distance, lesson.same_group, lesson.curve, lesson.all_pairs, lesson.groups


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")
def test_rule(lesson, capsys):
    check, args = lesson01.check_rule, rule_args(lesson)
    assert check(pair_scores_right, threshold_right, *args) == (pair_scores_right, threshold_right)
    assert "Correct" in capsys.readouterr().out and lesson01.passed(pair_scores_right, threshold_right)
    scores, rule = check(stub, stub, *args)
    assert not_done(capsys, scores) and is_stand_in(rule)
    assert np.allclose(
        scores(14, lesson.distance, lesson.same_group), lesson.curve.loc[14, ["precision", "recall"]]
    )
    assert rule(lesson.curve) == lesson.threshold
    for wrong, match in [
        (pair_scores_swapped, "you return"),
        (pair_scores_below, "you return"),
        (pair_scores_over_every_pair, "you return"),
        (pair_scores_one_bit_more, "3.2 is over 3"),
    ]:
        refused(check, wrong, stub, *args, match=match)


def test_rule_once_the_scores_are_written(lesson, capsys):
    check, args = lesson01.check_rule, rule_args(lesson)
    scores, rule = check(pair_scores_right, stub, *args)
    assert scores is pair_scores_right and is_stand_in(rule) and not lesson01.passed(scores, rule)
    assert "Not done yet" in capsys.readouterr().out
    for wrong, match in [
        (threshold_before_the_first_merge, "precision 0.950 at 2 bits, floor 0.96"),
        (threshold_without_the_floor, "floor"),
        (threshold_above_the_floor, "exactly the floor.*is allowed"),
        (threshold_below_the_merge_limit, "exactly the limit.*is allowed"),
        (threshold_by_recall, "F1"),
        (threshold_by_the_package, "switched off"),
    ]:
        refused(check, stub, wrong, *args, match=match)


def test_the_hand_made_curve_sits_on_both_limits():
    """Its best allowed rows lie exactly on the floor and on the merge limit, and nowhere else wins."""
    edges = lesson01._edge_curve()
    assert evaluation._pick_threshold(edges, False, evaluation.MIN_PRECISION, 1) == 2.0
    assert edges.loc[2.0, "precision"] == evaluation.MIN_PRECISION
    assert evaluation._pick_threshold(edges, False, 0.96, 2) == 3.0 and edges.loc[3.0, "merges"] == 2


def test_rule_where_thresholds_tie(lesson, capsys):
    """On the half-bit grid t and t + 0.5 tie on F1: any of the tied thresholds counts."""
    check, args = lesson01.check_rule, rule_args(lesson)
    assert check(pair_scores_right, threshold_last_of_a_tie, *args)[1] is threshold_last_of_a_tie
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(ValueError, match="size 1"):
        check(pair_scores_right, threshold_the_only_best, *args)


# --------------------------------------------------------------------------- merged groups


def merges_right(found_pairs, true_groups):
    label = np.arange(len(true_groups))
    for i, j in found_pairs:
        if label[i] != label[j]:
            label[label == label[j]] = label[i]
    return int((pd.Series(np.asarray(true_groups)).groupby(label).nunique() > 1).sum())


def merges_counting_pairs(found_pairs, true_groups):
    true_groups = np.asarray(true_groups)
    return int((true_groups[found_pairs[:, 0]] != true_groups[found_pairs[:, 1]]).sum())


def merges_relabelling_one_file(found_pairs, true_groups):
    label = np.arange(len(true_groups))
    for i, j in found_pairs:
        label[j] = label[i]
    return int((pd.Series(np.asarray(true_groups)).groupby(label).nunique() > 1).sum())


def merges_by_scipy(found_pairs, true_groups):
    from scipy.sparse import coo_matrix

    n = len(true_groups)
    graph = coo_matrix((np.ones(len(found_pairs)), (found_pairs[:, 0], found_pairs[:, 1])), shape=(n, n))
    label = connected_components(graph, directed=False)[1]
    return int((pd.Series(np.asarray(true_groups)).groupby(label).nunique() > 1).sum())


def merges_by_a_search(name):
    """The found groups labelled by a SciPy breadth- or depth-first search from each unlabelled file
    (the search looked up by its name when it runs, as a notebook's code does)."""

    def my_merges(found_pairs, true_groups):
        from scipy.sparse import coo_matrix

        n = len(true_groups)
        ends = (found_pairs[:, 0], found_pairs[:, 1])
        graph = coo_matrix((np.ones(len(found_pairs)), ends), shape=(n, n)).tocsr()
        label, search = np.full(n, -1), globals()[name]
        for start in range(n):
            if label[start] < 0:
                label[search(graph, start, directed=False, return_predecessors=False)] = start
        return int((pd.Series(np.asarray(true_groups)).groupby(label).nunique() > 1).sum())

    return my_merges


def merges_by_the_package(found_pairs, true_groups):
    label = pairs.connected_groups(len(true_groups), found_pairs)
    return int((pd.Series(np.asarray(true_groups)).groupby(label).nunique() > 1).sum())


def test_merges(lesson, capsys):
    def pairs_within(t):
        return lesson.all_pairs[lesson.distance <= t]

    check, args = lesson01.check_merges, (pairs_within, lesson.groups, lesson.curve)
    assert check(merges_right, *args) is merges_right
    assert "Correct" in capsys.readouterr().out and lesson01.passed(merges_right)
    standin = not_done(capsys, check(stub, *args))
    assert [standin(pairs_within(t), lesson.groups) for t in [14, 16, 24]] == lesson.curve.loc[
        [14, 16, 24], "merges"
    ].tolist()
    refused(check, merges_counting_pairs, *args, match="count groups, not wrong pairs")
    refused(check, merges_relabelling_one_file, *args, match="relabel every file")
    refused(check, merges_by_scipy, *args, match="chain the pairs yourself")
    for search in ["breadth_first_order", "depth_first_order"]:
        assert merges_by_a_search(search)(pairs_within(16), lesson.groups) == lesson.curve.loc[16, "merges"]
        refused(check, merges_by_a_search(search), *args, match="chain the pairs yourself")
    refused(check, merges_by_the_package, *args, match="chain the pairs yourself")
    for function in [connected_components, breadth_first_order, depth_first_order]:  # put back, here too
        assert function.__name__ in {"connected_components", "breadth_first_order", "depth_first_order"}


# --------------------------------------------------------------------------- one fold


def folds_with(
    lesson,
    choose_on_every_pair=False,
    calibration_scored_over_all=False,
    by_the_package=False,
    without_calibration_recall=False,
):
    """my_fold as the lesson's Solution writes it, or with one of a learner's mistakes."""
    iu, ju, all_pairs, distance, groups = (
        lesson.iu,
        lesson.ju,
        lesson.all_pairs,
        lesson.distance,
        lesson.groups,
    )

    def my_fold(held_out):
        inside = ~held_out[iu] & ~held_out[ju]
        chosen_on = np.ones_like(inside) if choose_on_every_pair else inside
        scored = None if calibration_scored_over_all else ~held_out
        if by_the_package:
            chosen = evaluation.choose_threshold(
                all_pairs[chosen_on],
                distance[chosen_on],
                groups,
                range(65),
                higher_is_similar=False,
                scored_items=scored,
            )
            t, calibration_recall = chosen.threshold, chosen.recall
        else:
            calibration = evaluation.threshold_curve(
                all_pairs[chosen_on],
                distance[chosen_on],
                groups,
                range(65),
                higher_is_similar=False,
                scored_items=scored,
            )
            t = threshold_right(calibration)
            calibration_recall = calibration.loc[t, "recall"]
        unseen = evaluation.threshold_curve(
            all_pairs[~inside], distance[~inside], groups, [t], higher_is_similar=False, scored_items=held_out
        ).iloc[0]
        if without_calibration_recall:
            return t, unseen["precision"], unseen["recall"]
        return t, calibration_recall, unseen["precision"], unseen["recall"]

    return my_fold


def test_fold(lesson, capsys):
    check, right = lesson01.check_fold, folds_with(lesson)
    assert check(right, threshold_right, lesson.folds, lesson.groups) is right
    printed = capsys.readouterr().out
    assert "Correct" in printed and lesson01.passed(right)
    merged = int((lesson.folds["held_out_merges"] > 0).sum())
    assert f"{min(merged, 2)} of these 3 merged" in printed
    recall_0 = lesson.folds.iloc[0]["in_sample_recall"]
    assert f"calibration recall in fold 0: {recall_0:.3f}; scored over every file it would be 0." in printed
    standin = not_done(capsys, check(stub, threshold_right, lesson.folds, lesson.groups))
    held_out = next(evaluation.group_folds(lesson.groups))[2]
    assert standin(held_out) == tuple(
        lesson.folds.iloc[0][["threshold", "in_sample_recall", "held_out_precision", "held_out_recall"]]
    )
    not_done(capsys, check(right, lesson01._package(threshold_right), lesson.folds, lesson.groups))
    if (
        merged
    ):  # a threshold chosen on every pair is the in-sample one, which differs in the folds that merged
        refused(
            check,
            folds_with(lesson, choose_on_every_pair=True),
            threshold_right,
            lesson.folds,
            lesson.groups,
            match="the pairs of two calibration files only",
        )
    # the same thresholds and held-out numbers in every fold: only the calibration recall tells
    refused(
        check,
        folds_with(lesson, calibration_scored_over_all=True),
        threshold_right,
        lesson.folds,
        lesson.groups,
        match="counts the held-out groups' duplicate pairs as missed",
    )
    refused(
        check,
        folds_with(lesson, without_calibration_recall=True),
        threshold_right,
        lesson.folds,
        lesson.groups,
        match="return four numbers",
    )
    refused(
        check,
        folds_with(lesson, by_the_package=True),
        threshold_right,
        lesson.folds,
        lesson.groups,
        match="switched off",
    )


def test_fold_where_no_fold_merged(lesson, capsys):
    """The check stays at three folds however many of them merged held-out groups under this Pillow."""
    folds = lesson.folds.assign(held_out_merges=0)
    right = folds_with(lesson)
    assert lesson01.check_fold(right, threshold_right, folds, lesson.groups) is right
    assert "your folds [0, 1, 2] match the `folds` table (0 of these 3 merged" in capsys.readouterr().out


# --------------------------------------------------------------------------- the leak list


def leaks_right(split, found_pairs):
    split = np.asarray(split)
    a, b = found_pairs[:, 0], found_pairs[:, 1]
    a_leaks = (split[a] == "test") & (split[b] == "train")
    b_leaks = (split[b] == "test") & (split[a] == "train")
    return np.unique(np.concatenate([a[a_leaks], b[b_leaks]]))


def leaks_one_way(split, found_pairs):  # only pairs whose second file is the test file
    split = np.asarray(split)
    a, b = found_pairs[:, 0], found_pairs[:, 1]
    return np.unique(b[(split[b] == "test") & (split[a] == "train")])


def leaks_repeated(split, found_pairs):  # a test file with two train copies is listed twice
    split = np.asarray(split)
    a, b = found_pairs[:, 0], found_pairs[:, 1]
    a_leaks = (split[a] == "test") & (split[b] == "train")
    b_leaks = (split[b] == "test") & (split[a] == "train")
    return np.sort(np.concatenate([a[a_leaks], b[b_leaks]]))


def leaks_as_a_set(split, found_pairs):
    return set(leaks_right(split, found_pairs).tolist())


def leaks_by_the_package(split, found_pairs):
    report = splits.leak_report([str(k) for k in range(len(split))], split, found_pairs)
    return np.unique(report["test_path"].astype(int))


def test_leaks(lesson, capsys):
    check, args = lesson01.check_leaks, (lesson.paths, lesson.split, lesson.methods)
    assert check(leaks_right, *args) is leaks_right
    assert "Correct" in capsys.readouterr().out and lesson01.passed(leaks_right)
    standin = not_done(capsys, check(stub, *args))
    for found in lesson.methods.values():
        assert standin(lesson.split, found).tolist() == leaks_right(lesson.split, found).tolist()
    refused(check, leaks_one_way, *args, match="either order")
    refused(check, leaks_repeated, *args, match="each leaking test file once")
    refused(check, leaks_as_a_set, *args, match="not a set")
    refused(check, leaks_by_the_package, *args, match="switched off")


# --------------------------------------------------------------------------- the re-split


def split_right(found_groups, split):
    split = np.asarray(split)
    new = split.copy()
    for g in np.unique(found_groups):
        members = np.asarray(found_groups) == g
        n_train = (split[members] == "train").sum()
        new[members] = "train" if n_train >= members.sum() - n_train else "test"
    return new


def split_ties_to_test(found_groups, split):
    split = np.asarray(split)
    new = split.copy()
    for g in np.unique(found_groups):
        members = np.asarray(found_groups) == g
        n_train = (split[members] == "train").sum()
        new[members] = "train" if n_train > members.sum() - n_train else "test"
    return new


def split_in_place(found_groups, split):  # forgets to copy: the caller's split changes
    for g in np.unique(found_groups):
        members = np.asarray(found_groups) == g
        n_train = (split[members] == "train").sum()
        split[members] = "train" if n_train >= members.sum() - n_train else "test"
    return split


def split_by_the_package(found_groups, split):
    return splits.group_aware_split(found_groups, split)


def test_group_aware_split(lesson, capsys):
    check, args = lesson01.check_group_aware_split, (lesson.found_groups, lesson.split, lesson.paths)
    assert check(split_right, *args) is split_right
    assert "Correct" in capsys.readouterr().out and lesson01.passed(split_right)
    standin = not_done(capsys, check(stub, *args))
    assert (
        standin(lesson.found_groups, lesson.split) == split_right(lesson.found_groups, lesson.split)
    ).all()
    refused(check, split_ties_to_test, *args, match="ties go to train")
    refused(check, split_in_place, *args, match="copy it first")
    refused(check, split_by_the_package, *args, match="switched off")
    assert (lesson.split == lesson.manifest["split"].to_numpy()).all()  # the check gave copies


def test_resplit_claims(lesson, capsys):
    manifest, found_groups, old = lesson.manifest, lesson.found_groups, lesson.split
    visible = [
        "exact_copy",
        "lossless_resave",
        "rgba_cutout",
        "jpeg_reencode",
        "resize",
        "brightness",
        "grayscale",
    ]
    new = splits.group_aware_split(found_groups, old)
    home = manifest.groupby("group")["split"].agg(lambda s: s.value_counts().idxmax())
    planted = manifest[manifest["split"] != manifest["group"].map(home)]

    def left(split):
        sides = pd.Series(split, index=manifest.index).groupby(manifest["group"]).nunique()
        return planted[planted["group"].isin(sides.index[sides > 1])]

    lesson01.check_resplit(new, old, found_groups, left(new), visible)
    assert "still across the split" in capsys.readouterr().out
    refused(lesson01.check_resplit, old, old, found_groups, left(new), visible, match="still straddles")
    calm = next(
        g
        for g in np.unique(found_groups)
        if (found_groups == g).sum() > 1 and len(set(old[found_groups == g])) == 1
    )
    moved_calm = np.where(found_groups == calm, np.where(new == "train", "test", "train"), new)
    refused(
        lesson01.check_resplit, moved_calm, old, found_groups, left(new), visible, match="did not straddle"
    )
    straddling = np.unique(found_groups[new != old])
    to_minority = np.where(np.isin(found_groups, straddling), np.where(new == "train", "test", "train"), new)
    refused(
        lesson01.check_resplit, to_minority, old, found_groups, left(new), visible, match="fewer of its files"
    )
    refused(lesson01.check_resplit, new, old, found_groups, left(old), visible, match="kinds hashes can see")


# --------------------------------------------------------------------------- exercise 1: the average hash


def ahash_right(path):
    px = np.asarray(load_rgb(path).convert("L").resize((8, 8), LANCZOS))
    return int.from_bytes(np.packbits((px > px.mean()).ravel()).tobytes(), "big")


def ahash_with_median(path):
    px = np.asarray(load_rgb(path).convert("L").resize((8, 8), LANCZOS))
    return int.from_bytes(np.packbits((px > np.median(px)).ravel()).tobytes(), "big")


def ahash_at_least_the_mean(path):
    px = np.asarray(load_rgb(path).convert("L").resize((8, 8), LANCZOS))
    return int.from_bytes(np.packbits((px >= px.mean()).ravel()).tobytes(), "big")


def ahash_without_load_rgb(path):
    px = np.asarray(Image.open(path).convert("L").resize((8, 8), LANCZOS))
    return int.from_bytes(np.packbits((px > px.mean()).ravel()).tobytes(), "big")


def ahash_resized_in_colour(path):  # resizes before converting to grayscale
    px = np.asarray(load_rgb(path).resize((8, 8), LANCZOS).convert("L"))
    return int.from_bytes(np.packbits((px > px.mean()).ravel()).tobytes(), "big")


def ahash_bilinear(path):
    px = np.asarray(load_rgb(path).convert("L").resize((8, 8), Image.Resampling.BILINEAR))
    return int.from_bytes(np.packbits((px > px.mean()).ravel()).tobytes(), "big")


@pytest.fixture(scope="module")
def ahash_answers(lesson):
    """The Solution's threshold and kinds of copy."""
    a_distance = duplicates.hamming_matrix([ahash_right(f) for f in lesson.files])[lesson.iu, lesson.ju]
    choice = evaluation.choose_threshold(
        lesson.all_pairs, a_distance, lesson.groups, range(65), higher_is_similar=False
    )
    found = lesson.score(lesson.all_pairs[a_distance <= choice.threshold])["found"].drop("all")
    found -= lesson.dhash_scores["found"].drop("all")
    return choice.threshold, set(found.index[found > 0]), set(found.index[found < 0])


def test_ahash(lesson, ahash_answers, capsys):
    data = (
        lesson.files,
        lesson.all_pairs,
        lesson.groups,
        lesson.score,
        lesson.dhash_scores,
        lesson.threshold,
    )
    threshold, better, worse = ahash_answers
    guess = {k: "more" if k in better else "fewer" if k in worse else "same" for k in ("hflip", "watermark")}
    assert lesson01.check_ahash(ahash_right, threshold, better, worse, *data, guess=guess) is ahash_right
    out = capsys.readouterr().out
    assert "Correct" in out and "(right)" in out and lesson01.passed(ahash_right)
    wrong_guess = dict(guess, hflip="same" if guess["hflip"] != "same" else "more")
    lesson01.check_ahash(ahash_right, threshold, better, worse, *data, guess=wrong_guess)
    assert f"it is {guess['hflip']}" in capsys.readouterr().out  # shown, not graded
    assert lesson01.check_ahash(None, None, None, None, *data) is None
    assert "Not done yet" in capsys.readouterr().out
    assert lesson01.check_ahash(ahash_right, None, None, None, *data) is ahash_right
    assert "Your ahash is right" in capsys.readouterr().out
    check = lesson01.check_ahash
    refused(check, ahash_with_median, None, None, None, *data, match="rows first|median")
    refused(check, ahash_at_least_the_mean, None, None, None, *data, match="flat image")
    refused(check, ahash_without_load_rgb, None, None, None, *data, match="load_rgb")
    refused(check, ahash_resized_in_colour, None, None, None, *data, match="BEFORE resizing")
    refused(check, ahash_bilinear, None, None, None, *data, match="BEFORE resizing with LANCZOS")
    with_guess = {"guess": guess}
    assert lesson01.check_ahash(ahash_right, threshold, better, worse, *data) is ahash_right
    assert "Not done yet: ahash_guess" in capsys.readouterr().out  # no guess, no grading of the kinds
    for bad in ["aHash wins on flips", {"hflip": "better", "watermark": "worse"}, {"hflip": "more"}]:
        refused(check, ahash_right, threshold, better, worse, *data, range(65), bad, match="ahash_guess")
    if threshold != lesson.threshold:
        refused(check, ahash_right, lesson.threshold, better, worse, *data, **with_guess, match="not dHash's")
    refused(check, ahash_right, threshold, worse, better, *data, **with_guess, match="ahash_better")
    refused(check, ahash_right, str(threshold), better, worse, *data, **with_guess, match="a number of bits")
    neither = next(k for k in sorted(set(lesson.kinds) - {"original"}) if k not in better | worse)
    refused(
        check, ahash_right, threshold, better, worse | {neither}, *data, **with_guess, match="ahash_worse"
    )
    refused(check, ahash_right, threshold, better, {"watermarks"}, *data, **with_guess, match="as in `kinds`")
    # the lazy answer (both sets empty) is told how many kinds it misses, never which
    with pytest.raises(AssertionError, match=f"too many and misses {len(better)}") as refusal:
        check(ahash_right, threshold, set(), set(), *data, **with_guess)
    assert not any(kind in str(refusal.value) for kind in better | worse)
