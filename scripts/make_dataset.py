"""Build the course's bundled image set in ``data/`` from photos that ship inside packages.

Every picture comes from a package that is installed anyway (scikit-image,
scikit-learn, matplotlib) and carries an open licence; ``data/README.md`` names
each photo's origin and licence. From each source photo the script cuts one or
more non-overlapping square *views* (textures give one, large photos with several
subjects up to four), scales them to 224 x 224 pixels (the *base* images) and then
writes, for every base, a family of edited copies: byte-identical copies,
lossless re-saves, low-quality JPEG re-encodes, resized, cropped, mirrored,
brightened or darkened, watermarked, grayscale and RGBA cut-out versions. A base
and its copies form one *group*. Groups are split into train and test, and a few
copies are then planted in the other split on purpose: the train/test leaks the
course teaches how to find. ``manifest.csv`` records the ground truth.

The output is deterministic: fixed seeds, fixed encoder settings, no timestamps
or other metadata in the files, so two runs give byte-identical files (with the
package versions pinned in requirements-dev.txt).

Usage::

    python scripts/make_dataset.py              # writes the repository's data/
    python scripts/make_dataset.py --out /tmp/d # writes somewhere else

Only ``train/``, ``test/`` and ``manifest.csv`` inside the output folder are
removed and rewritten; anything else there (``README.md``) is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from embedkit.variants import add_watermark, offset_crop

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data"

SEED = 2024  # the split and every per-base parameter derive from this
BASE_SIZE = 224  # side of every base image, in pixels
TEST_FRACTION = 0.25  # share of groups that go to the test split
JPEG_QUALITY = 92  # originals and edited copies
PNG_LEVEL = 6  # zlib level of PNG originals; lossless re-saves use PNG_RESAVE_LEVEL
PNG_RESAVE_LEVEL = 1

MANIFEST_COLUMNS = [
    "path",
    "split",
    "label",
    "source",
    "transformation",
    "group",
    "sha256",
    "width",
    "height",
    "mode",
]

#: Every transformation name the manifest uses, in the order files are made.
KINDS = [
    "original",
    "exact_copy",
    "lossless_resave",
    "jpeg_reencode",
    "resize",
    "crop",
    "hflip",
    "brightness",
    "watermark",
    "rgba_cutout",
    "grayscale",
]


# --------------------------------------------------------------------------- sources
def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _matplotlib(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from matplotlib import cbook

        with Image.open(cbook.get_sample_data(name, asfileobj=False)) as image:
            return np.asarray(image.convert("RGB"))

    return load


#: Source photo name (as written in the manifest) -> loader returning a uint8 array.
SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "skimage.astronaut": _skimage("astronaut"),
    "skimage.camera": _skimage("camera"),
    "skimage.chelsea": _skimage("chelsea"),
    "skimage.coffee": _skimage("coffee"),
    "skimage.coins": _skimage("coins"),
    "skimage.brick": _skimage("brick"),
    "skimage.grass": _skimage("grass"),
    "skimage.gravel": _skimage("gravel"),
    "skimage.hubble_deep_field": _skimage("hubble_deep_field"),
    "skimage.immunohistochemistry": _skimage("immunohistochemistry"),
    "skimage.rocket": _skimage("rocket"),
    "skimage.retina": _skimage("retina"),
    "skimage.cell": _skimage("cell"),
    "skimage.text": _skimage("text"),
    "sklearn.china": _sklearn("china.jpg"),
    "sklearn.flower": _sklearn("flower.jpg"),
    "matplotlib.grace_hopper": _matplotlib("grace_hopper.jpg"),
}


@dataclass(frozen=True)
class View:
    """A square region ``(left, top, side)`` of a source photo that becomes one base image."""

    name: str
    source: str
    label: str
    box: tuple[int, int, int]


VIEWS: list[View] = [
    View("astronaut-face", "skimage.astronaut", "person", (80, 0, 220)),
    View("astronaut-shuttle", "skimage.astronaut", "spacecraft", (300, 0, 212)),
    View("astronaut-helmet", "skimage.astronaut", "helmet", (288, 288, 224)),
    View("astronaut-suit", "skimage.astronaut", "spacesuit", (8, 240, 272)),
    View("grace-hopper", "matplotlib.grace_hopper", "person", (100, 10, 310)),
    View("grace-hopper-ribbons", "matplotlib.grace_hopper", "uniform", (270, 376, 224)),
    View("cameraman", "skimage.camera", "person", (0, 50, 340)),
    View("camera-campus", "skimage.camera", "building", (340, 100, 172)),
    View("chelsea-cat", "skimage.chelsea", "cat", (80, 0, 300)),
    View("coffee-cup", "skimage.coffee", "coffee", (70, 0, 400)),
    View("china-pagoda", "sklearn.china", "building", (40, 20, 330)),
    View("china-lake", "sklearn.china", "landscape", (370, 110, 270)),
    View("dahlia", "sklearn.flower", "flower", (150, 60, 320)),
    View("rocket-launch", "skimage.rocket", "spacecraft", (205, 110, 317)),
    View("rocket-tower", "skimage.rocket", "tower", (0, 222, 205)),
    View("coins", "skimage.coins", "coins", (40, 0, 303)),
    View("brick", "skimage.brick", "texture", (0, 0, 512)),
    View("grass", "skimage.grass", "texture", (0, 0, 512)),
    View("gravel", "skimage.gravel", "texture", (0, 0, 512)),
    View("hubble-deep-field", "skimage.hubble_deep_field", "space", (100, 100, 500)),
    View("ihc-glands", "skimage.immunohistochemistry", "microscopy", (0, 0, 512)),
    View("retina", "skimage.retina", "retina", (0, 0, 1411)),
    View("cell", "skimage.cell", "microscopy", (326, 285, 180)),
    View("handwriting", "skimage.text", "text", (0, 0, 172)),
]

#: Bases whose ``original`` is a "product shot on white" and that get an RGBA cut-out,
#: with the shape of their mask.
RGBA_BASES = {
    "astronaut-face": "rounded",
    "chelsea-cat": "ellipse",
    "coffee-cup": "ellipse",
    "dahlia": "ellipse",
    "rocket-launch": "rounded",
    "china-pagoda": "rounded",
}
#: Bases with a lossless re-save (their original is stored as PNG).
LOSSLESS_BASES = {"coffee-cup", "dahlia", "grass", "coins", "cell", "handwriting", "hubble-deep-field"}
#: Bases with a byte-identical copy.
EXACT_COPY_BASES = {
    "astronaut-face",
    "cameraman",
    "china-lake",
    "coins",
    "gravel",
    "ihc-glands",
    "retina",
    "rocket-tower",
}

#: Leaks planted after the split: (kind, direction). "to_test": a copy from a train
#: group is moved to test; "to_train": a copy from a test group is moved to train.
LEAK_PLAN: list[tuple[str, str]] = [
    ("exact_copy", "to_test"),
    ("lossless_resave", "to_test"),
    ("jpeg_reencode", "to_test"),
    ("resize", "to_test"),
    ("brightness", "to_test"),
    ("crop", "to_test"),
    ("hflip", "to_test"),
    ("watermark", "to_test"),
    ("grayscale", "to_test"),
    ("rgba_cutout", "to_test"),
    ("hflip", "to_train"),
]


# --------------------------------------------------------------------------- encoding
def encode_jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes with fixed settings: baseline, 4:2:0, no EXIF, no optimisation pass."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, optimize=False, progressive=False, subsampling="4:2:0")
    return buf.getvalue()


def encode_png(image: Image.Image, level: int = PNG_LEVEL) -> bytes:
    """PNG bytes with a fixed zlib level and no text or time chunks."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=level, optimize=False)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


