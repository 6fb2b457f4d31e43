"""Image-quality, outlier and label checks: each detector on hand-made pictures against
independent oracles (SciPy, scikit-learn, hand-computed values), the bundled photos, and the
curate tool's findings.json and report through the command line."""

import csv
import json
import os
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage
from scipy.stats import median_abs_deviation
from sklearn.neighbors import NearestNeighbors

from conftest import REPO
from embedkit.images import load_rgb
from embedkit.quality import (
    KINDS,
    THRESHOLDS,
    brightness,
    check_kinds,
    class_folder_labels,
    contrast,
    detail,
    folder_labels,
    image_issues,
    label_scores,
    laplacian,
    looks_like_a_date,
    measure,
    measure_image,
    outlier_scores,
    saturation,
)

DATA = REPO / "data"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "notebooks")}


def _photo(name="train/chelsea-cat_original.png") -> Image.Image:
    return load_rgb(DATA / name)


def _kinds(image: Image.Image) -> set[str]:
    return {kind for kind, _, _ in image_issues(measure_image(image))}


def _checkerboard(side=224, square=8) -> np.ndarray:
    y, x = np.mgrid[:side, :side]
    board = (((x // square) + (y // square)) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


# --------------------------------------------------------------------------- measures against oracles


def test_brightness_uses_the_bt601_weights():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 100, 100]]], dtype=np.uint8)
    np.testing.assert_allclose(brightness(rgb)[0], [76.245, 149.685, 29.07, 100.0], rtol=1e-5)


def test_laplacian_matches_scipy():
    gray = np.random.default_rng(0).uniform(0, 255, (37, 53))
    np.testing.assert_allclose(laplacian(gray), ndimage.laplace(gray, mode="reflect"), atol=1e-9)
    assert detail(gray) == pytest.approx(ndimage.laplace(gray, mode="reflect").var())


def test_contrast_and_saturation_by_hand():
    assert contrast(np.full((10, 10), 77.0)) == 0.0
    assert contrast(np.array([[0.0, 255.0]])) == pytest.approx(127.5)
    # red: (255 - 0) / 255 = 1; a gray pixel: 0
    assert saturation(np.array([[[255, 0, 0], [90, 90, 90]]], dtype=np.uint8)) == pytest.approx(0.5)
    # near black: divided by the floor (16), not by 4
    assert saturation(np.array([[[4, 0, 0]]], dtype=np.uint8)) == pytest.approx(4 / 16)


def test_measure_sizes_use_the_full_picture():
    m = measure(np.zeros((10, 20, 3), np.uint8), size=(400, 100))
    assert m["odd_aspect"] == 4.0
    assert m["tiny"] == pytest.approx(200.0)  # sqrt(400 * 100)
    with pytest.raises(ValueError, match="RGB"):
        measure(np.zeros((10, 20), np.uint8))


# --------------------------------------------------------------------------- detectors on hand-made pictures


def test_black_is_dark_white_is_bright_and_neither_is_reported_as_more():
    assert _kinds(Image.new("RGB", (224, 224), (0, 0, 0))) == {"dark", "grayscale"}
    assert _kinds(Image.new("RGB", (224, 224), (255, 255, 255))) == {"bright", "grayscale"}


def test_flat_mid_gray_is_low_information_only():
    # contrast 0 explains the lack of detail and of colour: only low_information is reported
    assert _kinds(Image.new("RGB", (224, 224), (128, 128, 128))) == {"low_information"}
    assert _kinds(Image.new("RGB", (224, 224), (200, 40, 40))) == {"low_information"}


def test_checkerboard_is_sharp_and_blurred_checkerboard_is_blurry():
    board = _checkerboard(square=32)
    assert _kinds(Image.fromarray(board)) == {"grayscale"}
    blurred = ndimage.gaussian_filter(board.astype(float), sigma=(6, 6, 0)).round().astype(np.uint8)
    assert _kinds(Image.fromarray(blurred)) == {"blurry", "grayscale"}
    # blurred so much that hardly any contrast is left: flat, which explains the blur
    flat = ndimage.gaussian_filter(_checkerboard().astype(float), sigma=(6, 6, 0)).round().astype(np.uint8)
    assert _kinds(Image.fromarray(flat)) == {"low_information"}


