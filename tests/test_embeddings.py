"""embed_images: shapes, row bookkeeping, batch independence, bad files, saving."""

import dataclasses
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import PEAK_KIB_SOURCE
from embedkit import embeddings as embeddings_mod
from embedkit.backbones import Backbone
from embedkit.embeddings import (
    PRECISION_VAR,
    Embeddings,
    EmbeddingsFileError,
    PrecisionFidelity,
    bfloat16_supported,
    default_batch_size,
    default_precision,
    embed_images,
    embed_prepared,
    fold_batch_norms,
    forward_batch,
    precision_fidelity,
    resize_target,
    resolve_precision,
)
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


# ---------------------------------------------------------------- inputs and arguments


def test_a_folder_or_a_file_given_as_a_string_or_path(backbone, files, tmp_path):
    for i, f in enumerate(files[:3]):
        shutil.copy(f, tmp_path / f"{i}{Path(f).suffix}")
    folder = embed_images(str(tmp_path), backbone, progress=False)
    assert folder.paths == [str(p) for p in sorted(tmp_path.iterdir())] and folder.failed == []
    one = embed_images(files[0], backbone, progress=False)
    assert one.paths == [files[0]] and one.shape == (1, backbone.dim)
    assert embed_images(Path(files[0]), backbone, progress=False).paths == [files[0]]


@pytest.mark.parametrize("bad", [None, 42, b"bytes"])
def test_nothing_iterable_to_embed_is_a_type_error(backbone, bad):
    with pytest.raises(TypeError, match="embed_images takes a folder"):
        embed_images(bad, backbone, progress=False)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_size": 2.5}, ValueError, "batch_size"),
        ({"batch_size": True}, ValueError, "batch_size"),
        ({"workers": -1}, ValueError, "workers"),
        ({"workers": 0}, ValueError, "workers"),
        ({"background": "white"}, TypeError, "background"),
        ({"background": None}, TypeError, "background"),
        ({"precision": "fp8"}, ValueError, "precision"),
    ],
)
def test_arguments_are_checked_before_any_work(backbone, kwargs, error, message):
    with pytest.raises(error, match=message):
        embed_images([Image.new("RGB", (8, 8))], backbone, progress=False, **kwargs)


def test_default_batch_size_is_the_backbones(backbone, files):
    sizes = []
    counting = dataclasses.replace(backbone, batch_size=3)
    counting.model = lambda batch: sizes.append(len(batch)) or backbone.model(batch)
    embed_images(files, counting, progress=False)
    assert sizes == [3, 3, 1]
    assert default_batch_size(counting) == 3


# ---------------------------------------------------------------- one bad file never loses the batch


def test_any_exception_in_a_decode_worker_is_reported_for_its_file(backbone, files):
    def preprocess(picture):
        if picture.size == (13, 13):
            raise MemoryError()
        if picture.size == (14, 14):
            raise RecursionError("deep")
        return backbone.preprocess(picture)

    fragile = dataclasses.replace(backbone, preprocess=preprocess)
    odd = [Image.new("RGB", size) for size in [(13, 13), (0, 0), (14, 14)]]
    items = [files[0], *odd, files[1]]
    with pytest.warns(UserWarning, match="skipped 3 of 5"):
        result = embed_images(items, fragile, batch_size=2, progress=False)
    assert result.paths == [files[0], files[1]]
    assert result.failed == [
        ("<image 1>", "not enough memory to decode and resize the image"),
        ("<image 2>", "image has no pixels (0x0)"),
        ("<image 3>", "RecursionError: deep"),
    ]


