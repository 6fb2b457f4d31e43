"""Ray Data pipeline vs embed_images (same decode, same rows), bad files, Parquet, URIs, the plan
check, the stall guard, a two-node cluster; FAISS vs brute force."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

ray = pytest.importorskip("ray")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

from embedkit.ann import (  # noqa: E402
    build_flat,
    build_ivf,
    pair_recall,
    range_pairs,
    synthetic_collection,
    unit_rows,
)
from embedkit.distributed import (  # noqa: E402
    Node,
    PipelineStalled,
    PixelEmbedder,
    Plan,
    PlanError,
    decode_batch,
    decode_for_model,
    embed_with_ray,
    model_input,
    pipeline_to_parquet,
    pixels_from_bytes,
    plan_embedding,
    read_embeddings,
    start_ray,
    time_forward,
)
from embedkit.embeddings import ModelInput, embed_images, resize_target  # noqa: E402
from embedkit.images import ImageLoadError, load_rgb  # noqa: E402
from embedkit.variants import make_bad_files, make_variants  # noqa: E402


def _retry(start, tries=5):
    """Ray gives a node 30 s to register; on a busy machine a start can miss it and succeed next time."""
    for attempt in range(tries):
        try:
            return start()
        except Exception:
            ray.shutdown()
            if attempt == tries - 1:
                raise


@pytest.fixture(scope="module")
def ray_running():
    _retry(lambda: start_ray(num_cpus=2, object_store_mb=256))
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
    return embed_with_ray(
        paths, backbone, out, batch_size=4, rows_per_file=5, progress=False, decode_cpus=0.5, threads=2
    )


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


def test_pixels_from_bytes_is_decode_for_model_on_the_bytes(backbone, folder):
    paths, good, bad = folder
    transform = model_input(backbone)
    for path in good[:3] + good[-3:]:  # the large JPEG and edited copies among them
        got = pixels_from_bytes(Path(path).read_bytes(), transform)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, decode_for_model(path, transform).numpy())
    for path in bad:
        with pytest.raises(ImageLoadError):
            pixels_from_bytes(Path(path).read_bytes(), transform, path)


def _pixel_batch(datas, paths, backbone):
    """The decoding step of a lesson-style pipeline: bytes -> {path, pixels, error}, zeros for a bad file."""
    decoded, errors = [], []
    for data in datas:
        try:
            decoded.append(pixels_from_bytes(data, model_input(backbone)))
            errors.append("")
        except ImageLoadError:
            decoded.append(None)
            errors.append("ImageLoadError")
    shape = next(x.shape for x in decoded if x is not None)
    pixels = np.stack([np.zeros(shape, np.float32) if x is None else x for x in decoded])
    return {
        "path": np.asarray(paths, dtype=object),
        "pixels": pixels,
        "error": np.array(errors, dtype=object),
    }


def test_pixel_embedder_gives_embed_images_rows_and_zeros_for_bad_rows(backbone, folder):
    _, good, bad = folder
    paths = good[:4] + bad[:1]
    datas = [Path(p).read_bytes() for p in paths]
    batch = {**_pixel_batch(datas, paths, backbone), "decoded_at": np.full(len(paths), 1.5)}
    table = PixelEmbedder(backbone.requested, "cpu", 1)(batch)
    assert table.column_names == ["path", "error", "embedding", "decoded_at", "embedded_at"]
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    single = embed_images(good[:4], backbone, progress=False)
    np.testing.assert_allclose(got[:4], single.vectors, rtol=1e-4, atol=1e-5)
    assert not got[4].any() and table.column("error").to_pylist()[4] == "ImageLoadError"
    assert table.column("decoded_at").to_pylist() == [1.5] * 5


@pytest.mark.slow
def test_pipeline_to_parquet_gives_the_package_rows(ray_running, ray_result, folder, backbone, tmp_path):
    paths, good, bad = folder

    transform = model_input(backbone)
    shape = pixels_from_bytes(Path(good[0]).read_bytes(), transform).shape

    def decode(batch):  # defined here, so Ray ships it by value (workers need not import this test module)
        pixels = np.zeros((len(batch["bytes"]), *shape), dtype=np.float32)
        errors = []
        for i, data in enumerate(batch["bytes"]):
            try:
                pixels[i] = pixels_from_bytes(data, transform)
                errors.append("")
            except ImageLoadError:
                errors.append("ImageLoadError")
        return {"path": batch["path"], "pixels": pixels, "error": np.array(errors, dtype=object)}

    uris = [_uri(p) for p in paths]
    pipeline_to_parquet(
        uris, tmp_path / "out", decode, PixelEmbedder, {"network": backbone.requested}, batch_size=4
    )
    frame = pd.read_parquet(tmp_path / "out").set_index("path")
    assert sorted(frame.index) == sorted(str(Path(p).resolve()) for p in paths)  # each file once
    assert sorted(frame.index[frame["error"] != ""]) == sorted(str(Path(p).resolve()) for p in bad)
    vectors = np.stack(frame.loc[[str(Path(p).resolve()) for p in good], "embedding"].to_numpy())
    np.testing.assert_allclose(vectors, ray_result.embeddings.vectors, rtol=0, atol=1e-4)


def test_decode_is_the_reduced_size_decode_of_embed_images(backbone, big_jpeg):
    transform = model_input(backbone)
    assert transform.min_side == resize_target(backbone)
    reduced = decode_for_model(big_jpeg, transform)
    full = backbone.preprocess(load_rgb(big_jpeg))
    assert reduced.shape == full.shape
    assert 1e-3 < float((reduced - full).abs().max())  # a full decode would not match embed_images
    same = ModelInput(backbone.preprocess, resize_target(backbone))(big_jpeg)  # what embed_images runs
    assert torch.equal(reduced, same)


def _uri(path) -> str:
    return Path(path).resolve().as_uri()


def test_uri_decode_equals_path_decode(backbone, folder, tmp_path):
    paths, _, _ = folder
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # a JPEG's start, then noise
    spaced = tmp_path / "a name with spaces.jpg"  # its URI spells each space %20
    spaced.write_bytes(Path(paths[0]).read_bytes())
    local = [*paths, str(spaced), str(tmp_path / "missing.jpg"), str(tmp_path), str(corrupt)]
    transform = model_input(backbone)
    shape = tuple(decode_for_model(paths[0], transform).shape)
    index = np.arange(len(local))
    from_paths = decode_batch({"index": index, "path": np.array(local, dtype=object)}, transform, shape)
    from_uris = decode_batch(
        {"index": index, "path": np.array([_uri(p) for p in local], dtype=object)}, transform, shape
    )
    np.testing.assert_array_equal(from_uris["pixels"], from_paths["pixels"])  # same decoder, same bytes
    assert from_uris["error"].tolist() == from_paths["error"].tolist()
    assert from_paths["error"].tolist()[-3:] == [
        "file not found",
        "is a folder, not an image file",
        "corrupt JPEG file (it starts like one, but its header is damaged)",
    ]


def test_time_forward_names_the_device(backbone):
    timing = time_forward(backbone, batch_size=2, repeats=1)
    assert timing.device.startswith("cpu (") and timing.batch_size == 2
    assert timing.seconds_per_image > 0 and "ms/image" in str(timing)


TWO_ONE_CPU_NODES = [Node("a", 1), Node("b", 1)]


def test_plan_refuses_actors_that_leave_no_cpu_for_decoding():
    with pytest.raises(PlanError) as refused:
        plan_embedding(concurrency=2, num_cpus=1, decode_cpus=0.25, nodes=TWO_ONE_CPU_NODES)
    message = str(refused.value)
    assert "\n" not in message and "no node 0.25 CPU for the decoding tasks" in message
    # what would fit, by hand: one actor of 1 CPU (the other node decodes), or two of 0.75
    assert message.endswith("use concurrency=1 or num_cpus=0.75")
    assert plan_embedding(concurrency=1, num_cpus=1, decode_cpus=0.25, nodes=TWO_ONE_CPU_NODES).num_cpus == 1
    assert (
        plan_embedding(concurrency=2, num_cpus=0.75, decode_cpus=0.25, nodes=TWO_ONE_CPU_NODES).concurrency
        == 2
    )


def test_plan_chooses_what_was_left_out_and_says_so():
    assert plan_embedding(nodes=TWO_ONE_CPU_NODES) == Plan(1, 1.0, 0.0, 0.5)  # defaults fit: no note
    chosen = plan_embedding(concurrency=2, nodes=TWO_ONE_CPU_NODES)
    assert (chosen.num_cpus, chosen.decode_cpus) == (0.75, 0.25)  # 0.75 + 0.25 fills each node
    assert "chose num_cpus=0.75 and decode_cpus=0.25" in chosen.note
    three = plan_embedding(concurrency=3, nodes=TWO_ONE_CPU_NODES)  # 3 x 0.5 + 0.5 = 2 CPUs
    assert (three.num_cpus, three.decode_cpus) == (0.5, 0.5) and "decode_cpus" not in three.note
    with pytest.raises(PlanError, match="do not fit"):
        plan_embedding(concurrency=9, nodes=TWO_ONE_CPU_NODES)  # 9 x 0.25 > 2 CPUs


def test_an_actor_must_fit_on_one_node():
    # two CPUs in all, but no node has two
    with pytest.raises(PlanError, match="fits on no node"):
        plan_embedding(num_cpus=2, decode_cpus=0.5, nodes=TWO_ONE_CPU_NODES)
    with pytest.raises(PlanError, match="leave no node 0.5 CPU"):
        plan_embedding(num_cpus=2, decode_cpus=0.5, nodes=[Node("a", 2)])
    assert plan_embedding(num_cpus=2, decode_cpus=0.5, nodes=[Node("a", 2), Node("b", 1)]).num_cpus == 2


def test_plan_counts_gpus_per_node():
    nodes = [Node("head", 8), Node("g1", 16, 2), Node("g2", 16, 2)]
    assert plan_embedding(concurrency=4, num_gpus=1, nodes=nodes) == Plan(4, 1.0, 1.0, 0.5)
    assert plan_embedding(concurrency=8, num_gpus=0.5, nodes=nodes).concurrency == 8  # two actors per GPU
    with pytest.raises(PlanError, match="use concurrency=4$"):
        plan_embedding(concurrency=5, num_gpus=1, nodes=nodes)
    with pytest.raises(PlanError, match="num_gpus=0"):
        plan_embedding(num_gpus=1, nodes=TWO_ONE_CPU_NODES)


def test_importing_the_module_leaves_the_environment_alone():
    # A fresh interpreter: the module's own imports first, then the module, then start_ray's settings.
    code = (
        "import json, os, sys\n"
        "import numpy, pandas, pyarrow, torch, PIL.Image\n"
        "import embedkit.backbones, embedkit.embeddings, embedkit.images\n"
        "before = dict(os.environ)\n"
        "import embedkit.distributed\n"
        "json.dump([before == dict(os.environ), embedkit.distributed.RAY_ENVIRONMENT], sys.stdout)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NOTEBOOKS), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    unchanged, settings = json.loads(result.stdout)
    assert unchanged and settings  # start_ray sets them, not the import


@pytest.mark.parametrize(
    "bad", [{"concurrency": 0}, {"concurrency": 1.5}, {"decode_cpus": 0}, {"num_cpus": -1}]
)
def test_plan_rejects_meaningless_values(bad):
    with pytest.raises(ValueError):
        plan_embedding(**bad, nodes=TWO_ONE_CPU_NODES)


@pytest.mark.slow
def test_file_uris_give_the_same_rows_and_reasons(ray_result, folder, backbone, tmp_path):
    paths, good, bad = folder
    uris = [_uri(p) for p in paths]
    result = embed_with_ray(
        uris, backbone, tmp_path, batch_size=4, progress=False, decode_cpus=0.5, threads=2
    )
    assert result.embeddings.paths == [_uri(p) for p in good]
    np.testing.assert_allclose(result.embeddings.vectors, ray_result.embeddings.vectors, rtol=0, atol=1e-5)
    by_path = {_uri(p): reason for p, reason in ray_result.embeddings.failed}
    assert dict(result.embeddings.failed) == by_path and len(by_path) == len(bad)
    assert result.plan == Plan(1, 1.0, 0.0, 0.5)  # the defaults fit two CPUs: nothing chosen
    assert sum(result.embed_nodes.values()) == sum(result.decode_nodes.values()) == len(paths)


@pytest.mark.slow
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


# --------------------------------------------------------------------------- two nodes


def _two_node_cluster():
    """Two Ray nodes of one CPU each on this machine."""
    from ray.cluster_utils import Cluster

    cluster = Cluster()
    try:
        cluster.add_node(num_cpus=1, object_store_memory=100 * 1024**2, include_dashboard=False)
        cluster.add_node(num_cpus=1, object_store_memory=100 * 1024**2)
        cluster.wait_for_nodes()
    except Exception:
        cluster.shutdown()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster():
    """Ray connected to a two-node cluster, as a user connects to one: start_ray(address=...)."""
    ray.shutdown()  # the local Ray of the tests above, if it still runs
    nodes = _retry(_two_node_cluster)
    try:
        start_ray(address=nodes.address)
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()


@pytest.fixture(scope="module")
def train_files(manifest):
    return manifest.loc[manifest["split"] == "train", "file"].tolist()[:40]


@pytest.mark.slow
def test_cluster_refuses_a_plan_that_leaves_no_cpu_for_decoding(cluster, backbone, train_files, tmp_path):
    assert sorted(n["Resources"]["CPU"] for n in ray.nodes() if n["Alive"]) == [1.0, 1.0]
    out = tmp_path / "never"
    with pytest.raises(PlanError, match="use concurrency=1 or num_cpus=0.75"):
        embed_with_ray(
            train_files, backbone, out, concurrency=2, num_cpus=1, decode_cpus=0.25, progress=False
        )
    assert not out.exists()  # refused before anything ran


@pytest.mark.slow
def test_cluster_stops_a_stalled_pipeline(cluster, backbone, train_files, tmp_path):
    # The same plan without the check: the actors hold both CPUs and nothing is ever decoded.
    with pytest.raises(PipelineStalled, match=r"no progress for 10 s with 40 of 40 files left") as stalled:
        embed_with_ray(
            train_files,
            backbone,
            tmp_path,
            concurrency=2,
            num_cpus=1,
            decode_cpus=0.25,
            progress=False,
            check_plan=False,
            stall_timeout_s=10,
        )
    assert "2 embedding actors × 1 CPU, decoding tasks × 0.25 CPU" in str(stalled.value)


@pytest.mark.slow
def test_cluster_embeds_on_both_nodes_the_rows_of_embed_images(cluster, backbone, train_files, tmp_path):
    with pytest.warns(UserWarning, match="chose num_cpus=0.75 and decode_cpus=0.25"):
        result = embed_with_ray(
            train_files,
            backbone,
            tmp_path,
            concurrency=2,
            threads=1,
            batch_size=4,
            rows_per_file=20,
            progress=False,
        )
    assert result.plan == Plan(2, 0.75, 0.0, 0.25, result.plan.note)
    node_ids = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(node_ids) == 2 and set(result.embed_nodes) == node_ids  # an actor on each node did work
    assert sum(result.embed_nodes.values()) == len(train_files)
    assert set(result.decode_nodes) <= node_ids and sum(result.decode_nodes.values()) == len(train_files)
    single = embed_images(train_files, backbone, progress=False)
    assert result.embeddings.paths == single.paths == train_files
    np.testing.assert_allclose(result.embeddings.vectors, single.vectors, rtol=0, atol=1e-4)
    assert len(result.files) == 2  # 40 rows in shards of at least 20
