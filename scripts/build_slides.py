"""Build every lesson's slide deck, executed, to present offline: ``build/slides/NN_name.html``.

``python scripts/build_slides.py`` executes each lesson once (cached, see
``scripts/execute_lessons.py``) and writes one reveal.js deck per lesson, named
after its notebook, with everything a deck needs beside it: reveal.js and its
speaker-notes plugin (from the reveal.js npm package), MathJax 3 (from the
mathjax npm package) and the lessons' pictures. Both packages are fetched once
with ``npm pack`` into ``build/vendor/`` and checked against the integrity hashes
below; after that the build needs no network, and ``build/slides/`` copied to a
USB stick presents on a laptop that has none.

How a lesson becomes slides (the notebook itself is never changed):

- ``#``/``##`` headings start a slide and ``###`` a vertical sub-slide, and
  display-math cells unfold as fragments: ``scripts/sync_notebooks.py`` stores
  these slide types in the notebook;
- cell metadata overrides: ``"slides": "skip"`` (not on slides), ``"slides":
  "output"`` (show only what the cell prints or draws), ``"slides": {"lines": N}``
  (show the first N lines of the code), ``"notes": "..."`` (speaker notes);
- long code cells are shown in part (``CODE_LINES`` lines and a line saying how
  many more the notebook has), long printed outputs likewise, tracebacks of cells
  that fail on purpose as their last line;
- every slide is fitted to the 1280 x 720 canvas: heights are estimated from the
  text, the code and the real figure sizes; content that does not fit continues on
  a sub-slide, long markdown cells are split between paragraphs, and figures are
  scaled to the room left;
- each slide gets speaker notes with a timing cue (words at 130 a minute, code
  and figures at fixed allowances) and the running time of the lesson.

``tests/test_editions.py`` opens the decks in headless Chromium and checks that no
slide overflows its box, nothing is requested from the network and every image
decodes.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import io
import math
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute_lessons import BUILD, REPO, execute_all, lessons  # noqa: E402
from headless import chromium, chromium_path, screenshot_deck  # noqa: E402

__all__ = [
    "SLIDE_WIDTH", "SLIDE_HEIGHT", "vendor", "slides_notebook", "build_deck", "build_slides",
    "BADGE_URL", "write_badge", "localise_images",
]

SLIDES = BUILD / "slides"
SCREENSHOTS = BUILD / "screenshots"
VENDOR = BUILD / "vendor"
TEMPLATE = Path(__file__).resolve().parent / "slides_template"

# npm packages the decks (and the site's math) are served from: version and npm integrity hash.
NPM_PACKAGES = {
    "reveal.js": ("5.2.1", "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRz"
                           "Fv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ=="),
    "mathjax": ("3.2.2", "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9Nl"
                         "iPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="),
}
# What a deck needs from each package (paths inside the package).
REVEAL_FILES = ["LICENSE", "dist/reveal.js", "dist/reveal.css", "dist/reset.css", "dist/theme/white.css",
                "dist/theme/fonts/source-sans-pro", "plugin/notes/notes.js"]
MATHJAX_FILES = ["LICENSE", "es5/tex-chtml.js", "es5/input/tex/extensions", "es5/output/chtml/fonts/woff-v2",
                 "es5/a11y", "es5/ui", "es5/adaptors"]

BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"

# The canvas and what fits on it, in canvas pixels; slides_template/slides.css uses the same sizes.
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 720
BUDGET = 590            # content height a slide may fill (the rest is a safety margin)
TEXT_LINE, TEXT_CHARS = 32, 84            # 24 px text: line height, characters per line
HEADING = {1: 72, 2: 62, 3: 54, 4: 46}     # a heading's first line with its margins
HEADING_SIZE = {1: 44, 2: 36, 3: 30, 4: 26}  # font sizes (slides.css): each further line
PARAGRAPH_GAP = 12
MATH_LINE = 60
TABLE_LINE, TABLE_CELL_PAD = 31.2, 16    # markdown tables: 24 px text, wrapping in their cells
OUT_TABLE_FONT, OUT_TABLE_ROW = 16, 28   # printed tables (data frames): 16 px text, one line a row
TABLE_FONT_MIN = 12                      # a wide printed table is set in type down to this size
CHAR_EM, TABLE_CHAR_PAD = 0.58, 18       # width of a character of the slide font, in em; cell padding
CODE_LINE, CODE_CHARS, CODE_PAD = 23.5, 110, 18   # 17 px monospace
OUT_LINE, OUT_CHARS, OUT_PAD = 21, 118, 10        # 16 px monospace
CELL_GAP = 10
FIGURE_MAX, FIGURE_MIN = 440, 220
FIGURE_ROOM = 540       # a figure that has a sub-slide to itself may grow to this height
FIGURE_UPSCALE = 1.5    # a small figure a cell draws is shown up to this much larger, to be legible
BADGE_HEIGHT = 36       # the Open-in-Colab badge (28 px, slides.css)
CODE_LINES = 12         # code lines shown on a slide unless the cell says otherwise
OUTPUT_LINES = 8        # printed lines shown on a slide
CONTINUED = 30          # the "continued" line on a sub-slide that carries a slide on
# Timing cues: reading pace and allowances, in seconds.
WORDS_PER_MIN, SECONDS_PER_CODE_LINE, SECONDS_PER_CODE_CELL, SECONDS_PER_FIGURE = 130, 3, 15, 30


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
            raise RuntimeError(f"{name} {version} is fetched with npm, which is not installed: "
                               "install Node.js (Debian: apt-get install npm)")
        result = subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(VENDOR)],
                                capture_output=True, text=True)
        if result.returncode != 0 or not tarball.exists():
            raise RuntimeError(f"npm pack {name}@{version} failed (is the npm registry reachable?):\n"
                               f"{result.stderr[-2000:]}")
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


# --------------------------------------------------------------------------- fitting slides

def _wrapped(text: str, width: int) -> int:
    """Lines ``text`` takes when wrapped at ``width`` characters."""
    return sum(max(1, math.ceil(len(line) / width)) for line in text.split("\n"))


def _image_size(data: str | bytes) -> tuple[int, int]:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    with Image.open(io.BytesIO(raw)) as im:
        return im.size


def _figure_height(width: int, height: int, upscale: float = 1.0) -> float:
    """Height a figure is shown at: as wide as the slide allows, up to ``upscale`` times its own size."""
    return min(height * min(upscale, (SLIDE_WIDTH - 60) / width), FIGURE_MAX)


def _plain(text: str) -> str:
    """Markdown inline markup reduced to the characters a reader sees."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[*_`]", "", text)


