"""Curate any folder of images: unreadable files, exact and near duplicates, leaks, a clean split.

:func:`curate` runs every step the lessons teach, on a folder whose truth nobody knows,
and returns :class:`Findings`; :func:`write_outputs` writes them as ``findings.json``,
``report.html`` and ``split.csv``. ``python -m embedkit curate FOLDER --out DIR`` does
both from a terminal.

The steps, each reusing the package's tested pieces:

1. **scan**: every file with an image ending below the folder (hidden files and folders
   skipped, symbolic links followed once, loops and dangling links reported) is hashed
   (:func:`~embedkit.duplicates.file_sha256`) and decoded once
   (:func:`~embedkit.images.load_rgb`, :func:`~embedkit.duplicates.pixel_hash`). A file
   that cannot be decoded is listed with the reason; whatever goes wrong with one file,
   the run goes on.
2. **exact duplicates**: files with equal pixel hashes (byte copies included).
3. **near duplicates**: embeddings (:func:`~embedkit.embeddings.embed_images`) and every
   pair at or above the backbone's calibrated threshold
   (:func:`~embedkit.similarity.near_duplicate_pairs`, chunked).
4. **groups with a guard against chaining**: exact and near pairs are joined into
   connected groups (:func:`~embedkit.pairs.connected_groups`). Joining by chains is
   single linkage: one false pair merges two whole photo groups. So a connected group
   whose members are not all pairwise at or above the threshold is listed under
   ``review`` and cut with average linkage at the same threshold (a file stays in a
   group only while its *average* similarity to the group reaches the threshold), the
   standard remedy for chaining. Nothing is merged silently and nothing is split silently.
5. **leaks**: a group whose files lie in two or more top-level subfolders (``train/``,
   ``test/``, ``val/``, ...).
6. **keep and split**: one file per group (the one with most pixels) plus every ungrouped
   readable file; a group-aware split (:func:`~embedkit.splits.group_aware_split` when the
   folder has split subfolders, otherwise a seeded 80/20 ``GroupShuffleSplit``).

Memory stays bounded apart from the ``(n, dim)`` float32 embedding matrix: hashing holds
one decoded image per worker thread, search works in chunks, and the histogram of
similarities is computed on at most :data:`HISTOGRAM_MAX_FILES` files.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from .backbones import Backbone, load_backbone
from .duplicates import exact_duplicate_groups, file_sha256, pixel_hash
from .embeddings import embed_images, progress_bar
from .images import IMAGE_SUFFIXES, ImageLoadError, load_rgb
from .pairs import connected_groups
from .similarity import near_duplicate_pairs
from .splits import group_aware_split

__all__ = [
    "BORDERLINE_MARGIN",
    "BORDERLINE_PER_SIDE",
    "FolderError",
    "Findings",
    "HISTOGRAM_MAX_FILES",
    "curate",
    "export_clean_folder",
    "list_image_files",
    "write_outputs",
]

#: Borderline pairs are looked for this far below the threshold.
BORDERLINE_MARGIN = 0.10
#: Borderline pairs shown on each side of the threshold (just below, just above).
BORDERLINE_PER_SIDE = 6
#: The similarity histogram uses every pair of at most this many files (a seeded sample
#: of them in larger folders), so it costs at most ~8 million dot products.
HISTOGRAM_MAX_FILES = 4000
#: Connected groups larger than this are not cut by average linkage (its cost grows with
#: the square of the group's size); they are flagged for review as they are.
LINKAGE_MAX_MEMBERS = 3000


class FolderError(ValueError):
    """The folder to curate is missing, not a folder, unreadable or holds no image files."""


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

    @property
    def has_splits(self) -> bool:
        """Whether the folder has two or more top-level subfolders holding images."""
        return len({s for s in self.splits if s}) >= 2

    def to_json(self) -> dict[str, Any]:
        """The ``findings.json`` content: the documented keys first, then the extras."""
        return {
            "files": self.files,
            "unreadable": self.unreadable,
            "exact_groups": self.exact_groups,
            "near_groups": self.near_groups,
            "leaks": self.leaks,
            "keep": self.keep,
            "review": self.review,
            "borderline": self.borderline,
            "threshold": round(float(self.threshold), 6),
            "backbone": self.backbone,
        }

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
        ]
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    """``"1 group"``, ``"2 groups"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --------------------------------------------------------------------------- step 1: scan


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def list_image_files(folder: str | os.PathLike) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every file with an image ending (any case) below ``folder``, and links that go nowhere.

    Hidden files and folders (name starting with ``.``) are skipped. Symbolic links to
    files are listed like files; links to folders are followed once (a link back to a
    folder already walked is reported as a loop, not followed again).

    Returns:
        ``(files, problems)``: sorted paths, and ``(path, reason)`` for dangling links and
        link loops.

    Raises:
        FolderError: ``folder`` is missing, not a folder or cannot be read.
    """
    root = Path(folder)
    if not root.exists():
        raise FolderError(f"folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise FolderError(f"{str(root)!r} is a file, not a folder; pass the folder that holds the images")
    if not os.access(root, os.R_OK | os.X_OK):
        raise FolderError(f"folder {str(root)!r} cannot be read (permission denied)")
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen = {root.resolve()}
    walk_errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=walk_errors.append):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            sub = here / name
            if sub.is_symlink():
                target = sub.resolve()
                if target == here.resolve() or target in here.resolve().parents:
                    problems.append((sub, f"symbolic link loop (points back to {target}); not followed"))
                    continue
                if target in seen:
                    problems.append((sub, f"link to a folder scanned already ({target}); not followed again"))
                    continue
                seen.add(target)
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.is_symlink() and not path.exists():
                problems.append(
                    (path, f"dangling symbolic link (points to {os.readlink(path)}, which does not exist)")
                )
                continue
            files.append(path)
    for error in walk_errors:
        if error.filename and Path(error.filename) != root:
            problems.append((Path(error.filename), f"folder cannot be read ({error.strerror})"))
        elif Path(error.filename or "") == root:
            raise FolderError(f"folder {str(root)!r} cannot be read ({error.strerror})")
    return sorted(files), problems


def _inspect(path: Path) -> tuple[str, str, int, str]:
    """``(sha256, pixel hash, width × height, "")`` or ``("", "", 0, reason)``; never raises."""
    try:
        sha = file_sha256(path)
        image = load_rgb(path)
        return sha, pixel_hash(image), image.width * image.height, ""
    except ImageLoadError as exc:
        return "", "", 0, exc.reason
    except MemoryError:
        return "", "", 0, "not enough memory to decode the image"
    except Exception as exc:  # noqa: BLE001 - one bad file must never end the run; say what happened
        return "", "", 0, f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- step 4: groups


def _guarded_groups(
    n: int, edges: np.ndarray, vectors: np.ndarray, threshold: float
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Connected groups of ``edges``, each cut by average linkage when not all pairs are similar.

    Returns:
        ``(groups, review)``: member index arrays of the final groups of two or more, and
        one entry per connected group whose lowest pairwise cosine is below ``threshold``
        (as indices; :func:`curate` turns them into paths).
    """
    labels = connected_groups(n, edges)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    groups: list[np.ndarray] = []
    review: list[dict[str, Any]] = []
    for members in np.split(order, bounds):
        if len(members) < 2:
            continue
        if len(members) > LINKAGE_MAX_MEMBERS:
            groups.append(members)
            review.append(
                {
                    "members": members,
                    "min_similarity": float("nan"),
                    "weakest_pair": None,
                    "parts": [members],
                    "note": "too large to check pairwise",
                }
            )
            continue
        sims = np.clip(unit[members] @ unit[members].T, -1.0, 1.0)
        iu = np.triu_indices(len(members), k=1)
        weakest = int(np.argmin(sims[iu]))
        low = float(sims[iu][weakest])
        if low >= threshold:
            groups.append(members)
            continue
        distance = 1.0 - sims
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance.clip(min=0.0), checks=False), method="average")
        cut = fcluster(tree, t=1.0 - threshold, criterion="distance")
        parts = [members[cut == c] for c in np.unique(cut)]
        groups.extend(p for p in parts if len(p) > 1)
        review.append(
            {
                "members": members,
                "min_similarity": low,
                "weakest_pair": (int(members[iu[0][weakest]]), int(members[iu[1][weakest]])),
                "parts": parts,
                "note": "" if len(parts) == 1 else f"split into {len(parts)} by average similarity",
            }
        )
    return groups, review


