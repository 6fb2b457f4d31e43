"""Notebook hygiene: stored clean, in the course's shape, portable, and convertible to slides.

Executing the notebooks is nbval's job (pytest collects notebooks/*.ipynb).
"""

import re
import subprocess
import sys

import nbformat
import pytest

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def _sync_module():
    import sync_notebooks

    return sync_notebooks


def test_there_are_lessons():
    assert [p.name for p in NOTEBOOKS][:1] == ["00_start_here.ipynb"]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name) for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs"
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_in_the_course_shape(path):
    """Badge, Colab cell and slide types as scripts/sync_notebooks.py writes them."""
    sync = _sync_module()
    nb = nbformat.read(path, as_version=4)
    want = sync.synced(nb, path.name, sync.course_settings())
    assert nbformat.writes(want) == nbformat.writes(nb), (
        "run `python scripts/sync_notebooks.py` and commit the result"
    )


def test_readme_lists_every_lesson_with_its_badge():
    sync = _sync_module()
    readme = (REPO / "README.md").read_text()
    assert sync.readme_synced(readme, sync.course_settings()) == readme
    for path in NOTEBOOKS:
        assert f"(notebooks/{path.name})" in readme
        assert sync.colab_url(path.name, sync.course_settings()) in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_template_order(path):
    """Title, motivation, objectives and run time first; then the badge; then the Colab cell."""
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert "What you will learn" in title.source and "Run time" in title.source
    assert [c.metadata.get("course") for c in nb.cells[1:3]] == ["badge", "colab-setup"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_absolute_paths(path):
    text = path.read_text()
    for pattern in [r"/home/\w", r"/root/", r"/Users/\w", r"[A-Z]:\\\\", r"/work/", r"/tmp/"]:
        assert not re.search(pattern, text), f"{path.name} mentions a machine-specific path ({pattern})"


def test_lint_is_clean():
    """ruff over the package, scripts, tests, benchmarks and the notebooks themselves."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted():
    """``ruff format`` over the package, scripts, benchmarks and tests (lessons keep their layout)."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, "run `ruff format`:\n" + result.stdout + result.stderr


def test_a_new_lesson_needs_only_its_title_cell():
    """The sync script inserts the badge and Colab cells; the set-up installs what the lesson imports."""
    sync = _sync_module()
    settings = sync.course_settings()
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# 99 · New lesson\n\nWhat you will learn ... Run time ..."),
            nbformat.v4.new_code_cell("from embedkit.ann import build_flat\nimport numpy as np"),
        ]
    )
    done = sync.synced(nb, "99_new_lesson.ipynb", settings)
    assert [c.metadata.get("course") for c in done.cells] == [None, "badge", "colab-setup", None]
    assert sync.colab_url("99_new_lesson.ipynb", settings) in done.cells[1].source
    setup = done.cells[2].source
    assert 'needed = {"faiss": "faiss-cpu"}' in setup and "ray" not in setup  # via embedkit.ann, nothing else
    assert sync.synced(done, "99_new_lesson.ipynb", settings) == done  # syncing again changes nothing
    plain = sync.synced(nbformat.v4.new_notebook(cells=[nb.cells[0]]), "99_x.ipynb", settings)
    # a lesson that needs nothing installs only the offline network $EMBEDKIT_BACKBONE may pick
    assert "needed = {}" in plain.cells[2].source
    assert 'for network in [os.environ.get("EMBEDKIT_BACKBONE", "")]:' in plain.cells[2].source
    exercise = nbformat.v4.new_markdown_cell("Run it again with `EMBEDKIT_BACKBONE=efficientnet_lite2`.")
    named = sync.synced(nbformat.v4.new_notebook(cells=[nb.cells[0], exercise]), "99_x.ipynb", settings)
    assert 'for network in ["efficientnet_lite2", os.environ' in named.cells[2].source
    assert sync.modules_colab_lacks(
        nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell("import ray\nfrom embedkit import distributed"),
            ]
        )
    ) == ["ray"]