def test_embed_prepared_keeps_what_prepare_returns_beside_each_row(backbone, files, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    items = [files[0], str(tmp_path / "empty.jpg"), files[1], files[2]]

    def prepare(path):
        picture = load_rgb(path)
        if path == files[1]:
            raise RuntimeError("no room")
        return backbone.preprocess(picture), picture.size

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the caller reports failures: nothing is warned
        done = embed_prepared(items, backbone, prepare, batch_size=2, progress=False)
    assert done.rows == [0, 3] and done.embeddings.paths == [files[0], files[2]]
    assert done.extras == [load_rgb(files[0]).size, load_rgb(files[2]).size]
    assert done.embeddings.failed == [
        (items[1], "empty file (0 bytes)"),
        (files[1], "RuntimeError: no room"),
    ]
    reference = embed_images([files[0], files[2]], backbone, batch_size=2, progress=False)
    np.testing.assert_array_equal(done.embeddings.vectors, reference.vectors)  # the same batches
    assert done.forward_seconds > 0
    with pytest.raises(TypeError, match="list of files"):
        embed_prepared(files[0], backbone, prepare)


STRIPS_SCRIPT = (
    PEAK_KIB_SOURCE
    + """
import sys, warnings
from embedkit.backbones import load_backbone
from embedkit.embeddings import embed_images
warnings.simplefilter("ignore")
result = embed_images(sys.argv[1], load_backbone(device="cpu"), progress=False)
print(len(result), *[p.rsplit("/", 1)[-1] + "=" + r for p, r in result.failed], sep="\\n")
print(peak_kib() * 1024)
"""
)


def test_strips_are_named_the_good_rows_kept_and_memory_stays_bounded(files, tmp_path):
    for i, f in enumerate(files[:5]):
        shutil.copy(f, tmp_path / f"good_{i}{Path(f).suffix}")
    Image.new("L", (60_000, 1), 90).save(tmp_path / "wide.png")  # ~60 kB on disk
    Image.new("L", (1, 40_000), 90).save(tmp_path / "tall.png")
    run = subprocess.run(
        [sys.executable, "-c", STRIPS_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.split("\n")
    assert lines[0] == "5"  # every good file has its row
    failures = dict(line.split("=", 1) for line in lines[1:3])
    assert sorted(failures) == ["tall.png", "wide.png"]
    assert failures["wide.png"].startswith("extreme aspect ratio: 60000x1 is 60,000:1")
    peak = int(lines[3])
    assert peak < 2 * 1024**3, f"peak resident memory {peak / 1024**3:.1f} GiB"


# ---------------------------------------------------------------- real photos: reduced decoding


def _large_photo(seed: int, width: int, height: int) -> Image.Image:
    """A 12 MP photo-like image: smooth shapes from a small picture, plus per-pixel noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    smooth = Image.fromarray(small).resize((width // 8, height // 8), Image.Resampling.BICUBIC)
    pixels = np.asarray(smooth.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    pixels = pixels + rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def large_photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    exif = Image.Exif()
    exif[0x0112] = 6
    _large_photo(0, 4032, 3024).save(folder / "landscape.jpg", quality=90)
    _large_photo(1, 4032, 3024).save(folder / "sideways.jpg", quality=90, exif=exif)
    _large_photo(2, 3000, 4000).save(folder / "portrait.png")
    return sorted(str(p) for p in folder.iterdir())


def test_reduced_decoding_keeps_embeddings_of_large_photos(backbone, large_photos):
    fast = embed_images(large_photos, backbone, progress=False)
    full = torch.stack([backbone.preprocess(load_rgb(f)) for f in large_photos])
    with torch.inference_mode():
        reference = backbone.model(backbone.as_input(full)).numpy()
    cosine = (fast.vectors * reference).sum(1) / (
        np.linalg.norm(fast.vectors, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert fast.paths == large_photos and cosine.min() >= 0.99, cosine


def test_resize_target_is_read_from_the_preprocessing(backbone):
    from torchvision.models import ResNet50_Weights

    fake = dataclasses.replace(backbone, preprocess=ResNet50_Weights.IMAGENET1K_V2.transforms())
    assert resize_target(fake) == 232
    assert resize_target(dataclasses.replace(backbone, preprocess=lambda im: im, input_size=100)) == 200
    assert resize_target(backbone) > backbone.input_size  # resize, then centre-crop


# ---------------------------------------------------------------- decoding beside the network


def test_decoding_threads_use_one_torch_thread_and_change_no_one_elses(backbone, files):
    before = torch.get_num_threads()
    if before == 1:
        pytest.skip("needs a process whose torch uses more than one thread")
    torch.set_num_threads(before)  # as a user may have: new threads then start from this count
    inside = []

    def preprocess(picture):
        inside.append(torch.get_num_threads())
        return backbone.preprocess(picture)

    embed_images(files, dataclasses.replace(backbone, preprocess=preprocess), progress=False)
    later = []
    thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert set(inside) == {1}  # no OpenMP team per decoding thread
    assert torch.get_num_threads() == before and later == [before]  # the caller's, and new threads'


def _timeline(backbone, files, take_turns: bool) -> list[tuple[str, float, float]]:
    """``(kind, start, end)`` of every decode and forward pass (each lasts >= 20 ms), one decoding thread."""
    log = []

    def timed(kind, fn):
        def run(x):
            start = time.perf_counter()
            time.sleep(0.02)
            out = fn(x)
            log.append((kind, start, time.perf_counter()))
            return out

        return run

    slow = dataclasses.replace(backbone, preprocess=timed("decode", backbone.preprocess))
    slow.model = timed("forward", backbone.model)
    result = embed_images(files, slow, batch_size=2, workers=1, progress=False, decode_ahead=not take_turns)
    assert result.paths == files
    return log


def _overlaps(log) -> int:
    decodes = [(s, e) for kind, s, e in log if kind == "decode"]
    forwards = [(s, e) for kind, s, e in log if kind == "forward"]
    return sum(s1 < e2 and s2 < e1 for s1, e1 in decodes for s2, e2 in forwards)


def test_in_turns_nothing_is_decoded_while_the_network_runs(backbone, files):
    items = files * 2  # 14 items: turns of 4 (one thread decodes 4 per turn), batches of 2
    assert _overlaps(_timeline(backbone, items, take_turns=False)) > 0  # decoding ahead overlaps
    log = _timeline(backbone, items, take_turns=True)
    assert _overlaps(log) == 0
    first_forward_ends = min(e for kind, _, e in log if kind == "forward")
    later = [s for kind, s, _ in log if kind == "decode" and s > first_forward_ends]
    assert len(later) == len(items) - 4  # turns, not everything decoded up front


def test_in_turns_a_slow_file_does_not_idle_the_other_workers(backbone, files, monkeypatch):
    slow = Image.new("RGB", (301, 301), "gray")  # a large PNG, say
    items = [slow, *(files * 3)[:15]]
    log = []

    def preprocess(picture):
        start = time.perf_counter()
        time.sleep(0.4 if picture.size == (301, 301) else 0.02)
        log.append((picture.size == (301, 301), start, time.perf_counter()))
        return backbone.preprocess(picture)

    result = embed_images(
        items,
        dataclasses.replace(backbone, preprocess=preprocess),
        batch_size=2,
        workers=2,
        progress=False,
        decode_ahead=False,
    )  # turns of at least 8 files
    assert result.paths == ["<image 0>", *items[1:]]
    ((_, slow_start, slow_end),) = [entry for entry in log if entry[0]]
    meanwhile = sum(1 for is_slow, start, _ in log if not is_slow and slow_start <= start < slow_end)
    assert meanwhile > 7  # a barrier every 8 files would leave the other worker idle after 7


def test_a_forward_pass_that_raises_stops_the_decoding(backbone, manifest, monkeypatch):
    files = manifest["file"].tolist()[:12]  # more than the first batch and the window decoded ahead
    decoded = []

    def preprocess(picture):
        time.sleep(0.02)
        decoded.append(1)
        return backbone.preprocess(picture)

    at_failure = []

    def model(batch):
        at_failure.append(len(decoded))
        raise RuntimeError("out of memory on the device")

    broken = dataclasses.replace(backbone, preprocess=preprocess)
    broken.model = model
    with pytest.raises(RuntimeError, match="out of memory") as failure:
        embed_images(files, broken, batch_size=2, workers=1, progress=False, decode_ahead=True)
    time.sleep(0.5)  # what was still queued would be decoded by now
    # Its traceback is kept (as Jupyter keeps the last one), and with it embed_images' frame.
    assert failure.tb is not None
    # What the decoding thread did before the failure depends on how the threads were scheduled;
    # after it, at most the one file in progress is finished, and none of the rest is started.
    assert at_failure and at_failure[0] >= 2
    assert len(decoded) <= at_failure[0] + 1 < len(files)


@pytest.mark.parametrize(
    "device, cores, network_threads, workers, expected",
    [
        # The network's threads fill every core: one decoding thread per core, taking turns with it.
        ("cpu", 8, 8, None, (8, True)),
        ("cpu", 8, 8, 3, (3, True)),
        # More network threads than cores: still one decoding thread per core, taking turns.
        ("cpu", 4, 6, None, (4, True)),
        # 12 cores, the network uses 2: the 10 free cores decode ahead of it.
        ("cpu", 12, 2, None, (10, False)),
        ("cpu", 12, 2, 10, (10, False)),
        ("cpu", 12, 2, 11, (11, True)),  # one thread more than the free cores: take turns
        # 40 cores, 4 for the network: 36 free, capped at 16 decoding threads.
        ("cpu", 40, 4, None, (16, False)),
        # The network runs on an accelerator: every core decodes ahead, at most 16.
        ("cuda", 40, 4, None, (16, False)),
        ("mps", 40, 40, None, (16, False)),
        ("cuda", 6, 6, None, (6, False)),
        ("cuda", 6, 6, 9, (9, False)),
    ],
)
def test_default_decoding_threads(monkeypatch, device, cores, network_threads, workers, expected):
    monkeypatch.setattr(embeddings_mod, "_cores", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: network_threads)
    assert embeddings_mod._schedule(torch.device(device), workers) == expected


@pytest.mark.parametrize("workers", [0, -1, 2.5, True])
def test_decoding_threads_must_be_a_positive_whole_number(workers):
    with pytest.raises(ValueError, match="workers"):
        embeddings_mod._schedule(torch.device("cpu"), workers)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("ahead", [True, False])
def test_decode_ahead_overrides_the_schedule(monkeypatch, device, ahead):
    monkeypatch.setattr(embeddings_mod, "_cores", lambda: 8)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)  # on a CPU the default would take turns
    assert embeddings_mod._schedule(torch.device(device), 3, ahead) == (3, not ahead)
    with pytest.raises(TypeError, match="decode_ahead"):
        embeddings_mod._schedule(torch.device(device), 3, "yes")


def test_embed_images_starts_the_scheduled_decoding_threads(backbone, files, monkeypatch):
    monkeypatch.setattr(embeddings_mod, "_cores", lambda: torch.get_num_threads() + 3)
    threads = set()

    def preprocess(picture):
        threads.add(threading.get_ident())
        time.sleep(0.02)  # long enough that the pool starts all its threads
        return backbone.preprocess(picture)

    embed_images(files * 2, dataclasses.replace(backbone, preprocess=preprocess), progress=False)
    assert len(threads) == 3  # the three free cores


# ---------------------------------------------------------------- precision


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _fidelity(min_cosine=0.99, pairs_float32=100, pairs_changed=0) -> PrecisionFidelity:
    return PrecisionFidelity(
        network="net",
        images=10,
        min_cosine=min_cosine,
        mean_cosine=0.999,
        threshold=0.6,
        pairs_float32=pairs_float32,
        pairs_changed=pairs_changed,
        limit_min_cosine=0.98,
        limit_changed_share=0.01,
    )


def test_fidelity_limits_are_inclusive_and_both_must_hold():
    assert _fidelity(min_cosine=0.98, pairs_changed=1).passes  # exactly at both limits
    assert not _fidelity(min_cosine=0.9799).passes
    assert not _fidelity(pairs_changed=2).passes  # 2 of 100 = 2 % > 1 %
    assert _fidelity(pairs_float32=0, pairs_changed=0).passes


@pytest.mark.parametrize(
    ("native", "fidelity", "expected"),
    [
        (True, _fidelity(), "bfloat16"),  # AMX / AVX512-BF16, a network within the limits
        (False, _fidelity(), "float32"),  # no native bfloat16: never slower than float32
        (True, _fidelity(min_cosine=0.92), "float32"),  # a network outside the limits
        (True, None, "float32"),  # a network never measured
    ],
)
def test_auto_needs_native_bfloat16_and_a_network_within_the_limits(native, fidelity, expected):
    got = resolve_precision("auto", "net", "cpu", native_bfloat16=native, fidelity=fidelity)
    assert got == expected


def test_explicit_precisions_and_the_fallback_warning():
    assert resolve_precision("float32", "net", "cpu", native_bfloat16=True, fidelity=_fidelity()) == "float32"
    assert resolve_precision("bfloat16", "net", "cpu", native_bfloat16=True, fidelity=None) == "bfloat16"
    embeddings_mod._warned_no_native.clear()
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert resolve_precision("bfloat16", "net", "cpu", native_bfloat16=False) == "float32"
    with pytest.warns(UserWarning, match="no native float16"):
        assert resolve_precision("float16", "net", "cpu") == "float32"  # half floats need a GPU
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "net", "cpu")


def test_default_precision_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(PRECISION_VAR, "bfloat16")
    assert default_precision() == "bfloat16"
    monkeypatch.delenv(PRECISION_VAR)
    assert default_precision() == "float32"  # the functions: reproducible
    assert default_precision("auto") == "auto"  # the curate command
    monkeypatch.setenv(PRECISION_VAR, "half")
    with pytest.raises(ValueError, match=PRECISION_VAR):
        default_precision()


def test_the_test_suite_runs_in_float32(backbone):
    assert default_precision() == "float32"
    assert resolve_precision(None, backbone.name, backbone.device) == "float32"


def test_stored_fidelity_decides_auto_per_network():
    lite0, lite2 = precision_fidelity("efficientnet_lite0"), precision_fidelity("efficientnet_lite2")
    assert lite0 is not None and lite0.passes and lite0.images == 205
    assert lite2 is not None and not lite2.passes  # below the cosine limit: stays float32
    assert precision_fidelity("resnet18") is None  # no genuine weights where it was measured
    assert "min cosine" in str(lite0)


def _tiny_backbone() -> Backbone:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    ).eval()
    return Backbone(
        model=model,
        classifier=model,
        preprocess=None,
        dim=8,
        name="tiny",
        requested="tiny",
        categories=[],
        is_standin=False,
        near_duplicate_threshold=0.9,
        weights="random",
    )


def test_bfloat16_runs_on_a_copy_that_follows_the_weights():
    tiny = _tiny_backbone()
    x = torch.randn(4, 3, 16, 16)
    exact = tiny.model(x).detach().numpy()
    half = forward_batch(tiny, x, "bfloat16")  # emulated where the CPU lacks it: same numbers
    assert half.dtype == np.float32 and half.shape == (4, 8)
    assert _cosines(half, exact).min() > 0.99 and not np.array_equal(half, exact)
    assert all(p.dtype == torch.float32 for p in tiny.model.parameters())  # the model is untouched
    np.testing.assert_array_equal(forward_batch(tiny, x, "float32"), exact)
    with torch.no_grad():
        tiny.model[0].weight.mul_(-1)  # the weights change in place: the copy is made again
    flipped = forward_batch(tiny, x, "bfloat16")
    assert _cosines(flipped, tiny.model(x).detach().numpy()).min() > 0.99


def _random_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Give every batch norm statistics and an affine part far from the identity, so a wrong fold shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.25, 4.0)
                m.weight.normal_()
                m.bias.normal_()
    return model.eval()


def _batch_norms(model: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


class _SkipFromConv(torch.nn.Module):
    """conv -> bn, and the conv's raw output also added back: folding would change that sum."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class _SharedNorm(torch.nn.Module):
    """One batch norm after two convolutions: no single convolution can absorb it."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.bn = torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.a(x)) + self.bn(self.b(x))


def test_folding_batch_norms_keeps_the_float32_output_and_the_model():
    from torchvision import models

    x = torch.randn(2, 3, 64, 64)
    for model, expected in (
        (_random_statistics(models.resnet18()), 20),  # every batch norm follows a convolution
        (_random_statistics(_tiny_backbone().model), 1),
        (
            _random_statistics(
                torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.BatchNorm2d(4))
            ),
            0,  # after a ReLU, not a convolution
        ),
        (_random_statistics(_SkipFromConv()), 0),
        (_random_statistics(_SharedNorm()), 0),
    ):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            reference = model(x)
            folded, count = fold_batch_norms(model, x)
            got = folded(x)
        assert count == expected
        assert _batch_norms(folded) == _batch_norms(model) - expected
        torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4 * float(reference.abs().max()))
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # untouched
        assert folded is not model


def test_bfloat16_runs_on_the_folded_copy():
    tiny = _tiny_backbone()
    forward_batch(tiny, torch.randn(2, 3, 16, 16), "bfloat16")
    (half,) = embeddings_mod._HALF_MODELS[tiny.model].values()
    assert _batch_norms(half) == 0 and _batch_norms(tiny.model) == 1
    assert all(p.dtype == torch.bfloat16 for p in half.parameters())


@pytest.mark.slow
def test_bfloat16_fidelity_on_the_bundled_images_is_what_is_stored(backbone, manifest):
    # Runs bfloat16 whether or not this CPU has it natively (emulated, the numbers agree):
    # the stored measurement, and so what "auto" decides, holds on any machine.
    files = manifest["file"].tolist()
    tensors = torch.stack([backbone.preprocess(load_rgb(f)) for f in files])
    exact = np.concatenate([forward_batch(backbone, b, "float32") for b in tensors.split(8)])
    half = np.concatenate([forward_batch(backbone, b, "bfloat16") for b in tensors.split(8)])
    cosine = _cosines(half.astype(np.float64), exact.astype(np.float64))
    stored = precision_fidelity(backbone.name)
    assert stored is not None
    assert abs(cosine.min() - stored.min_cosine) < 0.003 and cosine.mean() >= 0.99
    unit_a = exact / np.linalg.norm(exact, axis=1, keepdims=True)
    unit_b = half / np.linalg.norm(half, axis=1, keepdims=True)
    upper = np.triu_indices(len(files), 1)
    near_a = (unit_a @ unit_a.T)[upper] >= stored.threshold
    near_b = (unit_b @ unit_b.T)[upper] >= stored.threshold
    assert near_a.sum() == stored.pairs_float32  # the float32 decisions the limits were measured on
    assert abs(int((near_a != near_b).sum()) - stored.pairs_changed) <= 1
    # and embed_images gives the same vectors in bfloat16 when asked for it where it is native
    if bfloat16_supported(backbone.device):
        fast = embed_images(files[:16], backbone, progress=False, precision="bfloat16")
        np.testing.assert_allclose(fast.vectors, half[:16], rtol=0, atol=1e-2)


# ---------------------------------------------------------------- saving


def test_save_returns_the_path_written_and_refuses_a_folder(tmp_path):
    result = Embeddings(np.ones((1, 3), np.float32), ["a.png"], backbone="net")
    assert result.save(tmp_path / "noext") == tmp_path / "noext.npz"
    assert result.save(tmp_path / "x.npy") == tmp_path / "x.npy.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noext.npz", "x.npy.npz"]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        result.save(tmp_path)


def test_an_interrupted_save_leaves_the_old_file_whole(tmp_path, monkeypatch):
    old = Embeddings(np.ones((2, 3), np.float32), ["a.png", "b.png"], backbone="net")
    target = old.save(tmp_path / "e.npz")

    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    new = Embeddings(np.zeros((1, 3), np.float32), ["c.png"], backbone="net")
    with pytest.raises(KeyboardInterrupt):
        new.save(target)
    monkeypatch.undo()
    assert Embeddings.load(target).paths == ["a.png", "b.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]  # no temporary file left


@pytest.mark.parametrize("content", [b"", b"not a zip at all", "truncated"])
def test_a_corrupt_file_is_one_clear_error(tmp_path, content):
    whole = Embeddings(np.random.default_rng(0).random((50, 64), np.float32), [f"{i}" for i in range(50)])
    data = whole.save(tmp_path / "whole.npz").read_bytes()
    broken = tmp_path / "broken.npz"
    broken.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(EmbeddingsFileError, match="broken.npz: not a readable embeddings file") as info:
        Embeddings.load(broken)
    assert "\n" not in str(info.value)
