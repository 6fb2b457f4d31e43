"""Build every lesson's slide deck, a talk to present offline: ``build/slides/NN_name.html``.

``python scripts/build_slides.py`` executes each lesson once (cached, see
``scripts/execute_lessons.py``) and writes one reveal.js deck per lesson, named after its
notebook, a PDF handout of each (``build/slides/pdf/NN_name.pdf``, printed by headless
Chromium from the deck's ``?print-pdf`` view) and screenshots of several slides per deck
(``build/screenshots/``). Beside the decks lies everything they load: reveal.js and its
speaker-notes plugin, MathJax 3 (both fetched once with ``npm pack`` into ``build/vendor/``
and checked against the integrity hashes below), the lessons' pictures and the slides'
figures. After that the build needs no network, and ``build/slides/`` copied to a USB stick
presents on a laptop that has none.

A deck is a talk, not the notebook on slides: ``scripts/talks/NN_name.toml`` (read by
``scripts/talks.py``) picks, slide by slide, the title that states the idea, a few points,
at most one code cell (at most ``CODE_LINES`` lines, re-wrapped to fit), what it printed and
one figure shown the slide's width, with speaker notes (what to say, a question for the
class, when to demo live, minutes). Printed output is cleaned for the room: what a cell
wrote to stderr (warnings, progress bars, log lines) is left out, and so are lines that
show the machine that built the deck (its paths, timestamps), unless a slide asks to keep
them. Every slide is a horizontal slide: the arrow keys and the space bar step through all
of them in order.

``tests/test_editions.py`` opens the decks in headless Chromium and measures every slide at
1280 x 720 (font sizes, overflow, forbidden text); ``tests/test_talks.py`` checks the talk
files against the notebooks.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import html
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import nbformat
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import talks as talks_module  # noqa: E402
from execute_lessons import BUILD, REPO, execute_all, lessons  # noqa: E402
from headless import chromium, chromium_path, wait_for_deck  # noqa: E402

__all__ = [
    "SLIDE_WIDTH",
    "SLIDE_HEIGHT",
    "vendor",
    "build_deck",
    "build_slides",
    "print_handouts",
    "BADGE_URL",
    "write_badge",
    "localise_images",
    "presentable",
    "FORBIDDEN",
    "render_markdown",
    "slide_code",
    "screenshot_decks",
    "readable_outputs",
    "wrap_printed",
]

SLIDES = BUILD / "slides"
SCREENSHOTS = BUILD / "screenshots"
VENDOR = BUILD / "vendor"
TEMPLATE = Path(__file__).resolve().parent / "slides_template"

# npm packages the decks (and the site's math) are served from: version and npm integrity hash.
NPM_PACKAGES = {
    "reveal.js": (
        "5.2.1",
        "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ==",
    ),
    "mathjax": (
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
    ),
}
# What a deck needs from each package (paths inside the package).
REVEAL_FILES = [
    "LICENSE",
    "dist/reveal.js",
    "dist/reveal.css",
    "dist/reset.css",
    "dist/theme/white.css",
    "dist/theme/fonts/source-sans-pro",
    "plugin/notes/notes.js",
]
MATHJAX_FILES = [
    "LICENSE",
    "es5/tex-chtml.js",
    "es5/input/tex/extensions",
    "es5/output/chtml/fonts/woff-v2",
    "es5/a11y",
    "es5/ui",
    "es5/adaptors",
]

BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"

# The canvas, and the type on it (canvas pixels; slides_template/slides.css uses the same sizes).
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 720
CODE_PX, OUTPUT_PX, BODY_PX = 22, 20, 28
CODE_COLUMNS = 86  # characters of 22 px monospace that fit the slide's width, with margins
OUTPUT_COLUMNS = 94  # the same for 20 px printed output (a line longer than this is re-wrapped)
CODE_LINES = 12  # code lines a slide shows at most
OUTPUT_LINES = 10  # printed lines a slide shows unless it names others

# Printed text a slide never shows unless it asks to: how the building machine shows itself.
FORBIDDEN = {
    "a path of the building machine": r"(?<![\w.])/(?:tmp|root|home|usr|opt|var|private|Users)/",
    "a Python package folder": r"site-packages",
    "a warning": r"\b\w*Warning\b",
    "a traceback": r"Traceback \(most recent call last\)",
    "a progress bar": r"\d+%\|",
    "a timestamp": r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d|\b\d\d:\d\d:\d\d[,.]\d{3}\b",
    "a log line": r"^\s*\(\w+ pid=\d+|\b(?:INFO|WARNING|ERROR) [\w.]+:\d+ --",
}
_FORBIDDEN = re.compile("|".join(f"(?:{p})" for p in FORBIDDEN.values()), flags=re.M)
# What is never shown, even where a lesson prints a warning on purpose (progress bars, log lines, timestamps).
_QUIET = ("a progress bar", "a timestamp", "a log line")
_FORBIDDEN_QUIET = re.compile("|".join(f"(?:{FORBIDDEN[k]})" for k in _QUIET), flags=re.M)
_PATH = re.compile(r"(?<![\w.])(?:/[^\s/'\"(),]+)+/([^\s/'\"(),]+)")


# --------------------------------------------------------------------------- vendored packages


def vendor(name: str) -> Path:
    """The unpacked npm package ``name`` (pinned in NPM_PACKAGES), fetched once with ``npm pack``."""
    version, integrity = NPM_PACKAGES[name]
    target = VENDOR / f"{name}-{version}"
    if (target / "package.json").exists():
        return target
    VENDOR.mkdir(parents=True, exist_ok=True)
    tarball = VENDOR / f"{name}-{version}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise RuntimeError(
                f"{name} {version} is fetched with npm, which is not installed: "
                "install Node.js (Debian: apt-get install npm)"
            )
        result = subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--pack-destination", str(VENDOR)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not tarball.exists():
            raise RuntimeError(
                f"npm pack {name}@{version} failed (is the npm registry reachable?):\n{result.stderr[-2000:]}"
            )
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != integrity:
        tarball.unlink()
        raise RuntimeError(f"{tarball.name} does not match its pinned integrity hash; deleted it, run again")
    tmp = VENDOR / f".{name}-{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp, filter="data")
    shutil.rmtree(target, ignore_errors=True)
    (tmp / "package").rename(target)
    tmp.rmdir()
    return target


def copy_files(source: Path, files: list[str], dest: Path, strip: str = "") -> None:
    """Copy ``files`` (files or folders inside ``source``) to ``dest``, dropping the prefix ``strip``."""
    for rel in files:
        src = source / rel
        out = dest / rel.removeprefix(strip)
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True)
        else:
            shutil.copy2(src, out)


def copy_mathjax(dest: Path) -> None:
    """MathJax 3 (CommonHTML output, TeX input) into ``dest``: ``dest/tex-chtml.js`` and its fonts."""
    copy_files(vendor("mathjax"), MATHJAX_FILES, dest, strip="es5/")


def write_badge(dest: Path) -> None:
    """A local "Open in Colab" badge, so no page loads Colab's picture from the network."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" '
        'aria-label="Open in Colab">'
        '<rect width="117" height="20" rx="3" fill="#555"/><rect x="60" width="57" height="20" rx="3" '
        'fill="#f9ab00"/><rect x="60" width="6" height="20" fill="#f9ab00"/>'
        '<g font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" fill="#fff">'
        '<text x="6" y="14" textLength="48">Open in</text>'
        '<text x="69" y="14" textLength="38" fill="#222">Colab</text></g></svg>\n'
    )


