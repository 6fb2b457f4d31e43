"""Near-duplicate groups of a whole folder: one blockwise search, chains cut by average linkage.

:func:`~embedkit.pairs.connected_groups` joins pairs that are already listed. A folder of
``n`` files may hold far more pairs than memory, so :func:`search_groups` scores the vectors
block by block and joins each block's pairs into group labels (:func:`join_pairs`) before
the next, keeping only the few pairs nearest the threshold for a person to look at.

Joining by chains is single linkage: one false pair merges two whole photo groups.
:func:`cut_chains` (and :func:`guarded_groups`, from listed pairs) checks every group
pairwise and cuts one whose members are not all at or above the threshold with average
linkage at the same threshold, reporting what it cut.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .pairs import connected_groups
from .similarity import near_duplicate_pairs

__all__ = [
    "BORDERLINE_MARGIN",
    "BORDERLINE_PER_SIDE",
    "LINKAGE_MAX_MEMBERS",
    "PAIR_BLOCK_SIMILARITIES",
    "cut_chains",
    "guarded_groups",
    "join_pairs",
    "search_groups",
]

#: Borderline pairs are looked for this far below the threshold.
BORDERLINE_MARGIN = 0.10
#: Borderline pairs shown on each side of the threshold (just below, just above).
BORDERLINE_PER_SIDE = 6
#: Connected groups larger than this are not cut by average linkage (its cost grows with
#: the square of the group's size); they are flagged for review as they are.
LINKAGE_MAX_MEMBERS = 3000
#: The pair search scores at most ``max(PAIR_BLOCK_SIMILARITIES, 16 n)`` similarities at a
#: time for ``n`` files, whatever the number of pairs found.
PAIR_BLOCK_SIMILARITIES = 1 << 20


def join_pairs(labels: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Group labels after joining ``pairs`` to the groups ``labels`` already holds (O(n + pairs)).

    Each file is tied to its group's first file, so the components of the ties and the new
    pairs are the old groups merged along the pairs: the pairs never need to be kept.
    """
    if len(pairs) == 0:
        return labels
    n = len(labels)
    _, first = np.unique(labels, return_index=True)  # connected_groups numbers from 0, in order
    ties = np.stack([np.arange(n), first[labels]], axis=1)
    return connected_groups(n, np.concatenate([ties, pairs]))


def _nearest(scores: np.ndarray, reps: np.ndarray, side: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Rows of ``side`` with the smallest ``key``, one per pair of photos, at most BORDERLINE_PER_SIDE.

    Looks at the best ``m`` candidates only, doubling ``m`` while copies of the same pair of
    photos leave fewer than enough distinct ones: the work stays small whatever the block size.
    """
    candidates = np.flatnonzero(side)
    m = 4 * BORDERLINE_PER_SIDE
    while True:
        if len(candidates) > m:
            best = candidates[np.argpartition(key[candidates], m)[:m]]
        else:
            best = candidates
        best = np.sort(best)  # by position: score descending, then i, then j
        _, first = np.unique(reps[best], axis=0, return_index=True)  # the first of each pair of photos
        distinct = best[first]
        chosen = distinct[np.argsort(key[distinct], kind="stable")][:BORDERLINE_PER_SIDE]
        if len(chosen) == BORDERLINE_PER_SIDE or len(best) == len(candidates):
            return chosen
        m *= 2


def _best_borderline(
    pairs: np.ndarray, scores: np.ndarray, threshold: float, exact_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs nearest the threshold on each side, one per pair of photos, by descending score.

    Pixel-identical copies stand for one file: of the pairs between the same two photos the
    highest scoring (then the first) is kept, and pairs within one photo are dropped.
    """
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -scores))
    pairs, scores = pairs[order], scores[order]
    reps = np.sort(exact_of[pairs], axis=1)
    apart = reps[:, 0] != reps[:, 1]
    position = np.arange(len(scores))
    below = _nearest(scores, reps, apart & (scores < threshold), position)  # highest below first
    above = _nearest(scores, reps, apart & (scores >= threshold), -position)  # lowest above first
    chosen = np.sort(np.concatenate([above, below]))
    return pairs[chosen], scores[chosen]