# --------------------------------------------------------------------------- bases
def make_view(array: np.ndarray, box: tuple[int, int, int]) -> Image.Image:
    """Cut the square ``box`` from a source array and scale it to the base size."""
    image = Image.fromarray(array)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    left, top, side = box
    if left + side > image.width or top + side > image.height:
        raise ValueError(f"box {box} does not fit in a {image.width}x{image.height} photo")
    square = image.crop((left, top, left + side, top + side))
    if side == BASE_SIZE:
        return square
    return square.resize((BASE_SIZE, BASE_SIZE), Image.Resampling.LANCZOS)


def shot_mask(shape: str, size: int = BASE_SIZE, feather: float = 2.0) -> Image.Image:
    """An ``L`` mask for a product shot: 255 inside the shape, 0 outside, soft edge.

    ``shape`` is ``"ellipse"`` (a circle inset by 6 pixels) or ``"rounded"`` (a
    rectangle inset by 8 pixels with 48-pixel corner radius).
    """
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "ellipse":
        draw.ellipse((6, 6, size - 7, size - 7), fill=255)
    elif shape == "rounded":
        draw.rounded_rectangle((8, 8, size - 9, size - 9), radius=48, fill=255)
    else:
        raise ValueError(f"unknown mask shape {shape!r}")
    return mask.filter(ImageFilter.GaussianBlur(feather))


