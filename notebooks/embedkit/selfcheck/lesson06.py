"""Self-checks of lesson 06 (curate your own folder): one function per exercise, and one that compares
the lesson's cells with ``curate()``.

Each check takes the learner's function and the lesson data it needs, and prints ``Correct!``
(returning the learner's function), raises ``AssertionError`` with what to try, or, while an
exercise still returns ``None``, prints "Not done yet" and returns a stand-in: the package's version
where the package has one, else a placeholder that says, when called, that the exercise is not done.

While the learner's function runs, the package's own version refuses to run under every name it was
imported by: its code is swapped for one that raises (``code_switched_off``), and put back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import embedkit.calibration as calibration
import embedkit.grouping as grouping
import embedkit.quality as quality
import embedkit.splits as splits
from embedkit.images import load_rgb
from embedkit.selfcheck import code_switched_off, is_stand_in, stand_in
from embedkit.similarity import pairwise_cosine

__all__ = [
    "check_average_linkage",
    "check_find_leaks",
    "check_curate_agrees",
    "check_blur_score",
    "check_dhash_guard",
    "check_chain_strength",
    "as_leak",
]


# --- helpers of this module -----------------------------------------------------------------------


def _not_written(name: str, exercise: int) -> Callable:
    """A stand-in for an exercise no later cell needs: it says so when called."""

    def placeholder(*args, **kwargs):
        raise NotImplementedError(f"{name} (exercise {exercise}) is not written yet")

    placeholder.__name__ = name
    return stand_in(placeholder)


def _not_done_yet(function) -> bool:
    """The exercise's stub (``None``) or a stand-in a check returned before."""
    return function is None or is_stand_in(function)


def _weakest(members, S) -> float:
    """The lowest similarity between two members of a group."""
    return float(S[np.ix_(members, members)][np.triu_indices(len(members), k=1)].min())


def as_leak(leak: dict) -> frozenset:
    """One leak ``{split: [paths]}``, order aside: a set of (split, set of paths)."""
    return frozenset((split, frozenset(paths)) for split, paths in leak.items())


def _as_sets(groups_of_paths) -> set:
    return {frozenset(g) for g in groups_of_paths}


# --- exercise 1 ---------------------------------------------------------------------------------


def _package_parts(vectors):
    """The package's cut of one group (its guard on the pairs of these members alone), as a function
    with the exercise's signature."""

    def package_parts(members, S, threshold):
        members = np.asarray(members)
        edges = np.array([(a, b) for k, a in enumerate(members) for b in members[k + 1 :]], dtype=np.int64)
        _, cut = grouping.guarded_groups(len(vectors), edges, vectors, threshold)
        return list(cut[0]["parts"]) if cut else [members]

    package_parts.__name__ = "average_linkage_parts"
    return package_parts


def _hand_made(size: int, scores) -> np.ndarray:
    """A similarity matrix of ``size`` files: the given pairs' scores, 0.10 for every other pair."""
    S = np.full((size, size), 0.10)
    for a, b, score in scores:
        S[a, b] = S[b, a] = score
    np.fill_diagonal(S, 1.0)
    return S


