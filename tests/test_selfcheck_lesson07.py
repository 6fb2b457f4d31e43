"""Lesson 07's self-checks (embedkit.selfcheck.lesson07): each accepts the lesson's model answer,
stands in while the exercise returns None, and rejects the mistakes a learner makes.

No test starts Ray: the actor is run here, in this process, as the lesson's check runs it, and the
pipeline's dry run reads through a stand-in for ``ray.data.read_binary_files``.
"""

import io
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from PIL import Image, ImageOps

import embedkit.backbones
import embedkit.distributed
from embedkit.backbones import load_backbone
from embedkit.distributed import model_input, pixels_from_bytes
from embedkit.embeddings import embed_images, resize_target
from embedkit.images import MAX_ASPECT_RATIO, as_rgb
from embedkit.selfcheck import is_stand_in
from embedkit.selfcheck import lesson07 as checks
from embedkit.variants import make_bad_files

faiss = pytest.importorskip("faiss")
pytest.importorskip("ray.data")
import ray  # noqa: E402 (ray.data, imported above, is reached as ray.data)


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """FAISS on one thread: on a busy machine its threads wait for one another far longer than they work."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def _not_done(capsys):
    out = capsys.readouterr().out
    assert "Not done yet" in out
    return out


def _correct(capsys):
    out = capsys.readouterr().out
    assert "Correct!" in out
    return out


# --------------------------------------------------------------------------- the cost model: the lesson's
# answer reads these globals, as in the notebook; the check binds other values while it runs.

ACTORS, DECODE_CORES, d = 2, 1, 512


def embed_cost(t_dec, t_fwd):
    return max(t_fwd / ACTORS, t_dec / DECODE_CORES)


def predicted_seconds(n, t_emb, c):
    return n * t_emb, c * n**2 * d


def embed_cost_summed(t_dec, t_fwd):  # both sides' times added: they work at the same time
    return t_fwd / ACTORS + t_dec / DECODE_CORES


def embed_cost_this_plan(t_dec, t_fwd):  # this machine's numbers written in, not the plan's names
    return max(t_fwd / 2, t_dec / 1)


def predicted_distinct_pairs(n, t_emb, c):  # n(n-1)/2 pairs, but c was measured on n^2 comparisons
    return n * t_emb, c * n * (n - 1) / 2 * d


def predicted_one_value(n, t_emb, c):  # the fastest measurement only: one number, not one per measurement
    return n * np.min(t_emb), np.min(c) * n**2 * d


def cost_stub(*args):
    return None


def test_cost_model_right_answer_passes(capsys):
    got = checks.check_cost_model(embed_cost, predicted_seconds, 2, 1, 512, 0.001, 0.02)
    assert got == (embed_cost, predicted_seconds)
    assert "t_emb = 10.0 ms/image" in _correct(capsys)
    assert (ACTORS, DECODE_CORES, d) == (2, 1, 512)  # put back


def test_cost_model_stub_gets_the_lessons_model(capsys):
    cost, seconds = checks.check_cost_model(cost_stub, cost_stub, 4, 2, 8, 0.001, 0.02)
    _not_done(capsys)
    assert is_stand_in(cost) and is_stand_in(seconds)
    assert cost(0.010, 0.020) == pytest.approx(0.005)
    np.testing.assert_allclose(
        seconds(10, np.array([1.0, 2.0]), np.array([1.0, 1.0])), [[10, 20], [800, 800]]
    )
    again = checks.check_cost_model(cost, seconds, 4, 2, 8, 0.001, 0.02)  # a second run of the cell
    _not_done(capsys)
    assert all(map(is_stand_in, again))


@pytest.mark.parametrize(
    "wrong",
    [
        (embed_cost_summed, predicted_seconds),
        (embed_cost_this_plan, predicted_seconds),
        (embed_cost, predicted_distinct_pairs),
        (embed_cost, predicted_one_value),
    ],
    ids=["sum-of-sides", "plan-written-in", "distinct-pairs", "one-value"],
)
def test_cost_model_wrong_answers_fail(wrong):
    with pytest.raises(AssertionError):
        checks.check_cost_model(*wrong, 2, 1, 512, 0.001, 0.02)
    assert (ACTORS, DECODE_CORES, d) == (2, 1, 512)


# --------------------------------------------------------------------------- exercise 1: decoding


@pytest.fixture(scope="module")
def decoding(backbone, manifest, tmp_path_factory):
    """(transform, a photo, the three bad files, a folder, to_pixels variants by name)."""
    side, preprocess = resize_target(backbone), backbone.preprocess

    def solution(data):
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            image = ImageOps.exif_transpose(image)
            return preprocess(as_rgb(image, min_side=side, max_aspect_ratio=MAX_ASPECT_RATIO)).numpy()

    def ignores_aspect_ratio(data):  # decodes a strip embed_images refuses
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            image = ImageOps.exif_transpose(image)
            return preprocess(as_rgb(image, min_side=side)).numpy()

    def not_upright(data):  # forgets the EXIF orientation
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            return preprocess(as_rgb(image, min_side=side)).numpy()

    def plain_convert(data):  # convert("RGB"): transparent parts show what lay under them
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            return preprocess(ImageOps.exif_transpose(image).convert("RGB")).numpy()

    def drafts_to_the_crop(data):  # draft to the network's input size, not to SIDE, the resize side
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (224, 224))
            image = ImageOps.exif_transpose(image)
            return preprocess(as_rgb(image, min_side=side, max_aspect_ratio=MAX_ASPECT_RATIO)).numpy()

    def no_draft(data):  # decodes a JPEG in full, then reduces it
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            return preprocess(as_rgb(image, min_side=side, max_aspect_ratio=MAX_ASPECT_RATIO)).numpy()

    def draft_too_late(data):  # exif_transpose has read every pixel: the draft changes nothing
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            image.draft("RGB", (side, side))
            return preprocess(as_rgb(image, min_side=side, max_aspect_ratio=MAX_ASPECT_RATIO)).numpy()

    def swallows_errors(data):  # a bad file gets zeros instead of an exception
        try:
            return solution(data)
        except Exception:
            return np.zeros((3, side, side), np.float32)

    def calls_the_package(data):
        return pixels_from_bytes(data, transform)

    transform = model_input(backbone)
    root = tmp_path_factory.mktemp("decoding")
    bad = [str(p) for p in make_bad_files(root / "bad", manifest["file"][0])]
    photo = manifest.loc[manifest["transformation"] == "original", "file"].iloc[0]
    variants = {
        f.__name__: f
        for f in (
            solution,
            ignores_aspect_ratio,
            not_upright,
            plain_convert,
            drafts_to_the_crop,
            no_draft,
            draft_too_late,
            swallows_errors,
            calls_the_package,
        )
    }
    return transform, photo, bad, root / "check", variants


def test_to_pixels_right_answer_passes(decoding, capsys):
    transform, photo, bad, folder, variants = decoding
    assert checks.check_to_pixels(variants["solution"], transform, photo, bad, folder) is variants["solution"]
    _correct(capsys)


def test_to_pixels_stub_gets_the_packages_decoding(decoding, capsys):
    transform, photo, bad, folder, _ = decoding
    got = checks.check_to_pixels(lambda data: None, transform, photo, bad, folder)
    _not_done(capsys)
    assert is_stand_in(got)
    data = Path(photo).read_bytes()
    np.testing.assert_array_equal(got(data), pixels_from_bytes(data, transform))
    assert checks.check_to_pixels(got, transform, photo, bad, folder) is got
    _not_done(capsys)


@pytest.mark.parametrize(
    "wrong",
    [
        "ignores_aspect_ratio",
        "not_upright",
        "plain_convert",
        "drafts_to_the_crop",
        "swallows_errors",
        "calls_the_package",
    ],
)
def test_to_pixels_wrong_answers_fail(decoding, wrong):
    transform, photo, bad, folder, variants = decoding
    with pytest.raises(AssertionError):
        checks.check_to_pixels(variants[wrong], transform, photo, bad, folder)


@pytest.mark.parametrize("wrong", ["no_draft", "draft_too_late"])
def test_to_pixels_without_draft_is_told_about_draft(decoding, wrong):
    transform, photo, bad, folder, variants = decoding
    with pytest.raises(AssertionError, match=r"very large JPEG.*decoded in full.*image\.draft"):
        checks.check_to_pixels(variants[wrong], transform, photo, bad, folder)


# --------------------------------------------------------------------------- exercise 2: the actor


def to_table(batch, vectors):  # the lesson's, given
    flat_floats = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1))
    return pa.table(
        {
            "path": batch["path"],
            "error": batch["error"],
            "embedding": pa.FixedSizeListArray.from_arrays(flat_floats, vectors.shape[1]),
            "decoded_at": batch["decoded_at"],
            "embedded_at": np.full(len(vectors), time.time()),
            "threads": np.full(len(vectors), torch.get_num_threads()),
        }
    )


class Embedder:  # the lesson's solution
    def __init__(self, network, device, threads):
        torch.set_num_threads(threads)
        self.backbone = load_backbone(network, device=device)

    def __call__(self, batch):
        ok = batch["error"] == ""
        vectors = np.zeros((len(ok), self.backbone.dim), dtype=np.float32)
        if ok.any():
            with torch.inference_mode():
                x = self.backbone.as_input(torch.from_numpy(batch["pixels"][ok]))
                vectors[ok] = self.backbone.model(x).float().cpu().numpy()
        return to_table(batch, vectors)


class LoadsInCall(Embedder):  # the network loaded again for every batch
    def __init__(self, network, device, threads):
        torch.set_num_threads(threads)
        self.network, self.device = network, device

    def __call__(self, batch):
        self.backbone = load_backbone(self.network, device=self.device)
        return super().__call__(batch)


class WithGradients(Embedder):  # no inference_mode: PyTorch builds a graph for every batch
    def __call__(self, batch):
        ok = batch["error"] == ""
        vectors = np.zeros((len(ok), self.backbone.dim), dtype=np.float32)
        x = self.backbone.as_input(torch.from_numpy(batch["pixels"][ok]))
        vectors[ok] = self.backbone.model(x).detach().float().cpu().numpy()
        return to_table(batch, vectors)


class IgnoresThreads(Embedder):  # the thread count left to the environment
    def __init__(self, network, device, threads):
        self.backbone = load_backbone(network, device=device)


class EmbedsBadRows(Embedder):  # the bad rows' zeros run through the network too
    def __call__(self, batch):
        with torch.inference_mode():
            x = self.backbone.as_input(torch.from_numpy(batch["pixels"]))
            vectors = self.backbone.model(x).float().cpu().numpy()
        vectors[batch["error"] != ""] = 0
        return to_table(batch, vectors)


class NoEmptyGuard(Embedder):  # the network run even when no row is good
    def __call__(self, batch):
        ok = batch["error"] == ""
        vectors = np.zeros((len(ok), self.backbone.dim), dtype=np.float32)
        with torch.inference_mode():
            x = self.backbone.as_input(torch.from_numpy(batch["pixels"][ok]))
            vectors[ok] = self.backbone.model(x).float().cpu().numpy()
        return to_table(batch, vectors)


class UsesTheNotebooksBackbone(Embedder):  # the notebook's global `backbone`, not the one it loaded
    def __call__(self, batch):
        self.backbone = backbone  # noqa: F821 (the notebook's global; absent here, as on a Ray worker)
        return super().__call__(batch)


class EmbedderStub:
    def __init__(self, network, device, threads):
        pass

    def __call__(self, batch):
        return None


@pytest.fixture(scope="module")
def actor_data(backbone, manifest, tmp_path_factory):
    """(decode as the lesson writes it, two bundled files and a bad one, embed_images' rows of the two)."""
    transform = model_input(backbone)
    shape = pixels_from_bytes(Path(manifest["file"][0]).read_bytes(), transform).shape

    def decode(batch):
        pixels = np.zeros((len(batch["bytes"]), *shape), dtype=np.float32)
        errors = []
        for i, data in enumerate(batch["bytes"]):
            try:
                pixels[i] = pixels_from_bytes(data, transform)
                errors.append("")
            except Exception as exc:
                errors.append(type(exc).__name__)
        return {
            "path": batch["path"],
            "pixels": pixels,
            "error": np.array(errors, dtype=object),
            "decoded_at": np.full(len(errors), time.time()),
        }

    good = manifest["file"].tolist()[:2]
    bad = [str(p) for p in make_bad_files(tmp_path_factory.mktemp("bad"), manifest["file"][0])]
    return decode, good + bad[:1], embed_images(good, backbone, progress=False).vectors


@pytest.fixture(scope="module")
def strict_network(backbone):
    """The network the actor check loads (it refuses a batch that skipped as_input), loaded once."""
    return load_backbone(backbone.requested, device="cpu", strict_input=True)


@pytest.fixture
def loaded_once(strict_network, monkeypatch):
    """The check's own load of the network gives the one loaded for the module (its spies are put back)."""
    monkeypatch.setattr(embedkit.backbones, "load_backbone", lambda *args, **kwargs: strict_network)


def test_embedder_right_answer_passes(loaded_once, actor_data, backbone, capsys):
    threads = torch.get_num_threads()
    assert checks.check_embedder(Embedder, *actor_data, backbone) is Embedder
    _correct(capsys)
    assert torch.get_num_threads() == threads and "backbone" not in globals()


def test_embedder_stub_gets_the_packages_actor(loaded_once, actor_data, backbone, capsys):
    got = checks.check_embedder(EmbedderStub, *actor_data, backbone)
    _not_done(capsys)
    assert got is checks.PackageEmbedder and is_stand_in(got)
    assert checks.check_embedder(got, *actor_data, backbone) is got
    _not_done(capsys)


@pytest.mark.parametrize(
    "wrong",
    [LoadsInCall, WithGradients, IgnoresThreads, EmbedsBadRows, NoEmptyGuard, UsesTheNotebooksBackbone],
)
def test_embedder_wrong_answers_fail(loaded_once, actor_data, backbone, wrong):
    with pytest.raises(AssertionError):
        checks.check_embedder(wrong, *actor_data, backbone)


# --------------------------------------------------------------------------- exercise 3: the pipeline

ACTOR_CPUS, ACTOR_GPUS, DECODE_CPUS, BATCH = 1, 0, 0.5, 4
EMBEDDER_ARGS = {"network": "resnet18", "device": "cpu", "threads": 1}


def decode(batch):  # the pipeline's step 2 (never run here)
    return batch


def embed_to_parquet(uris, out_dir):  # the lesson's solution
    (
        ray.data.read_binary_files(uris, include_paths=True)
        .map_batches(decode, batch_size=BATCH, num_cpus=DECODE_CPUS)
        .map_batches(
            Embedder,
            batch_size=BATCH,
            compute=ray.data.ActorPoolStrategy(size=ACTORS),
            num_cpus=ACTOR_CPUS,
            num_gpus=ACTOR_GPUS,
            fn_constructor_kwargs=EMBEDDER_ARGS,
        )
        .write_parquet(str(out_dir))
    )


def pipeline_autoscaling(uris, out_dir):  # no `compute`: Ray's own pool, not ACTORS actors
    (
        ray.data.read_binary_files(uris, include_paths=True)
        .map_batches(decode, batch_size=BATCH, num_cpus=DECODE_CPUS)
        .map_batches(
            Embedder,
            batch_size=BATCH,
            num_cpus=ACTOR_CPUS,
            num_gpus=ACTOR_GPUS,
            fn_constructor_kwargs=EMBEDDER_ARGS,
        )
        .write_parquet(str(out_dir))
    )


def pipeline_decoding_reserves_actor_cpus(uris, out_dir):  # the decoding tasks reserve what an actor does
    (
        ray.data.read_binary_files(uris, include_paths=True)
        .map_batches(decode, batch_size=BATCH, num_cpus=ACTOR_CPUS)
        .map_batches(
            Embedder,
            batch_size=BATCH,
            compute=ray.data.ActorPoolStrategy(size=ACTORS),
            num_cpus=ACTOR_CPUS,
            num_gpus=ACTOR_GPUS,
            fn_constructor_kwargs=EMBEDDER_ARGS,
        )
        .write_parquet(str(out_dir))
    )


def pipeline_collects(uris, out_dir):  # the rows brought into this process, then written by pandas
    rows = (
        ray.data.read_binary_files(uris, include_paths=True)
        .map_batches(decode, batch_size=BATCH, num_cpus=DECODE_CPUS)
        .map_batches(
            Embedder,
            batch_size=BATCH,
            compute=ray.data.ActorPoolStrategy(size=ACTORS),
            num_cpus=ACTOR_CPUS,
            num_gpus=ACTOR_GPUS,
            fn_constructor_kwargs=EMBEDDER_ARGS,
        )
        .to_pandas()
    )
    rows.to_parquet(Path(out_dir) / "rows.parquet")


def pipeline_without_paths(uris, out_dir):  # rows of bytes without a path
    (
        ray.data.read_binary_files(uris)
        .map_batches(decode, batch_size=BATCH, num_cpus=DECODE_CPUS)
        .map_batches(
            Embedder,
            batch_size=BATCH,
            compute=ray.data.ActorPoolStrategy(size=ACTORS),
            num_cpus=ACTOR_CPUS,
            num_gpus=ACTOR_GPUS,
            fn_constructor_kwargs=EMBEDDER_ARGS,
        )
        .write_parquet(str(out_dir))
    )


def pipeline_reads_the_notebooks_uris(paths, out_dir):  # the notebook's global `uris`, not its argument
    (
        ray.data.read_binary_files(uris, include_paths=True)  # noqa: F821 (the notebook's; set by the test)
        .map_batches(decode, batch_size=BATCH, num_cpus=DECODE_CPUS)
        .map_batches(
            Embedder,
            batch_size=BATCH,
            compute=ray.data.ActorPoolStrategy(size=ACTORS),
            num_cpus=ACTOR_CPUS,
            num_gpus=ACTOR_GPUS,
            fn_constructor_kwargs=EMBEDDER_ARGS,
        )
        .write_parquet(str(out_dir))
    )


def calls_the_packages_pipeline(uris, out_dir):
    embedkit.distributed.pipeline_to_parquet(uris, out_dir, decode, Embedder, EMBEDDER_ARGS)


def pipeline_stub(uris, out_dir): ...


@pytest.fixture
def no_ray(monkeypatch):
    """read_binary_files gives a Dataset that holds nothing, so no Ray starts (the dry run runs no step)."""

    def read(*args, **kwargs):
        dataset = object.__new__(ray.data.Dataset)
        dataset._current_executor = None
        return dataset

    monkeypatch.setattr(ray.data, "read_binary_files", read)


@pytest.fixture
def run(tmp_path):
    """Five files' rows as the pipeline writes them (the last file bad), and what the package gave."""
    files = [str(tmp_path / f"{k}.jpg") for k in range(5)]
    uris = [Path(f).resolve().as_uri() for f in files]
    vectors = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    paths = [str(Path(f).resolve()) for f in files]
    written = pd.DataFrame(
        {"path": paths, "error": [""] * 4 + ["ImageLoadError"], "embedding": [*map(list, vectors), [0.0] * 8]}
    ).iloc[[3, 0, 4, 2, 1]]  # shards finish in any order
    package = SimpleNamespace(
        embeddings=SimpleNamespace(paths=uris[:4], failed=[(uris[4], "not an image")], vectors=vectors)
    )
    return {
        "written": written,
        "package": package,
        "uris": uris,
        "files": files,
        "bad_files": files[4:],
        "reference": vectors[:2],
        "decode": decode,
        "Embedder": Embedder,
        "embedder_args": EMBEDDER_ARGS,
        "folder": tmp_path / "dry_run",
    }


def test_pipeline_right_answer_passes(no_ray, run, capsys):
    assert checks.check_pipeline(embed_to_parquet, **run) is embed_to_parquet
    _correct(capsys)
    assert (ACTORS, BATCH, EMBEDDER_ARGS["threads"]) == (2, 4, 1)  # put back


def test_pipeline_stand_in_compares_only_the_rows(run, capsys):
    stand = checks.stand_in(lambda uris, out_dir: None)
    assert checks.check_pipeline(stand, **run) is stand
    _not_done(capsys)


@pytest.mark.parametrize(
    "wrong",
    [pipeline_autoscaling, pipeline_decoding_reserves_actor_cpus, pipeline_collects, pipeline_without_paths],
)
def test_pipeline_wrong_answers_fail(no_ray, run, wrong):
    with pytest.raises(AssertionError):
        checks.check_pipeline(wrong, **run)


def test_pipeline_reading_the_notebooks_uris_fails(no_ray, run, monkeypatch):
    monkeypatch.setitem(globals(), "uris", run["uris"])
    with pytest.raises(AssertionError, match="its `uris`"):
        checks.check_pipeline(pipeline_reads_the_notebooks_uris, **run)


@pytest.mark.parametrize("change", ["a file twice", "a file missing", "a bad file embedded"])
def test_pipeline_wrong_rows_fail(no_ray, run, change):
    written = run["written"]
    if change == "a file twice":
        run["written"] = pd.concat([written, written.iloc[:1]])
    elif change == "a file missing":
        run["written"] = written.iloc[1:]
    else:
        run["written"] = written.assign(error="")
    with pytest.raises(AssertionError):
        checks.check_pipeline(embed_to_parquet, **run)


def test_run_pipeline_stub_runs_the_packages_pipeline(monkeypatch, tmp_path, capsys):
    calls = []

    def package_pipeline(uris, out_dir, *args, **kwargs):
        calls.append((args, kwargs))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"path": list(uris)}).to_parquet(Path(out_dir) / "0.parquet")

    monkeypatch.setattr(embedkit.distributed, "pipeline_to_parquet", package_pipeline)
    plan = {"actors": 2, "actor_cpus": 1, "actor_gpus": 0, "decode_cpus": 0.5, "batch_size": 4}
    got, start = checks.run_pipeline(
        pipeline_stub, ["file:///a.jpg"], tmp_path, decode, Embedder, EMBEDDER_ARGS, **plan
    )
    _not_done(capsys)
    assert is_stand_in(got) and start <= time.time()
    assert calls == [((decode, Embedder, EMBEDDER_ARGS), plan)]


