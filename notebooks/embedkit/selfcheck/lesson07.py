"""Self-checks of lesson 07 (scaling out with Ray Data and FAISS): the cost model, the decoding
function, the embedding actor, the pipeline, the actor pool of a bigger node, the IVF index and the
rule that chooses ``nprobe``.

Each check takes the learner's code and the lesson's data as arguments; while an exercise is still
the untouched stub (a function that does nothing but return ``None``) it prints the lesson's "Not done
yet" line and returns a stand-in (the package's version, or the lesson's own), so the lesson runs on.
Written code that returns ``None`` fails: a forgotten ``return`` is not an exercise left for later.
Ray and FAISS are imported only by the checks that need them.

The end of the module holds the lesson's given measuring and plotting code (not exercises), kept
here so that the notebook shows only the lines that compute what the lesson is about.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from PIL import Image

from embedkit.distributed import PixelEmbedder
from embedkit.selfcheck import is_stand_in, is_stub, returned_none, stand_in, switched_off

__all__ = [
    "check_cost_model",
    "check_to_pixels",
    "check_embedder",
    "run_pipeline",
    "check_pipeline",
    "check_pool",
    "check_ivf_index",
    "check_choose_nprobe",
    "BAND",
    "ratio_verdict",
    "plot_pipeline",
    "report_pipeline",
    "search_sweep",
    "plot_scaling",
    "report_search",
    "compared",
    "ivf_verdict",
    "report_ivf_costs",
    "plot_nprobe",
    "report_targets",
]

_MISSING = object()


# --------------------------------------------------------------------------- shared by this lesson's checks


def _namespace(code: Any) -> dict:
    """The global names the learner's function or class reads (for a notebook, the notebook's)."""
    if inspect.isfunction(code):
        return code.__globals__
    for value in vars(code).values() if isinstance(code, type) else ():
        if inspect.isfunction(value):
            return value.__globals__
    return vars(sys.modules[code.__module__])


@contextlib.contextmanager
def _rebound(namespace: dict, values: dict[str, Any]) -> Iterator[None]:
    """While the block runs, ``namespace`` binds ``values``; afterwards each name is as it was (or absent)."""
    saved = {name: namespace.get(name, _MISSING) for name in values}
    namespace.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


@contextlib.contextmanager
def _package_off(module: Any, names: Sequence[str], namespace: dict) -> Iterator[None]:
    """While the block runs, calling ``module.NAME`` raises, and so does a name of ``namespace`` bound to it.

    A class stays (a subclass keeps it), but its own ``__init__`` and ``__call__`` raise instead.
    """
    message = f"you called the package's answer ({module.__name__}.{'/'.join(names)}): write it yourself"

    def refuse(*args, **kwargs):
        raise AssertionError(message)

    saved = [getattr(module, name) for name in names]
    targets: list[tuple[Any, str]] = []
    for name, thing in zip(names, saved, strict=True):
        if isinstance(thing, type):
            targets += [(thing, m) for m in ("__init__", "__call__") if m in thing.__dict__]
        else:
            targets.append((module, name))
    functions = [thing for thing in saved if not isinstance(thing, type)]
    aliases = {key: refuse for key, value in namespace.items() if any(value is f for f in functions)}
    with switched_off(targets, message), _rebound(namespace, aliases):
        yield


# --------------------------------------------------------------------------- the cost model

#: (ACTORS, DECODE_CORES, d) the cost-model check sets while it runs.
_PLANS = ((1, 1, 1280), (3, 2, 512), (8, 1, 2048))
#: (t_dec, t_fwd) in seconds, and t_emb worked out by hand for each plan: the slower side's
#: cost over its workers. For (3, 2): 0.020 / 3 actors against 0.001 / 2 cores, and so on.
_EMBED_COSTS = {
    (0.001, 0.020): {(1, 1): 0.020, (3, 2): 0.020 / 3, (8, 1): 0.0025},
    (0.010, 0.004): {(1, 1): 0.010, (3, 2): 0.005, (8, 1): 0.010},
    (0.003, 0.009): {(1, 1): 0.009, (3, 2): 0.003, (8, 1): 0.003},
}
#: Two measurements, t_emb = (0.010, 0.012) s and c = (8e-12, 1e-11) s, and for each n the seconds
#: worked out by hand: embedding n * t_emb; exact search c n^2 d (n = 10,000 and d = 1,280:
#: 8e-12 * 1e8 * 1280 = 1.024 s).
_T_EMB, _C = (0.010, 0.012), (8e-12, 1e-11)
_EMBED_SECONDS = {10: (0.1, 0.12), 10_000: (100.0, 120.0), 100_000_000: (1e6, 1.2e6)}
_SEARCH_SECONDS = {
    (10, 1280): (1.024e-6, 1.28e-6),
    (10, 512): (4.096e-7, 5.12e-7),
    (10, 2048): (1.6384e-6, 2.048e-6),
    (10_000, 1280): (1.024, 1.28),
    (10_000, 512): (0.4096, 0.512),
    (10_000, 2048): (1.6384, 2.048),
    (100_000_000, 1280): (1.024e8, 1.28e8),
    (100_000_000, 512): (4.096e7, 5.12e7),
    (100_000_000, 2048): (1.6384e8, 2.048e8),
}


def _lesson_cost_model(actors: int, decode_cores: int, d: int) -> tuple[Callable, Callable]:
    """The lesson's own cost model for this machine's plan: the stand-in while exercise 0 is not done."""

    def embed_cost(t_dec, t_fwd):
        return max(t_fwd / actors, t_dec / decode_cores)

    def predicted_seconds(n, t_emb, c):
        return n * t_emb, c * n**2 * d

    return stand_in(embed_cost), stand_in(predicted_seconds)


def check_cost_model(
    embed_cost: Callable,
    predicted_seconds: Callable,
    actors: int,
    decode_cores: int,
    d: int,
    t_decode: float,
    t_forward: float,
) -> tuple[Callable, Callable]:
    """Check the cost model against hand-worked costs, with other ``ACTORS``, ``DECODE_CORES`` and ``d``
    bound in the learner's namespace while it runs, and two measurements passed at once as arrays.

    ``actors``, ``decode_cores`` and ``d`` are this machine's plan (for the stand-in), ``t_decode`` and
    ``t_forward`` the fastest costs (for the printout). Returns ``(embed_cost, predicted_seconds)``.
    """
    if is_stand_in(embed_cost) or is_stub(embed_cost) or is_stub(predicted_seconds):
        print("Not done yet: the lesson's own cost model stands in for yours (both functions)")
        if is_stand_in(embed_cost) and is_stand_in(predicted_seconds):  # the cell run again
            return embed_cost, predicted_seconds
        return _lesson_cost_model(actors, decode_cores, d)
    if embed_cost(0.001, 0.02) is None:
        raise returned_none("embed_cost")
    if predicted_seconds(10, np.ones(2), np.ones(2)) is None:
        raise returned_none("predicted_seconds")
    spaces = [_namespace(embed_cost), _namespace(predicted_seconds)]
    for actors_now, cores_now, d_now in _PLANS:
        plan = {"ACTORS": actors_now, "DECODE_CORES": cores_now, "d": d_now}
        plan_text = f"ACTORS = {actors_now}, DECODE_CORES = {cores_now}, d = {d_now}"
        with contextlib.ExitStack() as stack:
            for space in spaces:
                stack.enter_context(_rebound(space, plan))
            for (t_dec, t_fwd), by_plan in _EMBED_COSTS.items():
                want = by_plan[actors_now, cores_now]
                got = embed_cost(t_dec, t_fwd)
                assert np.isclose(got, want, rtol=1e-9), (
                    f"{plan_text}, t_dec {1e3 * t_dec:g} ms, t_fwd {1e3 * t_fwd:g} ms: t_emb {got!r} s, "
                    "the model "
                    f"{want:.6g} s; each side's time per image is its cost over its workers, and the "
                    "slower side "
                    "sets the pace"
                )
            t_emb, c = np.array(_T_EMB), np.array(_C)  # two measurements
            for n, embed_want in _EMBED_SECONDS.items():
                got = predicted_seconds(n, t_emb, c)
                assert len(got) == 2, "return two things: (seconds to embed, seconds of exact search)"
                embed_s, search_s = (np.asarray(v, dtype=float) for v in got)
                assert embed_s.shape == search_s.shape == (2,), (
                    f"two measurements in, {embed_s.shape} and {search_s.shape} out: compute with the "
                    "arrays, "
                    "not one value"
                )
                assert np.allclose(embed_s, embed_want, rtol=1e-9), (
                    f"n = {n:,}: embedding {embed_s} s; n images at t_emb each take {np.array(embed_want)} s"
                )
                search_want = np.array(_SEARCH_SECONDS[n, d_now])
                assert np.allclose(search_s, search_want, rtol=1e-9), (
                    f"{plan_text}, n = {n:,}: exact search {search_s} s; c was measured per multiply-add of "
                    f"search(x, 1), every one of n queries against all n vectors: {search_want} s"
                )
    print(
        f"Correct! With this machine's plan, t_emb = {1e3 * embed_cost(t_decode, t_forward):.1f} ms/image "
        "at the "
        "fastest costs"
    )
    return embed_cost, predicted_seconds


# --------------------------------------------------------------------------- exercise 1: decoding


def _check_pictures(photo: str | Path, folder: Path) -> dict[str, Path]:
    """{what it tests: path}: files on which a decoder that skips one of the rules gives other pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = Image.open(photo).convert("RGB")
    orientation = Image.Exif()
    orientation[0x0112] = 6  # "rotate 90 degrees to display"
    picture.resize((1600, 1200)).save(folder / "large_rotated.jpg", quality=90, exif=orientation)
    # Short side 1920, in [8 * 224, 8 * 256): a draft to the crop (224) decodes it at 1/8, one to SIDE = 256
    # at 1/4.
    picture.resize((2560, 1920)).save(folder / "very_large.jpg", quality=90)
    picture.resize((1200, 900)).save(folder / "large.png")  # no draft for a PNG: as_rgb's min_side reduces it
    cutout = np.array(picture.convert("RGBA"))
    cutout[::2, :, 3] = 0  # every other row transparent
    Image.fromarray(cutout).save(folder / "cutout.png")
    picture.convert("P").save(folder / "palette.png")
    picture.convert("L").save(folder / "grayscale.jpg")
    return {  # the untagged JPEG first: a decoder that skips `draft` fails there, not on the rotated one
        "a very large JPEG (2560 x 1920)": folder / "very_large.jpg",
        "a large JPEG whose EXIF tag says 'rotate'": folder / "large_rotated.jpg",
        "a large PNG": folder / "large.png",
        "a cut-out with transparent rows": folder / "cutout.png",
        "a palette image": folder / "palette.png",
        "a grayscale JPEG": folder / "grayscale.jpg",
    }


