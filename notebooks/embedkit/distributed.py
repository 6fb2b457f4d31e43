"""Embed a folder, or millions of files, with Ray Data: a streaming pipeline that scales out.

The pipeline is the distributed version of :func:`embedkit.embeddings.embed_images`:

1. **list** the files (``ray.data.from_items``, one row per path with its position);
2. **decode** each batch of files to model-ready tensors in stateless Ray tasks
   (:func:`decode_for_model`: the same reduced-size decode ``embed_images`` uses);
3. **embed** with :class:`BackboneEmbedder`, an actor class: each actor loads the
   network once and then runs batch after batch (``concurrency`` actors, each
   reserving ``num_cpus`` / ``num_gpus``);
4. **write** ``index, path, embedding, error`` rows to Parquet shards.

A file that cannot be decoded gets a row with an empty (null) embedding and its
reason in ``error``: reported, never fatal, never silently lost. The same code runs
on a laptop (``start_ray()``) and on a cluster (``start_ray(address="ray://...")``);
only where Ray runs and where the files live (a shared or ``s3://`` path) change.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from PIL import Image

from .backbones import Backbone, load_backbone
from .embeddings import Embeddings, ModelInput, decode_one, resize_target

__all__ = [
    "BackboneEmbedder",
    "RayEmbedding",
    "decode_batch",
    "decode_for_model",
    "embed_with_ray",
    "model_input",
    "read_embeddings",
    "start_ray",
]

# Ray reads these when it is imported or started: no usage statistics, nothing that phones home.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


def start_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    object_store_mb: int = 512,
    quiet: bool = True,
) -> dict[str, Any]:
    """Start Ray on this machine, or connect to a cluster, with settings fit for a laptop.

    Args:
        address: ``None`` starts a local Ray on this machine; a cluster's address
            (``"ray://head-node:10001"``, or ``"auto"`` on a cluster node) connects to it
            instead. Nothing else in the pipeline changes.
        num_cpus: CPUs Ray may schedule on this machine (default: all of them).
        object_store_mb: shared memory for blocks in flight (local Ray only). Ray
            Data streams, so a small store is enough; it never holds the whole data set.
        quiet: no dashboard, no usage statistics, workers' log lines not copied into
            this process's output (errors still are raised here), and no notice that
            token authentication is on (it stays on).

    Returns:
        The cluster's resources as Ray reports them, e.g. ``{"CPU": 2.0, ...}``.
    """
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet}
    if address is None:  # "local": a Ray of its own, even where another one already runs on this machine
        kwargs.update(address="local", num_cpus=num_cpus, object_store_memory=object_store_mb * 1024**2)
    else:
        kwargs["address"] = address
    notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
    only_the_notice = _DropMessage("Token authentication is enabled for this Ray cluster")
    if quiet:
        notice.addFilter(only_the_notice)
    try:
        ray.init(**kwargs)
    finally:
        notice.removeFilter(only_the_notice)
    return ray.cluster_resources()


class _DropMessage(logging.Filter):
    """Drops log records whose message starts with ``prefix``; every other record passes.

    A new local Ray turns on token authentication (good) and logs a notice saying so at
    warning level on every start; that notice, and only it, is dropped when ``quiet``.
    """

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def model_input(backbone: Backbone) -> ModelInput:
    """The transform ``embed_images`` applies to each file, for ``backbone``: path -> ``(3, H, W)``.

    It decodes at reduced size (JPEG DCT scaling, box reduction for other formats) to the
    short side the network's preprocessing resizes to (:func:`embedkit.embeddings.resize_target`),
    refuses extreme aspect ratios by name, then runs ``backbone.preprocess``. Using the very
    same transform is what makes the pipeline's rows equal ``embed_images``'s rows.
    """
    return ModelInput(backbone.preprocess, resize_target(backbone))


def decode_for_model(path: str, transform: ModelInput) -> torch.Tensor:
    """One file as the ``(3, H, W)`` float tensor the network takes (:func:`model_input`'s transform).

    This is the pipeline's only decoding step: swap in another decoder here and
    everything else stays.

    Raises:
        ImageLoadError: the file cannot be opened as an image (the reason says why).
    """
    return transform(path)


def decode_batch(
    batch: dict[str, np.ndarray], transform: ModelInput, input_shape: tuple[int, int, int]
) -> dict[str, np.ndarray]:
    """Ray Data step 2: decode a batch of paths; failures become rows with a reason.

    Args:
        batch: ``{"index": (b,) int64, "path": (b,) str}``.
        transform: :func:`model_input` of the backbone (path -> tensor).
        input_shape: ``(3, H, W)``, the shape ``transform`` gives (bad files get zeros of it,
            so every batch stacks into one array).

    Returns:
        ``{"index", "path", "pixels": (b, 3, H, W) float32, "error": (b,) str}``; a bad
        file's pixels are zeros and its ``error`` is the reason (``""`` for good files),
        the same reason ``embed_images`` reports for it.
    """
    pixels = np.zeros((len(batch["path"]), *input_shape), dtype=np.float32)
    errors: list[str] = []
    for i, path in enumerate(batch["path"]):
        _, tensor, reason = decode_one(lambda p: decode_for_model(p, transform), i, str(path))
        if tensor is not None:
            pixels[i] = tensor.numpy()
        errors.append(reason)
    return {"index": batch["index"], "path": batch["path"], "pixels": pixels,
            "error": np.array(errors, dtype=object)}


class BackboneEmbedder:
    """Ray Data step 3, an actor class: loads the network once, then embeds batch after batch.

    Ray creates ``concurrency`` instances (one per worker process); each loads the
    weights in ``__init__``, so the cost of loading is paid once per worker, not once
    per batch.
    """

    def __init__(self, requested: str, expected: str, device: str | None = None, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.backbone = load_backbone(requested, device=device)
        if self.backbone.name != expected:
            raise RuntimeError(
                f"a Ray worker loaded {self.backbone.name!r} where the driver uses {expected!r}: "
                "give every node the same weights (see load_backbone's cache path)"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        """``decode_batch``'s output -> ``index, path, embedding (dim floats or null), error``."""
        ok = np.asarray([e == "" for e in batch["error"]], dtype=bool)
        dim = self.backbone.dim
        vectors = np.zeros((len(ok), dim), dtype=np.float32)
        if ok.any():
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok]))
                vectors[ok] = self.backbone.model(self.backbone.as_input(x)).float().cpu().numpy()
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        embedding = pa.FixedSizeListArray.from_arrays(flat, dim)
        embedding = pa.compute.if_else(pa.array(ok), embedding, pa.nulls(len(ok), embedding.type))
        return pa.table({
            "index": pa.array(np.asarray(batch["index"], dtype=np.int64)),
            "path": pa.array([str(p) for p in batch["path"]], type=pa.string()),
            "embedding": embedding,
            "error": pa.array([str(e) for e in batch["error"]], type=pa.string()),
        })


