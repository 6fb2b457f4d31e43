"""Self-checks of lesson 02, a pretrained ResNet-18 as an embedding model: exercises 1 to 4.

Each check is called from one short cell of the lesson; see the package's docstring for how a
check behaves. The oracles are the lesson's own network in eval mode, a fresh EfficientNet-B0 read
by torchvision's feature extractor, the course package's ``to_rgb`` and ``embed_images`` (run
before they are switched off), and BatchNorm's formula written out.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models import EfficientNet, efficientnet_b0
from torchvision.models.feature_extraction import create_feature_extractor

import embedkit.embeddings
import embedkit.images
from embedkit.backbones import _AS_INPUT_MARK
from embedkit.selfcheck import code_switched_off, is_stand_in, stand_in

__all__ = [
    "check_train_but_frozen_batchnorm",
    "check_efficientnet_head",
    "check_composite",
    "check_embed_in_batches",
]

_NOT_NEEDED = "Not done yet: nothing later in the lesson needs it."


# --------------------------------------------------------------------------- exercise 1


def _stores_statistics(module: nn.Module) -> bool:
    return getattr(module, "running_var", None) is not None


def _with_made_up_statistics(net: nn.Module, seed: int = 0) -> nn.Module:
    """``net`` with random, non-default BatchNorm statistics: under the defaults (mean 0, variance 1),
    as offline random weights have them, skipping BatchNorm would look right."""
    generator = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if _stores_statistics(m):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator))
            m.running_var.copy_(0.25 + 2 * torch.rand(m.running_var.shape, generator=generator))
    return net


def _first_in_every_batch(net: nn.Module, batches: Sequence[torch.Tensor]) -> torch.Tensor:
    """The output for row 0 of each batch (the cat, in the lesson), one row per batch."""
    with torch.no_grad():
        return torch.stack([net(batch)[0] for batch in batches])


def check_train_but_frozen_batchnorm(
    train_but_frozen_batchnorm: Callable | None, model: nn.Module, batches: Sequence[torch.Tensor]
) -> Callable | None:
    """Checks the network it returns: in train mode except its BatchNorm layers, the first image's output
    the same in every batch as in eval mode, stored statistics unmoved (copies of ``model`` with
    made-up statistics), and on a small network that also has Dropout and BatchNorm1d."""
    if train_but_frozen_batchnorm is None:
        print(_NOT_NEEDED)  # the package has no version of it, and the lesson goes on without one
        return None
    reference = _first_in_every_batch(_with_made_up_statistics(copy.deepcopy(model)).eval(), batches)
    net = train_but_frozen_batchnorm(_with_made_up_statistics(copy.deepcopy(model)))
    assert net is not None, "return the network"
    assert net.training, "the network as a whole must be in train mode"
    not_training = [name for name, m in net.named_modules() if not m.training and not _stores_statistics(m)]
    assert not not_training, (
        f"these modules are not in train mode, but only BatchNorm may differ: {not_training[:5]}"
    )
    stored = {name: b.clone() for name, b in net.named_buffers()}  # BatchNorm's statistics, among others
    ref_scale = reference.abs().max().item()
    gap = (_first_in_every_batch(net, batches) - reference).abs().max().item()
    assert gap <= 1e-4 * ref_scale, (
        f"the cat's output differs from eval mode by {gap:.3f}: "
        "BatchNorm must normalise with its stored statistics"
    )
    moved = [name for name, b in net.named_buffers() if not torch.equal(b, stored[name])]
    assert not moved, f"stored statistics moved: {moved[:3]}"

    generator = torch.Generator().manual_seed(1)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        probe = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 2))
        probe = train_but_frozen_batchnorm(_with_made_up_statistics(probe))
        assert probe is not None, "return the network"
        x = torch.randn(32, 8, generator=generator)
        with torch.no_grad():
            stats, first, second = probe[1].running_mean.clone(), probe(x), probe(x)
            h = probe[0](x)
            bn = probe[1]
            by_stored = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
            bn_gap = (bn(h) - by_stored).abs().max().item()
    assert bn_gap <= 1e-5, f"BatchNorm1d does not normalise with its stored statistics (off by {bn_gap:.3f})"
    assert not torch.allclose(first, second), "Dropout is off: the same batch twice gives the same output"
    assert torch.equal(probe[1].running_mean, stats), "BatchNorm1d's stored statistics moved"
    print("Correct! Train mode, with every BatchNorm layer on its stored statistics.")
    return train_but_frozen_batchnorm


# --------------------------------------------------------------------------- exercise 2


def check_efficientnet_head(
    eff: nn.Module | None,
    eff_embedding: torch.Tensor | None,
    fc_net: nn.Module | None,
    fc_output: torch.Tensor | None,
    head_name: str | None,
    batch: torch.Tensor,
) -> None:
    """Checks ``fc_output`` against what ``fc_net`` (an EfficientNet-B0 in eval mode, given
    ``.fc = nn.Identity()`` and nothing else) gives on ``batch[:2]``, ``head_name`` against the child
    ``forward`` calls last, and ``eff_embedding`` against the pooled features of ``batch[:2]`` under
    ``eff``'s weights (an inference tensor, from ``eff`` itself, in any batch)."""
    if all(x is None for x in (eff, eff_embedding, fc_net, fc_output, head_name)):
        print(_NOT_NEEDED)
        return
    with torch.random.fork_rng():
        torch.manual_seed(0)
        measured = efficientnet_b0(weights=None).eval()
    children = [name for name, _ in measured.named_children()]
    measured.fc = nn.Identity()
    with torch.inference_mode():
        expected_shape = tuple(measured(batch[:2]).shape)
    assert isinstance(fc_net, EfficientNet), (
        f"fc_net is a {type(fc_net).__name__}: store in it the efficientnet_b0(weights=None) you set .fc on"
    )
    assert fc_net is not eff, "fc_net is eff: measure .fc = nn.Identity() on a network of its own"
    assert isinstance(dict(fc_net.named_children()).get("fc"), nn.Identity), (
        "fc_net has no child fc = nn.Identity(): set fc_net.fc = nn.Identity() before you measure"
    )
    assert not fc_net.training, "fc_net is in train mode: put it in eval mode before you measure"
    assert isinstance(fc_output, torch.Tensor), (
        f"fc_output is a {type(fc_output).__name__}, not a measurement: store fc_net's output on batch_a[:2]"
    )
    with torch.inference_mode():
        probe = fc_net(batch[:2])
        assert tuple(probe.shape) == expected_shape, (
            f"fc_net gives shape {tuple(probe.shape)}, not what a fresh network with .fc = nn.Identity() "
            "gives: change nothing else on fc_net"
        )
        same = fc_output.shape == probe.shape and bool(
            (fc_output.detach().float() - probe).abs().max() <= 1e-4 * probe.abs().max()
        )
    assert same, (
        f"fc_output (shape {tuple(fc_output.shape)}) is not what fc_net gives on batch_a[:2]: "
        "store fc_net's own output after .fc = nn.Identity()"
    )
    assert head_name == children[-1], (
        f"head_name = {head_name!r} is not the child that forward calls last; look at Hint 1"
    )
    assert isinstance(eff_embedding, torch.Tensor), (
        f"eff_embedding is a {type(eff_embedding).__name__}, not a tensor"
    )
    assert eff_embedding.ndim == 2 and eff_embedding.shape[0] == 2, (
        f"got shape {tuple(eff_embedding.shape)}: one flat vector per image expected"
    )
    assert eff_embedding.is_inference(), (
        "compute it under torch.inference_mode(), as asked: no_grad, or a .detach() afterwards, gives an "
        "ordinary tensor, not an inference tensor (the numbers themselves may be right)"
    )
    assert isinstance(eff, EfficientNet), "change eff's head in place; don't wrap it"
    assert not eff.training, "eff is in train mode: its embeddings depend on the batch"
    fresh = efficientnet_b0(weights=None).eval()
    _, unexpected = fresh.load_state_dict(eff.state_dict(), strict=False)
    assert not unexpected, (
        f"eff has layers EfficientNet-B0 does not have (e.g. {unexpected[0]}): change its head in "
        "place (a Sequential of its children also drops the flatten, as shown above)"
    )
    with torch.inference_mode():
        pooled = create_feature_extractor(fresh, return_nodes={"flatten": "pooled"})(batch[:2])["pooled"]
        again, alone = eff(batch[:2]), eff(batch[:1])
    still_scores = eff_embedding.shape[1] == expected_shape[1]
    assert eff_embedding.shape == pooled.shape, (
        f"{eff_embedding.shape[1]} numbers per image, but the pooled features have {pooled.shape[1]}: "
        + (
            "the head is still there (a child that forward never calls changes no output, as fc_output shows)"
            if still_scores
            else "is the head really gone?"
        )
    )
    assert again.shape == eff_embedding.shape, (
        f"eff itself gives {again.shape[1]} numbers per image, not {eff_embedding.shape[1]}: "
        "change eff's head in place"
    )
    size = pooled.abs().max().item()
    assert (eff_embedding - pooled).abs().max().item() <= 1e-4 * size, (
        "eff_embedding is not the pooled features of these two images under eff's weights, in eval mode"
    )
    assert (again - eff_embedding).abs().max().item() <= 1e-4 * size, "eff no longer gives eff_embedding"
    assert (alone[0] - eff_embedding[0]).abs().max().item() <= 1e-4 * size, (
        "the embedding depends on the batch"
    )
    print(
        f"Correct! EfficientNet-B0 embeddings have {eff_embedding.shape[1]} numbers; .fc = nn.Identity() "
        f"only added a child that forward never calls, so fc_output kept {fc_output.shape[1]} class scores"
    )


