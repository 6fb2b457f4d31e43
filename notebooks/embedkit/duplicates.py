"""Find duplicate images by hashing, group them, and keep them on one side of a split.

Three hashes, from strict to forgiving:

- :func:`file_sha256`: the file's bytes. Catches byte-identical copies only.
- :func:`pixel_hash`: the decoded pixels (the CleanVision approach). Also catches a
  PNG saved again with other settings, or a copy with its metadata stripped.
- :func:`dhash`: a 64-bit perceptual "difference hash". Resized, re-compressed or
  brightened copies land a few bits apart; compare with :func:`hamming_distance`
  or, for all pairs at once, :func:`hamming_matrix`.

Duplicates found by any method become pairs of item indices; :func:`connected_groups`
turns pairs into groups, :func:`leak_report` lists test items whose duplicate sits in
train, and :func:`group_aware_split` moves whole groups to one side.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .images import as_rgb

__all__ = [
    "file_sha256",
    "pixel_hash",
    "dhash",
    "hamming_distance",
    "hamming_matrix",
    "exact_duplicate_groups",
    "pairs_from_groups",
    "connected_groups",
    "leak_report",
    "group_aware_split",
]

PathOrImage = str | os.PathLike | Image.Image

_BLOCK_SIZE = 1 << 20  # bytes read at a time by file_sha256


# --------------------------------------------------------------------------- hashes


def file_sha256(path: str | os.PathLike, block_size: int = _BLOCK_SIZE) -> str:
    """SHA-256 of a file's bytes as 64 hex digits, read in blocks (any file size).

    Equal for byte-identical copies only: re-saving an image, even losslessly,
    changes it. Raises ``FileNotFoundError`` / ``IsADirectoryError`` as ``open`` does.
    """
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
_BYTE_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(
    axis=1, dtype=np.uint8
)


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


def _as_pairs(pairs: Any, n: int | None = None, name: str = "pairs") -> np.ndarray:
    """Validate pairs as an ``(m, 2)`` int64 array (``[]`` or a set allowed), indices in ``[0, n)``."""
    if isinstance(pairs, (set, frozenset)):
        pairs = sorted(pairs)
    arr = np.asarray(pairs)
    if arr.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (m, 2), one (i, j) pair per row; got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer item indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    outside = (arr < 0).any(axis=1)
    if n is not None:
        outside |= (arr >= n).any(axis=1)
    if outside.any():
        bad = tuple(int(v) for v in arr[np.argmax(outside)])
        limit = f"the item range [0, {n})" if n is not None else "the non-negative range"
        raise ValueError(f"pair {bad} in {name} has an index outside {limit}")
    return arr


def pairs_from_groups(groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Every pair of items inside each group, as ``(m, 2)`` int64 rows ``(i, j)`` with ``i < j``.

    Rows are sorted (by ``i``, then ``j``) and unique, even if groups overlap.
    ``[[0, 2, 5]]`` gives ``[[0, 2], [0, 5], [2, 5]]``.
    """
    chunks = []
    for group in groups:
        members = np.asarray(group)
        if members.ndim != 1 or not (members.size == 0 or np.issubdtype(members.dtype, np.integer)):
            raise TypeError(
                f"each group must be a list of item indices (as exact_duplicate_groups returns), "
                f"got {group!r}; for one group label per item use connected labels with "
                "embedkit.evaluation.true_pairs_from_groups"
            )
        members = np.unique(members.astype(np.int64))
        if members.size and members[0] < 0:
            raise ValueError(f"group {list(group)} holds a negative index")
        i, j = np.triu_indices(members.size, k=1)
        chunks.append(np.stack([members[i], members[j]], axis=1))
    if not chunks:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(chunks).reshape(-1, 2)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def connected_groups(n: int, pairs: Any) -> np.ndarray:
    """Group label per item: items joined by a chain of pairs share a label.

    Args:
        n: number of items.
        pairs: ``(m, 2)`` item indices in ``[0, n)``, in any order (``[]`` for none).

    Returns:
        ``(n,)`` int64 labels numbered by first appearance: item 0 has label 0, the
        next item not in its group has label 1, and so on. An item in no pair is a
        group of its own.
    """
    p = _as_pairs(pairs, n)
    graph = coo_matrix((np.ones(len(p), dtype=np.int8), (p[:, 0], p[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


# --------------------------------------------------------------------------- splits


def leak_report(
    paths: Sequence[str | os.PathLike],
    splits: Sequence[str],
    pairs: Any,
    *,
    train: str = "train",
    test: str = "test",
) -> pd.DataFrame:
    """Test items that have a duplicate in train: the leaks that inflate test scores.

    Args:
        paths: every item's path (``n`` of them).
        splits: every item's split; items labelled neither ``train`` nor ``test``
            (e.g. "val") are ignored.
        pairs: ``(m, 2)`` duplicate pairs as indices into ``paths``, in any order.
            Only direct pairs count; for a chain a–b–c pass
            ``pairs_from_groups`` of the groups so that a–c is a pair too.
        train, test: the labels used in ``splits``.

    Returns:
        One row per leaking test item, sorted by ``test_path``, with columns
        ``test_path`` (str), ``train_matches`` (sorted list of str paths of its train
        duplicates) and ``n_matches``. No leaks gives an empty frame with the same
        columns.
    """
    path_arr = np.array([str(p) for p in paths], dtype=object)
    split_arr = np.asarray(splits, dtype=object)
    if len(split_arr) != len(path_arr):
        raise ValueError(
            f"paths has {len(path_arr)} items but splits has {len(split_arr)}; pass one split per path"
        )
    if len(split_arr) and not ((split_arr == train).any() or (split_arr == test).any()):
        found = sorted({str(s) for s in split_arr})[:5]
        raise ValueError(
            f"no item is labelled {train!r} or {test!r} (found {found}); "
            "pass train= and test= with the labels your splits use"
        )
    p = _as_pairs(pairs, len(path_arr))
    a, b = p[:, 0], p[:, 1]
    a_test = (split_arr[a] == test) & (split_arr[b] == train)
    b_test = (split_arr[b] == test) & (split_arr[a] == train)
    test_idx = np.concatenate([a[a_test], b[b_test]])
    train_idx = np.concatenate([b[a_test], a[b_test]])
    leaks = pd.DataFrame(
        {"test": test_idx, "test_path": path_arr[test_idx], "train_path": path_arr[train_idx]}
    )
    leaks = leaks.drop_duplicates(["test", "train_path"]).sort_values(["test_path", "test", "train_path"])
    report = (
        leaks.groupby(["test_path", "test"], sort=False)["train_path"]
        .agg(list)
        .rename("train_matches")
        .reset_index()
    )
    report["n_matches"] = report["train_matches"].map(len).astype(np.int64)
    return report[["test_path", "train_matches", "n_matches"]].reset_index(drop=True)


def _group_codes(groups: Any) -> np.ndarray:
    """Integer code per item; a missing label (None/NaN) makes an item its own group."""
    codes, uniques = pd.factorize(pd.Series(list(groups), dtype=object))
    missing = codes < 0
    codes[missing] = len(uniques) + np.arange(missing.sum())
    return codes.astype(np.int64)


def group_aware_split(groups: Any, splits: Sequence[str], *, train: str = "train") -> np.ndarray:
    """Re-split items so that every duplicate group sits wholly on one side.

    Each group goes to the split most of its members already have (ties go to
    ``train``, then to the split seen first); items outside any group stay where
    they are. This is the minimal-move fix: for each group it moves the fewest
    items, so a curated split stays as close as possible to the original (the
    train/test proportions can shift a little). For a fresh random split that
    respects groups, use ``sklearn.model_selection.GroupShuffleSplit`` with
    ``groups=`` instead.

    Args:
        groups: ``(n,)`` group label per item, e.g. from :func:`connected_groups`;
            ``None``/``NaN`` means "no group".
        splits: ``(n,)`` current split per item ("train", "test", ...).

    Returns:
        ``(n,)`` array of str, the new split per item.
    """
    split_arr = np.asarray(splits, dtype=object)
    codes = _group_codes(groups)
    if len(codes) != len(split_arr):
        raise ValueError(
            f"groups has {len(codes)} items but splits has {len(split_arr)}; pass one of each per item"
        )
    if len(codes) == 0:
        return np.array([], dtype=str)
    split_codes, labels = pd.factorize(pd.Series(split_arr))
    if (split_codes < 0).any():
        raise ValueError(f"splits has a missing value at index {int(np.argmax(split_codes < 0))}")
    # Column order decides ties: train first, then the other splits in order of appearance.
    preference = sorted(range(len(labels)), key=lambda c: (labels[c] != train, c))
    position = np.empty(len(labels), dtype=np.int64)
    position[preference] = np.arange(len(labels))
    counts = np.zeros((codes.max() + 1, len(labels)), dtype=np.int64)
    np.add.at(counts, (codes, position[split_codes]), 1)
    winner = np.asarray(preference)[counts.argmax(axis=1)]
    return np.asarray(labels, dtype=object)[winner[codes]].astype(str)
