"""embedkit.dataset: the manifest, and embeddings shared between lessons that are never stale."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embedkit import dataset
from embedkit.embeddings import Embeddings, embed_images


@pytest.fixture()
def small(manifest, tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "ARTIFACTS_DIR", tmp_path)
    return manifest.iloc[:4].reset_index(drop=True)


def test_manifest_lists_every_bundled_image_once_with_its_absolute_file(manifest):
    on_disk = sorted(
        p.relative_to(dataset.DATA_DIR).as_posix()
        for p in dataset.DATA_DIR.rglob("*")
        if p.is_file() and p.name not in ("manifest.csv", "README.md")
    )
    assert sorted(manifest["path"]) == on_disk
    assert manifest["file"].tolist() == [str(dataset.DATA_DIR / p) for p in manifest["path"]]


def test_a_folder_without_the_bundled_data_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no manifest.csv in {tmp_path}"):
        dataset.load_manifest(tmp_path)


def test_saved_embeddings_are_read_back_not_recomputed(small, backbone, monkeypatch):
    computed = embed_images(small["file"], backbone, progress=False)
    saved = dataset.save_bundled_embeddings(computed, small)
    assert saved.parent == dataset.ARTIFACTS_DIR
    monkeypatch.setattr(dataset, "embed_images", lambda *a, **k: pytest.fail("recomputed"))
    loaded = dataset.bundled_embeddings(backbone, small, progress=False)
    assert loaded.paths == small["path"].tolist()  # relative: independent of the checkout's place
    np.testing.assert_array_equal(loaded.vectors, computed.vectors)


def test_changed_files_make_the_saved_embeddings_stale(small, backbone, monkeypatch):
    dataset.save_bundled_embeddings(embed_images(small["file"], backbone, progress=False), small)
    rebuilt = small.copy()
    rebuilt.loc[0, "sha256"] = "0" * 64  # same names, different content
    calls = []
    monkeypatch.setattr(dataset, "embed_images", lambda *a, **k: calls.append(1) or embed_images(*a, **k))
    dataset.bundled_embeddings(backbone, rebuilt, progress=False)
    assert calls == [1]
    saved = dataset.Embeddings.load(dataset.embeddings_file(backbone.name))
    assert saved.source == dataset.manifest_fingerprint(rebuilt)


def test_rows_must_match_the_manifest(small, backbone):
    partial = embed_images(small["file"][:2], backbone, progress=False)
    with pytest.raises(ValueError, match="one embedding per manifest row"):
        dataset.save_bundled_embeddings(partial, small)


@pytest.fixture()
def copied_data(tmp_path, monkeypatch):
    """The first four bundled images and the manifest, copied to a folder of their own."""
    data = tmp_path / "data"
    shutil.copytree(dataset.DATA_DIR, data)
    monkeypatch.setattr(dataset, "ARTIFACTS_DIR", tmp_path / "artifacts")
    return data, dataset.load_manifest(data).iloc[:4].reset_index(drop=True)


def test_a_changed_image_with_an_unchanged_manifest_is_recomputed(copied_data, backbone):
    data, small = copied_data
    before = dataset.bundled_embeddings(backbone, small, progress=False)
    first = Path(small.loc[0, "file"])
    with Image.open(first) as image:
        changed, kind = image.convert("RGB").transpose(Image.Transpose.ROTATE_180), image.format
    changed.save(first, format=kind)
    with pytest.warns(UserWarning, match="the images changed since it was saved; recomputing"):
        after = dataset.bundled_embeddings(backbone, small, progress=False)
    fresh = embed_images(small["file"], backbone, progress=False)
    np.testing.assert_allclose(after.vectors, fresh.vectors, rtol=1e-4, atol=1e-5)
    assert not np.allclose(after.vectors[0], before.vectors[0], atol=1e-3)
    np.testing.assert_allclose(after.vectors[1:], before.vectors[1:], rtol=1e-4, atol=1e-5)


def _save_as(small, backbone, vectors, paths=None, name=None):
    keyed = Embeddings(
        vectors,
        paths or small["path"].tolist(),
        [],
        name or backbone.name,
        source=dataset.manifest_fingerprint(small),
    )
    keyed.save(dataset.embeddings_file(backbone.name))


@pytest.mark.parametrize(
    "damage, reason",
    [
        ("truncated", "not a readable embeddings file"),
        ("garbage", "not a readable embeddings file"),
        ("dimension", "-d vectors"),
        ("rows", "rows for other files"),
        ("backbone", "made by resnet50"),
    ],
)
def test_a_corrupt_or_mismatched_file_is_reported_in_one_line_and_recomputed(
    copied_data, backbone, damage, reason
):
    _, small = copied_data
    cache = dataset.embeddings_file(backbone.name)
    good = dataset.bundled_embeddings(backbone, small, progress=False)
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:200])
    elif damage == "garbage":
        cache.write_bytes(b"\x00" * 64)
    elif damage == "dimension":
        _save_as(small, backbone, np.ones((4, 7), np.float32))
    elif damage == "rows":
        _save_as(small, backbone, good.vectors[:3], small["path"].tolist()[:3])
    else:
        _save_as(small, backbone, good.vectors, name="resnet50")
    with pytest.warns(UserWarning, match=reason) as record:
        again = dataset.bundled_embeddings(backbone, small, progress=False)
    lines = [str(w.message) for w in record if "recomputing" in str(w.message)]
    assert len(lines) == 1 and "\n" not in lines[0]
    np.testing.assert_allclose(again.vectors, good.vectors, rtol=1e-4, atol=1e-5)
    assert Embeddings.load(cache).backbone == backbone.name  # the file is whole again
