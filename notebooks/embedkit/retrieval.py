"""How well do embeddings retrieve what belongs together? recall@k and mean average precision.

Every image in turn is a *query*; every other image is ranked by its score with the query
(highest first) and is *relevant* when it shares the query's key: the same photo group
("same photo") or the same label ("same label"). The query itself is never one of its
own results.

Definitions used throughout the course:

- **recall@k** is the fraction of queries that find *at least one* relevant item among
  their top ``k`` results (the definition of image-retrieval papers; some search-engine texts
  use "recall@k" for the fraction of *all* relevant items retrieved, a different number).
  A non-relevant item that ties with the best relevant one counts as ranked before it.
- **average precision** (AP) of one query is the mean, over its relevant items, of the
  precision at that item's position: (relevant items scoring at least as high) / (items
  scoring at least as high). Tied items enter together, as in scikit-learn's
  ``average_precision_score``. **mAP** is the mean of AP over queries.
- A query with **no relevant item** (its key occurs once) has neither; it is skipped and
  counted in :attr:`RetrievalSummary.n_skipped`, never scored as 0 or 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "METRICS",
    "RetrievalSummary",
    "average_precision",
    "evaluate_retrieval",
    "first_relevant_rank",
    "recall_at_k",
    "relevance_from_keys",
    "score_matrix",
]

#: How :func:`score_matrix` compares two vectors (higher always means more similar).
METRICS = ("cosine", "dot", "euclidean")


def score_matrix(X: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Scores of every row of ``X`` against every row, higher = more similar.

    Args:
        X: ``(n, d)`` embeddings.
        metric: ``"cosine"`` (dot product of the rows scaled to length 1), ``"dot"`` (plain
            dot product), or ``"euclidean"`` (the *negative* Euclidean distance, so that
            higher still means closer).

    Returns:
        ``(n, n) float64``; the diagonal holds each row's score with itself.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, d) array of embeddings, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("embeddings contain NaN or infinity; fix the rows that produced them")
    if metric == "dot":
        return X @ X.T
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1)
        if (norms == 0).any():
            raise ValueError(
                f"cosine is undefined for a zero vector (rows {np.flatnonzero(norms == 0).tolist()})"
            )
        U = X / norms[:, None]
        return U @ U.T
    squared = np.sum(X * X, axis=1)
    d2 = squared[:, None] + squared[None, :] - 2.0 * (X @ X.T)
    return -np.sqrt(np.clip(d2, 0.0, None))


def relevance_from_keys(keys: Sequence | np.ndarray) -> np.ndarray:
    """``(n, n) bool``: True where items i and j share a key (group, label), False on the diagonal."""
    keys = np.asarray(keys)
    if keys.ndim != 1 or keys.size == 0:
        raise ValueError(f"expected a non-empty 1-D sequence of keys, got shape {keys.shape}")
    relevant = keys[:, None] == keys[None, :]
    np.fill_diagonal(relevant, False)
    return relevant


def _prepare(scores: np.ndarray, relevant: np.ndarray, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """Checked float64 scores and bool relevance; the query itself at -inf and not relevant."""
    scores = np.array(scores, dtype=np.float64)  # a copy: the diagonal is overwritten below
    relevant = np.array(relevant, dtype=bool)
    if scores.ndim != 2 or scores.size == 0:
        raise ValueError(f"expected a non-empty (n_queries, n_items) score matrix, got shape {scores.shape}")
    if relevant.shape != scores.shape:
        raise ValueError(f"relevance has shape {relevant.shape} but scores have shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN: a NaN cannot be ranked; fix the embeddings that produced it")
    if exclude_self:
        if scores.shape[0] != scores.shape[1]:
            raise ValueError(
                f"exclude_self needs a square score matrix (every item is also a query), got {scores.shape}"
            )
        np.fill_diagonal(scores, -np.inf)
        np.fill_diagonal(relevant, False)
    return scores, relevant


def first_relevant_rank(scores: np.ndarray, relevant: np.ndarray, exclude_self: bool = True) -> np.ndarray:
    """Position (1 = top) of each query's best-scoring relevant item.

    Args:
        scores: ``(q, n)`` scores, higher = more similar (``score_matrix``).
        relevant: ``(q, n) bool``, True where item j is relevant to query i.
        exclude_self: the matrix is square and item i is query i: leave it out.

    Returns:
        ``(q,) float64``: 1 + the number of non-relevant items scoring at least as high as
        the best relevant item (ties count against the query); ``nan`` where a query has no
        relevant item.
    """
    scores, relevant = _prepare(scores, relevant, exclude_self)
    best_relevant = np.where(relevant, scores, -np.inf).max(axis=1)
    others = ~relevant
    if exclude_self:
        np.fill_diagonal(others, False)
    ahead = np.sum(others & (scores >= best_relevant[:, None]), axis=1)
    rank = (1 + ahead).astype(np.float64)
    rank[~relevant.any(axis=1)] = np.nan
    return rank


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, k: int, exclude_self: bool = True) -> float:
    """Fraction of queries with at least one relevant item in their top ``k`` (queries with none skipped)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    rank = first_relevant_rank(scores, relevant, exclude_self)
    scored = ~np.isnan(rank)
    if not scored.any():
        raise ValueError("no query has a relevant item: recall@k is undefined")
    return float(np.mean(rank[scored] <= k))


