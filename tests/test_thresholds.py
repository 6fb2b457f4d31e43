"""The stored near-duplicate thresholds are what the package's rule gives on the bundled data.

``scripts/calibrate_thresholds.py --check`` recomputes every measured entry of
``thresholds.json`` (embedding the bundled images with each offline network, about
15-25 s the first time, cached under notebooks/artifacts/ afterwards), so a stored number
can never drift from the rule.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from embedkit.backbones import NETWORKS, calibration

pytestmark = pytest.mark.slow  # embeds the bundled set with both offline networks

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "calibrate_thresholds.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("calibrate_thresholds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured(script):
    return {name: script.calibrate(name) for name in script.offline_networks()}


def test_every_offline_network_is_measured_and_every_other_is_a_stated_default(script):
    stored = json.loads(script.THRESHOLDS_FILE.read_text(encoding="utf-8"))
    assert set(stored) == set(NETWORKS)
    assert script.offline_networks() == ["efficientnet_lite0", "efficientnet_lite2"]
    for name in NETWORKS:
        entry = calibration(name)
        assert entry.measured == NETWORKS[name].offline, name
        assert 0 < entry.threshold < 1
        if not entry.measured:
            assert entry.note.startswith("NOT measured")


def test_stored_thresholds_equal_what_the_rule_gives(script, measured):
    stored = json.loads(script.THRESHOLDS_FILE.read_text(encoding="utf-8"))
    assert script.differences(stored, measured) == [], "run `python scripts/calibrate_thresholds.py`"
    for name, entry in measured.items():
        # One grid step apart at most: another CPU's rounding can move a pair across a grid point.
        assert abs(calibration(name).threshold - entry["threshold"]) <= 0.011
        held = calibration(name).details["held_out"]
        # The stored value is the rule on every photo group; folds choose on fewer groups.
        assert held["threshold_min"] <= held["threshold_median"] <= held["threshold_max"]
        assert entry["in_sample"]["merges"] == 0


def test_check_fails_when_a_stored_value_drifts(script, measured, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(script, "calibrate", lambda name: measured[name])
    stored = json.loads(script.THRESHOLDS_FILE.read_text(encoding="utf-8"))
    good = tmp_path / "thresholds.json"
    good.write_text(json.dumps(stored), encoding="utf-8")
    assert script.main(["--check", "--file", str(good)]) == 0

    # One grid step is within another CPU's rounding; three are a drift.
    nudged = json.loads(json.dumps(stored))
    nudged["efficientnet_lite0"]["threshold"] = round(stored["efficientnet_lite0"]["threshold"] + 0.01, 2)
    nudged["efficientnet_lite0"]["held_out"]["folds_at_stored"] += 1
    (tmp_path / "nudged.json").write_text(json.dumps(nudged), encoding="utf-8")
    assert script.main(["--check", "--file", str(tmp_path / "nudged.json")]) == 0

    stored["efficientnet_lite0"]["threshold"] = round(stored["efficientnet_lite0"]["threshold"] + 0.03, 2)
    drifted = tmp_path / "drifted.json"
    drifted.write_text(json.dumps(stored), encoding="utf-8")
    assert script.main(["--check", "--file", str(drifted)]) == 1
    assert "efficientnet_lite0: stored threshold" in capsys.readouterr().err

    # Writing restores what the rule gives and keeps the unmeasured defaults.
    assert script.main(["--file", str(drifted)]) == 0
    assert json.loads(drifted.read_text(encoding="utf-8")) == json.loads(script.THRESHOLDS_FILE.read_text())
