"""The talk each slide deck gives: a selection from its lesson, kept beside the notebook.

A deck is not the whole notebook on slides. ``scripts/talks/NN_name.toml`` says, slide by
slide, what the talk shows and what the instructor says; the notebook's cells are never
changed for it. A slide names where it comes from by *anchors* that survive edits to the
lesson: the text of a heading (``anchor = "Exact copies: hashing the file's bytes"``), and,
for code, figures and printed output, a line the code cell contains, looked up only in that
heading's section (``code = "def cosine("``).

The keys of a talk file::

    title = "..."            # the deck's title (default: the notebook's first heading)
    goals = "..."            # markdown on the title slide: what the class will be able to do
    minutes_title = 1        # minutes on the title slide
    exercises_45 = [["Exercise 1 · An average hash", 10]]   # class plans: exercise heading, minutes
    exercises_90 = [[...], ...]
    questions_45 = 5         # minutes left for questions and set-up in each plan
    questions_90 = 10

    [[slide]]
    title = "A title that states the idea"
    anchor = "Heading text"  # the lesson section the slide comes from (required)
    points = "..."           # markdown written for the slide (short: a few bullets)
    code = "a line in the cell"          # show this code cell (at most CODE_LINES lines)
    lines = [first, last]                # which lines of it (1-based, inclusive)
    output = true | [first, last]        # show what the cell printed (all, or these lines)
    table = true | ["column", ...]       # and the first table it returned (a data frame), these columns
    keep_warnings = true                 # keep printed warnings: the slide shows one on purpose
    hide_code = true                     # show what the code cell printed, not its code
    text_columns = ["column", ...]       # of a table printed as text, only these columns
    figure = "a line in the cell"        # show this cell's figure, the slide's width
    figure_index = 0                     # which of the cell's figures
    redraw = "name"                      # or a figure drawn for the slide (scripts/slide_figures.py)
    minutes = 1.5
    say = "..."              # speaker notes: what to say,
    ask = "..."              # a question for the class,
    demo = "..."             # when and what to show live in the notebook
    optional = true          # left out of the 45-minute class

``tests/test_talks.py`` checks that every anchor of every talk resolves in the current
notebooks and that the class plans add up to 45 and 90 minutes.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "TALKS",
    "AnchorError",
    "Talk",
    "Slide",
    "load_talk",
    "resolve",
    "heading_key",
    "headings",
    "solutions",
    "CLASS_MINUTES",
]

TALKS = Path(__file__).resolve().parent / "talks"
CLASS_MINUTES = (45, 90)
SLIDE_KEYS = {
    "title",
    "anchor",
    "points",
    "code",
    "lines",
    "output",
    "figure",
    "figure_index",
    "redraw",
    "minutes",
    "say",
    "ask",
    "demo",
    "optional",
    "figure_alt",
    "keep_warnings",
    "hide_code",
    "text_columns",
    "table",
}
TALK_KEYS = {
    "title",
    "goals",
    "minutes_title",
    "exercises_45",
    "exercises_90",
    "questions_45",
    "questions_90",
    "slide",
    "summary_anchor",
}


class AnchorError(LookupError):
    """An anchor of a talk file that the lesson does not have (the message names each one)."""


@dataclass
class Slide:
    """One slide of a talk, its anchors resolved to cells of the executed lesson."""

    number: int
    spec: dict
    heading: int = -1  # index of the cell holding the anchor heading
    code: nbformat.NotebookNode | None = None
    figure: nbformat.NotebookNode | None = None

    @property
    def minutes(self) -> float:
        return float(self.spec.get("minutes", 1))


@dataclass
class Talk:
    """A lesson's talk file, as read."""

    path: Path
    data: dict
    slides: list[dict] = field(default_factory=list)

    def minutes(self, optional: bool = True) -> float:
        """Minutes of the talk (the title slide and every slide; without ``optional`` ones if False)."""
        return float(self.data.get("minutes_title", 1)) + sum(
            float(s.get("minutes", 1)) for s in self.slides if optional or not s.get("optional")
        )

    def plan(self, length: int) -> dict:
        """The class plan of ``length`` minutes: talk minutes, exercises with minutes, questions."""
        exercises = [(str(name), float(m)) for name, m in self.data.get(f"exercises_{length}", [])]
        talk = self.minutes(optional=length != 45)
        questions = float(self.data.get(f"questions_{length}", 0))
        return {
            "talk": talk,
            "exercises": exercises,
            "questions": questions,
            "total": talk + sum(m for _, m in exercises) + questions,
        }


