"""Cosine similarity between embeddings: one pair, all pairs, top-k and near-duplicates.

Cosine similarity compares directions and ignores lengths:
``cos(a, b) = a·b / (|a| |b|)``, a number in ``[-1, 1]``; 1 means "same direction".

- :func:`cosine_similarity` scores two vectors, in float64.
- :func:`pairwise_cosine` returns the whole ``(n, m)`` matrix; fine for thousands
  of vectors, but it needs ``4·n·m`` bytes.
- :func:`top_k` and :func:`near_duplicate_pairs` never build the whole matrix: they
  normalise once, then score ``chunk_size`` rows of ``A`` at a time against all of
  ``B``, so extra memory is ``O(chunk_size · m)`` however large ``n`` grows.

Inputs may be lists, NumPy arrays of any integer or float dtype, or PyTorch tensors
(on any device, with or without gradients). Zero vectors, NaN or infinity, empty
input and mismatched dimensions raise ``ValueError`` naming the offending row.

Matrix scores are float32 dot products of unit vectors: they agree with a float64
computation to about ``1e-6``, and are clipped into ``[-1, 1]``. Because BLAS uses
different kernels for differently shaped blocks, a score may differ in its last bit
between chunk sizes, so a pair whose cosine lies within ``~1e-6`` of ``threshold``
can fall on either side of it; and two identical rows score ``1.0`` only to within
that rounding (use ``threshold=0.9999``, not ``1.0``, to catch exact copies).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "default_chunk_size",
    "cosine_similarity",
    "pairwise_cosine",
    "top_k",
    "near_duplicate_pairs",
]

#: Size of one block of scores (``chunk_size × m`` float32 values) that
#: :func:`top_k` and :func:`near_duplicate_pairs` aim for when ``chunk_size`` is
#: not given. Peak extra memory is a small multiple of it (the selection steps
#: make temporary copies of the block), plus the normalised copies of ``A`` and ``B``.
DEFAULT_CHUNK_BYTES = 64 * 2**20

# Rows of input converted to float64 at a time while normalising (bounds the
# temporary float64 copy to about 64 MB whatever the input size).
_NORMALISE_BYTES = 64 * 2**20


def default_chunk_size(n_columns: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per chunk so that one ``(rows, n_columns)`` float32 block is about ``chunk_bytes``."""
    return max(1, int(chunk_bytes) // (4 * max(1, int(n_columns))))


# --------------------------------------------------------------------------- input checks


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Turn a list, array or torch tensor into a real-valued NumPy array (no copy if possible)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch.Tensor, without importing torch
        x = x.detach().cpu()
        try:
            x = x.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy does not have
            x = x.float().numpy()
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(
            f"{name} cannot be read as an array ({exc}); every vector must have the same length"
        ) from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(
            f"{name} must hold real numbers (an integer or float dtype), got dtype {arr.dtype}"
        )
    return arr


def _describe_rows(rows: np.ndarray, name: str) -> tuple[str, bool]:
    """('row 3 of A', False) or ('rows 3, 8, 11, 12, 20 and 7 more of A (12 rows)', True)."""
    shown = ", ".join(str(int(r)) for r in rows[:5])
    if len(rows) == 1:
        return f"row {shown} of {name}", False
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"rows {shown}{more} of {name} ({len(rows)} rows)", True


def _zero_vector_error(where: str, plural: bool = False) -> ValueError:
    return ValueError(
        f"cosine similarity is undefined for a zero vector: {where} "
        f"{'are' if plural else 'is'} all zeros. Remove {'them' if plural else 'it'} before "
        "comparing (an all-zero embedding usually means a blank image or a failed "
        "embedding step)."
    )


def _non_finite_error(where: str, plural: bool = False) -> ValueError:
    return ValueError(
        f"{where} {'contain' if plural else 'contains'} NaN or infinity; remove or recompute "
        f"{'them' if plural else 'it'} (check the step that produced "
        f"{'them' if plural else 'it'}, e.g. an image that failed to embed)."
    )


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = _to_numpy(x, name)
    if arr.size == 0:
        raise ValueError(
            f"{name} is empty (shape {arr.shape}); pass at least one vector with at least one value"
        )
    if arr.ndim != 2:
        hint = (
            "; for a single vector use x[None, :] or x.reshape(1, -1), or call "
            "cosine_similarity(a, b)"
            if arr.ndim == 1
            else ""
        )
        raise ValueError(
            f"{name} must be a 2-D array of shape (n, d), one vector per row, "
            f"got a {arr.ndim}-D array of shape {arr.shape}{hint}"
        )
    return arr


def _unit_rows(X: np.ndarray, name: str, transposed: bool = False) -> np.ndarray:
    """Rows of ``X`` scaled to length 1, as float32; lengths are computed in float64.

    Returns ``(n, d)``, or with ``transposed=True`` the C-contiguous ``(d, n)``
    transpose, the layout BLAS multiplies fastest by a few rows at a time.

    Works through ``X`` in blocks so the float64 temporaries stay bounded. Each row
    is first divided by its largest absolute value, so neither huge nor tiny values
    overflow or underflow when squared.
    """
    n, d = X.shape
    out = np.empty((d, n) if transposed else (n, d), dtype=np.float32)
    step = max(1, _NORMALISE_BYTES // (8 * d))
    bad_finite: list[np.ndarray] = []
    zero: list[np.ndarray] = []
    for start in range(0, n, step):
        block = X[start : start + step].astype(np.float64)
        if np.issubdtype(X.dtype, np.floating):
            finite = np.isfinite(block).all(axis=1)
            if not finite.all():
                bad_finite.append(start + np.flatnonzero(~finite))
                block[~finite] = 1.0  # placeholder, the error is raised below
        peak = np.abs(block).max(axis=1)
        is_zero = peak == 0
        if is_zero.any():
            zero.append(start + np.flatnonzero(is_zero))
            peak[is_zero] = 1.0
        block /= peak[:, None]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        norms[is_zero] = 1.0
        block /= norms[:, None]
        if transposed:
            out[:, start : start + step] = block.T
        else:
            out[start : start + step] = block
    if bad_finite:
        raise _non_finite_error(*_describe_rows(np.concatenate(bad_finite), name))
    if zero:
        raise _zero_vector_error(*_describe_rows(np.concatenate(zero), name))
    return out


def _prepare(A: Any, B: Any | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate and normalise ``A`` (and ``B``); ``None`` for ``B`` means "A against itself"."""
    A_arr, B_arr = _check_pair(A, B)
    if B_arr is None:
        return _unit_rows(A_arr, "A"), None
    return _unit_rows(A_arr, "A"), _unit_rows(B_arr, "B")


def _prepare_search(A: Any, B: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows of ``A``, ``(n, d)``, and of the searched set as a ``(d, m)`` matrix.

    With ``B=None`` both are views of one array, so ``A`` is held in memory once.
    """
    A_arr, B_arr = _check_pair(A, B)
    if B_arr is None:
        searched = _unit_rows(A_arr, "A", transposed=True)
        return searched.T, searched
    return _unit_rows(A_arr, "A"), _unit_rows(B_arr, "B", transposed=True)


def _check_pair(A: Any, B: Any | None) -> tuple[np.ndarray, np.ndarray | None]:
    A_arr = _as_matrix(A, "A")
    if B is None:
        return A_arr, None
    B_arr = _as_matrix(B, "B")
    if A_arr.shape[1] != B_arr.shape[1]:
        raise ValueError(
            f"A has {A_arr.shape[1]} values per row but B has {B_arr.shape[1]}; both must "
            "be embeddings from the same model (same dimension d)"
        )
    return A_arr, B_arr


def _check_chunk_size(chunk_size: int | None, n_columns: int) -> int:
    if chunk_size is None:
        return default_chunk_size(n_columns)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
    return int(chunk_size)


# --------------------------------------------------------------------------- public API


def cosine_similarity(a: Any, b: Any) -> float:
    """Cosine similarity of two vectors, computed in float64.

    Args:
        a, b: vectors of the same length ``d`` (lists, ``(d,)`` arrays of any real
            dtype, or 1-D torch tensors).

    Returns:
        A Python float in ``[-1, 1]``. Identical vectors (and any two vectors that
        differ by a positive power-of-two factor) give exactly ``1.0``; the sums are
        correctly rounded (``math.fsum``), so the result does not depend on the BLAS
        library or on memory layout.

    Raises:
        ValueError: a zero vector, NaN or infinity, an empty vector, a vector that
            is not 1-D, or two vectors of different lengths.
    """
    vectors = []
    for name, x in (("a", a), ("b", b)):
        arr = _to_numpy(x, name)
        if arr.ndim != 1:
            raise ValueError(
                f"{name} must be a 1-D vector, got an array of shape {arr.shape}; "
                "use pairwise_cosine(A, B) to compare the rows of matrices"
            )
        if arr.size == 0:
            raise ValueError(f"{name} is empty; pass a vector with at least one value")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise _non_finite_error(f"vector {name}")
        peak = np.abs(arr).max()
        if peak == 0:
            raise _zero_vector_error(f"vector {name}")
        # Scale by a power of two (exact) so the squares can neither overflow nor underflow.
        vectors.append(np.ldexp(arr, -int(np.frexp(peak)[1])))
    a64, b64 = vectors
    if a64.shape != b64.shape:
        raise ValueError(
            f"a has length {a64.shape[0]} but b has length {b64.shape[0]}; both must be "
            "embeddings from the same model (same dimension)"
        )
    ab = math.fsum((a64 * b64).tolist())
    aa = math.fsum((a64 * a64).tolist())
    bb = math.fsum((b64 * b64).tolist())
    # For a == b: ab == aa == bb exactly and sqrt(aa * aa) == aa, so the result is 1.0.
    return float(min(1.0, max(-1.0, ab / math.sqrt(aa * bb))))


def pairwise_cosine(A: Any, B: Any | None = None) -> np.ndarray:
    """Cosine similarity of every row of ``A`` with every row of ``B``.

    Args:
        A: ``(n, d)`` vectors, one per row (array of any real dtype, list, or tensor).
        B: ``(m, d)`` vectors, or ``None`` to compare ``A`` with itself.

    Returns:
        ``(n, m)`` float32 matrix ``S`` with ``S[i, j] = cos(A[i], B[j])``, clipped
        into ``[-1, 1]``. With ``B=None`` it is ``(n, n)``, symmetric, and its
        diagonal is exactly ``1.0``. Needs ``4·n·m`` bytes: for large collections use
        :func:`top_k` or :func:`near_duplicate_pairs`, which work in chunks.

    Raises:
        ValueError: zero or non-finite rows (the message names them), empty input,
            inputs that are not 2-D, or ``A`` and ``B`` of different dimension ``d``.
    """
    An, Bn = _prepare(A, B)
    S = An @ (An if Bn is None else Bn).T
    np.clip(S, -1.0, 1.0, out=S)
    if Bn is None:
        np.fill_diagonal(S, 1.0)
    return S


def _clip_scores(x: np.ndarray) -> np.ndarray:
    """Scores clipped into [-1, 1], except -inf, which marks an excluded entry (a row itself)."""
    return np.where(np.isneginf(x), x, np.clip(x, -1.0, 1.0))


def _select_exact(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest entries, best first, equal scores by lower column index (NumPy)."""
    m = block.shape[1]
    kth = np.partition(block, m - k, axis=1)[:, m - k]
    keep = block >= kth[:, None]
    # Where several entries equal the k-th score, more than k are kept: of the tied
    # ones, keep the lowest column indices.
    tied = np.flatnonzero(keep.sum(axis=1) > k)
    if tied.size:
        sub, sub_kth = block[tied], kth[tied, None]
        above = sub > sub_kth
        equal = sub == sub_kth
        need = k - above.sum(axis=1)
        keep[tied] = above | (equal & (np.cumsum(equal, axis=1, dtype=np.int32) <= need[:, None]))
    idx = np.nonzero(keep)[1].reshape(len(block), k)
    return _ordered(idx, np.take_along_axis(block, idx, axis=1))


def _ordered(idx: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by score descending, then by index."""
    order = np.lexsort((idx, -scores), axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _select_top_k(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and scores of each row's ``k`` largest entries, best first, ties by index.

    ``torch.topk`` (multi-threaded, no pass over the block beyond its own) is several
    times faster than NumPy's partition on wide blocks. It breaks ties arbitrarily, so
    it is asked for ``k + 1`` entries: a row whose ``k``-th and ``(k + 1)``-th scores are
    equal has a tie across the cut and is redone exactly. Without torch, NumPy does all.
    """
    try:
        import torch
    except ImportError:
        return _select_exact(_clip_scores(block), k)
    wanted = min(k + 1, block.shape[1])
    values, indices = torch.topk(torch.from_numpy(block), wanted, dim=1, sorted=True)
    # Clipping only what was selected gives the same result as clipping the whole block.
    values, indices = _clip_scores(values.numpy()), indices.numpy()
    idx, scores = _ordered(indices[:, :k], values[:, :k])
    if wanted > k:
        tied = np.flatnonzero(values[:, k - 1] == values[:, k])
        if tied.size:
            idx[tied], scores[tied] = _select_exact(_clip_scores(block[tied]), k)
    return idx, scores


def top_k(
    A: Any, B: Any | None = None, k: int = 5, chunk_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar rows of ``B`` for every row of ``A``, best first.

    Args:
        A: ``(n, d)`` query vectors.
        B: ``(m, d)`` vectors to search, or ``None`` to search ``A`` itself; then a
            row never returns itself (but does return an identical copy of itself
            stored in another row).
        k: neighbours per query, ``1 <= k <= m`` (``k <= n - 1`` when ``B`` is
            ``None``). A larger ``k`` raises ``ValueError`` rather than silently
            returning fewer columns.
        chunk_size: rows of ``A`` scored at a time; default
            ``default_chunk_size(m)`` (a block of about ``DEFAULT_CHUNK_BYTES``).
            The result does not depend on it beyond float32 rounding.

    Returns:
        ``(indices, scores)``: ``(n, k)`` int64 row numbers into ``B`` (or ``A``) and
        their ``(n, k)`` float32 cosine similarities, sorted by score descending;
        equal scores are ordered by lower index.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    queries, searched = _prepare_search(A, B)
    n, m = queries.shape[0], searched.shape[1]
    available = m - 1 if B is None else m
    if k > available:
        where = (
            f"A has only {n} rows, so each row has {available} other rows"
            if B is None
            else f"B has only {m} rows"
        )
        raise ValueError(f"k={k} neighbours requested but {where}; pass k <= {available}")
    step = _check_chunk_size(chunk_size, m)
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = np.ascontiguousarray(queries[start:stop]) @ searched
        if B is None:  # a row is not its own neighbour
            block[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        indices[start:stop], scores[start:stop] = _select_top_k(block, k)
    return indices, scores


def near_duplicate_pairs(
    A: Any, B: Any | None = None, *, threshold: float, chunk_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows whose cosine similarity is at least ``threshold``.

    Args:
        A: ``(n, d)`` vectors.
        B: ``(m, d)`` vectors, or ``None`` to find pairs within ``A``: then only
            pairs ``i < j`` are returned (each pair once, never a row with itself).
        threshold: required, in ``[-1, 1]``. There is no default because a good value
            depends on the embedding model; pick it from scored examples.
            For exact copies use a value a little below 1 (e.g. ``0.9999``): float32
            rounding can put two identical rows at ``0.99999994``.
        chunk_size: rows of ``A`` scored at a time; default
            ``default_chunk_size(m)`` (a block of about ``DEFAULT_CHUNK_BYTES``).

    Returns:
        ``(pairs, scores)``: ``(p, 2)`` int64 ``(i, j)`` row numbers (``i`` in ``A``,
        ``j`` in ``B``, or both in ``A``) and their ``(p,)`` float32 similarities,
        sorted by score descending, then by ``i``, then by ``j``. Empty results have
        shapes ``(0, 2)`` and ``(0,)``. A low threshold can return up to ``n·m``
        pairs; the output, unlike the working memory, is not bounded.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number in [-1, 1], got {threshold!r}")
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(
            f"threshold must be in [-1, 1], the range of cosine similarity, got {threshold}"
        )
    queries, searched = _prepare_search(A, B)
    n = queries.shape[0]
    step = _check_chunk_size(chunk_size, searched.shape[1])
    limit = np.float32(threshold)
    found_i, found_j, found_s = [], [], []
    for start in range(0, n, step):
        stop = min(start + step, n)
        if B is None:  # only columns j >= start can satisfy j > i
            block = np.ascontiguousarray(queries[start:stop]) @ searched[:, start:]
            offset = start
        else:
            block = np.ascontiguousarray(queries[start:stop]) @ searched
            offset = 0
        r, c = np.nonzero(block >= limit)
        i, j = r + start, c + offset
        if B is None:
            keep = j > i
            r, c, i, j = r[keep], c[keep], i[keep], j[keep]
        found_i.append(i)
        found_j.append(j)
        found_s.append(np.clip(block[r, c], -1.0, 1.0))
    i = np.concatenate(found_i).astype(np.int64)
    j = np.concatenate(found_j).astype(np.int64)
    s = np.concatenate(found_s).astype(np.float32)
    order = np.lexsort((j, i, -s))
    return np.stack([i[order], j[order]], axis=1).reshape(-1, 2), s[order]
