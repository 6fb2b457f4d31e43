"""curate's precision switch, its --verbose split of time and memory (what ran, arithmetic that adds up),
and what a run of the tool imports."""

import json
import os
import re
import shutil

import pytest

from embedkit import embeddings
from embedkit.__main__ import main
from embedkit.curate import curate, peak_mib
from embedkit.embeddings import PRECISION_VAR, bfloat16_supported


@pytest.fixture(scope="module")
def folder(manifest, tmp_path_factory):
    root = tmp_path_factory.mktemp("precision") / "photos"
    for row in manifest.head(6).itertuples():
        target = root / row.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(row.file, target)
    return root


def test_cli_records_the_precision_and_splits_the_time(folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["curate", str(folder), "--out", str(out), "--precision", "float32", "--verbose", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert json.loads((out / "findings.json").read_text(encoding="utf-8"))["precision"] == "float32"
    total = float(re.search(r"time: ([\d.]+) s in all \(\S+ in float32\)", printed).group(1))
    steps = {m.group(1): float(m.group(2)) for m in re.finditer(r"^  (\S.*?)\s+(-?[\d.]+) s", printed, re.M)}
    for step in ("imports", "scan", "load backbone", "hash and decode", "embed", "search", "write results"):
        assert step in steps
    named = sum(v for k, v in steps.items() if k != "other" and not k.endswith("(summed over threads)"))
    rounding = 0.005 * (len(steps) + 1)  # every number is printed to 0.01 s
    assert named <= total + rounding and steps["other"] == pytest.approx(total - named, abs=rounding)
    peaks = [float(p) for p in re.findall(r"peak\s+(\d+) MiB", printed)]
    if peak_mib() is not None:  # the process's highest memory so far: it can only grow from step to step
        assert len(peaks) >= 7 and peaks == sorted(peaks) and peaks[-1] <= peak_mib() + 1


HIGH_WATER = """
import mmap
from embedkit.curate import peak_mib


def resident_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


before = peak_mib()
block = mmap.mmap(-1, 200 * 2**20)
block.write(b"x" * len(block))  # touched: 200 MiB resident
block.close()  # and handed back to the system at once
print(before, peak_mib(), resident_mib())
"""


def test_peak_memory_is_the_high_water_mark_not_what_is_resident_now():
    # In a fresh process: 200 MiB touched and handed back raise the peak by 200 MiB, while what is resident
    # falls back. A function that read the resident memory (VmRSS) instead of the peak would fail.
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/status")
    run = subprocess.run([sys.executable, "-c", HIGH_WATER], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    before, after, resident = map(float, run.stdout.split())
    assert after - before >= 190 and after - resident >= 150, run.stdout


RUN_THE_TOOL = """
import sys
from embedkit.__main__ import main
code = main(["curate", sys.argv[1], "--out", sys.argv[2], "--quiet"])
import os
heavy = ("pandas", "scipy.cluster", "scipy.spatial", "matplotlib", "sklearn")
print(code, os.environ.get("OMP_WAIT_POLICY"), sorted(m for m in heavy if m in sys.modules))
"""


def test_curating_a_folder_imports_no_table_or_plotting_library(folder, tmp_path):
    # pandas, SciPy's clustering, matplotlib and scikit-learn each add to the tool's start-up and memory;
    # a folder with no chain of pairs to cut needs none of them.
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", RUN_THE_TOOL, str(folder), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, PRECISION_VAR: "float32"},
    )
    assert run.returncode == 0, run.stderr
    code, policy, *_ = run.stdout.split()
    assert code == "0" and run.stdout.strip().endswith("[]"), run.stdout
    assert policy == "PASSIVE"  # set before PyTorch loaded OpenMP: waiting threads sleep


def test_the_tool_keeps_an_openmp_wait_policy_the_user_chose(folder, tmp_path):
    import subprocess
    import sys

    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        run = subprocess.run(
            [sys.executable, "-c", RUN_THE_TOOL, str(folder), str(tmp_path / next(iter(chosen)))],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **{k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
                PRECISION_VAR: "float32",
                **chosen,
            },
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.split()[1] == chosen.get("OMP_WAIT_POLICY", "None"), run.stdout


def test_cli_refuses_an_unknown_precision_before_any_work(folder, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["curate", str(folder), "--out", str(tmp_path / "a"), "--precision", "fp8"])
    assert exit_.value.code == 2
    monkeypatch.setenv(PRECISION_VAR, "half")
    assert main(["curate", str(folder), "--out", str(tmp_path / "b")]) == 2
    assert PRECISION_VAR in capsys.readouterr().err
    assert not (tmp_path / "b" / "findings.json").exists()


def test_bfloat16_is_used_only_where_it_is_native(folder, backbone):
    if bfloat16_supported(backbone.device):
        findings = curate(folder, backbone, progress=False, precision="bfloat16")
        assert findings.precision == "bfloat16"
    else:
        embeddings._warned_no_native.clear()  # the warning comes once per process
        with pytest.warns(UserWarning, match="no native bfloat16"):
            findings = curate(folder, backbone, progress=False, precision="bfloat16")
        assert findings.precision == "float32"
    exact = curate(folder, backbone, progress=False)  # the suite's default: float32
    assert exact.precision == "float32"
    assert findings.near_groups == exact.near_groups and findings.exact_groups == exact.exact_groups