# Two cases worked out by hand: (matrix, members, threshold, expected parts, why).
# Case 1, where single and complete linkage give other parts: 10 and 11 are copies, so are 12 and 13.
# Case 2, where the merge order matters: merging the first pair found at t (20, 21) instead of the best
# (21, 22), or weighting {21, 22} and 23 equally in {21, 22, 23} (SciPy's "weighted"), takes 20 in.
_CASE_1 = _hand_made(15, [(10, 11, 0.95), (12, 13, 0.95), (11, 14, 0.80), (12, 14, 0.70)])
_CASE_2 = _hand_made(24, [(21, 22, 0.95), (21, 23, 0.80), (22, 23, 0.80), (20, 23, 0.70), (20, 21, 0.60)])
_HAND_MADE = [
    (_CASE_1, np.arange(10, 15), 0.42, {(10, 11, 14), (12, 13)},
     "14 joins {10, 11}: average (0.10 + 0.80) / 2 = 0.45, while {12, 13} offers (0.70 + 0.10) / 2 = 0.40; "
     "then {10, 11, 14} and {12, 13} average 1.20 / 6 = 0.20"),
    (_CASE_1, np.arange(10, 15), 0.50, {(10, 11), (12, 13), (14,)},
     "14 averages 0.45 with {10, 11} and 0.40 with {12, 13}: it stays alone"),
    (_CASE_2, np.arange(20, 24), 0.50, {(20,), (21, 22, 23)},
     "{21, 22} merge first (0.95), then 23 joins them (0.80); 20 averages (0.60 + 0.10 + 0.70) / 3 = 0.47 "
     "with {21, 22, 23} and stays alone"),
]  # fmt: skip


def _as_table(S, members) -> str:
    rows = [" " * 4 + "".join(f"{m:>6}" for m in members)]
    rows += [f"{a:>4}" + "".join(f"{S[a, b]:6.2f}" for b in members) for a in members]
    return "\n".join(rows)


def check_average_linkage(average_linkage_parts: Callable, connected, S, vectors, threshold: float):
    """Exercise 1: ``average_linkage_parts`` on two small cases worked out by hand (where single and
    complete linkage, or merging in another order, give other parts), then on every group of the folder
    that needs the guard against the package's cut, with the package's guard refusing to run meanwhile."""
    package_parts = _package_parts(np.asarray(vectors))
    if _not_done_yet(average_linkage_parts):
        print("Not done yet: the package's guard stands in for yours below")
        return stand_in(package_parts)
    to_cut = [np.asarray(members) for members in connected if _weakest(members, S) < threshold]
    message = "average_linkage_parts must cut the group itself, not call the package's guard"
    with code_switched_off([grouping.cut_chains, grouping.guarded_groups], message):
        toy_found = [average_linkage_parts(members.copy(), M.copy(), x) for M, members, x, _, _ in _HAND_MADE]
        yours = [average_linkage_parts(members, S, threshold) for members in to_cut]
    for (M, members, x, expected, why), parts in zip(_HAND_MADE, toy_found, strict=True):
        found = {tuple(sorted(int(i) for i in part)) for part in parts}
        assert found == expected, (
            f"a hand-made case at threshold {x}: your parts {found}, expected {expected} (parts hold the "
            f"files' own numbers, here the rows of S)\n{_as_table(M, members)}\nexpected because {why}"
        )
    for members, parts in zip(to_cut, yours, strict=True):
        mine = sorted(sorted(int(i) for i in part) for part in parts)
        theirs = sorted(sorted(int(i) for i in part) for part in package_parts(members, S, threshold))
        assert sorted(i for part in mine for i in part) == sorted(members.tolist()), "each member in one part"
        assert mine == theirs, f"a group of {len(members)} files: your parts {mine}, the package's {theirs}"
    if to_cut:
        print(
            "Correct! both hand-made cases cut as worked out, and the "
            f"{len(to_cut)} {'group' if len(to_cut) == 1 else 'groups'} of this folder that "
            f"{'needs' if len(to_cut) == 1 else 'need'} the guard as the package cuts them"
        )
    else:
        print("Correct! both hand-made cases cut as worked out; 0 groups of this folder needed the guard: "
              "only the hand-made cases were checked")  # fmt: skip
    return average_linkage_parts


# --- exercise 3 ---------------------------------------------------------------------------------


def _package_leaks(groups, files):
    return [leak["splits"] for leak in splits.folder_leaks([[files[i] for i in g] for g in groups])]