def _elongated_picture(photo: str | Path, folder: Path) -> Path:
    """A 1200 x 3 PNG, more elongated than ``MAX_ASPECT_RATIO``: ``embed_images`` refuses it."""
    Image.open(photo).convert("RGB").resize((1200, 3)).save(folder / "strip.png")
    return folder / "strip.png"


def _decoded_in_full(path: Path, transform: Any) -> np.ndarray:
    """The JPEG at ``path`` decoded without ``draft`` (in full), then upright, RGB and preprocessed."""
    from PIL import ImageOps

    with Image.open(path) as image:
        return transform(ImageOps.exif_transpose(image)).numpy()


def check_to_pixels(
    to_pixels: Callable, transform: Any, photo: str | Path, bad_files: Sequence[str], folder: str | Path
) -> Callable:
    """Check ``to_pixels`` on pictures made from ``photo`` in ``folder`` (a large rotated JPEG, a very large
    JPEG, a large PNG,
    a cut-out, a palette and a grayscale image) against the package's decoding with ``transform``, with
    the package's decoders, loaders and transform switched off; each of ``bad_files``, and a picture too
    elongated for ``embed_images``, must raise."""
    import embedkit.distributed
    import embedkit.embeddings
    import embedkit.images
    from embedkit.distributed import decode_for_model, pixels_from_bytes

    if is_stand_in(to_pixels) or is_stub(to_pixels):
        print(
            "Not done yet: the package's decoding, embedkit.distributed.pixels_from_bytes, stands in for "
            "yours"
        )
        if is_stand_in(to_pixels):  # the cell run again
            return to_pixels

        def package_to_pixels(data):
            return pixels_from_bytes(data, transform)

        return stand_in(package_to_pixels)
    if to_pixels(Path(photo).read_bytes()) is None:
        raise returned_none("to_pixels")
    pictures = _check_pictures(photo, Path(folder))
    strip = _elongated_picture(photo, Path(folder))
    packages = {
        what: decode_for_model(p.resolve().as_uri(), transform).numpy() for what, p in pictures.items()
    }
    in_full = {what: _decoded_in_full(p, transform) for what, p in pictures.items() if p.suffix == ".jpg"}
    space = _namespace(to_pixels)
    with (
        _package_off(
            embedkit.distributed, ("pixels_from_bytes", "decode_for_model", "load_rgb_bytes"), space
        ),
        _package_off(embedkit.images, ("load_rgb", "load_rgb_bytes", "load_rgb_and_reduced"), space),
        _package_off(embedkit.embeddings, ("ModelInput",), space),  # `transform` is one
    ):
        yours = {
            what: np.asarray(to_pixels(p.read_bytes()), dtype=np.float32) for what, p in pictures.items()
        }
        raised = []
        for bad in [*bad_files, strip]:
            try:
                to_pixels(Path(bad).read_bytes())
            except AssertionError as exc:
                if "write it yourself" in str(exc):
                    raise
                raised.append(bad)
            except Exception:
                raised.append(bad)
    for what, mine in yours.items():
        package = packages[what]
        assert mine.shape == package.shape, f"{what}: shape {mine.shape}, the network takes {package.shape}"
        if what in in_full and np.abs(mine - package).max() >= 1e-4:
            assert np.abs(mine - in_full[what]).max() >= 1e-4, (
                f"{what}: your pixels are the JPEG decoded in full, then reduced: call "
                'image.draft("RGB", (SIDE, SIDE)) right after Image.open, before any pixel is read '
                "(exif_transpose reads them all)"
            )
        assert np.abs(mine - package).max() < 1e-4, (
            f"{what}: other pixels than embed_images decodes (largest difference "
            f"{np.abs(mine - package).max():.3f})"
        )
    for bad in sorted(set(bad_files) - set(raised)):
        raise AssertionError(f"{Path(bad).name} is not an image, yet to_pixels returned pixels: let it raise")
    assert strip in raised, (
        "a 1200 x 3 picture, which embed_images refuses as too elongated, returned pixels: pass "
        "max_aspect_ratio=MAX_ASPECT_RATIO to as_rgb"
    )
    print(
        f"Correct! The package's pixels for all {len(pictures)} pictures ({', '.join(pictures)}), and an "
        f"exception for each of the {len(bad_files)} bad files and for a 1200 x 3 strip"
    )
    return to_pixels


# --------------------------------------------------------------------------- exercise 2: the actor


class PackageEmbedder(PixelEmbedder):
    """The package's actor with the ``threads`` column ``to_table`` adds: the stand-in for exercise 2."""

    def __call__(self, batch):
        table = super().__call__(batch)
        return table.append_column("threads", pa.array(np.full(len(table), torch.get_num_threads())))


stand_in(PackageEmbedder)


class _NotThisOne:
    """Stands in for the notebook's ``backbone`` while the actor runs: an actor has only what it loaded."""

    def __getattr__(self, name):
        raise AssertionError(
            "__call__ used the notebook's global `backbone`: use the network __init__ loaded"
        )


