"""The curation report: one self-contained HTML file a learner can send to a colleague.

:func:`write_report` turns :class:`~embedkit.findings.Findings` into ``report.html``:
summary counts, every exact and near-duplicate group as a row of thumbnails with
scores, groups to review, leaks, image-quality, outlier and label issues (a section per
kind, worst first), unreadable files with reasons, borderline pairs and the similarity
histogram with the threshold marked. Thumbnails are JPEGs embedded as
``data:`` URIs and the histogram is inline SVG, so the page makes no network request
and opens offline in any browser. Each summary count carries ``data-count`` with its
``findings.json`` key, so a test can compare the page with the file.

Every summary count, score, similarity and histogram bar on the page is one the findings
hold: the report lays them out and computes none of them, so it cannot disagree with
``findings.json`` (the heading of each kind of issue counts the findings' own list). It
reads the image files only to draw their thumbnails.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from .findings import COUNTS, Findings
from .folders import printable_name
from .images import ImageLoadError, load_rgb

__all__ = ["THUMBNAIL_SIZE", "thumbnail_uri", "write_report"]

#: Longest side of an embedded thumbnail, in pixels.
THUMBNAIL_SIZE = 128

# A grey square, for a file that cannot be shown (it is listed as unreadable anyway).
_PLACEHOLDER = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b'<rect width="64" height="64" fill="#ccc"/></svg>'
    ).decode()
)

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}
.row{display:flex;flex-wrap:wrap;gap:8px;margin:.6em 0 1.2em 0;align-items:flex-end}
figure{margin:0;width:136px;font-size:11px;word-break:break-all}
figure img{max-width:128px;max-height:128px;display:block;border:1px solid #ccc}
.split{color:#a40;font-weight:bold}.note{color:#666}.kept img{border:2px solid #2a2}
.pair{display:flex;gap:8px;align-items:center;margin:.4em 0}
"""


def thumbnail_uri(path: str | os.PathLike, size: int = THUMBNAIL_SIZE) -> str:
    """A ``data:image/jpeg;base64,...`` thumbnail of an image file (a grey square if unreadable).

    A JPEG is decoded at reduced scale (its short side still at least ``size``), not in full.
    """
    try:
        image = load_rgb(path, min_side=size)
    except ImageLoadError:
        return _PLACEHOLDER
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class _Thumbs:
    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, str] = {}

    def __call__(self, rel: str) -> str:
        if rel not in self.cache:
            self.cache[rel] = thumbnail_uri(self.root / rel)
        return self.cache[rel]


def _histogram_svg(
    counts: np.ndarray, edges: np.ndarray, threshold: float, width: int = 720, height: int = 220
) -> str:
    """Bars of pair counts on a log scale over cosine similarity, with the threshold marked."""
    nonzero = np.flatnonzero(counts)
    lo = float(edges[nonzero[0]]) if nonzero.size else -1.0
    lo = min(lo, threshold - 0.1)
    keep = edges[:-1] >= lo - 1e-9
    c, left = counts[keep], edges[:-1][keep]
    step = float(edges[1] - edges[0])
    span = 1.0 - lo
    top = np.log10(c.max() + 1) if c.size and c.max() else 1.0
    pad = 30

    def x(v: float) -> float:
        return pad + (v - lo) / span * (width - 2 * pad)

    bars = []
    for value, count in zip(left, c, strict=True):
        if count:
            h = np.log10(count + 1) / top * (height - 2 * pad)
            bars.append(
                f'<rect x="{x(value):.1f}" y="{height - pad - h:.1f}" '
                f'width="{max(1.0, x(value + step) - x(value) - 0.5):.1f}" height="{h:.1f}" '
                f'fill="#4a7ab0"><title>{value:.2f}-{value + step:.2f}: {count} pairs</title></rect>'
            )
    ticks = "".join(
        f'<text x="{x(t):.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{t:.1f}</text>'
        for t in np.arange(np.ceil(lo * 10) / 10, 1.0001, 0.1)
    )
    tx = x(threshold)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="similarity histogram">{"".join(bars)}{ticks}'
        f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{pad - 10}" y2="{height - pad}" stroke="#c00" '
        f'stroke-width="2" stroke-dasharray="4 3"/>'
        f'<text x="{tx + 4:.1f}" y="{pad - 12}" font-size="12" fill="#c00">threshold {threshold:.2f}</text>'
        f"</svg>"
    )


def _text(value: str) -> str:
    """A name or message as HTML text: escaped, with undecodable bytes and direction controls visible."""
    return html.escape(printable_name(value))


def _figure(rel: str, thumbs: _Thumbs, caption: str = "", kept: bool = False) -> str:
    cls = ' class="kept"' if kept else ""
    text = _text(rel) + (f"<br><span class=note>{_text(caption)}</span>" if caption else "")
    img = f'<img src="{thumbs(rel)}" alt="{_text(rel)}">'
    return f"<figure{cls}>{img}<figcaption>{text}</figcaption></figure>"


def _threshold_origin(source: dict) -> str:
    """One phrase on how the threshold was obtained (``Findings.threshold_source``)."""
    if "summary" in source:  # measured on this folder: the calibration's own sentence
        return f"{source['kind']}: {source['summary']}"
    if "calibration_error" in source:
        return f"{source['kind']}: {source['calibration_error']}"
    return source.get("kind", "")


