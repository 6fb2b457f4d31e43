"""Build the course website, every lesson executed: ``build/site/NN_name.html``.

``python scripts/build_site.py`` renders each lesson (executed once and cached by
``scripts/execute_lessons.py``, shared with the slide decks) as a page named after
its notebook, with Sphinx and MyST-NB in the sphinx-book-theme (configuration:
``scripts/site/conf.py``). Each page has the site's navigation, the lesson's
Open-in-Colab badge, rendered math, its figures and links to its slide deck, its PDF
handout and the notebook to download; printed output is what a reader should see (no
warning, progress bar or path of the machine that built the site). Beside the lessons: a
syllabus page with a 45- and a 90-minute class plan per lesson (from the talk files,
``scripts/talks/``) and an answer key with every exercise's solution. The decks and
handouts are built into ``build/site/slides/``, so the published site carries them.
Nothing is loaded from the network: MathJax is copied from the mathjax npm package into
the site. ``.github/workflows/pages.yml`` publishes
``build/site`` with GitHub Pages.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import talks  # noqa: E402
from build_slides import build_slides, copy_mathjax, localise_images, readable_outputs  # noqa: E402
from execute_lessons import BUILD, NOTEBOOKS, execute_all, lessons  # noqa: E402
from headless import chromium, chromium_path, screenshot_page  # noqa: E402

__all__ = ["SITE", "site_notebook", "front_page", "syllabus_page", "answers_page", "build_site"]

SITE = BUILD / "site"
CONF = Path(__file__).resolve().parent / "site"
SCREENSHOTS = BUILD / "screenshots"


def lesson_title(nb: nbformat.NotebookNode) -> str:
    first = nb.cells[0].source.lstrip().split("\n")[0]
    return first.lstrip("#").strip()


def site_notebook(name: str, nb: nbformat.NotebookNode, images: Path) -> nbformat.NotebookNode:
    """The executed lesson as its page shows it: outputs a reader should see (no warnings the
    build machine printed, no paths of it), local pictures and badge, links to its slides,
    its PDF handout and the notebook to download."""
    nb = readable_outputs(nb)
    localise_images(nb, images)
    stem = Path(name).stem
    badge = next(i for i, c in enumerate(nb.cells) if c.metadata.get("course") == "badge")
    nb.cells[badge].source += (
        f' &nbsp; <a class="slides-link" href="slides/{stem}.html">▶ Slides for this lesson</a>'
        f' &nbsp; <a class="handout-link" href="slides/pdf/{stem}.pdf">Handout (PDF)</a>'
        f' &nbsp; <a class="notebook-link" href="notebooks/{name}" download>Notebook (.ipynb)</a>'
    )
    return nb


def front_page(titles: dict[str, str]) -> str:
    """The site's index: what the course is, and every lesson with its slides, handout and notebook."""
    rows = "\n".join(
        f'| [{title}]({Path(name).stem}) | <a href="slides/{Path(name).stem}.html">slides</a> '
        f'| <a href="slides/pdf/{Path(name).stem}.pdf">PDF</a> '
        f'| <a href="notebooks/{name}" download>.ipynb</a> |'
        for name, title in titles.items()
    )
    toc = "\n".join(["syllabus", *(Path(name).stem for name in titles), "answers"])
    return f"""# Practical Image Embeddings with PyTorch

An open notebook course. You curate a small image dataset (exact and near duplicates,
train/test leaks), turn a pretrained network into an embedding model, and compare images
with cosine similarity. Every page below is a lesson notebook, executed when this site was
built; open it in Colab with its badge to run it yourself, or present it with its slides.
Instructors: the [syllabus](syllabus.md) plans a 45- and a 90-minute class for each lesson, and the
[answer key](answers.md) collects every exercise's solution.

| lesson | slides | handout | notebook |
| --- | --- | --- | --- |
{rows}

```{{toctree}}
:hidden:
:maxdepth: 1

{toc}
```
"""