def check_embedder(
    Embedder: type, decode: Callable, files: Sequence[str], expected: np.ndarray, backbone: Any
) -> type:
    """Check the actor class here, in this process: built twice (other network name, device and threads;
    then this machine's), run on two batches ``decode`` makes of ``files`` (good files, then one bad file)
    and on a batch of the bad file alone (one zero row, no forward pass),
    its rows compared with ``expected`` (``embed_images``' rows of the good files); ``load_backbone`` and
    the network's forward pass are watched: one load per actor, one pass per batch, no gradients."""
    import embedkit.backbones
    import embedkit.distributed
    import embedkit.embeddings

    if is_stand_in(Embedder) or is_stub(Embedder):
        print("Not done yet: the package's actor, embedkit.distributed.PixelEmbedder, stands in for yours")
        return PackageEmbedder
    good = len(expected)
    batch = decode({"bytes": [Path(f).read_bytes() for f in files], "path": np.array(files)})
    only_bad = decode({"bytes": [Path(files[-1]).read_bytes()], "path": np.array(files[-1:])})
    threads_before = torch.get_num_threads()
    run_on, other_device = ("cuda", "cpu") if torch.cuda.device_count() else ("cpu", "cuda")
    loads = []  # (network, device) asked for in every load_backbone call, wherever the actor imports it from
    real_load = embedkit.backbones.load_backbone
    # One real load, for every actor below. strict_input: a batch that skipped backbone.as_input is
    # refused here, as a GPU would refuse it.
    loaded = real_load(backbone.requested, device=run_on, strict_input=True)

    def counted_load_backbone(*args, **kwargs):
        network = kwargs.get("network", args[0] if args else None)
        loads.append((network, str(kwargs.get("device", args[1] if len(args) > 1 else None))))
        return loaded  # whatever name was asked for: the check only sees that it was passed on

    forward_calls = []  # (rows, gradients on, output needs a graph) of each forward pass of the network
    real_forward = loaded.model.forward

    def spied_forward(x, *args, **kwargs):
        out = real_forward(x, *args, **kwargs)
        forward_calls.append((len(x), torch.is_grad_enabled(), out.requires_grad))
        return out

    space = _namespace(Embedder)
    load_aliases = {key: counted_load_backbone for key, value in space.items() if value is real_load}
    table = None
    torch.set_num_threads(2)  # so that the check sees whether __init__ sets the threads it is given
    loaded.model.forward = spied_forward  # model(x) and model.forward(x) both pass through the spy
    try:
        with contextlib.ExitStack() as stack:
            for module in (embedkit.backbones, embedkit.distributed):
                stack.enter_context(mock.patch.object(module, "load_backbone", counted_load_backbone))
            stack.enter_context(_rebound(space, {"load_backbone": counted_load_backbone, **load_aliases}))
            # the package's actors and forward passes refuse while yours runs
            names = ("PixelEmbedder", "BackboneEmbedder", "forward_batch")
            stack.enter_context(_package_off(embedkit.distributed, names, space))
            names = ("forward_batch", "embed_images", "embed_prepared")
            stack.enter_context(_package_off(embedkit.embeddings, names, space))
            Embedder("probe-net", other_device, 3)  # only built, never run: what it asks for is checked
            threads_asked_3, loads_other = torch.get_num_threads(), list(loads)
            actor = Embedder(backbone.requested, run_on, 1)
            actor_threads, loads_in_init = torch.get_num_threads(), len(loads)
            stack.enter_context(_rebound(space, {"backbone": _NotThisOne()}))
            try:
                table = actor(batch)
                table = actor(batch) if table is not None else None  # a second batch: no second load
            except ValueError as exc:
                if "as_input" in str(exc):
                    raise AssertionError(
                        "pass each batch through self.backbone.as_input before the model: "
                        "on a GPU the call without it fails"
                    ) from exc
                raise
            calls_before, bad_table, bad_crash = len(forward_calls), None, None
            if table is not None:
                try:
                    bad_table = actor(only_bad)  # a batch of bad files only: it happens on real data
                except Exception as exc:  # judged below, after the two full batches
                    bad_crash = exc
    finally:
        del loaded.model.forward  # the network's own forward again
        torch.set_num_threads(threads_before)
    if table is None:
        raise returned_none("Embedder.__call__")
    bad_calls = forward_calls[calls_before:]
    del forward_calls[calls_before:]
    assert isinstance(table, pa.Table), "return to_table(batch, vectors), a pyarrow table"
    assert loads_in_init == 2 and len(loads) == 2, (
        f"two actors loaded the network {loads_in_init} time(s) in __init__, and one loaded it "
        f"{len(loads) - loads_in_init} more time(s) in its calls: load it once, in __init__"
    )
    assert [device for _, device in loads_other] == [other_device], (
        f"an actor built for device {other_device!r} asked load_backbone for {loads_other}: pass `device` on"
    )
    assert [network for network, _ in loads_other] == ["probe-net"], (
        f"an actor built for network 'probe-net' asked load_backbone for {loads_other}: load the `network` "
        "__init__ is given, not the notebook's"
    )
    assert threads_asked_3 == 3 and actor_threads == 1, (
        f"asked for 3 and 1 threads, PyTorch ran {threads_asked_3} and {actor_threads}: set `threads` in "
        "__init__"
    )
    assert [rows_in for rows_in, *_ in forward_calls] == [good] * 2, (
        f"two batches of {good} good rows and a bad one ran forward passes of "
        f"{[rows_in for rows_in, *_ in forward_calls]} rows: one pass per batch, self.backbone.model on all "
        "good rows at once"
    )
    assert not any(grad or graph for _, grad, graph in forward_calls), (
        "the forward pass ran with gradients on, so PyTorch built a graph for every batch (memory and time): "
        "run it inside torch.inference_mode()"
    )
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    assert got.shape == (len(files), backbone.dim), (
        f"one row of {backbone.dim} floats per file; got {got.shape}"
    )
    assert not got[-1].any(), "the bad file's row must be zeros: embed only the rows without an error"
    difference = np.abs(got[:-1] - expected).max()
    assert difference < 1e-3, f"the rows differ from embed_images' rows by up to {difference:.3f}"
    assert bad_crash is None, (
        f"a batch whose every row is bad crashed the actor ({type(bad_crash).__name__}: {bad_crash}): "
        "run the network only when some row is good"
    )
    assert not bad_calls, (
        "a batch whose every row is bad ran the network on no rows, which crashes some networks: "
        "run it only when some row is good"
    )
    bad_rows = np.stack(bad_table.column("embedding").to_numpy(zero_copy_only=False))
    assert bad_rows.shape == (1, backbone.dim) and not bad_rows.any(), (
        f"a batch of one bad file gave rows of shape {bad_rows.shape}, not one row of {backbone.dim} zeros"
    )
    print(
        "Correct! Loaded once per actor, on the device and with the threads asked for, one forward pass "
        f"per batch without gradients, the bad row zeros, the good rows embed_images' (within "
        f"{difference:.0e}); tried on two batches of {good} good files and a bad one, and a batch of the "
        "bad one alone"
    )
    return Embedder


# --------------------------------------------------------------------------- exercise 3: the pipeline


def run_pipeline(
    embed_to_parquet: Callable,
    uris: Sequence[str],
    out_dir: str | Path,
    decode: Callable,
    Embedder: type,
    embedder_args: dict,
    **plan: Any,
) -> tuple[Callable, float]:
    """Run ``embed_to_parquet(uris, out_dir)`` with the package's pipelines switched off. For the untouched
    stub, run the package's ``pipeline_to_parquet`` with ``decode``, ``Embedder`` and the plan (its keyword
    arguments: actors, actor_cpus, actor_gpus, decode_cpus, batch_size) instead; where written code wrote
    no shard in ``out_dir``, raise an AssertionError.

    Returns the function that wrote the shards and the ``time.time()`` at which it started.
    """
    import ray.data

    import embedkit.distributed

    out_dir = Path(out_dir)
    if is_stub(embed_to_parquet) or is_stand_in(embed_to_parquet):
        print(
            "Not done yet: the package's pipeline_to_parquet runs your decode and Embedder in place of yours"
        )

        def package_pipeline(uris, out_dir):
            embedkit.distributed.pipeline_to_parquet(uris, out_dir, decode, Embedder, embedder_args, **plan)

        start = time.time()
        package_pipeline(uris, out_dir)
        return stand_in(package_pipeline), start
    reads = []
    real_read = ray.data.read_binary_files

    def recorded_read(*args, **kwargs):
        reads.append(args)
        return real_read(*args, **kwargs)

    space = _namespace(embed_to_parquet)
    read_aliases = {key: recorded_read for key, value in space.items() if value is real_read}
    start = time.time()
    names = ("pipeline_to_parquet", "embed_with_ray")
    with (
        _package_off(embedkit.distributed, names, space),
        _rebound(space, read_aliases),
        mock.patch.object(ray.data, "read_binary_files", recorded_read),
    ):
        embed_to_parquet(uris, out_dir)  # yours: the package's pipelines refuse to run while it does
    if any(out_dir.glob("*.parquet")):
        return embed_to_parquet, start
    assert not reads, (
        "your embed_to_parquet read the files but wrote no Parquet shard in out_dir: end the chain with "
        ".write_parquet(str(out_dir))"
    )
    raise AssertionError(
        "your embed_to_parquet read nothing and wrote no Parquet shard in out_dir: start the chain with "
        "ray.data.read_binary_files(uris, include_paths=True) and end it with .write_parquet(str(out_dir))"
    )


def _rows_match_the_package(written, package, uris, files, bad_files, reference) -> None:
    """The pipeline's rows are the package's (same files, same order), with the same bad files, and the
    bundled files' rows are ``reference`` (``embed_images``' rows)."""
    assert len(written) == len(files) and written["path"].is_unique, (
        f"{len(written)} rows, {written['path'].nunique()} files, for {len(files)} files: write each file "
        "once, "
        "all of them"
    )
    expected = [str(Path(f).resolve()) for f in files]
    rows = written.drop_duplicates("path").set_index("path").reindex(expected)  # input order
    good = rows[rows["error"] == ""]
    local_path = {uri: str(Path(f).resolve()) for uri, f in zip(uris, files, strict=True)}
    package_paths = [
        local_path[p] for p in package.embeddings.paths
    ]  # the package keeps the URIs it was given
    package_failed = sorted(local_path[p] for p, _ in package.embeddings.failed)
    assert package_paths == good.index.tolist(), (
        "not the same files, in the same order, as the package's pipeline"
    )
    vectors = np.stack(good["embedding"].to_numpy()).astype(np.float32)
    max_diff = np.abs(vectors - package.embeddings.vectors).max()
    assert max_diff < 1e-3, f"your vectors differ from the package's by up to {max_diff:.1e}"
    reported = sorted(rows.index[rows["error"] != ""])
    assert reported == package_failed == sorted(str(Path(f).resolve()) for f in bad_files), (
        f"reported {[Path(p).name for p in reported]}; the package {[Path(p).name for p in package_failed]}"
    )
    difference = np.abs(vectors[: len(reference)] - reference).max()
    assert difference < 1e-3, (
        f"the bundled files' rows differ from embed_images' rows by up to {difference:.1e}"
    )


