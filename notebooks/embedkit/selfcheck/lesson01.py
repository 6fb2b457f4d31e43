"""Self-checks of lesson 01, data curation: the pixel hash, dHash, the threshold rule, merged groups,
one fold, the leak list, the re-split and the average hash, and the lesson's claims about the re-split.

The lesson calls each check in one short cell, e.g.::

    my_pixel_hash = lesson01.check_pixel_hash(my_pixel_hash, manifest["file"], pixel_hashes)

The lesson shows which version it goes on with (yours or the package's): ``passed`` says whether a
function passed its check, and a check that fails leaves it ``False``.

One helper beyond the shared ones is here: ``names_switched_off`` replaces compiled library
functions and classes (which have no code to swap, as the shared ``code_switched_off`` does)
under every name a loaded module gives them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from embedkit import duplicates, evaluation, pairs, splits
from embedkit.images import load_rgb
from embedkit.selfcheck import code_switched_off, is_stand_in, not_written, stand_in

__all__ = [
    "passed",
    "names_switched_off",
    "check_pixel_hash",
    "check_hash_from_thumbnail",
    "check_rule",
    "check_merges",
    "check_fold",
    "check_leaks",
    "check_group_aware_split",
    "check_resplit",
    "check_ahash",
]

_PASSED = "passed_lesson01_check"


def passed(*functions: Callable) -> bool:
    """True when every one of ``functions`` is the learner's and passed its check (its last run of it)."""
    return all(getattr(f, _PASSED, False) and not is_stand_in(f) for f in functions)


def _mark(function: Callable, ok: bool) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # a builtin or a callable object without a __dict__
        setattr(function, _PASSED, ok)


def _forget(*functions: Callable) -> None:
    """Unmark functions before their check runs: a check that fails then leaves them not passed."""
    for f in functions:
        if callable(f) and not is_stand_in(f):
            _mark(f, False)


def _package(function: Callable) -> Callable:
    """The package's ``function`` as a stand-in (a new function: the package's own is not marked)."""

    @functools.wraps(function)
    def package_version(*args, **kwargs):
        return function(*args, **kwargs)

    return stand_in(package_version)


@contextlib.contextmanager
def names_switched_off(objects: Iterable[Any], message: str) -> Iterator[None]:
    """While the block runs, every name a loaded module (the notebook's ``__main__`` among them) gives
    one of ``objects`` stands for a function that raises ``AssertionError(message)``.

    For compiled or wrapped functions and for classes, which have no plain code to swap. Put back when
    the block ends.
    """
    off = {id(o) for o in objects}

    def refuse(*args, **kwargs):
        raise AssertionError(message)

    spaces = [vars(m) for m in list(sys.modules.values()) if hasattr(m, "__dict__")]
    held = [
        (names, name, value) for names in spaces for name, value in list(names.items()) if id(value) in off
    ]
    try:
        for names, name, _ in held:
            names[name] = refuse
        yield
    finally:
        for names, name, value in held:
            names[name] = value


def _show(*cases: str) -> None:
    """The hand-worked cases a passed check ran, one line each."""
    for case in cases:
        print(f"  ✓ {case}")


@contextlib.contextmanager
def _sha256_recorded() -> Iterator[list]:
    """While the block runs, every name a loaded module gives ``hashlib.sha256`` makes a SHA-256 that also
    keeps the bytes it was given; the list yielded holds (bytes, hex digest) of each one made."""
    import hashlib

    real, made = hashlib.sha256, []

    class Recorded:
        def __init__(self, data=b"", **kwargs):
            self._digest, self._data = real(data, **kwargs), bytearray(memoryview(data).cast("B"))
            made.append(self)

        def update(self, data):
            self._digest.update(data)
            self._data += memoryview(data).cast("B")

        def __getattr__(self, name):
            return getattr(self._digest, name)

    spaces = [vars(m) for m in list(sys.modules.values()) if hasattr(m, "__dict__")]
    held = [(names, name) for names in spaces for name, value in list(names.items()) if value is real]
    records: list = []
    try:
        for names, name in held:
            names[name] = Recorded
        yield records
    finally:
        for names, name in held:
            names[name] = real
        records += [(bytes(r._data), r._digest.hexdigest()) for r in made]


def _short(file: Any) -> str:
    """A bundled file as the manifest's ``path`` names it: its split folder and its name."""
    return "/".join(Path(file).parts[-2:])


# --------------------------------------------------------------------------- the pixel hash


