"""embedkit.dataset: the manifest, and embeddings shared between lessons that are never stale."""

import numpy as np
import pytest

from embedkit import dataset
from embedkit.embeddings import embed_images


@pytest.fixture()
def small(manifest, tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "ARTIFACTS_DIR", tmp_path)
    return manifest.iloc[:4].reset_index(drop=True)


def test_manifest_gives_absolute_files(manifest):
    assert len(manifest) > 0
    assert all(dataset.DATA_DIR.joinpath(p).exists() for p in manifest["path"])
    assert manifest["file"].map(lambda f: f.startswith(str(dataset.DATA_DIR))).all()


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
