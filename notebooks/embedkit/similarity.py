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

Precision of the search (``precision=`` of :func:`top_k` and :func:`near_duplicate_pairs`):
on a CPU that multiplies bfloat16 natively (AVX512-BF16 or AMX on x86, BF16 on Arm), a
bfloat16 matrix product runs about twice as fast as a float32 one. Used alone it would
change results (bfloat16 keeps 8 significant bits, so a score is off by up to ~0.01).
``precision="bfloat16"`` uses it only to pick *candidates*, with the threshold (or the
k-th score) lowered by :func:`bfloat16_margin`, a bound on the bfloat16 error derived from
its rounding, then rescores every candidate in float32 or float64. The returned neighbours
and pairs are therefore those of the float32 path, and the scores agree with it to float32
rounding. ``"auto"`` (the default) takes that path when the CPU has native bfloat16 and
the search is large enough to gain from it, float32 otherwise.

What it gains depends on the data. Near-duplicate pairs at a high threshold have few
candidates: the bfloat16 product is nearly all the work. For ``top_k`` a row is settled
only when its ``k``-th neighbour stands clear (by about ``2·margin``, ~0.02) of the
neighbours after it; where neighbours crowd together (random vectors, a dense cluster)
the rows are redone in float32, and after a first block of rows in which most had to be
redone, the rest of the search runs in float32, so the detour costs one small block.
"""

from __future__ import annotations

import math
import numbers
import platform
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "Precision",
    "bfloat16_is_native",
    "bfloat16_margin",
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
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(
            f"{name} cannot be read as an array ({exc}); every vector must have the same length"
        ) from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers (an integer or float dtype), got dtype {arr.dtype}")
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
            "; for a single vector use x[None, :] or x.reshape(1, -1), or call cosine_similarity(a, b)"
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


# --------------------------------------------------------------------------- precision

#: What :func:`top_k` and :func:`near_duplicate_pairs` accept as ``precision``.
Precision = Literal["auto", "float32", "bfloat16"]
_PRECISIONS = ("auto", "float32", "bfloat16")

# "auto" uses bfloat16 from this many multiply-adds (n·m·d) on: below it the search
# takes milliseconds and converting to bfloat16 costs about what it saves.
_AUTO_BFLOAT16_MIN_WORK = 2**31

# bfloat16 keeps 8 significant bits: rounding to nearest changes a value by at most
# 2**-8 of itself (its unit roundoff). float32's is 2**-24.
_BF16_UNIT_ROUNDOFF = 2.0**-8
_F32_UNIT_ROUNDOFF = 2.0**-24


@cache
def bfloat16_is_native() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16 on x86, BF16 on Arm).

    Read from the CPU's feature flags (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS).
    Without them, bfloat16 matrix products are emulated and slower than float32.
    """
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":", 1)[0].strip()
            if key in ("flags", "Features"):
                flags.update(line.split(":", 1)[1].split())
    except (OSError, IndexError):
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            return out == "1"
        except (OSError, subprocess.SubprocessError):
            return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def bfloat16_margin(d: int) -> float:
    """A bound on ``|bfloat16 score - float32 score|`` for two unit vectors of dimension ``d``.

    With ``u = 2**-8`` (bfloat16's unit roundoff) and ``g = d·2**-24 / (1 - d·2**-24)``
    (float32's bound for a sum of ``d`` products): rounding both vectors to bfloat16 moves
    their dot product by at most ``(2u + u²)·Σ|a_i b_i| <= 2u + u²`` (Cauchy-Schwarz on
    unit vectors); the float32 accumulation adds at most ``g·(1+u)²``, rounding the result
    to bfloat16 at most ``u`` times its size, and the float32 path's own accumulation
    error ``g`` is added once more. For ``d = 512`` the bound is about 0.0118.
    """
    u, d = _BF16_UNIT_ROUNDOFF, max(1, int(d))
    g = d * _F32_UNIT_ROUNDOFF / (1 - d * _F32_UNIT_ROUNDOFF)
    inputs = 2 * u + u * u
    accumulated = inputs + g * (1 + u) ** 2
    return float(accumulated + u * (1 + accumulated) + g)


