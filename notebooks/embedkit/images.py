"""Open any image file a learner will meet as an 8-bit RGB picture.

Real folders hold more than tidy RGB JPEGs: phone photos stored sideways with an
EXIF orientation tag, PNG cut-outs with a transparent background, palette GIFs,
grayscale scans, 16-bit medical images, CMYK files from print, and files that
are empty, truncated or not images at all. ``load_rgb`` turns every readable one
into what a person sees on screen, and raises :class:`ImageLoadError` naming the
file and the reason for the rest. ``scan_images`` sorts a whole folder into
loadable files and ``(path, reason)`` pairs, without ever raising for a bad file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "DEFAULT_MAX_PIXELS",
    "ImageLoadError",
    "ScanResult",
    "as_rgb",
    "load_rgb",
    "scan_images",
    "to_rgb",
]

#: File endings ``scan_images`` picks up when it is given a folder.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)

#: Largest image accepted, in pixels (about 89 megapixels, Pillow's own default).
#: Anything bigger is treated as a possible decompression bomb: a tiny file that
#: would expand to gigabytes of memory.
DEFAULT_MAX_PIXELS = 89_478_485

_FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "TIFF": "TIFF", "WEBP": "WebP"}


class ImageLoadError(Exception):
    """A file that cannot be opened as an image; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the two fields when pickled (thread/process pools)
        return (type(self), (self.path, self.reason))


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
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        lo, hi = float(values.min()), float(values.max())
        if image.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scaled = values * 255.0
        elif image.mode == "I" and lo >= 0 and hi <= 255:
            scaled = values
        elif image.mode == "I" and lo >= 0 and hi <= 65535:
            scaled = values / 257.0
        elif hi > lo:
            scaled = (values - lo) * (255.0 / (hi - lo))
        else:
            scaled = np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert an already opened image to 8-bit RGB the way a viewer would show it.

    Transparency (RGBA, LA, PA, premultiplied modes, palette or RGB/L images with a
    transparent colour) is composited over ``background`` rather than dropped: a
    plain ``.convert("RGB")`` keeps whatever colour happens to be stored under
    transparent pixels, often black. EXIF orientation is *not* applied here; it
    needs the file's metadata, which :func:`load_rgb` reads.
    """
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


_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"II*\x00": "TIFF",
          b"MM\x00*": "TIFF", b"BM": "BMP"}


def _sniff_format(path: Path) -> str | None:
    """The format a file's first bytes announce, for messages about files Pillow gave up on."""
    with open(path, "rb") as f:
        head = f.read(8)
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def _reason_from(exc: BaseException, path: Path, fmt: str | None) -> str:
    fmt = fmt or _sniff_format(path)
    kind = _FORMAT_NAMES.get(fmt or "", fmt or "image")
    text = str(exc)
    if "truncated" in text.lower() or "premature end" in text.lower():
        return f"truncated {kind} file (the file ends before the image data does)"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    return f"corrupt {kind} data ({type(exc).__name__}: {text})"


def load_rgb(
    path: str | os.PathLike,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Open an image file as 8-bit RGB, oriented and with transparency composited.

    Args:
        path: the file to open.
        background: RGB colour that transparent areas are laid over (white, as a
            browser or image viewer on a white page shows them).
        max_pixels: refuse images larger than this many pixels (decompression bombs).

    Returns:
        A fully decoded ``PIL.Image.Image`` in mode ``"RGB"``; the file is closed.

    Raises:
        ImageLoadError: the file is missing, empty, not an image, truncated,
            corrupt, too large, or in a mode that has no RGB meaning. The
            exception's ``path`` and ``reason`` say which file and why.
    """
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(p, "file not found")
    if p.is_dir():
        raise ImageLoadError(p, "is a folder, not an image file")
    if p.stat().st_size == 0:
        raise ImageLoadError(p, "empty file (0 bytes)")

    fmt = None
    try:
        with warnings.catch_warnings():
            # Pillow warns (and only above twice its limit raises) for very large
            # images; here the size check below decides, with the file's name.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as image:
                fmt = image.format
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        p,
                        f"image too large: {width}x{height} = {width * height:,} pixels exceeds "
                        f"the limit of {max_pixels:,} (possible decompression bomb; raise "
                        "max_pixels if the file is trusted)",
                    )
                image.load()
                image = ImageOps.exif_transpose(image)
                return to_rgb(image, background)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        announced = _sniff_format(p)
        if announced:
            reason = f"corrupt {announced} file (it starts like one, but its header is damaged)"
        else:
            reason = "not an image file (Pillow recognises no image format in it)"
        raise ImageLoadError(p, reason) from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(p, f"image too large: {exc}") from None
    except ValueError as exc:
        if "unsupported image mode" in str(exc):
            raise ImageLoadError(p, str(exc)) from None
        raise ImageLoadError(p, _reason_from(exc, p, fmt)) from None
    except (OSError, SyntaxError, EOFError, MemoryError, IndexError, TypeError) as exc:
        raise ImageLoadError(p, _reason_from(exc, p, fmt)) from None


def as_rgb(
    item: str | os.PathLike | Image.Image,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """An RGB picture from a file path (:func:`load_rgb`) or an opened image (:func:`to_rgb`).

    Raises:
        ImageLoadError: a path that cannot be opened as an image.
        ValueError: an opened image in a mode with no RGB meaning.
        TypeError: anything else (for a NumPy array, use ``Image.fromarray`` first).
    """
    if isinstance(item, Image.Image):
        return to_rgb(item, background)
    if isinstance(item, (str, os.PathLike)):
        return load_rgb(item, background)
    raise TypeError(
        f"expected a file path or a PIL.Image.Image, got {type(item).__name__}; "
        "for a NumPy array use PIL.Image.fromarray(array) first"
    )


@dataclass
class ScanResult:
    """What :func:`scan_images` found: loadable files, and the others with a reason each."""

    good: list[Path] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)

    def __iter__(self):  # allows ``good, bad = scan_images(...)``
        return iter((self.good, self.bad))

    def summary(self) -> str:
        lines = [f"{len(self.good)} loadable, {len(self.bad)} not"]
        lines += [f"  {path}: {reason}" for path, reason in self.bad]
        return "\n".join(lines)


def _expand(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        root = Path(paths)
        if root.is_dir():
            return sorted(
                f
                for f in root.rglob("*")
                if f.is_file()
                and f.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(root).parts)
            )
        return [root]
    return [Path(p) for p in paths]


def scan_images(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ScanResult:
    """Check which files open as images, decoding each one completely.

    Args:
        paths: a folder (every file with an image ending below it, hidden
            folders skipped) or an iterable of file paths (each one is checked,
            whatever its ending).

    Returns:
        ``ScanResult(good, bad)``: ``good`` the loadable paths in input order,
        ``bad`` a ``(path, reason)`` pair for each other file. Never raises for
        a bad file.
    """
    result = ScanResult()
    for path in _expand(paths):
        try:
            load_rgb(path, background=background, max_pixels=max_pixels)
        except ImageLoadError as exc:
            result.bad.append((path, exc.reason))
        else:
            result.good.append(path)
    return result