def _minutes(value: float) -> str:
    return f"{value:g} min"


def syllabus_page(titles: dict[str, str]) -> str:
    """Class plans for every lesson: which slides and exercises fit a 45- and a 90-minute class."""
    lines = [
        "# Syllabus and class plans",
        "",
        "Each lesson has a talk (its slide deck) and exercises. A **45-minute class** gives the talk",
        "without the slides marked optional in the speaker notes and one exercise; a **90-minute class**",
        "gives the whole talk and more exercises. The minutes below come from the decks' speaker notes",
        "(press `s` in a deck), so a plan and its deck always agree. Learners who work alone need the",
        "study time in the README's table instead. Solutions are in the [answer key](answers.md).",
        "",
        "| lesson | talk (full / short) | 45-minute class | 90-minute class | deck | handout |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    details = []
    for name, title in titles.items():
        stem = Path(name).stem
        talk = talks.load_talk(stem)
        plans = {length: talk.plan(length) for length in talks.CLASS_MINUTES}
        exercises = {length: ", ".join(e for e, _ in p["exercises"]) for length, p in plans.items()}
        lines.append(
            f"| [{title}]({stem}) | {_minutes(plans[90]['talk'])} / {_minutes(plans[45]['talk'])} "
            f"| short talk, {exercises[45]} | whole talk, {exercises[90]} "
            f'| <a href="slides/{stem}.html">slides</a> | <a href="slides/pdf/{stem}.pdf">PDF</a> |'
        )
        details += [f"## {title}", ""]
        for length, plan in plans.items():
            which = "the talk without its optional slides" if length == 45 else "the whole talk"
            details.append(f"**{length}-minute class**")
            details.append("")
            optional = sum(1 for s in talk.slides if s.get("optional")) if length == 45 else 0
            details.append(f"1. {which} ({len(talk.slides) + 1 - optional} slides): {_minutes(plan['talk'])}")
            details += [f"1. {exercise}: {_minutes(m)}" for exercise, m in plan["exercises"]]
            details.append(f"1. questions, set-up and discussion: {_minutes(plan['questions'])}")
            details.append("")
    return "\n".join(lines + [""] + details)


def answers_page(executed: dict[str, nbformat.NotebookNode]) -> str:
    """Every exercise's solution, lesson by lesson, apart from the lessons and the slides."""
    parts = [
        "# Answer key",
        "",
        "The solutions of every exercise, for instructors and for checking your own answer after",
        "trying. In the lessons they sit folded under each exercise; the slides never show them.",
        "",
    ]
    for nb in executed.values():
        found = talks.solutions(nb)
        if not found:
            continue
        parts += [f"## {lesson_title(nb)}", ""]
        for exercise, solution in found:
            parts += [f"### {exercise}", "", solution.replace("../images/", "images/"), ""]
    return "\n".join(parts)


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
    (src / "syllabus.md").write_text(syllabus_page(titles), encoding="utf-8")
    (src / "answers.md").write_text(answers_page(executed), encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    app = Sphinx(
        str(src),
        str(CONF),
        str(dest),
        str(src / "_doctrees"),
        "html",
        confoverrides={"html_static_path": [str(src / "_static")]},
        status=None,
        warning=sys.stderr,
        freshenv=True,
        warningiserror=False,
    )
    app.build()
    if app.statuscode:
        raise RuntimeError(f"sphinx failed with status {app.statuscode}")
    (dest / ".nojekyll").write_text("")
    (dest / "notebooks").mkdir(exist_ok=True)
    for name in executed:
        shutil.copy2(NOTEBOOKS / name, dest / "notebooks" / name)
    build_slides(executed, dest / "slides", log=log)
    pages = [dest / f"{Path(name).stem}.html" for name in executed]
    log(f"site: {len(pages)} lesson pages in {dest}")
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        metavar="NOTEBOOK",
        help="build only these lessons (default: every notebooks/NN_*.ipynb)",
    )
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
