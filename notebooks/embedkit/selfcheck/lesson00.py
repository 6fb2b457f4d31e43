"""Self-check of lesson 00, start here: the prediction of ``rest`` and exercise 1's ``top_k_of``.

The lesson calls them in two short cells: the prediction, made before the random network runs, then
exercise 1::

    lesson00.check_guess_rest(MY_GUESS_REST, len(backbone.categories))
    my_top5 = lesson00.check_top_k_of(top_k_of, MY_PHOTO, backbone, manifest)

See the package's docstring for how a check behaves. The oracle is the package's own
``Backbone.top_k_classes``, run before it is switched off. No later cell needs ``top_k_of`` itself,
only the top 5 of the learner's photo, so the check returns that (``None`` while the exercise is
not done) instead of a function.

One helper beyond the shared ones is here: ``_code_switched_off`` swaps a method's code while the
learner's function runs, so that every name for it (the class's, an instance's, one kept earlier)
refuses the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import numbers
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from torch import nn

from embedkit.backbones import Backbone
from embedkit.images import load_rgb

__all__ = ["check_guess_rest", "check_top_k_of"]

#: Gray thumbnails this alike (1: the same picture) mark a photo as one of the bundled images: altered
#: bundled copies score 0.95 and up, other real photos 0.75 or less.
LIKENESS_LIMIT = 0.94
#: From this likeness on, a photo gets a notice, not a refusal (the uncropped photos the bundled cat and
#: coffee are cut from score about 0.90 and 0.88).
LIKENESS_NOTICE = 0.8
#: Turns (degrees) and centred crops (share of the side) of each bundled original also compared with a
#: photo, which is compared in its 8 flips and quarter turns.
TURNS = tuple(range(-20, 21, 5))
CROPS = (1.0, 0.85, 0.7, 0.55)
#: A gray thumbnail that a plane (one colour, or an even shading) fits to within this spread (levels of
#: 0-255) has too little in it to be a photo.
FLAT_LIMIT = 4.0
#: Neighbouring pixels of a 64 × 64 gray thumbnail, less that plane, correlate below this only in noise
#: (about 0 for pixels drawn at random; 0.39 and 0.41 for the bundled grass and gravel, 0.5 and up for
#: the other bundled and the other photos tried).
NOISE_LIMIT = 0.2
#: How far the guess of ``rest`` at k = 5 may lie from that of a network giving every class the same chance.
GUESS_TOLERANCE = 0.002  # refuses 1 (nothing in the top 5) and 0.99 (k = 10)

_USE_LOAD_RGB = {
    "the cat cut-out": "does your loader composite transparency over white, as load_rgb does?",
    "the cat stored on its side": "does your loader turn it upright by its EXIF tag, as load_rgb does?",
    "your photo": "does your loader open it as load_rgb does (transparency over white, turned upright)?",
    "the cat photo, with net given": "use the network top_k_of is given (net) for everything, not backbone",
}


class _Halved(nn.Module):
    """Halves the scores of the network before it, so that its probabilities change."""

    def forward(self, scores):
        return scores / 2


def _gray_thumbnail(picture: Image.Image, side: int = 16) -> np.ndarray:
    """The middle of a picture, ``side`` × ``side`` in gray levels 0-255."""
    middle = ImageOps.fit(picture.convert("L"), (side, side), Image.Resampling.BOX, bleed=0.2)
    return np.asarray(middle, float)


def _scaled(pixels: np.ndarray) -> np.ndarray:
    """Pixels flattened and scaled to mean 0 and spread 1."""
    pixels = pixels.ravel()
    return (pixels - pixels.mean()) / (pixels.std() + 1e-6)


def _less_plane(pixels: np.ndarray) -> np.ndarray:
    """What is left of a square thumbnail once the plane that fits it best (least squares) is taken off."""
    rows, cols = np.indices(pixels.shape)
    plane = np.column_stack([np.ones(pixels.size), rows.ravel(), cols.ravel()])
    fit, *_ = np.linalg.lstsq(plane, pixels.ravel(), rcond=None)
    return (pixels.ravel() - plane @ fit).reshape(pixels.shape)


def _neighbour_correlation(pixels: np.ndarray) -> float:
    """How alike neighbouring pixels are, across and down (1: alike, about 0: unrelated, as in noise)."""
    z = pixels - pixels.mean()
    together = (z[:, 1:] * z[:, :-1]).sum() + (z[1:] * z[:-1]).sum()
    return float(together / (2 * (z * z).sum() + 1e-9))


@functools.lru_cache(maxsize=4)
def _bundled_thumbnails(files: tuple[str, ...], originals: tuple[str, ...]) -> tuple[np.ndarray, tuple]:
    """Scaled gray thumbnails of every bundled file, and of each original turned by ``TURNS`` and cut to
    ``CROPS`` around its centre; and the file each comes from."""
    thumbnails, names = [], []
    for file in files:
        thumbnails.append(_scaled(_gray_thumbnail(load_rgb(file))))
        names.append(file)
    for file in originals:
        gray = load_rgb(file).convert("L")
        for turn in TURNS:
            turned = gray.rotate(turn, Image.Resampling.BILINEAR)
            for crop in CROPS:
                width, height = turned.size
                w, h = width * crop, height * crop
                box = ((width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2)
                thumbnails.append(_scaled(_gray_thumbnail(turned.crop(box))))
                names.append(file)
    return np.stack(thumbnails), tuple(names)


def _flips_and_turns(pixels: np.ndarray) -> list[np.ndarray]:
    """A square thumbnail in its 8 orientations: 4 quarter turns, each also mirrored."""
    turned = [np.rot90(pixels, quarter) for quarter in range(4)]
    return turned + [t[:, ::-1] for t in turned]


def _top_k_classes_off(*args, **kwargs):
    """What ``top_k_classes`` does while the learner's function runs (its message is a literal: the code
    object replaces the method's, so it may use no name of this module)."""
    raise AssertionError(
        "top_k_of must compute the top k itself (softmax, then topk), not call top_k_classes"
    )