def product_shot(view: Image.Image, mask: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The view laid on white through ``mask`` and its RGBA cut-out.

    The cut-out keeps the view's colours where the mask is not zero and stores
    black under fully transparent pixels, as many editors do; compositing it over
    white gives the product shot back (up to rounding at the soft edge).
    """
    rgb = np.asarray(view.convert("RGB"), dtype=np.float64)
    alpha = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
    shot = np.rint(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    cut_rgb = np.where(alpha > 0, rgb, 0.0).astype(np.uint8)
    cutout = np.dstack([cut_rgb, np.asarray(mask, dtype=np.uint8)])
    return Image.fromarray(shot, mode="RGB"), Image.fromarray(cutout, mode="RGBA")


# --------------------------------------------------------------------------- edits
@dataclass
class Entry:
    group: str
    label: str
    source: str
    kind: str
    ext: str
    data: bytes


def make_group(view: View, base: Image.Image) -> list[Entry]:
    """Encode one base and all of its edited copies."""

    def rng(kind: str) -> random.Random:  # one seeded stream per base and edit
        return random.Random(f"{SEED}:{view.name}:{kind}")

    entries: list[Entry] = []

    def add(kind: str, ext: str, data: bytes) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown transformation {kind!r}")
        entries.append(Entry(view.name, view.label, view.source, kind, ext, data))

    cutout = None
    if view.name in RGBA_BASES:
        base, cutout = product_shot(base, shot_mask(RGBA_BASES[view.name]))
    is_png = view.name in RGBA_BASES or view.name in LOSSLESS_BASES
    orig_ext = "png" if is_png else "jpg"
    orig_bytes = encode_png(base) if is_png else encode_jpeg(base)
    add("original", orig_ext, orig_bytes)
    original = decode(orig_bytes)  # every edit starts from the decoded file

    if view.name in EXACT_COPY_BASES:
        add("exact_copy", orig_ext, orig_bytes)
    if view.name in LOSSLESS_BASES:  # the original is a PNG: re-save at another zlib level
        resaved = encode_png(original, PNG_RESAVE_LEVEL)
        if resaved == orig_bytes:
            raise RuntimeError(f"{view.name}: lossless re-save gave identical bytes")
        add("lossless_resave", "png", resaved)

    quality = rng("jpeg_reencode").choice([40, 45, 50, 55, 60])
    add("jpeg_reencode", "jpg", encode_jpeg(original, quality=quality))

    scale = rng("resize").choice([0.5, 0.55, 0.6, 0.65, 0.7, 0.75])
    side = int(round(BASE_SIZE * scale))
    add("resize", "jpg", encode_jpeg(original.resize((side, side), Image.Resampling.LANCZOS)))

    r = rng("crop")
    fraction = r.choice([0.68, 0.72, 0.76, 0.8])
    anchor = r.choice([(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5), (0.2, 0.8), (0.8, 0.3)])
    add("crop", "jpg", encode_jpeg(offset_crop(original, fraction, anchor)))

    add("hflip", "jpg", encode_jpeg(ImageOps.mirror(original)))

    # Brighten or darken by 22-34%; a bright picture is darkened and a dark one
    # brightened, so that the edit does not wash out (clip) much of the picture.
    r = rng("brightness")
    step, brighten = r.choice([0.22, 0.26, 0.30, 0.34]), r.random() < 0.5
    mean = float(np.asarray(original.convert("L")).mean())
    if mean > 150 or mean < 80:
        brighten = mean < 80
    factor = 1.0 + step if brighten else 1.0 - step
    add("brightness", "jpg", encode_jpeg(ImageEnhance.Brightness(original).enhance(factor)))

    r = rng("watermark")
    marked = add_watermark(
        original,
        r.choice(["PREVIEW", "SAMPLE", "STOCK PHOTO"]),
        at_top=r.random() < 0.5,
        peak=r.choice([0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0]),
        dark_peak=r.random() < 0.5,
    )
    add("watermark", "jpg", encode_jpeg(marked))

    if cutout is not None:
        add("rgba_cutout", "png", encode_png(cutout))
    if original.mode == "RGB":
        add("grayscale", "jpg", encode_jpeg(original.convert("L")))
    return entries


# --------------------------------------------------------------------------- splits
def assign_splits(groups: list[str]) -> dict[str, str]:
    """Seeded shuffle of the group names; the first quarter goes to test."""
    order = sorted(groups)
    random.Random(SEED).shuffle(order)
    n_test = int(round(TEST_FRACTION * len(order)))
    return {g: ("test" if i < n_test else "train") for i, g in enumerate(order)}


def plant_leaks(entries: list[Entry], group_split: dict[str, str]) -> dict[tuple[str, str], str]:
    """Choose, per LEAK_PLAN item, one group (each group once) and move that copy across.

    Returns ``{(group, kind): split}`` for the moved files.
    """
    kinds_of: dict[str, set[str]] = {}
    for e in entries:
        kinds_of.setdefault(e.group, set()).add(e.kind)
    order = sorted(group_split)
    random.Random(SEED + 1).shuffle(order)
    used: set[str] = set()
    moved: dict[tuple[str, str], str] = {}
    for kind, direction in LEAK_PLAN:
        home = "train" if direction == "to_test" else "test"
        candidates = [g for g in order if g not in used and group_split[g] == home and kind in kinds_of[g]]
        if not candidates:
            raise RuntimeError(f"no {home} group has a {kind!r} copy to leak")
        group = candidates[0]
        used.add(group)
        moved[(group, kind)] = "test" if home == "train" else "train"
    return moved


# --------------------------------------------------------------------------- build
def check_views(views: list[View] = VIEWS) -> None:
    """Fail if two views share a name or two views of one photo overlap."""
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        raise ValueError("view names are not unique")
    for i, a in enumerate(views):
        for b in views[i + 1 :]:
            if a.source != b.source:
                continue
            (ax, ay, asz), (bx, by, bsz) = a.box, b.box
            if ax < bx + bsz and bx < ax + asz and ay < by + bsz and by < ay + asz:
                raise ValueError(f"views {a.name} and {b.name} overlap")


def build(out_dir: Path = DEFAULT_OUT) -> pd.DataFrame:
    """Write ``train/``, ``test/`` and ``manifest.csv`` under ``out_dir``; return the manifest."""
    out_dir = Path(out_dir)
    check_views()
    cache: dict[str, np.ndarray] = {}
    entries: list[Entry] = []
    for view in VIEWS:
        if view.source not in cache:
            cache[view.source] = SOURCES[view.source]()
        base = make_view(cache[view.source], view.box)
        entries += make_group(view, base)

    group_split = assign_splits([v.name for v in VIEWS])
    moved = plant_leaks(entries, group_split)

    for part in ("train", "test"):
        shutil.rmtree(out_dir / part, ignore_errors=True)
        (out_dir / part).mkdir(parents=True)
    rows = []
    for e in entries:
        split = moved.get((e.group, e.kind), group_split[e.group])
        rel = f"{split}/{e.group}_{e.kind}.{e.ext}"
        (out_dir / rel).write_bytes(e.data)
        with Image.open(io.BytesIO(e.data)) as image:
            width, height, mode = image.width, image.height, image.mode
        rows.append(
            {
                "path": rel,
                "split": split,
                "label": e.label,
                "source": e.source,
                "transformation": e.kind,
                "group": e.group,
                "sha256": hashlib.sha256(e.data).hexdigest(),
                "width": width,
                "height": height,
                "mode": mode,
            }
        )
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("path")
    manifest = manifest.reset_index(drop=True)
    manifest.to_csv(out_dir / "manifest.csv", index=False, lineterminator="\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    manifest = build(args.out)
    counts = manifest.groupby("split").size().to_dict()
    print(
        f"wrote {len(manifest)} files ({counts}) in {manifest['group'].nunique()} groups "
        f"from {manifest['source'].nunique()} source photos to {args.out}"
    )


if __name__ == "__main__":
    main()
