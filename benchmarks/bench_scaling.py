"""Scaling out: the Ray Data pipeline against embed_images, and FAISS IVF against exact search.

    python benchmarks/bench_scaling.py [--per-file 2] [--repeats 2] [--worlds 100 500]

1. **Ray vs one process**, same machine, same files (the bundled images plus ``--per-file``
   edited copies of each). ``ray.init`` is timed on its own. Then, alternating round by
   round: ``embed_images`` on all n files, the Ray pipeline on n/2 files and on n files.
   The difference of the two Ray runs gives Ray's steady-state time per image; the rest of
   the n/2 run is its fixed cost per pipeline run (starting the actor's worker process,
   loading the weights, planning). Printed: throughput ratios to ``embed_images``, start-up
   apart from steady state, and the largest difference between the two sets of vectors.
   The pipeline runs as lesson 07 runs it: one actor with one PyTorch thread, decoding
   tasks beside it; ``embed_images`` runs with its defaults (PyTorch's threads, decoding
   threads).
2. **FAISS IVF vs exact** range search at two or more sizes, on collections made from the
   bundled embeddings (``embedkit.ann.synthetic_collection``): recall of the exact
   near-duplicate pairs, time per query, bytes per vector. ``nprobe`` is chosen on one
   collection (seed 0: the smallest with recall >= 0.99, above the 0.95 needed, because a
   setting chosen on one collection does a little worse on the next) and reported on
   another (seed 1), where exact and IVF search are timed side by side. ``nlist`` is a
   power of two near ``4 * sqrt(n)``.

Ray's work runs in other processes (its workers). The contention check of ``machine.py``
counts every process but this one as "others"; here a sampler counts this process's
descendants (Ray's processes) as our own, so a repeat is flagged (!) only when programs
outside this benchmark took CPU. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from machine import (
    Repeat,
    best,
    contention_note,
    cpu_sample,
    describe,
    flag,
    interleaved,
    others_cores,
    ratio,
    table,
)

from embedkit.ann import build_flat, build_ivf, index_bytes, pair_recall, range_pairs, synthetic_collection
from embedkit.backbones import load_backbone
from embedkit.dataset import bundled_embeddings, load_manifest
from embedkit.distributed import embed_with_ray, start_ray
from embedkit.embeddings import embed_images
from embedkit.variants import make_variants

THREADS = 1  # PyTorch threads of the pipeline's actor, as in lesson 07
TARGET = 0.99  # recall nprobe must reach on the tuning collection


# --------------------------------------------------------------------------- Ray's CPU as our own


def _process_table() -> tuple[dict[int, int], dict[int, int]]:
    """``(parent, ticks)`` of every process: parent pid and utime + stime, from ``/proc``."""
    parent, ticks = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    return parent, ticks


def _descendants(root: int, parent: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parent.items():
        children[ppid].append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children[todo.pop()]:
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class DescendantCpu:
    """CPU ticks this process's descendants use while it runs, sampled every ``every`` seconds.

    A descendant that exits between samples keeps what it had used at its last sample, so
    a worker process that Ray stops at the end of a run is still counted (all but its last
    ``every`` seconds).
    """

    def __init__(self, every: float = 0.2):
        self.every = every
        self._first: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        parent, ticks = _process_table()
        for pid in _descendants(os.getpid(), parent):
            self._first.setdefault(pid, 0 if self._started else ticks[pid])
            self._last[pid] = ticks[pid]

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> DescendantCpu:
        self._sample()  # processes alive at the start: count only what they use from now on
        self._started = True
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def ticks(self) -> int:
        return sum(last - self._first.get(pid, 0) for pid, last in self._last.items())


def timed_with_descendants(fn) -> Repeat:
    """:func:`machine.timed`, with the CPU of this process's descendants counted as our own."""
    before = cpu_sample()
    with DescendantCpu() as tree:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    after = cpu_sample()
    others = others_cores(before, after)
    if before is not None and after is not None and not math.isnan(others):
        per_cpu = (after.total - before.total) / (os.cpu_count() or 1)
        others = max(0.0, others - tree.ticks / per_cpu) if per_cpu > 0 else 0.0
    return Repeat(seconds, others)