def _use_bfloat16(precision: str, work: int) -> bool:
    """Resolve ``precision`` for a search of ``work`` multiply-adds: True means the bfloat16 path."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    if precision == "float32":
        return False
    if precision == "auto":
        return work >= _AUTO_BFLOAT16_MIN_WORK and bfloat16_is_native()
    if not bfloat16_is_native():
        import warnings

        warnings.warn(
            "precision='bfloat16' asked for, but this CPU has no native bfloat16 arithmetic "
            "(AVX512-BF16, AMX or Arm BF16), where it would be slower than float32: "
            "searching in float32 instead (same results)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def _bf16(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(torch.bfloat16)


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
    equal has a tie across the cut and is redone exactly with NumPy.
    """
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


def _below_in_bfloat16(limit: torch.Tensor) -> torch.Tensor:
    """``limit`` (float32) as bfloat16, rounded so that it is never above the float32 value."""
    return (limit - limit.abs() * 2.0**-7 - 2.0**-120).to(torch.bfloat16)


# Rows in top_k's first bfloat16 block, which decides whether bfloat16 pays on the data.
_PROBE_ROWS = 256
# Rows whose bfloat16 candidates are rescored together (bounds the gathered copy to ~16 MB).
_RESCORE_BYTES = 16 * 2**20