# --------------------------------------------------------------------------- exercise 3


def _test_images() -> dict[str, Image.Image]:
    """Small hand-made images, one of each mode with transparency, and a palette image without it
    (opaque everywhere, index 0 included). Every alpha level from 0 to 255 occurs, with more fully
    transparent and opaque pixels; the colours stored under transparent pixels are random (not
    black), so dropping the alpha shows them."""
    rng = np.random.default_rng(2)
    alpha = rng.permutation(np.concatenate([np.arange(256), np.zeros(64), np.full(64, 255)])).astype(np.uint8)
    alpha = alpha.reshape(24, 16)
    rgba = np.dstack([rng.integers(0, 256, (24, 16, 3), dtype=np.uint8), alpha])
    la = np.dstack([rng.integers(0, 256, (24, 16), dtype=np.uint8), alpha])
    indices = rng.integers(0, 16, (24, 16)).astype(np.uint8)
    indices[0, :4] = 5  # the transparent entry, at least a few times
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette(rng.integers(0, 256, 16 * 3).tolist())
    opaque_palette = palette.copy()  # the common case: no transparent entry
    palette.info["transparency"] = 5
    return {
        "RGBA": Image.fromarray(rgba, mode="RGBA"),
        "LA": Image.fromarray(la, mode="LA"),
        "P": palette,
        "P (no transparency)": opaque_palette,
    }


