"""How long the course takes: each notebook, the unit tests, and the whole test suite.

    python benchmarks/course_timing.py [--skip-suite]

Each notebook is executed on its own under nbval in a fresh kernel, twice: once with
no saved embeddings (as a learner who opens it first would run it) and once with the
file lesson 02 saves in place. The README's lesson table quotes these times. Each time
carries the CPU other processes used meanwhile (in cores, from ``/proc/stat``); a time
taken while others used at least a quarter of a core is marked (!) and is an
overestimate of what the lesson costs on a quiet machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from machine import REPO, cpu_sample, describe, flag, others_cores, table

ARTIFACTS = REPO / "notebooks" / "artifacts"


def run_pytest(*args: str) -> tuple[str, bool]:
    """Seconds (marked (!) when contended) and whether pytest passed; children count as ours."""
    before = cpu_sample()
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    others = others_cores(before, cpu_sample())
    return flag(f"{seconds:.0f}", others >= 0.25) + f" [others {others:.1f} cores]", result.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-suite", action="store_true", help="do not time the whole suite")
    args = parser.parse_args()
    print(describe())

    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    rows = []
    for nb in notebooks:
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        cold, ok_cold = run_pytest(str(nb.relative_to(REPO)))
        # lesson 02 saves the embeddings the later lessons read
        run_pytest(str((REPO / "notebooks" / "02_pretrained_resnet.ipynb").relative_to(REPO)))
        warm, ok_warm = run_pytest(str(nb.relative_to(REPO)))
        status = "ok" if ok_cold and ok_warm else "FAILED"
        rows.append((nb.name, cold, warm, status))
    print(table(rows, ("notebook", "s, no saved embeddings", "s, embeddings saved", "status")))

    unit, ok = run_pytest("tests")
    print(f"\nunit, data and hygiene tests (tests/): {unit} s {'ok' if ok else 'FAILED'}")
    if not args.skip_suite:
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        suite, ok = run_pytest()
        print(f"whole test suite (`pytest`, as CI runs it): {suite} s {'ok' if ok else 'FAILED'}")


if __name__ == "__main__":
    main()
