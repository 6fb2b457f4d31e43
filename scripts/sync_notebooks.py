"""Keep every lesson notebook in the course's shape, from one source of truth.

For each ``notebooks/*.ipynb`` this script

- writes the Open-in-Colab badge cell and the Colab-only set-up cell from the
  repository address in ``pyproject.toml`` (``[tool.course]``), so the address
  lives in one place, inserting both after the title cell of a new lesson; the
  set-up cell installs only the packages Colab lacks that this lesson imports;
- sets each cell's slide type from its headings (``#``/``##`` start a slide,
  ``###`` a sub-slide, a cell that opens with display math ``$$`` is a fragment,
  the Colab set-up cell and cells with metadata ``"slides": "skip"`` are skipped);
  ``scripts/build_slides.py`` builds the decks from these and fits each slide
  (it also reads ``"slides": "output"``, ``"slides": {"lines": N}`` and ``"notes"``);
- tags each cell that fails on purpose (first line ``# NBVAL_RAISES_EXCEPTION``)
  ``raises-exception``, so "run all" and nbconvert go on past it;
- strips outputs and execution counts and sets the ``python3`` kernel, so
  notebooks are stored clean;
- points every Open-in-Colab link in ``README.md`` at the same address.

Run ``python scripts/sync_notebooks.py`` after editing a notebook; ``--check``
changes nothing and exits 1 if a notebook is out of shape (the tests do the same).
Give notebook paths to sync only those (``python scripts/sync_notebooks.py
notebooks/03_cosine_similarity.ipynb``); with none, every lesson and the README
are synced.

A notebook marks the two managed cells with ``metadata.course`` set to
``"badge"`` and ``"colab-setup"``; they follow the title cell. A new lesson needs
only its title cell: the script adds the two.
"""

from __future__ import annotations

import argparse
import copy
import functools
import re
import sys
from pathlib import Path

import nbformat

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"

# Modules a lesson may import that Colab does not preinstall, with their pip names.
COLAB_MISSING = {"faiss": "faiss-cpu", "ray": "ray[data]"}
# embedkit modules that import one of those.
EMBEDKIT_NEEDS = {"ann": "faiss", "distributed": "ray"}

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def course_settings() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["course"]


def badge_source(notebook_name: str, settings: dict) -> str:
    url = colab_url(notebook_name, settings)
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def colab_url(notebook_name: str, settings: dict) -> str:
    return (
        f"https://colab.research.google.com/github/{settings['repository']}/blob/"
        f"{settings['branch']}/notebooks/{notebook_name}"
    )


def readme_synced(text: str, settings: dict) -> str:
    """README text with every Colab link rewritten to the configured address."""
    pattern = r"https://colab\.research\.google\.com/github/[^)\s]*/notebooks/([\w.-]+\.ipynb)"
    return re.sub(pattern, lambda m: colab_url(m.group(1), settings), text)


def modules_colab_lacks(nb: nbformat.NotebookNode) -> list[str]:
    """The modules of ``COLAB_MISSING`` this notebook imports, directly or through embedkit."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and c.metadata.get("course") is None)
    found = set()
    for module in COLAB_MISSING:
        if re.search(rf"^\s*(import|from)\s+{module}\b", code, flags=re.MULTILINE):
            found.add(module)
    for submodule, module in EMBEDKIT_NEEDS.items():
        if re.search(rf"embedkit\.{submodule}\b|from embedkit import [\w, ]*\b{submodule}\b", code):
            found.add(module)
    return sorted(found)


def _module_name(requirement: str) -> str:
    """The import name a PyPI requirement's project name stands for (``efficientnet-lite-pytorch==0.1.0``)."""
    return re.sub(r"[-.]", "_", re.split(r"[=<>!~\[;]", requirement)[0]).lower()


@functools.lru_cache(maxsize=1)
def offline_networks() -> dict[str, dict[str, str]]:
    """``{network: {module: pip requirement}}`` for every network whose weights ship in a package.

    Read from ``embedkit.backbones.NETWORKS`` (each entry's ``PackageWeights``), so the set-up
    cells name the same packages ``load_backbone`` asks for.
    """
    from embedkit.backbones import NETWORKS

    found = {}
    for name, net in NETWORKS.items():
        if not net.offline:
            continue
        by_module = {_module_name(req): req for req in net.weights.pip.split()}
        modules = [*net.weights.requires, net.weights.module]
        if sorted(by_module) != sorted(modules):
            raise ValueError(f"{name}: pip requirements {net.weights.pip!r} do not match modules {modules}")
        found[name] = {module: by_module[module] for module in modules}
    return found


def offline_networks_named(nb: nbformat.NotebookNode) -> list[str]:
    """The offline networks a lesson names anywhere, its exercises included (code or markdown)."""
    text = "\n".join(c.source for c in nb.cells if c.metadata.get("course") is None)
    return [name for name in offline_networks() if re.search(rf"\b{name}\b", text)]


