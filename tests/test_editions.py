"""The course's two reading editions: slide decks and website, checked in headless Chromium.

A session fixture builds the site into a temporary folder (lessons executed once, cached in
build/executed/ like the real builds), with every lesson's deck and its PDF handout, then one
browser session opens every deck and measures every slide at 1280 x 720:

- the decks present offline: no request leaves the local files, no console error, every
  image decodes, math is typeset, nothing lies outside its slide;
- they are talks a room can read: code and printed output at 20 px or more, body text at 24 px
  or more, at most 12 lines of code a slide (and a line saying how many more), no code line and
  no printed line that wraps, figures shown at least at three quarters of the size they were
  drawn at and their smallest text at 20 px or more as the slide shows it (a figure drawn for the
  slide records its smallest text; a notebook's figure is taken at the 10 points, 14 px, that the
  course's figures use at least), at most a quarter of the slides "continued", speaker notes on
  every slide, linear navigation with no vertical stacks that the arrow keys would skip;
- no slide shows the building machine: its paths, warnings, tracebacks, progress bars, log lines
  or timestamps (a slide that shows a warning on purpose marks it);
- every PDF handout has a page per slide; every site page (lessons, syllabus, answer key) loads
  with no outside request, shows none of the building machine's paths, tracebacks, progress bars
  or timestamps, and every internal link resolves.

Each deck's numbers are printed and written to build/screenshots/deck_metrics.json, beside
screenshots of several slides per deck for a person to look at. Without Chromium
(``apt-get install chromium``) or Playwright these tests skip and say so.
"""

from __future__ import annotations

import copy
import html
import importlib.util
import json
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
import talks
from browser import CHROMIUM, FLAGS, browser_available, open_page
from execute_lessons import execute_all, lessons

from conftest import REPO

LESSONS = lessons()
IDS = [p.stem for p in LESSONS]
SCREENSHOTS = REPO / "build" / "screenshots"
METRICS_JS = (Path(__file__).parent / "deck_metrics.js").read_text(encoding="utf-8")

MIN_CODE_PX, MIN_OUTPUT_PX, MIN_BODY_PX = 20, 20, 24
MAX_CONTINUED = 0.25
MIN_FIGURE_SCALE = 0.75
MIN_FIGURE_TEXT_PX = 20  # a figure's captions, legends and ticks, as the slide shows them
NOTEBOOK_TEXT_PX = 10 * 100 / 72  # a notebook figure's smallest type: 10 points at the inline 100 dpi


def _figure_text(figure: dict) -> float:
    """How large a figure's smallest text is on the slide: what the figure records, or the least a
    notebook's figure uses, times the scale it is shown at."""
    return figure["textPx"] if figure.get("textPx") is not None else NOTEBOOK_TEXT_PX * figure["scale"]


# --------------------------------------------------------------------------- building


@pytest.fixture(scope="session")
def editions(tmp_path_factory):
    """Site, decks and handouts for every lesson, built once per test session: ``(slides dir, site dir)``."""
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

FORBIDDEN = "|".join(f"(?:{p})" for p in build_slides.FORBIDDEN.values())


