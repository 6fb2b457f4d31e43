"""scripts/make_figures.py rebuilds the figures in images/ (same files; bytes are not compared)."""

import subprocess
import sys

from PIL import Image

from conftest import REPO

SCRIPT = REPO / "scripts" / "make_figures.py"


def test_make_figures_regenerates_every_figure(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    made = sorted(p.name for p in tmp_path.iterdir())
    stored = sorted(p.name for p in (REPO / "images").iterdir() if not p.name.startswith("."))
    assert made, "the script wrote no figure"
    assert made == stored, "images/ and the script's output differ: run `python scripts/make_figures.py`"
    for name in made:
        with Image.open(tmp_path / name) as new, Image.open(REPO / "images" / name) as old:
            assert new.format == "PNG"
            assert new.size == old.size, f"{name}: {new.size} regenerated, {old.size} stored"