def check_find_leaks(find_leaks: Callable, groups, files: Sequence[str]):
    """Exercise 3: ``find_leaks`` on a small case made by hand (splits of any name, a file at the top in
    no split, two folders of one split, a leak without ``train``), then on the folder's groups against the
    package's ``folder_leaks``, which refuses to run meanwhile."""
    if _not_done_yet(find_leaks):
        print("Not done yet: the package's folder_leaks stands in below")
        return stand_in(_package_leaks)
    # cat in train and holdout (a leak: a split may have any name); cup at the top level and in val (one
    # split: no leak); dog in two folders of train (no leak); coin in test and in val/old (a leak)
    toy_files = [
        "train/cat.jpg",
        "holdout/cat copy.jpg",
        "cup.jpg",
        "val/cup.png",
        "cup (1).jpg",
        "train/2023/dog.jpg",
        "train/dog small.jpg",
        "test/coin.jpg",
        "val/old/coin.png",
    ]
    toy_groups = [np.array([0, 1]), np.array([2, 3, 4]), np.array([5, 6]), np.array([7, 8])]
    toy_leaks = [
        {"train": ["train/cat.jpg"], "holdout": ["holdout/cat copy.jpg"]},
        {"test": ["test/coin.jpg"], "val": ["val/old/coin.png"]},
    ]
    package_leaks = _package_leaks(groups, files)
    message = "find_leaks must sort the files into splits itself, not call the package's folder_leaks"
    with code_switched_off([splits.folder_leaks], message):
        toy_found, found = find_leaks(toy_groups, toy_files), find_leaks(groups, files)
    for mine, expected in [(toy_found, toy_leaks), (found, package_leaks)]:
        assert isinstance(mine, list) and all(isinstance(leak, dict) for leak in mine), (
            "return a list with one dict {split: [paths]} per leaking group"
        )
        assert all(
            isinstance(paths, list) and all(isinstance(p, str) for p in paths)
            for leak in mine
            for paths in leak.values()
        ), "each split's value: the list of the group's paths in it"
        named = {split for leak in mine for split in leak}
        assert not named - {split for leak in expected for split in leak}, (
            f"splits {sorted(named)}: a split is the first folder of a path, "
            "and a file at the top belongs to none"
        )
        assert [as_leak(leak) for leak in mine] == [as_leak(leak) for leak in expected], (
            f"{len(mine)} leaks {mine}, expected {len(expected)}: {expected}"
        )
    print(f"Correct! the hand-made case, and this folder's {len(found)} leaks as the package finds them")
    return find_leaks


# --- the cells against curate() -----------------------------------------------------------------