@dataclass
class RayEmbedding:
    """What :func:`embed_with_ray` did: the embeddings, where they are, and how long it took.

    Attributes:
        embeddings: rows in input order (bad files in ``embeddings.failed``).
        out_dir: the folder of Parquet shards.
        files: the shard files written.
        seconds: wall-clock time of the whole pipeline run.
    """

    embeddings: Embeddings
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _check_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    items = [str(p) for p in paths]
    if not items:
        raise ValueError("no files to embed: pass a non-empty list of paths")
    return items


def embed_with_ray(
    paths: Sequence[str | os.PathLike],
    backbone: Backbone,
    out_dir: str | os.PathLike,
    *,
    batch_size: int | None = None,
    concurrency: int = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    threads: int | None = None,
    decode_cpus: float = 0.5,
    rows_per_file: int = 1000,
    progress: bool = True,
) -> RayEmbedding:
    """Embed ``paths`` with a Ray Data pipeline and write the rows to Parquet shards.

    Ray must be running (:func:`start_ray`).

    Args:
        paths: image files (local, or on a file system every worker sees).
        backbone: the driver's backbone; each actor loads the same network by name.
        out_dir: folder for the Parquet shards (created; old shards in it are removed).
        batch_size: images per forward pass (default ``backbone.batch_size`` if it has
            one, else 8 on a CPU and 32 on a GPU).
        concurrency: number of embedding actors (model copies) running at once.
        num_cpus, num_gpus: what each actor reserves from Ray's scheduler; with
            ``num_gpus=1`` each actor gets one GPU and Ray sets ``CUDA_VISIBLE_DEVICES``.
        threads: PyTorch threads per actor (default: what Ray gives, ``num_cpus``).
        decode_cpus: CPUs each decoding task reserves (fractions allowed).
        rows_per_file: rows per Parquet shard (at least).
        progress: show Ray Data's progress bar.

    Returns:
        :class:`RayEmbedding`; its ``embeddings`` has one row per good file, in input order.
    """
    import ray

    from .embeddings import default_batch_size

    if not ray.is_initialized():
        raise RuntimeError("Ray is not running: call embedkit.distributed.start_ray() first")
    items = _check_paths(paths)
    if batch_size is None:
        batch_size = getattr(backbone, "batch_size", None) or default_batch_size(backbone.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.parquet"):
        old.unlink()

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.enable_operator_progress_bars = False  # one bar for the whole pipeline
    # Ray Data warns once per process that its bars are off; here they are off on purpose.
    from ray.util.debug import log_once

    log_once("ray_data_progress_manager_global" if progress else "ray_data_progress_manager_disabled")
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    device = "cuda" if num_gpus else "cpu"

    transform = model_input(backbone)
    input_shape = tuple(backbone.preprocess(Image.new("RGB", (32, 32))).shape)
    start = time.perf_counter()
    rows = ray.data.from_items([{"index": i, "path": p} for i, p in enumerate(items)])
    decoded = rows.map_batches(decode_batch, batch_size=batch_size, num_cpus=decode_cpus,
                               fn_kwargs={"transform": transform, "input_shape": input_shape})
    embedded = decoded.map_batches(
        BackboneEmbedder, batch_size=batch_size, num_cpus=num_cpus, num_gpus=num_gpus,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        fn_constructor_kwargs={"requested": backbone.requested, "expected": backbone.name,
                               "device": device, "threads": threads},
    )
    embedded.write_parquet(str(out), min_rows_per_file=rows_per_file)
    seconds = time.perf_counter() - start
    result = read_embeddings(out, backbone.name)
    return RayEmbedding(result, out, sorted(out.glob("*.parquet")), seconds)


def read_embeddings(out_dir: str | os.PathLike, backbone_name: str = "") -> Embeddings:
    """Read the Parquet shards :func:`embed_with_ray` wrote, with pandas, in input order.

    Returns:
        :class:`Embeddings` with ``vectors`` ``(n_good, dim)`` float32, ``paths`` of those
        rows, and ``failed`` as ``(path, reason)`` for every file that could not be embedded.
    """
    frame = pd.read_parquet(out_dir).sort_values("index", kind="stable")
    bad = frame["error"] != ""
    good = frame[~bad]
    if len(good):
        vectors = np.stack(good["embedding"].to_numpy()).astype(np.float32)
    else:
        vectors = np.zeros((0, 0), dtype=np.float32)
    failed = list(zip(frame.loc[bad, "path"], frame.loc[bad, "error"], strict=True))
    return Embeddings(vectors, good["path"].tolist(), failed, backbone_name)