def check_pixel_hash(my_pixel_hash: Callable, files: Sequence[Any], pixel_hashes: Sequence[str]) -> Callable:
    """Your pixel hash on hand-made images whose answer is known (re-saved, cut out over white, one value
    nudged, the same bytes in two shapes, twice), then which of ``files`` it calls equal, against
    ``pixel_hashes``, the package's (``duplicates.pixel_hash`` is switched off while yours runs)."""
    files = list(files)
    _forget(my_pixel_hash)
    if not_written(my_pixel_hash, files[0]):
        print("Not done yet: the cells below use embedkit.duplicates.pixel_hash in its place")
        return _package(duplicates.pixel_hash)
    photo = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    photo[:, :3] = 255  # a white band on the left
    photo[5, 5] = 100  # a gray pixel
    cutout = np.dstack([photo, np.full((8, 8), 255, np.uint8)])
    cutout[:, :3] = [0, 0, 0, 0]  # the band cut out: fully transparent (black underneath)
    nudged = photo.copy()
    nudged[5, 5, 2] = 101  # one blue value one level off: (100, 100, 101) still converts to gray 100,
    # so a grayscale hash would miss it
    strip = photo[:2]  # 8 wide, 2 high; the same bytes as 2 wide, 8 high below
    line = photo.reshape(-1, 3)[None, :11]  # 11 wide, 1 high; the same 33 bytes as 1 wide, 11 high below
    cases = [
        ("photo", photo, 1),
        ("again", photo, 9),
        ("cutout", cutout, 6),
        ("nudged", nudged, 6),
        ("wide", strip, 6),
        ("tall", strip.reshape(8, 2, 3), 6),
        ("line", line, 6),
        ("column", line.reshape(11, 1, 3), 6),
    ]
    message = "write the pixel hash yourself: duplicates.pixel_hash is switched off while yours runs"
    with code_switched_off([duplicates.pixel_hash], message):
        with tempfile.TemporaryDirectory() as folder:
            made, hashed, pixels = {}, {}, {}
            for name, array, level in cases:
                Image.fromarray(array).save(Path(folder) / f"{name}.png", compress_level=level)
                pixels[name] = load_rgb(Path(folder) / f"{name}.png").tobytes()
                with _sha256_recorded() as hashed[name]:
                    made[name] = my_pixel_hash(Path(folder) / f"{name}.png")
        yours = [my_pixel_hash(f) for f in files]
    assert all(isinstance(h, str) and len(h) == 64 for h in made.values()), (
        "return the hexdigest(): 64 characters"
    )
    assert made["photo"] == made["again"], "the same pixels saved at another compression level: equal"
    assert made["photo"] == made["cutout"], (
        "a cut-out laid over white (load_rgb) shows the same pixels: equal"
    )
    assert made["photo"] != made["nudged"], "one blue value one level off: not equal"
    assert made["wide"] != made["tall"], "the same bytes as 8×2 and as 2×8: not equal (hash the size too)"
    assert made["line"] != made["column"], (
        "the same bytes as 11×1 and as 1×11: not equal (put a separator between width and height: "
        'without one both read "111")'
    )
    for name in made:  # the digest is hashlib.sha256's, of bytes that hold the decoded RGB pixels
        assert any(digest == made[name] and pixels[name] in data for data, digest in hashed[name]), (
            "return hashlib.sha256(...).hexdigest() of the size and the RGB pixels (load_rgb(path).tobytes())"
        )
    same_mine = pd.factorize(pd.Series(yours, dtype=object))[0]
    same_theirs = pd.factorize(pd.Series(list(pixel_hashes), dtype=object))[0]
    wrong = [_short(f) for f, a, b in zip(files, same_mine, same_theirs, strict=True) if a != b]
    assert not wrong, f"your hash groups these files differently from duplicates.pixel_hash: {wrong[:3]}"
    print(
        f"Correct: your hash calls the same files equal as duplicates.pixel_hash, on all {len(files)} files"
    )
    _show(
        "the same pixels saved at another compression level → equal",
        "a cut-out laid over white and its opaque original → equal",
        "one blue value one level off → different",
        "the same bytes as 8×2 and 2×8, and as 11×1 and 1×11 → different",
    )
    _mark(my_pixel_hash, True)
    return my_pixel_hash


# --------------------------------------------------------------------------- dHash


def _dhash_of_thumbnail(px: Any) -> int:
    """The package's dHash of an (8, 9) uint8 thumbnail (resizing it to its own size changes nothing)."""
    return duplicates.dhash(Image.fromarray(np.asarray(px, dtype=np.uint8)))


def check_hash_from_thumbnail(
    hash_from_thumbnail: Callable, my_dhash: Callable, files: Sequence[Any], dhashes: Sequence[int]
) -> Callable:
    """Your dHash steps 3 and 4 on thumbnails worked out by hand (the order of the bits, uint8 wrap-around,
    ties), then ``my_dhash`` (which calls yours) on every one of ``files`` against ``dhashes``, the
    package's (``duplicates.dhash`` is switched off while yours runs)."""
    files = list(files)
    _forget(hash_from_thumbnail)
    if not_written(hash_from_thumbnail, np.zeros((8, 9), np.uint8)):
        print("Not done yet: the cells below use embedkit.duplicates.dhash in its place")
        return _package(_dhash_of_thumbnail)
    falling = np.tile(
        np.arange(90, 0, -10, dtype=np.uint8), (8, 1)
    )  # each pixel brighter than its right neighbour
    first_bit, second_bit, last_bit = (np.zeros((8, 9), np.uint8) for _ in range(3))
    first_bit[0, 0], second_bit[0, 1], last_bit[7, 7] = 200, 200, 200
    message = "write dHash yourself: duplicates.dhash is switched off while yours runs"
    with code_switched_off([duplicates.dhash], message):
        assert isinstance(hash_from_thumbnail(falling), int), "return a Python int"
        assert hash_from_thumbnail(falling) == 2**64 - 1, "a falling row: all 64 bits are 1"
        assert hash_from_thumbnail(falling[:, ::-1].copy()) == 0, (
            "a rising row: all 64 bits are 0 (uint8 wraps around)"
        )
        assert hash_from_thumbnail(np.full((8, 9), 7, np.uint8)) == 0, "equal neighbours: not brighter, so 0"
        assert hash_from_thumbnail(first_bit) == 1 << 63, "row 0, column 0 is the first, most significant bit"
        assert hash_from_thumbnail(second_bit) == 1 << 62, "the bits run along a row first"
        assert hash_from_thumbnail(last_bit) == 1, "row 7, column 7 is the last bit"
        mine = [my_dhash(f) for f in files]
    wrong = [_short(f) for f, a, b in zip(files, mine, dhashes, strict=True) if a != b]
    assert not wrong, f"{len(wrong)} files hash differently from embedkit.duplicates.dhash, e.g. {wrong[:3]}"
    print(f"Correct: my_dhash equals embedkit.duplicates.dhash on all {len(files)} files")
    _show(
        "a falling row → all 64 bits 1; a rising row → 0 (no uint8 wrap-around)",
        "equal neighbours → 0 (not brighter)",
        "row 0, column 0 → the top bit (1 << 63); row 0, column 1 → 1 << 62; row 7, column 7 → 1",
    )
    _mark(hash_from_thumbnail, True)
    return hash_from_thumbnail


