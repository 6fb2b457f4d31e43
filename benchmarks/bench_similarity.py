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
- ``precision="bfloat16"`` (bfloat16 candidates, float32 rescoring) against float32,
  side by side, with a check that both return the same neighbours and pairs (where the
  CPU has native bfloat16);
- at n = 2,000, the pair list built in a double Python loop, as many tutorials do.

The timed sides alternate repeat by repeat, and each repeat records other processes'
CPU use (``machine.py``); a ratio from contended repeats only is marked (!).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
from machine import best, best_time, contention_note, describe, flag, interleaved, ratio, table

from embedkit.similarity import bfloat16_is_native, default_chunk_size, near_duplicate_pairs, top_k

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
    repeats = 3 if n <= 10_000 else 2
    native = bfloat16_is_native()
    sides = {
        "gemm": lambda: bare_gemm(Xn, chunk),
        "top_k": lambda: top_k(X, k=K, precision="float32"),
        "pairs": lambda: near_duplicate_pairs(X, threshold=THRESHOLD, precision="float32"),
    }
    if native:
        sides["top_k bf16"] = lambda: top_k(X, k=K, precision="bfloat16")
        sides["pairs bf16"] = lambda: near_duplicate_pairs(X, threshold=THRESHOLD, precision="bfloat16")
    runs = interleaved(sides, repeats=repeats)
    print(f"n = {n}: {contention_note(runs)}")
    t_gemm, c_gemm = best(runs["gemm"])
    t_topk, c_topk = best(runs["top_k"])
    t_pairs, c_pairs = best(runs["pairs"])
    mem_topk, (idx, top_scores) = peak_mb(lambda: top_k(X, k=K, precision="float32"))
    mem_pairs, (pairs, _) = peak_mb(lambda: near_duplicate_pairs(X, threshold=THRESHOLD, precision="float32"))

    index = faiss_search(Xn)
    t_faiss_knn = best_time(lambda: index.search(Xn, K + 1), repeats=repeats)
    t_faiss_range = best_time(lambda: index.range_search(Xn, THRESHOLD), repeats=repeats)
    _, faiss_idx = index.search(Xn, K + 1)
    # FAISS returns each row itself first; drop it. Compare the neighbour sets row by row
    # (the order of near-equal scores can differ in the last float bit).
    faiss_knn = [set(row[row != i][:K]) for i, row in enumerate(faiss_idx)]
    same_knn = np.mean([set(a) == b for a, b in zip(idx.tolist(), faiss_knn, strict=True)])
    lims, _, found = index.range_search(Xn, THRESHOLD)
    faiss_pairs = {(i, int(j)) for i in range(n) for j in found[lims[i] : lims[i + 1]] if i < j}
    ours = {tuple(p) for p in pairs.tolist()}
    same_pairs = len(ours ^ faiss_pairs)
    bf16 = ("n/a (bfloat16 not native)",) * 3
    if native:
        topk_x, topk_c = ratio(runs["top_k"], runs["top_k bf16"])
        pairs_x, pairs_c = ratio(runs["pairs"], runs["pairs bf16"])
        b_idx, b_scores = top_k(X, k=K, precision="bfloat16")
        found16 = near_duplicate_pairs(X, threshold=THRESHOLD, precision="bfloat16")[0]
        b_pairs = {tuple(p) for p in found16.tolist()}
        # Neighbours equal wherever float32 itself orders them clearly (ties within 1e-6 may swap).
        clear = (np.abs(np.diff(top_scores, axis=1)) > 1e-6).all(axis=1)
        same = np.array_equal(b_idx[clear], idx[clear]) and np.abs(b_scores - top_scores).max() <= 2e-6
        bf16 = (
            flag(f"{topk_x:.2f}", topk_c),
            flag(f"{pairs_x:.2f}", pairs_c),
            f"{'yes' if same and b_pairs == ours else 'NO'} ({len(b_pairs ^ ours)} pairs differ)",
        )
    return (
        n,
        flag(f"{t_gemm:.3f}", c_gemm),
        flag(f"{t_topk:.3f}", c_topk),
        flag(f"{ratio(runs['top_k'], runs['gemm'])[0]:.2f}", ratio(runs["top_k"], runs["gemm"])[1]),
        flag(f"{t_pairs:.3f}", c_pairs),
        flag(f"{ratio(runs['pairs'], runs['gemm'])[0]:.2f}", ratio(runs["pairs"], runs["gemm"])[1]),
        f"{t_topk / t_faiss_knn:.2f}",
        f"{t_pairs / t_faiss_range:.2f}",
        f"{mem_topk:.0f}",
        f"{mem_pairs:.0f}",
        f"{n * n * 4 / 2**20:.0f}",
        f"{same_knn:.4f}",
        same_pairs,
        len(pairs),
        *bf16,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--pair-list-n", type=int, default=2_000, help="n for the Python double loop")
    args = parser.parse_args()
    print(describe())
    print(
        f"d = {args.dim}, threshold = {THRESHOLD}, k = {K}, default chunk = "
        f"{default_chunk_size(max(args.sizes))} rows at n = {max(args.sizes)}\n"
    )

    rows = [bench_size(n, args.dim) for n in args.sizes]
    print(
        table(
            rows,
            (
                "n",
                "GEMM s",
                "top_k s",
                "top_k/GEMM",
                "pairs s",
                "pairs/GEMM",
                "top_k/FAISS",
                "pairs/FAISS range",
                "top_k peak MB",
                "pairs peak MB",
                "n x n matrix MB",
                "same top-k as FAISS",
                "pairs differing",
                "pairs found",
                "top_k bf16 speed-up",
                "pairs bf16 speed-up",
                "bf16 results = float32",
            ),
        )
    )

    n = args.pair_list_n
    X = synthetic_embeddings(n, args.dim)
    start = time.perf_counter()
    loop_pairs = python_pair_list(X, THRESHOLD)
    t_loop = time.perf_counter() - start
    t_ours = best_time(lambda: near_duplicate_pairs(X, threshold=THRESHOLD))
    ours = {tuple(p) for p in near_duplicate_pairs(X, threshold=THRESHOLD)[0].tolist()}
    print(
        f"\nn = {n}: Python double loop {t_loop:.2f} s, near_duplicate_pairs {t_ours:.4f} s "
        f"-> {t_loop / t_ours:.0f}x faster; same pairs: {ours == set(loop_pairs)} ({len(ours)})"
    )


if __name__ == "__main__":
    main()
