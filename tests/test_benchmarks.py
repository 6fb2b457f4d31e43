"""The benchmark scripts still run (on tiny sizes). Their timings are never asserted."""

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("args", [
    ["bench_similarity.py", "--sizes", "300", "--pair-list-n", "200"],
    ["bench_embedding.py", "--images", "4", "--batch-size", "2", "--arch", "standin", "--no-variants"],
], ids=["similarity", "embedding"])
def test_benchmark_runs(args):
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / args[0]), *args[1:]],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x bare forward" in result.stdout or "top_k/GEMM" in result.stdout
