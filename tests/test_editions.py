"""The course's two reading editions: slide decks and website, checked in headless Chromium.

A session fixture builds every lesson's deck and the site into a temporary folder
(lessons executed once, cached in build/executed/ like the real builds), then:

- every deck: no request leaves the local files, no console error, every image
  decodes, math is typeset, and no slide has content outside its 1280 x 720 box
  (all fragments shown); the slide count per lesson is printed;
- every site page: loads with no outside request or console error, images decode,
  math is typeset, and every internal link (pages, slides, anchors) resolves.

Without Chromium (``apt-get install chromium``) or Playwright these tests skip
and say so; the layout rules, sync_notebooks and the Python 3.10 compile check
run everywhere.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import build_site
import build_slides
import nbformat
import pytest
from browser import browser_available, open_page
from execute_lessons import execute_all, lessons

from conftest import REPO

LESSONS = lessons()
IDS = [p.stem for p in LESSONS]


# --------------------------------------------------------------------------- building

@pytest.fixture(scope="session")
def editions(tmp_path_factory):
    """Decks and site for every lesson, built once per test session: ``(slides dir, site dir)``."""
    reason = browser_available()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    if shutil.which("npm") is None and not (REPO / "build" / "vendor").exists():
        pytest.skip("browser tests skipped: npm is needed once to fetch reveal.js and MathJax")
    out = tmp_path_factory.mktemp("editions")
    executed = execute_all(LESSONS)
    build_site.build_site(executed, out / "site", log=lambda *_: None)
    return out / "site" / "slides", out / "site"


# --------------------------------------------------------------------------- in the browser

OVERFLOWS = """() => {
  const W = Reveal.getConfig().width, H = Reveal.getConfig().height, bad = [];
  for (const s of Reveal.getSlides()) {
    const i = Reveal.getIndices(s);
    Reveal.slide(i.h, i.v, 1e6);                      // every fragment shown
    const hidden = [...s.querySelectorAll('*')].filter(e => {
      const o = getComputedStyle(e).overflowX;
      return o !== 'visible' && e.scrollWidth > e.clientWidth + 1;
    });
    if (s.scrollHeight > H + 1 || s.scrollWidth > W + 1 || hidden.length) {
      bad.push(`slide ${i.h}/${i.v} "${s.innerText.trim().slice(0, 50)}": ` +
               `${s.scrollWidth}x${s.scrollHeight} in ${W}x${H}, ${hidden.length} clipped elements`);
    }
  }
  return {count: Reveal.getTotalSlides(), bad};
}"""

IMAGES = "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
MATH = "() => document.querySelectorAll('mjx-container').length"
MATH_ERRORS = "() => document.querySelectorAll('mjx-merror, .MathJax_Error').length"


def _has_math(lesson: Path) -> bool:
    """Whether the lesson's markdown has TeX: display math, or inline ``$...$`` / ``\\(...\\)``."""
    cells = nbformat.read(lesson, as_version=4).cells
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return re.search(r"\$\$|\\\(|\\\[|(?<![\w$])\$[^$\n]+\$(?![\w$])", markdown) is not None


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_deck_presents_offline_and_fits(editions, lesson):
    slides, _ = editions
    deck = slides / f"{lesson.stem}.html"
    with open_page(deck) as (page, problems):
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        page.evaluate("MathJax.startup.promise")
        result = page.evaluate(OVERFLOWS)
        broken = page.evaluate(IMAGES)
        math, math_errors = page.evaluate(MATH), page.evaluate(MATH_ERRORS)
    print(f"{lesson.stem}: {result['count']} slides")
    assert problems.requests == [], f"requests beyond the local files: {problems.requests}"
    assert problems.console_errors == [] and problems.failed_requests == []
    assert broken == [], f"images that did not decode: {broken}"
    assert result["count"] >= 3
    assert result["bad"] == [], "slides with content outside their box:\n" + "\n".join(result["bad"])
    if _has_math(lesson):
        assert math > 0, "the lesson has math, the deck shows none typeset"
    assert math_errors == 0


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_site_links_resolve(editions):
    """Every link from a site page to the site (pages, slides, pictures, anchors) finds its target."""
    _, site = editions
    missing = []
    for page in sorted(site.glob("*.html")):
        for href in _parse(page).links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                missing.append(f"{page.name}: {href}")
            elif parts.fragment and target.suffix == ".html" and "slides" not in target.parts[-2:-1]:
                if parts.fragment not in _parse(target).ids:
                    missing.append(f"{page.name}: {href} (no such anchor)")
    assert missing == [], "links that go nowhere:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", ["index", *IDS])