def colab_setup_source(settings: dict, modules: list[str] = (), networks: list[str] = ()) -> str:
    """The Colab set-up cell: clone the course, change into ``notebooks/``, install what Colab lacks.

    It installs the packages of ``modules`` (from ``COLAB_MISSING``), of the offline ``networks``
    the lesson names and of the offline network ``EMBEDKIT_BACKBONE`` picks (set with ``%env``
    before the cell runs), and imports each of them: pip installs into the running kernel's
    environment, and a package that was not imported before imports with no restart.
    """
    repo_url = f"https://github.com/{settings['repository']}.git"
    wanted = ", ".join(f'"{module}": "{COLAB_MISSING[module]}"' for module in modules)
    table = "\n".join(
        f"        {name!r}: {{{', '.join(f'{m!r}: {r!r}' for m, r in reqs.items())}}},".replace("'", '"')
        for name, reqs in offline_networks().items()
    )
    named = ", ".join(f'"{name}"' for name in networks)
    return f"""\
# Colab only: fetch the course and install what this lesson needs. Elsewhere this does nothing.
import sys

if "google.colab" in sys.modules:
    import importlib.util
    import os
    import subprocess

    if not os.path.isdir("embedkit"):  # not yet in the course's notebooks folder (Colab starts in /content)
        if not os.path.isdir("course"):
            subprocess.run(["git", "clone", "--depth", "1", "--branch", "{settings["branch"]}",
                            "{repo_url}", "course"], check=True)
        os.chdir("course/notebooks")
    needed = {{{wanted}}}  # module: pip package
    # The offline networks' packages: for those this lesson names, and for the one
    # `%env EMBEDKIT_BACKBONE=NAME` picks when it runs before this cell.
    offline = {{
{table}
    }}
    for network in [{named}{", " if named else ""}os.environ.get("EMBEDKIT_BACKBONE", "")]:
        needed.update(offline.get(network, {{}}))
    missing = [pkg for module, pkg in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()
    for module in needed:  # installed into this kernel's environment, so they import now: no restart
        importlib.import_module(module)"""


def with_managed_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Insert the badge and Colab set-up cells after the title of a notebook that has neither."""
    roles = [c.metadata.get("course") for c in nb.cells]
    if "badge" in roles or "colab-setup" in roles:
        return nb
    badge = nbformat.v4.new_markdown_cell("", metadata={"course": "badge"})
    setup = nbformat.v4.new_code_cell("", metadata={"course": "colab-setup"})
    nb.cells[1:1] = [badge, setup]
    return nb


def slide_type(cell) -> str:
    """The slide type the course's rules give a cell (scripts/build_slides.py fits the rest)."""
    if cell.metadata.get("course") == "colab-setup" or cell.metadata.get("slides") == "skip":
        return "skip"
    if cell.cell_type == "markdown":
        first = cell.source.lstrip().splitlines()[0] if cell.source.strip() else ""
        if first.startswith(("# ", "## ")):
            return "slide"
        if first.startswith("### "):
            return "subslide"
        if first.startswith("$$"):
            return "fragment"  # a step of a derivation appears on its own click
    return "-"


def synced(nb: nbformat.NotebookNode, name: str, settings: dict) -> nbformat.NotebookNode:
    """The notebook as it should be stored (a copy; ``nb`` is not changed)."""
    nb = with_managed_cells(copy.deepcopy(nb))
    managed = {
        "badge": badge_source(name, settings),
        "colab-setup": colab_setup_source(settings, modules_colab_lacks(nb), offline_networks_named(nb)),
    }
    for role, source in managed.items():
        cells = [c for c in nb.cells if c.metadata.get("course") == role]
        if len(cells) != 1:
            raise ValueError(f"{name}: expected exactly one cell with metadata.course == {role!r}")
        cells[0].source = source
    for cell in nb.cells:
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell)}
        if cell.cell_type == "code" and cell.source.startswith("# NBVAL_RAISES_EXCEPTION"):
            # The tag lets Jupyter's "run all" and nbconvert go on past the cell, as nbval does.
            cell.metadata["tags"] = sorted({*cell.metadata.get("tags", []), "raises-exception"})
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata = {
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        **{k: v for k, v in nb.metadata.items() if k not in ("kernelspec", "language_info", "widgets")},
    }
    nb.nbformat, nb.nbformat_minor = 4, 4
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of shape")
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        metavar="NOTEBOOK",
        help="sync only these notebooks (default: every notebooks/*.ipynb and the README)",
    )
    args = parser.parse_args()
    settings = course_settings()
    missing = [str(p) for p in args.notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        parser.error(f"not a notebook file: {', '.join(missing)}")
    stale = []
    for path in args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        want = synced(nb, path.name, settings)
        if nbformat.writes(want) != nbformat.writes(nb):
            stale.append(path.name)
            if not args.check:
                nbformat.write(want, path)
    readme = REPO / "README.md"
    text = readme.read_text()
    if not args.notebooks and readme_synced(text, settings) != text:
        stale.append(readme.name)
        if not args.check:
            readme.write_text(readme_synced(text, settings))
    verb = "out of shape" if args.check else "updated"
    print(f"{verb}: {', '.join(stale)}" if stale else "all notebooks in shape")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