@pytest.fixture(scope="session")
def decks(editions):
    """Every deck opened once in one browser: its measurements, problems and screenshots."""
    from playwright.sync_api import sync_playwright

    slides, _ = editions
    results = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            for lesson in LESSONS:
                deck = slides / f"{lesson.stem}.html"
                problems = {"console": [], "requests": [], "failed": []}
                page = browser.new_page(
                    viewport={"width": build_slides.SLIDE_WIDTH, "height": build_slides.SLIDE_HEIGHT}
                )
                page.on(
                    "console",
                    lambda m, p=problems: p["console"].append(m.text) if m.type == "error" else None,
                )
                page.on("pageerror", lambda e, p=problems: p["console"].append(str(e)))
                page.on("requestfailed", lambda r, p=problems: p["failed"].append(r.url))
                page.on(
                    "request",
                    lambda r, p=problems: (
                        None if r.url.startswith(("file:", "data:")) else p["requests"].append(r.url)
                    ),
                )
                page.goto(deck.resolve().as_uri(), wait_until="load")
                page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
                page.evaluate("MathJax.startup.promise")
                measured = page.evaluate(METRICS_JS, FORBIDDEN)
                measured["broken_images"] = page.evaluate(IMAGES)
                measured["math"] = page.evaluate(MATH)
                measured["math_errors"] = page.evaluate(MATH_ERRORS)
                measured["problems"] = problems
                page.close()
                results[lesson.stem] = measured
            build_slides.screenshot_decks(
                [slides / f"{p.stem}.html" for p in LESSONS],
                SCREENSHOTS,
                log=lambda *_: None,
                browser=browser,
            )
        finally:
            browser.close()
    summary = {stem: _numbers(m) for stem, m in results.items()}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "deck_metrics.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return results


def _numbers(measured: dict) -> dict:
    slides = measured["slides"]
    low = {k: min(s["min"][k] for s in slides) for k in ("code", "output", "body")}
    return {
        "slides": len(slides),
        "continued_share": round(sum(s["continued"] for s in slides) / len(slides), 3),
        "min_code_px": None if low["code"] == float("inf") else low["code"],
        "min_output_px": None if low["output"] == float("inf") else low["output"],
        "min_body_px": None if low["body"] == float("inf") else low["body"],
        "most_code_lines": max(s["codeLines"] for s in slides),
        "wrapped_output_lines": sum(s["outputWrapped"] for s in slides),
        "smallest_figure_scale": min((f["scale"] for s in slides for f in s["figures"]), default=None),
        "smallest_figure_text_px": min(
            (round(_figure_text(f), 1) for s in slides for f in s["figures"]), default=None
        ),
        "figures_drawn_for_the_slide": sum(f.get("textPx") is not None for s in slides for f in s["figures"]),
        "figures": sum(len(s["figures"]) for s in slides),
    }


IMAGES = "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
MATH = "() => document.querySelectorAll('mjx-container').length"
MATH_ERRORS = "() => document.querySelectorAll('mjx-merror, .MathJax_Error').length"


def _has_math(lesson: Path) -> bool:
    """Whether the lesson's markdown has TeX: display math, or inline ``$...$`` / ``\\(...\\)``."""
    cells = nbformat.read(lesson, as_version=4).cells
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return re.search(r"\$\$|\\\(|\\\[|(?<![\w$])\$[^$\n]+\$(?![\w$])", markdown) is not None


