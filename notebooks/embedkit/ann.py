"""Approximate near-duplicate search with FAISS IVF, measured against exact search.

Exact search (``faiss.IndexFlatIP`` on unit vectors) compares every query with every
vector. An IVF index clusters the vectors into ``nlist`` cells with k-means (trained on
a sample) and compares a query only with the vectors of its ``nprobe`` nearest cells.
This module builds both, finds near-duplicate pairs by range search (every pair with
cosine similarity at least a threshold), and scores the approximate pairs by their
recall of the exact ones.

Two ways to make collections far larger than the bundled data:

- ``synthetic_collection`` repeats the real embeddings in "worlds" that cannot pair with
  each other: the real near-duplicate structure exactly, but each world is one tight
  cluster, so IVF cells separate the worlds and recall is easy.
- ``fit_collection_model`` / ``draw_collection`` draw new "photos" from a Gaussian fitted
  to real embeddings (Ledoit-Wolf shrinkage, since there are far fewer photos than
  dimensions) and plant edited copies of some of them, each at a cosine drawn from real
  edited pairs, in a direction drawn from real edits. Near duplicates and strangers then
  share IVF cells, as they do in a real collection; the draw is only as real as a
  Gaussian is (no classes, no clusters of look-alikes).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from sklearn.covariance import ledoit_wolf_shrinkage

__all__ = [
    "CollectionModel",
    "ShrunkGaussian",
    "build_flat",
    "build_ivf",
    "choose_nprobe",
    "draw_collection",
    "fit_collection_model",
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
        out[w * m : (w + 1) * m] = x[:, rng.permutation(d)] * signs
    return out, np.repeat(np.arange(copies, dtype=np.int64), m)


@dataclass(frozen=True)
class ShrunkGaussian:
    """A Gaussian in ``d`` dimensions fitted to few samples, with Ledoit-Wolf shrinkage.

    Its covariance is ``(1 - shrinkage) * S + shrinkage * (trace(S) / d) * I`` where ``S``
    is the samples' covariance (divided by their number), exactly what
    ``sklearn.covariance.ledoit_wolf`` returns, stored as the samples' principal
    directions so that drawing never builds the ``(d, d)`` matrix.

    Attributes:
        mean: ``(d,)`` the samples' mean.
        basis: ``(k, d)`` orthonormal principal directions of the centred samples.
        scales: ``(k,)`` standard deviation added along each direction.
        residual: standard deviation added along every coordinate.
        shrinkage: the Ledoit-Wolf weight of the identity, in ``[0, 1]``.
    """

    mean: np.ndarray
    basis: np.ndarray
    scales: np.ndarray
    residual: float
    shrinkage: float

    @classmethod
    def fit(cls, samples: np.ndarray) -> ShrunkGaussian:
        """Fit to ``(m, d)`` samples, ``m >= 2``."""
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need an (m, d) array of at least 2 samples, got shape {x.shape}")
        mean = x.mean(axis=0)
        centred = x - mean
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        shrinkage = float(ledoit_wolf_shrinkage(centred, assume_centered=True))
        variances = singular**2 / len(x)
        keep = variances > 0
        trace = float(variances.sum())
        return cls(
            mean,
            vt[keep],
            np.sqrt((1 - shrinkage) * variances[keep]),
            float(np.sqrt(shrinkage * trace / x.shape[1])),
            shrinkage,
        )

    def covariance(self) -> np.ndarray:
        """The ``(d, d)`` covariance (for checks on small ``d``; drawing does not need it)."""
        d = len(self.mean)
        return (self.basis.T * self.scales**2) @ self.basis + self.residual**2 * np.eye(d)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, d)`` float64 samples."""
        d = len(self.mean)
        z = rng.standard_normal((n, len(self.scales))) * self.scales
        return self.mean + z @ self.basis + self.residual * rng.standard_normal((n, d))