def average_precision(scores: np.ndarray, relevant: np.ndarray, exclude_self: bool = True) -> np.ndarray:
    """Average precision of every query; ``(q,) float64``, ``nan`` where a query has no relevant item.

    AP = mean over relevant items j of  #{relevant with score >= s_j} / #{items with score >= s_j},
    which equals ``sklearn.metrics.average_precision_score(relevant[i], scores[i])`` row by row
    (the query itself left out), ties included.
    """
    scores, relevant = _prepare(scores, relevant, exclude_self)
    q, n = scores.shape
    order = np.argsort(-scores, axis=1, kind="stable")
    s = np.take_along_axis(scores, order, axis=1)
    r = np.take_along_axis(relevant, order, axis=1)
    hits = np.cumsum(r, axis=1)
    # Tied items enter together: every position looks ahead to the last position of its tie block.
    is_block_end = np.ones((q, n), dtype=bool)
    is_block_end[:, :-1] = s[:, :-1] != s[:, 1:]
    positions = np.where(is_block_end, np.arange(n)[None, :], n)
    block_end = np.minimum.accumulate(positions[:, ::-1], axis=1)[:, ::-1]
    precision = np.take_along_axis(hits, block_end, axis=1) / (block_end + 1)
    n_relevant = r.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.sum(np.where(r, precision, 0.0), axis=1) / n_relevant
    ap[n_relevant == 0] = np.nan
    return ap


@dataclass(frozen=True)
class RetrievalSummary:
    """recall@k for several k, mAP, and how many queries were scored or skipped."""

    recall: dict[int, float]
    mean_ap: float
    n_queries: int
    n_skipped: int

    def as_row(self) -> dict[str, float | int]:
        """One flat dict, ready for a ``pandas.DataFrame`` row."""
        row: dict[str, float | int] = {f"recall@{k}": v for k, v in self.recall.items()}
        row["mAP"] = self.mean_ap
        row["queries"] = self.n_queries
        row["skipped"] = self.n_skipped
        return row


def evaluate_retrieval(
    scores: np.ndarray,
    relevant: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
    exclude_self: bool = True,
) -> RetrievalSummary:
    """recall@k for every k in ``ks`` and mAP, over the queries that have a relevant item."""
    rank = first_relevant_rank(scores, relevant, exclude_self)
    scored = ~np.isnan(rank)
    if not scored.any():
        raise ValueError("no query has a relevant item: every key occurs once, nothing to retrieve")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"every k must be a positive integer, got {k!r}")
    ap = average_precision(scores, relevant, exclude_self)
    return RetrievalSummary(
        recall={int(k): float(np.mean(rank[scored] <= k)) for k in ks},
        mean_ap=float(np.nanmean(ap)),
        n_queries=int(scored.sum()),
        n_skipped=int((~scored).sum()),
    )