def _where(slide: dict) -> str:
    return f'slide {slide["index"] + 1} "{slide["title"][:60]}"'


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_deck_presents_offline(editions, decks, lesson):
    measured = decks[lesson.stem]
    problems = measured["problems"]
    assert problems["requests"] == [], f"requests beyond the local files: {problems['requests']}"
    assert problems["console"] == [] and problems["failed"] == [], problems
    assert measured["broken_images"] == [], f"images that did not decode: {measured['broken_images']}"
    assert measured["math_errors"] == 0
    deck_html = (editions[0] / f"{lesson.stem}.html").read_text(encoding="utf-8")
    shown = re.sub(r"<aside.*?</aside>", "", deck_html, flags=re.S)  # speaker notes are not typeset
    if 'class="math' in shown:  # markdown math on a slide (the build marks it so)
        assert measured["math"] > 0, "the deck has math, none of it typeset"
    bad = [_where(s) for s in measured["slides"] if s["overflow"]]
    assert bad == [], "slides with content outside their box:\n" + "\n".join(bad)


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_deck_is_a_talk_a_room_can_read(decks, lesson):
    measured = decks[lesson.stem]
    slides = measured["slides"]
    numbers = _numbers(measured)
    print(f"{lesson.stem}: {json.dumps(numbers)}")
    assert measured["navigation"] == "linear" and measured["vertical"] == 0, "navigation skips slides"
    assert 14 <= len(slides) <= 36, f"{len(slides)} slides"
    assert numbers["continued_share"] <= MAX_CONTINUED, numbers
    small = []
    for s in slides:
        for kind, least in (("code", MIN_CODE_PX), ("output", MIN_OUTPUT_PX), ("body", MIN_BODY_PX)):
            if s["min"][kind] < least:
                small.append(f"{_where(s)}: {kind} at {s['min'][kind]} px (at least {least})")
        if s["codeLines"] > build_slides.CODE_LINES + 1:
            small.append(f"{_where(s)}: {s['codeLines']} lines of code")
        if s["wrapped"]:
            small.append(f"{_where(s)}: {s['wrapped']} code lines wrap")
        if s["outputWrapped"]:
            small.append(f"{_where(s)}: printed lines wrap ({s['outputWrapped']} extra lines)")
        small += [
            f"{_where(s)}: a figure shown at {f['scale']:.0%} of its size {f['natural']}"
            for f in s["figures"]
            if f["scale"] < MIN_FIGURE_SCALE
        ]
        small += [
            f"{_where(s)}: a figure's smallest text shown at {_figure_text(f):.1f} px "
            f"({'as drawn for the slide' if f.get('textPx') is not None else 'the notebook figure'}, "
            f"shown at {f['scale']:.0%}; at least {MIN_FIGURE_TEXT_PX})"
            for f in s["figures"]
            if _figure_text(f) < MIN_FIGURE_TEXT_PX
        ]
        if not re.search(r"min on this slide", s["notes"]) or not re.search(r"Say|Ask|Demo", s["notes"]):
            small.append(f"{_where(s)}: speaker notes lack timing or what to say")
    assert small == [], "slides a room cannot read:\n" + "\n".join(small)


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_deck_shows_nothing_of_the_building_machine(decks, lesson):
    shown = [f"{_where(s)}: {s['forbidden']!r}" for s in decks[lesson.stem]["slides"] if s["forbidden"]]
    assert shown == [], "slides that show the building machine:\n" + "\n".join(shown)


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_handout_has_a_page_per_slide(editions, decks, lesson):
    pdf = editions[0] / "pdf" / f"{lesson.stem}.pdf"
    assert pdf.is_file(), f"no handout {pdf.name}"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", data))
    count = len(decks[lesson.stem]["slides"])
    assert pages == count, f"{pages} pages for {count} slides"


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
    """Every link from a site page to the site (pages, slides, handouts, notebooks, anchors) resolves."""
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
    index = (site / "index.html").read_text(encoding="utf-8")
    for stem in IDS:
        for link in (f"slides/{stem}.html", f"slides/pdf/{stem}.pdf", f"notebooks/{stem}.ipynb"):
            assert f'href="{link}"' in index, f"the front page does not link {link}"
    assert 'href="syllabus.html"' in index and 'href="answers.html"' in index


# What a site page never shows: the building machine's paths, tracebacks, progress bars, timestamps,
# and the stand-in network's warning (a lesson's own printed warning, shown on purpose, may stay).
SITE_FORBIDDEN = {k: v for k, v in build_slides.FORBIDDEN.items() if k != "a warning"}
SITE_FORBIDDEN["the stand-in network's warning"] = r"StandInWarning:"