def test_a_photo_is_clean_and_each_planted_problem_is_found():
    photo = _photo()
    assert _kinds(photo) == set()
    a = np.asarray(photo, dtype=np.float32)
    planted = {
        "dark": Image.fromarray((a * 0.15).astype(np.uint8)),
        "bright": Image.fromarray((a * 1.5 + 140).clip(0, 255).astype(np.uint8)),
        "blurry": photo.filter(ImageFilter.GaussianBlur(4)),
        "low_information": ImageEnhance.Contrast(photo).enhance(0.04),
        "odd_aspect": photo.crop((0, 0, 224, 40)),
        "tiny": photo.resize((40, 40)),
        "grayscale": photo.convert("L").convert("RGB"),
    }
    for kind, image in planted.items():
        assert kind in _kinds(image), kind


def test_thumbnails_give_the_same_answer_as_full_size():
    """A 3x enlarged copy is measured at 224 px: same verdicts as the photo itself."""
    photo = _photo()
    a = np.asarray(photo, dtype=np.float32)
    versions = [
        photo,
        Image.fromarray((a * 0.15).astype(np.uint8)),
        photo.filter(ImageFilter.GaussianBlur(4)),
        ImageEnhance.Contrast(photo).enhance(0.04),
        photo.convert("L").convert("RGB"),
    ]
    for image in versions:
        big = image.resize((image.width * 3, image.height * 3), Image.Resampling.BICUBIC)
        assert _kinds(big) == _kinds(image)


def test_saturation_is_the_hsv_saturation_of_colorsys():
    import colorsys

    rng = np.random.default_rng(3)
    rgb = rng.integers(16, 256, (12, 9, 3), dtype=np.uint8)  # every pixel above the floor
    expected = np.mean([colorsys.rgb_to_hsv(*(p / 255.0))[1] for p in rgb.reshape(-1, 3)])
    assert saturation(rgb) == pytest.approx(expected, rel=1e-6)


def test_darkening_keeps_saturation():
    a = np.asarray(_photo(), dtype=np.float32)
    full, dark = saturation(a.astype(np.uint8)), saturation((a * 0.3).astype(np.uint8))
    assert dark == pytest.approx(full, rel=0.15)


def test_thresholds_can_be_overridden_and_kinds_selected():
    m = measure_image(Image.new("RGB", (224, 224), (0, 0, 0)))
    assert [k for k, _, _ in image_issues(m, kinds=("tiny",))] == []
    assert [k for k, _, _ in image_issues(m, thresholds={"dark": -1.0}, kinds=("dark",))] == []
    kind, score, reason = image_issues(m, kinds=("dark",))[0]
    assert (kind, score) == ("dark", 0.0) and "dark from" in reason


# --------------------------------------------------------------------------- checks on embeddings


def _clusters(rng, centres=3, per=12, dim=16, spread=0.05):
    means = rng.normal(size=(centres, dim))
    points = np.concatenate([m + spread * rng.normal(size=(per, dim)) for m in means])
    return means, points