# --------------------------------------------------------------------------- pair scores and the rule


def _pair_scores_by_sklearn(t: float, distance: Any, same_group: Any) -> tuple[float, float]:
    """scikit-learn's pair precision and recall of the pairs at most ``t`` apart."""
    from sklearn.metrics import precision_score, recall_score

    found = np.asarray(distance) <= t
    truth = np.asarray(same_group, bool)
    return (
        float(precision_score(truth, found, zero_division=np.nan)),
        float(recall_score(truth, found, zero_division=np.nan)),
    )


def _package_threshold(
    curve: pd.DataFrame, max_merges: int = 0, min_precision: float = evaluation.MIN_PRECISION
):
    """The package's rule on a curve of distances (what ``evaluation.choose_threshold`` applies)."""
    return evaluation._pick_threshold(curve, False, min_precision, max_merges)


def _check_pair_scores(my_pair_scores: Callable, distance: np.ndarray, same_group: np.ndarray, curve) -> None:
    toy = tuple(
        float(x) for x in my_pair_scores(3, np.array([0, 3, 5, 7]), np.array([True, False, True, True]))
    )
    assert np.allclose(toy, (1 / 2, 1 / 3)), (
        "pairs 0, 3, 5 and 7 bits apart, the second no duplicate: at 3 bits two pairs are found, "
        f"one a duplicate (precision 1/2), out of three duplicates (recall 1/3); you return {toy}"
    )
    for t in [0, 14, 16, 30]:
        precision, recall = (float(x) for x in my_pair_scores(t, distance, same_group))
        assert np.isclose(precision, curve.loc[t, "precision"]) and np.isclose(
            recall, curve.loc[t, "recall"]
        ), (
            f"at {t} bits: precision {precision:.3f}, recall {recall:.3f}; the curve has "
            f"{curve.loc[t, 'precision']:.3f}, {curve.loc[t, 'recall']:.3f}"
        )
    toy = tuple(
        float(x) for x in my_pair_scores(3, np.array([0, 2.5, 3, 3.2]), np.array([True, False, True, True]))
    )
    assert np.allclose(toy, (2 / 3, 2 / 3)), (
        "pairs 0, 2.5, 3 and 3.2 apart, the second no duplicate: at 3 the first three are found (3.2 is over "
        f"3), two of them duplicates (precision 2/3), of three duplicates (recall 2/3); you return {toy}"
    )


def _edge_curve() -> pd.DataFrame:
    """Four thresholds made by hand: at 2 the precision is exactly the default floor, at 3 the merges are
    exactly 2; both limits are inclusive. It has every column a curve has, so that a rule that reads
    another one still gets the check's message."""
    return pd.DataFrame(
        {
            "found": [2, 4, 6, 8],
            "precision": [1.0, evaluation.MIN_PRECISION, 0.97, 0.9],
            "recall": [0.25, 0.45, 0.55, 0.72],
            "merges": [0, 0, 2, 3],
            "f1": [0.4, 0.6, 0.7, 0.8],
            "ari": [0.3, 0.5, 0.6, 0.7],
        },
        index=pd.Index([1.0, 2.0, 3.0, 4.0], name="threshold"),
    )


def _check_threshold(my_threshold: Callable, curve, all_pairs, distance, groups, grid) -> list[float]:
    edges = _edge_curve()
    tests = [
        (
            f"a hand-made curve, best allowed precision exactly the floor {evaluation.MIN_PRECISION}",
            edges,
            1,
            evaluation.MIN_PRECISION,
        ),
        ("a hand-made curve, best allowed merges exactly the limit 2, precision >= 0.96", edges, 2, 0.96),
        ("all groups", curve, 0, evaluation.MIN_PRECISION),
        ("all groups, up to 5 merges, precision >= 0.99", curve, 5, 0.99),
        ("all groups, up to 2 merges", curve, 2, evaluation.MIN_PRECISION),
        ("all groups, up to 5 merges, precision >= 0.9", curve, 5, 0.9),
        ("all groups, up to 4 merges, precision >= 0.9", curve, 4, 0.9),
        ("a grid from 5 bits", curve.loc[5:], 0, evaluation.MIN_PRECISION),
    ]
    i, j = all_pairs[:, 0], all_pairs[:, 1]
    half_bits = np.arange(0, max(grid) + 0.5, 0.5)  # t and t + 0.5 find the same pairs: every F1 ties
    tests.append(
        (
            "a grid in half bits",
            evaluation.threshold_curve(all_pairs, distance, groups, half_bits, higher_is_similar=False),
            0,
            evaluation.MIN_PRECISION,
        )
    )
    for repeat, fold, held_out in evaluation.group_folds(groups):
        inside = ~held_out[i] & ~held_out[j]  # pairs of two calibration files
        fold_curve = evaluation.threshold_curve(
            all_pairs[inside], distance[inside], groups, grid, higher_is_similar=False, scored_items=~held_out
        )
        tests.append((f"calibration set {repeat}.{fold}", fold_curve, 0, evaluation.MIN_PRECISION))
    packages = [evaluation._pick_threshold(c, False, p, m) for _, c, m, p in tests]
    message = "apply the rule yourself: the package's rule is switched off while my_threshold runs"
    with code_switched_off([evaluation.choose_threshold, evaluation._pick_threshold], message):
        yours = [my_threshold(c, max_merges=m, min_precision=p) for _, c, m, p in tests]
    for (name, test_curve, most, floor), package, t in zip(tests, packages, yours, strict=True):
        assert t is not None and t in test_curve.index, (
            f"{name}: return a threshold of curve.index, not {t!r}"
        )
        row = test_curve.loc[t]
        assert row["merges"] <= most, (
            f"{name}: at {t:g} bits {row['merges']:g} found groups hold two or more photos"
        )
        assert row["precision"] >= floor, (
            f"{name}: pair precision {row['precision']:.3f} at {t:g} bits, floor {floor}"
        )
        assert np.isclose(row["f1"], test_curve.loc[package, "f1"]), (
            f"{name}: F1 {row['f1']:.3f} at {t:g} bits, "
            f"but {test_curve.loc[package, 'f1']:.3f} at {package:g} bits"
            + (
                " (a precision equal to the floor, or merges equal to the limit, is allowed)"
                if test_curve is edges
                else ""
            )
        )
    return yours[2:]  # the lesson's curves


