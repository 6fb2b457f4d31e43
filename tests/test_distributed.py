"""Ray Data pipeline vs embed_images (same decode, same rows), bad files, Parquet; FAISS vs brute force."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

ray = pytest.importorskip("ray")

from embedkit.ann import (  # noqa: E402
    build_flat,
    build_ivf,
    pair_recall,
    range_pairs,
    synthetic_collection,
    unit_rows,
)
from embedkit.distributed import (  # noqa: E402
    decode_for_model,
    embed_with_ray,
    model_input,
    read_embeddings,
    start_ray,
)
from embedkit.embeddings import ModelInput, embed_images, resize_target  # noqa: E402
from embedkit.images import load_rgb  # noqa: E402
from embedkit.variants import make_bad_files, make_variants  # noqa: E402


@pytest.fixture(scope="module")
def ray_running():
    start_ray(num_cpus=2, object_store_mb=256)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory, manifest):
    """A 1600 x 1600 JPEG: large enough that the reduced-size decode differs from a full one."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    Image.open(manifest["file"][3]).convert("RGB").resize((1600, 1600), Image.Resampling.BICUBIC).save(
        path, quality=90
    )
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, manifest, big_jpeg):
    """A dozen bundled files, a large JPEG, two edited copies of each of two, three bad files, interleaved."""
    root = tmp_path_factory.mktemp("folder")
    variants = make_variants(manifest.iloc[:2], root / "variants", per_file=2, seed=1)
    bad = [str(p) for p in make_bad_files(root / "bad", manifest["file"][0])]
    good = manifest["file"].tolist()[:12] + [big_jpeg] + variants["file"].tolist()
    paths = good[:5] + bad[:1] + good[5:11] + bad[1:] + good[11:]
    return paths, good, bad


@pytest.fixture(scope="module")
def ray_result(ray_running, folder, backbone, tmp_path_factory):
    paths, _, _ = folder
    out = tmp_path_factory.mktemp("parquet")
    return embed_with_ray(paths, backbone, out, batch_size=4, rows_per_file=5, progress=False,
                          decode_cpus=0.5, threads=2)


def test_rows_match_embed_images(ray_result, folder, backbone):
    paths, good, _ = folder
    with pytest.warns(UserWarning, match="skipped 3"):
        single = embed_images(paths, backbone, progress=False)
    got = ray_result.embeddings
    assert got.paths == single.paths == good  # same order as the input, bad files left out
    np.testing.assert_allclose(got.vectors, single.vectors, rtol=1e-4, atol=1e-5)
    assert got.vectors.dtype == np.float32 and got.shape == (len(good), backbone.dim)


def test_bad_files_are_reported_with_reasons(ray_result, folder, backbone):
    paths, _, bad = folder
    failed = dict(ray_result.embeddings.failed)
    assert sorted(failed) == sorted(bad)
    with pytest.warns(UserWarning, match="skipped 3"):
        single = embed_images(paths, backbone, progress=False)
    assert failed == dict(single.failed)  # the same reason, word for word, as embed_images gives
    assert "empty" in failed[bad[0]]
    assert "not an image" in failed[bad[1]]
    assert "truncated" in failed[bad[2]]


def test_parquet_shards_read_with_plain_pandas(ray_result, folder, backbone):
    paths, good, _ = folder
    assert len(ray_result.files) >= 2  # rows_per_file=5 over 20 rows: several shards
    frame = pd.concat([pd.read_parquet(f) for f in ray_result.files]).sort_values("index")
    assert frame["path"].tolist() == paths and frame["index"].tolist() == list(range(len(paths)))
    ok = frame["error"] == ""
    assert ok.sum() == len(good) and frame.loc[~ok, "embedding"].isna().all()
    assert all(len(v) == backbone.dim for v in frame.loc[ok, "embedding"])
    again = read_embeddings(ray_result.out_dir)
    np.testing.assert_array_equal(again.vectors, ray_result.embeddings.vectors)