def markdown_blocks(source: str) -> list[str]:
    """Split markdown at blank lines, keeping code fences, display math and <details> whole."""
    blocks, current, closing = [], [], None
    for line in source.split("\n"):
        stripped = line.strip()
        if closing is None:
            if stripped.startswith("```"):
                closing = "```"
            elif stripped.startswith("$$") and not (len(stripped) > 2 and stripped.endswith("$$")):
                closing = "$$"
            elif stripped.startswith("<details"):
                closing = "</details>" if "</details>" not in stripped else None
            elif not stripped:
                if current:
                    blocks.append("\n".join(current))
                    current = []
                continue
        elif stripped.endswith(closing) or (closing == "</details>" and closing in stripped):
            closing = None
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def table_height(rows: list[list[str]], font: float = 24, line: float = TABLE_LINE) -> float:
    """Height of a table whose cells wrap to the slide's width.

    Columns share the width in proportion to their widest cell (the browser's automatic
    layout, roughly); a row is as tall as its cell that wraps to the most lines.
    """
    char = CHAR_EM * font
    cols = max(len(r) for r in rows)
    natural = [max(len(r[j]) if j < len(r) else 0 for r in rows) * char + TABLE_CHAR_PAD for j in range(cols)]
    scale = min(1.0, (SLIDE_WIDTH - 20) / sum(natural))
    total = 0.0
    for r in rows:
        lines = max(math.ceil(len(c) * char / max(natural[j] * scale - TABLE_CHAR_PAD, char)) or 1
                    for j, c in enumerate(r))
        total += lines * line + TABLE_CELL_PAD
    return total


def html_table_width(html: str, font: float = OUT_TABLE_FONT) -> float:
    """Width of an HTML table (a data frame's) whose cells do not wrap: its widest cells, column by column."""
    widths: list[float] = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)
        for j, cell in enumerate(cells):
            width = len(re.sub(r"<[^>]+>", "", cell).strip()) * CHAR_EM * font + TABLE_CHAR_PAD
            if j < len(widths):
                widths[j] = max(widths[j], width)
            else:
                widths.append(width)
    return sum(widths)