def search_groups(
    vectors: np.ndarray,
    threshold: float,
    exact_of: np.ndarray,
    block: int | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Group labels of every file and the borderline pairs, from one blockwise search.

    Rows are scored against the rows after them ``max(block, 16 n) // n`` at a time, at the
    borderline margin below ``threshold``; the pairs at or above ``threshold`` join groups
    (:func:`join_pairs`) as soon as enough are waiting, and only the few pairs nearest the
    threshold are carried from block to block. Pixel-identical files (``exact_of``, the
    first file of each file's exact group) are joined before any search.

    Returns:
        ``((n,) int64 labels as connected_groups numbers them, [(a, b, score), ...])``, the
        borderline pairs below the threshold (ascending) then above it (descending).
    """
    n = len(vectors)
    labels = join_pairs(np.arange(n), np.stack([np.arange(n), exact_of], axis=1)[exact_of != np.arange(n)])
    if n < 2:
        return labels, []
    low = max(-1.0, threshold - BORDERLINE_MARGIN)
    rows = max(1, max(block or PAIR_BLOCK_SIMILARITIES, 16 * n) // n)
    waiting: list[np.ndarray] = []
    n_waiting = 0
    near_pairs, near_scores = np.empty((0, 2), np.int64), np.empty(0, np.float32)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        pairs, scores = near_duplicate_pairs(vectors[start:stop], vectors[start:], threshold=low)
        later = pairs[:, 1] > pairs[:, 0]  # each pair once, never a file with itself
        pairs, scores = pairs[later] + start, scores[later]
        strong = pairs[scores >= threshold]
        strong = strong[labels[strong[:, 0]] != labels[strong[:, 1]]]  # pairs that join two groups
        if len(strong):
            waiting.append(strong)
            n_waiting += len(strong)
        if n_waiting >= n:  # joining costs O(n): do it once at least n pairs wait
            labels, waiting, n_waiting = join_pairs(labels, np.concatenate(waiting)), [], 0
        near_pairs, near_scores = _best_borderline(
            np.concatenate([near_pairs, pairs]), np.concatenate([near_scores, scores]), threshold, exact_of
        )
        del pairs, scores, strong
    if waiting:
        labels = join_pairs(labels, np.concatenate(waiting))
    below = [k for k in range(len(near_scores)) if near_scores[k] < threshold][::-1]
    above = [k for k in range(len(near_scores)) if near_scores[k] >= threshold]
    chosen = below + above
    return labels, [(int(near_pairs[k, 0]), int(near_pairs[k, 1]), float(near_scores[k])) for k in chosen]


def guarded_groups(
    n: int, edges: np.ndarray, vectors: np.ndarray, threshold: float
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Connected groups of ``edges``, each cut by average linkage when not all pairs are similar.

    Returns the groups (arrays of rows, two or more each) and one review entry per group that
    was cut: its members, its lowest pairwise cosine, its weakest pair and the parts it was cut
    into. ``curate()`` groups files this way; lessons 06 and 07 check their own guard against it.
    """
    return cut_chains(connected_groups(n, edges), vectors, threshold)


def cut_chains(
    labels: np.ndarray, vectors: np.ndarray, threshold: float
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """The groups of ``labels``, each cut by average linkage when not all pairs are similar.

    Returns:
        ``(groups, review)``: member index arrays of the final groups of two or more, and
        one entry per connected group whose lowest pairwise cosine is below ``threshold``
        (as indices; :func:`~embedkit.curate.curate` turns them into paths).
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    groups: list[np.ndarray] = []
    review: list[dict[str, Any]] = []
    for members in np.split(order, bounds):
        if len(members) < 2:
            continue
        if len(members) > LINKAGE_MAX_MEMBERS:
            groups.append(members)
            review.append(
                {
                    "members": members,
                    "min_similarity": float("nan"),
                    "weakest_pair": None,
                    "parts": [members],
                    "note": "too large to check pairwise",
                }
            )
            continue
        sims = np.clip(unit[members] @ unit[members].T, -1.0, 1.0)
        iu = np.triu_indices(len(members), k=1)
        weakest = int(np.argmin(sims[iu]))
        low = float(sims[iu][weakest])
        if low >= threshold:
            groups.append(members)
            continue
        distance = 1.0 - sims
        np.fill_diagonal(distance, 0.0)
        from scipy.cluster.hierarchy import fcluster, linkage  # here: most folders have no chain to cut
        from scipy.spatial.distance import squareform

        tree = linkage(squareform(distance.clip(min=0.0), checks=False), method="average")
        cut = fcluster(tree, t=1.0 - threshold, criterion="distance")
        parts = [members[cut == c] for c in np.unique(cut)]
        groups.extend(p for p in parts if len(p) > 1)
        review.append(
            {
                "members": members,
                "min_similarity": low,
                "weakest_pair": (int(members[iu[0][weakest]]), int(members[iu[1][weakest]])),
                "parts": parts,
                "note": "" if len(parts) == 1 else f"split into {len(parts)} by average similarity",
            }
        )
    return groups, review