def _centre_z(vectors, classes, voters):
    """The outlier rule written out file by file (the oracle): cosine distance to the mean unit
    vector of the other voters of its class; deviations from each class's median, over the
    MAD of the voters' deviations pooled (SciPy's, normal-scaled)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    d = np.zeros(len(vectors))
    for i in range(len(vectors)):
        others = [j for j in voters if classes[j] == classes[i] and j != i]
        centre = unit[others].mean(axis=0)
        d[i] = 1 - unit[i] @ centre / np.linalg.norm(centre)
    median = {c: np.median([d[j] for j in voters if classes[j] == c]) for c in set(classes)}
    dev = d - np.array([median[c] for c in classes])
    return dev / median_abs_deviation(dev[voters], scale="normal"), d


def test_outlier_scores_match_the_rule_written_out():
    rng = np.random.default_rng(1)
    _, points = _clusters(rng, centres=2, per=12)
    points = np.concatenate([points, rng.normal(size=(1, 16))])  # one point far from both clusters
    classes = ["a"] * 12 + ["b"] * 12 + ["a"]
    voters = np.array([i for i in range(25) if i != 3])  # row 3 (a hidden picture) shapes nothing
    z, d = outlier_scores(points, classes, voters)
    expected_z, expected_d = _centre_z(points, classes, voters)
    np.testing.assert_allclose(d, expected_d, atol=1e-5)
    np.testing.assert_allclose(z, expected_z, rtol=1e-3, atol=1e-3)
    assert int(np.argmax(z)) == 24 and z[24] > 10 * np.delete(z, 24).max()
    # a row that is not a voter is scored, but moving it changes nobody else's score
    moved = points.copy()
    moved[3] = rng.normal(size=16)
    np.testing.assert_allclose(np.delete(outlier_scores(moved, classes, voters)[0], 3), np.delete(z, 3))


def test_outlier_scores_by_hand():
    # unit vectors at 0, +-10, +-20 and 90 degrees, one class: the others of the 90-degree
    # vector are symmetric about (1, 0), so its centre is (1, 0) and its distance 1 - cos 90 = 1;
    # the 0-degree vector's centre is the mean of +-10, +-20 and 90 degrees
    deg = np.radians([0.0, 10.0, -10.0, 20.0, -20.0, 90.0])
    points = np.stack([np.cos(deg), np.sin(deg)], axis=1)
    _, d = outlier_scores(points, min_files=6)
    assert d[5] == pytest.approx(1.0, abs=1e-6)
    sx, sy = 2 * np.cos(deg[1]) + 2 * np.cos(deg[3]), 1.0
    assert d[0] == pytest.approx(1 - sx / np.hypot(sx, sy), abs=1e-6)
    assert np.isnan(outlier_scores(points, min_files=7)[0]).all()  # too few files to score
    classes = ["x", "x", "x", "x", "x", None]  # a file in no class is not scored
    assert np.isnan(outlier_scores(points, classes, min_files=5)[0][5])


def test_a_file_filed_in_the_wrong_class_is_far_from_its_class_centre_only():
    rng = np.random.default_rng(4)
    means, points = _clusters(rng, centres=3, per=10)
    classes = ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    classes[5] = "b"  # an a-picture in b's folder
    z, _ = outlier_scores(points, classes)
    assert int(np.argmax(z)) == 5 and z[5] >= THRESHOLDS["outlier"] > np.delete(z, 5).max()
    assert outlier_scores(points)[0].max() < THRESHOLDS["outlier"]  # one folder of three kinds: nothing far


def test_copies_do_not_make_a_photo_without_copies_an_outlier():
    """The rule's distance is to a centre, not to the nearest file: a folder where some photos
    have five copies and others none flags none of them (a nearest-neighbour distance would
    be 0 for every copy and far for every photo without one)."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(1, 32))
    pictures = base + 0.6 * rng.normal(size=(8, 32))  # eight photos of one kind
    copies = np.repeat(pictures[:4], 5, axis=0) + 1e-3 * rng.normal(size=(20, 32))
    vectors = np.concatenate([copies, pictures[4:]])
    z, _ = outlier_scores(vectors)
    assert z.max() < THRESHOLDS["outlier"]
    nn = NearestNeighbors(n_neighbors=2, metric="cosine").fit(vectors)
    first = nn.kneighbors(vectors)[0][:, 1]  # the nearest-file distance, for contrast
    assert first[20:].min() > 100 * first[:20].max()


def test_label_scores_find_a_file_in_the_wrong_folder():
    rng = np.random.default_rng(2)
    _, points = _clusters(rng, centres=2, per=10)
    labels = ["a"] * 10 + ["b"] * 10
    labels[13] = "a"  # a b-point filed under a
    share, suggested = label_scores(points, labels, k=3)
    assert share[13] == 1.0 and suggested[13] == "b"
    assert share[np.arange(20) != 13].max() < THRESHOLDS["label"]
    # oracle: the three nearest other points, by scikit-learn
    _, idx = NearestNeighbors(n_neighbors=4, metric="cosine").fit(points).kneighbors(points[13:14])
    assert [labels[j] for j in idx[0][1:]] == ["b", "b", "b"]


def test_voters_restrict_the_neighbours():
    points = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0], [0.7, 0.7]])
    labels = ["a", "b", "c", "c", "a"]
    share, suggested = label_scores(points, labels, k=1, voters=np.array([2, 3, 4]))
    assert suggested[0] == "a" or share[0] == 0.0  # row 1 (a 'b') may not vote
    assert suggested[1] == "a" and share[1] == 1.0  # its one voter is row 4, an 'a'


def test_folder_labels():
    assert folder_labels(["x.jpg", "cat/x.jpg", "train/cat/x.jpg", "Test/x.jpg", "a/b/c.jpg"]) == [
        None,
        "cat",
        "cat",
        None,
        "a",
    ]


def test_folder_names_that_are_dates_are_not_classes():
    dated = ["2019", "2020-07-14", "holiday 2023", "07.2019", "001", "2019_06 Paris"]
    classes = ["cat", "Golden retriever", "b52", "café ☕", "class_3", "x-ray"]
    assert [looks_like_a_date(name) for name in dated] == [True] * len(dated)
    assert [looks_like_a_date(name) for name in classes] == [False] * len(classes)


