"""Folders with known truth, made at run time from the bundled photos.

``make_variants`` writes randomly edited copies of every bundled image (crops, mirror
images, resizes, JPEG re-encodes, in combination) into a folder. Each copy keeps its
source's ``group`` and ``split``, so the manifest's ground truth still scores every
method; ``make_bad_files`` adds the files a real folder holds that are not images.

``make_messy_folder`` builds a small fixed folder as a person's photo folder looks:
``train/``, ``test/`` and ``val/`` subfolders, nested folders with spaces and non-ASCII
names, uppercase endings, and planted problems:

- per planted photo: the original (in ``train/``), a byte copy with another name and an
  uppercase ``.JPG``/``.PNG`` ending, a lossless PNG re-save (same pixels, other bytes),
  a symbolic link to the original (where the file system allows links), a half-size
  copy in ``test/`` and a centre crop in ``val/``: one near-duplicate group that leaks
  into all three splits;
- photos that appear once, one of them as a 1200 x 150 panorama;
- files that cannot be used: an empty file, a truncated JPEG, a text file named ``.jpg``, a
  1200 x 3 strip (an extreme aspect ratio, refused by name) and a dangling symbolic link.

It returns the truth as plain data, so lesson 06 and the curate tool's tests can check
what the tool finds.

``unseen_photos`` and ``make_new_edits`` make copies that no stored threshold was chosen
on: photos that ship with scikit-image but are not in ``data/``, and copies made with
edits, strengths and combinations the bundled set does not use (a rotation, a colour and
contrast change, an opaque sticker, two edits per copy, then a JPEG re-encode). Lesson 05
reports its thresholds on them. ``scripts/make_dataset.py`` builds the fixed bundled set once
(committed, checksummed) with this module's :func:`add_watermark` and :func:`offset_crop`;
everything here is deterministic and made when needed.

:func:`plant_edit` makes one copy of a picture with one of :data:`PLANTED_EDITS` (the
bundled set's kinds of copy, with parameters drawn from the same ranges), in memory:
``embedkit.calibration`` plants them in a sample of a user's own photos to measure a
network's near-duplicate threshold there.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from .dataset import DATA_DIR
from .images import load_rgb

__all__ = [
    "COLUMNS",
    "NEW_EDITS",
    "NEW_EDIT_COLUMNS",
    "PLANTED_EDITS",
    "UNSEEN_PHOTOS",
    "add_watermark",
    "make_bad_files",
    "make_messy_folder",
    "make_new_edits",
    "make_variants",
    "offset_crop",
    "plant_edit",
    "unseen_photos",
]

#: The columns of :func:`make_variants`' table (present even when it has no rows).
COLUMNS = ["file", "path", "source", "group", "split", "transformation"]
#: Opacity of :func:`add_watermark`'s banner (0..255).
WATERMARK_ALPHA = 130


def _edit(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """One random combination of mild edits; returns the image and a name for them."""
    names = []
    w, h = image.size
    if rng.random() < 0.5:
        keep = rng.uniform(0.8, 0.95)
        cw, ch = max(1, round(w * keep)), max(1, round(h * keep))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        image = image.crop((x0, y0, x0 + cw, y0 + ch))
        names.append("crop")
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
        names.append("mirror")
    if rng.random() < 0.5 or not names:
        scale = rng.uniform(0.5, 0.9)
        image = image.resize(
            (max(8, round(image.width * scale)), max(8, round(image.height * scale))),
            Image.Resampling.BILINEAR,
        )
        names.append("resize")
    return image, "+".join(names)


# --------------------------------------------------------------------------- single edits


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def add_watermark(image: Image.Image, text: str, at_top: bool, peak: float, dark_peak: bool) -> Image.Image:
    """A stock-photo style watermark: a translucent shaded banner with a logo and text.

    The banner covers the top or bottom half of the picture at 55% opacity. Its
    shade changes across the width, from light at ``peak`` (0..1 of the width)
    to dark at the far side, or the other way round with ``dark_peak``; it
    carries a ring-and-star logo and ``text``. The shading rewrites the picture's
    coarse left/right brightness pattern, which is what a difference hash
    encodes, while the photo stays recognisable underneath.
    """
    mode = image.mode
    base = image.convert("RGBA")
    w, h = base.size
    band_h = h // 2
    top = 0 if at_top else h - band_h
    x = np.linspace(0.0, 1.0, w)
    t = np.abs(x - peak) / max(peak, 1.0 - peak)  # 0 at the peak, 1 at the far edge
    shade = 20.0 + 230.0 * t if dark_peak else 250.0 - 230.0 * t
    band = np.empty((band_h, w, 4), dtype=np.uint8)
    band[..., :3] = np.rint(shade).astype(np.uint8)[None, :, None]
    band[..., 3] = WATERMARK_ALPHA
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    overlay.paste(Image.fromarray(band, mode="RGBA"), (0, top))
    draw = ImageDraw.Draw(overlay)
    white = (255, 255, 255, 200)
    cx, cy, r = int(w * 0.15), top + band_h // 2, int(band_h * 0.25)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=white, width=3)
    star = []
    for k in range(10):
        radius = 0.8 * r if k % 2 == 0 else 0.36 * r
        angle = np.pi / 2 + k * np.pi / 5
        star.append((cx + radius * np.cos(angle), cy - radius * np.sin(angle)))
    draw.polygon(star, fill=white)
    draw.text((int(w * 0.30), cy), text, fill=white, font=_font(int(band_h * 0.16)), anchor="lm")
    out = Image.alpha_composite(base, overlay).convert("RGB")
    return out.convert("L") if mode == "L" else out


def offset_crop(image: Image.Image, fraction: float, anchor: tuple[float, float]) -> Image.Image:
    """Crop ``fraction`` of each side, placed at ``anchor`` (0..1 along x and y)."""
    w, h = image.size
    cw, ch = int(round(w * fraction)), int(round(h * fraction))
    left = int(round((w - cw) * anchor[0]))
    top = int(round((h - ch) * anchor[1]))
    return image.crop((left, top, left + cw, top + ch))


#: The edits :func:`plant_edit` makes: the bundled set's kinds of copy (``data/manifest.csv``),
#: a colour change, and the random crop/mirror/resize mix of :func:`make_variants`.
PLANTED_EDITS: tuple[str, ...] = (
    "jpeg_reencode",
    "resize",
    "crop",
    "hflip",
    "brightness",
    "colour",
    "watermark",
    "grayscale",
    "mixed",
)
_CROP_ANCHORS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5), (0.2, 0.8), (0.8, 0.3))


def _jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, subsampling="4:2:0")
    buf.seek(0)
    with Image.open(buf) as decoded:
        return decoded.convert("RGB")


def plant_edit(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """One edited copy of ``image``, as a person's copy of a photo would be made, in memory.

    The parameters come from the ranges ``scripts/make_dataset.py`` uses for the bundled
    copies, drawn from ``rng``:

    - ``jpeg_reencode``: saved as JPEG at quality 40 to 60;
    - ``resize``: scaled to 50-75 % of each side;
    - ``crop``: 68-80 % of each side, at a corner, the centre or in between;
    - ``hflip``: mirrored left to right;
    - ``brightness``: 22-34 % brighter or darker (a dark picture is brightened, a bright one
      darkened, so little of it clips);
    - ``colour``: saturation and contrast each scaled by 0.6-0.8 or 1.25-1.5;
    - ``watermark``: :func:`add_watermark` over the top or bottom half;
    - ``grayscale``: the gray picture, stored as RGB;
    - ``mixed``: :func:`make_variants`' random combination of crop, mirror and resize.

    Every copy but ``jpeg_reencode`` is then saved as a quality-92 JPEG and decoded, as a
    copy on disk would be.

    Args:
        image: the picture (any mode Pillow converts to RGB).
        kind: one of :data:`PLANTED_EDITS`.
        rng: where the parameters come from (seed it for the same copy every time).

    Returns:
        The decoded copy, mode ``"RGB"``.
    """
    if kind not in PLANTED_EDITS:
        raise ValueError(f"unknown edit {kind!r}; choose from {', '.join(PLANTED_EDITS)}")
    picture = image.convert("RGB")
    quality = 92
    if kind == "jpeg_reencode":
        quality = int(rng.choice([40, 45, 50, 55, 60]))
    elif kind == "resize":
        scale = float(rng.uniform(0.5, 0.75))
        size = (max(8, round(picture.width * scale)), max(8, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    elif kind == "crop":
        anchor = _CROP_ANCHORS[int(rng.integers(len(_CROP_ANCHORS)))]
        picture = offset_crop(picture, float(rng.uniform(0.68, 0.8)), anchor)
    elif kind == "hflip":
        picture = ImageOps.mirror(picture)
    elif kind == "brightness":
        step = float(rng.uniform(0.22, 0.34))
        mean = float(np.asarray(picture.convert("L")).mean())
        brighten = bool(rng.random() < 0.5) if 80 <= mean <= 150 else mean < 80
        picture = ImageEnhance.Brightness(picture).enhance(1.0 + step if brighten else 1.0 - step)
    elif kind == "colour":
        for enhancer in (ImageEnhance.Color, ImageEnhance.Contrast):
            factor = rng.uniform(0.6, 0.8) if rng.random() < 0.5 else rng.uniform(1.25, 1.5)
            picture = enhancer(picture).enhance(float(factor))
    elif kind == "watermark":
        text = ["PREVIEW", "SAMPLE", "STOCK PHOTO"][int(rng.integers(3))]
        picture = add_watermark(
            picture,
            text,
            at_top=bool(rng.random() < 0.5),
            peak=float(rng.choice([0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0])),
            dark_peak=bool(rng.random() < 0.5),
        )
    elif kind == "grayscale":
        picture = picture.convert("L").convert("RGB")
    else:  # mixed
        picture, _ = _edit(picture, rng)
    return _jpeg_round_trip(picture, quality)


def make_variants(
    manifest: pd.DataFrame, out_dir: str | os.PathLike, per_file: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Write ``per_file`` edited JPEG copies of every manifest file into ``out_dir``.

    Args:
        manifest: from :func:`embedkit.dataset.load_manifest` (needs ``file``, ``path``,
            ``group``, ``split``).
        out_dir: folder to write into (created).
        per_file: copies per bundled file.
        seed: the edits are random but reproducible.

    Returns:
        One row per copy: ``file`` (absolute path), ``path`` (relative to ``out_dir``),
        ``source`` (the bundled file's relative path), ``group``, ``split`` (the
        source's) and ``transformation`` (the edits, e.g. ``"crop+mirror"``).
    """
    if isinstance(per_file, bool) or not isinstance(per_file, int) or per_file < 0:
        raise ValueError(f"per_file must be a whole number, 0 or more; got {per_file!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for src in manifest.itertuples():
        picture = load_rgb(src.file)
        stem = Path(src.path).with_suffix("").as_posix().replace("/", "__")
        for k in range(per_file):
            edited, kind = _edit(picture, rng)
            name = f"{stem}__v{k:02d}.jpg"
            edited.save(out / name, quality=int(rng.integers(60, 95)))
            rows.append(
                {
                    "file": str(out / name),
                    "path": name,
                    "source": src.path,
                    "group": src.group,
                    "split": src.split,
                    "transformation": kind,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def make_bad_files(out_dir: str | os.PathLike, good_jpeg: str | os.PathLike) -> list[Path]:
    """Write three files that are not usable images into ``out_dir``: empty, text, truncated JPEG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    empty, text, truncated = out / "empty.jpg", out / "notes.jpg", out / "truncated.jpg"
    empty.write_bytes(b"")
    text.write_text("this is a text file with an image's name\n")
    data = Path(good_jpeg).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return [empty, text, truncated]


# --------------------------------------------------------------------------- a messy folder

#: Photos planted with copies (distinct source photos), and photos that appear once.
_PLANTED = ["chelsea-cat", "coffee-cup", "rocket-launch", "coins"]
_SINGLES = ["brick", "retina", "hubble-deep-field", "dahlia", "cameraman", "handwriting"]
_STRIP = "camera-campus"  # appears once, as an extreme-aspect strip

# Where each planted photo's files go: (subfolder, name pattern); {n} is the photo name.
_LAYOUT = {
    "original": ("train/holiday 2023", "{n}.jpg"),
    "byte_copy": ("train", "{n} (copy).JPG"),
    "png_resave": ("train/exports", "{n}.PNG"),
    "link": ("train/links", "{n}-link.jpg"),
    "half_size": ("test", "{n}_small.jpg"),
    "crop": ("val/café ☕", "{n}_crop.jpg"),
}
#: Where the files that are not usable images go (see :func:`make_bad_files`).
_BAD_FOLDER = "test/from my phone"


def _original(name: str, data_dir: Path) -> Path:
    matches = sorted(data_dir.glob(f"*/{name}_original.*"))
    if not matches:
        raise FileNotFoundError(f"no original of {name!r} under {data_dir}; run scripts/make_dataset.py")
    return matches[0]


def _as_jpeg(target: Path, image: Image.Image) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="JPEG", quality=92)


def make_messy_folder(
    dest: str | os.PathLike, links: bool = True, data_dir: str | os.PathLike = DATA_DIR
) -> dict:
    """Write the messy folder to ``dest`` (replacing it) and return its truth.

    Args:
        dest: the folder to write (removed first if it exists).
        links: plant symbolic links (a link to a photo, a dangling link) where the
            file system allows them.
        data_dir: the bundled data set the photos come from.

    Returns:
        ``{"files", "exact_groups", "near_groups", "leaks", "unreadable", "singles"}``:
        the number of image files, lists of path lists (sorted), leaks as
        ``{split: [paths]}`` dicts, the unreadable paths, and the files that belong to
        no group. Paths are relative to ``dest``, with ``/`` separators.
    """
    dest, data_dir = Path(dest), Path(data_dir)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    can_link = links and hasattr(os, "symlink")
    exact_groups, near_groups, leaks = [], [], []
    for name in _PLANTED:
        paths = {kind: f"{folder}/{pattern.format(n=name)}" for kind, (folder, pattern) in _LAYOUT.items()}
        if not can_link:
            paths.pop("link")
        original = dest / paths["original"]
        _as_jpeg(original, Image.open(_original(name, data_dir)).convert("RGB"))
        picture = Image.open(original).convert("RGB")
        (dest / paths["byte_copy"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, dest / paths["byte_copy"])
        (dest / paths["png_resave"]).parent.mkdir(parents=True, exist_ok=True)
        picture.save(dest / paths["png_resave"], format="PNG")  # the decoded JPEG pixels, losslessly
        if can_link:
            (dest / paths["link"]).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(original, (dest / paths["link"]).parent), dest / paths["link"])
        w, h = picture.size
        _as_jpeg(dest / paths["half_size"], picture.resize((w // 2, h // 2), Image.Resampling.LANCZOS))
        _as_jpeg(dest / paths["crop"], picture.crop((w // 10, h // 10, w - w // 10, h - h // 10)))
        exact = ("original", "byte_copy", "png_resave", "link")  # same pixels
        exact_groups.append(sorted(p for kind, p in paths.items() if kind in exact))
        near_groups.append(sorted(paths.values()))
        by_split: dict[str, list[str]] = {}
        for p in paths.values():
            by_split.setdefault(p.split("/")[0], []).append(p)
        leaks.append({split: sorted(ps) for split, ps in sorted(by_split.items())})
    singles = []
    for k, name in enumerate(_SINGLES):
        rel = f"{['train', 'test', 'val'][k % 3]}/{name}.{'jpeg' if k % 2 else 'png'}"
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.open(_original(name, data_dir)).convert("RGB").save(dest / rel)
        singles.append(rel)
    strip_source = Image.open(_original(_STRIP, data_dir)).convert("RGB")
    panorama = f"train/{_STRIP}_panorama.png"  # 8:1, wide but within what the package accepts
    strip_source.resize((1200, 150)).save(dest / panorama)
    singles.append(panorama)

    strip = f"train/{_STRIP}_strip.png"  # 400:1: refused by name (the network would see a sliver)
    strip_source.resize((1200, 3)).save(dest / strip)
    bad = make_bad_files(dest / _BAD_FOLDER, original)
    unreadable = [strip, *(p.relative_to(dest).as_posix() for p in bad)]
    if can_link:
        unreadable.append("val/missing-link.jpg")
        os.symlink("no-such-photo.jpg", dest / unreadable[-1])
    (dest / "README.txt").write_text("not an image; the tools ignore it\n", encoding="utf-8")
    n_files = sum(len(g) for g in near_groups) + len(singles) + len(unreadable)
    return {
        "files": n_files,
        "exact_groups": sorted(exact_groups),
        "near_groups": sorted(near_groups),
        "leaks": leaks,
        "unreadable": sorted(unreadable),
        "singles": sorted(singles),
    }


# --------------------------------------------------------------------------- copies no threshold saw

#: Photos that ship inside scikit-image and are not among ``data/``'s sources, with the
#: square (left, top, side) cut from each: the same kind of 224-pixel view as the bundled
#: photos, of pictures no stored threshold was chosen on.
UNSEEN_PHOTOS = {
    "moon": ("moon", (0, 0, 512)),
    "clock": ("clock", (60, 0, 300)),
    "page": ("page", (0, 0, 191)),
    "motorcycle": ("stereo_motorcycle", (120, 0, 500)),
}

#: The edits :func:`make_new_edits` draws from (two different ones per copy).
NEW_EDITS = ("crop", "rotate", "colour", "sticker", "mirror", "resize")

#: The columns of :func:`make_new_edits`' table.
NEW_EDIT_COLUMNS = ["file", "path", "photo", "edits", "quality"]

_VIEW_SIZE = 224  # the bundled photos' size


def unseen_photos(out_dir: str | os.PathLike, size: int = _VIEW_SIZE) -> dict[str, Path]:
    """Write a ``size`` x ``size`` JPEG view of every photo in :data:`UNSEEN_PHOTOS`.

    Returns:
        ``{photo name: path}`` of the files written into ``out_dir`` (created).
    """
    import skimage.data

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (loader, (left, top, side)) in UNSEEN_PHOTOS.items():
        array = getattr(skimage.data, loader)()
        if isinstance(array, tuple):  # the stereo pair: its left view
            array = array[0]
        square = Image.fromarray(array).convert("RGB").crop((left, top, left + side, top + side))
        path = out / f"{name}_original.jpg"
        square.resize((size, size), Image.Resampling.LANCZOS).save(path, quality=92)
        written[name] = path
    return written


def _new_edit(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """One edit of :data:`NEW_EDITS`, with its strength drawn from ``rng``."""
    w, h = image.size
    if kind == "crop":  # keep 75-90 % of each side, anywhere in the picture
        keep = rng.uniform(0.75, 0.9)
        cw, ch = round(w * keep), round(h * keep)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return image.crop((x0, y0, x0 + cw, y0 + ch))
    if kind == "rotate":  # straighten by 3-8 degrees, then cut away the empty corners
        angle = rng.uniform(3, 8) * rng.choice([-1, 1])
        turned = image.rotate(angle, resample=Image.Resampling.BILINEAR)
        margin = np.sin(np.radians(abs(angle))) * max(w, h) / 2
        return turned.crop((round(margin), round(margin), w - round(margin), h - round(margin)))
    if kind == "colour":  # saturation x0.4-1.7 and contrast x0.7-1.3
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.4, 1.7))
        return ImageEnhance.Contrast(image).enhance(rng.uniform(0.7, 1.3))
    if kind == "sticker":  # an opaque label over 6-12 % of the picture, with a word on it
        image = image.copy()
        area = rng.uniform(0.06, 0.12) * w * h
        bw = round(min(w, np.sqrt(area * rng.uniform(1.5, 3.0))))
        bh = round(min(h, area / bw))
        x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
        draw = ImageDraw.Draw(image)
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.rounded_rectangle((x0, y0, x0 + bw, y0 + bh), radius=max(1, bh // 5), fill=fill)
        ink = (0, 0, 0) if sum(fill) > 384 else (255, 255, 255)
        word = str(rng.choice(["SALE", "NEW", "50% OFF", "@me", "2024"]))
        draw.text(
            (x0 + bw // 2, y0 + bh // 2),
            word,
            fill=ink,
            anchor="mm",
            font=ImageFont.load_default(size=max(8, bh // 2)),
        )
        return image
    if kind == "mirror":
        return ImageOps.mirror(image)
    if kind == "resize":  # 35-50 % of each side
        scale = rng.uniform(0.35, 0.5)
        return image.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.LANCZOS)
    raise ValueError(f"unknown edit {kind!r}; choose from {NEW_EDITS}")


def make_new_edits(
    photos: dict[str, str | os.PathLike],
    out_dir: str | os.PathLike,
    per_photo: int = 3,
    seed: int = 2024,
) -> pd.DataFrame:
    """Write ``per_photo`` edited JPEG copies of every photo into ``out_dir``.

    Each copy gets two different edits of :data:`NEW_EDITS`, in random order and with
    random strengths, and is then saved as a JPEG of quality 65-90. The bundled set's
    copies carry one edit each (a JPEG re-encode at quality 40-60, resizes to 50-75 %,
    crops keeping 68-80 % at fixed anchors, a mirror image, a brightness change, a
    translucent watermark banner, grayscale; all but the re-encode are saved at JPEG
    quality 92); a rotation, a colour and contrast change and an
    opaque sticker are edits it does not have at all.

    Args:
        photos: ``{photo name: image file}``; the name is the copies' ground truth
            (use the manifest's ``group`` for a bundled original).
        out_dir: folder to write into (created).
        per_photo: copies per photo.
        seed: the edits are random but reproducible.

    Returns:
        One row per copy: ``file`` (absolute path), ``path`` (relative to ``out_dir``),
        ``photo``, ``edits`` (e.g. ``"rotate+sticker"``, in the order applied) and the
        JPEG ``quality``.
    """
    if isinstance(per_photo, bool) or not isinstance(per_photo, int) or per_photo < 0:
        raise ValueError(f"per_photo must be a whole number, 0 or more; got {per_photo!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for photo, file in photos.items():
        picture = load_rgb(file)
        for k in range(per_photo):
            kinds = [str(kind) for kind in rng.choice(NEW_EDITS, size=2, replace=False)]
            edited = picture
            for kind in kinds:
                edited = _new_edit(edited, kind, rng)
            quality = int(rng.integers(65, 91))
            name = f"{photo}__new{k:02d}.jpg"
            edited.save(out / name, quality=quality)
            rows.append(
                {
                    "file": str(out / name),
                    "path": name,
                    "photo": photo,
                    "edits": "+".join(kinds),
                    "quality": quality,
                }
            )
    return pd.DataFrame(rows, columns=NEW_EDIT_COLUMNS)