def _issue_sections(f: Findings, thumbs: _Thumbs) -> str:
    """A section per kind of issue that ran: its files as thumbnails, worst first, with the reason."""
    from .quality import KINDS

    kinds = f.checks.get("kinds", [])
    if not kinds:
        return "<p>Not checked (--checks none).</p>"
    notes = f.checks.get("notes", {})
    parts = []
    for kind in (k for k in KINDS if k in kinds):
        found = [i for i in f.issues if i["kind"] == kind]
        head = f'<h3 id="issue-{kind}">{kind.replace("_", " ")} ({len(found)})</h3>'
        if kind in notes:
            parts.append(f"{head}<p class=note>{_text(notes[kind])}</p>")
            continue
        if not found:
            parts.append(f"{head}<p>None.</p>")
            continue
        figs = "".join(
            _figure(
                i["path"],
                thumbs,
                i["reason"] + (f" → {i['suggested_label']}" if "suggested_label" in i else ""),
            )
            for i in found
        )
        parts.append(f'{head}<div class="row issue" data-kind="{kind}">{figs}</div>')
    return "".join(parts)


def write_report(findings: Findings, file: str | os.PathLike) -> Path:
    """Write the self-contained HTML report of ``findings`` to ``file`` and return its path."""
    f = findings
    thumbs = _Thumbs(Path(f.folder))
    keep = set(f.keep)

    def caption(path: str, position: int, scores: list[float] | None) -> str:
        """The first file of a group says whether it is kept; a near duplicate its score."""
        if position == 0:
            return "kept" if path in keep else ""
        return "" if scores is None else f"{scores[position]:.3f}"

    def group_rows(groups: list[list[str]], kind: str, scores: list[list[float]] | None = None) -> str:
        rows = []
        for k, members in enumerate(groups):
            of_group = None if scores is None else scores[k]
            figs = "".join(
                _figure(p, thumbs, caption(p, j, of_group), p in keep) for j, p in enumerate(members)
            )
            rows.append(f'<div class="row {kind}" data-group="{k}">{figs}</div>')
        return "".join(rows) or "<p>None.</p>"

    summary = "".join(
        f'<tr><th>{COUNTS[k]}</th><td data-count="{k}">{v}</td></tr>' for k, v in f.counts().items()
    )
    leaks = (
        "".join(
            '<div class="row leak">'
            + "".join(
                _figure(p, thumbs, f"in {split}")
                for split, members in leak["splits"].items()
                for p in members
            )
            + "</div>"
            for leak in f.leaks
        )
        or "<p>No leaks" + ("" if f.has_splits else " (the folder has no split subfolders)") + ".</p>"
    )
    review = (
        "".join(
            f"<h3>{len(r['paths'])} files, lowest similarity within {r['min_similarity']:.3f}"
            f"{' — ' + _text(r['note']) if r['note'] else ''}</h3>"
            + "".join(
                '<div class="row review">' + "".join(_figure(p, thumbs) for p in part) + "</div>"
                for part in r["parts"]
            )
            for r in f.review
        )
        or "<p>None: every group's members are all similar to each other.</p>"
    )
    unreadable = "".join(
        f"<tr><td>{_text(u['path'])}</td><td>{_text(u['reason'])}</td></tr>" for u in f.unreadable
    )
    skipped = "".join(f"<tr><td>{_text(u['path'])}</td><td>{_text(u['reason'])}</td></tr>" for u in f.skipped)
    split_note = f"<p class=note>Split: {_text(f.split_note)}</p>" if f.split_note else ""
    borderline = (
        "".join(
            f'<div class="pair borderline">{_figure(b["a"], thumbs)}{_figure(b["b"], thumbs)}'
            f"<div>cosine <b>{b['score']:.3f}</b>, {b['side']} the threshold</div></div>"
            for b in f.borderline
        )
        or "<p>No pair within reach of the threshold.</p>"
    )
    sampled = (
        f" (all pairs of a random sample of {f.histogram_files} of the {len(f.paths)} files)"
        if f.histogram_files < len(f.paths)
        else ""
    )
    issues = _issue_sections(f, thumbs)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Curation report: {_text(Path(f.folder).name)}</title><style>{_CSS}</style></head>
<body>
<h1>Curation report: {_text(str(f.folder))}</h1>
<p>Embeddings from <b>{_text(f.backbone)}</b>; two files are near duplicates from cosine similarity
<b>{f.threshold:.2f}</b> ({_text(_threshold_origin(f.threshold_source))}). Groups whose members are
not all that similar to each other are cut by average similarity and listed for review. Green frame:
the file kept from each group.</p>
<h2>Summary</h2><table id="summary">{summary}</table>{split_note}
<h2>Similarity histogram</h2><p>Pairs of files by cosine similarity (log scale){sampled}.</p>
{_histogram_svg(*f.histogram, f.threshold)}
<h2>Leaks between splits</h2>{leaks}
<h2>Groups to review</h2>{review}
<h2>Quality, outliers and labels</h2>{issues}
<h2>Exact duplicates (identical pixels)</h2>{group_rows(f.exact_groups, "exact")}
<h2>Near-duplicate groups</h2><p>Score: cosine similarity to the group's first file.</p>
{group_rows(f.near_groups, "near", f.near_scores)}
<h2>Borderline pairs</h2><p>The pairs just below and just above the threshold: a person decides.</p>
{borderline}
<h2>Unreadable files</h2><table id="unreadable"><tr><th>file</th><th>reason</th></tr>{unreadable}</table>
<h2>Counted once</h2><p>Other names (links) of files and folders scanned under their first name.</p>
<table id="skipped"><tr><th>name</th><th>why</th></tr>{skipped}</table>
</body></html>
"""
    file = Path(file)
    file.write_text(page, encoding="utf-8")
    return file