def test_run_pipeline_keeps_a_pipeline_that_wrote_shards(tmp_path, capsys):
    def writes(uris, out_dir):
        pd.DataFrame({"path": list(uris)}).to_parquet(Path(out_dir) / "0.parquet")

    got, _ = checks.run_pipeline(writes, ["file:///a.jpg"], tmp_path, decode, Embedder, EMBEDDER_ARGS)
    assert got is writes and "Not done yet" not in capsys.readouterr().out


@pytest.mark.parametrize("ending", ["no write", "materialize", "another folder"])
def test_run_pipeline_that_read_but_wrote_no_shard_fails(no_ray, monkeypatch, tmp_path, ending):
    monkeypatch.setattr(ray.data.Dataset, "map_batches", lambda self, *args, **kwargs: self)
    monkeypatch.setattr(ray.data.Dataset, "materialize", lambda self: self)
    monkeypatch.setattr(
        ray.data.Dataset,
        "write_parquet",
        lambda self, path: pd.DataFrame({"a": [1]}).to_parquet(Path(path) / "0.parquet"),
    )

    def read_only(uris, out_dir):  # the steps chained, then no shard in out_dir
        steps = ray.data.read_binary_files(uris, include_paths=True).map_batches(decode, batch_size=BATCH)
        if ending == "materialize":
            steps.materialize()
        elif ending == "another folder":
            (Path(out_dir) / "x").mkdir()
            steps.write_parquet(str(Path(out_dir) / "x"))

    with pytest.raises(AssertionError, match=r"wrote no Parquet shard in out_dir.*write_parquet"):
        checks.run_pipeline(read_only, ["file:///a.jpg"], tmp_path, decode, Embedder, EMBEDDER_ARGS)


