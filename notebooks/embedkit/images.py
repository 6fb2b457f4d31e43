"""Open any image file a learner will meet as an 8-bit RGB picture.

Real folders hold more than tidy RGB JPEGs: phone photos stored sideways with an
EXIF orientation tag, PNG cut-outs with a transparent background, palette GIFs,
grayscale scans, 16-bit medical images, CMYK files from print, and files that
are empty, truncated, not images at all, or dangling links. ``load_rgb`` turns
every readable one into what a person sees on screen, and raises
:class:`ImageLoadError` naming the file and the reason for the rest.
``scan_images`` sorts a whole folder into loadable files and ``(path, reason)``
pairs, without ever raising for a bad file.

A network sees a few hundred pixels, so ``load_rgb(..., min_side=256)`` decodes a
12-megapixel phone photo at reduced size: JPEG's DCT scaling decodes at 1/2, 1/4
or 1/8 size directly, other formats are box-reduced after decoding, and the short
side always stays at least ``min_side`` (the network's resize target), so what the
network sees does not change. Hashing pixels needs every pixel and keeps the default.
A caller that needs both from one decode (``curate`` hashes and embeds every file) uses
``load_rgb_and_reduced``: every pixel, and the reduced picture box-reduced from them.
"""

from __future__ import annotations

import io
import math
import os
import stat
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from .folders import IMAGE_SUFFIXES, file_kind, link_problem, scan_folder

__all__ = [
    "IMAGE_SUFFIXES",
    "DEFAULT_MAX_PIXELS",
    "MAX_ASPECT_RATIO",
    "MAX_RESIZED_PIXELS",
    "ImageLoadError",
    "ScanResult",
    "as_rgb",
    "check_background",
    "check_max_pixels",
    "expand_paths",
    "load_rgb",
    "load_rgb_and_reduced",
    "load_rgb_bytes",
    "scan_images",
    "to_rgb",
]

#: Rows converted at a time when a 16-bit or 32-bit image becomes 8-bit (bounded temporaries).
_CONVERT_PIXELS = 1 << 20

#: Largest image accepted, in pixels (about 89 megapixels, Pillow's own default).
#: Anything bigger is treated as a possible decompression bomb: a tiny file that
#: would expand to gigabytes of memory.
DEFAULT_MAX_PIXELS = 89_478_485

#: Most pixels an image prepared for a network may have once its short side is resized to
#: the network's target (``min_side``): about 16.8 million, 50 MB as 8-bit RGB. Resizing the
#: short side of a 60000x1 strip to 256 px would need 15 million x 256 pixels (gigabytes);
#: a 4000x120 panorama needs 8533x256, 2.2 million, and passes.
MAX_RESIZED_PIXELS = 1 << 24

#: Longest side over shortest side that an image prepared for a network may have by default:
#: the ratio at which a 256-px short side reaches :data:`MAX_RESIZED_PIXELS` (256:1). The
#: bound is on memory, not on taste: a network sees the centre square of the picture, about
#: 1/ratio of a wide panorama, which is the caller's choice to accept.
MAX_ASPECT_RATIO = MAX_RESIZED_PIXELS / 256**2

_FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "TIFF": "TIFF", "WEBP": "WebP"}
_PILLOW_LIMIT_LOCK = threading.Lock()


class ImageLoadError(Exception):
    """A file that cannot be opened as an image; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the two fields when pickled (thread/process pools)
        return (type(self), (self.path, self.reason))


# --------------------------------------------------------------------------- arguments


def check_background(background) -> tuple[int, int, int]:
    """``background`` as an ``(r, g, b)`` tuple of ints in 0..255, or a clear ``TypeError``/``ValueError``."""
    if (
        isinstance(background, (str, bytes))
        or not isinstance(background, (tuple, list, np.ndarray))
        or len(background) != 3
        or not all(isinstance(c, Integral) and not isinstance(c, bool) for c in background)
    ):
        raise TypeError(
            f"background must be an (r, g, b) tuple of three integers 0-255, e.g. (255, 255, 255) "
            f"for white; got {background!r}"
        )
    if not all(0 <= c <= 255 for c in background):
        raise ValueError(f"background colour values must lie in 0..255; got {tuple(background)!r}")
    return tuple(int(c) for c in background)


def check_max_pixels(max_pixels) -> int:
    """``max_pixels`` as a positive int, or a clear ``TypeError``/``ValueError``."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, Real):
        raise TypeError(
            f"max_pixels must be a number of pixels such as {DEFAULT_MAX_PIXELS:_} "
            f"(the default); got {max_pixels!r}"
        )
    if not math.isfinite(max_pixels) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a finite number of pixels, at least 1; got {max_pixels!r}")
    return int(max_pixels)