def _alpha_of(image: Image.Image) -> np.ndarray:
    """Each pixel's opacity, 0 to 255, read the package's way (before anything is switched off)."""
    return np.asarray(image.convert("RGBA"))[..., 3]


@stand_in
def _package_composite(image, background):
    """The package's ``to_rgb``, in place of a ``composite`` not written yet."""
    return np.asarray(embedkit.images.to_rgb(image, background=tuple(background)))


def check_composite(composite: Callable | None) -> Callable:
    """Checks ``composite(image, background)`` against the package's ``to_rgb`` on hand-made RGBA, LA and
    palette images (one without transparency, which must come out as its plain colours) over white
    and a dark blue: opaque and fully transparent pixels exact, soft edges
    within one level and not darker or lighter on average, with Pillow's ``convert`` and compositing
    (``alpha_composite``, ``composite``, ``paste``) and the package's converters switched off while
    it runs."""
    if composite is None or is_stand_in(composite):
        print(_NOT_NEEDED)
        return _package_composite
    images = _test_images()
    backgrounds = [(255, 255, 255), (20, 30, 70)]
    references = {
        (mode, bg): np.asarray(embedkit.images.to_rgb(image, background=bg))
        for mode, image in images.items()
        for bg in backgrounds
    }
    alphas = {mode: _alpha_of(image) for mode, image in images.items()}
    converters = [
        embedkit.images.to_rgb,
        embedkit.images.as_rgb,
        embedkit.images.load_rgb,
        embedkit.images._composite,
    ]
    pillow = [Image.Image.convert, Image.alpha_composite, Image.composite]
    pillow += [Image.Image.alpha_composite, Image.Image.paste]
    pillow_off = (
        "work from np.asarray(image) with NumPy: Pillow's convert, alpha_composite, composite "
        "and paste are switched off while composite runs"
    )
    yours = {}
    with (
        code_switched_off(
            converters, "composite must do the compositing itself, not call embedkit's converters"
        ),
        code_switched_off(pillow, pillow_off),
    ):
        for (mode, bg), _ in references.items():
            image = images[mode].copy()
            image.info.update(images[mode].info)
            try:
                yours[mode, bg] = np.asarray(composite(image, bg))
            except AssertionError:
                raise
            except Exception as exc:
                raise AssertionError(
                    f"composite(a {mode} image, {bg}) raised {type(exc).__name__}: {exc}"
                ) from exc
    for (mode, bg), reference in references.items():
        mine, alpha = yours[mode, bg], alphas[mode]
        assert mine.shape == reference.shape, f"{mode} image: shape {mine.shape}, expected {reference.shape}"
        assert mine.dtype == np.uint8, f"{mode} image: dtype {mine.dtype}, expected uint8"
        off = np.abs(mine.astype(int) - reference.astype(int)).max(axis=2)
        for where, part, allowed in [
            (alpha == 0, "fully transparent", 0),
            (alpha == 255, "opaque", 0),
            ((alpha > 0) & (alpha < 255), "soft-edge", 1),
        ]:
            assert (off[where] <= allowed).all(), (
                f"{mode} image, background {bg}: {(off[where] > allowed).sum()} {part} pixels "
                f"are off by up to {off[where].max()}"
            )
        soft = (alpha > 0) & (alpha < 255)
        if soft.any():
            bias = (mine.astype(int) - reference.astype(int))[soft].mean()
            assert abs(bias) <= 0.2, (
                f"{mode} image, background {bg}: soft-edge pixels are {bias:+.2f} levels off on average"
            )
    print("Correct! Your composite matches to_rgb for RGBA, LA and palette images over both backgrounds.")
    return composite


