"""embed_images: shapes, row bookkeeping, batch independence, bad files, saving."""

import numpy as np
import pytest
import torch
from PIL import Image

from embedkit.embeddings import Embeddings, embed_images
from embedkit.images import load_rgb


@pytest.fixture(scope="module")
def files(manifest):
    return manifest["file"].tolist()[:7]


def test_shape_dtype_and_rows_in_input_order(backbone, files):
    result = embed_images(files, backbone, batch_size=3, progress=False)
    assert result.vectors.shape == (7, backbone.dim) and result.vectors.dtype == np.float32
    assert result.paths == files and result.failed == [] and result.backbone == backbone.name
    # each row is what the model gives for that file on its own
    with torch.inference_mode():
        alone = backbone.model(backbone.preprocess(load_rgb(files[4])).unsqueeze(0))
    np.testing.assert_allclose(result.vectors[4], alone[0].numpy(), rtol=1e-4, atol=1e-5)


def test_batch_size_does_not_change_the_embeddings(backbone, files):
    one = embed_images(files, backbone, batch_size=1, progress=False)
    many = embed_images(files, backbone, batch_size=32, progress=False, workers=1)
    np.testing.assert_allclose(one.vectors, many.vectors, rtol=1e-4, atol=1e-5)


def test_bad_files_are_skipped_reported_and_the_rest_goes_on(backbone, files, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    mixed = [files[0], str(empty), files[1], str(text), files[2]]
    with pytest.warns(UserWarning, match=r"skipped 2 of 5 images") as record:
        result = embed_images(mixed, backbone, batch_size=2, progress=False)
    message = str(record[0].message)
    assert "empty.jpg: empty file" in message and "notes.png: not an image file" in message
    assert result.paths == [files[0], files[1], files[2]]
    assert [p for p, _ in result.failed] == [str(empty), str(text)]
    reference = embed_images(files[:3], backbone, progress=False)
    np.testing.assert_allclose(result.vectors, reference.vectors, rtol=1e-4, atol=1e-5)


def test_pil_images_and_rgba_are_accepted(backbone, files):
    rgb = load_rgb(files[0])
    rgba = rgb.convert("RGBA")  # fully opaque: composites to the same picture
    result = embed_images([rgb, rgba], backbone, progress=False)
    assert result.paths == ["<image 0>", "<image 1>"]
    np.testing.assert_allclose(result.vectors[0], result.vectors[1], rtol=1e-5, atol=1e-6)


def test_nothing_to_embed_gives_an_empty_matrix(backbone):
    result = embed_images([], backbone, progress=False)
    assert result.shape == (0, backbone.dim)


def test_wrong_item_type_is_reported_not_raised(backbone, files):
    with pytest.warns(UserWarning, match="TypeError"):
        result = embed_images([files[0], 42], backbone, progress=False)
    assert len(result) == 1 and result.failed[0][0] == "42"


def test_save_and_load_round_trip(backbone, files, tmp_path):
    result = embed_images(files[:3], backbone, progress=False)
    result.failed.append(("gone.png", "file not found"))
    loaded = Embeddings.load(result.save(tmp_path / "sub" / "e.npz"))
    np.testing.assert_array_equal(loaded.vectors, result.vectors)
    assert loaded.paths == result.paths and loaded.failed == result.failed
    assert loaded.backbone == backbone.name and loaded.row(files[1]) == 1
    assert np.asarray(loaded).shape == (3, backbone.dim)
    with pytest.raises(KeyError, match="no embedding row"):
        loaded.row("elsewhere.png")


def test_mismatched_rows_and_paths_are_refused():
    with pytest.raises(ValueError, match="one row per path"):
        Embeddings(np.zeros((2, 4), np.float32), ["a"])


def test_invalid_batch_size(backbone):
    with pytest.raises(ValueError, match="batch_size"):
        embed_images([Image.new("RGB", (8, 8))], backbone, batch_size=0)