def localise_images(nb: nbformat.NotebookNode, dest: Path, prefix: str = "images/") -> None:
    """Point the lessons' pictures (``../images/x.png``) and the Colab badge at copies in ``dest``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        cell.source = cell.source.replace(BADGE_URL, f"{prefix}colab-badge.svg")
        for rel in re.findall(r"\.\./images/([\w./-]+\.(?:png|jpe?g|svg|gif))", cell.source):
            src = REPO / "images" / rel
            if not src.is_file():
                raise FileNotFoundError(f"a lesson shows images/{rel}, which does not exist")
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
        cell.source = cell.source.replace("../images/", prefix)
    write_badge(dest / "colab-badge.svg")


# --------------------------------------------------------------------------- what a slide shows


def presentable(text: str, keep: bool = False) -> str:
    """Printed text as a slide or page shows it: paths cut to their last part, and every line
    that still shows the building machine (a warning, a traceback, a log line, a progress
    bar, a timestamp) left out. ``keep`` keeps such lines (a lesson showing one on purpose)."""
    text = _PATH.sub(lambda m: m.group(0) if m.group(0).startswith("//") else f"…/{m.group(1)}", text)
    if keep:
        return text
    return "\n".join(line for line in text.split("\n") if not _FORBIDDEN.search(line))


def _quiet(text: str) -> str:
    return "\n".join(x for x in text.split("\n") if not _FORBIDDEN_QUIET.search(x))


def readable_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The executed lesson with outputs a reader should see: what cells wrote to stderr
    (warnings, progress bars, log lines) left out, a failing cell's error as one line (its
    traceback shows the building machine's files), printed paths cut to their last part, and
    outputs that were only a progress bar dropped. What a cell prints on purpose stays."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                if out.get("name") == "stderr":
                    continue
                out["text"] = _quiet(presentable(out.get("text", ""), keep=True))
            elif kind == "error":
                out["traceback"] = [f"{out.get('ename')}: {out.get('evalue')}"]
            elif "text/plain" in out.get("data", {}):
                data = out["data"]
                text = _quiet(presentable(data["text/plain"], keep=True))
                if not text.strip() and set(data) == {"text/plain"}:
                    continue
                data["text/plain"] = text
            kept.append(out)
        cell.outputs = kept
    return nb


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table")

    def math(content: str, options: dict) -> str:
        content = html.escape(content)
        return f"\\[{content}\\]" if options.get("display_mode") else f"\\({content}\\)"

    dollarmath_plugin(md, double_inline=True, renderer=math)
    return md


_MD = _markdown()


def render_markdown(source: str) -> str:
    """Markdown (with ``$`` math, kept for MathJax) as HTML; the lessons' pictures from ``images/``."""
    source = source.replace(BADGE_URL, "images/colab-badge.svg").replace("../images/", "images/")
    return _MD.render(source)