def check_rule(
    my_pair_scores: Callable,
    my_threshold: Callable,
    distance: np.ndarray,
    same_group: np.ndarray,
    curve: pd.DataFrame,
    all_pairs: np.ndarray,
    groups: np.ndarray,
    grid: Iterable[float] = range(65),
) -> tuple[Callable, Callable]:
    """Your pair scores on four pairs worked out by hand and against rows of ``curve``; your threshold
    against the package's rule (switched off while yours runs) on a hand-made curve whose best allowed rows
    sit exactly at the precision floor and at the merge limit, on ``curve`` with five sets of limits, on a
    grid from 5 bits and on the curves of 20 calibration sets: within the limits, with the F1 of the
    package's choice. Each is checked once written; returns both (a stand-in for one not written)."""
    _forget(my_pair_scores, my_threshold)
    distance, same_group, all_pairs = np.asarray(distance), np.asarray(same_group), np.asarray(all_pairs)
    scores_done = not is_stand_in(my_pair_scores) and my_pair_scores(0, distance, same_group) is not None
    rule_done = not is_stand_in(my_threshold) and my_threshold(curve) is not None
    if scores_done:
        _check_pair_scores(my_pair_scores, distance, same_group, curve)
    if rule_done:
        yours = _check_threshold(my_threshold, curve, all_pairs, distance, np.asarray(groups), list(grid))
    if scores_done and rule_done:
        print(
            "Correct: your pair scores match the curve, "
            f"and your rule's threshold on a hand-made curve and on all {len(yours)} of the lesson's "
            f"(yours: {sorted({float(t) for t in yours})} bits)"
        )
        _show(
            "pairs 0, 3, 5, 7 apart, the 3 no duplicate, t = 3 → precision 1/2, recall 1/3",
            "pairs 0, 2.5, 3, 3.2 apart, the 2.5 no duplicate, t = 3 → precision 2/3, recall 2/3",
            "a hand-made curve whose best allowed row has precision exactly the floor → taken",
            "a hand-made curve whose best allowed row has merges exactly the limit → taken",
        )
    else:
        print(
            "Not done yet: the lesson uses evaluation.choose_threshold's threshold in its place"
            + (" (your my_pair_scores passes its part)" if scores_done else "")
            + (" (your my_threshold passes its part)" if rule_done else "")
        )
    for function, done in [(my_pair_scores, scores_done), (my_threshold, rule_done)]:
        _mark(function, done)
    return (
        my_pair_scores if scores_done else _package(_pair_scores_by_sklearn),
        my_threshold if rule_done else _package(_package_threshold),
    )


# --------------------------------------------------------------------------- merged groups


def _package_merges(found_pairs: Any, true_groups: Any) -> int:
    """The package's count: found groups (``pairs.connected_groups``) that hold two or more true groups."""
    codes = pairs.group_codes(true_groups)
    found = pairs.connected_groups(len(codes), np.asarray(found_pairs).reshape(-1, 2))
    return evaluation._grouping_scores(found, codes, np.ones(len(codes), bool))[0]