# --------------------------------------------------------------------------- 1. Ray vs one process


def bench_ray(backbone, manifest, per_file: int, repeats: int) -> None:
    import ray

    work = Path(tempfile.mkdtemp(prefix="bench_scaling_"))
    variants = make_variants(manifest, work / "variants", per_file=per_file, seed=0)
    files = manifest["file"].tolist() + variants["file"].tolist()
    half = files[: len(files) // 2]
    n, h = len(files), len(half)

    init = timed_with_descendants(lambda: start_ray(num_cpus=2))
    kwargs = dict(concurrency=1, num_cpus=1, threads=THREADS, decode_cpus=0.5, progress=False)
    results = {}

    def single():
        results["single"] = embed_images(files, backbone, progress=False)

    def ray_run(paths, out):
        def run():
            results[out] = embed_with_ray(paths, backbone, work / out, **kwargs)

        return run

    # First-call costs out of the way: Ray's first pipeline also starts its worker pool.
    embed_images(files[:16], backbone, progress=False)
    embed_with_ray(files[:16], backbone, work / "warmup", **kwargs)
    runs = interleaved(
        {
            "embed_images, n": single,
            "Ray pipeline, n/2": ray_run(half, "half"),
            "Ray pipeline, n": ray_run(files, "full"),
        },
        repeats=repeats,
        warmup=0,
        timer=timed_with_descendants,
    )
    ray.shutdown()

    t_single, c_single = best(runs["embed_images, n"])
    t_half, c_half = best(runs["Ray pipeline, n/2"])
    t_full, c_full = best(runs["Ray pipeline, n"])
    steady = (t_full - t_half) / (n - h)
    overhead = t_half - steady * h
    whole, c_whole = ratio(runs["embed_images, n"], runs["Ray pipeline, n"])  # time single / time Ray
    same = float(np.abs(results["full"].embeddings.vectors - results["single"].vectors).max())
    c_steady = c_half or c_full

    print(
        f"\n== Ray Data pipeline vs embed_images: {n} files ({len(manifest)} bundled + "
        f"{len(variants)} edited copies), {backbone.name} =="
    )
    print(f"ray.init: {init.seconds:.1f} s{' (!)' if init.contended else ''}")
    rows = [
        (
            name,
            flag(f"{best(rs)[0]:.1f}", best(rs)[1]),
            " ".join(f"{r.seconds:.1f}{'!' if r.contended else ''}" for r in rs),
        )
        for name, rs in runs.items()
    ]
    print(table(rows, ("side", "best clean s", "all repeats, s (! contended)")))
    print(contention_note(runs))
    print(
        f"embed_images: {n / t_single:.1f} images/s"
        f"{' (!)' if c_single else ''} ({os.cpu_count()} cores: PyTorch's threads + decoding threads)"
    )
    print(
        f"Ray steady state: {1 / steady:.1f} images/s{' (!)' if c_steady else ''} "
        f"(one actor, {THREADS} PyTorch thread, decoding tasks beside it); "
        f"fixed cost per pipeline run {overhead:.1f} s"
    )
    print(
        flag(
            f"ratio Ray steady-state / embed_images throughput: {(1 / steady) / (n / t_single):.2f}",
            c_steady or c_single,
        )
    )
    print(
        flag(
            f"ratio Ray pipeline run on {n} files (with its fixed cost) / embed_images throughput: "
            f"{whole:.2f}",
            c_whole,
        )
    )
    print(
        flag(
            f"ratio with ray.init too: {t_single / (init.seconds + t_full):.2f}",
            init.contended or c_full or c_single,
        )
    )
    print(f"largest difference between the two sets of vectors: {same:.1e}")


# --------------------------------------------------------------------------- 2. FAISS IVF vs exact


def nlist_for(n: int) -> int:
    """A power of two near ``4 * sqrt(n)`` (FAISS's usual starting point), at most n / 40."""
    return int(min(2 ** round(math.log2(4 * math.sqrt(n))), 2 ** math.floor(math.log2(n / 40))))


def bench_faiss(backbone, manifest, worlds, nprobes=(1, 2, 4, 8, 16, 32), queries=500, repeats=3):
    real = bundled_embeddings(backbone, manifest).vectors
    threshold = backbone.near_duplicate_threshold
    print(
        f"\n== FAISS IVF-Flat vs exact (IndexFlatIP) range search, threshold {threshold:.2f}, "
        f"{queries} queries, d = {real.shape[1]} =="
    )
    print(f"nprobe chosen on the seed-0 collection (smallest with recall >= {TARGET}), reported on seed 1")
    rows, all_runs = [], {}
    for w in worlds:
        chosen = None
        for seed in (0, 1):
            vectors, _ = synthetic_collection(real, w, seed=seed)
            n = len(vectors)
            nlist = nlist_for(n)
            q = np.sort(np.random.default_rng(seed).choice(n, queries, replace=False))
            flat = build_flat(vectors)
            exact = range_pairs(flat, vectors[q], q, threshold)
            start = time.perf_counter()
            ivf = build_ivf(vectors, nlist=nlist, seed=seed)
            build_s = time.perf_counter() - start
            if seed == 0:
                for nprobe in nprobes:
                    ivf.nprobe = nprobe
                    if pair_recall(range_pairs(ivf, vectors[q], q, threshold), exact) >= TARGET:
                        chosen = nprobe
                        break
                chosen = chosen or nprobes[-1]
                continue
            ivf.nprobe = chosen
            recall = pair_recall(range_pairs(ivf, vectors[q], q, threshold), exact)
            sides = {
                name: lambda x=index, v=vectors[q], ids=q: range_pairs(x, v, ids, threshold)
                for name, index in (("exact", flat), ("ivf", ivf))
            }
            runs = interleaved(sides, repeats=repeats)
            all_runs.update({f"{k}, n={n}": r for k, r in runs.items()})
            t_exact, c_exact = best(runs["exact"])
            t_ivf, c_ivf = best(runs["ivf"])
            speed, c_speed = ratio(runs["exact"], runs["ivf"])
            rows.append(
                (
                    f"{n:,}",
                    nlist,
                    chosen,
                    f"{recall:.3f}",
                    f"{len(exact):,}",
                    flag(f"{1e3 * t_exact / queries:.2f}", c_exact),
                    flag(f"{1e3 * t_ivf / queries:.3f}", c_ivf),
                    flag(f"{speed:.0f}x", c_speed),
                    f"{index_bytes(flat) / n:.0f} / {index_bytes(ivf) / n:.0f}",
                    f"{build_s:.1f}",
                )
            )
    print(
        table(
            rows,
            (
                "n vectors",
                "nlist",
                "nprobe",
                "held-out recall",
                "exact pairs",
                "exact ms/query",
                "IVF ms/query",
                "IVF speed-up",
                "bytes/vector flat / IVF",
                "IVF train+add s",
            ),
        )
    )
    print(contention_note(all_runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-file", type=int, default=2, help="edited copies per bundled file")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the Ray / embed_images comparison")
    parser.add_argument(
        "--worlds",
        type=int,
        nargs="+",
        default=[100, 500],
        help="collection sizes for FAISS, in copies of the bundled embeddings",
    )
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    print(describe())
    backbone = load_backbone()
    manifest = load_manifest()
    if not args.skip_ray:
        bench_ray(backbone, manifest, args.per_file, args.repeats)
    bench_faiss(backbone, manifest, args.worlds)


if __name__ == "__main__":
    main()