_BREAKS = (", ", " for ", " if ", " else ", " and ", " or ", " + ", " * ", " = ", " ")


def _wrap_line(line: str, width: int) -> list[str]:
    """One long line of code as lines of at most ``width``: a trailing comment moves above it,
    a comment wraps as comment lines, code breaks after a comma (or before a keyword, or at a
    space), its continuation indented four more spaces."""
    if len(line) <= width:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    if line.lstrip().startswith("#"):
        words, out = line.lstrip()[1:].split(), [indent + "#"]
        for word in words:
            if len(out[-1]) + 1 + len(word) > width and out[-1].strip() != "#":
                out.append(indent + "#")
            out[-1] += " " + word
        return out
    code, sep, comment = line.partition("  # ")
    if sep and code.strip():
        return _wrap_line(f"{indent}# {comment}", width) + _wrap_line(code.rstrip(), width)
    out, rest, hang = [], line, indent + "    "
    while len(rest) > width:
        cut = -1
        for mark in _BREAKS:  # the first kind of break that fits, as late in the line as it can be
            at = rest.rfind(mark, len(hang) + 4, width - 1)
            if at > 0:
                cut = at + (len(mark) if mark == ", " else 0)
                break
        if cut <= 0:
            break
        out.append(rest[:cut].rstrip())
        rest = hang + rest[cut:].lstrip()
    return out + [rest]


def slide_code(
    source: str, lines: list[int] | None = None, width: int = CODE_COLUMNS, most: int = CODE_LINES
) -> tuple[str, int]:
    """The code a slide shows: the chosen lines, long ones re-wrapped to ``width`` columns, cut
    to ``most`` lines; also how many lines were left out."""
    all_lines = source.rstrip("\n").split("\n")
    if lines:
        first, last = lines
        all_lines = all_lines[first - 1 : last]
    part = "\n".join(all_lines)
    dedent = min((len(x) - len(x.lstrip()) for x in all_lines if x.strip()), default=0)
    part = "\n".join(x[dedent:] for x in all_lines)
    part = "\n".join(w for x in part.split("\n") for w in _wrap_line(x, width))
    shown = part.split("\n")
    left = max(0, len(shown) - most)
    return "\n".join(shown[:most]), left