def test_run_pipeline_refuses_the_packages_pipeline(tmp_path):
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.run_pipeline(calls_the_packages_pipeline, ["file:///a.jpg"], tmp_path, decode, Embedder, {})


# --------------------------------------------------------------------------- exercise 4: the actor pool


def actors_for(cores, t_forward, t_decode):  # the lesson's solution
    return min(range(1, cores), key=lambda a: max(t_forward / a, t_decode / (cores - a)))


def rate_for(cores, t_forward, t_decode):
    a = actors_for(cores, t_forward, t_decode)
    return 1 / max(t_forward / a, t_decode / (cores - a))


def actors_where_sides_meet(cores, t_forward, t_decode):  # the continuous optimum, not a whole number
    return cores * t_forward / (t_forward + t_decode)


def actors_slowest(cores, t_forward, t_decode):  # max for min: the worst pool
    return max(range(1, cores), key=lambda a: max(t_forward / a, t_decode / (cores - a)))


def rate_summed(cores, t_forward, t_decode):  # both sides' rates added, not the slower side's
    a = actors_for(cores, t_forward, t_decode)
    return a / t_forward + (cores - a) / t_decode


def rate_in_seconds(cores, t_forward, t_decode):  # seconds per image, not images per second
    a = actors_for(cores, t_forward, t_decode)
    return max(t_forward / a, t_decode / (cores - a))


