"""Embed many images with a backbone: batched, decoded in parallel, bad files reported.

``embed_images(paths, backbone)`` returns an :class:`Embeddings`: the ``(n, dim)``
float32 matrix together with the path of each row and the files that could not be
embedded, so a row can never be matched to the wrong image. Files are decoded and
preprocessed by a pool of threads. Where the network leaves CPU cores free (a GPU, or
fewer PyTorch threads than cores) they decode ahead on those cores while the network
works on the previous batch. Where the network's threads already fill the cores,
decoding and the forward pass take turns, each with all the cores, instead of
competing for them (``benchmarks/bench_real_photos.py`` measures both schedules).

Each file is decoded at the smallest size that still covers the network's resize
target (JPEG's DCT scaling, box reduction for other formats): a 12-megapixel phone
photo costs several times less than a full decode. Images too elongated for a network
(a 60000x1 strip) are refused by name before anything is resized, and whatever a
decoder raises for one file is reported for that file while the batch goes on.
``embed_prepared`` runs the same machinery with a caller's own preparation of each file, for
a caller that needs more than the vector from the one decode (``curate``: the pixel hash and
the image measures).

Precision: ``precision="float32"`` (the default, unless ``$EMBEDKIT_PRECISION`` says
otherwise) is reproducible: the same vectors on every CPU, in the precision the thresholds
were measured in. ``precision="auto"`` (what the ``curate`` command uses) runs the network
in bfloat16 where the hardware multiplies bfloat16 natively (a CPU with AMX or AVX512-BF16, a GPU) *and* the
network's bfloat16 embeddings were measured to agree with its float32 ones
(``precision.json``, written by ``scripts/measure_precision.py``: a minimum cosine and
a largest share of near-duplicate decisions that change); everywhere else it runs in
float32. ``$EMBEDKIT_PRECISION`` sets the default. The vectors
returned are float32 whatever the network ran in.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import tempfile
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cache, partial
from numbers import Integral
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from threadpoolctl import ThreadpoolController
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .backbones import Backbone
from .images import MAX_ASPECT_RATIO, ImageLoadError, as_rgb, check_background, expand_paths
from .similarity import bfloat16_is_native

__all__ = [
    "MAX_DEFAULT_WORKERS",
    "PRECISIONS",
    "PRECISION_VAR",
    "Embeddings",
    "EmbeddingsFileError",
    "ModelInput",
    "PrecisionFidelity",
    "Prepared",
    "bfloat16_supported",
    "decode_one",
    "default_batch_size",
    "default_precision",
    "embed_images",
    "embed_prepared",
    "fold_batch_norms",
    "forward_batch",
    "precision_fidelity",
    "resolve_precision",
    "progress_bar",
    "resize_target",
]

#: What ``embed_images(precision=...)`` accepts: ``"auto"`` resolves to one of the others.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: Environment variable holding the default precision (one of :data:`PRECISIONS`).
PRECISION_VAR = "EMBEDKIT_PRECISION"
_PRECISION_FILE = Path(__file__).with_name("precision.json")


class EmbeddingsFileError(ValueError):
    """A saved embeddings file that cannot be read (truncated, corrupt, another format)."""

    def __init__(self, file: str | os.PathLike, reason: str):
        self.file = str(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


# --------------------------------------------------------------------------- the result


def _npz_path(file: str | os.PathLike) -> Path:
    """The name ``np.savez`` writes to: ``.npz`` appended unless the name already ends so."""
    file = Path(file)
    return file if file.suffix == ".npz" else file.with_name(file.name + ".npz")


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
        source: optional fingerprint of the files embedded (e.g. their content
            hashes), so a saved file can tell whether it is still up to date.
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
        """Write vectors, paths, failures, backbone name and source to one ``.npz`` file.

        ``.npz`` is appended to a name that does not end in it (as NumPy does); the
        path actually written is returned. The file is written under a temporary
        name and renamed, so an interrupted save never leaves a half-written file.

        Raises:
            IsADirectoryError: ``file`` is a folder.
        """
        if Path(file).is_dir():
            example = Path(file) / "embeddings.npz"
            raise IsADirectoryError(f"{file} is a folder; give a file name such as {example}")
        target = _npz_path(file)
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a folder; give another file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as f:
                np.savez_compressed(
                    f,
                    vectors=self.vectors,
                    paths=np.array(self.paths, dtype=str),
                    failed=np.array(self.failed, dtype=str).reshape(-1, 2),
                    backbone=np.array(self.backbone),
                    source=np.array(self.source),
                )
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, file: str | os.PathLike) -> Embeddings:
        """Read what :meth:`save` wrote.

        Raises:
            FileNotFoundError: no such file.
            EmbeddingsFileError: the file is truncated, corrupt or not one :meth:`save` wrote.
        """
        try:
            with np.load(file, allow_pickle=False) as data:
                return cls(
                    vectors=data["vectors"],
                    paths=data["paths"].tolist(),
                    failed=[tuple(pair) for pair in data["failed"].tolist()],
                    backbone=str(data["backbone"]),
                    source=str(data["source"]),
                )
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - zip, zlib, CRC, format and key errors alike
            text = str(exc).splitlines()[0] if str(exc) else ""
            reason = f"not a readable embeddings file ({type(exc).__name__}: {text})"
            raise EmbeddingsFileError(file, f"{reason}; delete it or save it again") from None


# --------------------------------------------------------------------------- settings


def default_batch_size(backbone_or_device: Backbone | torch.device) -> int:
    """Images per forward pass: ``backbone.batch_size`` (per network and device).

    Given only a device (the older call), 8 on a CPU and 32 on a GPU; prefer
    passing the backbone, whose entry knows what suits its network.
    """
    if isinstance(backbone_or_device, Backbone):
        return backbone_or_device.batch_size
    return 8 if torch.device(backbone_or_device).type == "cpu" else 32


def _resize_size(transform) -> int | None:
    """The short-side resize target inside a torchvision preprocessing pipeline, if any."""
    size = getattr(transform, "resize_size", None)  # torchvision's ImageClassification
    if size is None and type(transform).__name__ == "Resize":
        size = transform.size
    if isinstance(size, int):
        return size
    if isinstance(size, (list, tuple)) and size:
        return max(int(s) for s in size)  # (h, w): the short side must cover the larger one
    for step in getattr(transform, "transforms", ()):
        found = _resize_size(step)
        if found:
            return found
    return None


def resize_target(backbone: Backbone) -> int:
    """Pixels the short side must keep for ``backbone.preprocess`` to see full quality.

    Read from the preprocessing (its resize step: 256 for a 224 crop, 292 for
    EfficientNet-Lite2's 260); twice ``input_size`` when none is found.
    """
    return _resize_size(backbone.preprocess) or 2 * backbone.input_size


@cache
def bfloat16_supported(device: torch.device | str) -> bool:
    """True when ``device`` runs bfloat16 natively (otherwise it is emulated, and slower).

    On a CPU the feature flags decide (AMX-BF16 or AVX512-BF16 on x86, BF16 on Arm:
    :func:`~embedkit.similarity.bfloat16_is_native`): neither
    ``torch.backends.cpu.get_cpu_capability()`` (``"AVX512"`` with or without them) nor
    oneDNN's own check (true wherever it can emulate bfloat16) tells the two apart.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and bfloat16_is_native()
    return False


def _float16_supported(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available()


def default_precision(fallback: str = "float32") -> str:
    """``$EMBEDKIT_PRECISION`` if set, else ``fallback``.

    The package's functions fall back on ``"float32"``: a lesson, a test or a script gets the
    same vectors on every machine, in the precision the thresholds were measured in. The
    ``curate`` command, a tool for large folders, falls back on ``"auto"``.

    Raises:
        ValueError: the variable names no precision.
    """
    value = os.environ.get(PRECISION_VAR, "").strip().lower() or fallback
    if value not in PRECISIONS:
        raise ValueError(f"{PRECISION_VAR}={value!r} is not a precision; choose one of {PRECISIONS}")
    return value


@dataclass(frozen=True)
class PrecisionFidelity:
    """How far a network's bfloat16 embeddings are from its float32 ones (``precision.json``).

    Measured by ``scripts/measure_precision.py`` on the bundled images, in the mode
    :func:`embed_images` runs bfloat16 in on a CPU (bfloat16 weights and activations).

    Attributes:
        network: the network measured.
        images: images embedded both ways.
        min_cosine, mean_cosine: cosine between an image's two embeddings, lowest and mean.
        threshold: the near-duplicate threshold the decisions were taken at (calibrated in float32).
        pairs_float32: pairs at or above ``threshold`` in float32.
        pairs_changed: pairs on one side of ``threshold`` in float32 and the other in bfloat16.
        limit_min_cosine, limit_changed_share: what ``"auto"`` requires before it uses bfloat16.
    """

    network: str
    images: int
    min_cosine: float
    mean_cosine: float
    threshold: float
    pairs_float32: int
    pairs_changed: int
    limit_min_cosine: float
    limit_changed_share: float

    @property
    def changed_share(self) -> float:
        """Changed decisions per near-duplicate pair found in float32."""
        return self.pairs_changed / max(1, self.pairs_float32)

    @property
    def passes(self) -> bool:
        """True when both stated limits hold, so ``"auto"`` may run this network in bfloat16."""
        return self.min_cosine >= self.limit_min_cosine and self.changed_share <= self.limit_changed_share

    def __str__(self) -> str:
        verdict = "within" if self.passes else "outside"
        return (
            f"{self.network} bfloat16 vs float32 on {self.images} images: min cosine {self.min_cosine:.4f} "
            f"(limit {self.limit_min_cosine}), {self.pairs_changed} of {self.pairs_float32} near-duplicate "
            f"pairs at {self.threshold:.2f} changed ({self.changed_share:.2%}, limit "
            f"{self.limit_changed_share:.0%}): {verdict} the limits"
        )


def _read_precision_file() -> dict:
    try:
        with open(_PRECISION_FILE, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def precision_fidelity(network: str) -> PrecisionFidelity | None:
    """The stored bfloat16 fidelity of ``network``, or ``None`` where it was never measured
    (ResNet-18 and -50 where their weights could not be loaded: random weights say nothing)."""
    stored = _read_precision_file()
    entry = stored.get("networks", {}).get(network)
    if entry is None:
        return None
    limits = stored["limits"]
    return PrecisionFidelity(
        network=network,
        images=int(entry["images"]),
        min_cosine=float(entry["min_cosine"]),
        mean_cosine=float(entry["mean_cosine"]),
        threshold=float(entry["threshold"]),
        pairs_float32=int(entry["pairs_float32"]),
        pairs_changed=int(entry["pairs_changed"]),
        limit_min_cosine=float(limits["min_cosine"]),
        limit_changed_share=float(limits["changed_share"]),
    )


_UNSET = object()
_warned_no_native: set[tuple[str, str]] = set()


def resolve_precision(
    precision: str | None,
    network: str,
    device: torch.device | str,
    *,
    native_bfloat16: bool | None = None,
    fidelity=_UNSET,
) -> str:
    """What the network actually runs in: ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    - ``"float32"``: float32.
    - ``"bfloat16"`` / ``"float16"``: that type where ``device`` runs it natively (bfloat16 on
      a CPU with AMX or AVX512-BF16 or on a GPU that has it; float16 on a CUDA GPU); otherwise
      a warning, once per device type, and float32.
    - ``"auto"`` (``None`` means :func:`default_precision`): a half type only where the device
      runs it natively *and* the network's stored fidelity (:func:`precision_fidelity`) is
      within its limits: bfloat16 on such a CPU, on a GPU bfloat16 where it has it, otherwise
      float16. A network never measured stays in float32.

    ``native_bfloat16`` and ``fidelity`` replace what this machine and ``precision.json``
    say (tests use them to try the policy for another CPU or network).

    Raises:
        ValueError: an unknown ``precision``.
    """
    precision = default_precision() if precision is None else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    device = torch.device(device)
    native = bfloat16_supported(device) if native_bfloat16 is None else bool(native_bfloat16)
    if precision == "float32":
        return "float32"
    if precision == "auto":
        measured = precision_fidelity(network) if fidelity is _UNSET else fidelity
        if measured is None or not measured.passes:
            return "float32"
        if native:
            return "bfloat16"
        return "float16" if _float16_supported(device) else "float32"
    if (precision == "bfloat16" and native) or (precision == "float16" and _float16_supported(device)):
        return precision
    if (device.type, precision) not in _warned_no_native:
        _warned_no_native.add((device.type, precision))
        warnings.warn(
            f"this {device.type} has no native {precision} support; embedding in float32 instead",
            stacklevel=3,
        )
    return "float32"


# A model's copy in a half type, made once per model and made again if its weights change.
_HALF_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _version(tensor: torch.Tensor) -> int:
    try:
        return tensor._version
    except RuntimeError:  # made under inference_mode: it cannot change in place, so it has no counter
        return 0


def _state_key(model: nn.Module, dtype: torch.dtype) -> tuple:
    tensors = [*model.parameters(), *model.buffers()]
    return (dtype, tuple((id(t), _version(t), t.device.type) for t in tensors))


def fold_batch_norms(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """A copy of ``model`` with each ``BatchNorm2d`` that normalises a ``Conv2d``'s output folded
    into that convolution, and how many were folded.

    In eval mode a batch norm is a fixed scale and shift per channel, so ``bn(conv(x))`` is one
    convolution with scaled weights and a bias: folding saves a pass over every activation,
    which is most of a batch norm's cost in a half type on a CPU. Which batch norm follows which
    convolution is read from one forward pass of ``example`` (a batch norm whose input is the
    very tensor a convolution returned). The folded copy is kept only when its output on
    ``example`` matches the model's within float32 rounding: a convolution output also used
    elsewhere (by a skip connection, say) would change, and then an unfolded copy is returned,
    with 0. ``model`` itself is never changed.
    """
    produced: dict[int, tuple[nn.Module, weakref.ref]] = {}  # no activation kept alive
    calls: dict[nn.Module, int] = {}
    pairs: list[tuple[nn.Module, nn.Module]] = []

    def after_conv(conv, args, out):
        calls[conv] = calls.get(conv, 0) + 1
        produced[id(out)] = (conv, weakref.ref(out))

    def before_norm(norm, args):
        calls[norm] = calls.get(norm, 0) + 1
        conv, out = produced.get(id(args[0]), (None, lambda: None))
        if out() is args[0]:
            pairs.append((conv, norm))

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.BatchNorm2d) and not module.training and module.running_var is not None:
            hooks.append(module.register_forward_pre_hook(before_norm))
    try:
        with torch.no_grad():
            expected = model(example)
    finally:
        for hook in hooks:
            hook.remove()
    name = {module: n for n, module in model.named_modules()}
    folded = copy.deepcopy(model)
    count = 0
    with torch.no_grad():
        for conv, norm in pairs:
            if calls[conv] != 1 or calls[norm] != 1:  # a module used twice cannot be folded for one use
                continue
            into = folded.get_submodule(name[conv])
            into.weight, into.bias = fuse_conv_bn_weights(
                into.weight, into.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
            )
            parent, _, attribute = name[norm].rpartition(".")
            setattr(folded.get_submodule(parent), attribute, nn.Identity())
            count += 1
        if count:
            got = folded(example)
            scale = float(expected.abs().max()) or 1.0
            if got.shape != expected.shape or float((got - expected).abs().max()) > 1e-4 * scale:
                return copy.deepcopy(model), 0
    return folded, count


def _half_model(model: nn.Module, dtype: torch.dtype, example: torch.Tensor) -> nn.Module:
    """``model`` with its batch norms folded (:func:`fold_batch_norms`, checked on the float32
    batch ``example``) and its weights in ``dtype``: a copy kept beside it (half its size), so
    the float32 model stays as it was; made again when the model's weights change."""
    key = _state_key(model, dtype)
    cached = _HALF_MODELS.get(model, {})
    if key not in cached:
        with torch.inference_mode(False), torch.no_grad():
            half = fold_batch_norms(model, example)[0].to(dtype)
        cached = {key: half}  # only the latest state of the weights is kept
        _HALF_MODELS[model] = cached
    return cached[key]


_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def forward_batch(backbone: Backbone, batch: torch.Tensor, precision: str = "float32") -> np.ndarray:
    """``(n, dim)`` float32 embeddings of a preprocessed ``(n, 3, s, s)`` batch.

    ``precision`` is what the network runs in, as :func:`resolve_precision` returns it.
    On a CPU, bfloat16 runs with bfloat16 weights and activations (a copy of the model,
    made once): oneDNN's AMX and AVX512-BF16 kernels then never convert back and forth,
    which is faster than autocast, where each layer converts its float32 weights again.
    On a GPU, half types run under autocast.
    """
    device = backbone.device
    x = backbone.as_input(batch)
    with torch.inference_mode():
        if precision == "float32":
            out = backbone.model(x)
        elif device.type == "cpu":
            dtype = _DTYPES[precision]
            out = _half_model(backbone.model, dtype, x)(backbone.as_input(x.to(dtype)))
        else:
            with torch.autocast(device.type, dtype=_DTYPES[precision]):
                out = backbone.model(x)
    return out.float().cpu().numpy()


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number, at least 1; got {value!r}")
    return int(value)


def _input_items(images_or_paths) -> list:
    """The list of things to embed: a folder's image files, one file, one image, or each item."""
    if isinstance(images_or_paths, (str, os.PathLike)):
        return [str(p) for p in expand_paths(images_or_paths)]
    if isinstance(images_or_paths, Image.Image):
        return [images_or_paths]
    if isinstance(images_or_paths, bytes) or not isinstance(images_or_paths, Iterable):
        raise TypeError(
            "embed_images takes a folder, a file path, a PIL image, or an iterable of paths and "
            f"images; got {type(images_or_paths).__name__}"
        )
    return list(images_or_paths)


# --------------------------------------------------------------------------- decoding


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_bar(total: int, enabled: bool, desc: str):
    """tqdm's Jupyter widget in a notebook, a text bar on a terminal, nothing in logs."""
    from tqdm.auto import tqdm

    show = enabled and (_in_notebook() or sys.stderr.isatty())
    return tqdm(total=total, desc=desc, unit="img", disable=not show, leave=show)


def _name(item, index: int) -> str:
    if isinstance(item, Image.Image):
        return getattr(item, "filename", "") or f"<image {index}>"
    return str(item)


@dataclass(frozen=True)
class ModelInput:
    """A path or image -> the ``(3, s, s)`` tensor ``preprocess`` makes, decoded at reduced size.

    Attributes:
        preprocess: the backbone's preprocessing.
        min_side: short side the decoded picture keeps (:func:`resize_target`).
        background: colour transparent areas are composited over.
        max_aspect_ratio: more elongated images are refused (see ``images.MAX_ASPECT_RATIO``).
    """

    preprocess: Callable
    min_side: int
    background: tuple[int, int, int] = (255, 255, 255)
    max_aspect_ratio: float = MAX_ASPECT_RATIO

    def __call__(self, item) -> torch.Tensor:
        picture = as_rgb(
            item, self.background, min_side=self.min_side, max_aspect_ratio=self.max_aspect_ratio
        )
        return self.preprocess(picture)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImageLoadError):
        return exc.reason
    if isinstance(exc, MemoryError):
        return "not enough memory to decode and resize the image"
    return f"{type(exc).__name__}: {exc}"


def decode_one(transform: Callable, index: int, item) -> tuple[str, torch.Tensor | None, str]:
    """``(name, tensor, "")`` or ``(name, None, reason)``: whatever decoding raises is the reason."""
    try:
        return _name(item, index), transform(item), ""
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - one bad file must never lose the batch
        return _name(item, index), None, _reason(exc)


@cache
def _openmp() -> ThreadpoolController:
    """The OpenMP runtimes loaded in this process (PyTorch's among them), found once."""
    return ThreadpoolController().select(user_api="openmp")


def _one_torch_thread(openmp: ThreadpoolController) -> None:
    """Decoding threads' initializer: the torch operations of preprocessing run on this thread only.

    Otherwise each decoding thread starts its own team of OpenMP threads, one per core,
    beside the network's. Only this thread's OpenMP setting changes: ``torch.set_num_threads``
    here would also change the count that threads created later (the main one included,
    if it has not used torch yet) start with.
    """
    try:
        torch.get_num_threads()  # torch's own per-thread set-up first, so it cannot undo the limit
        openmp.limit(limits=1)
    except Exception:  # noqa: BLE001 - a speed hint; decoding works without it
        pass


def _decoded_ahead(items: list, decode: Callable, pool: ThreadPoolExecutor, window: int) -> Iterator:
    """Yield ``decode(index, item)`` in input order, ``window`` items in flight meanwhile."""
    pending: deque = deque()
    for index, item in enumerate(items):
        pending.append(pool.submit(decode, index, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _decoded_in_turns(
    items: list, decode: Callable, pool: ThreadPoolExecutor, workers: int, chunk: int
) -> Iterator:
    """Yield ``decode(index, item)`` in input order, decoding in turns with the consumer.

    A turn keeps every worker busy until the next ``chunk`` items are done, then waits for
    the files still in progress and yields everything done. A slow file (a large PNG) does
    not idle the other workers meanwhile: they go on to later files, up to ``2 * chunk``
    files from the first one not yet yielded. Nothing is decoded while the consumer holds
    a yielded item (and runs the network).
    """
    done: dict[int, object] = {}
    running: dict[Future, int] = {}
    first = submitted = 0  # the next index to yield; the next to submit
    while first < len(items):
        while not all(i in done for i in range(first, min(first + chunk, len(items)))):
            while len(running) < workers and submitted < min(len(items), first + 2 * chunk):
                running[pool.submit(decode, submitted, items[submitted])] = submitted
                submitted += 1
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done[running.pop(future)] = future.result()
        for future in wait(running).done:  # the files in progress finish before the turn ends
            done[running.pop(future)] = future.result()
        while first in done:
            yield done.pop(first)
            first += 1


#: Most decoding threads by default: each may hold a full-size image that is not a JPEG
#: (36 MB for 12 megapixels), and more rarely decode faster (each needs the GIL between
#: its C calls).
MAX_DEFAULT_WORKERS = 16


def _cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _schedule(device: torch.device, workers: int | None, ahead: bool | None = None) -> tuple[int, bool]:
    """``(decoding threads, take turns)`` for a network on ``device``.

    Cores the network's threads leave free decode ahead of it (all of them beside a GPU).
    When the decoding threads would need cores the network's threads use, decoding
    waits while the network runs, and the default is then one thread per core.
    ``ahead`` (True or False) overrides whether decoding runs ahead of the network.
    """
    cores = _cores()
    free = cores - torch.get_num_threads() if device.type == "cpu" else cores
    if workers is None:
        workers = min(MAX_DEFAULT_WORKERS, free if free > 0 else cores)
    workers = _positive_int(workers, "workers")
    if ahead is not None:
        if not isinstance(ahead, bool):
            raise TypeError(f"decode_ahead must be True, False or None; got {ahead!r}")
        return workers, not ahead
    return workers, device.type == "cpu" and workers > free


def _decoded_in_order(
    items: list, transform: Callable, workers: int, batch_size: int, take_turns: bool
) -> Iterator:
    """Yield ``(name, tensor or None, reason)`` for each item, in input order.

    ``take_turns``: decode a few batches' worth with every worker, then let the consumer
    run the network on them (a network whose threads fill the cores); otherwise decode
    ahead while it does.
    """
    decode = partial(decode_one, transform)
    pool = ThreadPoolExecutor(max_workers=workers, initializer=_one_torch_thread, initargs=(_openmp(),))
    try:
        if take_turns:
            yield from _decoded_in_turns(items, decode, pool, workers, chunk=max(batch_size, 4 * workers))
        else:
            yield from _decoded_ahead(items, decode, pool, window=max(2 * batch_size, workers))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _batches(
    stream: Iterator, batch_size: int, failed: list, bar
) -> Iterator[tuple[list[int], list[str], list[torch.Tensor], list]]:
    """Group decoded items into ``(indices, names, tensors, extras)`` batches; failures go to ``failed``.

    An item's output is a tensor, or a ``(tensor, extra)`` pair from a caller's ``prepare``.
    """
    indices: list[int] = []
    names: list[str] = []
    tensors: list[torch.Tensor] = []
    extras: list = []
    for index, (name, output, reason) in enumerate(stream):
        bar.update(1)
        if output is None:
            failed.append((name, reason))
            continue
        tensor, extra = output if isinstance(output, tuple) else (output, None)
        indices.append(index)
        names.append(name)
        tensors.append(tensor)
        extras.append(extra)
        if len(tensors) == batch_size:
            yield indices, names, tensors, extras
            indices, names, tensors, extras = [], [], [], []
    if tensors:
        yield indices, names, tensors, extras


def _warn_failures(failed: list[tuple[str, str]], total: int) -> None:
    if failed:
        listing = "\n".join(f"  {name}: {reason}" for name, reason in failed)
        warnings.warn(
            f"skipped {len(failed)} of {total} images that could not be embedded:\n{listing}",
            stacklevel=3,
        )


def embed_images(
    images_or_paths: str | os.PathLike | Image.Image | Iterable[str | os.PathLike | Image.Image],
    backbone: Backbone,
    batch_size: int | None = None,
    progress: bool = True,
    workers: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    precision: str | None = None,
    max_aspect_ratio: float = MAX_ASPECT_RATIO,
    decode_ahead: bool | None = None,
) -> Embeddings:
    """Embed images with ``backbone.model`` in batches.

    Args:
        images_or_paths: a folder (its image files, as :func:`~embedkit.images.scan_images`
            finds them), one file, one ``PIL.Image``, or an iterable of paths and images.
        backbone: from :func:`embedkit.backbones.load_backbone`.
        batch_size: images per forward pass; default ``backbone.batch_size``.
        progress: show a progress bar in Jupyter or on a terminal (never in logs).
        workers: threads that decode and preprocess. By default, the CPU cores the
            network's threads leave free (all of them beside a GPU), which decode ahead of
            the network; if none are free, one per core, taking turns with the network.
            At most :data:`MAX_DEFAULT_WORKERS` by default.
        background: colour transparent areas are composited over.
        precision: ``"auto"``, ``"float32"`` (reproducible), ``"bfloat16"`` or ``"float16"``;
            default :func:`default_precision` (``$EMBEDKIT_PRECISION``, else ``"float32"``).
            ``"auto"`` runs bfloat16 only where the hardware has it natively and the
            network's measured fidelity allows it (:func:`resolve_precision`). The
            vectors returned are float32 either way.
        max_aspect_ratio: images more elongated than this are refused by name.
        decode_ahead: ``True`` decodes ahead while the network runs (as beside a GPU), ``False``
            makes decoding wait while it runs (as when the network's threads fill the cores);
            default ``None`` chooses as ``workers`` describes.

    Returns:
        :class:`Embeddings` with ``vectors`` of shape ``(n_ok, backbone.dim)``,
        float32, in input order; the files that failed are listed in ``failed``
        with a reason and reported in one warning, and the rest go on.

    Raises:
        TypeError, ValueError: an argument that makes no sense (``None`` to embed,
            ``batch_size=2.5``, ``background="white"``, an unknown ``precision``).
    """
    items = _input_items(images_or_paths)
    transform = ModelInput(
        backbone.preprocess, resize_target(backbone), check_background(background), max_aspect_ratio
    )
    desc = f"embedding with {backbone.name}"
    result = _embed_items(
        items, backbone, transform, batch_size, progress, workers, precision, desc, decode_ahead
    )
    _warn_failures(result.embeddings.failed, len(items))
    return result.embeddings


class Prepared(NamedTuple):
    """What :func:`embed_prepared` returns.

    Attributes:
        embeddings: the vectors, with the name of each row and the items that failed.
        rows: for each row, the position of its item in the input.
        extras: for each row, what ``prepare`` returned beside the tensor.
        forward_seconds: wall time spent in the network's forward passes.
    """

    embeddings: Embeddings
    rows: list[int]
    extras: list
    forward_seconds: float


def embed_prepared(
    items: Sequence,
    backbone: Backbone,
    prepare: Callable[[Any], tuple[torch.Tensor, Any]],
    *,
    batch_size: int | None = None,
    progress: bool = True,
    workers: int | None = None,
    precision: str | None = None,
    desc: str | None = None,
    decode_ahead: bool | None = None,
) -> Prepared:
    """:func:`embed_images` with the caller's ``prepare(item) -> (tensor, extra)`` in place of its decoding.

    For a caller that needs more from each file than its vector, from the same decode:
    ``curate`` hashes every pixel and measures the image while it makes the network's input
    (:func:`~embedkit.images.load_rgb_and_reduced`), so each file is decoded once. The items
    are prepared on ``workers`` threads and embedded in batches as :func:`embed_images`
    does, so memory holds a few batches of tensors and one decoded file per thread, never
    the whole input. Whatever ``prepare`` raises for an item is that item's reason in
    ``embeddings.failed`` (an :class:`~embedkit.images.ImageLoadError` gives its own reason);
    nothing is warned, the caller reports.

    Raises:
        TypeError, ValueError: as :func:`embed_images`.
    """
    if isinstance(items, (str, bytes, os.PathLike, Image.Image)) or not isinstance(items, Iterable):
        raise TypeError(f"items must be a list of files or images; got {type(items).__name__}")
    return _embed_items(
        list(items),
        backbone,
        prepare,
        batch_size,
        progress,
        workers,
        precision,
        desc or "embedding",
        decode_ahead,
    )


def _embed_items(
    items: list,
    backbone: Backbone,
    transform: Callable,
    batch_size: int | None,
    progress: bool,
    workers: int | None,
    precision: str | None,
    desc: str,
    decode_ahead: bool | None = None,
) -> Prepared:
    """Decode ``items`` with ``transform`` on worker threads and embed them in batches, in input order."""
    batch_size = _positive_int(backbone.batch_size if batch_size is None else batch_size, "batch_size")
    workers, take_turns = _schedule(backbone.device, workers, decode_ahead)
    runs_in = resolve_precision(precision, backbone.name, backbone.device)

    vectors: list[np.ndarray] = []
    rows: list[int] = []
    paths: list[str] = []
    extras: list = []
    failed: list[tuple[str, str]] = []
    forward = 0.0
    with progress_bar(len(items), progress, desc) as bar:
        stream = _decoded_in_order(items, transform, workers, batch_size, take_turns)
        with contextlib.closing(stream):  # a forward pass that raises stops the decoding threads too
            for indices, names, tensors, more in _batches(stream, batch_size, failed, bar):
                start = time.perf_counter()
                vectors.append(forward_batch(backbone, torch.stack(tensors), runs_in))
                forward += time.perf_counter() - start
                rows.extend(indices)
                paths.extend(names)
                extras.extend(more)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, backbone.dim), dtype=np.float32)
    embedded = Embeddings(matrix.astype(np.float32, copy=False), paths, failed, backbone.name)
    return Prepared(embedded, rows, extras, forward)