def _files(counts: dict[str, int]) -> list[str]:
    return [f"{folder}/f{i}.jpg" for folder, n in counts.items() for i in range(n)]


def test_class_folders_need_two_folders_of_k_plus_one_files_without_dates_or_nesting():
    # class folders (k = 3): two or more, each with >= 4 files directly inside; splits are looked through
    paths = _files({"cat": 4, "dog": 5}) + ["loose.jpg"]
    labels, used, why = class_folder_labels(paths, k=3)
    assert used and labels == ["cat"] * 4 + ["dog"] * 5 + [None] and "2 class folders" in why
    labels, used, _ = class_folder_labels(_files({"train/cat": 2, "test/cat": 2, "train/dog": 4}), k=3)
    assert used and labels == ["cat"] * 4 + ["dog"] * 4  # a label's files count over the splits
    # not class folders: each case says why, and no file gets a label
    for counts, reason in (
        ({"vacation": 9}, "1 top-level folder"),
        ({"2019": 6, "2020": 6}, "look like dates"),
        ({"holiday 2023": 5, "exports": 5}, "'holiday 2023'"),
        ({"cat": 4, "dog": 3}, "fewer than 4 files: 'dog'"),
        ({"cat": 4, "dog": 4, "dog/puppies": 4}, "folders inside"),
    ):
        labels, used, why = class_folder_labels(_files(counts), k=3)
        assert not used and set(labels) == {None} and reason in why, (counts, why)
    # the same files with k = 2 (3 files suffice) are class folders
    assert class_folder_labels(_files({"cat": 4, "dog": 3}), k=2)[1]
    # asked for: every folder is a label, or none is
    labels, used, _ = class_folder_labels(_files({"2019": 6, "2020": 6}), k=3, rule="folders")
    assert used and labels == ["2019"] * 6 + ["2020"] * 6
    assert class_folder_labels(_files({"cat": 4, "dog": 4}), rule="none")[:2] == ([None] * 8, False)
    with pytest.raises(ValueError, match="unknown label rule 'classes'"):
        class_folder_labels([], rule="classes")


def test_check_kinds():
    assert check_kinds(None) == KINDS == check_kinds("all")
    assert check_kinds("none") == () == check_kinds("")
    assert check_kinds("label, dark") == ("dark", "label")
    with pytest.raises(ValueError, match="unknown check fuzzy"):
        check_kinds("dark,fuzzy")


# --------------------------------------------------------------------------- the bundled photos


def test_on_the_bundled_photos_only_colourless_files_and_the_smooth_cell_photo_fire():
    """What the README says: grayscale fires on exactly the files with no colour (the grayscale
    copies and every file of a photo that is gray at its source), blurry only on files of the
    smooth microscopy photo ``cell``, and no other image check fires."""
    import skimage.data

    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def gray_source(source):
        package, name = source.split(".", 1)
        return package == "skimage" and getattr(skimage.data, name)().ndim == 2

    gray_groups = {r["group"] for r in rows if gray_source(r["source"])}
    fired = {kind: set() for kind in KINDS}
    for r in rows:
        for kind, _, _ in image_issues(measure_image(load_rgb(DATA / r["path"]))):
            fired[kind].add(r["path"])
    colourless = {r["path"] for r in rows if r["transformation"] == "grayscale" or r["group"] in gray_groups}
    assert fired["grayscale"] == colourless
    assert fired["blurry"] and {r["group"] for r in rows if r["path"] in fired["blurry"]} == {"cell"}
    assert len(fired["blurry"]) <= 5
    assert not any(fired[k] for k in ("dark", "bright", "low_information", "odd_aspect", "tiny"))


# --------------------------------------------------------------------------- through the command line


def _plant_folder(root):
    """Two labels from two bundled photos, each with views; one problem file per image check
    and one coffee view filed under cat."""
    rng = np.random.default_rng(0)
    truth = {}
    for label, name in (
        ("cat", "train/chelsea-cat_original.png"),
        ("coffee", "train/coffee-cup_original.png"),
    ):
        photo = _photo(name)
        (root / label).mkdir(parents=True)
        for k in range(5):
            x0, y0 = (int(v) for v in rng.integers(0, 40, 2))
            photo.crop((x0, y0, x0 + 180, y0 + 180)).save(root / label / f"view{k}.jpg", quality=90)
    cat = _photo()
    a = np.asarray(cat, dtype=np.float32)
    problems = {
        "dark": Image.fromarray((a * 0.12).astype(np.uint8)),
        "odd_aspect": cat.crop((0, 80, 224, 120)),
        "tiny": cat.resize((32, 32)),
        "blurry": cat.filter(ImageFilter.GaussianBlur(5)),
    }
    for kind, image in problems.items():
        image.save(root / "cat" / f"{kind}.jpg", quality=90)
        truth[f"cat/{kind}.jpg"] = kind
    _photo("train/coffee-cup_original.png").crop((20, 20, 200, 200)).save(root / "cat" / "stray-coffee.jpg")
    truth["cat/stray-coffee.jpg"] = "label"
    return truth


