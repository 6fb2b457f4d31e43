"""embedkit.variants: edited copies keep their ground truth and are their edits; bad files fail by name."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from embedkit.duplicates import file_sha256
from embedkit.images import ImageLoadError, load_rgb
from embedkit.variants import (
    COLUMNS,
    NEW_EDIT_COLUMNS,
    NEW_EDITS,
    UNSEEN_PHOTOS,
    _new_edit,
    make_bad_files,
    make_new_edits,
    make_variants,
    unseen_photos,
)


@pytest.fixture(scope="module")
def rows(manifest):
    return manifest.iloc[[0, 50, 100, 150]]


@pytest.fixture(scope="module")
def variants(rows, tmp_path_factory):
    return make_variants(rows, tmp_path_factory.mktemp("variants"), per_file=6, seed=0)


def test_copies_keep_group_split_and_source(rows, variants):
    assert len(variants) == 4 * 6
    for column in ("group", "split"):
        assert variants[column].tolist() == np.repeat(rows[column].to_numpy(), 6).tolist()
    assert variants["source"].tolist() == np.repeat(rows["path"].to_numpy(), 6).tolist()
    assert variants["path"].is_unique
    for row in variants.itertuples():
        assert Path(row.file) == Path(row.file).parent / row.path
        with Image.open(row.file) as image:
            assert image.format == "JPEG"


def test_same_seed_same_files_other_seed_other_edits(rows, variants, tmp_path):
    again = make_variants(rows, tmp_path / "again", per_file=6, seed=0)
    assert again["transformation"].tolist() == variants["transformation"].tolist()
    for a, b in zip(again["file"], variants["file"], strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    other = make_variants(rows, tmp_path / "other", per_file=6, seed=1)
    assert other["transformation"].tolist() != variants["transformation"].tolist()


def test_sizes_follow_the_named_edits(manifest, variants):
    """crop keeps 80-95 % of each side, resize 50-90 %, mirror none: the size says which ran."""
    sizes = zip(manifest["width"], manifest["height"], strict=True)
    source_size = dict(zip(manifest["path"], sizes, strict=True))
    seen = set()
    for row in variants.itertuples():
        edits = set(row.transformation.split("+"))
        assert edits and edits <= {"crop", "mirror", "resize"}
        seen |= edits
        w0, h0 = source_size[row.source]
        with Image.open(row.file) as image:
            w, h = image.size
        low = (0.8 if "crop" in edits else 1.0) * (0.5 if "resize" in edits else 1.0)
        high = (0.95 if "crop" in edits else 1.0) * (0.9 if "resize" in edits else 1.0)
        for got, full in ((w, w0), (h, h0)):
            assert low * full - 2 <= got <= high * full + 2, (row.path, row.transformation, (w, h), (w0, h0))
    assert seen == {"crop", "mirror", "resize"}


def test_a_mirror_only_copy_is_the_mirrored_source(manifest, tmp_path):
    rows = manifest.iloc[[10]]
    copies = make_variants(rows, tmp_path, per_file=40, seed=3)
    mirror_only = copies[copies["transformation"] == "mirror"]
    assert len(mirror_only), "40 draws should include a mirror-only copy"
    source = np.asarray(load_rgb(rows["file"].iloc[0]), dtype=np.float32)
    copy = np.asarray(load_rgb(mirror_only["file"].iloc[0]), dtype=np.float32)
    mirrored = np.asarray(ImageOps.mirror(Image.fromarray(source.astype(np.uint8))), dtype=np.float32)
    # JPEG re-encoding changes pixels a little; the unmirrored source is much further away.
    assert np.abs(copy - mirrored).mean() < 8 < np.abs(copy - source).mean()


def test_bad_files_are_refused_by_name(manifest, tmp_path):
    good = manifest.loc[manifest["file"].str.endswith(".jpg"), "file"].iloc[0]
    bad = make_bad_files(tmp_path, good)
    assert [p.name for p in bad] == ["empty.jpg", "notes.jpg", "truncated.jpg"]
    data = Path(good).read_bytes()
    assert Path(bad[2]).read_bytes() == data[: len(data) // 3]
    for path, word in zip(bad, ("empty", "not an image", "truncated"), strict=True):
        with pytest.raises(ImageLoadError) as info:
            load_rgb(path)
        assert Path(info.value.path) == path and word in info.value.reason


def test_no_copies_is_an_empty_table_and_bad_counts_are_refused(rows, tmp_path):
    empty = make_variants(rows, tmp_path, per_file=0)
    assert len(empty) == 0 and list(empty.columns) == COLUMNS
    with pytest.raises(ValueError, match="per_file"):
        make_variants(rows, tmp_path, per_file=-1)


# --------------------------------------------------------------------------- copies no threshold saw


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    return unseen_photos(tmp_path_factory.mktemp("unseen"))


def test_unseen_photos_are_not_bundled(manifest, unseen):
    assert list(unseen) == list(UNSEEN_PHOTOS)
    bundled_sources = {s.split(".", 1)[1] for s in manifest["source"]}
    assert not {loader for loader, _ in UNSEEN_PHOTOS.values()} & bundled_sources
    assert not set(unseen) & set(manifest["group"])
    assert not {file_sha256(f) for f in unseen.values()} & set(manifest["sha256"])
    for file in unseen.values():
        with Image.open(file) as image:
            assert image.format == "JPEG" and image.size == (224, 224)


def test_new_edits_two_different_edits_per_copy_and_reproducible(manifest, unseen, tmp_path):
    photos = {"first": manifest["file"].iloc[0], **unseen}
    copies = make_new_edits(photos, tmp_path / "a", per_photo=5, seed=7)
    assert list(copies.columns) == NEW_EDIT_COLUMNS
    assert copies["photo"].tolist() == [p for p in photos for _ in range(5)]
    assert copies["path"].is_unique
    for row in copies.itertuples():
        edits = row.edits.split("+")
        assert len(edits) == 2 and len(set(edits)) == 2 and set(edits) <= set(NEW_EDITS)
        assert 65 <= row.quality <= 90
        with Image.open(row.file) as image:
            assert image.format == "JPEG"
    again = make_new_edits(photos, tmp_path / "b", per_photo=5, seed=7)
    assert again["edits"].tolist() == copies["edits"].tolist()
    assert [Path(f).read_bytes() for f in again["file"]] == [Path(f).read_bytes() for f in copies["file"]]
    other = make_new_edits(photos, tmp_path / "c", per_photo=5, seed=8)
    assert other["edits"].tolist() != copies["edits"].tolist()
    with pytest.raises(ValueError, match="per_photo"):
        make_new_edits(photos, tmp_path / "d", per_photo=-1)


def _picture(seed=0, size=(200, 160)):
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(smooth).resize(size, Image.Resampling.BILINEAR)


@pytest.mark.parametrize("seed", range(5))
def test_each_new_edit_does_what_it_says(seed):
    picture = _picture(seed)
    w, h = picture.size
    pixels = np.asarray(picture, dtype=np.int16)
    rng = np.random.default_rng(seed)
    crop = _new_edit(picture, "crop", rng)
    assert 0.75 * w - 1 <= crop.width <= 0.9 * w + 1 and 0.75 * h - 1 <= crop.height <= 0.9 * h + 1
    assert crop.width / w == pytest.approx(crop.height / h, abs=0.01)
    small = _new_edit(picture, "resize", rng)
    assert 0.35 * w - 1 <= small.width <= 0.5 * w + 1
    assert np.array_equal(np.asarray(_new_edit(picture, "mirror", rng)), np.asarray(ImageOps.mirror(picture)))
    turned = _new_edit(picture, "rotate", rng)  # 3-8 degrees, corners cut: sin(3..8 deg) * 100 per side
    assert w - 2 * 14 - 1 <= turned.width <= w - 2 * 5 + 1 and turned.height == h - (w - turned.width)
    recoloured = _new_edit(picture, "colour", rng)
    assert recoloured.size == picture.size and not np.array_equal(np.asarray(recoloured), pixels)
    stickered = np.asarray(_new_edit(picture, "sticker", rng), dtype=np.int16)
    changed = (stickered != pixels).any(axis=2).mean()
    assert 0.03 < changed <= 0.12  # one opaque box over 6-12 % (rounded corners, a colour may match)
    with pytest.raises(ValueError, match="unknown edit"):
        _new_edit(picture, "blur", rng)