def check_merges(
    my_merges: Callable, pairs_within: Callable, groups: np.ndarray, curve: pd.DataFrame
) -> Callable:
    """Your merge count on small cases worked out by hand (chains, whole groups relabelled, merged groups
    joined), then on ``pairs_within(t)`` against ``curve``'s ``merges`` at six thresholds, with
    ``pairs.connected_groups``, the package's merge count, SciPy's graph functions
    (``scipy.sparse.csgraph``), networkx's components and searches, ``fcluster`` and union-find switched
    off while yours runs."""
    _forget(my_merges)
    if not_written(my_merges, np.empty((0, 2), int), ["a"]):
        print("Not done yet: the lesson goes on with the package's curve (evaluation.threshold_curve)")
        return _package(_package_merges)
    truth = ["a", "a", "b", "b", "c"]  # files 0 to 4, in true groups a, a, b, b, c
    cases = [
        ([], 0, "no pairs: nothing is merged"),
        ([[0, 1], [2, 3]], 0, "only true pairs: two found groups, each within one true group"),
        ([[0, 2]], 1, "one wrong pair merges a and b"),
        ([[0, 2], [2, 4]], 1, "a chain a-b-c is ONE merged group: count groups, not wrong pairs"),
        ([[0, 2], [3, 2]], 1, "0, 2 and 3 are one found group: relabel every file of a group, not one file"),
        ([[2, 0], [1, 3], [4, 0]], 2, "{0, 2, 4} and {1, 3} are two found groups, and both mix true groups"),
        ([[0, 2], [1, 3], [2, 3]], 1, "two merged found groups chained into one: one merged group"),
    ]
    at = [14, 15, 16, 17, 18, 24]
    found_at = {t: pairs_within(t) for t in at}
    import importlib.util

    import scipy.cluster.hierarchy
    import scipy.sparse.csgraph

    graph = scipy.sparse.csgraph  # every graph function: components, traversals, shortest paths
    tools = [
        *(getattr(graph, name) for name in graph.__all__ if inspect.isroutine(getattr(graph, name))),
        scipy.cluster.hierarchy.fcluster,
        scipy.cluster.hierarchy.DisjointSet,
    ]
    if importlib.util.find_spec("networkx"):
        import networkx

        tools += [
            networkx.connected_components,
            networkx.number_connected_components,
            networkx.node_connected_component,
            networkx.descendants,
            networkx.bfs_tree,
            networkx.dfs_tree,
            networkx.bfs_edges,
            networkx.dfs_edges,
            networkx.dfs_preorder_nodes,
            networkx.utils.UnionFind,
        ]
    message = (
        "chain the pairs yourself: pairs.connected_groups, the package's merge count, "
        "SciPy's graph functions (scipy.sparse.csgraph: components, breadth- and depth-first search), "
        "networkx's components and searches, fcluster and union-find are off while my_merges runs"
    )
    package = [
        pairs.connected_groups,
        evaluation._groupings,
        evaluation._grouping_scores,
        evaluation.threshold_curve,
    ]
    # the package's in pure Python: code swapped; the libraries' compiled or wrapped: swapped under every name
    with code_switched_off(package, message), names_switched_off(tools, message):
        got = [my_merges(np.array(found, int).reshape(-1, 2), truth) for found, _, _ in cases]
        yours = [my_merges(found_at[t], groups) for t in at]
    for (found, want, why), count in zip(cases, got, strict=True):
        assert count == want, f"pairs {found} with true groups {truth}: {count}, but {why} ({want})"
    for t, count in zip(at, yours, strict=True):
        assert count == curve.loc[t, "merges"], (
            f"at {t} bits: you count {count}, the curve {curve.loc[t, 'merges']}"
        )
    print(f"Correct: your merge counts equal the curve's at {at} bits: {yours}")
    _show(
        "one wrong pair a–b → 1",
        "a chain a–b–c → 1 (groups, not wrong pairs)",
        "pairs 0–2 and 3–2 → 1 (every file of a found group relabelled)",
        "two merged found groups chained by one more pair → 1",
    )
    _mark(my_merges, True)
    return my_merges


# --------------------------------------------------------------------------- one fold


def _fold_from_table(folds: pd.DataFrame, fold_masks: list[np.ndarray]) -> Callable:
    """A stand-in for ``my_fold``: the row of ``folds`` (the package's table) of the held-out mask given."""

    def package_fold(held_out):
        held_out = np.asarray(held_out, bool)
        matches = [k for k, mask in enumerate(fold_masks) if np.array_equal(mask, held_out)]
        if not matches:
            raise ValueError("held_out is none of evaluation.group_folds(groups)'s folds")
        row = folds.iloc[matches[0]]
        return row["threshold"], row["in_sample_recall"], row["held_out_precision"], row["held_out_recall"]

    return stand_in(package_fold)