def load_talk(stem: str, folder: Path = TALKS) -> Talk:
    """The talk file of the lesson ``stem`` (``01_data_curation``); ValueError for unknown keys."""
    path = folder / f"{stem}.toml"
    with path.open("rb") as f:
        data = tomllib.load(f)
    unknown = set(data) - TALK_KEYS
    if unknown:
        raise ValueError(f"{path.name}: unknown keys {sorted(unknown)}")
    slides = data.get("slide", [])
    for i, s in enumerate(slides, 1):
        bad = set(s) - SLIDE_KEYS
        if bad:
            raise ValueError(f"{path.name}, slide {i} ({s.get('title')!r}): unknown keys {sorted(bad)}")
        if "title" not in s or "anchor" not in s:
            raise ValueError(f"{path.name}, slide {i}: every slide needs a title and an anchor")
    return Talk(path, data, slides)


def heading_key(text: str) -> str:
    """A heading's text compared loosely: no ``#``, no backticks or emphasis, spaces collapsed, any case."""
    text = re.sub(r"^#+\s*", "", text.strip())
    text = re.sub(r"[`*]", "", text)
    return re.sub(r"\s+", " ", text).strip().casefold()


def headings(nb: nbformat.NotebookNode) -> list[tuple[int, int, str]]:
    """Every markdown heading of the lesson: ``(cell index, level, text)``, outside code fences."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.split("\n"):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            m = re.match(r"(#{1,6})\s+(.*)", line)
            if m and not fenced:
                found.append((i, len(m.group(1)), m.group(2).strip()))
    return found


def _section(nb: nbformat.NotebookNode, anchor: str) -> tuple[int, int] | None:
    """Cells ``[start, end)`` of the section under the heading ``anchor`` (its subsections included)."""
    all_headings = headings(nb)
    for k, (cell, level, text) in enumerate(all_headings):
        if heading_key(text) == heading_key(anchor):
            end = next((c for c, lv, _ in all_headings[k + 1 :] if lv <= level and c > cell), len(nb.cells))
            return cell, max(end, cell + 1)
    return None


def _code_cell(nb, section: tuple[int, int], line: str) -> nbformat.NotebookNode | None:
    start, end = section
    for cell in nb.cells[start:end]:
        if cell.cell_type == "code" and line in cell.source:
            return cell
    return None


def _near(anchor: str, nb: nbformat.NotebookNode) -> str:
    names = [text for _, _, text in headings(nb)]
    close = difflib.get_close_matches(anchor, names, n=2, cutoff=0.5)
    return f" (headings like it: {close})" if close else ""


def resolve(talk: Talk, nb: nbformat.NotebookNode, lesson: str = "") -> list[Slide]:
    """The talk's slides with their anchors found in ``nb``; AnchorError naming every one that is not."""
    missing, slides = [], []
    where = lesson or talk.path.stem
    for n, spec in enumerate(talk.slides, 1):
        slide = Slide(n, spec)
        section = _section(nb, spec["anchor"])
        label = f"{talk.path.name}, slide {n} ({spec['title']!r})"
        if section is None:
            missing.append(f"{label}: no heading {spec['anchor']!r} in {where}{_near(spec['anchor'], nb)}")
            slides.append(slide)
            continue
        slide.heading = section[0]
        for key in ("code", "figure"):
            if key in spec:
                cell = _code_cell(nb, section, spec[key])
                if cell is None:
                    missing.append(
                        f"{label}: no code cell containing {spec[key]!r} under the heading "
                        f"{spec['anchor']!r} in {where}"
                    )
                setattr(slide, key, cell)
        if "figure" in spec and slide.figure is not None and nb_has_outputs(nb):
            images = figures_of(slide.figure)
            index = int(spec.get("figure_index", 0))
            if index >= len(images):
                missing.append(
                    f"{label}: the cell containing {spec['figure']!r} draws {len(images)} "
                    f"figure(s), the slide wants number {index}"
                )
        slides.append(slide)
    if missing:
        raise AnchorError("anchors of the talk not found in the lesson:\n" + "\n".join(missing))
    return slides


def nb_has_outputs(nb: nbformat.NotebookNode) -> bool:
    return any(c.cell_type == "code" and c.get("outputs") for c in nb.cells)


def figures_of(cell: nbformat.NotebookNode) -> list[str]:
    """The PNG/JPEG figures a code cell drew, base64, each once."""
    images: list[str] = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        for mime in ("image/png", "image/jpeg"):
            if mime in data and data[mime] not in images:
                images.append(data[mime])
    return images


_HEADING_OR_SOLUTION = (
    r"(?m)^(#{1,6})[ \t]+([^\n]*)$"
    r"|<details>\s*<summary>\s*(Solution[^<]*)</summary>(.*?)</details>"
)


def solutions(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """Each exercise's solution: ``(exercise heading, the solution's markdown)``, in lesson order.

    A solution is a collapsed ``<details><summary>Solution...</summary> ... </details>`` block;
    it belongs to the exercise heading above it.
    """
    found, current = [], ""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        # Walk the cell in order: headings and solution blocks as they come.
        for m in re.finditer(_HEADING_OR_SOLUTION, cell.source, flags=re.S):
            if m.group(1):
                current = m.group(2).strip()
            else:
                found.append((current, m.group(4).strip()))
    return found
