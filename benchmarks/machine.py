"""Describe the machine a benchmark ran on, and time things the same way everywhere.

On a shared machine another process can take a core in the middle of a measurement.
:func:`timed` therefore records, beside each repeat's wall-clock time, how much CPU the
*other* processes used meanwhile: all CPU time from ``/proc/stat`` (including ``steal``,
time the hypervisor gave to other machines) minus this process's own (``/proc/self/stat``:
utime + stime of all its threads, plus waited-for children). A repeat during which others
used at least :data:`CONTENDED_CORES` cores on average is *contended*. :func:`interleaved`
runs the two sides of a ratio alternately, and :func:`ratio` computes a ratio from clean
repeats only, or says that it could not.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
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


# --------------------------------------------------------------------------- contention

#: Others' average CPU use (in cores) from which a repeat counts as contended.
CONTENDED_CORES = 0.25


@dataclass(frozen=True)
class CpuSample:
    """CPU time counters at one moment, in clock ticks (``USER_HZ``, 100 per second on Linux).

    Attributes:
        busy: ticks all CPUs spent not idle (user, nice, system, irq, softirq, steal).
        total: all ticks of all CPUs, idle and iowait included.
        own: ticks this process (all threads, plus waited-for children) used.
    """

    busy: int
    total: int
    own: int


def parse_proc_stat(text: str) -> tuple[int, int]:
    """``(busy, total)`` ticks from the aggregate ``cpu`` line of ``/proc/stat``."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]] + [0] * max(0, 9 - len(fields))
            user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
            busy = user + nice + system + irq + softirq + steal
            return busy, busy + idle + iowait
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def parse_self_stat(text: str) -> int:
    """utime + stime + cutime + cstime ticks from ``/proc/<pid>/stat`` (the name may hold spaces)."""
    fields = text[text.rindex(")") + 2 :].split()
    # After the name: state is field 3 of the file, so utime (field 14) is index 11 here.
    return sum(int(v) for v in fields[11:15])


def cpu_sample() -> CpuSample | None:
    """The counters now, or ``None`` where ``/proc`` is not there (not Linux)."""
    try:
        busy, total = parse_proc_stat(Path("/proc/stat").read_text())
        own = parse_self_stat(Path("/proc/self/stat").read_text())
    except (OSError, ValueError):
        return None
    return CpuSample(busy, total, own)


def others_cores(before: CpuSample | None, after: CpuSample | None, cpus: int | None = None) -> float:
    """Average number of cores other processes used between two samples (NaN if unknown).

    ``(Δbusy - Δown) / (Δtotal / cpus)``: all CPUs' busy ticks minus this process's, over
    the ticks one CPU had in the interval.
    """
    if before is None or after is None:
        return float("nan")
    cpus = cpus or os.cpu_count() or 1
    per_cpu = (after.total - before.total) / cpus
    if per_cpu <= 0:
        return 0.0
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, others / per_cpu)


@dataclass(frozen=True)
class Repeat:
    """One timed run: wall-clock seconds and the cores other processes used meanwhile."""

    seconds: float
    others: float

    @property
    def contended(self) -> bool:
        return self.others >= CONTENDED_CORES  # NaN (unknown) is not flagged


def timed(fn: Callable[[], object]) -> Repeat:
    """Run ``fn`` once; its wall-clock time and others' CPU use meanwhile."""
    before = cpu_sample()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return Repeat(seconds, others_cores(before, cpu_sample()))


def interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int = 3,
    warmup: int = 1,
    timer: Callable[[Callable[[], object]], Repeat] = timed,
) -> dict[str, list[Repeat]]:
    """Each function ``repeats`` times, in turn (a, b, a, b, ...), after ``warmup`` untimed rounds.

    Alternating means a neighbour's load that comes and goes hits every side alike.
    ``timer`` times one call (default :func:`timed`; a benchmark whose work runs in other
    processes passes one that counts those processes as its own).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    runs: dict[str, list[Repeat]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            runs[name].append(timer(fn))
    return runs


def best(runs: list[Repeat]) -> tuple[float, bool]:
    """Fastest clean repeat's seconds and False; if every repeat was contended, the fastest and True."""
    clean = [r.seconds for r in runs if not r.contended]
    return (min(clean), False) if clean else (min(r.seconds for r in runs), True)


def ratio(numerator: list[Repeat], denominator: list[Repeat]) -> tuple[float, bool]:
    """``time(numerator) / time(denominator)`` from repeats that ran side by side.

    Uses the pairs (same round of :func:`interleaved`) in which neither side was
    contended, and returns their median with False. With no clean pair, the median
    over all pairs with True: the caller must flag it.
    """
    pairs = list(zip(numerator, denominator, strict=True))
    clean = [a.seconds / b.seconds for a, b in pairs if not (a.contended or b.contended)]
    if clean:
        return statistics.median(clean), False
    return statistics.median(a.seconds / b.seconds for a, b in pairs), True