def _code_html(code: str) -> str:
    return highlight(code, PythonLexer(), HtmlFormatter(nowrap=True))


def _printed(cell: nbformat.NotebookNode, keep: bool = False) -> tuple[str, list[str]]:
    """What a code cell printed, cleaned (stdout and text results; stderr left out), and its tables."""
    text, tables = [], []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout" or keep:
                text.append(out.get("text", ""))
        elif kind == "error":
            text.append(f"{out.get('ename')}: {out.get('evalue')}\n")
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            if any(m in data for m in ("image/png", "image/jpeg")):
                continue
            if "text/html" in data and "<table" in data["text/html"]:
                tables.append(data["text/html"])
            elif "text/plain" in data:
                text.append(data["text/plain"] + "\n")
    shown = presentable("".join(text), keep)
    return (_quiet(shown) if keep else shown).strip("\n"), tables


def _table_columns(table: str, wanted: list[str]) -> str:
    """A printed table (a data frame's HTML) with only its index and the columns named ``wanted``."""
    head = re.search(r"<thead>.*?<tr[^>]*>(.*?)</tr>", table, flags=re.S)
    if not head:
        return table
    cells = re.findall(r"<th[^>]*>(.*?)</th>", head.group(1), flags=re.S)
    names = [re.sub(r"<[^>]+>", "", c).strip() for c in cells]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise ValueError(f"the table has no columns {missing}; it has {names[1:]}")
    keep = {0} | {names.index(w) for w in wanted}

    def row(match: re.Match) -> str:
        cells = re.findall(r"<t[hd][^>]*>.*?</t[hd]>", match.group(2), flags=re.S)
        return match.group(1) + "".join(c for k, c in enumerate(cells) if k in keep) + "</tr>"

    return re.sub(r"(<tr[^>]*>)(.*?)</tr>", row, table, flags=re.S)


def _table_rows(table: str, most: int = OUTPUT_LINES) -> str:
    """A printed table (a data frame's HTML): at most ``most`` body rows, and a row saying how many more."""
    body = re.search(r"<tbody>(.*?)</tbody>", table, flags=re.S)
    rows = re.findall(r"<tr.*?</tr>", body.group(1), flags=re.S) if body else []
    if len(rows) <= most:
        return table
    more = f'<tr><td colspan="99" class="code-more">… {len(rows) - most} more rows in the notebook</td></tr>'
    return table[: body.start(1)] + "\n".join(rows[:most]) + more + table[body.end(1) :]


def _text_columns(text: str, wanted: list[str]) -> str:
    """A table printed as text (pandas' ``to_string``: right-aligned columns under their names) with
    only its index and the columns named ``wanted``; lines above the header stay as they are."""
    lines = text.split("\n")
    head = next((k for k, line in enumerate(lines) if all(w in line for w in wanted)), None)
    if head is None:
        raise ValueError(f"no printed line names all of the columns {wanted}")
    header = lines[head]
    # The index: each row's label, up to its first run of two spaces.
    labels = [re.match(r"\s*\S+(?: \S+)*", line) for line in lines[head + 1 :] if line.strip()]
    cut = max((m.end() for m in labels if m), default=0)
    ends = sorted(m.end() for m in re.finditer(r"\S+(?: \S+)*", header))  # where each column name ends
    spans = []
    for name in wanted:
        end = header.index(name) + len(name)
        start = max((e for e in ends if e < end - len(name) + 1), default=cut)
        spans.append((max(start, cut), end))
    out = lines[:head]
    for line in lines[head:]:
        out.append(line[:cut].ljust(cut) + "".join(line[a:b] for a, b in spans))
    return "\n".join(x.rstrip() for x in out)


def wrap_printed(line: str, width: int = OUTPUT_COLUMNS) -> list[str]:
    """One printed line as lines of at most ``width`` characters, broken at spaces (a word longer
    than the line is cut), each continuation indented two spaces more than the line."""
    if len(line) <= width:
        return [line]
    line = line.rstrip()
    hang = " " * (len(line) - len(line.lstrip()) + 2)
    out, rest = [], line
    while len(rest) > width:
        cut = rest.rfind(" ", len(hang) + 1, width + 1)
        if cut <= len(hang) or not rest[:cut].strip():
            cut = width
        out.append(rest[:cut].rstrip())
        rest = hang + rest[cut:].lstrip()
    return out + [rest]