def _true_pairs(groups: np.ndarray) -> int:
    """The pairs of files within one true group."""
    sizes = pd.Series(groups).value_counts()
    return int((sizes * (sizes - 1) // 2).sum())


def check_fold(
    my_fold: Callable, my_threshold: Callable, folds: pd.DataFrame, groups: np.ndarray
) -> Callable:
    """Your ``my_fold`` against rows of ``folds`` (``cross_validate_threshold``'s table): fold 0, the first
    two folds whose threshold merged held-out groups, and where fewer than two merged, the next folds,
    so that three are checked: first every threshold, then the calibration recall (which tells whether
    the calibration curve was scored over the calibration files), then the held-out numbers. The
    package's rule is switched off while yours runs."""
    groups = np.asarray(groups)
    fold_masks = [held_out for _, _, held_out in evaluation.group_folds(groups)]
    assert len(fold_masks) == len(folds), (
        "folds: the table of evaluation.cross_validate_threshold with its defaults"
    )
    _forget(my_fold)
    if is_stand_in(my_threshold) or not_written(my_fold, fold_masks[0]):
        print(
            'Not done yet: my_fold needs my_threshold ("Your turn: pair scores and the rule"); '
            "the lesson goes on with `folds`"
        )
        return _fold_from_table(folds, fold_masks)
    merged = np.flatnonzero(folds["held_out_merges"].to_numpy() > 0).tolist()
    order = [0, *[k for k in merged if k != 0][:2], *range(len(folds))]
    checked = list(dict.fromkeys(order))[:3]  # fold 0, two that merged, or the next folds where fewer merged
    message = "choose with your my_threshold: the package's rule is switched off while my_fold runs"
    rule = [evaluation.choose_threshold, evaluation._pick_threshold, evaluation.cross_validate_threshold]
    with code_switched_off(rule, message):
        yours = {k: my_fold(fold_masks[k]) for k in checked}
    for got in yours.values():
        assert isinstance(got, tuple | list) and len(got) == 4, (
            "return four numbers: (threshold, calibration recall, held-out precision, held-out recall)"
        )
    for k, (t, *_) in yours.items():  # a threshold chosen on the wrong pairs is told as such, first
        assert t == folds.iloc[k]["threshold"], (
            f"fold {k}: threshold {t:g}, the table's is {folds.iloc[k]['threshold']:g}: choose it with "
            "my_threshold on the curve of the pairs of two calibration files only (not on all pairs: the "
            "held-out groups must play no part in the choice)"
        )
    unscored = {}  # the calibration recall of a curve scored over every file, not only the calibration files
    for k, (_, calibration_recall, precision, recall) in yours.items():
        row, held_out = folds.iloc[k], fold_masks[k]
        unscored[k] = row["in_sample_recall"] * _true_pairs(groups[~held_out]) / _true_pairs(groups)
        assert np.isclose(calibration_recall, row["in_sample_recall"]), (
            f"fold {k}: calibration recall {calibration_recall:.3f}, the table's is "
            f"{row['in_sample_recall']:.3f}"
            + (
                ": your calibration curve counts the held-out groups' duplicate pairs as missed "
                "(it was not given scored_items=~held_out)"
                if np.isclose(calibration_recall, unscored[k])
                else ": read the recall off your calibration curve at your threshold "
                "(the curve scored with scored_items=~held_out)"
            )
        )
        assert np.isclose(precision, row["held_out_precision"]) and np.isclose(
            recall, row["held_out_recall"]
        ), (
            f"fold {k}: held-out precision {precision:.3f}, recall {recall:.3f}; the table's are "
            f"{row['held_out_precision']:.3f}, {row['held_out_recall']:.3f}"
        )
    n_merged = sum(k in merged for k in checked)
    first = checked[0]
    print(
        f"Correct: your folds {checked} match the `folds` table ({n_merged} of these {len(checked)} merged "
        f"held-out groups; held-out precision {', '.join(f'{p:.3f}' for _, _, p, _ in yours.values())})\n"
        f"calibration recall in fold {first}: {yours[first][1]:.3f}; scored over every file it would be "
        f"{unscored[first]:.3f}, the held-out groups' duplicate pairs counted as missed"
    )
    _mark(my_fold, True)
    return my_fold


# --------------------------------------------------------------------------- the leak list


def _package_leaks(split: Any, found_pairs: Any) -> np.ndarray:
    """The package's leak list as file indices: ``splits.leak_report`` with each file named by its index."""
    split = np.asarray(split)
    report = splits.leak_report(
        [str(k) for k in range(len(split))], split, np.asarray(found_pairs).reshape(-1, 2)
    )
    return np.unique(report["test_path"].astype(int).to_numpy())


def _indices(result: Any, name: str) -> np.ndarray:
    got = np.asarray(list(result) if isinstance(result, set | frozenset) else result)
    assert not isinstance(result, set | frozenset | dict) and got.ndim == 1, (
        f"{name}: return the test files' indices as a sorted array or list, not a {type(result).__name__}"
    )
    assert got.size == 0 or np.issubdtype(got.dtype, np.integer), (
        f"{name}: return file indices (ints), not {got.dtype} values such as {got[:2].tolist()}"
    )
    return got.astype(int)


def check_leaks(
    my_leaks: Callable, paths: Sequence[str], split: Sequence[str], methods: dict[str, Any]
) -> Callable:
    """Your leak list on small cases worked out by hand (either order, train with train, each test file
    once, sorted), then on each method's pairs against ``splits.leak_report`` (switched off while yours
    runs). ``paths`` and ``split`` give every file's path and split, ``methods`` each method's pairs."""
    _forget(my_leaks)
    if not_written(my_leaks, np.array(["train", "test"]), np.empty((0, 2), int)):
        print("Not done yet: the cells below use splits.leak_report either way")
        return _package(_package_leaks)
    paths, split = np.asarray(paths, dtype=object), np.asarray(split)
    theirs = {
        name: splits.leak_report(paths, split, found)["test_path"].tolist() for name, found in methods.items()
    }
    message = "my_leaks must find the leaks itself: splits.leak_report is switched off while it runs"
    with code_switched_off([splits.leak_report], message):
        toy = np.array(["train", "test", "test", "train", "test"])
        assert list(my_leaks(toy, np.empty((0, 2), int))) == [], "no pairs: no leak"
        assert list(my_leaks(toy, np.array([[0, 1]]))) == [1], "train 0 with test 1: test file 1 leaks"
        assert list(my_leaks(toy, np.array([[2, 0]]))) == [2], "pairs come in either order"
        assert list(my_leaks(toy, np.array([[1, 2], [0, 3]]))) == [], (
            "test with test, or train with train, is no leak"
        )
        assert list(my_leaks(toy, np.array([[0, 4], [3, 4], [1, 0]]))) == [1, 4], (
            "each leaking test file once, sorted"
        )
        given = {name: my_leaks(split.copy(), np.asarray(found)) for name, found in methods.items()}
    yours = {name: paths[_indices(got, name)].tolist() for name, got in given.items()}
    for name in methods:
        assert yours[name] == sorted(yours[name]) or set(yours[name]) != set(theirs[name]), (
            f"{name}: the right test files, but return them sorted"
        )
        assert yours[name] == theirs[name], (
            f"{name}: you list {len(yours[name])} test files, leak_report {len(theirs[name])} (sorted)"
        )
    print(f"Correct: your leak lists equal splits.leak_report's for all {len(methods)} methods")
    _show(
        "train 0 with test 1 → [1]; the pair as (2, 0) → [2] (either order)",
        "test with test, train with train → []",
        "(0, 4), (3, 4), (1, 0) → [1, 4] (each test file once, sorted)",
    )
    _mark(my_leaks, True)
    return my_leaks


# --------------------------------------------------------------------------- the re-split


def check_group_aware_split(
    my_group_aware_split: Callable, found_groups: np.ndarray, split: Sequence[str], paths: Sequence[str]
) -> Callable:
    """Your re-split on hand-made cases (the majority side, ties to train, a file alone stays put, the
    split given left as it was), then on ``found_groups`` and ``split`` (every file's, ``paths`` naming
    them) against ``splits.group_aware_split`` (switched off while yours runs)."""
    _forget(my_group_aware_split)
    if not_written(my_group_aware_split, np.array([0]), np.array(["train"])):
        print("Not done yet: the cells below use splits.group_aware_split in its place")
        return _package(splits.group_aware_split)
    toy_groups = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3])
    toy_split = np.array(["train", "train", "test", "test", "train", "test", "test", "test", "train"])
    split = np.asarray(split, dtype=object)
    theirs = splits.group_aware_split(found_groups, split)
    given_toy, given = toy_split.copy(), split.copy()
    message = "write the re-split yourself: splits.group_aware_split is switched off while it runs"
    with code_switched_off([splits.group_aware_split], message):
        got = [str(s) for s in np.asarray(my_group_aware_split(toy_groups, given_toy))]
        yours = np.asarray(my_group_aware_split(found_groups, given))
    assert np.array_equal(given_toy, toy_split) and np.array_equal(given, split), (
        "return a new array: your function changed the split it was given (copy it first)"
    )
    assert got[:3] == ["train"] * 3, f"group 0 is 2 train to 1 test: all train, got {got[:3]}"
    assert got[3:5] == ["train"] * 2, f"group 1 is a tie, 1 to 1: ties go to train, got {got[3:5]}"
    assert got[5] == "test", "a file alone in its group stays where it is"
    assert got[6:] == ["test"] * 3, f"group 3 is 1 train to 2 test: all test, got {got[6:]}"
    assert yours.shape == theirs.shape, f"return one split per file: {yours.shape}, not {theirs.shape}"
    differs = np.asarray(paths, dtype=object)[yours != theirs].tolist()
    assert not differs, (
        f"{len(differs)} files get another split than splits.group_aware_split gives, e.g. {differs[:3]}"
    )
    print(f"Correct: your re-split equals splits.group_aware_split on all {len(split)} files")
    _show(
        "2 train to 1 test → all train; 1 train to 2 test → all test",
        "a tie, 1 to 1 → train; a file alone → stays where it is",
        "the split given → left unchanged (a new array returned)",
    )
    _mark(my_group_aware_split, True)
    return my_group_aware_split