def check_pipeline(
    embed_to_parquet: Callable,
    written: pd.DataFrame,
    package: Any,
    uris: Sequence[str],
    files: Sequence[str],
    bad_files: Sequence[str],
    reference: np.ndarray,
    decode: Callable,
    Embedder: type,
    embedder_args: dict,
    folder: str | Path,
    standing_in: Iterable[str] = (),
) -> Callable:
    """Check the rows the pipeline ``written`` against the package's pipeline's (``package``, what
    ``embed_with_ray`` returned on ``uris``) and the bundled files' against ``reference``; then run
    ``embed_to_parquet`` dry (on the URIs in reverse order, into ``folder``) with unusual plan values bound in
    its namespace, recording its ``read_binary_files``, ``map_batches`` and ``write_parquet`` calls and
    refusing any that collects rows.

    ``standing_in`` names the earlier steps that ran the package's code (for the printout)."""
    import ray
    import ray.data

    _rows_match_the_package(written, package, uris, files, bad_files, reference)
    if is_stand_in(embed_to_parquet):
        print(
            "Not done yet: the package's pipeline_to_parquet ran in place of yours; only the rows were "
            "compared, "
            "package against package"
        )
        return embed_to_parquet
    standing_in = list(standing_in)
    plan = {
        "ACTORS": 3,
        "ACTOR_CPUS": 0.75,
        "ACTOR_GPUS": 0.5,
        "DECODE_CPUS": 0.25,
        "BATCH": 7,
        "EMBEDDER_ARGS": {**embedder_args, "threads": 5},
    }
    dry_run = Path(folder)
    dry_uris = list(uris)[::-1]  # other URIs than the notebook's (never read): the function must read its own
    reads, pipeline_calls, writes = (
        [],
        [],
        [],
    )  # (args, kwargs) of every read; (fn, kwargs) of every map_batches
    collecting = [
        m
        for m in ("to_pandas", "to_arrow_refs", "take_all", "take", "take_batch", "materialize", "iter_rows")
        + ("iter_batches", "show")
        if hasattr(ray.data.Dataset, m)
    ]
    real_read = ray.data.read_binary_files

    def recorded_read(*args, **kwargs):
        reads.append((args, kwargs))
        return real_read(*args, **kwargs)

    def collected(self, *args, **kwargs):
        raise AssertionError(
            "your pipeline collects rows into this process: stream them to Parquet with write_parquet"
        )

    def recorded_map_batches(self, fn, *args, **kwargs):
        pipeline_calls.append((fn, kwargs))
        return self  # nothing runs: Ray Data is lazy, and write_parquet does nothing during the dry run

    def recorded_write(self, *args, **kwargs):
        writes.append((args, kwargs))

    space = _namespace(embed_to_parquet)
    read_aliases = {key: recorded_read for key, value in space.items() if value is real_read}
    with contextlib.ExitStack() as stack:
        stack.enter_context(_rebound(space, {**plan, **read_aliases}))
        stack.enter_context(mock.patch.object(ray.data, "read_binary_files", recorded_read))
        stack.enter_context(mock.patch.object(ray.data.Dataset, "map_batches", recorded_map_batches))
        stack.enter_context(mock.patch.object(ray.data.Dataset, "write_parquet", recorded_write))
        for m in collecting:
            stack.enter_context(mock.patch.object(ray.data.Dataset, m, collected))
        embed_to_parquet(dry_uris, dry_run)
    assert len(reads) == 1, f"read_binary_files called {len(reads)} times: read the URIs once, at the start"
    read_args, read_kwargs = reads[0]
    read_uris = read_args[0] if read_args else read_kwargs.get("paths")
    assert [str(u) for u in np.atleast_1d(np.asarray(read_uris, dtype=object))] == dry_uris, (
        "read_binary_files did not read the URIs embed_to_parquet was given: read its `uris`, not the "
        "notebook's"
    )
    assert read_kwargs.get("include_paths") is True, (
        "read_binary_files without include_paths=True: the rows carry bytes without a path, and decode "
        "needs it"
    )
    assert [str(w[0][0] if w[0] else w[1].get("path")) for w in writes] == [str(dry_run)], (
        f"write_parquet called as {writes}: call it once, on the pipeline, with str(out_dir)"
    )
    actor_steps = [(fn, kw) for fn, kw in pipeline_calls if isinstance(fn, type)]
    task_steps = [(fn, kw) for fn, kw in pipeline_calls if not isinstance(fn, type)]
    assert len(actor_steps) == 1 and len(task_steps) == 1, (
        f"{len(task_steps)} map_batches step(s) with a function and {len(actor_steps)} with a class: one "
        "of each"
    )
    (task_fn, task_kw), (actor_fn, actor_kw) = task_steps[0], actor_steps[0]
    assert task_fn is decode, (
        f"the decoding step runs {getattr(task_fn, '__qualname__', task_fn)}, not the lesson's decode"
    )
    assert issubclass(actor_fn, Embedder), (
        f"the embedding step runs {actor_fn.__module__}.{actor_fn.__qualname__}: run your Embedder "
        "(exercise 2)"
    )
    pool = actor_kw.get("compute")
    sizes = (pool.min_size, pool.max_size) if pool is not None else (actor_kw.get("concurrency"),) * 2
    with_plan = ", ".join(f"{name} = {value}" for name, value in plan.items() if name != "EMBEDDER_ARGS")
    assert sizes == (3, 3), f"with {with_plan}: an actor pool of {sizes} actors; the plan runs exactly ACTORS"
    asked = (actor_kw.get("num_cpus"), actor_kw.get("num_gpus", 0))
    assert asked == (0.75, 0.5), (
        f"with {with_plan}: each actor reserved {asked} (CPUs, GPUs), not (ACTOR_CPUS, ACTOR_GPUS)"
    )
    assert task_kw.get("num_cpus") == 0.25, (
        f"with {with_plan}: each decoding task reserved {task_kw.get('num_cpus')} CPUs, not DECODE_CPUS"
    )
    for step, kw in (("decoding", task_kw), ("embedding", actor_kw)):
        assert kw.get("batch_size") == 7, (
            f"with {with_plan}: the {step} step asked for batch_size={kw.get('batch_size')}, not BATCH"
        )
    assert actor_kw.get("fn_constructor_kwargs") == plan["EMBEDDER_ARGS"], (
        "the actors are built with another dict than EMBEDDER_ARGS: pass it as fn_constructor_kwargs"
        + (
            " (fn_constructor_args works in Ray too, but this check wants the dict)"
            if "fn_constructor_args" in actor_kw
            else ""
        )
    )
    print(
        "Correct! Your rows are the package's, your steps run decode and Embedder, and your plan "
        "reserves what "
        "ACTORS, ACTOR_CPUS, ACTOR_GPUS and DECODE_CPUS say, in batches of BATCH"
        + (f" (with the package's {' and '.join(standing_in)} standing in for yours)" if standing_in else "")
    )
    return embed_to_parquet


# --------------------------------------------------------------------------- exercise 4: the actor pool

#: (t_fwd, t_dec) in seconds the pool check tries besides this machine's: a slow forward pass, a
#: slower one, both sides alike, and a GPU-like forward pass faster than decoding.
_POOL_COSTS = ((0.030, 0.002), (0.080, 0.007), (0.004, 0.004), (0.002, 0.010))
#: Nodes worked out by hand: (cores, t_fwd, t_dec) -> the best number of actors. With 4 cores,
#: 30 ms and 2 ms: 3 actors give max(10, 2) = 10 ms, 2 give 15 ms. With 16 cores, 2 ms and 10 ms:
#: 3 actors give max(0.67, 0.77) = 0.77 ms, 2 give 1 ms, 4 give 0.83 ms.
_POOL_BY_HAND = {(4, 0.030, 0.002): 3, (16, 0.002, 0.010): 3, (2, 0.004, 0.004): 1}


def _t_emb_of(a: int, cores: int, t_forward: float, t_decode: float) -> float:
    """The cost model's seconds per image with ``a`` actors and the other cores decoding."""
    return max(t_forward / a, t_decode / (cores - a))


