"""The report shows the findings' numbers: it lays out a Findings and computes none of them."""

import re

import numpy as np
from PIL import Image

from embedkit.findings import COUNTS, Findings
from embedkit.report import write_report


def _findings(folder, **changes) -> Findings:
    """Hand-made findings for four files in two splits: one exact pair, one near group of three."""
    paths = ["train/a.png", "train/b.png", "test/c.png", "test/d.png"]
    for i, p in enumerate(paths):
        (folder / p).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(folder / p)
    fields = dict(
        folder=folder,
        files=5,
        unreadable=[{"path": "train/broken.png", "reason": "empty file (0 bytes)"}],
        exact_groups=[["train/a.png", "test/c.png"]],
        near_groups=[["train/a.png", "test/c.png", "train/b.png"]],
        near_scores=[[1.0, 0.9731, 0.8125]],
        leaks=[{"splits": {"test": ["test/c.png"], "train": ["train/a.png", "train/b.png"]}}],
        keep=["test/d.png", "train/a.png"],
        review=[],
        borderline=[{"a": "train/b.png", "b": "test/d.png", "score": 0.7777, "side": "below"}],
        threshold=0.8,
        threshold_source={"kind": "given", "note": "passed by the caller"},
        backbone="hand-made",
        paths=paths,
        splits=["train", "train", "test", "test"],
        # Every vector the same: a report that recomputed similarities would show 1.000 everywhere.
        vectors=np.ones((4, 3), dtype=np.float32),
        group=np.array([0, 0, 0, -1]),
        proposed_split=["train", "train", "train", "test"],
        pixels=np.full(4, 64),
        histogram=(np.zeros(200, dtype=np.int64), np.linspace(-1.0, 1.0, 201)),
        histogram_files=4,
        issues=[{"path": "test/d.png", "kind": "dark", "score": 0.02, "reason": "too dark"}],
        checks={"kinds": ["dark"], "thresholds": {"dark": 0.1}, "neighbours": {}, "notes": {}},
    )
    fields.update(changes)
    return Findings(**fields)


def _page(findings, tmp_path) -> str:
    return write_report(findings, tmp_path / "report.html").read_text(encoding="utf-8")


def _captions(page: str, kind: str) -> list[list[str]]:
    """The note under each thumbnail of each ``.row.<kind>`` group, in order."""
    rows = re.findall(rf'<div class="row {kind}" data-group="\d+">(.*?)</div>', page)
    note = r"<figcaption>[^<]*(?:<br><span class=note>([^<]*)</span>)?</figcaption>"
    return [re.findall(note, row) for row in rows]


def test_summary_counts_are_the_findings_counts(tmp_path):
    findings = _findings(tmp_path)
    shown = dict(re.findall(r'<td data-count="(\w+)">(\d+)</td>', _page(findings, tmp_path)))
    assert list(shown) == list(COUNTS)
    assert {k: int(v) for k, v in shown.items()} == findings.counts()
    assert findings.counts() == {
        "files": 5,
        "unreadable": 1,
        "exact_groups": 1,
        "near_groups": 1,
        "leaks": 1,
        "keep": 2,
        "review": 0,
        "issues": 1,
    }


def test_similarities_shown_are_the_findings_scores_not_recomputed(tmp_path):
    page = _page(_findings(tmp_path), tmp_path)
    # The kept first file says so; the others show the stored score, not the vectors' 1.000.
    assert _captions(page, "near") == [["kept", "0.973", "0.812"]]
    assert _captions(page, "exact") == [["kept", ""]]
    assert "cosine <b>0.778</b>, below the threshold" in page
    assert "1.000" not in page

    other = _page(_findings(tmp_path, near_scores=[[1.0, 0.85, 0.8]]), tmp_path)
    assert _captions(other, "near") == [["kept", "0.850", "0.800"]]


def test_findings_json_holds_the_scores_the_report_shows(tmp_path):
    findings = _findings(tmp_path)
    saved = findings.to_json()
    assert saved["near_scores"] == [[1.0, 0.9731, 0.8125]]
    assert saved["near_groups"] == findings.near_groups
