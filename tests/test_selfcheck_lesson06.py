"""Lesson 06's self-checks (``embedkit.selfcheck.lesson06``): each passes the right answer, stands in
for a stub left at ``None``, and fails the mistakes a learner makes. Exercises 1 and 5 run on the
lesson's messy folder with its planted cross-fade, embedded by the lessons' network; the others on
small hand-made data and the folder's files."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

import embedkit.quality as quality
from embedkit.embeddings import embed_images
from embedkit.evaluation import COSINE_GRID
from embedkit.grouping import guarded_groups
from embedkit.images import load_rgb, scan_images
from embedkit.pairs import connected_groups
from embedkit.selfcheck import is_stand_in, lesson06
from embedkit.similarity import near_duplicate_pairs, pairwise_cosine
from embedkit.splits import folder_leaks
from embedkit.variants import make_messy_folder

CAT, CUP = "train/holiday 2023/chelsea-cat.jpg", "train/holiday 2023/coffee-cup.jpg"


@pytest.fixture(scope="module")
def folder(tmp_path_factory, backbone):
    """The lesson's messy folder with its four cross-fade frames, embedded: files, vectors, S, t, the
    connected groups at t, and the rows of the cat and the cup."""
    root = tmp_path_factory.mktemp("lesson06") / "messy folder"
    make_messy_folder(root)
    a = Image.open(root / CAT).convert("RGB")
    b = Image.open(root / CUP).convert("RGB").resize(a.size)
    (root / "train/slideshow").mkdir(parents=True)
    for w in (0.25, 0.40, 0.55, 0.75):
        Image.blend(a, b, w).save(root / f"train/slideshow/fade-{round(w * 100):02d}.jpg", quality=92)
    good, _ = scan_images(root)
    with warnings.catch_warnings():  # the 1200 x 3 strip is refused by name
        warnings.simplefilter("ignore", UserWarning)
        embedded = embed_images([str(p) for p in good], backbone, progress=False)
    files = [Path(p).relative_to(root).as_posix() for p in embedded.paths]
    vectors = embedded.vectors
    S = pairwise_cosine(vectors)
    t = backbone.near_duplicate_threshold
    pairs, _ = near_duplicate_pairs(vectors, threshold=t)
    labels = connected_groups(len(files), pairs)
    connected = [np.flatnonzero(labels == c) for c in np.unique(labels) if (labels == c).sum() > 1]
    ends = (files.index(CAT), files.index(CUP))
    return SimpleNamespace(root=root, files=files, vectors=vectors, S=S, t=t, connected=connected, ends=ends)


def _not_done_then_stand_in(capsys, result):
    assert "Not done yet" in capsys.readouterr().out
    assert is_stand_in(result)


# --- exercise 1 ---------------------------------------------------------------------------------


def _linkage_parts(method, threshold_as_distance=True, as_positions=False):
    def average_linkage_parts(members, S, threshold):
        distance = np.clip(1.0 - S[np.ix_(members, members)], 0.0, None)
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), method=method)
        cut = fcluster(tree, t=1.0 - threshold if threshold_as_distance else threshold, criterion="distance")
        rows = np.arange(len(members)) if as_positions else members
        return [rows[cut == c] for c in np.unique(cut)]

    return average_linkage_parts


def _the_package_guard(members, S, threshold):  # the vectors are S's own rows: enough for the package
    edges = np.array([(a, b) for k, a in enumerate(members) for b in members[k + 1 :]], dtype=np.int64)
    _, cut = guarded_groups(len(S), edges, S, threshold)
    return list(cut[0]["parts"]) if cut else [members]


def test_average_linkage_right_answer_passes_and_stub_gets_a_stand_in(folder, capsys):
    args = (folder.connected, folder.S, folder.vectors, folder.t)
    right = _linkage_parts("average")
    assert lesson06.check_average_linkage(right, *args) is right
    assert "Correct!" in capsys.readouterr().out
    stand = lesson06.check_average_linkage(None, *args)
    _not_done_then_stand_in(capsys, stand)
    members = max(folder.connected, key=len)  # the chain: the stand-in cuts it as the package does
    assert len(stand(members, folder.S, folder.t)) > 1
    assert lesson06.check_average_linkage(stand, *args) is not stand  # run twice: still a stand-in
    assert "Not done yet" in capsys.readouterr().out


def _first_pair_merge(members, S, threshold):  # merges the first pair found at t, not the best pair
    clusters = [[m] for m in members]
    while True:
        found = [(i, j) for i in range(len(clusters)) for j in range(i + 1, len(clusters))
                 if S[np.ix_(clusters[i], clusters[j])].mean() >= threshold]  # fmt: skip
        if not found:
            return [np.array(c) for c in clusters]
        i, j = found[0]
        clusters[i] += clusters.pop(j)


def _leader_clustering(members, S, threshold):  # one pass: each file joins the first part it averages t with
    parts = []
    for m in members:
        part = next((p for p in parts if S[m, p].mean() >= threshold), None)
        parts.append([m]) if part is None else part.append(m)
    return [np.array(p) for p in parts]


WRONG_GUARDS = [
    (_linkage_parts("single"), "threshold 0.42"),
    (_linkage_parts("complete"), "threshold 0.42"),
    (_linkage_parts("weighted"), "threshold 0.5: your parts {(20, 21, 22, 23)}"),
    (_first_pair_merge, "threshold 0.5: your parts {(20, 21, 22, 23)}"),
    (_leader_clustering, "threshold 0.5: your parts {(20, 21, 22, 23)}"),
    (_linkage_parts("average", threshold_as_distance=False), "threshold 0.42"),
    (_linkage_parts("average", as_positions=True), "files' own numbers"),
    (_the_package_guard, "not call the package's guard"),
]
WRONG_IDS = ["single", "complete", "weighted", "first pair", "leader", "similarity as a distance",
             "positions", "the package's guard"]  # fmt: skip


@pytest.mark.parametrize("wrong, message", WRONG_GUARDS, ids=WRONG_IDS)
def test_average_linkage_wrong_answers_fail(folder, wrong, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        lesson06.check_average_linkage(wrong, folder.connected, folder.S, folder.vectors, folder.t)


@pytest.mark.parametrize("wrong, message", WRONG_GUARDS[:-1], ids=WRONG_IDS[:-1])
def test_average_linkage_wrong_answers_fail_on_a_folder_with_no_group_to_cut(wrong, message):
    S = np.eye(3)  # three files, no pair: only the hand-made cases are checked
    with pytest.raises(AssertionError, match=re.escape(message)) as failure:
        lesson06.check_average_linkage(wrong, [], S, S, 0.5)
    if "threshold" in message:  # the failure shows the hand-made matrix and why the expected parts
        assert "expected because" in str(failure.value) and "0.95" in str(failure.value)


def test_average_linkage_says_how_many_groups_it_compared(folder, capsys):
    right = _linkage_parts("average")
    S = np.eye(3)
    assert lesson06.check_average_linkage(right, [], S, S, 0.5) is right
    assert "0 groups of this folder needed the guard" in capsys.readouterr().out
    needed = sum(lesson06._weakest(m, folder.S) < folder.t for m in folder.connected)
    assert needed >= 1
    lesson06.check_average_linkage(right, folder.connected, folder.S, folder.vectors, folder.t)
    groups = (
        "1 group of this folder that needs" if needed == 1 else f"{needed} groups of this folder that need"
    )
    assert f"the {groups} the guard" in capsys.readouterr().out


# --- exercise 3 ---------------------------------------------------------------------------------

LEAK_FILES = ["train/a.jpg", "test/a copy.jpg", "train/2023/b.jpg", "train/b small.jpg", "b.jpg",
              "val/c.jpg", "test/old/c.png", "train/d.jpg", "d.jpg"]  # fmt: skip
LEAK_GROUPS = [np.array([0, 1]), np.array([2, 3, 4]), np.array([5, 6]), np.array([7, 8])]


def _find_leaks(groups, files, split_of=lambda f: f.split("/")[0] if "/" in f else None, keep=None):
    leaks = []
    for g in groups:
        by_split = {}
        for i in g:
            if split_of(files[i]) is not None:
                by_split.setdefault(split_of(files[i]), []).append(files[i])
        if len(by_split) >= 2 and (keep is None or keep(by_split)):
            leaks.append(by_split)
    return leaks


def test_find_leaks_right_answer_passes_and_stub_gets_a_stand_in(capsys):
    assert lesson06.check_find_leaks(_find_leaks, LEAK_GROUPS, LEAK_FILES) is _find_leaks
    assert "Correct! the hand-made case, and this folder's 2 leaks" in capsys.readouterr().out
    stand = lesson06.check_find_leaks(None, LEAK_GROUPS, LEAK_FILES)
    _not_done_then_stand_in(capsys, stand)
    assert stand(LEAK_GROUPS, LEAK_FILES) == _find_leaks(LEAK_GROUPS, LEAK_FILES)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g, f: _find_leaks(g, f, split_of=lambda p: str(Path(p).parent)), "splits"),
        (lambda g, f: _find_leaks(g, f, split_of=lambda p: p.split("/")[0] if "/" in p else ""), "splits"),
        (lambda g, f: _find_leaks(g, f, keep=lambda leak: "train" in leak), "leaks"),
        (
            lambda g, f: [leak["splits"] for leak in folder_leaks([[f[i] for i in x] for x in g])],
            "folder_leaks",
        ),
        (
            lambda g, f: [{s: set(p) for s, p in leak.items()} for leak in _find_leaks(g, f)],
            "list of the group",
        ),
    ],
    ids=["parent folder", "top-level file in split ''", "only leaks with train", "the package's", "sets"],
)
def test_find_leaks_wrong_answers_fail(wrong, message):
    with pytest.raises(AssertionError, match=message):
        lesson06.check_find_leaks(wrong, LEAK_GROUPS, LEAK_FILES)


# --- the cells against curate() ---------------------------------------------------------------


def _cells_and_findings():
    """Five files: 0 and 1 pixel-identical, 0, 1 and 2 one group leaking from train into test; 3 unreadable
    elsewhere; 4 alone."""
    files = ["train/a.jpg", "train/a.png", "test/a small.jpg", "train/b.jpg", "val/c.jpg"]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5, 8)).astype(np.float32)
    vectors[1] = vectors[0]
    vectors[2] = vectors[0] + 0.05 * rng.standard_normal(8).astype(np.float32)
    S = pairwise_cosine(vectors)
    groups = [np.array([0, 1, 2])]
    leaks = [{"train": ["train/a.jpg", "train/a.png"], "test": ["test/a small.jpg"]}]
    proposed = ["train", "train", "train", "train", "val"]
    border = pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=object), "cosine": []})
    findings = SimpleNamespace(
        unreadable=[{"path": "broken.jpg"}],
        exact_groups=[["train/a.jpg", "train/a.png"]],
        paths=files,
        vectors=vectors,
        near_groups=[["train/a.jpg", "train/a.png", "test/a small.jpg"]],
        review=[],
        leaks=[{"splits": leaks[0]}],
        has_splits=True,
        proposed_split=proposed,
        borderline=[],
    )
    cells = dict(
        files=files,
        unreadable=[("broken.jpg", "cannot decode")],
        exact_names=[["train/a.jpg", "train/a.png"]],
        groups=groups,
        review=[],
        leaks=leaks,
        proposed=proposed,
        S=S,
        threshold=0.9,
        border=border,
        known_truth=True,
        guard=lambda members, S, threshold: [members],
    )
    return findings, cells


def test_curate_agrees_passes_when_the_cells_agree(capsys):
    findings, cells = _cells_and_findings()
    lesson06.check_curate_agrees(findings, **cells)
    assert "curate() found the same" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(groups=[np.array([0, 1])]), "groups"),
        (lambda c: c.update(leaks=[]), "leaks"),
        (lambda c: c.update(proposed=["train", "train", "test", "train", "val"]), "split"),
        (lambda c: c.update(exact_names=[]), None),
    ],
    ids=["a group", "a leak", "the split", "exact groups"],
)
def test_curate_agrees_fails_where_they_differ(change, message):
    findings, cells = _cells_and_findings()
    change(cells)
    with pytest.raises(AssertionError, match=message):
        lesson06.check_curate_agrees(findings, **cells)


# --- exercise 4 ---------------------------------------------------------------------------------


def _blur_score(image, gray="weights", resample=Image.Resampling.BILINEAR, pad="symmetric", resize=True):
    w, h = image.size
    s = 224 / min(w, h)
    if resize and s < 1:
        image = image.resize((round(w * s), round(h * s)), resample, reducing_gap=2.0)
    if gray == "weights":
        g = np.asarray(image, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    else:
        g = np.asarray(image.convert("L"), dtype=np.float64)
    g = np.pad(g, 1, mode=pad)
    laplacian = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(laplacian.var())


@pytest.fixture(scope="module")
def blur_data(folder):
    paths = folder.files[::4]
    measures = [quality.measure_image(load_rgb(folder.root / p))["blurry"] for p in paths]
    return measures, paths, folder.root


def test_blur_score_right_answer_passes_and_stub_gets_a_stand_in(blur_data, capsys):
    assert lesson06.check_blur_score(_blur_score, *blur_data) is _blur_score
    assert "Correct! your blur score" in capsys.readouterr().out
    stand = lesson06.check_blur_score(None, *blur_data)
    _not_done_then_stand_in(capsys, stand)
    picture = load_rgb(blur_data[2] / blur_data[1][0])
    assert stand(picture) == quality.measure_image(picture)["blurry"]


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda im: _blur_score(im, gray="L"), "your score"),
        (lambda im: _blur_score(im, resample=Image.Resampling.BICUBIC), "your score"),
        (lambda im: _blur_score(im, pad="constant"), "your score"),
        (lambda im: _blur_score(im, resize=False), "your score"),
        (lambda im: quality.measure_image(im)["blurry"], "not call embedkit.quality"),
    ],
    ids=["convert L", "bicubic", "zero padding", "no resize", "the package's measure"],
)
def test_blur_score_wrong_answers_fail(blur_data, wrong, message):
    with pytest.raises(AssertionError, match=message):
        lesson06.check_blur_score(wrong, *blur_data)


# --- exercise 5 ---------------------------------------------------------------------------------


def _dhash_guard_by(
    compare_with_dropped=False, strictly=False, keep_later=False, as_indices=False, fixed_bits=None
):
    def dhash_guard(dhashes, bits=4):
        bits = bits if fixed_bits is None else fixed_bits
        keep = np.ones(len(dhashes), dtype=bool) if keep_later else np.zeros(len(dhashes), dtype=bool)
        for p, h in enumerate(dhashes):
            if keep_later:
                keep[p] = all((h ^ dhashes[q]).bit_count() > bits for q in range(p + 1, len(dhashes)))
                continue
            earlier = range(p) if compare_with_dropped else np.flatnonzero(keep[:p])
            keep[p] = all((h ^ dhashes[q]).bit_count() > bits - (1 if strictly else 0) for q in earlier)
        return list(np.flatnonzero(keep)) if as_indices else keep

    return dhash_guard


@pytest.fixture(scope="module")
def folder_dhashes(folder):
    from embedkit.duplicates import dhash

    return [dhash(folder.root / f) for f in folder.files]


def test_dhash_guard_right_answer_passes_and_stub_gets_a_placeholder(folder, folder_dhashes, capsys):
    right = _dhash_guard_by()
    got = lesson06.check_dhash_guard(right, folder_dhashes, folder.files)
    assert got is right and "Correct! your dhash_guard" in capsys.readouterr().out
    stand = lesson06.check_dhash_guard(None, folder_dhashes, folder.files)
    _not_done_then_stand_in(capsys, stand)
    with pytest.raises(NotImplementedError):
        stand(folder_dhashes)


def test_dhash_guard_hand_made_case_is_the_package_guard():
    kept = {bits: lesson06._package_dhash_keep(lesson06.DHASH_CASE, bits).tolist() for bits in (2, 4, 6)}
    assert kept[4] == [True, False, True, True, False, False]
    assert kept[2] == [True, True, True, True, False, False]  # photo 1, 4 bits from photo 0, kept
    assert kept[6] == [True, False, True, False, False, False]  # photo 3, 5 bits from photo 0, dropped


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_dhash_guard_by(compare_with_dropped=True), "you drop photo 2, the package keeps it"),
        (_dhash_guard_by(strictly=True), "you keep photo 1, the package drops it"),
        (_dhash_guard_by(keep_later=True), "you drop photo 0"),
        (_dhash_guard_by(as_indices=True), "return a bool array"),
        (lambda d, bits=4: lesson06._package_dhash_keep(d, bits), "not call the package's guard_duplicate"),
        (_dhash_guard_by(fixed_bits=4), "bits=2: you drop photo 1, the package keeps it"),
    ],
    ids=[
        "a dropped photo drops others",
        "fewer than bits",
        "the last copy kept",
        "indices",
        "the package",
        "bits=4 fixed",
    ],
)
def test_dhash_guard_wrong_answers_fail(folder, folder_dhashes, wrong, message):
    with pytest.raises(AssertionError, match=message):
        lesson06.check_dhash_guard(wrong, folder_dhashes, folder.files)


# --- exercise 2 ---------------------------------------------------------------------------------


def _strength_by(S, rule):
    def chain_strength(a, b):
        return rule(S, a, b)

    return chain_strength


def _highest_joining(S, a, b, strictly=False):
    for x in np.unique(S[np.triu_indices(len(S), k=1)])[::-1]:  # from the top down
        joined = connected_groups(len(S), np.argwhere(np.triu(S > x if strictly else S >= x, k=1)))
        if joined[a] == joined[b]:
            return float(x)
    return float(S.min())


def test_chain_strength_right_answer_passes_and_stub_gets_a_placeholder(folder, capsys):
    right = _strength_by(folder.S, _highest_joining)
    got = lesson06.check_chain_strength(right, folder.S, folder.files, ends=folder.ends)
    assert got is right and "Correct! your chain_strength" in capsys.readouterr().out
    stand = lesson06.check_chain_strength(None, folder.S, folder.files, ends=folder.ends)
    _not_done_then_stand_in(capsys, stand)
    with pytest.raises(NotImplementedError):
        stand(*folder.ends)


@pytest.mark.parametrize(
    "rule, message",
    [
        (lambda S, a, b: float(S[a, b]), "their own score"),
        (lambda S, a, b: 0.702, "the highest threshold"),
        (
            lambda S, a, b: min(COSINE_GRID, key=lambda x: abs(x - _highest_joining(S, a, b))),
            "COSINE_GRID|the highest threshold",
        ),
        (lambda S, a, b: _highest_joining(S, a, b, strictly=True), "the highest threshold"),
    ],
    ids=["own score", "a constant", "a grid step", "strictly above"],
)
def test_chain_strength_wrong_answers_fail(folder, rule, message):
    with pytest.raises(AssertionError, match=message):
        lesson06.check_chain_strength(_strength_by(folder.S, rule), folder.S, folder.files, ends=folder.ends)


def test_chain_strength_on_an_own_folder_tries_the_largest_groups_least_similar_pair(folder, capsys):
    S = folder.S
    right = _strength_by(S, _highest_joining)
    lesson06.check_chain_strength(right, S, folder.files, threshold=folder.t)
    assert "all 6 pairs" in capsys.readouterr().out

    def two_hops(S, a, b):  # the best path of at most two steps: a short cut that misses longer chains
        return float(max(S[a, b], np.max(np.minimum(S[a], S[b]))))

    with pytest.raises(AssertionError, match="the highest threshold"):
        lesson06.check_chain_strength(_strength_by(S, two_hops), S, folder.files, threshold=folder.t)