def test_pool_right_answer_passes(capsys):
    assert checks.check_pool(actors_for, rate_for, 0.05, 0.004) == (actors_for, rate_for)
    out = _correct(capsys)
    assert "16 cores: 14 actors" in out and "than decoding (10 ms), as on a GPU: 3 actors, 13 decoding" in out


def test_pool_stub_prints_the_lessons_plan(capsys):
    def stub(*args):
        return None

    got = checks.check_pool(stub, stub, 0.05, 0.004)
    out = _not_done(capsys)
    assert all(map(is_stand_in, got)) and got[0](16, 0.05, 0.004) == actors_for(16, 0.05, 0.004)
    assert (
        "the lesson's answer, not yours yet" in out.lower()
        and "16 cores: 14 actors" in out
        and "64 cores:" in out
    )
    assert checks.check_pool(*got, 0.05, 0.004) == got  # the cell run again
    assert "16 cores: 14 actors" in _not_done(capsys)


# --------------------------------------------------------------------------- written code that returns None
# fails (a forgotten `return`); only the untouched stub is "not done yet"


def _forgot_return(*args, **kwargs):
    args[0] if args else None  # noqa: B018 (works out something, returns nothing)


class EmbedderForgotReturn(Embedder):
    def __call__(self, batch):
        to_table(batch, np.zeros((len(batch["path"]), 4), dtype=np.float32))


