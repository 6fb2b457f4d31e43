"""Build the course website, every lesson executed: ``build/site/NN_name.html``.

``python scripts/build_site.py`` renders each lesson (executed once and cached by
``scripts/execute_lessons.py``, shared with the slide decks) as a page named after
its notebook, with Sphinx and MyST-NB in the sphinx-book-theme (configuration:
``scripts/site/conf.py``). Each page has the site's navigation, the lesson's
Open-in-Colab badge, rendered math, its figures and a link to its slide deck;
the decks themselves are built into ``build/site/slides/``, so the published site
carries them. Nothing is loaded from the network: MathJax is copied from the
mathjax npm package into the site. ``.github/workflows/pages.yml`` publishes
``build/site`` with GitHub Pages.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_slides import build_slides, copy_mathjax, localise_images  # noqa: E402
from execute_lessons import BUILD, execute_all, lessons  # noqa: E402
from headless import chromium, chromium_path, screenshot_page  # noqa: E402

__all__ = ["SITE", "site_notebook", "front_page", "build_site"]

SITE = BUILD / "site"
CONF = Path(__file__).resolve().parent / "site"
SCREENSHOTS = BUILD / "screenshots"


def lesson_title(nb: nbformat.NotebookNode) -> str:
    first = nb.cells[0].source.lstrip().split("\n")[0]
    return first.lstrip("#").strip()


def site_notebook(name: str, nb: nbformat.NotebookNode, images: Path) -> nbformat.NotebookNode:
    """The executed lesson as its page shows it: local pictures and badge, a link to its slides."""
    nb = copy.deepcopy(nb)
    localise_images(nb, images)
    badge = next(i for i, c in enumerate(nb.cells) if c.metadata.get("course") == "badge")
    nb.cells[badge].source += (
        f' &nbsp; <a class="slides-link" href="slides/{Path(name).stem}.html">▶ Slides for this lesson</a>'
    )
    return nb


def front_page(titles: dict[str, str]) -> str:
    """The site's index: what the course is, and every lesson with its slides."""
    rows = "\n".join(
        f"| [{title}]({Path(name).stem}) | <a href=\"slides/{Path(name).stem}.html\">slides</a> |"
        for name, title in titles.items()
    )
    toc = "\n".join(Path(name).stem for name in titles)
    return f"""# Practical Image Embeddings with PyTorch

An open notebook course. You curate a small image dataset (exact and near duplicates,
train/test leaks), turn a pretrained network into an embedding model, and compare images
with cosine similarity. Every page below is a lesson notebook, executed when this site was
built; open it in Colab with its badge to run it yourself, or present it with its slides.

| lesson | slides |
| --- | --- |
{rows}

```{{toctree}}
:hidden:
:maxdepth: 1

{toc}
```
"""


def build_site(executed: dict[str, nbformat.NotebookNode], dest: Path = SITE, log=print) -> list[Path]:
    """The site for the executed lessons (``{notebook name: notebook}``) in ``dest``; its lesson pages."""
    from sphinx.application import Sphinx

    src = dest.parent / f"{dest.name}-src"
    shutil.rmtree(src, ignore_errors=True)
    (src / "_static").mkdir(parents=True)
    copy_mathjax(src / "_static" / "mathjax")
    titles = {}
    for name, nb in executed.items():
        page = site_notebook(name, nb, src / "images")
        nbformat.write(page, src / name)
        titles[name] = lesson_title(nb)
    (src / "index.md").write_text(front_page(titles), encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    app = Sphinx(
        str(src), str(CONF), str(dest), str(src / "_doctrees"), "html",
        confoverrides={"html_static_path": [str(src / "_static")]},
        status=None, warning=sys.stderr, freshenv=True, warningiserror=False,
    )
    app.build()
    if app.statuscode:
        raise RuntimeError(f"sphinx failed with status {app.statuscode}")
    (dest / ".nojekyll").write_text("")
    build_slides(executed, dest / "slides", log=log)
    pages = [dest / f"{Path(name).stem}.html" for name in executed]
    log(f"site: {len(pages)} lesson pages in {dest}")
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, metavar="NOTEBOOK",
                        help="build only these lessons (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=SITE, help=f"output folder (default: {SITE})")
    args = parser.parse_args()
    executed = execute_all([p.resolve() for p in args.notebooks] or lessons())
    build_site(executed, args.out)
    if chromium_path() is None:
        print("no screenshot: Chromium or Playwright is missing (see README, 'Slides and website')")
    else:
        with chromium() as browser:
            screenshot_page(browser, args.out / "index.html", SCREENSHOTS / "site_index.png")
        print(f"screenshot in {SCREENSHOTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