def _table_head(html: str, keep: int) -> tuple[str, int]:
    """The HTML table with only its first ``keep`` body rows, and how many rows were left out."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, flags=re.S)
    rows = re.findall(r"<tr.*?</tr>", body.group(1), flags=re.S) if body else []
    if len(rows) <= keep:
        return html, 0
    return html[: body.start(1)] + "\n".join(rows[:keep]) + html[body.end(1):], len(rows) - keep


def markdown_height(source: str) -> float:
    """Estimated height of a markdown cell on the slide canvas."""
    total = 0.0
    for block in markdown_blocks(source):
        lines = block.split("\n")
        first = lines[0].strip()
        if first.startswith("```"):
            total += len(lines) * CODE_LINE + CODE_PAD
        elif first.startswith("$$"):
            total += max(1, len(lines) - 2) * MATH_LINE + PARAGRAPH_GAP
        elif first.startswith("<details"):
            total += TEXT_LINE + PARAGRAPH_GAP
        elif first.startswith("#"):
            level = len(first) - len(first.lstrip("#"))
            rest = _logical_lines(_plain("\n".join(lines[1:])))
            size = HEADING_SIZE.get(level, 24)
            wrapped = math.ceil(len(_plain(first.lstrip("#").strip())) / (TEXT_CHARS * 24 / size * 1.2))
            total += HEADING.get(level, TEXT_LINE) + (max(1, wrapped) - 1) * size * 1.2
            total += TEXT_LINE * _wrapped(rest, TEXT_CHARS) if rest.strip() else 0
        elif first.startswith("|"):
            rows = [[_plain(c).strip() for c in line.strip().strip("|").split("|")]
                    for line in lines if not re.fullmatch(r"\|?[\s:|-]+\|?", line.strip())]
            total += table_height(rows) + PARAGRAPH_GAP
        else:
            for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", block):
                path = REPO / "images" / image.split("images/")[-1]
                if image.endswith("colab-badge.svg"):
                    total += BADGE_HEIGHT
                elif path.is_file():
                    total += _figure_height(*_image_size(path.read_bytes()))
                else:
                    total += FIGURE_MAX
            text = _logical_lines(_plain(block))
            total += (TEXT_LINE * _wrapped(text, TEXT_CHARS) if text.strip() else 0) + PARAGRAPH_GAP
    return total


def _logical_lines(text: str) -> str:
    """Markdown text with soft line breaks joined: one line per paragraph or list item."""
    out: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        starts_item = re.match(r"([-*+]|\d+[.)])\s", stripped) is not None
        if out and stripped and not starts_item and not out[-1].endswith(("  ", "<br>")) and out[-1].strip():
            out[-1] += " " + stripped
        else:
            out.append(stripped)
    return "\n".join(out)


def _truncate(text: str, keep: int, what: str, prefix: str = "") -> str:
    lines = text.rstrip("\n").split("\n")
    if len(lines) <= keep:
        return "\n".join(lines)
    return "\n".join(lines[:keep] + [f"{prefix}… {len(lines) - keep} more {what} in the notebook"])


@dataclass
class Piece:
    """One cell as it goes on a slide, with its estimated height and what the timing cue counts."""

    cell: nbformat.NotebookNode
    height: float
    seconds: float
    figures: list[tuple[dict, str, int, int]] = field(default_factory=list)   # (output, mime, w, h)
    notes: list[str] = field(default_factory=list)
    continues: str = ""     # the title of the slide this piece carries on, if it starts a sub-slide


def _merged_streams(outputs: list) -> list:
    """The outputs with consecutive prints to the same stream joined, so they are shortened as one."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1] = copy.deepcopy(merged[-1])
            merged[-1]["text"] += out.get("text", "")
        else:
            merged.append(out)
    return merged