# --------------------------------------------------------------------------- helpers


def _similarity_histogram(vectors: np.ndarray, max_files: int, bins: np.ndarray, seed: int = 0):
    """Counts of all pairwise cosines among at most ``max_files`` rows (a seeded sample)."""
    n = len(vectors)
    rows = np.arange(n)
    if n > max_files:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_files, replace=False))
    unit = vectors[rows] / np.linalg.norm(vectors[rows], axis=1, keepdims=True).clip(min=1e-12)
    counts = np.zeros(len(bins) - 1, dtype=np.int64)
    step = 128  # a block holds step × n similarities, about 13 bytes each with its mask and copies
    for start in range(0, len(rows), step):
        block = unit[start : start + step] @ unit[start:].T
        upper = np.arange(block.shape[1]) > np.arange(block.shape[0])[:, None]  # each pair once
        counts += np.histogram(np.clip(block[upper], -1, 1), bins=bins)[0]
    return counts, len(rows)


def _borderline(vectors: np.ndarray, threshold: float, exact_of: np.ndarray) -> list[tuple[int, int, float]]:
    """The pairs closest to the threshold on each side (pixel-identical pairs left out)."""
    low = max(-1.0, threshold - BORDERLINE_MARGIN)
    pairs, scores = near_duplicate_pairs(vectors, threshold=low)
    # One pair per pair of photos: copies of a pixel-identical group stand for one file.
    reps = np.sort(exact_of[pairs], axis=1)
    _, first = np.unique(reps, axis=0, return_index=True)
    first = np.sort(first)  # keeps near_duplicate_pairs' order, highest score first
    first = first[reps[first, 0] != reps[first, 1]]
    pairs, scores = pairs[first], scores[first]
    above = np.flatnonzero(scores >= threshold)[::-1][:BORDERLINE_PER_SIDE]  # sorted descending
    below = np.flatnonzero(scores < threshold)[:BORDERLINE_PER_SIDE]
    chosen = np.concatenate([below[::-1], above[::-1]])
    return [(int(pairs[k, 0]), int(pairs[k, 1]), float(scores[k])) for k in chosen]


