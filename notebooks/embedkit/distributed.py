"""Embed a folder, or millions of files, with Ray Data: a streaming pipeline that scales out.

The pipeline is the distributed version of :func:`embedkit.embeddings.embed_images`:

1. **list** the files (``ray.data.from_items``, one row per path with its position);
2. **decode** each batch of files to model-ready tensors in stateless Ray tasks
   (:func:`decode_for_model`: the same reduced-size decode ``embed_images`` uses);
3. **embed** with :class:`BackboneEmbedder`, an actor class: each actor loads the
   network once and then runs batch after batch (``concurrency`` actors, each
   reserving ``num_cpus`` / ``num_gpus``);
4. **write** ``index, path, embedding, error`` rows to Parquet shards, on the machine
   that called :func:`embed_with_ray`, as the rows stream back to it.

A file that cannot be decoded gets a row with an empty (null) embedding and its
reason in ``error``: reported, never fatal, never silently lost. The same code runs
on a laptop (``start_ray()``) and on a cluster (``start_ray(address=...)``); only
where Ray runs and where the files live change. Paths are local files (which every
node must see, e.g. on a shared disk) or URIs that Arrow's file systems
(``pyarrow.fs``) open: ``file://`` (tested), ``s3://`` and ``gs://`` (same code
path, with the cloud's credentials on every node; not tested here).

Before it starts, :func:`embed_with_ray` checks the plan against the cluster
(:func:`plan_embedding`): a plan the cluster cannot run is refused with one line that
says what to change, instead of hanging. While it runs, a pipeline in which nothing
moves for ``stall_timeout_s`` seconds is stopped with :class:`PipelineStalled`.

Sizing a cluster
----------------
Two kinds of work share the cluster: **decoding tasks** (CPU only, ``decode_cpus``
each; Ray runs as many at once as the free CPUs allow) and **embedding actors**
(``concurrency`` copies of the network, each holding ``num_cpus`` CPUs and
``num_gpus`` GPUs for the whole run). An actor must fit on one node, and the actors
must leave at least ``decode_cpus`` free on some node, or nothing is ever decoded.

* **Rates decide the split.** One actor embeds ``r_embed`` images per second
  (:func:`time_forward` on its device, with its threads); one CPU decodes ``r_decode``
  images per second (time the decode step on the bundled files). An actor is kept
  busy by ``r_embed / r_decode`` CPUs of decoding; fewer, and it waits for images.
* **CPU nodes** (``N`` nodes of ``C`` CPUs). One actor per node:
  ``concurrency=N``; on each node split the ``C`` CPUs between the actor
  (``num_cpus=threads=A``) and decoding (``C - A`` CPUs) in the ratio of the rates
  above, and keep ``decode_cpus`` at most ``C - A`` (1, or a fraction such as 0.5).
  On one-CPU nodes only fractions fit: ``num_cpus=0.75, decode_cpus=0.25`` (Ray
  counts fractions; the operating system still shares the one core among them).
  ``concurrency=N, num_cpus=C`` leaves nothing for decoding and is refused.
* **GPU nodes** (``N`` nodes with ``G`` GPUs and ``C`` CPUs each). One actor per GPU:
  ``concurrency=N * G, num_gpus=1, num_cpus=1``; the other ``C - G`` CPUs of each node
  decode (``decode_cpus=1``). On a GPU ``r_embed`` can be many times one CPU's
  ``r_decode``, so decoding CPUs, not GPUs, tend to set the pace: check
  ``G * r_embed / r_decode`` against ``C - G`` before adding GPUs. When one actor
  leaves its GPU idle, two can share it (``num_gpus=0.5``).
* Leave ``num_cpus`` or ``decode_cpus`` out (``None``) and :func:`plan_embedding`
  picks the largest of 1, 0.75, 0.5, 0.25 CPU per actor and of 0.5, 0.25 CPU per
  decoding task that fit, and says so when it had to go below 1 and 0.5.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from PIL import Image

from .backbones import Backbone, load_backbone
from .embeddings import (
    PRECISIONS,
    Embeddings,
    ModelInput,
    decode_one,
    default_precision,
    forward_batch,
    resize_target,
    resolve_precision,
)
from .images import ImageLoadError, load_rgb_bytes

__all__ = [
    "RAY_ENVIRONMENT",
    "BackboneEmbedder",
    "ForwardTiming",
    "Node",
    "PipelineStalled",
    "PixelEmbedder",
    "Plan",
    "PlanError",
    "RayEmbedding",
    "cluster_nodes",
    "decode_batch",
    "decode_for_model",
    "embed_with_ray",
    "model_input",
    "pixels_from_bytes",
    "pipeline_to_parquet",
    "plan_embedding",
    "read_bytes",
    "read_embeddings",
    "start_ray",
    "time_forward",
]

#: Environment settings :func:`start_ray` gives Ray (unless already set) before it imports
#: or starts it: no usage statistics, nothing that phones home. Importing this module sets nothing.
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}


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
    for name, value in RAY_ENVIRONMENT.items():  # read when Ray is imported or started
        os.environ.setdefault(name, value)
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


def _is_uri(path: str) -> bool:
    """``s3://bucket/key``, ``file:///data/x.jpg``: a scheme of two or more letters (not ``C:\\``)."""
    scheme = urlsplit(path).scheme
    return len(scheme) > 1 and "://" in path


