"""The benchmarks' contention accounting, and that their printed ratios come from their numbers.

Timings are never asserted: only that the arithmetic on them is right.
"""

import re
import subprocess
import sys

import machine
import pytest

from conftest import REPO

STAT = "cpu  {user} 0 {system} {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\n"
SELF = "4242 (python3 my bench) R 1 2 3 4 5 6 7 8 9 10 {utime} {stime} {cutime} 0 20 0 1 0\n"


def sample(user, system, idle, steal, utime, stime=0, cutime=0):
    busy, total = machine.parse_proc_stat(STAT.format(user=user, system=system, idle=idle, steal=steal))
    own = machine.parse_self_stat(SELF.format(utime=utime, stime=stime, cutime=cutime))
    return machine.CpuSample(busy, total, own)


def test_parse_proc_stat_reads_the_aggregate_line():
    busy, total = machine.parse_proc_stat(STAT.format(user=100, system=20, idle=500, steal=7))
    assert (busy, total) == (127, 627)  # steal counts as busy (other machines), idle does not


def test_parse_self_stat_survives_spaces_in_the_name():
    assert machine.parse_self_stat(SELF.format(utime=30, stime=5, cutime=2)) == 37


def test_others_cores_is_everyone_minus_this_process():
    # One second on 2 CPUs = 200 ticks. We used 100 (one core); everyone used 190.
    before = sample(1000, 0, 1000, 0, utime=50)
    after = sample(1180, 10, 1010, 0, utime=140, stime=10)
    assert machine.others_cores(before, after, cpus=2) == pytest.approx(0.9)
    # Alone on the machine: all busy ticks are ours.
    quiet = sample(1100, 0, 1100, 0, utime=150)
    assert machine.others_cores(before, quiet, cpus=2) == 0.0
    # Steal (the hypervisor running someone else) counts against us too.
    stolen = sample(1100, 0, 1050, 50, utime=150)
    assert machine.others_cores(before, stolen, cpus=2) == pytest.approx(0.5)
    assert machine.others_cores(None, after) != machine.others_cores(None, after)  # NaN: unknown


def test_ratio_uses_clean_pairs_and_flags_when_there_are_none():
    R = machine.Repeat
    a = [R(2.0, 0.0), R(9.0, 1.5), R(2.2, 0.1)]
    b = [R(1.0, 0.0), R(1.0, 0.0), R(1.0, 0.0)]
    assert machine.ratio(a, b) == (pytest.approx(2.1), False)  # the contended pair is dropped
    assert machine.best(a) == (2.0, False)
    contended = [R(3.0, 1.0), R(5.0, 1.0)]
    assert machine.ratio(contended, [R(1.0, 0.0), R(1.0, 0.0)]) == (pytest.approx(4.0), True)
    assert machine.best(contended) == (3.0, True)
    assert machine.flag("4.00", True) == "4.00 (!)" and machine.flag("4.00", False) == "4.00"


def test_interleaved_alternates_the_sides():
    calls = []
    runs = machine.interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2, warmup=1
    )
    assert calls == ["a", "b"] * 3
    assert [len(r) for r in runs.values()] == [2, 2]


def test_printed_tables_are_read_back_by_column_name():
    text = "note\n" + machine.table([(1, "a b"), (22, "c")], ("n", "name")) + "\nafter\n"
    assert machine.read_tables(text) == [[{"n": "1", "name": "a b"}, {"n": "22", "name": "c"}]]


def run_benchmark(*args):
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def number(cell: str) -> float:
    return float(cell.replace("(!)", "").strip())


@pytest.mark.slow
def test_embedding_benchmark_ratios_come_from_its_rates():
    out = run_benchmark(
        "bench_embedding.py",
        "--images",
        "2",
        "--networks",
        "efficientnet_lite0",
        "--batch-sizes",
        "1",
        "2",
        "--repeats",
        "1",
        "--fidelity-images",
        "4",
    )
    paths = next(t for t in machine.read_tables(out) if t and "path" in t[0])
    rows = {row["path"]: row for row in paths}
    bare = number(rows["forward float32 (ready tensors)"]["images/s"])
    pipe = rows["embed_images pipeline (from files)"]
    # With one repeat per side, the ratio is the two printed rates' ratio, to the rounding
    # of rates printed to 0.1 (on a busy machine they can be as low as 0.5 images/s).
    rate = number(pipe["images/s"])
    expected = rate / bare
    ratio = number(pipe["x float32 forward"])
    assert ratio == pytest.approx(expected, abs=expected * (0.05 / rate + 0.05 / bare) + 0.005)
    assert re.search(r"\d+ of \d+ repeats contended", out)
    assert re.search(r"min cosine to float32 0\.9\d+", out) or "not native" in out


@pytest.mark.slow
def test_similarity_benchmark_checks_its_results():
    out = run_benchmark("bench_similarity.py", "--sizes", "300", "--pair-list-n", "200")
    row = next(r for t in machine.read_tables(out) for r in t if r.get("n") == "300")
    assert row["same top-k as FAISS"] == "1.0000" and row["pairs differing"] == "0"
    bf16 = row["bf16 results = float32"]
    assert bf16.startswith("yes") or "not native" in bf16
    assert "same pairs: True" in out