def check_curate_agrees(
    findings,
    files,
    unreadable,
    exact_names,
    groups,
    review,
    leaks,
    proposed,
    S,
    threshold: float,
    border,
    known_truth: bool,
    guard: Callable,
) -> None:
    """The lesson's cells and ``curate()`` agree: the same unreadable files and exact groups, every pair
    decided alike away from the threshold, and (where both decoded the files alike, or on the bundled
    folder) the same groups, cut groups, leaks, split and borderline pairs."""
    t = threshold
    assert {u["path"] for u in findings.unreadable} == {p for p, _ in unreadable}
    assert _as_sets(findings.exact_groups) == _as_sets(exact_names)
    assert list(findings.paths) == list(files)
    iu = np.triu_indices(len(files), k=1)
    S_curate = pairwise_cosine(findings.vectors)
    drift = float(np.abs(S_curate - S).max())  # the most a score differs between the two decodes
    flipped = (S_curate[iu] >= t) != (S[iu] >= t)  # pairs the two decide differently
    assert (np.abs(S[iu][flipped] - t) <= 0.005).all(), "a pair decided differently far from the threshold"
    picture = {f: min(g) for g in exact_names for f in g}  # a copy stands for its exact group

    def as_pictures(rows):
        return {frozenset(picture.get(p, p) for p in pair) for pair in rows}

    mine = {
        "groups": _as_sets([[files[i] for i in g] for g in groups]),
        "review": {frozenset(files[i] for i in m) for m, _ in review},
        "parts": {frozenset(frozenset(files[i] for i in p) for p in parts) for _, parts in review},
        "leaks": {as_leak(leak) for leak in leaks},
        "split": dict(zip(files, proposed, strict=True)),
    }
    theirs = {
        "groups": _as_sets(findings.near_groups),
        "review": {frozenset(r["paths"]) for r in findings.review},
        "parts": {frozenset(map(frozenset, r["parts"])) for r in findings.review},
        "leaks": {as_leak(leak["splits"]) for leak in findings.leaks},
        "split": dict(zip(findings.paths, findings.proposed_split, strict=True)),
    }
    if not findings.has_splits:
        del mine["split"], theirs["split"]
    whose = "the package's guard (yours is not written yet)" if is_stand_in(guard) else "your guard"
    if known_truth or drift < 1e-4:  # the same scores: every finding the same
        for what in mine:
            assert mine[what] == theirs[what], f"the cells and curate() differ in the {what}"
        for side, table in [
            ("below", border[border["cosine"] < t]),
            ("above", border[border["cosine"] >= t]),
        ]:
            report = as_pictures((b["a"], b["b"]) for b in findings.borderline if b["side"] == side)
            shown = as_pictures(zip(table["a"], table["b"], strict=True))
            assert len(report) <= 6 and (shown <= report if len(shown) <= 6 else report <= shown), side
            print(f"borderline {side}: {len(shown)} in the table of step 4, {len(report)} in the report")
        print(
            "curate() found the same unreadable files, exact groups, groups, cut groups, leaks and split "
            f"as {whose}"
        )
    else:  # your own folder, with files the two decode differently
        agree = all(mine[what] == theirs[what] for what in mine if what != "review")
        print(
            f"verdict: the two decodes move a score by up to {drift:.4f}; {flipped.sum()} pairs decided "
            "differently, all within 0.005 of t; groups, cut groups, leaks and split "
            + ("agree" if agree else "differ by those pairs")
        )


# --- exercise 4 ---------------------------------------------------------------------------------


def _package_blur(picture) -> float:
    return quality.measure_image(picture)["blurry"]