@dataclass(frozen=True)
class CollectionModel:
    """What :func:`draw_collection` draws from: photos, edit directions, edit cosines.

    Attributes:
        photos: distribution of (unnormalised) photo embeddings.
        edits: distribution of the difference ``edited - original`` of unit embeddings.
        cosines: ``(m,)`` cosine similarities of real edited copies to their originals.
    """

    photos: ShrunkGaussian
    edits: ShrunkGaussian
    cosines: np.ndarray


def fit_collection_model(
    photos: np.ndarray, edited: np.ndarray, originals: np.ndarray, max_cosine: float = 0.999
) -> CollectionModel:
    """Fit :class:`CollectionModel` to real embeddings of photos and of edited copies.

    Args:
        photos: ``(p, d)`` one embedding per distinct photo.
        edited: ``(m, d)`` embeddings of edited copies.
        originals: ``(m, d)`` the embedding of each copy's original (row for row).
        max_cosine: copies at least this similar to their original are left out (exact
            and lossless copies: hashing finds those before any embedding is computed).
    """
    e, o = unit_rows(edited), unit_rows(originals)
    if e.shape != o.shape:
        raise ValueError(f"edited {e.shape} and originals {o.shape} must have the same shape")
    cosines = np.einsum("ij,ij->i", e, o).clip(-1.0, 1.0)
    keep = cosines < max_cosine
    if keep.sum() < 2:
        raise ValueError(f"need at least 2 edited copies below cosine {max_cosine}, got {int(keep.sum())}")
    return CollectionModel(
        ShrunkGaussian.fit(unit_rows(photos)), ShrunkGaussian.fit(e[keep] - o[keep]), cosines[keep]
    )


def draw_collection(
    model: CollectionModel, photos: int, with_copies: int, copies: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A collection of ``photos`` drawn photos and ``copies`` edited copies of the first ``with_copies``.

    Each copy of photo ``p`` (a unit vector) is ``c * p + sqrt(1 - c^2) * u``: ``c`` is a
    cosine drawn from ``model.cosines`` and ``u`` a unit direction perpendicular to ``p``
    drawn from ``model.edits``, so the copy's cosine to its photo is exactly ``c``.

    Returns:
        ``(vectors, source)``: ``(photos + with_copies * copies, d)`` float32 unit rows,
        the photos first, then the copies photo by photo; and ``(n,)`` int64 the photo
        each row shows (a photo's own row number).
    """
    if not 0 <= with_copies <= photos or copies < 0:
        raise ValueError(
            f"need 0 <= with_copies <= photos and copies >= 0; got with_copies={with_copies}, "
            f"photos={photos}, copies={copies}"
        )
    rng = np.random.default_rng(seed)
    drawn = unit_rows(model.photos.draw(photos, rng))
    base = np.repeat(drawn[:with_copies].astype(np.float64), copies, axis=0)
    u = model.edits.draw(len(base), rng)
    u -= np.einsum("ij,ij->i", u, base)[:, None] * base
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    c = rng.choice(model.cosines, size=len(base))[:, None]
    copied = c * base + np.sqrt(1.0 - c**2) * u
    vectors = unit_rows(np.concatenate([drawn, copied]))
    source = np.concatenate([np.arange(photos), np.repeat(np.arange(with_copies), copies)])
    return vectors, source.astype(np.int64)


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
            takes 39 to 256 per cell: it warns below 39).
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


def choose_nprobe(nprobes, recalls, target: float) -> int | None:
    """The smallest ``nprobe`` whose measured recall reaches ``target``; ``None`` when none does.

    ``nprobes`` and ``recalls`` are matching sequences (a sweep's columns, in any order).
    """
    nprobes, recalls = np.asarray(nprobes), np.asarray(recalls, dtype=float)
    if nprobes.shape != recalls.shape:
        raise ValueError(f"one recall per nprobe: got {nprobes.shape} and {recalls.shape}")
    reached = nprobes[recalls >= target]
    return int(reached.min()) if len(reached) else None


def index_bytes(index: faiss.Index) -> int:
    """Size of the index as FAISS serialises it (what it needs in memory, to a few bytes)."""
    return int(faiss.serialize_index(index).nbytes)