def test_stub_detection():
    assert checks.is_stub(cost_stub) and checks.is_stub(pipeline_stub) and checks.is_stub(EmbedderStub)
    assert checks.is_stub(lambda table, target: None)
    assert not checks.is_stub(_forgot_return) and not checks.is_stub(Embedder)
    assert not checks.is_stub(EmbedderForgotReturn) and not checks.is_stub(embed_cost)


def test_forgotten_return_fails(collection, decoding, tmp_path):
    message = r"returned None: did you forget `return`\?"
    with pytest.raises(AssertionError, match=message):
        checks.check_cost_model(_forgot_return, predicted_seconds, 2, 1, 512, 0.001, 0.02)
    with pytest.raises(AssertionError, match=message):
        checks.check_cost_model(embed_cost, _forgot_return, 2, 1, 512, 0.001, 0.02)
    transform, photo, bad, folder, _ = decoding
    with pytest.raises(AssertionError, match=message):
        checks.check_to_pixels(_forgot_return, transform, photo, bad, folder)
    with pytest.raises(AssertionError, match=message):
        checks.check_pool(_forgot_return, rate_for, 0.05, 0.004)
    with pytest.raises(AssertionError, match=message):
        checks.check_pool(actors_for, _forgot_return, 0.05, 0.004)
    with pytest.raises(AssertionError, match=message):
        checks.check_ivf_index(_forgot_return, collection, 0.8, pairs_above)
    with pytest.raises(AssertionError, match=message):
        checks.check_choose_nprobe(_forgot_return)
    with pytest.raises(AssertionError, match=r"read nothing and wrote no Parquet shard"):
        checks.run_pipeline(_forgot_return, ["file:///a.jpg"], tmp_path, decode, Embedder, EMBEDDER_ARGS)