class _Sections(HTMLParser):
    """The report's issue sections: kind -> captions of its figures, in page order."""

    def __init__(self):
        super().__init__()
        self.kinds, self.current, self.in_caption, self.headings = {}, None, False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "issue" in (attrs.get("class") or "").split():
            self.current = attrs["data-kind"]
            self.kinds[self.current] = []
        if tag == "h3" and (attrs.get("id") or "").startswith("issue-"):
            self.headings.append(attrs["id"][len("issue-") :])
        if tag == "img" and self.current:
            self.kinds[self.current].append(attrs["alt"])

    def handle_endtag(self, tag):
        if tag == "div":
            self.current = None


@pytest.mark.slow
def test_cli_writes_issues_and_a_report_section_per_kind(tmp_path):
    folder, out = tmp_path / "photos", tmp_path / "out"
    truth = _plant_folder(folder)
    run = subprocess.run(
        [sys.executable, "-m", "embedkit", "curate", str(folder), "--out", str(out), "--quiet"],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    issues = findings["issues"]
    assert findings["checks"]["kinds"] == list(KINDS)
    assert findings["checks"]["labels"]["class_folders"] is True  # cat/ and coffee/, 10 and 5 files
    assert "2 class folders" in findings["checks"]["labels"]["why"]
    for issue in issues:
        assert set(issue) >= {"path", "kind", "score", "reason"} and issue["reason"]
    found = {(i["path"], i["kind"]) for i in issues}
    for path, kind in truth.items():
        assert (path, kind) in found, (path, kind, issues)
    stray = next(i for i in issues if i["path"] == "cat/stray-coffee.jpg" and i["kind"] == "label")
    assert stray["suggested_label"] == "coffee"
    clean_views = {f"{label}/view{k}.jpg" for label in ("cat", "coffee") for k in range(5)}
    assert not {i["path"] for i in issues if i["kind"] != "grayscale"} & clean_views

    page = (out / "report.html").read_text(encoding="utf-8")
    sections = _Sections()
    sections.feed(page)
    assert sections.headings == list(KINDS)  # one section per kind that ran, in order
    for kind in KINDS:
        listed = [i["path"] for i in issues if i["kind"] == kind]
        assert sections.kinds.get(kind, []) == listed  # same files, same (worst-first) order
    assert f'data-count="issues">{len(issues)}<' in page

    # --checks selects; an unknown kind is refused before any work
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "embedkit",
            "curate",
            str(folder),
            "--out",
            str(out),
            "--quiet",
            "--checks",
            "dark",
        ],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert findings["checks"]["kinds"] == ["dark"]
    assert [(i["path"], i["kind"]) for i in findings["issues"]] == [("cat/dark.jpg", "dark")]
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "embedkit",
            "curate",
            str(folder),
            "--out",
            str(tmp_path / "o2"),
            "--checks",
            "fuzzy",
        ],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "unknown check fuzzy" in bad.stderr
    assert not (tmp_path / "o2").exists()


