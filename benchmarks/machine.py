"""Describe the machine a benchmark ran on, and time things the same way everywhere."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    import numpy as np
    import torch

    return (
        f"{time.strftime('%Y-%m-%d')} | {cpu_model()} | {os.cpu_count()} logical cores | "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads) | numpy {np.__version__} | "
        f"python {platform.python_version()}"
    )


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Fastest of ``repeats`` wall-clock runs after ``warmup`` untimed ones, in seconds.

    The minimum is the least noisy estimate of what the code costs on a shared machine.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_gflops(size: int = 2048, repeats: int = 15) -> float:
    """This machine's float32 matrix-multiply speed with torch: the practical compute ceiling."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = best_time(lambda: torch.mm(a, b), repeats=repeats)
    return 2 * size**3 / seconds / 1e9


def table(rows: list[tuple], header: tuple) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