@lru_cache(maxsize=32)
def _filesystem_of(prefix: str):
    """One Arrow file system per ``scheme://bucket`` (resolving an S3 bucket's region costs a request)."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(prefix)[0]


def _resolve(path: str, filesystem=None):
    """``(file system, path inside it)`` for a URI, or for any path when ``filesystem`` is given."""
    if filesystem is not None:
        return filesystem, path
    parts = urlsplit(path)
    if parts.scheme == "file":
        return _filesystem_of("file:///"), unquote(parts.path)  # Path.as_uri() writes a space as %20
    if parts.scheme in ("s3", "gs", "gcs"):
        return _filesystem_of(f"{parts.scheme}://{parts.netloc}"), f"{parts.netloc}{parts.path}"
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(path)


def read_bytes(path: str, filesystem=None) -> bytes:
    """A file's bytes through Arrow's file systems (``pyarrow.fs``), the layer Ray Data reads with.

    Args:
        path: a URI (``file:///data/x.jpg``, ``s3://bucket/x.jpg``, ``gs://bucket/x.jpg``),
            or a path inside ``filesystem``.
        filesystem: a ``pyarrow.fs.FileSystem`` to read from (e.g. an ``S3FileSystem`` with
            its own credentials or endpoint); default: the one the URI names.

    Raises:
        ImageLoadError: the file cannot be read (not found, a folder, no permission, ...).
    """
    try:
        fs, inner = _resolve(path, filesystem)
        with fs.open_input_stream(inner) as stream:
            return stream.read()
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except PermissionError:
        raise ImageLoadError(path, "no permission to read the file") from None
    except OSError as exc:
        if "is a directory" in str(exc):
            raise ImageLoadError(path, "is a folder, not an image file") from None
        raise ImageLoadError(path, f"cannot read the file ({exc})") from None


def decode_for_model(path: str, transform: ModelInput, filesystem=None) -> torch.Tensor:
    """One file as the ``(3, H, W)`` float tensor the network takes (:func:`model_input`'s transform).

    This is the pipeline's only decoding step: swap in another decoder here and
    everything else stays. A local path is opened as ``embed_images`` opens it; a URI
    (``file://``, ``s3://``, ``gs://``), or any path when ``filesystem`` is given, is read
    with :func:`read_bytes` and decoded from its bytes by
    :func:`embedkit.images.load_rgb_bytes`, with the same rules, hence the same tensor.

    Raises:
        ImageLoadError: the file cannot be read or opened as an image (the reason says why).
    """
    if filesystem is None and not _is_uri(path):
        return transform(path)
    picture = load_rgb_bytes(
        read_bytes(path, filesystem),
        path,
        transform.background,
        min_side=transform.min_side,
        max_aspect_ratio=transform.max_aspect_ratio,
    )
    return transform.preprocess(picture)


def pixels_from_bytes(data: bytes, transform: ModelInput, name: str = "<bytes>") -> np.ndarray:
    """A file's bytes -> the ``(3, H, W)`` float32 array ``embed_images`` gives the network.

    The bytes-in twin of :func:`decode_for_model`, with ``transform = model_input(backbone)``:
    reduced-size JPEG decode, EXIF orientation, RGB by :func:`embedkit.images.load_rgb_bytes`,
    then the network's preprocessing. ``transform`` is small, so a function that calls this
    ships cheaply to Ray's workers (a backbone would carry its weights along).

    Raises:
        ImageLoadError: the bytes are not an image this course can open (the reason says why).
    """
    picture = load_rgb_bytes(
        data,
        name,
        transform.background,
        min_side=transform.min_side,
        max_aspect_ratio=transform.max_aspect_ratio,
    )
    return transform.preprocess(picture).numpy()


class PixelEmbedder:
    """An actor class for a pipeline whose decoding step yields ``{path, pixels, error}`` batches.

    ``PixelEmbedder(network, device, threads)`` loads the network once; each call embeds
    the rows whose ``error`` is empty in one float32 forward pass and returns a table of
    ``path, error, embedding`` (``dim`` floats, zeros for a bad row), ``decoded_at``
    (passed through when the batch has it) and ``embedded_at`` (the wall-clock time of the call).
    """

    def __init__(self, network: str, device: str | None = None, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.backbone = load_backbone(network, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        ok = np.asarray([e == "" for e in batch["error"]], dtype=bool)
        vectors = np.zeros((len(ok), self.backbone.dim), dtype=np.float32)
        if ok.any():
            x = torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok]))
            vectors[ok] = forward_batch(self.backbone, x, "float32")
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        columns = {
            "path": pa.array([str(p) for p in batch["path"]], type=pa.string()),
            "error": pa.array([str(e) for e in batch["error"]], type=pa.string()),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, self.backbone.dim),
        }
        if "decoded_at" in batch:
            columns["decoded_at"] = pa.array(np.asarray(batch["decoded_at"], dtype=np.float64))
        columns["embedded_at"] = pa.array(np.full(len(ok), time.time()))
        return pa.table(columns)


def pipeline_to_parquet(
    uris: Sequence[str],
    out_dir: str | os.PathLike,
    decode,
    embedder: type,
    constructor_kwargs: dict[str, Any],
    *,
    actors: int = 1,
    actor_cpus: float = 1,
    actor_gpus: float = 0,
    decode_cpus: float = 0.5,
    batch_size: int = 32,
) -> None:
    """The four Ray Data steps, written out: read bytes, decode (tasks), embed (actors), Parquet.

    ``ray.data.read_binary_files(uris, include_paths=True)`` gives ``{bytes, path}`` rows
    (through Arrow's file systems: ``file://``, ``s3://``, ``gs://``); ``decode`` runs as
    stateless tasks of ``decode_cpus`` CPUs; ``embedder`` (an actor class such as
    :class:`PixelEmbedder`, built with ``constructor_kwargs``) runs as ``actors`` actors of
    ``actor_cpus`` CPUs and ``actor_gpus`` GPUs; its tables go to Parquet shards in
    ``out_dir`` (one per block, in the order blocks finish). Ray must be running. Unlike
    :func:`embed_with_ray` it neither checks the plan nor guards against a stall.
    """
    import ray

    (
        ray.data.read_binary_files(list(uris), include_paths=True)
        .map_batches(decode, batch_size=batch_size, num_cpus=decode_cpus)
        .map_batches(
            embedder,
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=actor_cpus,
            num_gpus=actor_gpus,
            fn_constructor_kwargs=constructor_kwargs,
        )
        .write_parquet(str(out_dir))
    )


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def decode_batch(
    batch: dict[str, np.ndarray],
    transform: ModelInput,
    input_shape: tuple[int, int, int],
    filesystem=None,
    record_node: bool = False,
) -> dict[str, np.ndarray]:
    """Ray Data step 2: decode a batch of paths; failures become rows with a reason.

    Args:
        batch: ``{"index": (b,) int64, "path": (b,) str}``.
        transform: :func:`model_input` of the backbone (path -> tensor).
        input_shape: ``(3, H, W)``, the shape ``transform`` gives (bad files get zeros of it,
            so every batch stacks into one array).
        filesystem: passed to :func:`decode_for_model` (URIs need none).
        record_node: add ``"decode_node"``, the Ray node id that decoded the batch.

    Returns:
        ``{"index", "path", "pixels": (b, 3, H, W) float32, "error": (b,) str}``; a bad
        file's pixels are zeros and its ``error`` is the reason (``""`` for good files),
        the same reason ``embed_images`` reports for it.
    """
    pixels = np.zeros((len(batch["path"]), *input_shape), dtype=np.float32)
    errors: list[str] = []
    for i, path in enumerate(batch["path"]):
        _, tensor, reason = decode_one(lambda p: decode_for_model(p, transform, filesystem), i, str(path))
        if tensor is not None:
            pixels[i] = tensor.numpy()
        errors.append(reason)
    out = {
        "index": batch["index"],
        "path": batch["path"],
        "pixels": pixels,
        "error": np.array(errors, dtype=object),
    }
    if record_node:
        out["decode_node"] = np.array([_node_id()] * len(errors), dtype=object)
    return out


class BackboneEmbedder:
    """Ray Data step 3, an actor class: loads the network once, then embeds batch after batch.

    Ray creates ``concurrency`` instances (one per worker process); each loads the
    weights in ``__init__``, so the cost of loading is paid once per worker, not once
    per batch. ``device="cuda"`` puts the network on the GPU Ray gave the actor
    (``num_gpus=1``: Ray sets ``CUDA_VISIBLE_DEVICES``, so it is ``cuda:0`` inside).
    ``record_node=True`` adds a ``node`` column (the Ray node id that embedded the row)
    and passes ``decode_node`` through. ``precision`` is resolved on the actor's own
    device, as :func:`~embedkit.embeddings.embed_images` resolves it (the same forward pass).
    """

    def __init__(
        self,
        requested: str,
        expected: str,
        device: str | None = None,
        threads: int | None = None,
        record_node: bool = False,
        precision: str = "float32",
    ):
        if threads:
            torch.set_num_threads(threads)
        self.backbone = load_backbone(requested, device=device)
        self.precision = resolve_precision(precision, self.backbone.name, self.backbone.device)
        if self.backbone.name != expected:
            raise RuntimeError(
                f"a Ray worker loaded {self.backbone.name!r} where the driver uses {expected!r}: "
                "give every node the same weights (see load_backbone's cache path)"
            )
        self.node = _node_id() if record_node else None

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        """``decode_batch``'s output -> ``index, path, embedding (dim floats or null), error``."""
        ok = np.asarray([e == "" for e in batch["error"]], dtype=bool)
        dim = self.backbone.dim
        vectors = np.zeros((len(ok), dim), dtype=np.float32)
        if ok.any():
            x = torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok]))
            vectors[ok] = forward_batch(self.backbone, x, self.precision)
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        embedding = pa.FixedSizeListArray.from_arrays(flat, dim)
        embedding = pa.compute.if_else(pa.array(ok), embedding, pa.nulls(len(ok), embedding.type))
        columns = {
            "index": pa.array(np.asarray(batch["index"], dtype=np.int64)),
            "path": pa.array([str(p) for p in batch["path"]], type=pa.string()),
            "embedding": embedding,
            "error": pa.array([str(e) for e in batch["error"]], type=pa.string()),
        }
        if self.node is not None:
            columns["node"] = pa.array([self.node] * len(ok), type=pa.string())
            if "decode_node" in batch:
                columns["decode_node"] = pa.array([str(n) for n in batch["decode_node"]], type=pa.string())
        return pa.table(columns)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Node:
    """One alive Ray node: its id and the CPUs and GPUs it offers to the scheduler."""

    node_id: str
    cpus: float
    gpus: float = 0.0


def cluster_nodes() -> list[Node]:
    """The alive nodes of the running Ray cluster (``ray.nodes()``), with their CPUs and GPUs."""
    import ray

    return [
        Node(n["NodeID"], float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0)))
        for n in ray.nodes()
        if n.get("Alive")
    ]