def code_piece(cell: nbformat.NotebookNode) -> Piece | None:
    """The code cell as shown on a slide: code in part, outputs in part, figures sized."""
    override = cell.metadata.get("slides")
    cell = copy.deepcopy(cell)
    notes = []
    shown_lines = 0
    if override == "output":
        if not cell.outputs:
            return None
        cell.source = ""
        cell.metadata["transient"] = {"remove_source": True}
        notes.append("The code of this cell is in the notebook.")
    else:
        keep = override.get("lines", CODE_LINES) if isinstance(override, dict) else CODE_LINES
        total = len(cell.source.rstrip("\n").split("\n"))
        cell.source = _truncate(cell.source, keep, "lines", prefix="# ")
        shown_lines = min(total, keep)
        if total > keep:
            notes.append(f"Code shown in part: the cell has {total} lines in the notebook.")
    height = (_wrapped(cell.source, CODE_CHARS) * CODE_LINE + CODE_PAD) if cell.source else 0
    outputs, figures = [], []
    for out in _merged_streams(cell.outputs):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stderr" and not out.get("text", "").strip():
                continue
            out = copy.deepcopy(out)
            out["text"] = _truncate(out["text"], OUTPUT_LINES, "printed lines")
            height += _wrapped(out["text"], OUT_CHARS) * OUT_LINE + OUT_PAD
        elif kind == "error":
            out = nbformat.v4.new_output("stream", name="stderr", text=f"{out['ename']}: {out['evalue']}")
            out["text"] = _truncate(out["text"], 3, "lines")
            height += _wrapped(out["text"], OUT_CHARS) * OUT_LINE + OUT_PAD
        else:
            out = copy.deepcopy(out)
            data = out.get("data", {})
            image = next((m for m in ("image/png", "image/jpeg") if m in data), None)
            if image:
                if any(data[image] == f[0]["data"][f[1]] for f in figures):
                    continue  # a figure both displayed and returned: show it once
                for other in list(data):
                    if other != image:
                        del data[other]
                w, h = _image_size(data[image])
                figures.append((out, image, w, h))
                shown = _figure_height(w, h, FIGURE_UPSCALE)
                size = {"height": round(shown), "width": round(w * shown / h)}
                out.setdefault("metadata", {})[image] = size
                height += shown + OUT_PAD
            elif "text/html" in data and "<table" in data["text/html"]:
                html, more = _table_head(data["text/html"], OUTPUT_LINES)
                font = next((f for f in range(OUT_TABLE_FONT, TABLE_FONT_MIN - 1, -1)
                             if html_table_width(html, f) <= SLIDE_WIDTH - 60), None)
                plain = data.get("text/plain", "")
                if font is None and plain:
                    # Too wide to read even in small type: the printed text, which wraps.
                    out["data"] = {"text/plain": _truncate(plain, 2 * OUTPUT_LINES, "lines")}
                    height += _wrapped(out["data"]["text/plain"], OUT_CHARS) * OUT_LINE + OUT_PAD
                else:
                    font = font or TABLE_FONT_MIN
                    if more:
                        html += f'<p class="code-elided">… {more} more rows in the notebook</p>'
                    html = f'<div class="slide-table" style="font-size: {font}px">{html}</div>'
                    out["data"] = {"text/html": html}
                    rows = html.count("<tr") + (1 if more else 0)
                    height += rows * OUT_TABLE_ROW * font / OUT_TABLE_FONT + OUT_PAD
            elif "text/plain" in data:
                out["data"] = {"text/plain": _truncate(data["text/plain"], OUTPUT_LINES, "lines")}
                height += _wrapped(out["data"]["text/plain"], OUT_CHARS) * OUT_LINE + OUT_PAD
            elif any(m.startswith("image/svg") for m in data):
                height += FIGURE_MAX
            else:
                height += TEXT_LINE * 2
        outputs.append(out)
    cell.outputs = outputs
    seconds = SECONDS_PER_CODE_CELL + SECONDS_PER_CODE_LINE * shown_lines + SECONDS_PER_FIGURE * len(figures)
    return Piece(cell, height + CELL_GAP, seconds, figures, notes)


def _is_lead(block: str) -> bool:
    """A short block that introduces the next one: a bold line, or a sentence ending in a colon."""
    text = block.strip()
    return "\n" not in text and (re.fullmatch(r"\*\*[^*]+\*\*:?", text) is not None or text.endswith(":"))


def markdown_pieces(cell: nbformat.NotebookNode) -> list[Piece]:
    """The markdown cell as one piece, or split into pieces: at headings, and between paragraphs so each fits.

    A ``#``/``##`` heading inside the cell starts a slide and a ``###`` heading a sub-slide,
    as they do at the top of a cell.
    """
    chunks: list[list[str]] = [[]]
    kinds: list[str] = [""]
    for block in markdown_blocks(cell.source):
        heading = re.match(r"(#{1,3})\s", block.lstrip())
        if chunks[-1] and heading:
            chunks.append([])
            kinds.append("slide" if len(heading.group(1)) <= 2 else "subslide")
        elif chunks[-1] and markdown_height("\n\n".join(chunks[-1] + [block])) > BUDGET - CONTINUED:
            # A lead-in ("**What you will learn**", a line ending in a colon) goes with what it introduces.
            lead = [chunks[-1].pop()] if len(chunks[-1]) > 1 and _is_lead(chunks[-1][-1]) else []
            chunks.append(lead)
            kinds.append("-")
        chunks[-1].append(block)
    pieces = []
    for i, (chunk, kind) in enumerate(zip(chunks, kinds, strict=True)):
        part = copy.deepcopy(cell)
        part.source = "\n\n".join(chunk)
        if i:
            part.metadata["slideshow"] = {"slide_type": kind}
        words = len(_plain(part.source).split())
        pieces.append(Piece(part, markdown_height(part.source) + CELL_GAP, 60 * words / WORDS_PER_MIN))
    return pieces