def test_site_page_loads_offline(editions, name):
    _, site = editions
    page_path = site / f"{name}.html"
    html = page_path.read_text(encoding="utf-8")
    if name != "index":
        assert f'href="slides/{name}.html"' in html, "the page links to its slides"
        assert "colab.research.google.com/github/" in html, "the page has its Open-in-Colab badge"
    with open_page(page_path, wait_ms=1500) as (page, problems):
        broken = page.evaluate(IMAGES)
        images = page.evaluate("() => document.images.length")
        math, math_errors = page.evaluate(MATH), page.evaluate(MATH_ERRORS)
    assert problems.requests == [], f"requests beyond the local files: {problems.requests}"
    assert problems.console_errors == [] and problems.failed_requests == []
    assert broken == [], f"images that did not decode: {broken}"
    if name != "index":
        assert images >= 1
    if name != "index" and _has_math(REPO / "notebooks" / f"{name}.ipynb"):
        assert math > 0, "the lesson has math, the page shows none typeset"
    assert math_errors == 0


# --------------------------------------------------------------------------- slide layout rules

def _cell(kind, source, **metadata):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata.update(metadata)
    return cell


def _deck(cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    deck, timings = build_slides.slides_notebook(nb)
    return deck, timings


def test_long_code_is_shown_in_part_and_skips_are_dropped():
    long = "\n".join(f"x{i} = {i}" for i in range(40))
    deck, timings = _deck([
        _cell("markdown", "# Title", slideshow={"slide_type": "slide"}),
        _cell("code", long),
        _cell("code", "secret = 1", slides="skip"),
    ])
    sources = [c.source for c in deck.cells]
    shown = next(s for s in sources if s.startswith("x0 = 0"))
    assert shown.split("\n")[: build_slides.CODE_LINES] == long.split("\n")[: build_slides.CODE_LINES]
    assert shown.split("\n")[-1] == f"# … {40 - build_slides.CODE_LINES} more lines in the notebook"
    assert not any("secret" in s for s in sources)
    assert len(timings) == 1 and timings[0] > 0


def test_overfull_slide_continues_on_a_sub_slide_with_notes():
    paragraphs = "\n\n".join("word " * 80 for _ in range(12))   # about 12 x 4 lines of text
    heading = _cell("markdown", "## Heading\n\n" + paragraphs, slideshow={"slide_type": "slide"})
    deck, timings = _deck([heading])
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in deck.cells]
    assert kinds.count("subslide") >= 2, kinds
    notes = [c.source for c in deck.cells if c.metadata.get("slideshow", {}).get("slide_type") == "notes"]
    assert len(notes) == len(timings) == 1 + kinds.count("subslide")
    assert all("min on this slide" in n for n in notes)
    # The words are all still there, in order, just spread over the slides.
    shown = [c for c in deck.cells if c.metadata.get("slideshow", {}).get("slide_type") != "notes"]
    text = " ".join(c.source for c in shown)
    assert text.count("word") == 80 * 12


def test_figures_are_scaled_to_the_room_left():
    png = _png(800, 1000)
    cell = _cell("code", "plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    deck, _ = _deck([_cell("markdown", "# T\n\n" + "text " * 60, slideshow={"slide_type": "slide"}), cell])
    assert [c.metadata.get("slideshow", {}).get("slide_type") for c in deck.cells].count("subslide") == 0
    out = next(c for c in deck.cells if c.cell_type == "code").outputs[0]
    height = out.metadata["image/png"]["height"]
    assert build_slides.FIGURE_MIN <= height < build_slides.FIGURE_MAX
    assert out.metadata["image/png"]["width"] == round(800 * height / 1000)


def test_headings_inside_a_cell_start_slides_and_lead_ins_stay_with_their_list():
    items = "\n".join(f"- point {i}: " + "word " * 12 for i in range(6))
    text = "\n\n".join("word " * 80 for _ in range(4))
    cell = _cell("markdown", f"# Title\n\n{text}\n\n**What you will learn**\n\n{items}\n\n## Next\n\nmore",
                 slideshow={"slide_type": "slide"})
    deck, _ = _deck([cell])
    shown = [c for c in deck.cells if c.metadata.get("slideshow", {}).get("slide_type") != "notes"]
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in shown]
    assert kinds.count("slide") == 2 and next(c for c in shown if c.source.startswith("## Next"))
    lead = next(c for c in shown if "**What you will learn**" in c.source)
    assert "- point 0" in lead.source, "the lead-in was left behind without its list"