class PlanError(ValueError):
    """A plan the cluster cannot run; the message says what to change."""


class PipelineStalled(RuntimeError):
    """The pipeline made no progress for ``stall_timeout_s`` seconds while files remained."""


@dataclass(frozen=True)
class Plan:
    """What the pipeline reserves: ``concurrency`` actors of ``num_cpus`` CPUs and ``num_gpus``
    GPUs, and decoding tasks of ``decode_cpus`` CPUs; ``note`` says what was chosen and why
    (``""`` when every value was given or the defaults fit)."""

    concurrency: int
    num_cpus: float
    num_gpus: float
    decode_cpus: float
    note: str = ""

    def __str__(self) -> str:
        gpus = f" + {self.num_gpus:g} GPU" if self.num_gpus else ""
        return (
            f"{self.concurrency} embedding actor{'s' * (self.concurrency != 1)} × "
            f"{self.num_cpus:g} CPU{gpus}, decoding tasks × {self.decode_cpus:g} CPU"
        )


_EPS = 1e-9
#: What plan_embedding tries, in order, for an argument left out (None).
ACTOR_CPUS = (1.0, 0.75, 0.5, 0.25)
DECODE_CPUS = (0.5, 0.25)


def _actors_on(cpus: float, gpus: float, num_cpus: float, num_gpus: float) -> float:
    """How many actors fit on a node with ``cpus`` and ``gpus`` free (inf if they need nothing)."""
    if cpus < -_EPS:
        return 0
    fit = math.inf
    if num_cpus > 0:
        fit = math.floor(cpus / num_cpus + _EPS)
    if num_gpus > 0:
        fit = min(fit, math.floor(gpus / num_gpus + _EPS))
    return fit


