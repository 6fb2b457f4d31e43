"""Integrity of the bundled image set in data/ and of the script that builds it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO
from embedkit.images import load_rgb

DATA = REPO / "data"

COLUMNS = ["path", "split", "label", "source", "transformation", "group", "sha256", "width", "height", "mode"]
KINDS = {
    "original",
    "exact_copy",
    "lossless_resave",
    "jpeg_reencode",
    "resize",
    "crop",
    "hflip",
    "brightness",
    "watermark",
    "rgba_cutout",
    "grayscale",
}
EVERY_GROUP = {"original", "jpeg_reencode", "resize", "crop", "hflip", "brightness", "watermark"}
# copies a hash can find, and copies only embeddings find
LEAK_KINDS = {
    "exact_copy",
    "lossless_resave",
    "jpeg_reencode",
    "resize",
    "brightness",
    "crop",
    "hflip",
    "watermark",
}


def _load_script():
    import make_dataset

    return make_dataset


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def manifest_csv() -> pd.DataFrame:
    """manifest.csv exactly as stored (conftest's ``manifest`` adds an absolute ``file`` column)."""
    return pd.read_csv(DATA / "manifest.csv", dtype={"sha256": str})


@pytest.fixture(scope="module")
def originals(manifest_csv) -> pd.DataFrame:
    return manifest_csv[manifest_csv.transformation == "original"].set_index("group")


@pytest.fixture(scope="module")
def home_split(manifest_csv) -> pd.Series:
    """The split of each group's original: where the group lives."""
    return manifest_csv[manifest_csv.transformation == "original"].set_index("group")["split"]


# --------------------------------------------------------------------------- files and manifest


def test_manifest_columns_and_order(manifest_csv):
    assert list(manifest_csv.columns) == COLUMNS
    assert manifest_csv["path"].tolist() == sorted(manifest_csv["path"])
    assert manifest_csv["path"].is_unique
    assert manifest_csv.notna().all().all()


def test_every_row_matches_its_file(manifest_csv):
    for row in manifest_csv.itertuples():
        path = DATA / row.path
        assert path.is_file(), row.path
        assert _sha256(path) == row.sha256, row.path
        with Image.open(path) as image:
            assert (image.width, image.height, image.mode) == (row.width, row.height, row.mode)


def test_every_file_has_exactly_one_row(manifest_csv):
    on_disk = sorted(
        p.relative_to(DATA).as_posix()
        for split in ("train", "test")
        for p in (DATA / split).rglob("*")
        if p.is_file()
    )
    assert on_disk == manifest_csv["path"].tolist()


def test_paths_follow_the_naming_scheme(manifest_csv):
    for row in manifest_csv.itertuples():
        assert re.fullmatch(r"(train|test)/[a-z0-9-]+_[a-z_]+\.(jpg|png)", row.path), row.path
        assert row.path == f"{row.split}/{row.group}_{row.transformation}.{row.path.rsplit('.', 1)[1]}"
    assert set(manifest_csv["split"]) == {"train", "test"}
    assert set(manifest_csv["transformation"]) <= KINDS


def test_size_and_variety(manifest_csv):
    assert len(manifest_csv) >= 200
    assert manifest_csv["group"].nunique() >= 24
    assert manifest_csv["source"].nunique() >= 12
    assert set(manifest_csv["transformation"]) == KINDS
    # a label shared by different source photos
    assert (manifest_csv.groupby("label")["source"].nunique() >= 2).any()
    # each group comes from one source photo and has one label
    assert (manifest_csv.groupby("group")[["source", "label"]].nunique() == 1).all().all()


def test_one_original_per_group_and_the_common_kinds(manifest_csv):
    counts = manifest_csv.groupby(["group", "transformation"]).size()
    assert counts.max() == 1
    for group, kinds in manifest_csv.groupby("group")["transformation"]:
        assert EVERY_GROUP <= set(kinds), group
    per_kind = manifest_csv["transformation"].value_counts()
    for kind in ("exact_copy", "lossless_resave", "rgba_cutout"):
        assert per_kind[kind] >= 6, kind


def test_data_folder_is_small():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 6 * 1024 * 1024
    assert (DATA / "README.md").is_file()


# --------------------------------------------------------------------------- transformations


def test_exact_copies_are_byte_identical(manifest_csv, originals):
    for row in manifest_csv[manifest_csv.transformation == "exact_copy"].itertuples():
        original = originals.loc[row.group]
        assert row.sha256 == original.sha256
        assert (DATA / row.path).read_bytes() == (DATA / original.path).read_bytes()


def test_lossless_resaves_keep_pixels_but_not_bytes(manifest_csv, originals):
    for row in manifest_csv[manifest_csv.transformation == "lossless_resave"].itertuples():
        original = originals.loc[row.group]
        assert row.sha256 != original.sha256, row.path
        a = np.asarray(load_rgb(DATA / row.path))
        b = np.asarray(load_rgb(DATA / original.path))
        assert np.array_equal(a, b), row.path


def test_size_changing_edits(manifest_csv, originals):
    for row in manifest_csv[manifest_csv.transformation.isin(["resize", "crop"])].itertuples():
        original = originals.loc[row.group]
        ratio = row.width / original.width
        assert row.height / original.height == pytest.approx(ratio, abs=0.01)
        low, high = (0.5, 0.75) if row.transformation == "resize" else (0.65, 0.8)
        assert low - 0.01 <= ratio <= high + 0.01, row.path
    same_size = manifest_csv[~manifest_csv.transformation.isin(["resize", "crop"])]
    assert (same_size["width"] == same_size["group"].map(originals["width"])).all()


def test_grayscale_copies_are_of_colour_bases(manifest_csv, originals):
    gray = manifest_csv[manifest_csv.transformation == "grayscale"]
    assert (gray["mode"] == "L").all()
    colour_groups = set(originals.index[originals["mode"] == "RGB"])
    assert set(gray["group"]) == colour_groups


def test_rgba_cutouts(manifest_csv, originals):
    cutouts = manifest_csv[manifest_csv.transformation == "rgba_cutout"]
    assert len(cutouts) >= 6
    for row in cutouts.itertuples():
        original = originals.loc[row.group]
        assert original.path.endswith(".png"), original.path
        with Image.open(DATA / row.path) as image:
            assert image.mode == "RGBA"
            rgba = np.asarray(image)
        alpha = rgba[..., 3]
        assert (alpha == 0).any() and (alpha == 255).any(), row.path
        # as many editors store it: black under fully transparent pixels
        assert (rgba[alpha == 0, :3] == 0).all(), row.path
        over_white = np.asarray(load_rgb(DATA / row.path), dtype=np.int16)
        reference = np.asarray(load_rgb(DATA / original.path), dtype=np.int16)
        assert np.abs(over_white - reference).mean() < 0.5, row.path
        # dropping alpha instead shows a black background where the original is white
        naive = np.asarray(Image.fromarray(rgba).convert("RGB"), dtype=np.int16)
        assert np.abs(naive - reference)[alpha == 0].mean() > 200, row.path


# --------------------------------------------------------------------------- splits and leaks


def test_groups_are_split_about_three_to_one(home_split):
    share = (home_split == "test").mean()
    assert 0.15 <= share <= 0.35
    assert (home_split == "train").sum() > (home_split == "test").sum()


def test_planted_leaks(manifest_csv, home_split):
    moved = manifest_csv[manifest_csv["split"] != manifest_csv["group"].map(home_split)]
    assert moved["group"].nunique() >= 8
    groups_in = manifest_csv.groupby("group")["split"].agg(set)
    both = groups_in[groups_in.map(len) == 2].index
    leaking_test = manifest_csv[(manifest_csv["split"] == "test") & manifest_csv["group"].isin(both)]
    assert LEAK_KINDS <= set(leaking_test["transformation"])


# --------------------------------------------------------------------------- the script


def test_build_reproduces_the_files(tmp_path, manifest_csv):
    make_dataset = _load_script()
    keep = tmp_path / "README.md"
    keep.write_text("not generated\n")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "stale.jpg").write_bytes(b"old")

    rebuilt = make_dataset.build(tmp_path)

    assert keep.read_text() == "not generated\n"
    assert not (tmp_path / "train" / "stale.jpg").exists()
    assert list(rebuilt.columns) == COLUMNS
    assert dict(zip(rebuilt["path"], rebuilt["sha256"], strict=True)) == dict(
        zip(manifest_csv["path"], manifest_csv["sha256"], strict=True)
    )
    assert (tmp_path / "manifest.csv").read_bytes() == (DATA / "manifest.csv").read_bytes()
    for path in rebuilt["path"]:
        assert _sha256(tmp_path / path) == _sha256(DATA / path), path