def _output_lines(text: str, wanted) -> str:
    """The printed lines a slide shows (``wanted``: all, or ``[first, last]``), each re-wrapped to
    fit the slide's width; at most OUTPUT_LINES of them when the slide names none."""
    lines = text.split("\n")
    if isinstance(wanted, list):
        lines = lines[wanted[0] - 1 : wanted[1]]
    lines = [part for line in lines for part in wrap_printed(line)]
    if not isinstance(wanted, list) and len(lines) > OUTPUT_LINES:
        lines = lines[:OUTPUT_LINES] + [f"… {len(lines) - OUTPUT_LINES} more lines in the notebook"]
    return "\n".join(lines)


def _figure_file(data: str | bytes, dest: Path, name: str) -> str:
    """Save a figure beside the deck (``figures/``); its relative path."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    folder = dest / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(raw)
    return f"figures/{name}"


def _notes(spec: dict, minutes: float, elapsed: float, heading: str) -> str:
    parts = [f"<p>⏱ {minutes:g} min on this slide · {elapsed:g} min into the talk when it ends</p>"]
    for key, label in (("say", "Say"), ("ask", "Ask the class"), ("demo", "Demo live")):
        if spec.get(key):
            parts.append(f"<p><strong>{label}:</strong> {render_markdown(spec[key])[3:-5]}</p>")
    if heading:
        parts.append(f"<p>In the notebook: “{html.escape(heading)}”.</p>")
    return '<aside class="notes">' + "".join(parts) + "</aside>"


def render_slide(
    slide: talks_module.Slide, nb: nbformat.NotebookNode, dest: Path, stem: str, elapsed: float
) -> str:
    """One ``<section>`` of the deck."""
    spec = slide.spec
    keep = bool(spec.get("keep_warnings"))
    body = []
    if spec.get("points"):
        body.append(f'<div class="points">{render_markdown(spec["points"])}</div>')
    if slide.code is not None:
        if not spec.get("hide_code"):
            code, left = slide_code(slide.code.source, spec.get("lines"))
            more = f'\n<span class="code-more"># … {left} more lines in the notebook</span>' if left else ""
            body.append(f'<pre class="code"><code>{_code_html(code).rstrip()}{more}</code></pre>')
        text, tables = _printed(slide.code, keep)
        for key, found in (("output", text), ("table", tables)):
            if spec.get(key) and not found:
                raise ValueError(
                    f"{stem}, slide {slide.number} ({spec['title']!r}): asks for the cell's "
                    f"{'printed output' if key == 'output' else 'table'}, and the cell has none"
                )
        if spec.get("output") and text:
            if spec.get("text_columns"):
                text = _text_columns(text, spec["text_columns"])
            shown = _output_lines(text, spec["output"])
            purpose = " on-purpose" if keep else ""
            body.append(f'<pre class="output{purpose}">{html.escape(shown)}</pre>')
        for table in tables[:1] if spec.get("table") else []:
            if isinstance(spec["table"], list):
                table = _table_columns(table, spec["table"])
            body.append(f'<div class="output table">{_table_rows(table)}</div>')
    elif spec.get("output") and slide.figure is not None:
        text, _ = _printed(slide.figure, keep)
        if text:
            body.append(f'<pre class="output">{html.escape(_output_lines(text, spec["output"]))}</pre>')
    picture, text_px = None, None
    if spec.get("redraw"):
        import slide_figures

        png = slide_figures.redraw(spec["redraw"], nb)
        picture = _figure_file(png, dest, f"{stem}-{slide.number:02d}.png")
        text_px = slide_figures.smallest_text_px(png)
    elif slide.figure is not None:
        images = talks_module.figures_of(slide.figure)
        index = int(spec.get("figure_index", 0))
        if index < len(images):
            picture = _figure_file(images[index], dest, f"{stem}-{slide.number:02d}.png")
    if picture:
        alt = html.escape(spec.get("figure_alt", spec["title"]))
        # A figure drawn for the slide says how large its smallest text is (pixels of the PNG), so
        # the browser test can measure that text as the slide shows it.
        size = f' data-text-px="{text_px:g}"' if text_px else ""
        body.append(f'<div class="figure"><img src="{picture}" alt="{alt}"{size}></div>')
    heading = ""
    if slide.heading >= 0:
        heading = next((t for c, _, t in talks_module.headings(nb) if c == slide.heading), "")
    title = render_markdown(spec["title"]).strip()[3:-4]
    kind = "talk-slide" + (" has-figure" if picture else "")
    return (
        f'<section class="{kind}" data-slide="{slide.number}"><div class="frame"><h2>{title}</h2>'
        f'<div class="slide-body">{"".join(body)}</div></div>'
        f"{_notes(spec, slide.minutes, elapsed, heading)}</section>"
    )


def _title_slide(talk: talks_module.Talk, nb: nbformat.NotebookNode) -> str:
    first = nb.cells[0].source.lstrip().split("\n")[0].lstrip("#").strip()
    title = talk.data.get("title", first)
    goals = render_markdown(talk.data.get("goals", ""))
    minutes = float(talk.data.get("minutes_title", 1))
    plan45, plan90 = talk.plan(45), talk.plan(90)
    say = {
        "say": f"This talk takes {plan90['talk']:g} minutes in full ({plan45['talk']:g} without the "
        "slides marked optional). Ask who has run the notebook already."
    }
    heading = render_markdown(title).strip()[3:-4]
    return (
        f'<section class="title-slide" data-slide="0"><div class="frame"><h1>{heading}</h1>'
        f'<div class="slide-body"><div class="points">{goals}</div>'
        '<p class="course">Practical Image Embeddings with PyTorch</p></div></div>'
        f"{_notes(say, minutes, minutes, '')}</section>"
    )


def deck_html(stem: str, nb: nbformat.NotebookNode, talk: talks_module.Talk, dest: Path) -> tuple[str, dict]:
    """The deck of the executed lesson ``nb`` as one HTML page; and its numbers."""
    slides = talks_module.resolve(talk, nb, stem)
    elapsed = float(talk.data.get("minutes_title", 1))
    sections = [_title_slide(talk, nb)]
    for slide in slides:
        elapsed += slide.minutes
        sections.append(render_slide(slide, nb, dest, stem, elapsed))
    css = (TEMPLATE / "slides.css").read_text(encoding="utf-8")
    css += HtmlFormatter(style="default").get_style_defs(".reveal pre.code")
    page = (TEMPLATE / "deck.html").read_text(encoding="utf-8")
    title = html.escape(talk.data.get("title", stem))
    page = (
        page.replace("{{ title }}", title)
        .replace("{{ css }}", css)
        .replace("{{ slides }}", "\n".join(sections))
        .replace("{{ width }}", str(SLIDE_WIDTH))
        .replace("{{ height }}", str(SLIDE_HEIGHT))
    )
    return page, {"slides": len(sections), "minutes": elapsed, "minutes_45": talk.plan(45)["talk"]}


# --------------------------------------------------------------------------- decks


def copy_deck_assets(dest: Path) -> None:
    """reveal.js, MathJax and the pictures a deck loads, into the deck's folder."""
    copy_files(vendor("reveal.js"), REVEAL_FILES, dest / "reveal.js")
    copy_mathjax(dest / "mathjax")
    images = dest / "images"
    for src in (REPO / "images").rglob("*"):
        if src.is_file():
            (images / src.relative_to(REPO / "images")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, images / src.relative_to(REPO / "images"))
    write_badge(images / "colab-badge.svg")