def test_embedder_forgotten_return_fails(loaded_once, actor_data, backbone):
    with pytest.raises(AssertionError, match=r"returned None: did you forget `return`\?"):
        checks.check_embedder(EmbedderForgotReturn, *actor_data, backbone)


@pytest.mark.parametrize(
    "wrong",
    [
        (actors_where_sides_meet, rate_for),
        (actors_slowest, rate_for),
        (actors_for, rate_summed),
        (actors_for, rate_in_seconds),
    ],
    ids=["continuous", "slowest", "rates-summed", "seconds"],
)
def test_pool_wrong_answers_fail(wrong):
    with pytest.raises(AssertionError):
        checks.check_pool(*wrong, 0.05, 0.004)


# --------------------------------------------------------------------------- exercise 5: the IVF index


def ivf_index(vectors, nlist, seed=0):  # the lesson's solution
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    sample = np.random.default_rng(seed).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)
    index.train(vectors[sample])
    index.add(vectors)
    return index


def ivf_trained_on_all(vectors, nlist, seed=0):  # no sample: k-means on every row
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = seed
    index.train(vectors)
    index.add(vectors)
    return index


def ivf_l2(vectors, nlist, seed=0):  # the metric left at FAISS's default, L2
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(vectors.shape[1]), vectors.shape[1], nlist)
    index.cp.seed = seed
    sample = np.random.default_rng(seed).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)
    index.train(vectors[sample])
    index.add(vectors)
    return index


def ivf_kmeans_seed_fixed(vectors, nlist, seed=0):  # the sample follows the seed, k-means' start does not
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
    )
    sample = np.random.default_rng(seed).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)
    index.train(vectors[sample])
    index.add(vectors)
    return index


def ivf_sample_with_repeats(vectors, nlist, seed=0):  # rng.integers: some rows drawn twice
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = seed
    index.train(vectors[np.random.default_rng(seed).integers(0, len(vectors), min(len(vectors), 40 * nlist))])
    index.add(vectors)
    return index


