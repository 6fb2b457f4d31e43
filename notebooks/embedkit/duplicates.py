"""Find duplicate images by hashing, group them, and keep them on one side of a split.

Three hashes, from strict to forgiving:

- :func:`file_sha256`: the file's bytes. Catches byte-identical copies only.
- :func:`pixel_hash`: the decoded pixels (the CleanVision approach). Also catches a
  PNG saved again with other settings, or a copy with its metadata stripped.
- :func:`dhash`: a 64-bit perceptual "difference hash". Resized, re-compressed or
  brightened copies land a few bits apart; compare with :func:`hamming_distance`
  or, for all pairs at once, :func:`hamming_matrix`.

:func:`exact_duplicate_groups` groups items with equal hashes. Turning pairs into
groups is :mod:`embedkit.pairs`' job; finding leaks and repairing a split is
:mod:`embedkit.splits`'.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from .images import as_rgb

__all__ = [
    "file_sha256",
    "pixel_hash",
    "dhash",
    "hamming_distance",
    "hamming_matrix",
    "exact_duplicate_groups",
]

PathOrImage = str | os.PathLike | Image.Image

_BLOCK_SIZE = 1 << 20  # bytes read at a time by file_sha256


# --------------------------------------------------------------------------- hashes


def file_sha256(path: str | os.PathLike, block_size: int = _BLOCK_SIZE) -> str:
    """SHA-256 of a file's bytes as 64 hex digits, read in blocks (any file size).

    Equal for byte-identical copies only: re-saving an image, even losslessly,
    changes it. Raises ``FileNotFoundError`` / ``IsADirectoryError`` as ``open`` does,
    and ``ValueError`` for a ``block_size`` below 1 (it would read nothing).
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive number of bytes; got {block_size!r}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def pixel_hash(image: PathOrImage) -> str:
    """SHA-256 (hex) of an image's decoded RGB pixels and its size.

    The image is read with :func:`embedkit.images.as_rgb` (EXIF rotation applied,
    transparency laid over white, any mode converted to 8-bit RGB). Width and height are
    hashed with the pixels, so a 2×8 and an 8×2 image holding the same bytes differ.

    Equal for copies that differ only in how the pixels are stored: a PNG saved
    again at another compression level, a TIFF of the same picture, a copy with
    metadata removed. A lossy re-save (JPEG) changes pixels: use :func:`dhash` or
    embeddings for those.

    Raises:
        embedkit.images.ImageLoadError: a path that cannot be opened as an image.
    """
    rgb = as_rgb(image)
    width, height = rgb.size
    digest = hashlib.sha256(f"RGB {width}x{height}\n".encode("ascii"))
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def dhash(image: PathOrImage, hash_size: int = 8) -> int:
    """Difference hash: a perceptual hash of ``hash_size²`` bits (64 by default).

    Exactly these steps (a lesson writes them out by hand and must get the same int):

    1. ``gray = as_rgb(image).convert("L")``: ``load_rgb(path)`` for a path,
       ``to_rgb(image)`` for a PIL image (for an RGB or L image that is the same as
       calling ``image.convert("L")`` directly).
    2. ``small = gray.resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS)``:
       ``hash_size + 1`` columns wide, ``hash_size`` rows high.
    3. ``px = np.asarray(small)``, shape ``(hash_size, hash_size + 1)``;
       ``bits = px[:, :-1] > px[:, 1:]``: a bit is 1 where a pixel is brighter than
       its right-hand neighbour.
    4. Read ``bits`` row by row, left to right (``bits.flatten()``), as one binary
       number whose first bit is the most significant:
       ``int("".join("1" if b else "0" for b in bits.flatten()), 2)``.

    Copies that are resized, re-compressed or slightly brightened stay within a few
    bits (:func:`hamming_distance`); a mirrored image does not, since the hash
    follows left-to-right gradients.

    Returns:
        A non-negative Python int below ``2 ** (hash_size ** 2)``.
    """
    if isinstance(hash_size, bool) or not isinstance(hash_size, (int, np.integer)) or hash_size < 2:
        raise ValueError(f"hash_size must be an integer >= 2, got {hash_size!r}")
    hash_size = int(hash_size)
    gray = as_rgb(image).convert("L")
    small = gray.resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS)
    px = np.asarray(small)
    bits = (px[:, :-1] > px[:, 1:]).ravel()
    padding = (-bits.size) % 8  # packbits fills the last byte with zeros on the right
    return int.from_bytes(np.packbits(bits).tobytes(), "big") >> padding


# --------------------------------------------------------------------------- Hamming distance


def _check_hash(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int (as dhash returns), got {type(value).__name__}")
    value = int(value)
    if value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value}")
    return value


def hamming_distance(a: int, b: int) -> int:
    """Number of bit positions in which two hashes differ (any length of hash)."""
    return (_check_hash(a, "a") ^ _check_hash(b, "b")).bit_count()


# Number of set bits in every byte value, for NumPy versions without bitwise_count.
_BYTE_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1, dtype=np.uint8)


def _popcount_table(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 in ``x`` via a byte lookup table (works on NumPy < 2.0)."""
    per_byte = _BYTE_POPCOUNT[np.ascontiguousarray(x, dtype=np.uint64).view(np.uint8)]
    return per_byte.reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return np.bitwise_count(x)
    return _popcount_table(x)


def hamming_matrix(hashes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Hamming distance between every pair of hashes of at most 64 bits.

    Args:
        hashes: ``n`` non-negative ints below ``2**64`` (``dhash`` with
            ``hash_size <= 8``), as a sequence or an integer array.

    Returns:
        ``(n, n)`` int64 matrix ``D`` with ``D[i, j] = hamming_distance(hashes[i],
        hashes[j])``; symmetric, zero diagonal. It takes ``8·n²`` bytes.
    """
    if isinstance(hashes, np.ndarray) and np.issubdtype(hashes.dtype, np.integer):
        values = hashes.ravel()
        if values.size and values.min() < 0:
            bad = int(np.flatnonzero(values < 0)[0])
            raise ValueError(f"hash {bad} is negative ({values[bad]}); hashes must be >= 0")
        h = values.astype(np.uint64)
    else:
        values = [_check_hash(v, f"hash {i}") for i, v in enumerate(hashes)]
        too_big = [i for i, v in enumerate(values) if v >> 64]
        if too_big:
            raise ValueError(
                f"hash {too_big[0]} has {values[too_big[0]].bit_length()} bits; hamming_matrix "
                "handles hashes of up to 64 bits (dhash with hash_size <= 8). Use "
                "hamming_distance for longer hashes."
            )
        h = np.array(values, dtype=np.uint64).reshape(-1)
    n = h.size
    out = np.empty((n, n), dtype=np.int64)
    step = max(1, (16 * 2**20) // max(1, 8 * n))  # bound the uint64 XOR block to ~16 MB
    for start in range(0, n, step):
        out[start : start + step] = _popcount(h[start : start + step, None] ^ h[None, :])
    return out


# --------------------------------------------------------------------------- groups


def exact_duplicate_groups(keys: Sequence[Hashable]) -> list[list[int]]:
    """Indices of items with equal keys (file or pixel hashes), one list per key.

    Returns:
        Only groups with at least two items; indices ascending within a group;
        groups ordered by their first index. ``["a", "b", "a", "c", "b"]`` gives
        ``[[0, 2], [1, 4]]``.
    """
    by_key: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        by_key.setdefault(key, []).append(index)
    return [group for group in by_key.values() if len(group) > 1]