def check_pool(
    actors_for: Callable, rate_for: Callable, t_forward: float, t_decode: float
) -> tuple[Callable, Callable]:
    """Check the pool size on nodes of 2 to 64 cores, with this machine's costs and made-up ones: neither
    one actor more nor one fewer embeds faster (the cost model's t_emb first falls, then rises), a few
    nodes worked out by hand, and the rate is that pool's; then print what they give for 16 and 64 cores.

    While either is the untouched stub, the lesson's own pool sizing stands in and its plan for 16 and 64
    cores is printed, labelled as the lesson's. Returns ``(actors_for, rate_for)``."""
    if is_stand_in(actors_for) or is_stub(actors_for) or is_stub(rate_for):
        if not (is_stand_in(actors_for) and is_stand_in(rate_for)):
            actors_for, rate_for = _lesson_pool()
        print(
            "Not done yet: the lesson's own pool sizing stands in for yours (both functions). The "
            "lesson's answer, not yours yet, with this machine's costs (extrapolated: a real node's cores "
            "and memory, and Ray's own processes, change them; t_decode was timed on small bundled files, "
            "so measure it on your own photos and redo the plan):"
        )
        _print_pool(actors_for, rate_for, t_forward, t_decode)
        return actors_for, rate_for
    for name, f in (("actors_for", actors_for), ("rate_for", rate_for)):
        if f(16, t_forward, t_decode) is None:
            raise returned_none(name)
    costs = [(t_forward, t_decode), *_POOL_COSTS]
    cases = [(cores, fwd, dec) for cores in (2, 4, 16, 64) for fwd, dec in costs]
    for cores, fwd, dec in cases:
        a = actors_for(cores, fwd, dec)
        node = f"{cores} cores, t_fwd {1e3 * fwd:.1f} ms, t_dec {1e3 * dec:.1f} ms"
        assert isinstance(a, int | np.integer) and 1 <= a <= cores - 1, (
            f"{node}: give a whole number from 1 to {cores - 1}"
        )
        for other in (a - 1, a + 1):
            if 1 <= other <= cores - 1:
                assert _t_emb_of(a, cores, fwd, dec) <= _t_emb_of(other, cores, fwd, dec), (
                    f"{node}: {other} actors beat {a}"
                )
        rate, want = rate_for(cores, fwd, dec), 1 / _t_emb_of(a, cores, fwd, dec)
        assert np.isclose(rate, want, rtol=1e-6), (
            f"{node}: rate_for gives {rate!r}; with {a} actors the node embeds {want:.1f} images/s: each "
            "side's "
            "rate is its workers over its cost per image, and the slower side sets the node's"
        )
    for (cores, fwd, dec), best in _POOL_BY_HAND.items():
        a = actors_for(cores, fwd, dec)
        assert a == best, (
            f"{cores} cores, t_fwd {1e3 * fwd:.1f} ms, t_dec {1e3 * dec:.1f} ms: {a} actors, not {best}"
        )
    print(
        f"Correct! The best pool and its rate on all {len(cases)} nodes and costs. With this machine's costs "
        "(extrapolated: a real node's cores and memory, and Ray's own processes, change them; t_decode was "
        "timed on small bundled files, so measure it on your own photos and redo the plan):"
    )
    _print_pool(actors_for, rate_for, t_forward, t_decode)
    return actors_for, rate_for


def _lesson_pool() -> tuple[Callable, Callable]:
    """The lesson's own ``actors_for`` and ``rate_for``: the stand-ins while exercise 4 is not done."""

    def actors_for(cores, t_forward, t_decode):
        return min(range(1, cores), key=lambda a: _t_emb_of(a, cores, t_forward, t_decode))

    def rate_for(cores, t_forward, t_decode):
        return 1 / _t_emb_of(actors_for(cores, t_forward, t_decode), cores, t_forward, t_decode)

    return stand_in(actors_for), stand_in(rate_for)


def _print_pool(actors_for: Callable, rate_for: Callable, t_forward: float, t_decode: float) -> None:
    """The plan ``actors_for`` and ``rate_for`` give for a 16- and a 64-core node with these costs, and for a
    16-core node whose forward pass (2 ms) is faster than decoding (10 ms), as on a GPU."""
    for cores in (16, 64):
        a = actors_for(cores, t_forward, t_decode)
        print(
            f"   {cores} cores: {a} actors, {cores - a} decoding, "
            f"about {rate_for(cores, t_forward, t_decode):,.0f} images/s"
        )
    a = actors_for(16, 0.002, 0.010)
    print(
        f"   16 cores, made-up costs with the forward pass faster (2 ms) than decoding (10 ms), as on a GPU: "
        f"{a} actors, {16 - a} decoding, about {rate_for(16, 0.002, 0.010):,.0f} images/s"
    )


# --------------------------------------------------------------------------- exercise 5: the IVF index


def check_ivf_index(
    ivf_index: Callable, part: np.ndarray, threshold: float, pairs_above: Callable
) -> Callable:
    """Check the IVF index on the unit rows ``part`` (at least 1,600, with near-duplicate pairs above
    ``threshold``) against exact search: type, metric, cells, every row held, trained once on a sample of
    min(n, 40 * nlist) distinct rows; every cell finds exactly the exact pairs (``pairs_above``), one
    cell some of them and no others; the seed decides both the sample and k-means' start."""
    import faiss

    import embedkit.ann
    from embedkit.ann import build_ivf

    if is_stand_in(ivf_index) or is_stub(ivf_index):
        print("Not done yet: the lesson goes on with the package's embedkit.ann.build_ivf in place of yours")
        if is_stand_in(ivf_index):  # the cell run again
            return ivf_index

        def package_ivf_index(vectors, nlist, seed=0):
            return build_ivf(vectors, nlist=nlist, seed=seed)

        return stand_in(package_ivf_index)
    if ivf_index(part, 16) is None:
        raise returned_none("ivf_index")
    trained_rows, repeated_rows, kmeans_seeds = (
        [],
        [],
        [],
    )  # per train() call: rows, rows repeated, k-means' seed
    index_train = faiss.IndexIVFFlat.train
    force_kmeans_seed = False

    def counted_train(self, x, *args, **kwargs):
        trained_rows.append(len(x))
        repeated_rows.append(len(x) - len(np.unique(np.asarray(x), axis=0)))
        kmeans_seeds.append(int(self.cp.seed))
        if force_kmeans_seed:  # k-means starts alike for every seed: only the sample can differ
            self.cp.seed = 1234
        return index_train(self, x, *args, **kwargs)

    with _package_off(embedkit.ann, ("build_ivf",), _namespace(ivf_index)):
        faiss.IndexIVFFlat.train = counted_train
        try:
            oracle = faiss.IndexFlatIP(part.shape[1])
            oracle.add(part)
            everyone = np.arange(len(part))
            exact_part = pairs_above(oracle, part, everyone, threshold)
            assert len(exact_part) > 0, "the check needs near-duplicate pairs in its rows"
            for nlist in (16, 40):
                trained_rows.clear()
                repeated_rows.clear()
                index = ivf_index(part, nlist)
                assert trained_rows == [min(len(part), 40 * nlist)], (
                    f"nlist = {nlist}: trained on {trained_rows} rows; train once, on a random sample of "
                    "min(n, 40 * nlist) rows"
                )
                assert repeated_rows == [0], (
                    f"nlist = {nlist}: the sample holds {repeated_rows[0]} rows twice: draw it without "
                    "repeats"
                )
                assert isinstance(index, faiss.IndexIVFFlat), "build a faiss.IndexIVFFlat"
                assert index.nlist == nlist, f"asked for {nlist} cells, got {index.nlist}"
                assert index.metric_type == faiss.METRIC_INNER_PRODUCT, (
                    "the index must compare by inner product (cosine)"
                )
                assert index.is_trained and index.ntotal == len(part), "train it, then add every row"
                index.nprobe = nlist  # every cell: the index must find exactly the exact pairs
                assert np.array_equal(pairs_above(index, part, everyone, threshold), exact_part), (
                    "scanning every cell must find exactly the pairs exact search finds"
                )
                index.nprobe = 1  # one cell: a subset
                found = {tuple(p) for p in pairs_above(index, part, everyone, threshold)}
                assert found <= {tuple(p) for p in exact_part}, "one cell found a pair exact search does not"
                assert 0 < len(found) < len(exact_part), (
                    f"one cell of {nlist} found {len(found)} of the {len(exact_part)} pairs: expected "
                    "some, not all"
                )

            trained_rows.clear()  # fewer rows than 40 * nlist: train on all of them
            small = ivf_index(part[:630], 16)  # 630 < 40 * 16, and at least the 39 * 16 rows FAISS asks for
            assert trained_rows == [630], (
                f"630 rows, nlist = 16: trained on {trained_rows} rows, not min(n, 40 * nlist) = 630"
            )
            assert small.ntotal == 630, f"630 rows, nlist = 16: the index holds {small.ntotal}"

            started = {}  # seed -> k-means' own seed, as train() found it

            def centres(seed):
                kmeans_seeds.clear()
                index = ivf_index(part, 40, seed=seed)  # kept alive while its quantizer is read
                started[seed] = list(kmeans_seeds)
                return faiss.downcast_index(index.quantizer).reconstruct_n(0, index.nlist)

            assert np.array_equal(centres(0), centres(0)), (
                "the same seed gave other cell centres: draw the sample with seed"
            )
            assert not np.array_equal(centres(0), centres(1)), (
                "seeds 0 and 1 gave the same cell centres: use the seed"
            )
            assert started[0] != started[1], (
                f"seeds 0 and 1 both started k-means from its seed {started[0]}: set index.cp.seed from "
                "the seed too"
            )
            force_kmeans_seed = True
            assert not np.array_equal(centres(0), centres(1)), (
                "with k-means' own seed held fixed, seeds 0 and 1 gave the same centres: draw the sample "
                "with the seed"
            )
        finally:
            faiss.IndexIVFFlat.train = index_train
    print(
        f"Correct! Every cell gives the {len(exact_part)} exact pairs; one of {nlist} cells gives "
        f"{len(found)}; "
        "the seed decides the cells"
    )
    return ivf_index