# --------------------------------------------------------------------------- exercise 4


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _alpha_dropped(files: Sequence, backbone) -> dict[int, np.ndarray]:
    """For each file with transparency (by its position in ``files``), the embedding of
    ``Image.open(file).convert("RGB")``: the mistake of reading a cut-out without its alpha."""
    naive = {}
    for k, file in enumerate(files):
        with Image.open(file) as image:
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                naive[k] = image.convert("RGB")
    if not naive:
        return {}
    vectors = embedkit.embeddings.embed_images(list(naive.values()), backbone, progress=False).vectors
    return dict(zip(naive, vectors, strict=True))


@stand_in
def _package_embed(files, backbone, batch_size):
    """The package's ``embed_images``, in place of an ``embed_in_batches`` not written yet."""
    return embedkit.embeddings.embed_images(files, backbone, batch_size=batch_size, progress=False).vectors


def check_embed_in_batches(embed_in_batches: Callable | None, backbone, files: Sequence) -> Callable:
    """Runs ``embed_in_batches(files, backbone, 3)`` with the package's loops switched off and counts its
    forward passes (at most 3 images each, every file once, no autograd, each batch made by
    ``backbone.as_input``), then compares its rows with ``embed_images``' (cosine above 0.999). Each
    file with transparency must also be closer to ``embed_images``' row than to the embedding of
    ``Image.open(file).convert("RGB")``, its transparent pixels shown in the colour stored under them."""
    if embed_in_batches is None or is_stand_in(embed_in_batches):
        print(_NOT_NEEDED)
        return _package_embed
    files = list(files)
    batch_size = 3
    expected_sizes = [min(batch_size, len(files) - k) for k in range(0, len(files), batch_size)]
    passes = []  # for each forward pass: its images, autograd on?, made by backbone.as_input?

    def record(module, args):
        batch = args[0]
        as_input = (
            getattr(batch, _AS_INPUT_MARK, False)
            and batch.device.type == backbone.device.type
            and batch.is_contiguous(memory_format=backbone.memory_format)
        )
        passes.append((len(batch), torch.is_grad_enabled(), as_input))

    package_loops = [
        embedkit.embeddings.embed_images,
        embedkit.embeddings.embed_prepared,
        embedkit.embeddings.forward_batch,
    ]
    hook = backbone.model.register_forward_pre_hook(record)
    try:
        with code_switched_off(
            package_loops,
            "embed_in_batches must run the loop itself: embed_images, embed_prepared and "
            "forward_batch are switched off while it runs",
        ):
            mine = embed_in_batches(files, backbone, batch_size)
    finally:
        hook.remove()
    assert isinstance(mine, np.ndarray) and mine.dtype == np.float32, (
        f"return a float32 NumPy array, not {type(mine).__name__} {getattr(mine, 'dtype', '')}"
    )
    assert mine.shape == (len(files), backbone.dim), (
        f"shape {mine.shape}, expected {(len(files), backbone.dim)}"
    )
    sizes = [size for size, _, _ in passes]
    assert passes, (
        f"images per forward pass: [] expected {expected_sizes}: call the module, backbone.model(x), "
        "not backbone.model.forward(x)"
    )
    assert sizes == expected_sizes, f"images per forward pass: {sizes}, expected {expected_sizes}"
    assert not any(grad for _, grad, _ in passes), (
        "autograd was on in a forward pass: wrap it in inference_mode or no_grad"
    )
    assert all(as_input for *_, as_input in passes), (
        "send each batch through backbone.as_input(batch): "
        "it puts it on the model's device, in the model's memory layout"
    )
    reference = embedkit.embeddings.embed_images(files, backbone, progress=False).vectors
    cosines = (mine * reference).sum(axis=1) / (
        np.linalg.norm(mine, axis=1) * np.linalg.norm(reference, axis=1)
    )
    for k, naive in _alpha_dropped(files, backbone).items():
        to_naive = _cosine(mine[k], naive)
        if not np.isfinite(to_naive) or _cosine(reference[k], naive) >= 0.999:
            continue  # this network barely sees the difference: the cosine test below decides
        assert to_naive < cosines[k], (
            f"the row of {Path(files[k]).name} is closer to Image.open(file).convert('RGB')'s embedding "
            f"(cosine {to_naive:.4f}) than to embed_images' ({cosines[k]:.4f}): convert drops the alpha "
            "and shows what is stored under transparent pixels; open each file with load_rgb"
        )
    wrong = [Path(files[k]).name for k in np.flatnonzero(~(cosines >= 0.999))]
    assert not wrong, f"these rows differ from embed_images' (cosines {np.round(cosines, 3)}): {wrong}"
    print(
        f"Correct! {len(passes)} forward passes, rows agree with embed_images "
        f"(lowest cosine {cosines.min():.5f})"
    )
    return embed_in_batches
