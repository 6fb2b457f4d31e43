"""Peak memory of the curate tool's two big steps, before and after bounding them.

    python benchmarks/bench_curate_memory.py [--side 9400] [--files 10000]

Each measurement runs in a fresh process and reports how far its peak resident memory
(``getrusage``, Linux kilobytes) rose above what the process held after its imports:

- **16-bit images**: a ``side`` × ``side`` 16-bit grayscale PNG (a few hundred kB on disk)
  opened with :func:`embedkit.images.load_rgb`, against the same image converted the way it
  was before (one float64 copy of every pixel, then rounding);
- **near-duplicate pairs**: ``files`` vectors that are all near copies of each other, so
  every one of the ``files²/2`` pairs passes the threshold. The whole pair list joined at
  once (:func:`~embedkit.similarity.near_duplicate_pairs` then
  :func:`~embedkit.pairs.connected_groups`, as before) against the blockwise search of
  :func:`embedkit.grouping.search_groups`, which joins each block's pairs and drops them.

Both sides of each comparison run in the same invocation, one after the other; the ratio
is the number to read (absolute megabytes depend on the allocator and the libraries).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PRELUDE = """
import resource, sys
import numpy as np
from PIL import Image
import embedkit.grouping, embedkit.images
from embedkit.pairs import connected_groups
from embedkit.similarity import near_duplicate_pairs

def peak_kib():  # this process's own peak (VmHWM); ru_maxrss also counts the parent it was forked from
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

CASES = {
    "16-bit, before": """
        before = peak_kib()
        with Image.open(sys.argv[1]) as image:
            image.load()
            values = np.asarray(image, dtype=np.float64) / 257.0
            gray = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
            del values
            rgb = gray.convert("RGB")
        print(peak_kib() - before, rgb.size[0])
    """,
    "16-bit, now": """
        before = peak_kib()
        rgb = embedkit.images.load_rgb(sys.argv[1])
        print(peak_kib() - before, rgb.size[0])
    """,
    "pairs, before": """
        n = int(sys.argv[1])
        rng = np.random.default_rng(0)
        vectors = (1.0 + 0.01 * rng.standard_normal((n, 64))).astype(np.float32)
        before = peak_kib()
        pairs, scores = near_duplicate_pairs(vectors, threshold=0.9)
        labels = connected_groups(n, pairs)
        print(peak_kib() - before, len(pairs), len(np.unique(labels)))
    """,
    "pairs, now": """
        n = int(sys.argv[1])
        rng = np.random.default_rng(0)
        vectors = (1.0 + 0.01 * rng.standard_normal((n, 64))).astype(np.float32)
        before = peak_kib()
        labels, _ = embedkit.grouping.search_groups(vectors, 0.9, np.arange(n))
        print(peak_kib() - before, n * (n - 1) // 2, len(np.unique(labels)))
    """,
}


def measure(case: str, argument: str) -> list[int]:
    """Run one case in a fresh process: its peak memory rise in KiB and what it printed."""
    script = PRELUDE + textwrap.dedent(CASES[case])
    done = subprocess.run(
        [sys.executable, "-c", script, argument], capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{done.stderr[-2000:]}")
    return [int(x) for x in done.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=9400, help="side of the 16-bit test image")
    parser.add_argument("--files", type=int, default=10_000, help="vectors that are all near copies")
    args = parser.parse_args()
    if sys.platform != "linux":
        sys.exit("peak memory is read from getrusage in kilobytes, as Linux reports it")

    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "scan16.png")
        ramp = (np.arange(args.side, dtype=np.uint32) * 65535 // max(1, args.side - 1)).astype(np.uint16)
        Image.fromarray(np.broadcast_to(ramp, (args.side, args.side)).copy()).save(path)
        size_kb = path.stat().st_size / 1024
        old = measure("16-bit, before", str(path))
        new = measure("16-bit, now", str(path))
    print(f"16-bit {args.side}x{args.side} PNG ({size_kb:,.0f} kB on disk), peak memory rise:")
    print(f"  float64 conversion (before): {old[0] / 1024:8,.0f} MiB")
    print(
        f"  load_rgb (now):              {new[0] / 1024:8,.0f} MiB   ratio before/now {old[0] / new[0]:.1f}x"
    )
    rgb_mib = args.side * args.side * 3 / 2**20
    print(f"  (the 8-bit RGB result alone: {rgb_mib:,.0f} MiB)")

    old = measure("pairs, before", str(args.files))
    new = measure("pairs, now", str(args.files))
    assert old[1:] == new[1:], (old, new)  # the same pairs, the same single group
    print(f"\n{args.files:,} near-identical vectors, {old[1]:,} pairs, {old[2]} group; peak memory rise:")
    print(f"  every pair held, then joined (before): {old[0] / 1024:8,.0f} MiB")
    print(
        f"  joined block by block (now):           {new[0] / 1024:8,.0f} MiB   ratio {old[0] / new[0]:.1f}x"
    )


if __name__ == "__main__":
    main()
