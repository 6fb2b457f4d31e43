"""Approximate near-duplicate search with FAISS IVF, measured against exact search.

Exact search (``faiss.IndexFlatIP`` on unit vectors) compares every query with every
vector. An IVF index clusters the vectors into ``nlist`` cells with k-means (trained on
a sample) and compares a query only with the vectors of its ``nprobe`` nearest cells.
This module builds both, finds near-duplicate pairs by range search (every pair with
cosine similarity at least a threshold), and scores the approximate pairs by their
recall of the exact ones. ``synthetic_collection`` makes collections far larger than
the bundled data with exactly the near-duplicate structure of real embeddings.
"""

from __future__ import annotations

import faiss
import numpy as np

__all__ = [
    "build_flat",
    "build_ivf",
    "index_bytes",
    "pair_recall",
    "range_pairs",
    "synthetic_collection",
    "unit_rows",
]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``(n, d)`` float32 C-contiguous rows of length 1 (inner product = cosine similarity)."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected an (n, d) array of vectors, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(
            f"{int((norms == 0).sum())} rows are all zero; cosine similarity is undefined for them"
        )
    return np.ascontiguousarray(x / norms)


def synthetic_collection(real: np.ndarray, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A collection ``copies`` times larger than ``real`` with exactly its near-duplicate structure.

    Each copy ("world") of the real embeddings is moved by its own random *signed
    permutation* of the coordinates (shuffle them, flip some signs). That is an
    orthogonal map, so within a world every cosine similarity is exactly the real one:
    the same near-duplicate pairs, the same look-alikes. Vectors of two different
    worlds are nearly orthogonal (their cosine is a sum of terms with random signs),
    so no pair crosses worlds at any sensible threshold.

    Args:
        real: ``(m, d)`` real embeddings.
        copies: number of worlds.
        seed: random seed for the permutations and signs.

    Returns:
        ``(vectors, world)``: ``(copies * m, d)`` float32 unit rows, world ``w`` in rows
        ``w*m .. (w+1)*m - 1``, and ``(copies * m,)`` int64 world numbers.
    """
    x = unit_rows(real)
    m, d = x.shape
    rng = np.random.default_rng(seed)
    out = np.empty((copies * m, d), dtype=np.float32)
    for w in range(copies):
        signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=d)
        out[w * m:(w + 1) * m] = x[:, rng.permutation(d)] * signs
    return out, np.repeat(np.arange(copies, dtype=np.int64), m)


def build_flat(vectors: np.ndarray) -> faiss.IndexFlatIP:
    """Exact inner-product index over unit ``vectors`` (the reference)."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(unit_rows(vectors))
    return index


def build_ivf(
    vectors: np.ndarray,
    nlist: int,
    train_size: int | None = None,
    pq_bytes: int | None = None,
    seed: int = 0,
) -> faiss.Index:
    """An IVF index (inner product) trained on a random sample, holding all ``vectors``.

    Args:
        vectors: ``(n, d)`` unit rows.
        nlist: k-means cells. A common starting point is a few times ``sqrt(n)``.
        train_size: rows sampled for k-means (default ``min(n, 40 * nlist)``; FAISS
            wants 30 to 256 per cell).
        pq_bytes: compress each vector to this many bytes with product quantisation
            (IVF-PQ; ``d`` must be divisible by it), or ``None`` to store vectors as
            they are (IVF-Flat).
        seed: which sample trains the index.
    """
    x = unit_rows(vectors)
    n, d = x.shape
    train_size = min(n, train_size or 40 * nlist)
    sample = x[np.random.default_rng(seed).choice(n, size=train_size, replace=False)]
    quantizer = faiss.IndexFlatIP(d)
    if pq_bytes is None:
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        if d % pq_bytes:
            raise ValueError(f"pq_bytes={pq_bytes} must divide the dimension {d}")
        index = faiss.IndexIVFPQ(quantizer, d, nlist, pq_bytes, 8, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(sample)
    index.add(x)
    return index


def range_pairs(
    index: faiss.Index, queries: np.ndarray, query_ids: np.ndarray, threshold: float
) -> np.ndarray:
    """Near-duplicate pairs by range search: every stored vector scoring ``>= threshold``.

    Args:
        index: a FAISS inner-product index over unit vectors (ids = row numbers).
        queries: ``(q, d)`` vectors; ``query_ids``: their row numbers in the index
            (a query never pairs with itself).
        threshold: cosine similarity.

    Returns:
        ``(p, 2)`` int64 unordered pairs ``(i, j)`` with ``i < j``, sorted, each once.
    """
    lims, _, ids = index.range_search(unit_rows(queries), float(threshold))
    q = np.repeat(np.asarray(query_ids, dtype=np.int64), np.diff(lims).astype(np.int64))
    pairs = np.sort(np.stack([q, ids.astype(np.int64)], axis=1), axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0).reshape(-1, 2)


def pair_recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the ``exact`` pairs that ``found`` contains (1.0 when there are none)."""
    if len(exact) == 0:
        return 1.0
    key = np.int64(1) << 32
    found_keys = found[:, 0] * key + found[:, 1]
    exact_keys = exact[:, 0] * key + exact[:, 1]
    return float(np.isin(exact_keys, found_keys).mean())


def index_bytes(index: faiss.Index) -> int:
    """Size of the index as FAISS serialises it (what it needs in memory, to a few bytes)."""
    return int(faiss.serialize_index(index).nbytes)
