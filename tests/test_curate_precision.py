"""curate's precision switch and its --verbose split of the time: what ran, and arithmetic that adds up."""

import json
import re
import shutil

import pytest

from embedkit import embeddings
from embedkit.__main__ import main
from embedkit.curate import curate
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