def _top_k_block_bfloat16(
    rows: np.ndarray,
    rows16: torch.Tensor,
    searched: np.ndarray,
    searched16: torch.Tensor,
    searched_rows: np.ndarray,
    k: int,
    self_columns: np.ndarray | None,
    margin: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact top-k of one block of query rows, with bfloat16 picking candidates.

    Each row keeps its ``c`` best columns by bfloat16 score (``c = k + max(8, k // 2)``)
    and rescores them in float32. A column left out has a bfloat16 score at
    most the ``(c+1)``-th one, ``b``, so a float32 score at most ``b + margin``: where
    the ``k``-th rescored score is above that, no left-out column can enter the top k
    and the row is settled. Other rows are redone in float32 over all columns.

    Returns ``(indices, scores, rows redone)``.
    """
    r, m = rows.shape[0], searched.shape[1]
    approx = torch.mm(rows16, searched16)
    if self_columns is not None:
        approx[torch.arange(r), torch.from_numpy(self_columns)] = -torch.inf
    wanted = min(m, k + max(8, k // 2) + 1)
    values, picked = torch.topk(approx, wanted, dim=1, sorted=True)
    del approx
    if wanted < m:
        bound = values[:, -1].float().numpy() + margin
        picked = picked[:, :-1]
    else:  # every column is a candidate
        bound = np.full(r, -np.inf)
    # Candidates in column order, so equal scores are ordered by lower index, as in float32.
    candidates = np.sort(picked.numpy(), axis=1)
    exact = np.empty(candidates.shape, dtype=np.float32)
    group = max(1, _RESCORE_BYTES // (4 * candidates.shape[1] * rows.shape[1]))
    for g in range(0, r, group):
        gathered = torch.from_numpy(searched_rows[candidates[g : g + group]])
        exact[g : g + group] = torch.bmm(gathered, torch.from_numpy(rows[g : g + group])[:, :, None])[
            :, :, 0
        ].numpy()
    if self_columns is not None:
        exact[candidates == self_columns[:, None]] = -np.inf
    idx, scores = _select_top_k(exact, k)
    idx = np.take_along_axis(candidates, idx, axis=1)
    redo = np.flatnonzero(~(scores[:, k - 1] > bound))
    if redo.size:
        block = rows[redo] @ searched
        if self_columns is not None:
            block[np.arange(len(redo)), self_columns[redo]] = -np.inf
        idx[redo], scores[redo] = _select_top_k(block, k)
    return idx, scores, int(redo.size)


def top_k(
    A: Any,
    B: Any | None = None,
    k: int = 5,
    chunk_size: int | None = None,
    *,
    precision: Precision = "auto",
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
        precision: ``"float32"`` scores everything in float32; ``"bfloat16"`` picks
            candidates with a bfloat16 product and rescores them in float32 (same
            neighbours, about twice as fast where bfloat16 is native; elsewhere it warns
            and uses float32); ``"auto"`` (default) uses bfloat16 when it is native and
            the search is large. See the module's notes.

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
    d = searched.shape[0]
    low_precision = _use_bfloat16(precision, n * m * d)
    if low_precision:
        searched16 = _bf16(searched)
        queries16 = searched16.T if B is None else _bf16(queries)
        searched_rows = np.ascontiguousarray(searched.T)
        margin = bfloat16_margin(d)
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    start = 0
    while start < n:
        # A first small block tells whether bfloat16 settles most rows on this data.
        stop = min(start + (min(step, _PROBE_ROWS) if start == 0 and low_precision else step), n)
        rows = np.ascontiguousarray(queries[start:stop])
        self_columns = np.arange(start, stop) if B is None else None
        if low_precision:
            indices[start:stop], scores[start:stop], redone = _top_k_block_bfloat16(
                rows,
                queries16[start:stop].contiguous(),
                searched,
                searched16,
                searched_rows,
                k,
                self_columns,
                margin,
            )
            # Where scores crowd together (within ~0.01) bfloat16 settles few rows and
            # costs more than it saves: the rest of the search runs in float32.
            low_precision = redone * 2 <= stop - start
        else:
            block = rows @ searched
            if self_columns is not None:  # a row is not its own neighbour
                block[np.arange(stop - start), self_columns] = -np.inf
            indices[start:stop], scores[start:stop] = _select_top_k(block, k)
        start = stop
    return indices, scores


def near_duplicate_pairs(
    A: Any,
    B: Any | None = None,
    *,
    threshold: float,
    chunk_size: int | None = None,
    precision: Precision = "auto",
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
        precision: ``"float32"`` scores everything in float32; ``"bfloat16"`` finds
            candidates with a bfloat16 product at ``threshold - bfloat16_margin(d)`` and
            rescores them in float64 (same pairs as float32, faster where bfloat16 is
            native; elsewhere it warns and uses float32); ``"auto"`` (default) uses
            bfloat16 when it is native and the search is large.

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
        raise ValueError(f"threshold must be in [-1, 1], the range of cosine similarity, got {threshold}")
    queries, searched = _prepare_search(A, B)
    n = queries.shape[0]
    d, m = searched.shape
    step = _check_chunk_size(chunk_size, m)
    limit = np.float32(threshold)
    low_precision = _use_bfloat16(precision, n * m * d)
    if low_precision:
        searched16 = _bf16(searched)
        queries16 = searched16.T if B is None else _bf16(queries)
        limit16 = _below_in_bfloat16(torch.tensor(float(limit) - bfloat16_margin(d)))
    found_i, found_j, found_s = [], [], []
    for start in range(0, n, step):
        stop = min(start + step, n)
        offset = start if B is None else 0  # within A, only columns j >= start can have j > i
        rows = np.ascontiguousarray(queries[start:stop])
        columns = searched[:, offset:]
        if low_precision:
            # Candidates by bfloat16 (a superset of the float32 path's pairs), each rescored in float64.
            approx = torch.mm(queries16[start:stop].contiguous(), searched16[:, offset:])
            r, c = (t.numpy() for t in torch.nonzero(approx >= limit16, as_tuple=True))
            if B is None:
                keep = c + offset > r + start
                r, c = r[keep], c[keep]
            if len(r) * 16 <= approx.numel():
                exact = np.einsum(
                    "pd,pd->p", rows[r].astype(np.float64), columns.T[c].astype(np.float64)
                ).astype(np.float32)
                keep = exact >= limit
                found_i.append(r[keep] + start)
                found_j.append(c[keep] + offset)
                found_s.append(np.clip(exact[keep], -1.0, 1.0))
                continue
        block = rows @ columns
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