def build_deck(name: str, nb: nbformat.NotebookNode, dest: Path) -> dict:
    """Write ``dest/<lesson>.html`` for the executed lesson ``nb`` from its talk file; its numbers."""
    stem = Path(name).stem
    page, stats = deck_html(stem, nb, talks_module.load_talk(stem), dest)
    (dest / f"{stem}.html").write_text(page, encoding="utf-8")
    return stats


def build_slides(
    executed: dict[str, nbformat.NotebookNode], dest: Path = SLIDES, log=print, handouts: bool = True
) -> dict[str, dict]:
    """A deck for each executed lesson (``{notebook name: notebook}``) in ``dest``, and its PDF
    handout in ``dest/pdf`` (skipped, with a message, without Chromium); per-deck numbers."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest / "figures", ignore_errors=True)
    copy_deck_assets(dest)
    stats = {}
    for name, nb in executed.items():
        stats[name] = build_deck(name, nb, dest)
        s = stats[name]
        log(
            f"{Path(name).stem}.html: {s['slides']} slides, {s['minutes']:g} min "
            f"({s['minutes_45']:g} min in a 45-minute class)"
        )
    if handouts:
        print_handouts([dest / f"{Path(n).stem}.html" for n in executed], dest / "pdf", log=log)
    return stats


def print_handouts(decks: list[Path], dest: Path, log=print) -> list[Path]:
    """Each deck as a PDF handout, one slide a page, printed from reveal.js's ``?print-pdf`` view."""
    if chromium_path() is None:
        log("no PDF handouts: Chromium or Playwright is missing (see README, 'Slides and website')")
        return []
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": SLIDE_WIDTH, "height": SLIDE_HEIGHT})
        for deck in decks:
            page.goto(deck.resolve().as_uri() + "?print-pdf")
            wait_for_deck(page)
            page.wait_for_timeout(300)
            out = dest / f"{deck.stem}.pdf"
            page.pdf(
                path=str(out),
                width=f"{SLIDE_WIDTH}px",
                height=f"{SLIDE_HEIGHT}px",
                print_background=True,
                prefer_css_page_size=True,
            )
            done.append(out)
        page.close()
    log(f"PDF handouts in {dest}")
    return done