def _check_min_side(min_side) -> int | None:
    if min_side is None:
        return None
    if isinstance(min_side, bool) or not isinstance(min_side, Integral) or min_side < 1:
        raise ValueError(f"min_side must be None or a positive integer number of pixels; got {min_side!r}")
    return int(min_side)


def _check_aspect_ratio(max_aspect_ratio) -> float | None:
    if max_aspect_ratio is None:
        return None
    if (
        isinstance(max_aspect_ratio, bool)
        or not isinstance(max_aspect_ratio, Real)
        or not (math.isfinite(max_aspect_ratio) and max_aspect_ratio >= 1)
    ):
        raise ValueError(f"max_aspect_ratio must be None or a finite number >= 1; got {max_aspect_ratio!r}")
    return float(max_aspect_ratio)


def _allow_in_pillow(max_pixels: int) -> None:
    """Raise Pillow's process-wide bomb limit so it never refuses what ``max_pixels`` accepts.

    Pillow refuses images above twice ``Image.MAX_IMAGE_PIXELS`` before we see them;
    the limit is only ever raised here (to ``max_pixels``), never lowered, and our own
    check, with the file's name, still applies to every call.
    """
    with _PILLOW_LIMIT_LOCK:
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and max_pixels > 2 * limit:
            Image.MAX_IMAGE_PIXELS = max_pixels


# --------------------------------------------------------------------------- modes to RGB