def blur_cases(measures, paths, folder) -> dict:
    """The pictures the blur check scores, each with the package's score: three photos larger than
    224 px that ship with scikit-learn and matplotlib (one also blurred), and a spread of the folder's
    files (least detail first), with the scores ``curate()`` measured (``measures``)."""
    from matplotlib import cbook
    from PIL import Image, ImageFilter
    from sklearn.datasets import load_sample_images

    samples = load_sample_images()
    larger = {
        Path(f).name: Image.fromarray(a) for f, a in zip(samples.filenames, samples.images, strict=True)
    }
    larger["grace_hopper.jpg"] = load_rgb(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    larger["flower.jpg, blurred"] = larger["flower.jpg"].filter(ImageFilter.GaussianBlur(3))
    cases = {name: (picture, _package_blur(picture)) for name, picture in larger.items()}
    measures = np.asarray(measures, dtype=np.float64)
    by_detail = [i for i in np.argsort(measures) if np.isfinite(measures[i])]
    for i in by_detail[:: max(1, len(by_detail) // 6)]:
        cases[paths[i]] = (load_rgb(Path(folder) / paths[i]), float(measures[i]))
    return cases


def check_blur_score(blur_score: Callable, measures, paths: Sequence[str], folder):
    """Exercise 4: ``blur_score`` within 5 % of the package's ``blurry`` score on larger photos (which
    must be brought down first, one also blurred) and on a spread of the folder's files, with
    ``embedkit.quality``'s measures refusing to run meanwhile."""
    if _not_done_yet(blur_score):
        print("Not done yet: the package's measure stands in below")
        return stand_in(_package_blur)
    cases = blur_cases(measures, paths, folder)
    names = ["measure_image", "measure", "detail", "laplacian", "brightness"]
    message = "blur_score must compute the score itself, not call embedkit.quality's measures"
    with code_switched_off([getattr(quality, name) for name in names], message):
        yours = {name: float(blur_score(picture)) for name, (picture, _) in cases.items()}
    for name, (_, theirs) in cases.items():
        mine = yours[name]
        assert abs(mine - theirs) <= 0.05 * theirs, (
            f"{name}: your score {mine:.2f}, the package's {theirs:.2f} "
            "(the first hint names what moves the score)"
        )
    print(f"Correct! your blur score is the package's, within 5 %, on all {len(cases)} pictures")
    return blur_score


# --- exercise 5 ---------------------------------------------------------------------------------

# photo 1 is 4 bits from photo 0 (dropped: at most 4); photo 2 is 4 bits from the dropped photo 1 and 8
# from photo 0 (kept: only kept photos drop others); photo 3 is 5 bits from photo 0 (kept); photo 4 is 1
# bit from the kept photo 2 (dropped); photo 5 is 1 bit from photo 0, in the 64th bit (dropped)
DHASH_CASE = [0b0, 0b1111, 0b1111_1111, 0b11111 << 20, 0b1111_1110, 1 << 63]


def _package_dhash_keep(dhashes, bits: int) -> np.ndarray:
    """The package's guard where only its dHash test can fire: each photo's original and its one copy
    share a direction no other photo has, so no item of one photo is alike an item of another."""
    n = len(dhashes)
    vectors = np.repeat(np.eye(n, dtype=np.float32), 2, axis=0)
    photo = np.repeat(np.arange(n), 2)
    keep, _, _ = calibration.guard_duplicate_photos(
        vectors, photo, np.tile([True, False], n), list(dhashes), dhash_bits=bits
    )
    return keep


def check_dhash_guard(dhash_guard: Callable, dhashes: Sequence[int], files: Sequence[str], bits: int = 4):
    """Exercise 5: ``dhash_guard(dhashes, bits)`` keeps what ``calibration.guard_duplicate_photos`` keeps
    with its embedding test unable to fire, on ``DHASH_CASE`` and on the folder's ``dhashes``; the
    package's guard refuses to run while the learner's function does."""
    if _not_done_yet(dhash_guard):
        print("Not done yet: write dhash_guard above (the package's guard runs the calibration below)")
        return _not_written("dhash_guard", 5)
    dhashes = [int(h) for h in dhashes]
    hand = [f"photo {k}" for k in range(len(DHASH_CASE))]
    cases = {"the hand-made case": (DHASH_CASE, hand, bits)}
    for other in sorted({2, 6} - {bits}):  # another `bits`, so that a hard-coded 4 fails
        cases[f"the hand-made case with bits={other}"] = (DHASH_CASE, hand, other)
    cases["this folder's files"] = (dhashes, list(files), bits)
    expected = {name: _package_dhash_keep(hashes, b) for name, (hashes, _, b) in cases.items()}
    message = "dhash_guard must compare the dHashes itself, not call the package's guard_duplicate_photos"
    with code_switched_off([calibration.guard_duplicate_photos], message):
        yours = {name: dhash_guard(list(hashes), b) for name, (hashes, _, b) in cases.items()}
    for name, (hashes, names, b) in cases.items():
        mine = np.asarray(yours[name])
        assert mine.shape == (len(hashes),) and mine.dtype == bool, (
            f"{name}: return a bool array with one entry per photo (True: kept), not {yours[name]!r}"
        )
        wrong = np.flatnonzero(mine != expected[name])
        if wrong.size:
            k = int(wrong[0])
            kept = np.flatnonzero(expected[name][:k])
            distances = [(int(hashes[k] ^ hashes[q]).bit_count(), int(q)) for q in kept]
            closest = min(distances) if distances else None
            why = (
                f"the closest photo kept before it, {names[closest[1]]}, is {closest[0]} bits away"
                if closest
                else "no photo is kept before it"
            )
            raise AssertionError(
                f"{name}: you {'keep' if mine[k] else 'drop'} {names[k]}, the package "
                f"{'keeps' if expected[name][k] else 'drops'} it ({why}; a photo is dropped at {b} bits "
                "or fewer from one kept before it, and a dropped photo drops no other)"
            )
    dropped = int((~expected["this folder's files"]).sum())
    print(
        f"Correct! your dhash_guard keeps what the package's guard keeps: the hand-made case at bits="
        f"{', '.join(str(b) for b in sorted({bits, 2, 6}))}, and this folder's {len(dhashes)} files, "
        f"{dropped} of them dropped as copies of a file kept before them"
    )
    return dhash_guard


# --- exercise 2 ---------------------------------------------------------------------------------


def check_chain_strength(chain_strength: Callable, S, files: Sequence[str], ends=None, threshold=None):
    """Exercise 2: ``chain_strength`` against the similarity at which SciPy's single-linkage tree joins
    the two files, on ``ends`` (the cat and the cup) and five pairs of the folder's files drawn at random
    (pixel-identical copies left out: they score 1.0 whatever the path); neither the pair's own score
    nor a step of ``COSINE_GRID`` passes where the answer differs. Where ``ends`` is not given (the
    learner's own folder) and ``threshold`` is, the least similar two files of the largest group that
    pairs at or above ``threshold`` join are tried too: the pair a short cut through the path misses most."""
    from scipy.cluster.hierarchy import cophenet, linkage
    from scipy.spatial.distance import squareform

    from embedkit.evaluation import COSINE_GRID

    S = np.asarray(S)
    drawn = np.random.default_rng(0).choice(len(files), size=(50, 2))
    tried = [(int(a), int(b)) for a, b in drawn if a != b and S[a, b] < 0.999][:5]
    if ends is not None:
        tried.insert(0, (int(ends[0]), int(ends[1])))
    elif threshold is not None:
        from embedkit.pairs import connected_groups

        labels = connected_groups(len(S), np.argwhere(np.triu(S >= threshold, k=1)))
        largest = np.flatnonzero(labels == np.bincount(labels).argmax())
        if len(largest) > 2:
            inside = S[np.ix_(largest, largest)] + np.eye(len(largest)) * 9.0  # no file with itself
            a, b = np.unravel_index(np.argmin(inside), inside.shape)
            tried.insert(0, (int(largest[a]), int(largest[b])))
    if _not_done_yet(chain_strength):
        print("Not done yet: write chain_strength above (nothing below needs it)")
        return _not_written("chain_strength", 2)
    distance = np.clip(1.0 - S.astype(np.float64), 0.0, None)
    np.fill_diagonal(distance, 0.0)
    joined_at = 1.0 - squareform(cophenet(linkage(squareform(distance, checks=False), method="single")))
    for a, b in tried:
        mine, theirs = chain_strength(a, b), joined_at[a, b]
        names = f"{Path(files[a]).name} and {Path(files[b]).name}"
        assert mine is not None, f"{names}: chain_strength returned None"
        assert abs(mine - S[a, b]) > 1e-6 or abs(mine - theirs) <= 1e-6, (
            f"{names}: {mine:.4f} is their own score, but a path of pairs can join them at a higher threshold"
        )
        assert mine not in COSINE_GRID or abs(mine - theirs) <= 1e-6, (
            f"{names}: {mine:.2f} is a step of COSINE_GRID; the answer is a score of S"
        )
        assert abs(mine - theirs) <= 1e-6, (
            f"{names}: yours {mine:.4f}, the highest threshold that joins them {theirs:.4f}"
        )
    print(f"Correct! your chain_strength gives the highest joining threshold of all {len(tried)} pairs")
    return chain_strength