def check_resplit(
    new_split: Sequence[str],
    old_split: Sequence[str],
    found_groups: np.ndarray,
    left: pd.DataFrame,
    hash_visible: Iterable[str],
) -> None:
    """The lesson's claims about the re-split: every found group sits wholly on one side, only files of
    found groups that straddled the split moved, each to the side where most of its group was, and no
    planted leak of a hash-visible kind is among ``left`` (the planted copies still across the split)."""
    new_split, old_split, found_groups = (
        np.asarray(new_split),
        np.asarray(old_split),
        np.asarray(found_groups),
    )
    assert (pd.Series(new_split).groupby(found_groups).nunique() == 1).all(), "a found group still straddles"
    moved = new_split != old_split
    for g in np.unique(found_groups[moved]):
        members = found_groups == g
        assert len(set(old_split[members])) > 1, (
            f"found group {g} did not straddle the split, yet files moved"
        )
        side = new_split[members][0]
        assert (old_split[members] == side).sum() >= (old_split[members] != side).sum(), (
            f"found group {g} moved to {side}, where fewer of its files were"
        )
    seen = left[left["transformation"].isin(list(hash_visible))]
    assert seen.empty, f"planted copies of kinds hashes can see, still across: {seen['path'].tolist()}"
    print("leaks the hashes could not see, still across the split:")
    print(left[["path", "transformation"]].to_string(index=False) if len(left) else "  none")


# --------------------------------------------------------------------------- exercise 1: the average hash


def _bits(h: int) -> np.ndarray:
    """The 64 bits of a hash, row by row, first bit the highest."""
    return np.array([(h >> (63 - k)) & 1 for k in range(64)], bool)


def _prescribed_thumbnail(file: Any) -> np.ndarray:
    """The 64 gray levels the exercise prescribes: ``load_rgb``, grayscale, LANCZOS to 8×8, row by row."""
    return np.asarray(load_rgb(file).convert("L").resize((8, 8), Image.Resampling.LANCZOS), float).ravel()