SCREENSHOT_SLIDES = 4  # slides per deck photographed for a person to look at


def screenshot_decks(decks: list[Path], dest: Path = SCREENSHOTS, log=print, browser=None) -> list[Path]:
    """Screenshots of several slides of each deck (``dest/slides_<lesson>_<n>.png``): the title,
    and slides spread over the deck, figures first. Skipped without Chromium."""
    if browser is None:
        if chromium_path() is None:
            log("no screenshots: Chromium or Playwright is missing (see README, 'Slides and website')")
            return []
        with chromium() as own:
            return screenshot_decks(decks, dest, log, own)
    dest.mkdir(parents=True, exist_ok=True)
    shots = []
    page = browser.new_page(viewport={"width": SLIDE_WIDTH, "height": SLIDE_HEIGHT})
    for deck in decks:
        page.goto(deck.resolve().as_uri())
        wait_for_deck(page)
        total = page.evaluate("Reveal.getTotalSlides()")
        figures = page.evaluate(
            "[...Reveal.getSlides()].map((s, i) => s.querySelector('.figure') ? i : -1).filter(i => i >= 0)"
        )
        code = page.evaluate(
            "[...Reveal.getSlides()].map((s, i) => s.querySelector('pre.output') ? i : -1)"
            ".filter(i => i >= 0)"
        )
        chosen = [0] + figures[:2] + code[len(code) // 2 : len(code) // 2 + 1] + [total - 1]
        for i in sorted(set(chosen))[: SCREENSHOT_SLIDES + 1]:
            page.evaluate(f"Reveal.slide({i})")
            page.wait_for_timeout(150)
            out = dest / f"slides_{deck.stem}_{i:02d}.png"
            page.screenshot(path=str(out))
            shots.append(out)
    page.close()
    log(f"screenshots in {dest}")
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        metavar="NOTEBOOK",
        help="build only these lessons (default: every notebooks/NN_*.ipynb)",
    )
    parser.add_argument("--out", type=Path, default=SLIDES, help=f"output folder (default: {SLIDES})")
    parser.add_argument("--no-pdf", action="store_true", help="leave out the PDF handouts")
    args = parser.parse_args()
    executed = execute_all([p.resolve() for p in args.notebooks] or lessons())
    build_slides(executed, args.out, handouts=not args.no_pdf)
    print(f"decks in {args.out}")
    screenshot_decks([args.out / f"{Path(name).stem}.html" for name in executed])
    return 0


if __name__ == "__main__":
    sys.exit(main())