def flag(text: str, contended: bool) -> str:
    """``text`` marked when it comes from contended repeats only."""
    return f"{text} (!)" if contended else text


def contention_note(runs: dict[str, list[Repeat]]) -> str:
    """One line: how many repeats were contended and the most CPU others took."""
    all_runs = [r for rs in runs.values() for r in rs]
    bad = [r for r in all_runs if r.contended]
    worst = max((r.others for r in all_runs), default=0.0)
    return (
        f"{len(bad)} of {len(all_runs)} repeats contended (others used >= {CONTENDED_CORES} "
        f"cores; at most {worst:.2f} of {os.cpu_count()}); (!) marks a number from contended "
        "repeats only"
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


def gemm_gflops(size: int = 2048, repeats: int = 15, dtype: str = "float32") -> float:
    """This machine's matrix-multiply speed with torch in ``dtype``: a measured lower bound of its peak."""
    import torch

    a = torch.randn(size, size).to(getattr(torch, dtype))
    b = torch.randn(size, size).to(getattr(torch, dtype))
    seconds = best(interleaved({"mm": lambda: torch.mm(a, b)}, repeats=repeats)["mm"])[0]
    return 2 * size**3 / seconds / 1e9


def clock_mhz() -> float:
    """The clock ``/proc/cpuinfo`` reports ("cpu MHz"); in a VM, often the nominal rate, not the boost."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return float("nan")


def fp32_flops_per_cycle() -> tuple[int, str]:
    """Float32 FLOP per cycle per core of this CPU's FMA units, and where that number comes from."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = fields.get("flags", "").split()
    family = int(fields.get("cpu family", "0") or 0)
    if "AuthenticAMD" in info and family == 25 and "avx512f" in flags:
        return 32, (
            "AMD Zen 4: two 256-bit FMA pipes, AVX-512 split in two halves "
            "(AMD Software Optimization Guide, family 19h) = 2 x 8 lanes x 2 FLOP"
        )
    if "AuthenticAMD" in info and family == 26 and "avx512f" in flags:
        return 64, (
            "AMD Zen 5 server cores: two full-width 512-bit FMA pipes "
            "(AMD Software Optimization Guide, family 1Ah) = 2 x 16 lanes x 2 FLOP"
        )
    if "avx512f" in flags:
        vendor = "AMD" if "AuthenticAMD" in info else "Intel server"
        return 64, f"two 512-bit FMA units ({vendor} cores, assumed) = 2 x 16 lanes x 2 FLOP"
    if "fma" in flags:
        return 32, "two 256-bit FMA units = 2 x 8 lanes x 2 FLOP"
    return 8, "no FMA flags: one 128-bit unit assumed"


@dataclass(frozen=True)
class Peak:
    """What this machine can compute, measured and on paper (GFLOP/s)."""

    gemm_fp32: float
    gemm_bf16: float
    theoretical_fp32: float
    theoretical_note: str

    def describe(self) -> str:
        return (
            f"peak: float32 GEMM {self.gemm_fp32:.0f} GFLOP/s, bfloat16 GEMM {self.gemm_bf16:.0f} GFLOP/s "
            f"(torch.mm 2048x2048, best clean repeat: measured lower bounds of the chip's peak); "
            f"theoretical float32 FMA peak {self.theoretical_fp32:.0f} GFLOP/s = "
            f"{os.cpu_count()} cores x {self.theoretical_note}"
            + (
                " -- below the measured GEMM, so the cores run faster than the clock /proc/cpuinfo reports"
                if self.theoretical_fp32 < self.gemm_fp32
                else ""
            )
        )


def chip_peak(repeats: int = 7) -> Peak:
    per_cycle, why = fp32_flops_per_cycle()
    mhz = clock_mhz()
    return Peak(
        gemm_fp32=gemm_gflops(repeats=repeats),
        gemm_bf16=gemm_gflops(repeats=repeats, dtype="bfloat16"),
        theoretical_fp32=(os.cpu_count() or 1) * per_cycle * mhz / 1e3,
        theoretical_note=f"{per_cycle} FLOP/cycle ({why}) x {mhz:.0f} MHz (/proc/cpuinfo 'cpu MHz')",
    )


def table(rows: list[tuple], header: tuple) -> str:
    """A plain-text table: a header line, a ``-+-`` rule, one line per row; cells joined by `` | ``."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def read_tables(text: str) -> list[list[dict[str, str]]]:
    """Every :func:`table` in a benchmark's printed output, as rows keyed by column name."""
    lines = text.splitlines()
    tables = []
    for i in range(1, len(lines)):
        rule = lines[i]
        if not rule or set(rule) - {"-", "+"} or "-+-" not in rule:
            continue
        header = [c.strip() for c in lines[i - 1].split(" | ")]
        rows = []
        for line in lines[i + 1 :]:
            cells = [c.strip() for c in line.split(" | ")]
            if len(cells) != len(header):
                break
            rows.append(dict(zip(header, cells, strict=True)))
        tables.append(rows)
    return tables
