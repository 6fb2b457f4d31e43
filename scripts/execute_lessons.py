"""Execute every lesson once and keep the result, for the slide decks and the website.

The lessons are stored without outputs. Both editions (``scripts/build_slides.py``
and ``scripts/build_site.py``) show them executed, with figures and printed
numbers, so each lesson is executed here, top to bottom in its own folder, and
the executed copy is cached in ``build/executed/<name>.ipynb``. The cache key is a
hash of the notebook, every file of the ``embedkit`` package (its code and its stored
thresholds), ``data/manifest.csv``, the network chosen by ``EMBEDKIT_BACKBONE`` and the precision
``EMBEDKIT_PRECISION`` sets: a change to any of them executes the lesson again. Lessons run in
float32 unless ``EMBEDKIT_PRECISION`` says otherwise, so what they print is the same on every CPU.
The test suite (``tests/test_lessons.py``), the slides
and the site all go through this cache, so each lesson is executed once per network.

``python scripts/execute_lessons.py [NOTEBOOK ...]`` fills the cache (all lessons
by default) and prints how long each lesson took.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
BUILD = REPO / "build"
CACHE = BUILD / "executed"
CELL_TIMEOUT_S = 600
# Reproducible outputs: the networks run in float32 here, whatever the CPU (see embedkit.embeddings).
os.environ.setdefault("EMBEDKIT_PRECISION", "float32")

__all__ = ["lessons", "cache_key", "executed", "execute_all"]


def lessons() -> list[Path]:
    """Every lesson, in teaching order: ``notebooks/NN_*.ipynb``."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def cache_key(path: Path) -> str:
    """Hash of what a lesson's outputs depend on: itself, embedkit's files (code and stored thresholds),
    the bundled data's manifest, the chosen network."""
    h = hashlib.sha256()
    h.update(path.read_bytes())
    manifest = REPO / "data" / "manifest.csv"
    h.update(manifest.read_bytes() if manifest.is_file() else b"")
    package = NOTEBOOKS / "embedkit"
    for source in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(source.relative_to(NOTEBOOKS).as_posix().encode())
        h.update(source.read_bytes())
    h.update(os.environ.get("EMBEDKIT_BACKBONE", "").encode())
    h.update(os.environ.get("EMBEDKIT_PRECISION", "").encode())
    return h.hexdigest()[:16]


def _clean_outputs(nb: nbformat.NotebookNode) -> None:
    """Drop live widgets (progress bars, the labelling widget): a static page cannot run them, they
    would pull scripts, and their text fallback is only the widget's repr (``VBox(children=...)``)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            data = out.get("data", {})
            if data.pop("application/vnd.jupyter.widget-view+json", None) is not None:
                continue
            if out.get("output_type") in ("display_data", "execute_result") and not data:
                continue
            kept.append(out)
        cell.outputs = kept


def executed(path: Path, cache: Path = CACHE, log=print) -> nbformat.NotebookNode:
    """The lesson at ``path`` with its outputs, executed now or taken from the cache.

    A cell that raises stops the build with the lesson's name and the error,
    unless the cell is tagged ``raises-exception`` (``NBVAL_RAISES_EXCEPTION`` cells are).
    """
    key = cache_key(path)
    cached = cache / path.name
    stamp = cache / f"{path.stem}.key"
    if cached.exists() and stamp.exists() and stamp.read_text() == key:
        return nbformat.read(cached, as_version=4)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except Exception as err:  # nbclient raises CellExecutionError and kernel errors
        raise RuntimeError(f"executing {path.name} failed: {err}") from err
    _clean_outputs(nb)
    cache.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, cached)
    stamp.write_text(key)
    log(f"executed {path.name} in {time.perf_counter() - start:.0f} s")
    return nb


def execute_all(
    paths: list[Path] | None = None, cache: Path = CACHE, log=print
) -> dict[str, nbformat.NotebookNode]:
    """Execute (or take from the cache) each lesson, in order: ``{notebook file name: notebook}``."""
    return {p.name: executed(p, cache, log) for p in (paths or lessons())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, metavar="NOTEBOOK")
    args = parser.parse_args()
    nbs = execute_all([p.resolve() for p in args.notebooks] or None)
    print(json.dumps({name: CACHE.joinpath(name).relative_to(REPO).as_posix() for name in nbs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
