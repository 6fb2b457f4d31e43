"""What ``curate`` found in a folder: the :class:`Findings` that its outputs are written from.

Its own module so that the steps that compute findings (:mod:`embedkit.curate`) and the views
that show them (:mod:`embedkit.report`, ``findings.json``, ``split.csv``) each import it and
never each other: the report renders a :class:`Findings` and computes none of its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .folders import printable_name

__all__ = ["COUNTS", "Findings"]

#: The summary counts (:meth:`Findings.counts`), by their ``findings.json`` key, with what
#: each one counts.
COUNTS = {
    "files": "image files",
    "unreadable": "unreadable files",
    "exact_groups": "exact-duplicate groups",
    "near_groups": "near-duplicate groups",
    "leaks": "groups leaking across splits",
    "keep": "files kept",
    "review": "groups to review",
    "issues": "quality, outlier and label issues",
}


@dataclass
class Findings:
    """What :func:`curate` found in a folder. Paths are relative to ``folder``, with ``/``.

    Attributes:
        folder: the folder curated.
        files: image files found (readable or not).
        unreadable: ``{"path", "reason"}`` for each file that could not be used.
        exact_groups: groups of files with identical pixels (byte copies included).
        near_groups: every group of two or more files judged to show the same photo
            (exact groups included), after the chaining guard.
        near_scores: for each of ``near_groups``, the cosine similarity of each member to
            the group's first file (``1.0`` for the first), rounded to 4 decimals.
        leaks: ``{"splits": {split: [path, ...]}}`` for each group in two or more splits.
        keep: one file per group plus every ungrouped readable file.
        review: connected groups whose members are not all pairwise similar:
            ``{"paths", "min_similarity", "weakest_pair", "parts"}``.
        borderline: pairs just below and just above the threshold,
            ``{"a", "b", "score", "side"}`` with ``side`` ``"below"`` or ``"above"``.
        threshold: cosine similarity from which two files are near duplicates.
        backbone: the network that embedded the files.
        paths: every readable file, in embedding row order.
        splits: the top-level subfolder of each of ``paths`` (``""`` at the top level).
        vectors: ``(len(paths), dim)`` float32 embeddings.
        group: ``(len(paths),)`` int64, the index into ``near_groups`` of each file, ``-1``
            for a file in no group.
        proposed_split: ``(len(paths),)`` the split proposed for each file.
        pixels: ``(len(paths),)`` width × height of each file.
        histogram: ``(counts, edges)`` of pairwise cosine similarities, and how many files
            they were computed on in ``histogram_files``.
        seconds: wall time of each step.
        peak_mib: the process's peak resident memory (MiB) when each step ended, so the step
            that raised it is the first whose number is larger; empty where the system does not say.
        skipped: ``{"path", "reason"}`` for links to folders already scanned and files
            reached again through a folder link, counted once under the first name.
        split_note: why ``proposed_split`` could not split the files, ``""`` when it did.
        issues: image-quality, outlier and label issues (:mod:`embedkit.quality`),
            ``{"path", "kind", "score", "reason"}`` (and ``"suggested_label"`` for ``label``),
            by kind in :data:`~embedkit.quality.KINDS` order, worst first within a kind.
        checks: what ran: ``{"kinds", "thresholds", "neighbours", "notes", "labels"}``, ``notes``
            saying why a selected check could not run (no class folders, too few files),
            ``labels`` whether the folders were taken as class folders and why
            (``{"rule", "class_folders", "why"}``).
        measures: ``{kind: (len(paths),) float64}``, every file's score for each check that
            ran (``nan`` where a file was not scored), so any threshold can be tried afterwards.
        labels: the label of each of ``paths`` from its class folder
            (:func:`~embedkit.quality.class_folder_labels`), ``None`` for a file without one
            (every file, when the folders do not look like class folders).
        precision: what the network ran in (``"float32"``, ``"bfloat16"`` or ``"float16"``).
    """

    folder: Path
    files: int
    unreadable: list[dict[str, str]]
    exact_groups: list[list[str]]
    near_groups: list[list[str]]
    leaks: list[dict[str, dict[str, list[str]]]]
    keep: list[str]
    review: list[dict[str, Any]]
    borderline: list[dict[str, Any]]
    threshold: float
    threshold_source: dict[str, Any]
    backbone: str
    paths: list[str]
    splits: list[str]
    vectors: np.ndarray
    group: np.ndarray
    proposed_split: list[str]
    pixels: np.ndarray
    histogram: tuple[np.ndarray, np.ndarray]
    histogram_files: int
    seconds: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    split_note: str = ""
    issues: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    measures: dict[str, np.ndarray] = field(default_factory=dict)
    labels: list[str | None] = field(default_factory=list)
    precision: str = "float32"
    near_scores: list[list[float]] = field(default_factory=list)

    @property
    def has_splits(self) -> bool:
        """Whether the folder has two or more top-level subfolders holding images."""
        return len({s for s in self.splits if s}) >= 2

    def to_json(self) -> dict[str, Any]:
        """The ``findings.json`` content: the documented keys first, then the extras.

        Names and reasons go through :func:`printable_name`, so the content is valid UTF-8
        whatever bytes the file names hold.
        """
        return _printable(
            {
                "files": self.files,
                "unreadable": self.unreadable,
                "exact_groups": self.exact_groups,
                "near_groups": self.near_groups,
                "leaks": self.leaks,
                "keep": self.keep,
                "review": self.review,
                "borderline": self.borderline,
                "threshold": round(float(self.threshold), 6),
                "threshold_source": self.threshold_source,
                "backbone": self.backbone,
                "precision": self.precision,
                "skipped": self.skipped,
                "split_note": self.split_note,
                "issues": self.issues,
                "checks": self.checks,
                "near_scores": self.near_scores,
            }
        )

    def counts(self) -> dict[str, int]:
        """The summary counts, by their ``findings.json`` key (:data:`COUNTS`): ``files`` is
        the number of image files found, every other count the length of that key's list."""
        return {key: self.files if key == "files" else len(getattr(self, key)) for key in COUNTS}

    def summary(self) -> str:
        """A few lines of counts, for a terminal or a notebook."""
        grouped = sum(len(g) for g in self.near_groups)
        lines = [
            f"{self.files} image files, {len(self.unreadable)} unreadable",
            f"{len(self.exact_groups)} exact-duplicate groups, {len(self.near_groups)} near-duplicate "
            f"groups holding {grouped} files (threshold {self.threshold:.2f}, {self.backbone})",
            f"{_count(len(self.review), 'group')} to review (members not all similar to each other)",
            f"{_count(len(self.leaks), 'group')} {'leaks' if len(self.leaks) == 1 else 'leak'} across splits"
            if self.has_splits
            else "no split subfolders",
            f"keep {len(self.keep)} of {len(self.paths)} readable files",
            f"threshold: {self.threshold_source.get('kind', '')}",
        ]
        if self.split_note:
            lines.append(self.split_note)
        if self.checks.get("kinds"):
            by_kind = {k: sum(i["kind"] == k for i in self.issues) for k in self.checks["kinds"]}
            found = ", ".join(f"{k} {v}" for k, v in by_kind.items() if v) or "none"
            lines.append(f"{_count(len(self.issues), 'quality issue')}: {found}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    """``"1 group"``, ``"2 groups"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _printable(value: Any) -> Any:
    """Every string inside ``value`` (lists, dicts) through :func:`printable_name`."""
    if isinstance(value, str):
        return printable_name(value)
    if isinstance(value, dict):
        return {printable_name(k) if isinstance(k, str) else k: _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value