def _composite(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Lay an image with transparency over an opaque background colour."""
    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Map a 16-bit, 32-bit integer or float single-channel image to 8-bit grayscale.

    16-bit files are scaled by their type's range (65535 -> 255), so a dark scan
    stays dark. 32-bit integer images are treated as 8-bit or 16-bit data when
    their values fit, otherwise stretched to their own range; float images in
    [0, 1] are scaled by 255, otherwise stretched to their own range.

    Memory: one copy of the image's values plus the 8-bit result and about
    ``_CONVERT_PIXELS`` pixels of temporaries, never a float64 copy of the whole image
    (opening a 9400×9400 16-bit scan as RGB peaks about 0.6 GB above the start instead of
    1.9 GB; ``benchmarks/bench_curate_memory.py``).
    """
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        values = values.astype(np.uint16, copy=False)  # big-endian modes to native order
        lo, hi = 0, 65535
        scale = "range"
    else:
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if image.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scale = "unit"
        elif image.mode == "I" and lo >= 0 and hi <= 255:
            scale = "same"
        elif image.mode == "I" and lo >= 0 and hi <= 65535:
            scale = "range"
        elif hi > lo:
            scale = "stretch"
        else:
            scale = "zero"
    out = np.empty(values.shape, dtype=np.uint8)
    rows = max(1, _CONVERT_PIXELS // max(1, values.shape[1] if values.ndim > 1 else 1))
    for start in range(0, values.shape[0], rows):
        block = values[start : start + rows]
        if scale == "range" and block.dtype.kind in "iu":
            # rint(v / 257) in integers: v / 257 never ends in exactly .5
            converted = (block.astype(np.uint32) + 128) // 257
        elif scale == "range":
            converted = np.rint(block / 257.0)
        elif scale == "unit":
            converted = np.rint(block.astype(np.float64) * 255.0)
        elif scale == "same":
            converted = block
        elif scale == "stretch":
            converted = np.rint((block.astype(np.float64) - lo) * (255.0 / (hi - lo)))
        else:
            converted = np.zeros(block.shape, dtype=np.uint8)
        out[start : start + rows] = np.clip(converted, 0, 255)
    return Image.fromarray(out, mode="L")


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert an already opened image to 8-bit RGB the way a viewer would show it.

    Transparency (RGBA, LA, PA, premultiplied modes, palette or RGB/L images with a
    transparent colour) is composited over ``background`` rather than dropped: a
    plain ``.convert("RGB")`` keeps whatever colour happens to be stored under
    transparent pixels, often black. EXIF orientation is *not* applied here; it
    needs the file's metadata, which :func:`load_rgb` reads.
    """
    background = check_background(background)
    mode = image.mode
    if mode in ("RGBa", "La"):  # premultiplied alpha: undo it first
        image = image.convert("RGBA" if mode == "RGBa" else "LA")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return _composite(image, background)
    if mode == "RGB":
        return image.copy()
    if mode in ("1", "L", "P", "CMYK", "YCbCr", "HSV"):
        return image.convert("RGB")
    if mode.startswith("I") or mode == "F":
        return _to_8bit(image).convert("RGB")
    raise ValueError(f"unsupported image mode {mode!r}")


# --------------------------------------------------------------------------- size checks


def _size_problem(
    size: tuple[int, int], max_pixels: int | None, max_aspect_ratio: float | None, min_side: int | None
) -> str | None:
    """Why an image of ``size`` (width, height) must not be decoded or resized, or None."""
    width, height = size
    if width < 1 or height < 1:
        return f"image has no pixels ({width}x{height})"
    if max_pixels is not None and width * height > max_pixels:
        return (
            f"image too large: {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} (possible decompression bomb; raise max_pixels if the file is trusted)"
        )
    ratio = max(width, height) / min(width, height)
    target = min_side or 256
    resized_pixels = target * round(target * ratio)
    if max_aspect_ratio is None:
        return None
    too_elongated = ratio > max_aspect_ratio
    if too_elongated or (min_side is not None and resized_pixels > MAX_RESIZED_PIXELS):
        resized = f"{round(target * ratio):,}x{target}"
        limit = (
            f"more than {max_aspect_ratio:g}:1"
            if too_elongated
            else f"more than {MAX_RESIZED_PIXELS:,} pixels"
        )
        return (
            f"extreme aspect ratio: {width}x{height} is {ratio:,.0f}:1, {limit}; "
            f"the network would see only its centre square, and resizing its short side to {target} px "
            f"would make a {resized} image (crop or split it first)"
        )
    return None


def _shrink(image: Image.Image, min_side: int | None) -> Image.Image:
    """Box-reduce by the largest integer factor that keeps the short side >= ``min_side``."""
    if min_side is None:
        return image
    factor = min(image.size) // min_side
    return image.reduce(factor) if factor >= 2 else image


# --------------------------------------------------------------------------- files


def _check_file(p: Path) -> None:
    """Raise ImageLoadError for a path that is not a readable, non-empty regular file."""
    if p.is_symlink() and not p.exists():
        raise ImageLoadError(p, link_problem(p))
    if not p.exists():
        raise ImageLoadError(p, "file not found")
    st = p.stat()
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(p, "is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):  # a pipe or a device would block or never end
        raise ImageLoadError(p, f"{file_kind(st.st_mode)}, not an image file; not opened")
    if st.st_size == 0:
        raise ImageLoadError(p, "empty file (0 bytes)")


_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG": "PNG",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}


def _sniff_format(path: Path | bytes) -> str | None:
    """The format a file's first bytes announce (the file, or its bytes), for messages on failed decodes."""
    if isinstance(path, bytes):
        head = path[:8]
    else:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError:
            return None
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def _reason_from(exc: Exception, path: Path | bytes, fmt: str | None) -> str:
    """One line for the user on why decoding ``path`` (a file, or its bytes) raised ``exc``."""
    if isinstance(exc, UnidentifiedImageError):
        if isinstance(path, Path) and path.suffix.lower() in (".heic", ".heif", ".avif"):
            return (
                f"{path.suffix[1:].upper()} file this Pillow cannot decode (no codec for it here; "
                "pip install pillow-heif adds HEIC, a Pillow built with libavif reads AVIF)"
            )
        announced = _sniff_format(path)
        if announced:
            return f"corrupt {announced} file (it starts like one, but its header is damaged)"
        return "not an image file (Pillow recognises no image format in it)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large: {exc}"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    text = str(exc)
    if isinstance(exc, ValueError) and "unsupported image mode" in text:
        return text
    if isinstance(exc, PermissionError):
        return "no permission to read the file"
    kind = _FORMAT_NAMES.get(fmt or _sniff_format(path) or "", fmt or "image")
    if "truncated" in text.lower() or "premature end" in text.lower():
        return f"truncated {kind} file (the file ends before the image data does)"
    return f"corrupt {kind} data ({type(exc).__name__}: {text})"


def _draft_scale(image: Image.Image, min_side: int | None) -> int:
    """The factor (1, 2, 4 or 8) that ``image.draft("RGB", (min_side, min_side))`` would decode an
    opened, not yet loaded ``image`` smaller by: Pillow's own rule, 1 for any format but JPEG."""
    if min_side is None or not isinstance(image, JpegImagePlugin.JpegImageFile) or len(image.tile) != 1:
        return 1
    fits = min(image.size[0] // min_side, image.size[1] // min_side)
    return next((s for s in (8, 4, 2) if fits >= s), 1)


def _oriented_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Load an opened file, orient it, make it RGB (no copy when it already is RGB)."""
    image.load()
    ImageOps.exif_transpose(image, in_place=True)  # no copy of 12 MP when nothing turns
    if image.mode == "RGB" and "transparency" not in image.info and hasattr(image, "_new"):
        # Opened here and ours alone, so to_rgb's copy (12 MP: 36 MB) is not needed: a plain
        # Image around the same pixels, without the file's name and format (Pillow never maps
        # an RGB file into memory, so they are not the file's own bytes).
        return image._new(image.im)
    return to_rgb(image, background)


def _decode(image: Image.Image, background: tuple[int, int, int], min_side: int | None) -> Image.Image:
    """Decode an opened file (at reduced size where allowed), orient it, make it RGB."""
    if min_side is not None:
        # JPEG: DCT-scaled decoding at 1/2, 1/4 or 1/8 size, keeping both sides >=
        # min_side (a square request, so it holds before and after EXIF rotation).
        # Other formats ignore draft and are box-reduced after decoding.
        image.draft("RGB", (min_side, min_side))
    return _shrink(_oriented_rgb(image, background), min_side)


def _decode_both(
    image: Image.Image, background: tuple[int, int, int], min_side: int
) -> tuple[Image.Image, Image.Image]:
    """Decode an opened file once: every pixel, and the picture :func:`_decode` would give for
    ``min_side``, box-reduced from those pixels by the factor DCT scaling would have used."""
    scale = _draft_scale(image, min_side)
    full = _oriented_rgb(image, background)
    return full, _shrink(full.reduce(scale) if scale > 1 else full, min_side)


def load_rgb(
    path: str | os.PathLike,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    min_side: int | None = None,
    max_aspect_ratio: float | None = None,
) -> Image.Image:
    """Open an image file as 8-bit RGB, oriented and with transparency composited.

    Args:
        path: the file to open.
        background: RGB colour that transparent areas are laid over (white, as a
            browser or image viewer on a white page shows them).
        max_pixels: refuse images larger than this many pixels (decompression bombs).
        min_side: decode at reduced size, keeping the short side at least this many
            pixels (the resize target of the network's preprocessing); ``None``
            decodes every pixel (what pixel hashes need).
        max_aspect_ratio: refuse images whose long side is more than this many times
            their short side (see :data:`MAX_ASPECT_RATIO`), or that would have more than
            :data:`MAX_RESIZED_PIXELS` once their short side is resized to ``min_side``;
            ``None`` accepts any.

    Returns:
        A decoded ``PIL.Image.Image`` in mode ``"RGB"``; the file is closed.

    Raises:
        ImageLoadError: the file is missing, a dangling link, empty, not an image,
            truncated, corrupt, too large, too elongated, or in a mode that has no
            RGB meaning; ``path`` and ``reason`` say which file and why.
        TypeError, ValueError: an argument that makes no sense (``background="white"``).
    """
    p = Path(path)
    background = check_background(background)
    max_pixels = check_max_pixels(max_pixels)
    min_side = _check_min_side(min_side)
    max_aspect_ratio = _check_aspect_ratio(max_aspect_ratio)
    _check_file(p)
    return _open_checked(p, p, p, background, max_pixels, min_side, max_aspect_ratio)


def load_rgb_and_reduced(
    path: str | os.PathLike,
    min_side: int,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    max_aspect_ratio: float | None = None,
) -> tuple[Image.Image, Image.Image]:
    """Decode a file once into two pictures: every pixel, and a reduced one for a network.

    ``full`` is what ``load_rgb(path)`` returns (what a pixel hash needs). ``reduced`` is the
    picture ``load_rgb(path, min_side=min_side)`` gives, made from the same pixels: box-reduced
    by the factor JPEG's DCT scaling would have decoded at (1/2, 1/4 or 1/8 of each side), then
    by the integer factor that keeps the short side at least ``min_side``. It has the same size
    as that picture, and the same pixels wherever no DCT scaling applies (formats other than JPEG,
    JPEGs whose short side is under ``2 * min_side``); for larger JPEGs it averages each block
    after colour conversion instead of before, a difference of a few levels per pixel.
    Reducing 12 megapixels costs about what decoding them reduced does, so both pictures cost
    one full decode (``benchmarks/bench_curate.py`` measures it).

    The arguments, the checks made before any pixel is decoded (size, ``max_aspect_ratio``
    with ``min_side``) and the errors are those of :func:`load_rgb`.

    Returns:
        ``(full, reduced)``, both ``"RGB"``; the file is closed.
    """
    p = Path(path)
    background = check_background(background)
    max_pixels = check_max_pixels(max_pixels)
    min_side = _check_min_side(min_side)
    if min_side is None:
        raise ValueError("min_side must be a positive integer number of pixels; got None")
    max_aspect_ratio = _check_aspect_ratio(max_aspect_ratio)
    _check_file(p)
    return _open_checked(p, p, p, background, max_pixels, min_side, max_aspect_ratio, _decode_both)


def as_rgb(
    item: str | os.PathLike | Image.Image,
    background: tuple[int, int, int] = (255, 255, 255),
    *,
    min_side: int | None = None,
    max_aspect_ratio: float | None = None,
) -> Image.Image:
    """An RGB picture from a file path (:func:`load_rgb`) or an opened image (:func:`to_rgb`).

    ``min_side`` and ``max_aspect_ratio`` work as in :func:`load_rgb`, for opened
    images too (an opened image is reduced after conversion).

    Raises:
        ImageLoadError: a path that cannot be opened as an image, or an image that
            has no pixels or is too elongated (named by its filename or ``"<image>"``).
        ValueError: an opened image in a mode with no RGB meaning.
        TypeError: anything else (for a NumPy array, use ``Image.fromarray`` first).
    """
    if isinstance(item, Image.Image):
        min_side = _check_min_side(min_side)
        problem = _size_problem(item.size, None, _check_aspect_ratio(max_aspect_ratio), min_side)
        if problem:
            raise ImageLoadError(getattr(item, "filename", "") or "<image>", problem)
        return _shrink(to_rgb(item, background), min_side)
    if isinstance(item, (str, os.PathLike)):
        return load_rgb(item, background, min_side=min_side, max_aspect_ratio=max_aspect_ratio)
    raise TypeError(
        f"expected a file path or a PIL.Image.Image, got {type(item).__name__}; "
        "for a NumPy array use PIL.Image.fromarray(array) first"
    )


def load_rgb_bytes(
    data: bytes,
    name: str = "<bytes>",
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    min_side: int | None = None,
    max_aspect_ratio: float | None = None,
) -> Image.Image:
    """:func:`load_rgb` for a file's bytes (read from object storage, say): same picture, same reasons.

    ``name`` (the file's path or URI) names the file in errors; the other arguments
    work as in :func:`load_rgb`.

    Raises:
        ImageLoadError: the bytes are empty, not an image, truncated, corrupt, too
            large or too elongated, with the reason :func:`load_rgb` gives for such a file.
    """
    background = check_background(background)
    max_pixels = check_max_pixels(max_pixels)
    min_side = _check_min_side(min_side)
    max_aspect_ratio = _check_aspect_ratio(max_aspect_ratio)
    if not data:
        raise ImageLoadError(name, "empty file (0 bytes)")
    data = bytes(data)
    return _open_checked(io.BytesIO(data), name, data, background, max_pixels, min_side, max_aspect_ratio)


def _open_checked(
    source, name, raw: Path | bytes, background, max_pixels: int, min_side, max_aspect_ratio, decode=None
):
    """Open ``source`` (a path or a byte stream), refuse it by size before decoding, decode it as RGB
    (with ``decode(image, background, min_side)``, by default :func:`_decode`); whatever goes wrong
    becomes an :class:`ImageLoadError` for ``name`` with a reason read from ``raw`` (the file, or its
    bytes)."""
    decode = decode or _decode
    _allow_in_pillow(max_pixels)
    fmt = None
    try:
        with warnings.catch_warnings():
            # Pillow warns above its limit; the size check below decides, with the file's name.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                fmt = image.format
                problem = _size_problem(image.size, max_pixels, max_aspect_ratio, min_side)
                if problem:
                    raise ImageLoadError(name, problem)
                return decode(image, background, min_side)
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a decoder raises becomes a reason
        raise ImageLoadError(name, _reason_from(exc, raw, fmt)) from None


# --------------------------------------------------------------------------- folders


@dataclass
class ScanResult:
    """What :func:`scan_images` found: loadable files, and the others with a reason each."""

    good: list[Path] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)

    def __iter__(self):  # allows ``good, bad = scan_images(...)``
        return iter((self.good, self.bad))


def expand_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The files ``paths`` names: a folder's image files, one file, or each item of an iterable.

    A folder is listed by :func:`~embedkit.folders.scan_folder` (sorted, hidden ones
    skipped, each file once whatever links reach it); the files it could not use (dangling
    links, link loops, pipes and devices) are listed too, so that loading them reports why.

    Raises:
        TypeError: ``paths`` is None or not iterable, or an item is not a path.
        embedkit.folders.FolderError: a folder that cannot be read.
    """
    if isinstance(paths, (str, os.PathLike)):
        root = Path(paths)
        if root.is_dir():
            scan = scan_folder(root)
            return sorted(scan.files + [p for p, _ in scan.problems if p.suffix.lower() in IMAGE_SUFFIXES])
        return [root]
    if isinstance(paths, (bytes, Image.Image)) or not isinstance(paths, Iterable):
        raise TypeError(f"expected a folder, a file path or a list of file paths; got {type(paths).__name__}")
    files = []
    for index, item in enumerate(paths):
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"item {index} is {item!r} ({type(item).__name__}), not a file path")
        files.append(Path(item))
    return files


def scan_images(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ScanResult:
    """Check which files open as images, decoding each one completely.

    Args:
        paths: a folder (every file with an image ending below it, hidden
            folders skipped, listed by :func:`~embedkit.folders.scan_folder`: each file
            once, folder links followed once, loops not followed) or an iterable of file
            paths (each one is checked, whatever its ending).

    Returns:
        ``ScanResult(good, bad)``: ``good`` the loadable paths in input order,
        ``bad`` a ``(path, reason)`` pair for each other file, dangling links and
        link loops included (sorted by path for a folder, in input order for a list).
        Never raises for a bad file.

    Raises:
        TypeError, ValueError: ``paths`` is not a path or a list of paths, or an
            argument makes no sense.
        embedkit.folders.FolderError: ``paths`` is a folder that cannot be read.
    """
    background = check_background(background)
    max_pixels = check_max_pixels(max_pixels)
    result = ScanResult()
    folder = isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir()
    if folder:
        scan = scan_folder(paths)  # what cannot be listed (links, pipes, closed folders) says why
        result.bad.extend(scan.problems)
        paths = scan.files
    for path in expand_paths(paths):
        try:
            load_rgb(path, background=background, max_pixels=max_pixels)
        except ImageLoadError as exc:
            result.bad.append((path, exc.reason))
        else:
            result.good.append(path)
    if folder:
        result.bad.sort(key=lambda bad: bad[0])
    return result