@contextlib.contextmanager
def _code_switched_off(function: Callable, refusal: Callable) -> Iterator[None]:
    """While the block runs, ``function`` runs ``refusal``'s code instead, under every name for it."""
    their_code = function.__code__
    function.__code__ = refusal.__code__
    try:
        yield
    finally:
        function.__code__ = their_code


def _on_its_side(cat_file, folder: Path) -> Path:
    """The cat photo stored the way a phone stores it: pixels on their side, an EXIF tag saying turn."""
    turned = folder / "cat_on_its_side.jpg"
    with Image.open(cat_file) as cat:
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
        cat.convert("RGB").rotate(90, expand=True).save(turned, exif=exif, quality=95)
    return turned


def _refuse_bundled(mine: Path, manifest: pd.DataFrame) -> None:
    """Raise when ``mine`` comes with an installed package, has too little in it to be a photo (one
    colour, an even shading, noise), or looks like one of the bundled images, mirrored, turned by up to
    20° or by a quarter turn, re-encoded or cut around its centre (a larger turn or a crop off centre can
    pass); print a notice when it is merely much like one."""
    installed = {Path(sysconfig.get_paths()[kind]).resolve() for kind in ("purelib", "platlib")}
    assert not any(mine.resolve().is_relative_to(folder) for folder in installed), (
        f"{mine} comes with an installed package (the bundled images are cut from such photos): "
        "use a photo you took"
    )
    picture = load_rgb(mine)
    small = _gray_thumbnail(picture)
    spread = _less_plane(small).std()
    assert spread >= FLAT_LIMIT, (
        f"that image is (nearly) one colour or an even shading (what a plane leaves of its gray levels "
        f"spreads by {spread:.1f}): use a photo"
    )
    alike = _neighbour_correlation(_less_plane(_gray_thumbnail(picture, 64)))
    assert alike >= NOISE_LIMIT, (
        f"that image looks like noise (its neighbouring pixels correlate by {alike:.2f}, the bundled "
        "photos' by 0.39 or more): use a photo"
    )
    bundled, names = _bundled_thumbnails(
        tuple(map(str, manifest["file"])),
        tuple(map(str, manifest.query("transformation == 'original'")["file"])),
    )
    # 1: the same picture; a photo of one's own stays well below the limit.
    likeness = (np.stack([_scaled(t) for t in _flips_and_turns(small)]) @ bundled.T / small.size).max(axis=0)
    closest = Path(names[likeness.argmax()]).name
    assert likeness.max() < LIKENESS_LIMIT, f"that looks like the bundled {closest}: use a photo you took"
    if likeness.max() >= LIKENESS_NOTICE:
        print(f"Note: your photo looks much like the bundled {closest}; if you took it yourself, carry on")