# --------------------------------------------------------------------------- exercise 6: choosing nprobe

#: (nprobe column, recall column, target, the rule's answer), each worked out by hand.
_MADE_UP = [
    ((1, 2, 4, 8), (0.50, 0.90, 0.95, 0.99), 0.95, 4),  # a recall equal to the target reaches it
    ((8, 2, 4, 1), (0.99, 0.90, 0.96, 0.50), 0.95, 4),  # rows in any order
    ((1, 2, 4, 8), (0.50, 0.70, 0.80, 0.90), 0.95, None),  # no row reaches the target
    ((64, 32, 16), (1.0, 1.0, 0.97), 0.99, 32),  # tied recalls: the smallest nprobe of the plateau
    ((128, 16, 64, 32), (1.0, 0.98, 1.0, 1.0), 0.99, 32),  # a plateau, in any order
    ((8, 16, 32), (0.95, 0.988, 0.994), 0.99, 32),  # 0.988 falls short: no rounding, no tolerance
]


def check_choose_nprobe(choose_nprobe: Callable) -> Callable:
    """Check the rule on made-up sweep tables worked out by hand (a recall equal to the target, rows in any
    order, no row reaching it, plateaus, a near miss), with the package's rule switched off; the answer
    must be a Python ``int`` or ``None``."""
    import embedkit.ann
    from embedkit.ann import choose_nprobe as package_choose

    one_row = pd.DataFrame({"nprobe": [1], "recall": [1.0]})
    if is_stand_in(choose_nprobe) or is_stub(choose_nprobe):
        print("Not done yet: the package's embedkit.ann.choose_nprobe stands in for yours")
        if is_stand_in(choose_nprobe):  # the cell run again
            return choose_nprobe

        def package_choose_nprobe(table, target):
            return package_choose(table["nprobe"], table["recall"], target)

        return stand_in(package_choose_nprobe)
    if choose_nprobe(one_row, 0.0) is None:
        raise returned_none("choose_nprobe")
    with _package_off(embedkit.ann, ("choose_nprobe",), _namespace(choose_nprobe)):
        answers = [
            choose_nprobe(pd.DataFrame({"nprobe": nprobes, "recall": recalls}), target)
            for nprobes, recalls, target, _ in _MADE_UP
        ]
    for (nprobes, recalls, target, answer), got in zip(_MADE_UP, answers, strict=True):
        table_text = f"nprobe {nprobes}, recall {recalls}, target {target}"
        if answer is None:
            assert got is None, f"{table_text}: no row reaches the target, so return None, not {got!r}"
        else:
            assert type(got) is int, (
                f"{table_text}: {got!r} is a {type(got).__name__}, not an int: "
                "FAISS's setters take a Python int, so return int(...)"
            )
            assert got == answer, f"{table_text}: got {got}, the rule gives {answer}"
    print(f"Correct! The rule's answer on all {len(_MADE_UP)} made-up tables")
    return choose_nprobe


# ------------------------------------------------------------------- given measuring and plotting code
# (not exercises): what the lesson's cells call to print the verdicts and draw the figures. The notebook
# keeps the lines that compute what the lesson is about (the steady rate, the measured / predicted ratios,
# the recall sweep); the bookkeeping around them lives here.

#: A measured / predicted time ratio within this band counts as a match (an IVF / exact one: "the same").
BAND = (0.8, 1.25)


def _rounded(x: float) -> float:
    """x to two significant figures, for a number the cost model only estimates."""
    return float(f"{x:.2g}")


def _side(ratio: float) -> str:
    return "faster" if ratio < BAND[0] else "slower" if ratio > BAND[1] else "within"


def _way(ratios: np.ndarray) -> str:
    return (
        "faster than" if np.all(ratios < 1) else "slower than" if np.all(ratios > 1) else "on both sides of"
    )


def _span(ratios: np.ndarray) -> str:
    """'0.88 to 0.91', or one number where both ends print alike."""
    return " to ".join(dict.fromkeys(f"{r:.2f}" for r in (np.min(ratios), np.max(ratios))))


def ratio_verdict(ratios: Sequence[float]) -> str:
    """One line on measured / predicted time ``ratios``, one per cost measurement (the measured time is the
    same in each): their range and whether it lies within ``BAND``. Where some lie in it and others do not,
    the in-process cost itself moved between measurements, and the line says so: then this run cannot
    separate overhead from load."""
    ratios = np.atleast_1d(np.asarray(ratios, dtype=float))
    shown = " to ".join(dict.fromkeys(f"{r:.2f}" for r in (ratios.min(), ratios.max())))
    sides = {_side(r) for r in ratios}
    if len(sides) == 1:
        verdict = "within 25% of the model" if sides == {"within"} else "more than 25% off the model"
        return f"measured / predicted time {shown}: {verdict}, {_way(ratios)} predicted"
    moved = ratios.max() / ratios.min() - 1
    return (
        f"measured / predicted time {shown}: partly within 25%; the in-process cost itself moved by "
        f"{moved:.0%} between measurements, so this run cannot separate overhead from load"
    )


def plot_pipeline(
    decoded_at: np.ndarray, embedded_at: np.ndarray, batch: int, t_embeds: np.ndarray, title: str
) -> None:
    """Rows decoded and embedded against time (seconds since the start, sorted), with the start-up and the
    band of steady rates the kept cost measurements ``t_embeds`` (seconds per image) predict."""
    import matplotlib.pyplot as plt

    first, rows = embedded_at[0], len(embedded_at)
    fast_rate, slow_rate = 1 / np.min(t_embeds), 1 / np.max(t_embeds)
    x_end = 1.05 * embedded_at[-1]
    rates = " to ".join(dict.fromkeys(f"{r:.1f}" for r in (slow_rate, fast_rate)))
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.step(np.r_[0, decoded_at], np.arange(rows + 1), where="post", label="decoded (tasks)")
    ax.step(np.r_[0, embedded_at], np.arange(rows + 1), where="post", label="embedded (actors)")
    ax.fill_between(
        [first, x_end],
        [batch, batch + (x_end - first) * slow_rate],
        [batch, batch + (x_end - first) * fast_rate],
        color="k",
        alpha=0.15,
        label=f"cost model: {rates} rows/s ({len(t_embeds)} measurement(s))",
    )
    ax.axvspan(0, first, color="gold", alpha=0.25, label=f"start-up: first rows embedded after {first:.0f} s")
    ax.set(xlabel="seconds since the pipeline started", ylabel="rows finished", title=title)
    ax.set_xlim(0, x_end)
    ax.set_ylim(0, rows * 1.05)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=10)  # below: off the data
    fig.tight_layout()
    plt.show()