def _curate_cli(folder, out, *extra):
    run = subprocess.run(
        [sys.executable, "-m", "embedkit", "curate", str(folder), "--out", str(out), "--quiet", *extra],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    return json.loads((out / "findings.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_cli_runs_the_label_check_only_on_class_folders(tmp_path):
    """The same files in ``2019/`` and ``2020/`` instead of ``cat/`` and ``coffee/``: folders of
    when, not of what, so no label check, and findings.json says why; ``--labels folders``
    runs it anyway and the coffee view in 2019/ is flagged with 2020 suggested."""
    folder = tmp_path / "photos"
    _plant_folder(folder)
    (folder / "cat").rename(folder / "2019")
    (folder / "coffee").rename(folder / "2020")
    findings = _curate_cli(folder, tmp_path / "auto", "--checks", "outlier,label")
    labels = findings["checks"]["labels"]
    assert labels["rule"] == "auto" and labels["class_folders"] is False
    assert "look like dates" in labels["why"] and "'2019'" in labels["why"]
    assert findings["checks"]["notes"]["label"].startswith("not run: the folders do not look like class")
    assert not [i for i in findings["issues"] if i["kind"] == "label"]
    forced = _curate_cli(folder, tmp_path / "forced", "--checks", "label", "--labels", "folders")
    assert forced["checks"]["labels"]["class_folders"] is True and "label" not in forced["checks"]["notes"]
    flagged = {i["path"]: i["suggested_label"] for i in forced["issues"] if i["kind"] == "label"}
    assert flagged.get("2019/stray-coffee.jpg") == "2020"


def test_worst_first_within_a_kind():
    """``curate``'s ordering: by kind, then worst first (lower scores first where lower is worse)."""
    from embedkit.curate import _quality_checks

    measured = [measure_image(Image.new("RGB", (224, 224), (v, v, v))) for v in (30, 5, 50, 200)]
    paths = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    out = _quality_checks(paths, measured, np.eye(4, 8, dtype=np.float32), ("dark", "bright"))
    assert [(i["path"], i["kind"]) for i in out["issues"]] == [
        ("b.jpg", "dark"),
        ("a.jpg", "dark"),
        ("c.jpg", "dark"),
    ]
    assert out["checks"]["kinds"] == ["dark", "bright"]
    np.testing.assert_allclose(out["measures"]["dark"], [30, 5, 50, 200])


def test_curate_reports_an_outlier_in_its_class_folder_unless_something_explains_it():
    """Through ``curate``'s checks step: a vector far from its class folder is an outlier, with
    its z-score in the reason; a far file that is also dark is reported as dark only; a cat
    filed under dog is far from dog's centre too, but reported as a label issue only (its
    neighbours say where it belongs); a flat folder is one class."""
    from embedkit.curate import _quality_checks

    rng = np.random.default_rng(5)
    means, points = _clusters(rng, centres=2, per=8, spread=0.1)
    far = rng.normal(size=(2, 16))
    stray = means[0] + 0.1 * rng.normal(size=(1, 16))  # a cat
    vectors = np.concatenate([points, far, stray]).astype(np.float32)
    # the far file sits in the folder of the cluster it is nearer to, so its neighbours agree
    # with its label and only its distance is odd
    voters = np.concatenate([points, stray])
    voter_labels = ["cat"] * 8 + ["dog"] * 9
    _, idx = NearestNeighbors(n_neighbors=3, metric="cosine").fit(voters).kneighbors(far[:1])
    near = max(("cat", "dog"), key=[voter_labels[j] for j in idx[0]].count)
    paths = [f"cat/{i}.jpg" for i in range(8)] + [f"dog/{i}.jpg" for i in range(8)]
    paths += [f"{near}/screenshot.jpg", "dog/night.jpg", "dog/stray-cat.jpg"]
    photo = measure_image(_photo())
    dark = measure_image(Image.fromarray((np.asarray(_photo(), dtype=np.float32) * 0.1).astype(np.uint8)))
    measured = [photo] * 17 + [dark, photo]
    out = _quality_checks(paths, measured, vectors, KINDS)
    kinds_of = {}
    for issue in out["issues"]:
        kinds_of.setdefault(issue["path"], set()).add(issue["kind"])
    assert kinds_of == {
        f"{near}/screenshot.jpg": {"outlier"},
        "dog/night.jpg": {"dark"},
        "dog/stray-cat.jpg": {"label"},
    }
    classes = [p.split("/")[0] for p in paths]
    z, _ = outlier_scores(vectors, classes, np.array([i for i in range(19) if i != 17]))
    assert z[18] >= THRESHOLDS["outlier"]  # the stray cat is far from dog's centre
    outlier = next(i for i in out["issues"] if i["kind"] == "outlier")
    assert "class folder" in outlier["reason"] and f"{outlier['score']:.1f}" in outlier["reason"]
    assert outlier["score"] == pytest.approx(z[16], rel=1e-4)
    assert out["checks"]["labels"]["class_folders"] is True
    flat = _quality_checks([p.replace("/", "-") for p in paths], measured, vectors, ("outlier", "label"))
    assert flat["checks"]["labels"]["class_folders"] is False
    assert "not run" in flat["checks"]["notes"]["label"]
    np.testing.assert_allclose(flat["measures"]["outlier"], outlier_scores(vectors)[0])  # one class