def pairs_above(index, vectors, queries, threshold):  # the lesson's, given
    lims, _, ids = index.range_search(vectors[queries], threshold)
    pairs = np.stack([np.repeat(queries, np.diff(lims).astype(np.int64)), ids], axis=1)
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    return np.unique(pairs, axis=0).reshape(-1, 2)


@pytest.fixture(scope="module")
def collection():
    """2,400 unit rows in 64 dimensions: 1,200 photos, two copies (cosine 0.92) of each of the first 600."""
    rng = np.random.default_rng(0)
    photos = rng.standard_normal((1200, 64))
    photos /= np.linalg.norm(photos, axis=1, keepdims=True)
    source = np.repeat(np.arange(600), 2)
    u = rng.standard_normal((len(source), 64))
    u -= (u * photos[source]).sum(1, keepdims=True) * photos[source]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    copies = 0.92 * photos[source] + np.sqrt(1 - 0.92**2) * u
    return np.concatenate([photos, copies]).astype(np.float32)


def test_ivf_right_answer_passes(collection, capsys):
    assert checks.check_ivf_index(ivf_index, collection, 0.8, pairs_above) is ivf_index
    _correct(capsys)


def test_ivf_stub_gets_the_packages_index(collection, capsys):
    got = checks.check_ivf_index(lambda vectors, nlist, seed=0: None, collection, 0.8, pairs_above)
    _not_done(capsys)
    assert is_stand_in(got) and got(collection, 16).ntotal == len(collection)
    assert checks.check_ivf_index(got, collection, 0.8, pairs_above) is got
    _not_done(capsys)


@pytest.mark.parametrize(
    "wrong", [ivf_trained_on_all, ivf_l2, ivf_kmeans_seed_fixed, ivf_sample_with_repeats]
)
def test_ivf_wrong_answers_fail(collection, wrong):
    train = faiss.IndexIVFFlat.train
    with pytest.raises(AssertionError):
        checks.check_ivf_index(wrong, collection, 0.8, pairs_above)
    assert faiss.IndexIVFFlat.train is train  # put back


# --------------------------------------------------------------------------- exercise 6: choosing nprobe


def choose_nprobe(table, target):  # the lesson's solution
    reached = table.loc[table["recall"] >= target, "nprobe"]
    return int(reached.min()) if len(reached) else None


def choose_strictly_above(table, target):  # > for >=: a recall equal to the target does not count
    reached = table.loc[table["recall"] > target, "nprobe"]
    return int(reached.min()) if len(reached) else None


def choose_first_row(table, target):  # the first row that reaches it, as if the table were sorted
    reached = table.loc[table["recall"] >= target, "nprobe"]
    return int(reached.iloc[0]) if len(reached) else None


def choose_numpy_int(table, target):  # pandas' .min() without int(): a NumPy integer
    reached = table.loc[table["recall"] >= target, "nprobe"]
    return reached.min() if len(reached) else None


def choose_largest_when_none(table, target):  # falls back to the largest nprobe tried
    reached = table.loc[table["recall"] >= target, "nprobe"]
    return int(reached.min()) if len(reached) else int(table["nprobe"].max())


def choose_rounded(table, target):  # rounds 0.988 up to 0.99
    reached = table.loc[table["recall"].round(2) >= target, "nprobe"]
    return int(reached.min()) if len(reached) else None


def test_choose_nprobe_right_answer_passes(capsys):
    assert checks.check_choose_nprobe(choose_nprobe) is choose_nprobe
    _correct(capsys)


def test_choose_nprobe_stub_gets_the_packages_rule(capsys):
    got = checks.check_choose_nprobe(lambda table, target: None)
    _not_done(capsys)
    assert is_stand_in(got)
    assert got(pd.DataFrame({"nprobe": [4, 1, 2], "recall": [1.0, 0.5, 0.99]}), 0.99) == 2


@pytest.mark.parametrize(
    "wrong",
    [choose_strictly_above, choose_first_row, choose_numpy_int, choose_largest_when_none, choose_rounded],
)
def test_choose_nprobe_wrong_answers_fail(wrong):
    with pytest.raises(AssertionError):
        checks.check_choose_nprobe(wrong)


# --------------------------------------------------------------------------- the given verdicts


def test_ratio_verdict_inside_the_band():
    assert checks.ratio_verdict([1.08, 1.05, 0.9]) == (
        "measured / predicted time 0.90 to 1.08: within 25% of the model, on both sides of predicted"
    )


def test_ratio_verdict_outside_the_band():
    assert checks.ratio_verdict([1.4, 1.5, 1.6]) == (
        "measured / predicted time 1.40 to 1.60: more than 25% off the model, slower than predicted"
    )


def test_ratio_verdict_straddling_the_band_says_the_cost_moved_once():
    line = checks.ratio_verdict([1.08, 1.08, 1.50])
    assert line == (
        "measured / predicted time 1.08 to 1.50: partly within 25%; the in-process cost itself moved by 39% "
        "between measurements, so this run cannot separate overhead from load"
    )
    assert line.count("verdict") == 0 and "\n" not in line
    assert "cannot separate" in checks.ratio_verdict([0.7, 1.3])  # both sides, none inside