def report_pipeline(
    decoded_at: np.ndarray,
    embedded_at: np.ndarray,
    batch: int,
    t_embeds: np.ndarray,
    when: Sequence[str],
    kept: np.ndarray,
    forward_runs: np.ndarray,
    forward_is_slower: bool,
    actors: int,
    threads: int,
    threads_in_actor: Any,
    row_mb: float,
    store_mb: float,
    steps: int = 3,
) -> None:
    """Print four lines behind the pipeline's verdict: the cost measurements (``t_embeds``, seconds per
    image, each measured ``when``; those not ``kept`` left out as load) and the start-up; the actor's pauses
    (gaps between finished batches over twice the usual one) and the rate without them; the actor's
    forward pass against this process's (``forward_runs``, seconds per image); and the most decoded rows
    that waited against one step's even share of Ray Data's budget (half the object store in Ray 2.60,
    over ``steps`` steps: read and decode, embed, write)."""
    first, rows = embedded_at[0], len(embedded_at)
    costs = ", ".join(
        f"{1e3 * t:.1f} ({w}{'' if k else ', over 1.5x the fastest: load, left out'})"
        for t, w, k in zip(t_embeds, when, kept, strict=True)
    )
    print(f"t_emb, ms/image: {costs}; start-up {first:.0f} s (until the first rows were embedded)")
    gaps = np.diff(np.unique(embedded_at))  # between consecutive finished batches, after start-up
    usual = np.median(gaps)  # one batch's work
    pauses = gaps[gaps > 2 * usual]
    run_s, idle_s = embedded_at[-1] - first, float((pauses - usual).sum())
    working_rate = (rows - batch) / (run_s - idle_s)  # rows/s with the pauses left out
    print(
        f"the actor waited for rows {len(pauses)} time(s), {idle_s:.1f} s in all "
        f"({idle_s / run_s:.0%} of its {run_s:.0f} s); without those pauses {working_rate:.1f} rows/s"
    )
    if not forward_is_slower:
        print("decoding is the slower side of this plan: the actors' batches follow its pace, not t_fwd")
    else:
        inside = usual * actors / batch  # the actor's seconds per image: its usual gap between batches
        here = forward_runs[kept]  # the same measurements as the verdict's: those not taken as load
        shown = " to ".join(dict.fromkeys(f"{1e3 * t:.1f}" for t in (here.min(), here.max())))
        forward_ratios = inside / here  # the modelled part alone: the actor's forward pass / this process's
        total_ratios = (run_s / (rows - batch)) / t_embeds[kept]  # the verdict's ratios
        print(
            f"forward pass: {1e3 * inside:.1f} ms/image in the actor (PyTorch threads {threads_in_actor}), "
            f"{shown} in this process ({threads} thread(s)); actor / this process {_span(forward_ratios)}, "
            f"the total's measured / predicted {_span(total_ratios)}"
        )
        total_in_band = all(_side(r) == "within" for r in total_ratios)
        if total_in_band and np.all(forward_ratios < 0.9):
            print(
                "   so two effects offset: the actor's forward pass ran faster than the model's, and its "
                "waits for rows and the costs the model leaves out slowed the total back into the band; "
                "the match does not confirm t_fwd"
            )
        elif total_in_band and np.all(forward_ratios > 1.1):
            print(
                "   so effects offset: the actor's forward pass ran slower than the model's, yet the total "
                "lands in the band; the match does not confirm t_fwd"
            )
    moments = np.unique(np.r_[decoded_at, embedded_at])
    waiting = np.searchsorted(decoded_at, moments, side="right") - np.searchsorted(
        embedded_at, moments, side="right"
    )
    peak_mb, budget_mb = waiting.max() * row_mb, 0.5 * store_mb
    share = f"a step's share of Ray Data's budget ({budget_mb:.0f} MB, half the object store, "
    share += f"/ {steps} steps = {budget_mb / steps:.0f} MB)"
    print(
        f"at most {waiting.max()} decoded rows ({peak_mb:.0f} MB) waited at once: "
        + (
            f"more than {share}, so backpressure can hold decoding back until the actor has taken them"
            if peak_mb > budget_mb / steps
            else f"under {share}: this run cannot tell whether backpressure held decoding back"
        )
    )


def search_sweep(vectors: np.ndarray, sizes: Sequence[int], timed: Callable, rounds: int = 3) -> np.ndarray:
    """Seconds of exact all-pairs search (``IndexFlatIP``, ``search(x, 1)``) of the first n rows of
    ``vectors`` for each n of ``sizes``: every n ``rounds`` times in a mixed order, each the fastest of its
    runs."""
    import faiss

    flat_of = {n: faiss.IndexFlatIP(vectors.shape[1]) for n in sizes}
    for n, index in flat_of.items():
        index.add(vectors[:n])
    runs = {n: [] for n in sizes}
    for k in np.random.default_rng(0).permutation(np.repeat(sizes, rounds)):
        runs[k].append(timed(lambda k=k: flat_of[k].search(vectors[:k], 1)))
    return np.array([min(runs[n]) for n in sizes])