def _refuse_guess(guess_rest, classes: int) -> float:
    """Raise unless the guess lies within ``GUESS_TOLERANCE`` of ``rest`` at k = 5 for a network that
    gives each of ``classes`` classes the same probability; return that ``rest``."""
    assert isinstance(guess_rest, numbers.Real) and not isinstance(guess_rest, bool), (
        f"MY_GUESS_REST is a number (a probability, between 0 and 1), got {guess_rest!r}"
    )
    even = 1 - 5 / classes
    assert abs(guess_rest - even) <= GUESS_TOLERANCE, (
        f"MY_GUESS_REST is {guess_rest}: a network that knows nothing gives each of the {classes} classes "
        "the same probability; how much of it then lies outside any 5 of them (a fraction, 0 to 1)?"
    )
    return even


def _compare(what: str, k: int, answer, expected: list[tuple[str, float]]) -> None:
    """One answer of ``top_k_of`` against ``top_k_classes``'s for the same file and ``k``."""
    cause = f"; {_USE_LOAD_RGB[what]}" if what in _USE_LOAD_RGB else ""
    assert isinstance(answer, tuple) and len(answer) == 2, (
        f"{what}, k={k}: return (pairs, rest), got {answer!r}"
    )
    top, rest = answer
    assert len(top) == k and all(len(pair) == 2 for pair in top), (
        f"{what}, k={k}: expected {k} (class name, probability) pairs, got {top!r}"
    )
    names, probs = [name for name, _ in top], [float(p) for _, p in top]
    assert all(0 < p <= 1 for p in probs), f"{what}: probabilities lie between 0 and 1, got {probs}"
    assert probs == sorted(probs, reverse=True), f"{what}: most probable first, got {probs}"
    theirs = [name for name, _ in expected]
    assert names == theirs, f"{what}, k={k}: your classes {names}; the network's: {theirs}{cause}"
    gap = max(abs(p - q) for p, (_, q) in zip(probs, expected, strict=True))
    assert gap <= 1e-4, (
        f"{what}: the classes are right, but the probabilities differ by up to {gap:.4f}{cause}"
    )
    outside = 1 - sum(q for _, q in expected)
    assert abs(float(rest) - outside) <= 1e-4, (
        f"{what}, k={k}: rest is {float(rest):.4f}; "
        f"the probability on the classes outside the top {k} is {outside:.4f}"
    )


@contextlib.contextmanager
def _learner_running(backbone: Backbone) -> Iterator[None]:
    """While the learner's function runs: ``top_k_classes`` is switched off, and the network refuses a
    batch that did not come from ``backbone.as_input`` (under any name for either)."""
    as_input, given = Backbone.as_input, []

    def recorded(self, batch):
        assert getattr(batch, "ndim", 4) == 4, (
            f"as_input wants a batch, shape (1, 3, side, side); got shape {tuple(batch.shape)}: "
            "unsqueeze(0) before as_input"
        )
        given.append(as_input(self, batch))
        return given[-1]

    def from_as_input(module, args):
        if not any(args[0] is x for x in given):
            raise AssertionError(
                "the batch the network got is not the tensor backbone.as_input returned: call the "
                "network on what as_input returns, unchanged (it puts the batch on the network's device, "
                "in its layout)"
            )

    hook = backbone.classifier.register_forward_pre_hook(from_as_input)
    try:
        Backbone.as_input = recorded
        with _code_switched_off(Backbone.top_k_classes, _top_k_classes_off):
            yield
    finally:
        hook.remove()
        Backbone.as_input = as_input


def check_guess_rest(guess_rest, classes: int) -> None:
    """The prediction, made before the random network runs: ``guess_rest``, ``rest`` at k = 5 for a
    network that gives each of ``classes`` classes the same probability, must lie within 0.002 of
    1 - 5 / ``classes``."""
    if guess_rest is None:
        print("Not done yet: set MY_GUESS_REST; predict before you run the random network")
        return
    even = _refuse_guess(guess_rest, classes)
    print(f"Correct! evenly spread, {even:.3f} lies outside the top 5 (your guess {guess_rest:.3f})")