def check_ahash(
    ahash: Callable | None,
    ahash_threshold: Any,
    ahash_better: Any,
    ahash_worse: Any,
    files: Sequence[Any],
    all_pairs: np.ndarray,
    groups: np.ndarray,
    score: Callable,
    dhash_scores: pd.DataFrame,
    dhash_threshold: float,
    grid: Iterable[float] = range(65),
    guess: Any = None,
) -> Callable | None:
    """Your aHash on hand-made images whose hash can be worked out on paper, then on every one of
    ``files``: its 1-bits must be exactly the pixels of the prescribed thumbnail (made with this Pillow)
    brighter than their mean. Then your threshold and kinds against the package's rule and ``score``
    applied to your checked hashes, and ``dhash_scores``; a wrong set of kinds is told by how many kinds
    it has too many or misses, not which. ``guess``, recorded before computing, says for ``hflip`` and
    ``watermark`` whether aHash finds "more", "fewer" or the "same" copies; it is not graded, only
    shown against the result. Returns ``ahash`` (there is no package aHash to stand in for it)."""
    if ahash is None:
        print("Not done yet")
        return ahash
    _forget(ahash)

    def hash_of(array):
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / "test.png"
            Image.fromarray(np.asarray(array, dtype=np.uint8)).save(file)
            return ahash(file)

    left_dark = np.zeros((64, 64), np.uint8)
    left_dark[:, 32:] = 255
    top_left_bright = np.zeros((64, 64), np.uint8)
    top_left_bright[:32, :32] = 255
    skewed = np.zeros((8, 8), np.uint8)  # already 8×8: 33 pixels at 0, 28 at 20, 3 at 255
    skewed.flat[33:61], skewed.flat[61:] = 20, 255  # median 0, mean about 21
    assert isinstance(hash_of(left_dark), int), "return a Python int"
    assert hash_of(np.full((64, 64), 128)) == 0, "a flat image: no pixel is *brighter* than the mean"
    assert hash_of(left_dark) == 0x0F0F0F0F0F0F0F0F, "each row: 4 dark pixels (0) then 4 bright (1)"
    assert hash_of(top_left_bright) == 0xF0F0F0F000000000, "rows first, the first bit the most significant"
    assert hash_of(left_dark // 2) == hash_of(left_dark), "halving the brightness must not change the hash"
    assert hash_of(skewed) == 0b111, (
        "compare with the mean (about 21), not the median (0): only the 3 brightest"
    )
    see_through = np.zeros((64, 64, 4), np.uint8)  # RGBA: a transparent black band left, opaque gray right
    see_through[:, 32:] = [100, 100, 100, 255]
    assert hash_of(see_through) == 0xF0F0F0F0F0F0F0F0, (
        "a transparent band shows white, brighter than the gray: load with load_rgb, which lays it over white"
    )

    files = list(files)
    hashes, wrong = [], []
    for f in files:
        h = ahash(f)
        assert isinstance(h, int) and 0 <= h < 2**64, f"{_short(f)}: {h!r} is no 64-bit hash"
        bits, gray = _bits(h), _prescribed_thumbnail(f)
        if not ((gray[bits] > gray.mean()).all() and (gray[~bits] <= gray.mean()).all()):
            wrong.append(_short(f))
        hashes.append(h)
    assert not wrong, (
        f"{len(wrong)} of {len(files)} bundled files hash differently, e.g. {wrong[:2]}: load with load_rgb, "
        'convert to grayscale ("L") BEFORE resizing with LANCZOS to 8×8, compare with the mean of the '
        "64 thumbnail pixels"
    )
    _mark(ahash, True)
    hand_cases = (
        "a flat image → 0; left half dark → 0x0F0F0F0F0F0F0F0F; top-left quarter bright → 0xF0F0F0F000000000",
        "the same image at half the brightness → the same hash",
        "33 pixels at 0, 28 at 20, 3 at 255 → 0b111 (the mean, not the median)",
        "a transparent band left of gray → 0xF0F0F0F0F0F0F0F0 (laid over white)",
    )
    assert guess is None or (
        isinstance(guess, dict)
        and set(guess) == {"hflip", "watermark"}
        and set(guess.values()) <= {"more", "fewer", "same", None}
    ), 'ahash_guess: {"hflip": ..., "watermark": ...}, each "more", "fewer" or "same" (copies than dHash)'
    guessed = guess is not None and None not in guess.values()
    if not guessed or ahash_threshold is None or ahash_better is None or ahash_worse is None:
        print(
            f"Your ahash is right (on all {len(files)} files). Not done yet: "
            + ("ahash_guess (before you compute), then " if not guessed else "")
            + "ahash_threshold, ahash_better and ahash_worse"
        )
        _show(*hand_cases)
        return ahash
    all_pairs = np.asarray(all_pairs)
    a_distance = duplicates.hamming_matrix(hashes)[all_pairs[:, 0], all_pairs[:, 1]]
    a_curve = evaluation.threshold_curve(all_pairs, a_distance, groups, list(grid), higher_is_similar=False)
    a_best = evaluation._pick_threshold(a_curve, False, evaluation.MIN_PRECISION, 0)
    assert isinstance(ahash_threshold, int | float | np.number) and ahash_threshold in a_curve.index, (
        f"ahash_threshold: a number of bits from 0 to 64, not {ahash_threshold!r}"
    )
    row = a_curve.loc[ahash_threshold]
    assert row["merges"] == 0 and np.isclose(row["f1"], a_curve.loc[a_best, "f1"]), (
        f"at {ahash_threshold:g} bits aHash has {row['merges']:g} merged groups and F1 {row['f1']:.3f}: "
        "apply the rule "
        "(choose_threshold) to aHash's own distances"
        + (", not dHash's" if ahash_threshold == dhash_threshold else "")
    )
    found = score(all_pairs[a_distance <= a_best])["found"].drop("all") - dhash_scores["found"].drop("all")
    for name, given, right in [
        ("ahash_better", ahash_better, set(found.index[found > 0])),
        ("ahash_worse", ahash_worse, set(found.index[found < 0])),
    ]:
        given = {str(k) for k in given}
        assert given <= set(found.index), (
            f"{name}: {sorted(given - set(found.index))}: name kinds as in `kinds`"
        )
        extra, missing = len(given - right), len(right - given)  # how many, never which: that is the exercise
        assert given == right, (
            f"{name} has {extra} kind{'s' * (extra != 1)} too many and misses {missing}; compare "
            "each kind's `found` at aHash's threshold with dhash_scores' (equal goes in neither)"
        )
    result = {k: "more" if found[k] > 0 else "fewer" if found[k] < 0 else "same" for k in guess}
    print(
        f"Correct: at {a_best:g} bits (dHash {dhash_threshold:g}) aHash finds more copies of "
        f"{', '.join(sorted(ahash_better))}, fewer of {', '.join(sorted(ahash_worse))}: "
        f"{found.sum():+d} copies in all. Your guess: "
        + ", ".join(
            f"{k} {guess[k]} ({'right' if guess[k] == r else f'it is {r}'})" for k, r in result.items()
        )
    )
    _show(*hand_cases)
    return ahash
