"""Embed many images with a backbone: batched, decoded in parallel, bad files reported.

``embed_images(paths, backbone)`` returns an :class:`Embeddings`: the ``(n, dim)``
float32 matrix together with the path of each row and the files that could not be
embedded, so a row can never be matched to the wrong image. Files are decoded and
preprocessed by a pool of threads while the network works on the previous batch.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .backbones import Backbone
from .images import ImageLoadError, as_rgb

__all__ = ["Embeddings", "default_batch_size", "embed_images"]


@dataclass
class Embeddings:
    """Embedding vectors with the image each row came from.

    Attributes:
        vectors: ``(n, dim)`` float32, row ``i`` is the embedding of ``paths[i]``.
        paths: the source of each row, as given (in-memory images are named
            ``"<image 3>"`` by their position in the input).
        failed: ``(path, reason)`` for each input that could not be embedded; these
            have no row.
        backbone: name of the network that produced the vectors.
        source: optional fingerprint of the files embedded (e.g. their checksums), so a
            saved file can tell whether it is still up to date.
    """

    vectors: np.ndarray
    paths: list[str]
    failed: list[tuple[str, str]] = field(default_factory=list)
    backbone: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.paths):
            raise ValueError(
                f"vectors must be (n, dim) with one row per path; got shape "
                f"{self.vectors.shape} for {len(self.paths)} paths"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __array__(self, dtype=None, copy=None):
        return self.vectors if dtype is None else self.vectors.astype(dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return self.vectors.shape

    def row(self, path: str | os.PathLike) -> int:
        """The row index of ``path`` (as it was given to :func:`embed_images`)."""
        try:
            return self.paths.index(str(path))
        except ValueError:
            raise KeyError(f"{path} has no embedding row") from None

    def save(self, file: str | os.PathLike) -> Path:
        """Write vectors, paths, failures, backbone name and source to one ``.npz`` file."""
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            file,
            vectors=self.vectors,
            paths=np.array(self.paths, dtype=str),
            failed=np.array(self.failed, dtype=str).reshape(-1, 2),
            backbone=np.array(self.backbone),
            source=np.array(self.source),
        )
        return file

    @classmethod
    def load(cls, file: str | os.PathLike) -> Embeddings:
        """Read what :meth:`save` wrote."""
        with np.load(file, allow_pickle=False) as data:
            return cls(
                vectors=data["vectors"],
                paths=data["paths"].tolist(),
                failed=[tuple(pair) for pair in data["failed"].tolist()],
                backbone=str(data["backbone"]),
                source=str(data["source"]) if "source" in data.files else "",
            )


def default_batch_size(device: torch.device) -> int:
    """Images per forward pass: 8 on a CPU, where a small batch's activations stay in
    cache (1.2x to 1.6x the throughput of 32 on a 2-core CPU, see benchmarks/), and 32
    on a GPU, which needs larger batches to keep busy."""
    return 8 if device.type == "cpu" else 32


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _progress_bar(total: int, enabled: bool, desc: str):
    """tqdm's Jupyter widget in a notebook, a text bar on a terminal, nothing in logs."""
    from tqdm.auto import tqdm

    show = enabled and (_in_notebook() or sys.stderr.isatty())
    return tqdm(total=total, desc=desc, unit="img", disable=not show, leave=show)


def _name(item, index: int) -> str:
    if isinstance(item, Image.Image):
        return getattr(item, "filename", "") or f"<image {index}>"
    return str(item)


def _prepared(items, preprocess, background, workers, window) -> Iterator:
    """Yield ``(name, tensor or None, reason)`` in input order, decoding ``window`` ahead."""
    def job(pair):
        index, item = pair
        try:
            return _name(item, index), preprocess(as_rgb(item, background)), ""
        except ImageLoadError as exc:
            return _name(item, index), None, exc.reason
        except (ValueError, TypeError, OSError) as exc:
            return _name(item, index), None, f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for pair in enumerate(items):
            pending.append(pool.submit(job, pair))
            if len(pending) >= window:
                yield pending.popleft().result()
        for future in pending:
            yield future.result()


def embed_images(
    images_or_paths: Iterable[str | os.PathLike | Image.Image],
    backbone: Backbone,
    batch_size: int | None = None,
    progress: bool = True,
    workers: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Embeddings:
    """Embed images with ``backbone.model`` in batches.

    Args:
        images_or_paths: file paths and/or ``PIL.Image`` objects.
        backbone: from :func:`embedkit.backbones.load_backbone`.
        batch_size: images per forward pass; default :func:`default_batch_size`
            (8 on a CPU, 32 on a GPU).
        progress: show a progress bar in Jupyter or on a terminal (never in logs).
        workers: threads that decode and preprocess ahead of the network
            (default: the number of CPU cores, at most 8).
        background: colour transparent areas are composited over.

    Returns:
        :class:`Embeddings` with ``vectors`` of shape ``(n_ok, backbone.dim)``,
        float32, in input order; the files that failed are listed in ``failed``
        with a reason and reported in one warning, and the rest go on.
    """
    items: Sequence = list(images_or_paths)
    if batch_size is None:
        batch_size = default_batch_size(backbone.device)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    workers = workers or min(8, os.cpu_count() or 1)
    model = backbone.model

    rows: list[np.ndarray] = []
    paths: list[str] = []
    failed: list[tuple[str, str]] = []
    batch: list[torch.Tensor] = []
    batch_names: list[str] = []

    def flush() -> None:
        with torch.inference_mode():
            out = model(backbone.as_input(torch.stack(batch)))
        rows.append(out.float().cpu().numpy())
        paths.extend(batch_names)
        batch.clear()
        batch_names.clear()

    bar = _progress_bar(len(items), progress, f"embedding with {backbone.name}")
    stream = _prepared(items, backbone.preprocess, background, workers, window=2 * batch_size)
    for name, tensor, reason in stream:
        if tensor is None:
            failed.append((name, reason))
        else:
            batch.append(tensor)
            batch_names.append(name)
            if len(batch) == batch_size:
                flush()
        bar.update(1)
    if batch:
        flush()
    bar.close()

    if failed:
        listing = "\n".join(f"  {name}: {reason}" for name, reason in failed)
        warnings.warn(
            f"skipped {len(failed)} of {len(items)} images that could not be embedded:\n{listing}",
            stacklevel=2,
        )
    vectors = np.concatenate(rows) if rows else np.zeros((0, backbone.dim), dtype=np.float32)
    return Embeddings(vectors.astype(np.float32, copy=False), paths, failed, backbone.name)