def test_wide_tables_get_smaller_type_and_long_ones_their_first_rows():
    import pandas as pd

    wide = pd.DataFrame([[f"value_{i}_{j}_long" for j in range(9)] for i in range(3)],
                        columns=[f"column_name_{j}" for j in range(9)])
    long = pd.DataFrame({"a": range(30), "b": range(30)})
    cells = []
    for frame in (wide, long):
        cell = _cell("code", "frame")
        cell.outputs = [nbformat.v4.new_output("execute_result", data={
            "text/html": frame.to_html(), "text/plain": repr(frame)}, execution_count=1)]
        cells.append(cell)
    deck, _ = _deck([_cell("markdown", "# T", slideshow={"slide_type": "slide"}), *cells])
    wide_html, long_html = (c.outputs[0].data["text/html"] for c in deck.cells if c.cell_type == "code")
    font = int(re.search(r"font-size: (\d+)px", wide_html).group(1))
    assert build_slides.TABLE_FONT_MIN <= font < build_slides.OUT_TABLE_FONT
    assert build_slides.html_table_width(wide.to_html(), font) <= build_slides.SLIDE_WIDTH - 60
    assert long_html.count("<tr") == 1 + build_slides.OUTPUT_LINES
    assert f"{30 - build_slides.OUTPUT_LINES} more rows in the notebook" in long_html


def _png(width, height):
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


# --------------------------------------------------------------------------- sync_notebooks and Python 3.10

def _sync():
    spec = importlib.util.spec_from_file_location("sync_notebooks", REPO / "scripts" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sync_named_notebooks_only(tmp_path):
    """``sync_notebooks.py PATH`` checks and fixes that notebook and leaves every other file alone."""
    source = LESSONS[0]
    messy = tmp_path / source.name
    nb = nbformat.read(source, as_version=4)
    broken = copy.deepcopy(nb)
    broken.cells[0].metadata["slideshow"] = {"slide_type": "-"}
    nbformat.write(broken, messy)
    readme_before = (REPO / "README.md").read_bytes()
    script = [sys.executable, str(REPO / "scripts" / "sync_notebooks.py")]
    check = subprocess.run([*script, "--check", str(messy)], capture_output=True, text=True)
    assert check.returncode == 1 and source.name in check.stdout
    fix = subprocess.run([*script, str(messy)], capture_output=True, text=True)
    assert fix.returncode == 0, fix.stderr
    assert nbformat.writes(nbformat.read(messy, as_version=4)) == nbformat.writes(
        _sync().synced(nb, source.name, _sync().course_settings()))
    assert (REPO / "README.md").read_bytes() == readme_before
    bad = subprocess.run([*script, str(tmp_path / "nope.ipynb")], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope.ipynb" in bad.stderr


def _python310() -> str | None:
    """A working Python 3.10 interpreter: python3.10 on PATH, or pyenv's."""
    exe = shutil.which("python3.10")
    if exe is None:
        return None
    probe = subprocess.run([exe, "--version"], capture_output=True, text=True)
    if probe.returncode == 0:
        return exe
    pyenv = shutil.which("pyenv")
    if pyenv:
        listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True)
        for version in listed.stdout.split():
            if version.startswith("3.10."):
                found = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True)
                prefix = found.stdout.strip()
                candidate = Path(prefix) / "bin" / "python3.10"
                if candidate.exists():
                    return str(candidate)
    return None


def test_compiles_on_python_310(tmp_path):
    """The package, scripts, tests and benchmarks use no syntax newer than the promised Python 3.10."""
    exe = _python310()
    if exe is None:
        pytest.skip("no Python 3.10 interpreter on PATH")
    folders = [REPO / "notebooks" / "embedkit", REPO / "scripts", REPO / "tests", REPO / "benchmarks"]
    result = subprocess.run(
        [exe, "-m", "compileall", "-q", *map(str, folders)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