def _fit_figures(piece: Piece, room: float, force: bool = False) -> bool:
    """Scale the piece's figures down so it fits in ``room``; False if they would get too small.

    With ``force`` (the piece has a slide to itself) they are scaled down whatever it takes.
    """
    if not piece.figures:
        return piece.height <= room
    planned = [_figure_height(w, h, FIGURE_UPSCALE) for _, _, w, h in piece.figures]
    fixed = piece.height - sum(planned)
    scale = min(1.0, max(room - fixed, 0.1 * sum(planned)) / sum(planned))
    if min(p * scale for p in planned) < FIGURE_MIN and scale < 1.0 and not force:
        return False
    for (out, mime, w, h), p in zip(piece.figures, planned, strict=True):
        shown = max(1, round(p * scale))
        out.setdefault("metadata", {})[mime] = {"height": shown, "width": max(1, round(w * shown / h))}
    piece.height = fixed + sum(p * scale for p in planned)
    return True


def _grow_figures(piece: Piece, room: float) -> None:
    """Let the figures of a piece that starts a sub-slide grow into the room there (up to FIGURE_ROOM)."""
    if not piece.figures:
        return
    shown = [out["metadata"][mime]["height"] for out, mime, _, _ in piece.figures]
    fixed = piece.height - sum(shown)
    scale = (room - fixed) / sum(shown)
    if scale <= 1:
        return
    for (out, mime, w, h), now in zip(piece.figures, shown, strict=True):
        limit = min(h * min(FIGURE_UPSCALE, (SLIDE_WIDTH - 60) / w), FIGURE_ROOM)
        height = max(now, min(round(now * scale), round(limit)))
        out["metadata"][mime] = {"height": height, "width": max(1, round(w * height / h))}
    piece.height = fixed + sum(out["metadata"][mime]["height"] for out, mime, _, _ in piece.figures)


def _title(cell: nbformat.NotebookNode) -> str:
    first = cell.source.lstrip().split("\n")[0] if cell.cell_type == "markdown" else ""
    return _plain(first.lstrip("#").strip()) if first.startswith("#") else ""


def slides_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[float]]:
    """The executed lesson laid out as slides; also each slide's timing in seconds."""
    pieces: list[Piece] = []
    for cell in nb.cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if kind == "skip" or cell.metadata.get("slides") == "skip":
            continue
        if kind == "notes":
            pieces.append(Piece(copy.deepcopy(cell), 0, 0))
        elif cell.cell_type == "code":
            piece = code_piece(cell)
            if piece:
                pieces.append(piece)
        elif cell.cell_type == "markdown":
            pieces.extend(markdown_pieces(cell))
        else:
            continue
        if cell.metadata.get("notes"):
            pieces[-1].notes.append(str(cell.metadata["notes"]))

    slides: list[list[Piece]] = []
    used, title = 0.0, ""
    for piece in pieces:
        kind = piece.cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if kind in ("slide", "subslide") or not slides:
            slides.append([piece])
            used, title = piece.height, _title(piece.cell) or title
            if used > BUDGET:
                _fit_figures(piece, BUDGET, force=True)
                used = piece.height
            continue
        if kind == "notes":
            slides[-1].append(piece)
            continue
        if used + piece.height > BUDGET and not _fit_figures(piece, BUDGET - used):
            # Carry on under the same heading on a vertical sub-slide, taking along the sentence
            # that introduces this piece (a markdown piece ending in a colon).
            lead = slides[-1][-1]
            if (len(slides[-1]) > 1 and lead.cell.cell_type == "markdown" and lead.height
                    and lead.cell.source.rstrip().endswith(":")
                    and CONTINUED + lead.height + piece.height <= BUDGET):
                slides[-1].pop()
                lead.cell.metadata["slideshow"] = {"slide_type": "subslide"}
                piece.cell.metadata["slideshow"] = {"slide_type": "-"}
                slides.append([lead, piece])
                used = CONTINUED + lead.height + piece.height
                lead.continues = title
                continue
            piece.cell.metadata["slideshow"] = {"slide_type": "subslide"}
            slides.append([piece])
            if CONTINUED + piece.height > BUDGET:
                _fit_figures(piece, BUDGET - CONTINUED, force=True)
            else:
                _grow_figures(piece, BUDGET - CONTINUED)
            used = CONTINUED + piece.height
            piece.continues = title
            continue
        slides[-1].append(piece)
        used += piece.height

    cells, timings, elapsed = [], [], 0.0
    for group in slides:
        seconds = sum(p.seconds for p in group)
        timings.append(seconds)
        elapsed += seconds
        continues = group[0].continues
        if continues:
            cells.append(nbformat.v4.new_markdown_cell(
                f'<p class="slide-continued">{continues} (continued)</p>',
                metadata={"slideshow": {"slide_type": "subslide"}}))
            group[0].cell.metadata["slideshow"] = {"slide_type": "-"}
        cells.extend(p.cell for p in group)
        minutes = max(0.5, round(seconds / 30) / 2)
        lines = [f"⏱ ~{minutes:g} min on this slide · ~{max(1, round(elapsed / 60))} min into the lesson"]
        lines += [n for p in group for n in p.notes]
        cells.append(nbformat.v4.new_markdown_cell("\n\n".join(lines),
                                                   metadata={"slideshow": {"slide_type": "notes"}}))
    out = copy.deepcopy(nb)
    out.cells = cells
    return out, timings