def test_decode_is_the_reduced_size_decode_of_embed_images(backbone, big_jpeg):
    transform = model_input(backbone)
    assert transform.min_side == resize_target(backbone)
    reduced = decode_for_model(big_jpeg, transform)
    full = backbone.preprocess(load_rgb(big_jpeg))
    assert reduced.shape == full.shape
    assert 1e-3 < float((reduced - full).abs().max())  # a full decode would not match embed_images
    same = ModelInput(backbone.preprocess, resize_target(backbone))(big_jpeg)  # what embed_images runs
    assert torch.equal(reduced, same)


def test_embed_with_ray_needs_ray_and_files(backbone, tmp_path):
    with pytest.raises(ValueError, match="no files"):
        start_ray(num_cpus=2, object_store_mb=256)
        try:
            embed_with_ray([], backbone, tmp_path, progress=False)
        finally:
            ray.shutdown()
    with pytest.raises(RuntimeError, match="start_ray"):
        embed_with_ray(["x.jpg"], backbone, tmp_path, progress=False)


def _brute_force_pairs(x, ids, threshold):
    """Oracle: every (i, j), i < j, i or j a query, with cosine >= threshold, from the full matrix."""
    s = x @ x.T
    i, j = np.nonzero(np.triu(s >= threshold, k=1))
    keep = np.isin(i, ids) | np.isin(j, ids)
    return np.stack([i[keep], j[keep]], axis=1)


def test_range_pairs_flat_equals_brute_force():
    rng = np.random.default_rng(0)
    x = unit_rows(rng.standard_normal((600, 16)).astype(np.float32))
    ids = np.arange(0, 600, 7)
    expected = _brute_force_pairs(x, ids, 0.6)
    got = range_pairs(build_flat(x), x[ids], ids, 0.6)
    assert len(expected) > 10
    np.testing.assert_array_equal(got, expected)
    assert pair_recall(got, expected) == 1.0


def test_ivf_recall_grows_with_nprobe_and_is_exact_at_all_cells():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((20, 32))
    noise = 0.4 * rng.standard_normal((3000, 32))
    x = unit_rows((centres[rng.integers(0, 20, 3000)] + noise).astype(np.float32))
    ids = np.arange(0, 3000, 10)
    exact = range_pairs(build_flat(x), x[ids], ids, 0.9)
    ivf = build_ivf(x, nlist=32)
    recalls = []
    for nprobe in (1, 4, 32):
        ivf.nprobe = nprobe
        recalls.append(pair_recall(range_pairs(ivf, x[ids], ids, 0.9), exact))
    assert recalls == sorted(recalls) and recalls[-1] == 1.0 and recalls[0] < 1.0


def test_pair_recall_hand_computed():
    exact = np.array([[0, 1], [2, 3], [4, 5], [6, 7]])
    assert pair_recall(np.array([[0, 1], [4, 5], [8, 9]]), exact) == 0.5
    assert pair_recall(np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64)) == 1.0


def test_synthetic_collection_repeats_the_real_pairs_and_nothing_else():
    rng = np.random.default_rng(2)
    real = np.abs(rng.standard_normal((200, 64))).astype(np.float32)
    real[100:150] = real[:50] + 0.1 * np.abs(rng.standard_normal((50, 64)))
    vectors, world = synthetic_collection(real, copies=5, seed=3)
    assert vectors.shape == (1000, 64) and np.bincount(world).tolist() == [200] * 5
    real_pairs = _brute_force_pairs(unit_rows(real), np.arange(200), 0.95)
    expected = np.concatenate([real_pairs + 200 * w for w in range(5)])
    got = _brute_force_pairs(vectors, np.arange(1000), 0.95)
    assert len(real_pairs) >= 50
    np.testing.assert_array_equal(got, expected[np.lexsort((expected[:, 1], expected[:, 0]))])