def _most_actors(nodes: Sequence[Node], num_cpus: float, num_gpus: float, decode_cpus: float) -> float:
    """Most actors the nodes hold while one node keeps ``decode_cpus`` free for decoding."""
    best = 0
    for keep in nodes:
        total = sum(
            _actors_on(n.cpus - (decode_cpus if n is keep else 0), n.gpus, num_cpus, num_gpus) for n in nodes
        )
        best = max(best, total)
    return best


def _describe(nodes: Sequence[Node]) -> str:
    kinds = Counter((n.cpus, n.gpus) for n in nodes)
    parts = []
    for (cpus, gpus), count in sorted(kinds.items(), reverse=True):
        gpu = f" and {gpus:g} GPU{'s' * (gpus != 1)}" if gpus else ""
        parts.append(f"{count} node{'s' * (count != 1)} of {cpus:g} CPU{'s' * (cpus != 1)}{gpu}")
    return " + ".join(parts) or "no alive node"


def _refusal(
    nodes: Sequence[Node], concurrency: int, num_cpus: float, num_gpus: float, decode_cpus: float
) -> str:
    """One line: why the plan cannot run on ``nodes``, and what to change."""
    gpu = f" + {num_gpus:g} GPU" if num_gpus else ""
    actors = f"{concurrency} actor{'s' * (concurrency != 1)} × {num_cpus:g} CPU{gpu}"
    cluster = _describe(nodes)
    if _most_actors(nodes, num_cpus, num_gpus, 0) < 1:
        why = f"one actor ({num_cpus:g} CPU{gpu}) fits on no node of the cluster ({cluster})"
    elif _most_actors(nodes, num_cpus, num_gpus, 0) < concurrency:
        why = f"{actors} do not fit on {cluster}"
    else:
        why = f"{actors} leave no node {decode_cpus:g} CPU for the decoding tasks on {cluster}"
    fixes = []
    most = _most_actors(nodes, num_cpus, num_gpus, decode_cpus)
    if 1 <= most < concurrency:
        fixes.append(f"concurrency={int(most)}")
    cpus = [
        c for c in ACTOR_CPUS if c < num_cpus and _most_actors(nodes, c, num_gpus, decode_cpus) >= concurrency
    ]
    if cpus:
        fixes.append(f"num_cpus={cpus[0]:g}")
    decode = [
        d
        for d in (*DECODE_CPUS, 0.1)
        if d < decode_cpus and _most_actors(nodes, num_cpus, num_gpus, d) >= concurrency
    ]
    if decode:
        fixes.append(f"decode_cpus={decode[0]:g}")
    if num_gpus and not any(n.gpus for n in nodes):
        fixes = ["num_gpus=0 (no node has a GPU)"]
    fix = " or ".join(fixes) if fixes else "a bigger cluster, or fewer actors reserving less"
    return f"{why}: use {fix}"