def plot_scaling(
    predicted_seconds: Callable,
    t_embs: tuple[float, float],
    cs: tuple[float, float],
    pipeline: tuple[int, float, int, float, float],
    search: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_stars: np.ndarray,
    device: str,
    measurements: int,
    kept: int | None = None,
) -> None:
    """Predicted and measured seconds against n (upper panel) and measured / predicted (lower). ``t_embs`` and
    ``cs``: the (fastest, slowest) of the ``kept`` cost measurements (of ``measurements``; all where
    None), as for ``n_stars``; ``pipeline``: (files, seconds of the whole run, rows after start-up, their
    seconds, their ratio); ``search``: (sizes, seconds, ratios)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    files, whole_s, embedded_n, embedded_s, pipeline_ratio = pipeline
    search_n, search_s, search_ratio = search
    n_grid = np.logspace(2, 8, 50)
    (embed_lo, search_lo), (embed_hi, search_hi) = (
        predicted_seconds(n_grid, t, c) for t, c in zip(t_embs, cs, strict=True)
    )
    narrow = max(np.max(embed_hi / embed_lo), np.max(search_hi / search_lo)) < 1.15  # thin as lines
    counted = f"{measurements}" if kept in (None, measurements) else f"{kept} of {measurements}"
    spread = (
        f"lines: {counted} measurements kept, nearly equal"
        if narrow
        else f"bands: {counted} measurements kept"
    )
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(9, 9.5), gridspec_kw={"height_ratios": [3, 2]})
    ax.fill_between(n_grid, embed_lo, embed_hi, color="C0", alpha=0.35, label=f"embed, predicted ({device})")
    ax.fill_between(
        n_grid, search_lo, search_hi, color="C1", alpha=0.35, label="exact all pairs, predicted (this CPU)"
    )
    ax.loglog([files], [whole_s], "C0o", ms=13, mfc="none", mew=2, label="embed, measured (whole pipeline)")
    ax.loglog(
        [embedded_n],
        [embedded_s],
        "C0s",
        ms=7,
        label=f"embed, measured (after start-up: {embedded_n} rows)",
    )
    ax.loglog(search_n, search_s, "C1o", ms=9, label="exact all pairs, measured")
    ax.axvspan(
        n_stars.min(),
        n_stars.max(),
        color="gray",
        alpha=0.3,
        label=f"n* = {_rounded(n_stars.min()):,.0f} to {_rounded(n_stars.max()):,.0f} (model)",
    )
    ax.set(
        xlabel="images n",
        ylabel="seconds",
        title=f"Where exact search overtakes embedding ({spread})",
    )
    ax.legend(fontsize=10)
    rax.semilogy(search_n, search_ratio, "C1o", ms=9, label="exact all pairs")
    rax.semilogy([embedded_n], [pipeline_ratio], "C0s", ms=9, label="embed (after start-up)")
    rax.axhline(1, color="k", lw=1)
    rax.axhspan(*BAND, color="gray", alpha=0.15, label="within 25%")
    all_ratios = np.r_[search_ratio, pipeline_ratio]
    rax.set_ylim(
        min(0.5, all_ratios.min() / 1.5), max(2, all_ratios.max() * 1.5)
    )  # from the data: no point clipped
    ticks = [
        v
        for v in (0.125, 0.25, 0.5, 0.8, 1, 1.25, 2, 4, 8, 16)
        if rax.get_ylim()[0] <= v <= rax.get_ylim()[1]
    ]
    rax.set_yticks(ticks, [f"{v:g}" for v in ticks])
    rax.set(
        xscale="log",
        xlabel="n (images embedded: square; vectors searched: circles)",
        ylabel="measured / predicted time",
        title="How far off the model is here (predicted from each cost's fastest)",
    )
    rax.set_xticks([embedded_n, *search_n], [f"{v:,}" for v in (embedded_n, *search_n)])
    rax.xaxis.set_minor_formatter(NullFormatter())
    rax.yaxis.set_minor_formatter(NullFormatter())
    rax.legend(fontsize=10)
    fig.tight_layout()
    plt.show()


def report_search(
    search_n: np.ndarray,
    search_s: np.ndarray,
    search_ratio: np.ndarray,
    c_sweep: float,
    c_search: float,
    d: int,
    c_n: int,
) -> None:
    """Print each size's measured and predicted time, the n^2 shape against the sweep's own ``c_n`` point
    (``c_sweep``), and the constant: ``c_sweep`` against the fastest ``c_search`` measured before."""
    shape = search_s / (
        c_sweep * search_n**2 * d
    )  # against the sweep's own n = c_n point: the n^2 law, apart from c
    for n, s, r, h in zip(search_n, search_s, search_ratio, shape, strict=True):
        print(
            f"exact all pairs, n = {n:>5,}: measured {s:.3f} s, predicted {s / r:.3f} s (ratio "
            f"{r:.2f}; shape {h:.2f})"
        )
    off = [f"n = {n:,}: {h:.2f}" for n, h in zip(search_n, shape, strict=True) if _side(h) != "within"]
    print(
        f"verdict: the n^2 shape, each time against the sweep's own n = {c_n:,} point (a change of "
        "load before the "
        "sweep cancels), "
        + (
            f"holds within 25% from n = {search_n[0]:,} to {search_n[-1]:,}"
            if not off
            else "misses by more than 25% at "
            + ", ".join(off)
            + ": it drifts with n, or the load changed during the sweep"
        )
    )
    inside = all(_side(r) == "within" for r in search_ratio)
    print(
        f"the constant: the sweep's c is {c_sweep / c_search:.2f}x the fastest c measured before; "
        "the ratio column is " + ("within 25% at every n" if inside else "more than 25% off somewhere")
    )


def compared(ratio: float) -> str:
    """How an IVF / exact time ratio reads, with ``BAND`` as the noise."""
    return {"faster": "faster than", "slower": "slower than", "within": "about as fast as"}[_side(ratio)]


def ivf_verdict(table: pd.DataFrame, chosen: int, name: str) -> str:
    """Where IVF is faster than, about as fast as, or slower than exact search in collection ``name``'s
    sweep ``table``."""
    verdicts = table["IVF / exact time"].map(compared)
    return (
        f"verdict on {name}, a time ratio within {BAND[0]} to {BAND[1]} counted as the same: IVF is "
        + "; ".join(
            f"{v} exact search at nprobe = {', '.join(str(p) for p in table['nprobe'][verdicts == v])}"
            for v in dict.fromkeys(verdicts)
        )
        + f"; so at the chosen nprobe = {chosen}, {verdicts[table['nprobe'] == chosen].iloc[0]} exact search"
    )


def report_ivf_costs(
    tuning: pd.DataFrame,
    report: pd.DataFrame,
    chosen: int,
    exact_ms: tuple[float, float],
    n: int,
    nlist: int,
    target: float,
) -> None:
    """Print what IVF at ``chosen`` costs against exact search on A (``tuning``) and B (``report``), per query
    and per row scanned, with a verdict; where IVF is slower on both, the share scanned below which it would
    gain and the n at which an nlist growing as sqrt(n) gets there (an extrapolation)."""
    at = [t.loc[t["nprobe"] == chosen].iloc[0] for t in (tuning, report)]
    share = np.array([float(r["share scanned"]) for r in at])
    ivf_ms, exact_ms = np.array([float(r["ms/query"]) for r in at]), np.array(exact_ms)
    ivf_per_row = 1e3 * ivf_ms / (share * n)  # ms per 1,000 rows scanned
    exact_per_row = 1e3 * exact_ms / n  # ms per 1,000 rows compared
    per_row_x = ivf_per_row / exact_per_row  # what IVF pays per row, in rows of exact search
    slower = share * per_row_x  # IVF / exact time per query, A and B
    costs = pd.DataFrame(
        {
            "share scanned": share,
            "IVF ms/query": ivf_ms,
            "exact ms/query": exact_ms,
            "IVF ms/1k rows": ivf_per_row,
            "exact ms/1k rows": exact_per_row,
            "IVF/exact per row": per_row_x,
            "IVF/exact per query": slower,
        },
        index=["A", "B"],
    )
    print(
        f"at nprobe = {chosen} ({chosen / nlist:.0%} of the cells), n = {n:,}; fastest of 3 runs each "
        "(A and B: the same n, d, nprobe and queries, other cells)"
    )
    formats = {c: ("{:.3f}" if "1k" in c else "{:.2f}").format for c in costs}
    print(
        costs.to_string(
            formatters=formats | {"share scanned": "{:.0%}".format, "IVF/exact per row": "{:.1f}".format}
        )
    )
    kinds = [compared(r) for r in slower]
    if kinds[0] != kinds[1]:
        print(
            f"verdict: at the {target} choice IVF is {kinds[0]} exact search on A, {kinds[1]} it on "
            "B: it depends on "
            "the measurement"
        )
    elif kinds[0] != "slower than":
        print(f"verdict: at the {target} choice IVF is {kinds[0]} exact search here, on A and on B")
    else:
        gains_below = " to ".join(
            dict.fromkeys(f"{v:.0%}" for v in (1 / per_row_x.max(), 1 / per_row_x.min()))
        )
        print(
            f"verdict: at the {target} choice IVF is slower than exact search, on A and on B; paying "
            "more per row, it "
            f"gains only where a query scans less than {gains_below} of the rows"
        )
        reach = " to ".join(dict.fromkeys(f"{_rounded(n * v**2):,.0f}" for v in (slower.min(), slower.max())))
        print(
            f"extrapolation, not a measurement: if nlist grows as sqrt(n) and nprobe = {chosen} "
            "keeps the recall, the "
            f"share scanned falls as 1/sqrt(n)\n   and gets there from about n = {reach} on (a lower "
            "bound if nprobe "
            "must grow;\n   it keeps the per-row IVF / exact ratio measured here and leaves out the "
            "comparisons with the nlist centres)"
        )


def plot_nprobe(
    tuning: pd.DataFrame, report: pd.DataFrame, exact_ms: tuple[float, float], target: float, nlist: int
) -> None:
    """Recall (upper panel) and ms per query (lower) against nprobe: A's sweep, B's points drawn right of
    each, and exact search's time on A and B (one line where the two printed times coincide)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter

    nprobes = tuning["nprobe"].tolist()
    on_b = ", ".join(str(p) for p in report["nprobe"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 9))
    top.plot(tuning["nprobe"], tuning["recall"], "o-", ms=7, label="collection A (choosing)")
    top.plot(
        report["nprobe"] * 1.15,
        report["recall"],
        "D",
        ms=9,
        mfc="none",
        mew=2,
        color="C3",
        label=f"collection B at nprobe = {on_b} (reporting; drawn right of each)",
    )
    top.axhline(target, color="gray", ls=":", label=f"target on A: {target}")
    top.axhline(0.95, color="C2", ls="--", label="required: 0.95")
    top.set(
        xscale="log",
        xlabel=f"nprobe (cells scanned, of {nlist})",
        ylabel="recall of exact pairs",
        title="Recall against nprobe",
    )
    top.set_xticks(nprobes, [str(p) for p in nprobes])
    top.legend(fontsize=10, loc="lower right")
    bottom.plot(tuning["nprobe"], tuning["ms/query"], "o-", label="IVF (collection A)")
    bottom.plot(
        report["nprobe"] * 1.15,
        report["ms/query"],
        "D",
        ms=9,
        mfc="none",
        mew=2,
        color="C3",
        label=f"IVF (collection B, nprobe = {on_b}, drawn right of each)",
    )
    exact_a, exact_b = exact_ms
    if f"{exact_a:.2f}" == f"{exact_b:.2f}":  # the printed times coincide: one line for both
        bottom.axhline(exact_a, color="C1", ls="--", lw=2, label=f"exact search (A and B): {exact_a:.2f} ms")
    else:
        bottom.axhline(
            exact_a, color="C1", ls="--", lw=2, label=f"exact search (collection A): {exact_a:.2f} ms"
        )
        bottom.axhline(
            exact_b,
            color="C3",
            ls=(0, (1, 3)),
            lw=2.5,
            label=f"exact search (collection B): {exact_b:.2f} ms",
        )
    bottom.set(
        xscale="log",
        yscale="log",
        xlabel=f"nprobe (cells scanned, of {nlist})",
        ylabel="ms per query (this CPU)",
        title="Query time against nprobe (fastest of 3 runs each)",
    )
    bottom.set_xticks(nprobes, [str(p) for p in nprobes])
    bottom.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    bottom.yaxis.set_major_formatter(lambda v, _: f"{v:g}")
    bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.legend(fontsize=10)
    fig.tight_layout()
    plt.show()


def report_targets(tuning: pd.DataFrame, report: pd.DataFrame, choices: dict[float, int | None]) -> None:
    """Print, for each target on A and the nprobe chosen for it, the recall on A and on B (against the
    required 0.95) and the ms/query on each; then the lower choice's time as a share of the higher's."""
    if None in choices.values():
        print(
            "no nprobe of the sweep reaches "
            + ", ".join(str(t) for t, p in choices.items() if p is None)
            + " on A"
        )
        return
    a, b = (t.set_index("nprobe") for t in (tuning, report))
    for target, p in sorted(choices.items()):
        print(
            f"target {target} on A: nprobe = {p:>2}: recall {a.loc[p, 'recall']:.3f} on A, "
            f"{b.loc[p, 'recall']:.3f} on B "
            f"({'reaches' if b.loc[p, 'recall'] >= 0.95 else 'BELOW'} the required 0.95); "
            f"{a.loc[p, 'ms/query']:.2f} / {b.loc[p, 'ms/query']:.2f} ms/query (A / B)"
        )
    low, high = (choices[t] for t in sorted(choices))
    print(
        f"the {min(choices)} choice scans {low} cells against {high}: "
        f"{a.loc[low, 'ms/query'] / a.loc[high, 'ms/query']:.2f}"
        f" / {b.loc[low, 'ms/query'] / b.loc[high, 'ms/query']:.2f} of the {max(choices)} choice's "
        "time per query "
        "(A / B: each pair from one sweep)"
    )