# --------------------------------------------------------------------------- decks

def copy_deck_assets(dest: Path) -> None:
    """reveal.js, MathJax and the pictures a deck loads, into the deck's folder."""
    copy_files(vendor("reveal.js"), REVEAL_FILES, dest / "reveal.js")
    copy_mathjax(dest / "mathjax")


def build_deck(name: str, nb: nbformat.NotebookNode, dest: Path) -> dict:
    """Write ``dest/<lesson>.html`` for the executed lesson ``nb``; its slide count and timing."""
    nb = copy.deepcopy(nb)
    localise_images(nb, dest / "images")
    deck, timings = slides_notebook(nb)
    exporter = SlidesExporter(
        template_name="slides_template", extra_template_basedirs=[str(TEMPLATE.parent)],
        reveal_url_prefix="reveal.js", reveal_theme="white", reveal_transition="none",
        reveal_width=str(SLIDE_WIDTH), reveal_height=str(SLIDE_HEIGHT),
    )
    html, _ = exporter.from_notebook_node(deck, resources={"metadata": {"name": Path(name).stem}})
    (dest / f"{Path(name).stem}.html").write_text(html, encoding="utf-8")
    return {"slides": len(timings), "minutes": round(sum(timings) / 60)}


def build_slides(
    executed: dict[str, nbformat.NotebookNode], dest: Path = SLIDES, log=print
) -> dict[str, dict]:
    """A deck for each executed lesson (``{notebook name: notebook}``) in ``dest``; per-deck stats."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_deck_assets(dest)
    stats = {}
    for name, nb in executed.items():
        stats[name] = build_deck(name, nb, dest)
        log(f"{Path(name).stem}.html: {stats[name]['slides']} slides, ~{stats[name]['minutes']} min")
    return stats


def screenshot_decks(decks: list[Path], dest: Path = SCREENSHOTS, log=print) -> None:
    """One slide of each deck as ``dest/slides_<lesson>.png``, for review (skipped without Chromium)."""
    if chromium_path() is None:
        log("no screenshots: Chromium or Playwright is missing (see README, 'Slides and website')")
        return
    with chromium() as browser:
        for deck in decks:
            screenshot_deck(browser, deck, dest / f"slides_{deck.stem}.png", SLIDE_WIDTH, SLIDE_HEIGHT)
    log(f"screenshots in {dest}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, metavar="NOTEBOOK",
                        help="build only these lessons (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=SLIDES, help=f"output folder (default: {SLIDES})")
    args = parser.parse_args()
    executed = execute_all([p.resolve() for p in args.notebooks] or lessons())
    build_slides(executed, args.out)
    print(f"decks in {args.out}")
    screenshot_decks([args.out / f"{Path(name).stem}.html" for name in executed])
    return 0


if __name__ == "__main__":
    sys.exit(main())