@pytest.mark.parametrize("name", ["index", "syllabus", "answers", *IDS])
def test_site_page_loads_offline(editions, name):
    _, site = editions
    page_path = site / f"{name}.html"
    source = page_path.read_text(encoding="utf-8")
    if name in IDS:
        assert f'href="slides/{name}.html"' in source, "the page links to its slides"
        assert f'href="slides/pdf/{name}.pdf"' in source, "the page links to its handout"
        assert "colab.research.google.com/github/" in source, "the page has its Open-in-Colab badge"
    with open_page(page_path, wait_ms=1500) as (page, problems):
        broken = page.evaluate(IMAGES)
        images = page.evaluate("() => document.images.length")
        math, math_errors = page.evaluate(MATH), page.evaluate(MATH_ERRORS)
        text = page.evaluate("() => document.querySelector('main, article, body').innerText")
    assert problems.requests == [], f"requests beyond the local files: {problems.requests}"
    assert problems.console_errors == [] and problems.failed_requests == []
    assert broken == [], f"images that did not decode: {broken}"
    if name in IDS:
        assert images >= 1
    if name in IDS and _has_math(REPO / "notebooks" / f"{name}.ipynb"):
        assert math > 0, "the lesson has math, the page shows none typeset"
    assert math_errors == 0
    shown = [
        f"{what}: {m.group(0)!r} in {text[max(0, m.start() - 60) : m.end() + 20]!r}"
        for what, pattern in SITE_FORBIDDEN.items()
        for m in re.finditer(pattern, text, flags=re.M)
    ]
    assert shown == [], "the page shows the building machine:\n" + "\n".join(shown[:10])


def test_syllabus_plans_every_lesson_for_45_and_90_minutes(editions):
    _, site = editions
    text = (site / "syllabus.html").read_text(encoding="utf-8")
    for stem in IDS:
        assert f'href="slides/pdf/{stem}.pdf"' in text
    assert text.count("45-minute class") >= len(IDS) and text.count("90-minute class") >= len(IDS)


def test_answer_key_holds_every_solution_and_the_decks_none(editions):
    slides, site = editions
    answers = (site / "answers.html").read_text(encoding="utf-8")
    for lesson in LESSONS:
        nb = nbformat.read(lesson, as_version=4)
        deck = (slides / f"{lesson.stem}.html").read_text(encoding="utf-8")
        deck = html.unescape(re.sub(r"<[^>]+>", "", deck))  # the text a reader sees
        stubs = "\n".join(c.source for c in nb.cells if c.cell_type == "code")  # what learners start from
        for exercise, solution in talks.solutions(nb):
            code = re.search(r"```python\n(.*?)\n", solution)
            first = (code.group(1) if code else solution.split("\n")[0]).strip()
            words = re.findall(r"\w+", first)
            assert all(w in answers for w in words), f"{lesson.stem}: the answer key lacks {exercise!r}"
            block = re.search(r"```python\n(.*?)```", solution, flags=re.S)
            own = [
                line.strip()
                for line in (block.group(1).splitlines() if block else [])
                if len(line.strip()) > 20 and line.strip() not in stubs  # a stub line gives nothing away
            ]
            if own:
                assert own[0] not in deck, f"{lesson.stem}: the deck shows the solution of {exercise!r}"


# --------------------------------------------------------------------------- slide rules


def test_decks_build_from_talk_files_alone():
    """A deck shows only what its talk file selects: an unselected cell's code never appears."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# 99 · A lesson"),
            nbformat.v4.new_markdown_cell("## Setting up\n\ntext"),
            nbformat.v4.new_code_cell("chosen = 1\nprint(chosen)"),
            nbformat.v4.new_code_cell("secret_cell = 2"),
        ]
    )
    nb.cells[2].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="1\n"),
        nbformat.v4.new_output("stream", name="stderr", text="/tmp/x.py:1: SomeWarning: careful\n"),
    ]
    talk = build_slides.talks_module.Talk(
        Path("99_x.toml"),
        {"minutes_title": 1},
        [
            {
                "title": "One idea",
                "anchor": "Setting up",
                "code": "chosen = 1",
                "output": True,
                "say": "s",
                "minutes": 2,
            }
        ],
    )
    html, stats = build_slides.deck_html("99_x", nb, talk, Path(os.devnull).parent / "nonexistent")
    assert "secret_cell" not in html and "chosen" in html and "SomeWarning" not in html
    assert stats["slides"] == 2 and stats["minutes"] == 3
    assert "navigationMode: 'linear'" in html


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
        _sync().synced(nb, source.name, _sync().course_settings())
    )
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
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