def _report(capsys, waiting_rows, row_mb=0.58, store_mb=256.0, forward_runs=(0.02, 0.021, 0.05), pause=0.0):
    """report_pipeline's lines on a made-up run: 2 s start-up, batches of 10 rows every 0.2 s (and one
    ``pause`` after the fifth), and ``waiting_rows`` rows decoded at once just before the first batch."""
    embedded = 2 + np.repeat(np.arange(10) * 0.2 + pause * (np.arange(10) >= 5), 10)
    decoded = np.sort(np.r_[np.full(waiting_rows, 1.9), embedded[waiting_rows:] - 0.1])
    checks.report_pipeline(
        decoded,
        embedded,
        10,
        np.array([0.02, 0.021, 0.05]),
        ["before", "before", "after"],
        np.array([True, True, False]),
        np.array(forward_runs),
        True,
        1,
        1,
        [1],
        row_mb,
        store_mb,
    )
    return capsys.readouterr().out.splitlines()


def test_report_pipeline_compares_the_peak_with_a_steps_share(capsys):
    lines = _report(capsys, waiting_rows=80)  # 80 rows of 0.58 MB: 46 MB against 128 / 3 = 43 MB
    assert len(lines) == 4
    assert "load, left out" in lines[0] and "start-up 2 s" in lines[0]
    assert lines[3].startswith("at most 80 decoded rows (46 MB) waited at once: more than a step's share")
    assert "/ 3 steps = 43 MB" in lines[3] and "backpressure can hold" in lines[3]


def test_report_pipeline_prints_the_forward_pass_ratio_beside_the_totals(capsys):
    line = _report(capsys, waiting_rows=30)[2]
    assert line.endswith("actor / this process 0.95 to 1.00, the total's measured / predicted 0.95 to 1.00")


def test_report_pipeline_says_when_a_fast_forward_pass_and_pauses_offset(capsys):
    # the actor embeds at 0.02 s/image, this process measured 0.025: its forward pass is 20% faster than
    # modelled; a 0.4 s pause brings the total (2.2 s for 90 rows) back within 25% of 0.025 s/row
    lines = _report(capsys, waiting_rows=30, forward_runs=(0.025, 0.025, 0.05), pause=0.4)
    assert "actor / this process 0.80, the total's measured / predicted" in lines[2]
    assert lines[3].startswith("   so two effects offset") and "does not confirm t_fwd" in lines[3]
    assert len(lines) == 5


def test_report_pipeline_under_a_steps_share_cannot_tell(capsys):
    # the folder (100 rows, 58 MB) is larger than a step's share, yet the peak is not: no backpressure claim
    line = _report(capsys, waiting_rows=30)[3]
    assert line.startswith("at most 30 decoded rows (17 MB) waited at once: under a step's share")
    assert "cannot tell" in line


def test_compared_uses_the_band():
    assert [checks.compared(r) for r in (0.79, 0.8, 1.25, 1.26)] == [
        "faster than",
        "about as fast as",
        "about as fast as",
        "slower than",
    ]


def test_report_pipeline_forward_pass_uses_the_kept_measurements(capsys):
    # the third measurement is left out as load (its t_emb is over 1.5x the fastest): its forward pass, though
    # within 1.5x of the fastest forward pass, is left out too
    line = _report(capsys, waiting_rows=30, forward_runs=(0.02, 0.021, 0.025))[2]
    assert "20.0 to 21.0 in this process" in line


def _scaling_figure(monkeypatch, **counts):
    """plot_scaling's figure with two kept cost measurements, the n* band from those two."""
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda: None)
    checks.plot_scaling(
        lambda n, t, c: (n * t, c * np.asarray(n, dtype=float) ** 2 * 512),
        (0.012, 0.016),
        (16e-12, 18e-12),
        pipeline=(205, 10.0, 198, 3.5, 1.2),
        search=(np.array([1000, 2000]), np.array([0.01, 0.04]), np.array([1.1, 1.05])),
        n_stars=np.array([0.012 / (18e-12 * 512), 0.016 / (16e-12 * 512)]),
        device="this CPU",
        **counts,
    )
    fig = plt.gcf()
    plt.close(fig)
    return fig.axes[0]


def test_plot_scaling_title_counts_the_kept_measurements(monkeypatch):
    ax = _scaling_figure(monkeypatch, measurements=3, kept=2)
    assert ax.get_title().endswith("(bands: 2 of 3 measurements kept)")
    gray = [p for p in ax.patches if "n* =" in p.get_label()]
    assert len(gray) == 1 and gray[0].get_label().startswith("n* = 1,300,000 to 2,000,000")
    all_kept = _scaling_figure(monkeypatch, measurements=3)
    assert all_kept.get_title().endswith("(bands: 3 measurements kept)")


def test_pool_says_where_t_decode_was_timed(capsys):
    checks.check_pool(actors_for, rate_for, 0.05, 0.004)
    assert "t_decode was timed on small bundled files" in _correct(capsys)
