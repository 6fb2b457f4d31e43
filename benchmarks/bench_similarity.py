"""Similarity search at scale: chunked top-k and near-duplicate pairs against their limits.

    python benchmarks/bench_similarity.py [--sizes 1000 10000 50000] [--dim 512]

On synthetic float32 embeddings with planted near duplicates, for each n it measures in
one run:

- ``top_k`` and ``near_duplicate_pairs`` against the bare matrix product of the same size
  (the same chunked ``X @ X.T`` with nothing done to the scores: the floor);
- their peak extra memory (tracemalloc sees NumPy's allocations) against the n x n
  matrix they never build;
- FAISS ``IndexFlatIP`` (exact inner-product search on unit vectors) on the same data,
  checking that both return the same neighbours and pairs;
- at n = 2,000, the pair list built in a double Python loop, as many tutorials do.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
from machine import best_time, describe, table

from embedkit.similarity import default_chunk_size, near_duplicate_pairs, top_k

THRESHOLD = 0.95
K = 10


def synthetic_embeddings(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Non-negative vectors (like pooled ReLU features) with 2% planted near duplicates."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.standard_normal((n, dim), dtype=np.float32))
    planted = rng.choice(n, size=max(1, n // 50), replace=False)
    sources = rng.integers(0, n, size=len(planted))
    X[planted] = X[sources] + 0.05 * np.abs(rng.standard_normal((len(planted), dim), dtype=np.float32))
    return X


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def bare_gemm(Xn: np.ndarray, chunk: int) -> None:
    """The matrix product alone, in the same chunks and layout: the time nothing can beat."""
    searched = np.ascontiguousarray(Xn.T)
    for start in range(0, len(Xn), chunk):
        np.ascontiguousarray(Xn[start : start + chunk]) @ searched


def peak_mb(fn) -> tuple[float, object]:
    gc.collect()
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, result


def faiss_search(Xn: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(Xn.shape[1])
    index.add(Xn)
    return index


def python_pair_list(X: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    pairs = []
    norms = [np.linalg.norm(x) for x in X]
    for i in range(len(X)):
        for j in range(i + 1, len(X)):
            if np.dot(X[i], X[j]) / (norms[i] * norms[j]) >= threshold:
                pairs.append((i, j))
    return pairs


def bench_size(n: int, dim: int) -> tuple:
    X = synthetic_embeddings(n, dim)
    Xn = unit(X)
    chunk = default_chunk_size(n)
    repeats = 3 if n <= 10_000 else 1
    t_gemm = best_time(lambda: bare_gemm(Xn, chunk), repeats=repeats)
    t_topk = best_time(lambda: top_k(X, k=K), repeats=repeats)
    t_pairs = best_time(lambda: near_duplicate_pairs(X, threshold=THRESHOLD), repeats=repeats)
    mem_topk, (idx, _) = peak_mb(lambda: top_k(X, k=K))
    mem_pairs, (pairs, _) = peak_mb(lambda: near_duplicate_pairs(X, threshold=THRESHOLD))

    index = faiss_search(Xn)
    t_faiss_knn = best_time(lambda: index.search(Xn, K + 1), repeats=repeats)
    t_faiss_range = best_time(lambda: index.range_search(Xn, THRESHOLD), repeats=repeats)
    _, faiss_idx = index.search(Xn, K + 1)
    # FAISS returns each row itself first; drop it. Compare the neighbour sets row by row
    # (the order of near-equal scores can differ in the last float bit).
    faiss_knn = [set(row[row != i][:K]) for i, row in enumerate(faiss_idx)]
    same_knn = np.mean([set(a) == b for a, b in zip(idx.tolist(), faiss_knn, strict=True)])
    lims, _, found = index.range_search(Xn, THRESHOLD)
    faiss_pairs = {
        (i, int(j)) for i in range(n) for j in found[lims[i] : lims[i + 1]] if i < j
    }
    ours = {tuple(p) for p in pairs.tolist()}
    same_pairs = len(ours ^ faiss_pairs)
    return (
        n, f"{t_gemm:.3f}", f"{t_topk:.3f}", f"{t_topk / t_gemm:.2f}", f"{t_pairs:.3f}",
        f"{t_pairs / t_gemm:.2f}", f"{t_topk / t_faiss_knn:.2f}", f"{t_pairs / t_faiss_range:.2f}",
        f"{mem_topk:.0f}", f"{mem_pairs:.0f}", f"{n * n * 4 / 2**20:.0f}",
        f"{same_knn:.4f}", same_pairs, len(pairs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--pair-list-n", type=int, default=2_000, help="n for the Python double loop")
    args = parser.parse_args()
    print(describe())
    print(f"d = {args.dim}, threshold = {THRESHOLD}, k = {K}, default chunk = "
          f"{default_chunk_size(max(args.sizes))} rows at n = {max(args.sizes)}\n")

    rows = [bench_size(n, args.dim) for n in args.sizes]
    print(table(rows, (
        "n", "GEMM s", "top_k s", "top_k/GEMM", "pairs s", "pairs/GEMM", "top_k/FAISS",
        "pairs/FAISS range", "top_k peak MB", "pairs peak MB", "n x n matrix MB",
        "same top-k as FAISS", "pairs differing", "pairs found",
    )))

    n = args.pair_list_n
    X = synthetic_embeddings(n, args.dim)
    start = time.perf_counter()
    loop_pairs = python_pair_list(X, THRESHOLD)
    t_loop = time.perf_counter() - start
    t_ours = best_time(lambda: near_duplicate_pairs(X, threshold=THRESHOLD))
    ours = {tuple(p) for p in near_duplicate_pairs(X, threshold=THRESHOLD)[0].tolist()}
    print(f"\nn = {n}: Python double loop {t_loop:.2f} s, near_duplicate_pairs {t_ours:.4f} s "
          f"-> {t_loop / t_ours:.0f}x faster; same pairs: {ours == set(loop_pairs)} ({len(ours)})")


if __name__ == "__main__":
    main()