def check_top_k_of(
    top_k_of: Callable | None,
    my_photo,
    backbone: Backbone,
    manifest: pd.DataFrame,
) -> list[tuple[str, float]] | None:
    """Exercise 1: ``top_k_of(file, k, net=backbone)`` against the package's ``top_k_classes`` (same classes,
    probabilities and ``rest`` within 1e-4) on files opened with ``load_rgb``: the cat photo with k = 1, 5
    and 10, its RGBA cut-out, the cat stored on its side with an EXIF tag, and ``my_photo``, which must be
    no bundled image (nor one mirrored, turned by up to 20° or a quarter turn, or cut around its centre)
    and no plain colour, even shading or noise; and once with ``net``, a copy of ``backbone`` whose class
    names are reversed and whose scores are halved, which ``top_k_of`` must use for both. Without
    ``my_photo`` the cat files are checked and the photo is skipped. While it runs, ``top_k_classes``
    is switched off and the network refuses a batch that did not come through
    ``backbone.as_input``. Returns the top 5 of ``my_photo``; ``None`` while not done or without a photo.
    """
    if top_k_of is None:
        print("Not done yet: write top_k_of; the lesson goes on without your photo's top 5")
        return None
    mine = None if my_photo is None else Path(my_photo)
    if mine is not None:
        assert mine.is_file(), f"no file at {mine.resolve()}"
        _refuse_bundled(mine, manifest)
    cat_files = manifest.query("label == 'cat'").set_index("transformation")["file"]
    network_says: dict[str, list[tuple[str, float]]] = {}  # the package's top 10 for each file
    yours = {}
    with tempfile.TemporaryDirectory() as folder:
        files = {
            "the cat photo": cat_files["original"],
            "the cat cut-out": cat_files["rgba_cutout"],
            "the cat stored on its side": _on_its_side(cat_files["original"], Path(folder)),
        }
        if mine is not None:
            files["your photo"] = mine
        # The cat photo first, at every k: a loader's mistake then shows on the files made to catch it.
        calls = [("the cat photo", k) for k in (5, 1, 10)]
        calls += [(what, 5) for what in files if what != "the cat photo"]
        for what, k in calls:
            if what not in network_says:  # the oracle runs before top_k_classes is switched off
                batch = backbone.preprocess(load_rgb(files[what])).unsqueeze(0)
                network_says[what] = backbone.top_k_classes(batch, k=10)[0]
            with _learner_running(backbone):
                yours[what, k] = top_k_of(files[what], k)
            _compare(what, k, yours[what, k], network_says[what][:k])
        # Last, a network that names its classes in reverse order and halves its scores: top_k_of must
        # use the net it is given, its names and its classifier.
        other = dataclasses.replace(
            backbone,
            categories=list(reversed(backbone.categories)),
            classifier=nn.Sequential(backbone.classifier, _Halved()),
        )
        cat_batch = backbone.preprocess(load_rgb(files["the cat photo"])).unsqueeze(0)
        expected = other.top_k_classes(cat_batch, k=5)[0]
        try:
            with _learner_running(backbone):
                given_net = top_k_of(files["the cat photo"], 5, other)
        except TypeError as error:
            raise AssertionError(
                f"top_k_of(file, k, net) takes the network as a third argument, net=backbone by default "
                f"(the lesson also runs it on a random network); calling it so raised {error!r}"
            ) from None
        _compare("the cat photo, with net given", 5, given_net, expected)
    cat_rest = f"rest outside the top 5: the cat photo {float(yours['the cat photo', 5][1]):.3f}"
    if mine is None:
        print(f"Correct on the cat files ({cat_rest}). Your photo: skipped; set MY_PHOTO to see its top 5")
        return None
    my_top5 = [(name, float(p)) for name, p in yours["your photo", 5][0]]
    print(f"Correct! {cat_rest}, your photo {float(yours['your photo', 5][1]):.3f}")
    print("your photo's top 5:", ", ".join(f"{name} {p:.3f}" for name, p in my_top5))
    return my_top5
