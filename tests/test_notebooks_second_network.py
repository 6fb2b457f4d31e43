"""Every lesson again under a second genuine network, with strict input checks.

The suite's nbval pass runs the lessons with the network ``load_backbone()`` gives
here (ResNet-18 when its weights are cached, else the offline stand-in). This test
runs each lesson once more, exactly as ``EMBEDKIT_BACKBONE=efficientnet_lite2 python -m
pytest notebooks/NAME.ipynb`` would, so an assert that holds for one network only fails
here. ``EMBEDKIT_STRICT_INPUT=1`` makes every backbone refuse a batch that skipped
``backbone.as_input``: on a CPU such a call works by luck, on a GPU it crashes.
"""

import os
import subprocess
import sys

import pytest

from conftest import REPO

SECOND_NETWORK = "efficientnet_lite2"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_lesson_runs_under_the_second_network(path):
    env = {**os.environ, "EMBEDKIT_BACKBONE": SECOND_NETWORK, "EMBEDKIT_STRICT_INPUT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(path.relative_to(REPO)), "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, (
        f"{path.name} fails with EMBEDKIT_BACKBONE={SECOND_NETWORK}:\n{result.stdout[-6000:]}"
    )