def _resolve_backbone(backbone: Backbone | str | None) -> Backbone:
    if isinstance(backbone, Backbone):
        return backbone
    return load_backbone(backbone) if backbone else load_backbone()


# --------------------------------------------------------------------------- the run


def curate(
    folder: str | os.PathLike,
    backbone: Backbone | str | None = None,
    *,
    threshold: float | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Findings:
    """Find unreadable files, exact and near duplicates, groups, leaks and a clean split.

    Args:
        folder: the folder to curate; its top-level subfolders are its splits.
        backbone: a loaded :class:`~embedkit.backbones.Backbone`, a name for
            :func:`~embedkit.backbones.load_backbone`, or ``None`` for its default.
        threshold: cosine similarity from which two files are near duplicates; default
            the backbone's ``near_duplicate_threshold``.
        batch_size: images per forward pass (default: the backbone's device default).
        progress: progress bars in Jupyter or on a terminal (never in logs).
        workers: threads that hash and decode (default: CPU cores, at most 8).

    Raises:
        FolderError: the folder is missing, unreadable, or holds no image files.
    """
    root = Path(folder)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    candidates, problems = list_image_files(root)
    if not candidates and not problems:
        endings = ", ".join(sorted(IMAGE_SUFFIXES))
        raise FolderError(f"folder {str(root)!r} holds no image files (looked for {endings}, any case)")

    workers = workers or min(8, os.cpu_count() or 1)
    bar = progress_bar(len(candidates), progress, "hashing and decoding")
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(_inspect, candidates):
            results.append(result)
            bar.update(1)
    bar.close()
    unreadable = [{"path": _rel(p, root), "reason": r} for p, r in problems]
    good: list[Path] = []
    pixel_hashes: list[str] = []
    pixels: list[int] = []
    for path, (_, pix, size, reason) in zip(candidates, results, strict=True):
        if reason:
            unreadable.append({"path": _rel(path, root), "reason": reason})
        else:
            good.append(path)
            pixel_hashes.append(pix)
            pixels.append(size)
    seconds["scan and hash"] = time.perf_counter() - start

    start = time.perf_counter()
    net = _resolve_backbone(backbone)
    threshold = float(net.near_duplicate_threshold if threshold is None else threshold)
    if np.isnan(threshold):
        raise ValueError(
            f"{net.name} has no calibrated near-duplicate threshold; pass threshold= "
            "(--threshold on the command line), e.g. from pairs you labelled yourself"
        )
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
    seconds["load backbone"] = time.perf_counter() - start
    start = time.perf_counter()
    batch_size = batch_size or getattr(net, "batch_size", None)
    embedded = embed_images([str(p) for p in good], net, batch_size=batch_size, progress=progress)
    row_of = {p: i for i, p in enumerate(embedded.paths)}
    for name, reason in embedded.failed:  # decoded in step 1, yet failed now: still reported
        unreadable.append({"path": _rel(Path(name), root), "reason": reason})
    keep_rows = [i for i, p in enumerate(good) if str(p) in row_of]
    good = [good[i] for i in keep_rows]
    pixel_hashes = [pixel_hashes[i] for i in keep_rows]
    pixel_arr = np.asarray([pixels[i] for i in keep_rows], dtype=np.int64)
    vectors = embedded.vectors[[row_of[str(p)] for p in good]] if good else embedded.vectors
    seconds["embed"] = time.perf_counter() - start

    start = time.perf_counter()
    n = len(good)
    paths = [_rel(p, root) for p in good]
    splits = [p.split("/")[0] if "/" in p else "" for p in paths]
    exact = exact_duplicate_groups(pixel_hashes)
    exact_of = np.arange(n)
    star = [np.stack([np.full(len(g) - 1, g[0]), g[1:]], axis=1) for g in exact]
    for g in exact:
        exact_of[g] = g[0]
    near, near_scores = (
        near_duplicate_pairs(vectors, threshold=threshold)
        if n > 1
        else (np.empty((0, 2), np.int64), np.empty(0, np.float32))
    )
    edges = np.concatenate([near, *star]) if star else near
    seconds["search"] = time.perf_counter() - start

    start = time.perf_counter()
    groups, review_idx = _guarded_groups(n, edges, vectors, threshold) if n else ([], [])

    # Largest picture first, then the shorter and alphabetically first path.
    def rank(i: int) -> tuple:
        return (-int(pixel_arr[i]), len(paths[i]), paths[i])

    groups = [np.array(sorted(g.tolist(), key=rank)) for g in groups]
    groups.sort(key=lambda g: paths[g[0]])
    group = np.full(n, -1, dtype=np.int64)
    for k, g in enumerate(groups):
        group[g] = k
    near_groups = [[paths[i] for i in g] for g in groups]
    exact_groups = sorted(([paths[i] for i in sorted(g, key=rank)] for g in exact), key=lambda g: g[0])
    keep = sorted([g[0] for g in near_groups] + [paths[i] for i in np.flatnonzero(group < 0)])
    leaks = []
    for members in near_groups:
        by_split: dict[str, list[str]] = {}
        for p in members:
            split = p.split("/")[0] if "/" in p else ""
            if split:
                by_split.setdefault(split, []).append(p)
        if len(by_split) >= 2:
            leaks.append({"splits": dict(sorted(by_split.items()))})
    review = [
        {
            "paths": sorted(paths[i] for i in entry["members"]),
            "min_similarity": round(entry["min_similarity"], 4),
            "weakest_pair": [paths[i] for i in entry["weakest_pair"]] if entry["weakest_pair"] else None,
            "parts": sorted(sorted(paths[i] for i in part) for part in entry["parts"]),
            "note": entry["note"],
        }
        for entry in review_idx
    ]
    review.sort(key=lambda r: r["paths"][0])
    proposed = _propose_split(group, splits)
    seconds["group and split"] = time.perf_counter() - start

    start = time.perf_counter()
    bins = np.linspace(-1.0, 1.0, 201)
    counts, hist_files = (
        _similarity_histogram(vectors, HISTOGRAM_MAX_FILES, bins) if n > 1 else (np.zeros(200, np.int64), n)
    )
    borderline = [
        {"a": paths[a], "b": paths[b], "score": round(s, 4), "side": "above" if s >= threshold else "below"}
        for a, b, s in (_borderline(vectors, threshold, exact_of) if n > 1 else [])
    ]
    seconds["histogram and borderline"] = time.perf_counter() - start
    del near_scores

    return Findings(
        folder=root,
        files=len(candidates) + len(problems),
        unreadable=sorted(unreadable, key=lambda u: u["path"]),
        exact_groups=exact_groups,
        near_groups=near_groups,
        leaks=leaks,
        keep=keep,
        review=review,
        borderline=borderline,
        threshold=threshold,
        backbone=net.name,
        paths=paths,
        splits=splits,
        vectors=vectors,
        group=group,
        proposed_split=proposed,
        pixels=pixel_arr,
        histogram=(counts, bins),
        histogram_files=hist_files,
        seconds=seconds,
    )


def _propose_split(
    group: np.ndarray, splits: Sequence[str], test_size: float = 0.2, seed: int = 0
) -> list[str]:
    """Group-aware split: minimal moves when there are split folders, else a seeded 80/20 split."""
    n = len(group)
    if n == 0:
        return []
    labels = np.where(group >= 0, group, -1 - np.arange(n))  # a file in no group is its own group
    if len({s for s in splits if s}) >= 2:
        return group_aware_split(labels, list(splits)).tolist()
    if n < 2:
        return ["train"] * n
    from sklearn.model_selection import GroupShuffleSplit

    train, _ = next(
        GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(
            np.zeros(n), groups=labels
        )
    )
    out = np.full(n, "test", dtype=object)
    out[train] = "train"
    return out.tolist()


# --------------------------------------------------------------------------- outputs


def write_outputs(findings: Findings, out: str | os.PathLike, report: bool = True) -> dict[str, Path]:
    """Write ``findings.json``, ``split.csv`` and (unless ``report=False``) ``report.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {"findings": out / "findings.json", "split": out / "split.csv"}
    written["findings"].write_text(
        json.dumps(findings.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    keep = set(findings.keep)
    with open(written["split"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "original_split", "proposed_split", "group", "keep"])
        for i, path in enumerate(findings.paths):
            g = int(findings.group[i])
            writer.writerow(
                [
                    path,
                    findings.splits[i],
                    findings.proposed_split[i],
                    "" if g < 0 else g,
                    "yes" if path in keep else "no",
                ]
            )
    if report:
        from .report import write_report

        written["report"] = write_report(findings, out / "report.html")
    return written


def export_clean_folder(findings: Findings, destination: str | os.PathLike, mode: str = "links") -> int:
    """Lay the kept files out as ``destination/<proposed split>/<path>``; returns how many.

    ``mode`` is ``"links"`` (symbolic links, no extra disk space) or ``"copies"``.
    """
    if mode not in ("links", "copies"):
        raise ValueError(f"mode must be 'links' or 'copies', got {mode!r}")
    destination = Path(destination)
    split_of = dict(zip(findings.paths, findings.proposed_split, strict=True))
    for path in findings.keep:
        source = (findings.folder / path).resolve()
        rest = path.split("/", 1)[1] if findings.has_splits and "/" in path else path
        target = destination / split_of[path] / rest
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        if mode == "links":
            target.symlink_to(source)
        else:
            shutil.copy2(source, target)
    return len(findings.keep)