def plan_embedding(
    concurrency: int = 1,
    num_cpus: float | None = None,
    num_gpus: float = 0,
    decode_cpus: float | None = None,
    nodes: Sequence[Node] | None = None,
) -> Plan:
    """Check that ``concurrency`` actors and at least one decoding task fit the cluster.

    Each actor must fit on one node (its ``num_cpus`` and ``num_gpus`` together), and
    after placing all actors some node must still have ``decode_cpus`` CPUs free, or
    the decoding tasks could never run and the pipeline would wait forever.
    Arguments given are kept as they are: a plan that does not fit is refused.
    ``num_cpus`` or ``decode_cpus`` left out (``None``) is chosen: the first of
    :data:`ACTOR_CPUS` and :data:`DECODE_CPUS` that fits (1 and 0.5 when they do), and
    ``note`` (also issued as a warning by :func:`embed_with_ray`) says when it had to
    go lower.

    The check counts what Ray's scheduler counts (reserved CPUs and GPUs on alive nodes,
    not how busy they are). It cannot know where Ray will place actors; it only proves a
    placement exists. An autoscaling cluster that will add nodes may need
    ``check_plan=False``.

    Args:
        concurrency, num_cpus, num_gpus, decode_cpus: as in :func:`embed_with_ray`.
        nodes: the cluster's nodes (default: :func:`cluster_nodes` of the running Ray).

    Returns:
        The :class:`Plan` to run.

    Raises:
        PlanError: the plan cannot run; the one-line message says what to change.
        ValueError: a value that means nothing (``concurrency=0``, negative CPUs).
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number of actors >= 1, got {concurrency!r}")
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if value is not None and not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    if decode_cpus is not None and not decode_cpus > 0:
        raise ValueError(f"decode_cpus must be > 0 (each decoding task needs some CPU), got {decode_cpus!r}")
    if nodes is None:
        nodes = cluster_nodes()
    actor_choices = ACTOR_CPUS if num_cpus is None else (float(num_cpus),)
    decode_choices = DECODE_CPUS if decode_cpus is None else (float(decode_cpus),)
    for c in actor_choices:
        for d in decode_choices:
            if _most_actors(nodes, c, num_gpus, d) >= concurrency:
                note = ""
                chosen = [
                    f"{name}={v:g}"
                    for name, v, given, default in (
                        ("num_cpus", c, num_cpus, ACTOR_CPUS[0]),
                        ("decode_cpus", d, decode_cpus, DECODE_CPUS[0]),
                    )
                    if given is None and v != default
                ]
                if chosen:
                    note = (
                        f"chose {' and '.join(chosen)} so that {concurrency} actor{'s' * (concurrency != 1)} "
                        f"and the decoding tasks fit on {_describe(nodes)}"
                    )
                return Plan(concurrency, c, float(num_gpus), d, note)
    raise PlanError(_refusal(nodes, concurrency, actor_choices[0], num_gpus, decode_choices[0]))


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class ForwardTiming:
    """Seconds per image of a network's forward pass, and the device that ran it."""

    seconds_per_image: float
    device: str
    batch_size: int

    @property
    def images_per_second(self) -> float:
        return 1.0 / self.seconds_per_image

    def __str__(self) -> str:
        return (
            f"{1e3 * self.seconds_per_image:.2f} ms/image ({self.images_per_second:.0f} images/s) "
            f"on {self.device}, batches of {self.batch_size}"
        )


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} PyTorch threads)"
    return str(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_forward(backbone: Backbone, batch_size: int | None = None, repeats: int = 3) -> ForwardTiming:
    """Time the network's forward pass on ``backbone.device``: the best of ``repeats`` batches.

    The batch is random preprocessed-size input (decoding is not timed). One untimed call
    comes first (it pays for memory allocation and kernel selection). GPUs run
    asynchronously: the clock is read only after ``torch.cuda.synchronize()``, otherwise
    it would time the launch of the work, not the work. The result names the device.
    """
    from .embeddings import default_batch_size

    batch_size = batch_size or getattr(backbone, "batch_size", None) or default_batch_size(backbone.device)
    device = torch.device(backbone.device)
    shape = tuple(backbone.preprocess(Image.new("RGB", (32, 32))).shape)
    x = backbone.as_input(torch.randn(batch_size, *shape, generator=torch.Generator().manual_seed(0)))
    best = math.inf
    with torch.inference_mode():
        backbone.model(x)
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            backbone.model(x)
            _sync(device)
            best = min(best, time.perf_counter() - start)
    return ForwardTiming(best / batch_size, _device_label(device), batch_size)


# --------------------------------------------------------------------------- the pipeline


@dataclass
class RayEmbedding:
    """What :func:`embed_with_ray` did: the embeddings, where they are, and how long it took.

    Attributes:
        embeddings: rows in input order (bad files in ``embeddings.failed``).
        out_dir: the folder of Parquet shards.
        files: the shard files written.
        seconds: wall-clock time of the whole pipeline run.
        plan: what the pipeline reserved (:func:`plan_embedding`).
        embed_nodes: Ray node id -> rows its embedding actors produced.
        decode_nodes: Ray node id -> rows its decoding tasks produced.
    """

    embeddings: Embeddings
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    plan: Plan | None = None
    embed_nodes: dict[str, int] = field(default_factory=dict)
    decode_nodes: dict[str, int] = field(default_factory=dict)


def _check_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    items = [str(p) for p in paths]
    if not items:
        raise ValueError("no files to embed: pass a non-empty list of paths")
    return items


class _ShardWriter:
    """Writes tables to ``part-00000.parquet``, ``part-00001.parquet``, ... of at least ``rows`` rows."""

    def __init__(self, out: Path, rows: int):
        self.out, self.rows = out, max(1, int(rows))
        self.pending: list[pa.Table] = []
        self.files: list[Path] = []

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        if sum(t.num_rows for t in self.pending) >= self.rows:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        import pyarrow.parquet as pq

        path = self.out / f"part-{len(self.files):05d}.parquet"
        pq.write_table(pa.concat_tables(self.pending), path)
        self.files.append(path)
        self.pending = []


def _stalled(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is Ray Data's no-progress timeout."""
    try:
        from ray.data.exceptions import ExecutionTimeoutError
    except ImportError:  # a Ray without the guard never raises it
        return False

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ExecutionTimeoutError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def embed_with_ray(
    paths: Sequence[str | os.PathLike],
    backbone: Backbone,
    out_dir: str | os.PathLike,
    *,
    batch_size: int | None = None,
    concurrency: int = 1,
    num_cpus: float | None = None,
    num_gpus: float = 0,
    threads: int | None = None,
    decode_cpus: float | None = None,
    rows_per_file: int = 1000,
    progress: bool = True,
    filesystem=None,
    stall_timeout_s: float = 300,
    check_plan: bool = True,
    precision: str | None = None,
) -> RayEmbedding:
    """Embed ``paths`` with a Ray Data pipeline and write the rows to Parquet shards.

    Ray must be running (:func:`start_ray`). Before anything runs, the plan
    (``concurrency`` actors × ``num_cpus``/``num_gpus``, decoding tasks × ``decode_cpus``)
    is checked against the cluster's alive nodes by :func:`plan_embedding`: a plan that
    cannot run raises :class:`PlanError` at once, with one line saying what to change;
    ``num_cpus`` or ``decode_cpus`` left out are chosen to fit (a warning says so when
    they had to go below 1 and 0.5). See the module's "Sizing a cluster".

    Args:
        paths: image files: local paths (every node must see them: a shared disk), or
            URIs read through ``pyarrow.fs`` (``file://``, ``s3://``, ``gs://``).
        backbone: the driver's backbone; each actor loads the same network by name.
        out_dir: local folder for the Parquet shards (created; old shards in it are
            removed). The rows stream back to this process, which writes them.
        batch_size: images per forward pass (default ``backbone.batch_size`` if it has
            one, else 8 on a CPU and 32 on a GPU).
        concurrency: number of embedding actors (model copies) running at once.
        num_cpus: CPUs each actor reserves (default: chosen, 1 where it fits).
        num_gpus: GPUs each actor reserves (default 0). With ``num_gpus=1`` each actor
            gets one GPU (Ray sets ``CUDA_VISIBLE_DEVICES``) and moves the network there;
            fractions let actors share a GPU.
        threads: PyTorch threads per actor (default: what Ray gives).
        decode_cpus: CPUs each decoding task reserves, fractions allowed (default:
            chosen, 0.5 where it fits).
        rows_per_file: rows per Parquet shard (at least; the last shard may be smaller).
        progress: show Ray Data's progress bar.
        filesystem: a ``pyarrow.fs.FileSystem`` every path is read from (for example an
            ``S3FileSystem`` with its own endpoint); default: local paths, and for URIs
            the file system they name.
        stall_timeout_s: stop the pipeline, with :class:`PipelineStalled`, when no block
            moved between its steps for this many seconds while work remained (time since
            the last progress, not the total; allow for one batch's forward pass and an
            actor's start-up on the slowest node). It sets Ray Data's no-progress guard
            (``DataContext.execution_no_progress_timeout_s``); a Ray too old to have one
            warns that the timeout is ignored.
        check_plan: ``False`` skips the plan check (an autoscaling cluster that will
            grow); the stall timeout still applies.
        precision: as :func:`~embedkit.embeddings.embed_images` takes it (default
            ``$EMBEDKIT_PRECISION`` on the driver, else ``"float32"``); each actor resolves it
            on its own device.

    Returns:
        :class:`RayEmbedding`; its ``embeddings`` has one row per good file, in input
        order; ``plan``, ``embed_nodes`` and ``decode_nodes`` say what ran where.

    Raises:
        PlanError: the cluster cannot run the plan.
        PipelineStalled: nothing moved for ``stall_timeout_s`` seconds; the pipeline was stopped.
    """
    import ray

    from .embeddings import default_batch_size

    if not ray.is_initialized():
        raise RuntimeError("Ray is not running: call embedkit.distributed.start_ray() first")
    items = _check_paths(paths)
    if not stall_timeout_s > 0:
        raise ValueError(f"stall_timeout_s must be > 0 seconds, got {stall_timeout_s!r}")
    precision = default_precision() if precision is None else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if check_plan:
        plan = plan_embedding(concurrency, num_cpus, num_gpus, decode_cpus)
        if plan.note:
            warnings.warn(f"embed_with_ray: {plan.note}", UserWarning, stacklevel=2)
    else:
        plan = Plan(
            concurrency,
            ACTOR_CPUS[0] if num_cpus is None else num_cpus,
            num_gpus,
            DECODE_CPUS[0] if decode_cpus is None else decode_cpus,
        )
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
    device = "cuda" if plan.num_gpus else "cpu"

    transform = model_input(backbone)
    input_shape = tuple(backbone.preprocess(Image.new("RGB", (32, 32))).shape)
    start = time.perf_counter()
    rows = ray.data.from_items([{"index": i, "path": p} for i, p in enumerate(items)])
    decoded = rows.map_batches(
        decode_batch,
        batch_size=batch_size,
        num_cpus=plan.decode_cpus,
        fn_kwargs={
            "transform": transform,
            "input_shape": input_shape,
            "filesystem": filesystem,
            "record_node": True,
        },
    )
    embedded = decoded.map_batches(
        BackboneEmbedder,
        batch_size=batch_size,
        num_cpus=plan.num_cpus,
        num_gpus=plan.num_gpus,
        compute=ray.data.ActorPoolStrategy(size=plan.concurrency),
        fn_constructor_kwargs={
            "requested": backbone.requested,
            "expected": backbone.name,
            "device": device,
            "threads": threads,
            "record_node": True,
            "precision": precision,
        },
    )
    # Ray Data's own guard: it stops the executor when no block moves for this long.
    if hasattr(embedded.context, "execution_no_progress_timeout_s"):
        embedded.context.execution_no_progress_timeout_s = float(stall_timeout_s)
    else:
        warnings.warn(
            f"Ray {ray.__version__} has no no-progress guard (DataContext.execution_no_progress_timeout_s): "
            "stall_timeout_s is ignored; a newer Ray stops a stalled pipeline",
            UserWarning,
            stacklevel=2,
        )
    writer = _ShardWriter(out, rows_per_file)
    embed_nodes: Counter[str] = Counter()
    decode_nodes: Counter[str] = Counter()
    done = 0
    try:
        for table in embedded.iter_batches(batch_size=None, batch_format="pyarrow"):
            embed_nodes.update(table["node"].to_pylist())
            decode_nodes.update(table["decode_node"].to_pylist())
            writer.add(table.drop_columns(["node", "decode_node"]))
            done += table.num_rows
    except Exception as exc:
        if not _stalled(exc):
            raise
        raise PipelineStalled(
            f"the pipeline made no progress for {stall_timeout_s:g} s with {len(items) - done} of "
            f"{len(items)} files left and was stopped (plan: {plan}; cluster: {_describe(cluster_nodes())}): "
            "a plan the cluster cannot run, a node that died, or a file whose reading hangs; raise "
            "stall_timeout_s if a batch or an actor's start legitimately takes longer"
        ) from None
    writer.flush()
    seconds = time.perf_counter() - start
    result = read_embeddings(out, backbone.name)
    return RayEmbedding(result, out, writer.files, seconds, plan, dict(embed_nodes), dict(decode_nodes))


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
