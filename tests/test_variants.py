"""embedkit.variants: edited copies keep their ground truth and are their edits; bad files fail by name."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from embedkit.images import ImageLoadError, load_rgb
from embedkit.variants import COLUMNS, make_bad_files, make_variants


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
