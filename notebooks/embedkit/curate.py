"""Curate any folder of images: unreadable files, duplicates, leaks, a clean split, quality issues.

:func:`curate` runs every step the lessons teach, on a folder whose truth nobody knows,
and returns :class:`Findings`; :func:`write_outputs` writes them as ``findings.json``,
``report.html`` and ``split.csv``. ``python -m embedkit curate FOLDER --out DIR`` does
both from a terminal.

The steps, each reusing the package's tested pieces:

1. **scan** (:func:`~embedkit.folders.scan_folder`): every file with an image ending below the folder, hidden
   files and folders skipped. Only regular files are listed: a named pipe, a device or a
   link to one is refused by its type, never opened. A folder that cannot be entered is
   reported and the scan goes on. Links to folders are followed once, after the real
   folders, and a file reached again through a folder link counts once, under its first
   name (the others listed under ``skipped``); a link to a file is a name of its own (an
   exact copy, as the lessons treat it). Dangling links and link loops are reported as such.
2. **inspect**: each file is decoded once (:func:`~embedkit.images.load_rgb_and_reduced`,
   which reads the header first, so a big file that is not an image is refused without being
   read), its every pixel hashed (:func:`~embedkit.duplicates.pixel_hash`) and measured
   (step 8), and the network's input made from the same pixels, box-reduced to the picture
   :func:`~embedkit.embeddings.embed_images` would decode for it. A file that cannot be
   decoded is listed with the reason; whatever goes wrong with one file, the run goes on.
3. **embed**: the inputs go through the network in batches as they are decoded
   (:func:`~embedkit.embeddings.embed_prepared`, the machinery of ``embed_images``), so a
   folder's full-size pictures are never all held: one per decoding thread at a time. The
   vectors are ``embed_images``' own wherever it decodes every pixel too (formats other than
   JPEG, JPEGs under twice the network's resize target); for larger JPEGs, which it decodes
   by DCT scaling, the same blocks are averaged after colour conversion instead
   (``tests/test_curate.py`` checks both).
4. **pairs and groups** (:func:`~embedkit.grouping.search_groups`): files with equal pixel
   hashes (byte copies included) and every pair at or above the backbone's calibrated
   threshold (:func:`~embedkit.similarity.near_duplicate_pairs`), found block by block and
   joined into connected groups as each block is scored, so the pairs are never all held at once.
5. **guard against chaining** (:func:`~embedkit.grouping.cut_chains`): joining by chains is
   single linkage: one false pair merges two whole photo groups. So a connected group whose
   members are not all pairwise at or above the threshold is listed under ``review`` and cut
   with average linkage at the same threshold (a file stays in a group only while its
   *average* similarity to the group reaches the threshold), the standard remedy for chaining.
   Nothing is merged silently and nothing is split silently.
6. **leaks** (:func:`~embedkit.splits.folder_leaks`): a group whose files lie in two or more
   top-level subfolders (``train/``, ``test/``, ``val/``, ...).
7. **keep and split**: one file per group (the one with most pixels) plus every ungrouped
   readable file; a group-aware split (:func:`~embedkit.splits.group_aware_split` when the
   folder has split subfolders, otherwise a seeded 80/20 ``GroupShuffleSplit``). A folder
   that cannot be split (one file, one group) gets every file in ``train`` and
   ``split_note`` says why.
8. **quality, outliers, labels** (:mod:`embedkit.quality`): per file, image-quality issues
   from measures taken in step 2 on the pixels already decoded there, and, from the
   embeddings, outliers and files whose neighbours carry another label (the label is the
   file's folder); each with a score and a one-line reason. ``checks=`` selects the kinds.

Memory, apart from the ``(n, dim)`` float32 embedding matrix, one decoded image per
worker thread and a few batches of network inputs, does not grow with the number of pairs:
the pair search scores at most ``S = max(PAIR_BLOCK_SIMILARITIES, 16 n)`` similarities at a
time, joins a block's pairs into group labels (``O(n)``) and drops them, so at most the pairs
of one block are held, about 130 bytes per similarity of the block in the worst case where
every one is a pair (measured: a 130 MiB peak rise for 10,000 files whose 50 million pairs all pass, against
4 GB holding them all; ``benchmarks/bench_curate_memory.py``). A group is checked pairwise
only up to :data:`~embedkit.grouping.LINKAGE_MAX_MEMBERS` files (~100 MB); the histogram of similarities
uses at most :data:`HISTOGRAM_MAX_FILES` files; 16-bit images are converted without a
float64 copy (:func:`~embedkit.images.load_rgb`).

Names are kept as the file system gives them (:func:`os.fsdecode`); every output shows
them through :func:`printable_name`, so a name that is not valid UTF-8 or holds control or
right-to-left characters is written with visible escapes instead of crashing the writer or
displaying as something else.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backbones import Backbone, load_backbone
from .duplicates import exact_duplicate_groups, pixel_hash
from .embeddings import embed_images, embed_prepared, resize_target, resolve_precision
from .findings import Findings, _printable
from .folders import (
    IMAGE_SUFFIXES,
    FolderError,
    Scan,
    _key,
    _rel,
    check_folder,
    list_image_files,
    printable_name,
    scan_folder,
)
from .grouping import (
    BORDERLINE_MARGIN,
    BORDERLINE_PER_SIDE,
    LINKAGE_MAX_MEMBERS,
    PAIR_BLOCK_SIMILARITIES,
    cut_chains,
    guarded_groups,
    search_groups,
)
from .images import MAX_ASPECT_RATIO, load_rgb_and_reduced
from .quality import (
    EXPLAINED_BY,
    HIDES_CONTENT,
    HIGHER_IS_WORSE,
    IMAGE_KINDS,
    KINDS,
    NEIGHBOURS,
    OUTLIER_MIN_FILES,
    THRESHOLDS,
    check_kinds,
    class_folder_labels,
    image_issues,
    label_scores,
    measure_image,
    outlier_scores,
)
from .similarity import cosine_similarity
from .splits import folder_leaks, group_aware_split

__all__ = [
    "BORDERLINE_MARGIN",
    "BORDERLINE_PER_SIDE",
    "FolderError",
    "Findings",
    "HISTOGRAM_MAX_FILES",
    "LINKAGE_MAX_MEMBERS",
    "OUTPUT_NAMES",
    "OutputError",
    "PAIR_BLOCK_SIMILARITIES",
    "Scan",
    "Staging",
    "check_folder",
    "check_output_folder",
    "curate",
    "export_clean_folder",
    "guarded_groups",
    "list_image_files",
    "printable_name",
    "scan_folder",
    "write_outputs",
]

#: The similarity histogram uses every pair of at most this many files (a seeded sample
#: of them in larger folders), so it costs at most ~8 million dot products.
HISTOGRAM_MAX_FILES = 4000


# --------------------------------------------------------------------------- steps 2 and 3: inspect and embed


@dataclass(frozen=True)
class _Inspected:
    """What one decode of a file gives besides the network's input."""

    pixel_hash: str
    pixels: int
    measures: dict[str, float] | None
    seconds: dict[str, float]


@dataclass(frozen=True)
class _DecodeOnce:
    """A file -> ``(network input, _Inspected)``, from one decode; raises what decoding raises.

    The file is decoded once (:func:`~embedkit.images.load_rgb_and_reduced`, which reads the
    header first, so a big file that is not an image is refused after its first bytes): every
    pixel is hashed (:func:`~embedkit.duplicates.pixel_hash`) and, with ``measure``, measured
    (:func:`~embedkit.quality.measure_image`; a file that cannot be measured is still used), and
    the network's input is made from the same pixels reduced, the picture ``embed_images`` would
    decode for it.
    """

    preprocess: Callable
    min_side: int
    measure: bool
    max_aspect_ratio: float = MAX_ASPECT_RATIO

    def __call__(self, path: str) -> tuple[Any, _Inspected]:
        start = time.perf_counter()
        full, reduced = load_rgb_and_reduced(path, self.min_side, max_aspect_ratio=self.max_aspect_ratio)
        decoded = time.perf_counter()
        digest = pixel_hash(full)
        hashed = time.perf_counter()
        measures = None
        if self.measure:
            with contextlib.suppress(Exception):  # a file that cannot be measured is still usable
                measures = measure_image(full)
                measures["seconds"] = time.perf_counter() - hashed
        measured = time.perf_counter()
        pixels = full.width * full.height
        del full  # the thread holds one full-size picture at a time
        tensor = self.preprocess(reduced)
        seconds = {
            "decode": decoded - start,
            "pixel hash": hashed - decoded,
            "network input": time.perf_counter() - measured,
        }
        return tensor, _Inspected(digest, pixels, measures, seconds)


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


def _resolve_backbone(backbone: Backbone | str | None) -> Backbone:
    if isinstance(backbone, Backbone):
        return backbone
    return load_backbone(backbone) if backbone else load_backbone()


# --------------------------------------------------------------------------- the run


#: ``threshold=`` value that measures the threshold on the folder's own photos.
AUTO = "auto"


def _check_threshold(net: Backbone, threshold: float | str | None) -> float | None:
    """The threshold to use, or ``None`` when it is to be measured on the folder itself:
    ``"auto"``, or no threshold given for a network with no measured one (ResNet-18 where
    its weights load: ``thresholds.json`` holds only a stated default for it)."""
    cal = getattr(net, "calibration", None)  # a backbone of your own may carry only a threshold
    if threshold == AUTO or (threshold is None and cal is not None and not cal.measured):
        return None
    if isinstance(threshold, str):
        raise ValueError(f"threshold must be a cosine similarity in [-1, 1] or {AUTO!r}, got {threshold!r}")
    value = float(net.near_duplicate_threshold if threshold is None else threshold)
    if np.isnan(value):
        raise ValueError(
            f"{net.name} has no calibrated near-duplicate threshold; pass threshold= "
            "(--threshold on the command line), e.g. from pairs you labelled yourself"
        )
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"threshold must be a cosine similarity in [-1, 1], got {value}")
    return value


def _threshold_source(net: Backbone, given: float | str | None) -> dict[str, Any]:
    """How a threshold that was not measured on the folder was obtained, for ``findings.json``."""
    if given is not None:
        return {"kind": "given", "note": "passed by the caller (--threshold)"}
    cal = getattr(net, "calibration", None)
    if cal is None:
        return {"kind": "the backbone's own", "note": "near_duplicate_threshold of the backbone passed in"}
    return {"kind": "stored, measured on the course's bundled data", "note": cal.note}


def _calibrated_threshold(
    good: list[Path], vectors: np.ndarray, net: Backbone, workers: int | None, precision: str | None = None
) -> tuple[float, dict[str, Any]]:
    """The threshold measured on planted copies of the folder's own photos
    (:func:`embedkit.calibration.calibrate_threshold`), or the network's stored default, saying
    why, when the folder has too few photos for a measurement."""
    from .calibration import CalibrationError, calibrate_threshold

    def embed(pictures: list) -> np.ndarray:  # the planted copies, in the folder's precision
        return embed_images(pictures, net, progress=False, precision=precision).vectors

    try:
        cal = calibrate_threshold([str(p) for p in good], net, vectors=vectors, workers=workers, embed=embed)
    except CalibrationError as exc:
        fallback = float(net.near_duplicate_threshold)
        if np.isnan(fallback):
            raise ValueError(f"the threshold could not be measured on this folder ({exc}); pass one") from exc
        cal = getattr(net, "calibration", None)
        note = cal.note if cal is not None else ""
        return fallback, {
            "kind": "stored default: the folder could not calibrate one",
            "calibration_error": str(exc),
            "note": note,
        }
    return float(cal.threshold), {"kind": "calibrated on this folder", "summary": str(cal), **cal.to_dict()}


# ---------------------------------------------------------------------- step 8: quality, outliers, labels


def _quality_checks(
    paths: list[str],
    measured: list[dict[str, float] | None],
    vectors: np.ndarray,
    kinds: Sequence[str],
    representative: np.ndarray | None = None,
    label_rule: str = "auto",
) -> dict[str, Any]:
    """The issues of :mod:`embedkit.quality` for the readable files, as :class:`Findings` fields.

    Image checks use the measures taken while decoding (``measured``, one per path). Folders
    are labels only when they look like class folders
    (:func:`~embedkit.quality.class_folder_labels` with ``label_rule``); ``checks["labels"]``
    says whether they did and why. The outlier check scores every file against the centre of
    its class folder, or of the whole folder when there are no class folders
    (:func:`~embedkit.quality.outlier_scores`); files whose picture hides its content
    (:data:`~embedkit.quality.HIDES_CONTENT`) shape no centre and are left out of the label
    check, and an outlier is not reported where a dark, flat, blurry or tiny picture or the
    label check explains it (a file in the wrong class folder is far from that folder's centre).
    ``representative[i]`` is the kept file of ``i``'s near-duplicate group (``i`` itself for a
    file in no group): an outlier's reason says how many copies it has.
    """
    n = len(paths)
    representative = np.arange(n) if representative is None else np.asarray(representative)
    found: list[tuple[int, str, float, str, str | None]] = []
    measures: dict[str, np.ndarray] = {}
    notes: dict[str, str] = {}
    for kind in (k for k in kinds if k in IMAGE_KINDS):
        measures[kind] = np.array([m[kind] if m else np.nan for m in measured], dtype=np.float64)
    for i, m in enumerate(measured):
        if m is not None:
            found += [(i, kind, score, reason, None) for kind, score, reason in image_issues(m, kinds)]
    clean = np.ones(n, dtype=bool)
    for i, kind, *_ in found:
        if kind in HIDES_CONTENT:
            clean[i] = False
    voters = np.flatnonzero(clean)
    labels, class_folders, why_labels = class_folder_labels(paths, NEIGHBOURS["label"], label_rule)
    wrong_folder = np.zeros(0, dtype=np.int64)
    if "label" in kinds:
        k = NEIGHBOURS["label"]
        if not class_folders:
            notes["label"] = f"not run: {why_labels}"
        elif sum(lab is not None for lab in labels) <= k:
            notes["label"] = f"not run: needs more than {k} labelled files"
        else:
            share, suggested = label_scores(vectors, labels, k, voters)
            measures["label"] = np.where(clean, share, np.nan)
            wrong_folder = np.flatnonzero(clean & (share >= THRESHOLDS["label"]))
            for i in wrong_folder:
                found.append(
                    (
                        int(i),
                        "label",
                        float(share[i]),
                        f"{round(share[i] * k)} of its {k} nearest files are labelled {suggested[i]!r}, "
                        f"not {labels[i]!r}",
                        suggested[i],
                    )
                )
    if "outlier" in kinds:
        z, _ = outlier_scores(vectors, labels if class_folders else None, voters)
        if np.isnan(z).all():
            where = "class folder" if class_folders else "folder"
            notes["outlier"] = f"not run: no {where} holds {OUTLIER_MIN_FILES} files without an image issue"
        else:
            measures["outlier"] = z
            copies = np.bincount(representative, minlength=n) - 1
            causes = {i for i, kind, *_ in found if kind in EXPLAINED_BY["outlier"]}
            causes |= set(wrong_folder.tolist())  # far from its folder: it belongs to another
            centre = "its class folder's" if class_folders else "the folder's"
            with np.errstate(invalid="ignore"):
                far = np.flatnonzero(z >= THRESHOLDS["outlier"])
            for i in (int(i) for i in far if i not in causes):
                with_copies = ""
                if copies[representative[i]]:
                    c = copies[representative[i]]
                    with_copies = f" (with {c} near {'copy' if c == 1 else 'copies'})"
                found.append(
                    (
                        i,
                        "outlier",
                        float(z[i]),
                        f"far from {centre} other pictures{with_copies}: robust z-score {z[i]:.1f} of "
                        f"the distance to their centre (an outlier from {THRESHOLDS['outlier']:.1f})",
                        None,
                    )
                )
    order = {k: n for n, k in enumerate(KINDS)}
    found.sort(key=lambda f: (order[f[1]], -f[2] if HIGHER_IS_WORSE[f[1]] else f[2], paths[f[0]]))
    issues = []
    for i, kind, score, reason, label in found:
        issue = {"path": paths[i], "kind": kind, "score": round(float(score), 4), "reason": reason}
        if label is not None:
            issue["suggested_label"] = label
        issues.append(issue)
    checks = {
        "kinds": list(kinds),
        "thresholds": {k: THRESHOLDS[k] for k in kinds},
        "neighbours": {k: NEIGHBOURS[k] for k in kinds if k in NEIGHBOURS},
        "notes": notes,
        "labels": {"rule": label_rule, "class_folders": class_folders, "why": why_labels},
    }
    return {"issues": issues, "checks": checks, "measures": measures, "labels": labels}


def curate(
    folder: str | os.PathLike,
    backbone: Backbone | str | None = None,
    *,
    threshold: float | str | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    workers: int | None = None,
    exclude: Sequence[str | os.PathLike] = (),
    checks: str | Sequence[str] | None = None,
    precision: str | None = None,
    labels: str = "auto",
) -> Findings:
    """Find unreadable files, exact and near duplicates, groups, leaks, a clean split and
    image-quality, outlier and label issues.

    Args:
        folder: the folder to curate; its top-level subfolders are its splits.
        backbone: a loaded :class:`~embedkit.backbones.Backbone`, a name for
            :func:`~embedkit.backbones.load_backbone`, or ``None`` for its default.
        threshold: cosine similarity from which two files are near duplicates, or ``"auto"``
            to measure it on planted copies of the folder's own photos
            (:mod:`embedkit.calibration`). Default: the backbone's measured threshold
            (``thresholds.json``), and ``"auto"`` for a network that has none measured.
            ``Findings.threshold_source`` says how it was obtained.
        batch_size: images per forward pass (default: the backbone's device default).
        progress: progress bars in Jupyter or on a terminal (never in logs).
        workers: threads that decode, hash and prepare the network's input (default: CPU
            cores, at most 8); they take turns with the network where its threads fill the
            cores, as in :func:`~embedkit.embeddings.embed_images`.
        exclude: folders never scanned, whatever name reaches them (an output folder).
        checks: the issue kinds to look for (:func:`~embedkit.quality.check_kinds`):
            ``None`` or ``"all"`` (default) for every kind, ``"none"``, or names such as
            ``"dark,blurry,label"``.
        labels: which folders are labels for the label (and outlier) checks: ``"auto"``
            (default) only folders that look like class folders
            (:func:`~embedkit.quality.class_folder_labels`), ``"folders"`` every top-level
            folder (below a split folder), ``"none"`` none.
        precision: what the network runs in (:func:`~embedkit.embeddings.embed_images`'s
            ``precision``; default ``$EMBEDKIT_PRECISION``, else ``"float32"``; ``"auto"``, the
            command's default, runs bfloat16 only where the CPU or GPU has it natively and the
            network's measured fidelity allows it).
            ``Findings.precision`` records the outcome.

    Raises:
        FolderError: the folder is missing, unreadable, or holds no image files.
        ValueError: ``threshold`` is not in [-1, 1], the backbone has none calibrated, or
            ``checks`` names an unknown kind, or ``labels`` an unknown rule.
    """
    kinds = check_kinds(checks)
    class_folder_labels([], rule=labels)  # an unknown rule is refused before any work
    root = Path(folder)
    clock = _Stopwatch()
    with clock("scan"):
        scan = scan_folder(root, exclude)
        if not scan.files and not scan.problems:
            endings = ", ".join(sorted(IMAGE_SUFFIXES))
            raise FolderError(f"folder {str(root)!r} holds no image files (looked for {endings}, any case)")
    with clock("load backbone"):
        net = _resolve_backbone(backbone)
        given, threshold = threshold, _check_threshold(net, threshold)
    runs_in = resolve_precision(precision, net.name, net.device)
    workers = workers or min(8, os.cpu_count() or 1)
    with clock("hash and decode"):
        seen = _inspect(scan, root, net, batch_size, progress, workers, runs_in, kinds)
    clock.split_off("hash and decode", "embed", seen.forward_seconds)
    clock.seconds.update(seen.thread_seconds)
    if threshold is None:
        with clock("calibrate threshold"):
            threshold, source = _calibrated_threshold(seen.files, seen.vectors, net, workers, runs_in)
    else:
        source = _threshold_source(net, given)
    with clock("search"):
        found = _find_groups(seen, threshold)
    with clock("group and split"):
        grouped = _group_fields(seen, found, threshold)
        proposed, split_note = _propose_split(found.group, seen.splits)
    with clock("histogram"):
        counts, bins, hist_files = _histogram(seen.vectors)
    with clock("quality checks"):
        quality = _quality_checks(
            seen.paths, seen.measured, seen.vectors, kinds, found.representative, labels
        )
    clock.seconds["image measures (summed over threads)"] = sum(m["seconds"] for m in seen.measured if m)
    return Findings(
        folder=root,
        files=len(scan.files) + len(scan.problems),
        unreadable=seen.unreadable,
        skipped=seen.skipped,
        **grouped,
        threshold=threshold,
        threshold_source=source,
        backbone=net.name,
        paths=seen.paths,
        splits=seen.splits,
        vectors=seen.vectors,
        group=found.group,
        proposed_split=proposed,
        pixels=seen.pixels,
        histogram=(counts, bins),
        histogram_files=hist_files,
        seconds=clock.seconds,
        peak_mib=clock.peak_mib,
        split_note=split_note,
        **quality,
        precision=runs_in,
    )


def peak_mib() -> float | None:
    """This process's peak resident memory so far, in MiB; ``None`` where the system does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # Linux: VmHWM, in kB
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class _Stopwatch:
    """Wall seconds per step, in the order the steps ran, and the peak memory when each ended:
    ``with clock("scan"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_mib: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, step: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start
            peak = peak_mib()
            if peak is not None:
                self.peak_mib[step] = peak

    def split_off(self, step: str, part: str, seconds: float) -> None:
        """Count ``seconds`` of ``step`` under ``part`` instead (time that overlapped, measured inside)."""
        self.seconds[step] -= seconds
        self.seconds[part] = seconds


@dataclass(frozen=True)
class _Seen:
    """Steps 2 and 3: what one decode and one forward pass of every readable file give."""

    files: list[Path]  # the readable files, in scan order
    paths: list[str]  # the same, relative to the folder, "/"-separated
    splits: list[str]  # each file's top-level folder ("" at the top level)
    vectors: np.ndarray
    pixel_hashes: list[str]
    pixels: np.ndarray  # width × height of each picture
    measured: list[dict[str, float] | None]  # quality measures, where taken
    unreadable: list[dict[str, str]]  # every file found that could not be used, with why
    skipped: list[dict[str, str]]  # names not read, with why (a file reached again through a link)
    forward_seconds: float  # wall time of the forward passes
    thread_seconds: dict[str, float]  # the decoding threads' time by part, summed over threads


def _by_path(entry: dict[str, str]) -> str:
    return entry["path"]


def _inspect(
    scan: Scan,
    root: Path,
    net: Backbone,
    batch_size: int | None,
    progress: bool,
    workers: int,
    precision: str,
    kinds: Sequence[str],
) -> _Seen:
    """Steps 1 to 3: decode each file once on ``workers`` threads (:class:`_DecodeOnce`), hash and
    measure its pixels, and embed it, in batches.

    Memory holds a few batches of network inputs and one full-size picture per thread, whatever
    the number of files. A file that cannot be decoded or embedded is listed with its reason in
    ``unreadable``; whatever goes wrong with one file, the run goes on.
    """
    prepare = _DecodeOnce(net.preprocess, resize_target(net), measure=any(k in IMAGE_KINDS for k in kinds))
    done = embed_prepared(
        [str(p) for p in scan.files],
        net,
        prepare,
        batch_size=batch_size or getattr(net, "batch_size", None),
        progress=progress,
        workers=workers,
        precision=precision,
        desc="decoding, hashing and embedding",
    )
    unreadable = [{"path": _rel(p, root), "reason": r} for p, r in scan.problems]
    unreadable += [{"path": _rel(Path(name), root), "reason": r} for name, r in done.embeddings.failed]
    files = [scan.files[i] for i in done.rows]
    paths = [_rel(p, root) for p in files]
    return _Seen(
        files=files,
        paths=paths,
        splits=[p.split("/")[0] if "/" in p else "" for p in paths],
        vectors=done.embeddings.vectors,
        pixel_hashes=[x.pixel_hash for x in done.extras],
        pixels=np.asarray([x.pixels for x in done.extras], dtype=np.int64),
        measured=[x.measures for x in done.extras],
        unreadable=sorted(unreadable, key=_by_path),
        skipped=sorted(({"path": _rel(p, root), "reason": r} for p, r in scan.skipped), key=_by_path),
        forward_seconds=done.forward_seconds,
        thread_seconds={
            f"{part} (summed over threads)": sum(x.seconds[part] for x in done.extras)
            for part in ("decode", "pixel hash", "network input")
        },
    )


@dataclass(frozen=True)
class _Found:
    """Steps 4 and 5, as row numbers: exact groups, guarded near-duplicate groups, borderline pairs.

    Members of each group are ranked: the largest picture first, then the shorter and
    alphabetically first path, which is the file kept; groups are ordered by that file's path.
    """

    exact: list[list[int]]
    groups: list[np.ndarray]
    review: list[dict[str, Any]]
    borderline: list[tuple[int, int, float]]
    group: np.ndarray  # each file's group number, -1 for none
    representative: np.ndarray  # each file's kept file (itself when in no group)


def _find_groups(seen: _Seen, threshold: float) -> _Found:
    n = len(seen.paths)

    def rank(i: int) -> tuple:
        return (-int(seen.pixels[i]), len(seen.paths[i]), seen.paths[i])

    exact = exact_duplicate_groups(seen.pixel_hashes)
    exact_of = np.arange(n)
    for g in exact:
        exact_of[g] = g[0]
    labels, borderline = search_groups(seen.vectors, threshold, exact_of)
    groups, review = cut_chains(labels, seen.vectors, threshold) if n else ([], [])
    groups = sorted((np.array(sorted(g.tolist(), key=rank)) for g in groups), key=lambda g: seen.paths[g[0]])
    group = np.full(n, -1, dtype=np.int64)
    representative = np.arange(n)
    for k, g in enumerate(groups):
        group[g] = k
        representative[g] = g[0]
    exact = sorted((sorted(g, key=rank) for g in exact), key=lambda g: seen.paths[g[0]])
    return _Found(exact, groups, review, borderline, group, representative)


def _group_fields(seen: _Seen, found: _Found, threshold: float) -> dict[str, Any]:
    """Steps 4 to 7 as :class:`Findings` fields, by path: groups, review, borderline pairs, leaks,
    the files kept."""
    paths, vectors = seen.paths, seen.vectors
    near_groups = [[paths[i] for i in g] for g in found.groups]
    review = [
        {
            "paths": sorted(paths[i] for i in entry["members"]),
            "min_similarity": round(entry["min_similarity"], 4),
            "weakest_pair": [paths[i] for i in entry["weakest_pair"]] if entry["weakest_pair"] else None,
            "parts": sorted(sorted(paths[i] for i in part) for part in entry["parts"]),
            "note": entry["note"],
        }
        for entry in found.review
    ]
    return {
        "exact_groups": [[paths[i] for i in g] for g in found.exact],
        "near_groups": near_groups,
        "near_scores": [
            [round(cosine_similarity(vectors[g[0]], vectors[i]), 4) for i in g] for g in found.groups
        ],
        "borderline": [
            {
                "a": paths[i],
                "b": paths[j],
                "score": round(x, 4),
                "side": "above" if x >= threshold else "below",
            }
            for i, j, x in found.borderline
        ],
        "leaks": folder_leaks(near_groups),
        "keep": sorted([g[0] for g in near_groups] + [paths[i] for i in np.flatnonzero(found.group < 0)]),
        "review": sorted(review, key=lambda r: r["paths"][0]),
    }


def _histogram(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Counts of pairwise cosines in 200 bins over [-1, 1], the bins' edges and the files used."""
    bins = np.linspace(-1.0, 1.0, 201)
    if len(vectors) < 2:
        return np.zeros(200, np.int64), bins, len(vectors)
    counts, used = _similarity_histogram(vectors, HISTOGRAM_MAX_FILES, bins)
    return counts, bins, used


def _propose_split(
    group: np.ndarray, splits: Sequence[str], test_size: float = 0.2, seed: int = 0
) -> tuple[list[str], str]:
    """Group-aware split and, when it could not split, why (``""`` when it did); never raises.

    Minimal moves when there are split folders, else a seeded 80/20 split of the groups;
    a folder without split folders and fewer than two groups (one file, or every file one
    photo) cannot be split without a leak: every file is proposed for ``train``.
    """
    n = len(group)
    if n == 0:
        return [], "no readable files to split"
    labels = np.where(group >= 0, group, -1 - np.arange(n))  # a file in no group is its own group
    try:
        if len({s for s in splits if s}) >= 2:
            return group_aware_split(labels, list(splits)).tolist(), ""
        if len(np.unique(labels)) < 2:
            why = "only one readable file" if n == 1 else f"all {n} readable files are one photo (one group)"
            return [
                "train"
            ] * n, f"not split: {why}; a test split needs two groups, so every file stays in train"
        from sklearn.model_selection import GroupShuffleSplit

        train, _ = next(
            GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(
                np.zeros(n), groups=labels
            )
        )
    except ValueError as exc:  # a folder nobody foresaw: say so rather than lose the run
        return ["train"] * n, f"not split ({exc}); every file stays in train"
    out = np.full(n, "test", dtype=object)
    out[train] = "train"
    return out.tolist(), ""


# --------------------------------------------------------------------------- outputs

#: What a run writes in DIR; a run replaces the whole set (``clean`` only with an export).
OUTPUT_NAMES = ("findings.json", "split.csv", "report.html", "clean")
_CURRENT = ".curate-current"
_RUN_PREFIX = ".curate-run-"
_SPARE_PREFIX = ".curate-spare-"


class OutputError(ValueError):
    """The output folder is the folder curated, lies inside it or holds it, or cannot be written."""


def _same_or_inside(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies below it, by resolved path or by device and inode."""
    inner, outer = inner.resolve(), outer.resolve()
    if inner == outer or outer in inner.parents:
        return True
    try:
        outer_key = _key(os.stat(outer))
    except OSError:
        return False
    for path in (inner, *inner.parents):
        with contextlib.suppress(OSError):
            if _key(os.stat(path)) == outer_key:
                return True
    return False


def check_output_folder(folder: str | os.PathLike, out: str | os.PathLike) -> Path:
    """``out`` as a Path, or :class:`OutputError` if writing there could touch ``folder``.

    Refused: ``out`` is ``folder``, lies inside it (the outputs would be scanned as photos
    next time, and an export would land among the originals), or holds it (an output
    named like ``folder``, ``clean`` say, would replace it); or ``out`` exists and is not a
    folder.
    """
    folder, out = Path(folder), Path(out)
    shown = printable_name(str(out))
    if _same_or_inside(out, folder):
        where = (
            "is the folder being curated"
            if out.resolve() == folder.resolve()
            else "lies inside the folder being curated"
        )
        raise OutputError(
            f"output folder {shown!r} {where}; choose a folder outside it, nothing in it is ever written"
        )
    if _same_or_inside(folder, out):
        raise OutputError(
            f"output folder {shown!r} holds the folder being curated; choose a folder outside it"
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"output folder {shown!r} exists and is not a folder")
    if out.is_dir():
        for name in (*OUTPUT_NAMES, _CURRENT):
            if not _ours(out / name):
                raise OutputError(
                    f"{printable_name(str(out / name))!r} was not made by curate and a run would "
                    "replace it; move it away or choose another output folder"
                )
    return out


def _ours(entry: Path) -> bool:
    """Whether ``entry`` is absent or is the link a run publishes (nothing of the user's to lose).

    A run replaces only what it made: ``DIR/<output>`` links to ``.curate-current/<output>`` and
    ``DIR/.curate-current`` links to a run's folder. A real file or folder, or a link pointing
    anywhere else, is the user's.
    """
    if not os.path.lexists(entry):
        return True
    if not entry.is_symlink():
        return False
    target = os.readlink(entry)
    if entry.name == _CURRENT:
        return "/" not in target and target.startswith(_RUN_PREFIX)
    return target == f"{_CURRENT}/{entry.name}"


class Staging:
    """A fresh, private folder inside ``out`` that a run's outputs are written into, then published.

    :meth:`publish` makes the new set current with one rename: ``out/<name>`` are links to
    ``out/.curate-current/<name>``, and ``.curate-current`` is a link to the run's folder,
    replaced atomically. A run killed at any moment leaves the previous complete set or the
    new one, never a mix; :meth:`discard` (or the next run) removes the leftovers. Nothing is
    ever written through a link: files are created in the fresh folder, links are replaced,
    not followed, and earlier outputs are removed only as entries of ``out``.

    Raises:
        OutputError: ``out`` cannot be created or written.
    """

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.created: list[Path] = []
        try:
            for path in reversed([self.out, *self.out.parents]):
                if not path.exists() and not path.is_symlink():
                    path.mkdir()
                    self.created.append(path)
            self.path = Path(tempfile.mkdtemp(prefix=_RUN_PREFIX, dir=self.out))
            os.chmod(self.path, 0o777 & ~_umask())
        except OSError as exc:
            self.discard()
            shown = printable_name(str(self.out))
            raise OutputError(f"cannot write to output folder {shown!r} ({exc.strerror or exc})") from None

    def publish(self) -> dict[str, Path]:
        """Make the staged outputs current; return the path of each under ``out``."""
        run = self.path.name
        for name in (_CURRENT, *OUTPUT_NAMES):  # checked again: the user may have made one meanwhile
            if not _ours(self.out / name):
                raise OutputError(
                    f"{printable_name(str(self.out / name))!r} was not made by curate; nothing was replaced"
                )
        self._link(_CURRENT, run)
        written = {}
        for name in OUTPUT_NAMES:
            if (self.path / name).exists():
                self._link(name, f"{_CURRENT}/{name}")
                written[name] = self.out / name
            elif os.path.lexists(self.out / name) and _ours(self.out / name):
                os.unlink(self.out / name)  # the link to an earlier run's export
        self._clean_up(keep=run)
        self.path = None
        return written

    def discard(self) -> None:
        """Remove the staged outputs and the folders this run created (if still empty)."""
        if getattr(self, "path", None) is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
        for path in reversed(self.created):
            with contextlib.suppress(OSError):
                path.rmdir()
        self.created = []

    def _link(self, name: str, target: str) -> None:
        """``out/name`` becomes a link to ``target``, replacing the entry (never writing through it)."""
        entry = self.out / name
        if entry.is_symlink() and os.readlink(entry) == target:
            return
        temporary = self.out / f"{_SPARE_PREFIX}{os.getpid()}-{name}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, entry)

    def _remove(self, entry: Path) -> None:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)  # does not follow links inside it
        else:
            entry.unlink()

    def _clean_up(self, keep: str) -> None:
        """Remove earlier runs' folders and spares: real folders and files directly in ``out`` only."""
        for entry in os.scandir(self.out):
            if entry.name != keep and entry.name.startswith((_RUN_PREFIX, _SPARE_PREFIX)):
                with contextlib.suppress(OSError):
                    self._remove(Path(entry.path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _csv_cell(value: Any) -> Any:
    """A spreadsheet shows text starting with ``= + - @`` (or a tab or return) as a formula: quote it."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to a file that must not exist yet (never through a link)."""
    with open(path, "x", encoding="utf-8", newline="") as f:
        f.write(text)


def write_outputs(
    findings: Findings, out: str | os.PathLike, report: bool = True, export: str | None = None
) -> dict[str, Path]:
    """Write ``findings.json``, ``split.csv``, ``report.html`` (unless ``report=False``) and,
    with ``export`` (``"links"`` or ``"copies"``), the ``clean`` folder, replacing the previous
    set in ``out`` as a whole (see :class:`Staging`).

    Returns:
        ``{"findings", "split", "report", "clean"}`` paths under ``out`` (those written).

    Raises:
        OutputError: ``out`` is, holds or lies inside the folder curated, or cannot be written.
    """
    out = check_output_folder(findings.folder, out)
    if export not in (None, "links", "copies"):
        raise ValueError(f"export must be None, 'links' or 'copies', got {export!r}")
    staging = Staging(out)
    try:
        _write_all(findings, staging.path, report, export)
        written = staging.publish()
    except BaseException:
        staging.discard()
        raise
    keys = {"findings.json": "findings", "split.csv": "split", "report.html": "report", "clean": "clean"}
    return {keys[name]: path for name, path in written.items()}


def _write_all(findings: Findings, folder: Path, report: bool, export: str | None) -> None:
    """Every output into ``folder``, a fresh folder of the run's own."""
    _write_new(folder / "findings.json", json.dumps(findings.to_json(), indent=1, ensure_ascii=False) + "\n")
    keep = set(findings.keep)
    with open(folder / "split.csv", "x", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "original_split", "proposed_split", "group", "keep"])
        for i, path in enumerate(findings.paths):
            g = int(findings.group[i])
            row = [path, findings.splits[i], findings.proposed_split[i], "" if g < 0 else g]
            writer.writerow([_csv_cell(_printable(v)) for v in row] + ["yes" if path in keep else "no"])
    if report:
        from .report import write_report

        write_report(findings, folder / "report.html")
    if export:
        export_clean_folder(findings, folder / "clean", export)


def export_clean_folder(findings: Findings, destination: str | os.PathLike, mode: str = "links") -> int:
    """Lay the kept files out as ``destination/<proposed split>/<path>``; returns how many.

    ``mode`` is ``"links"`` (symbolic links, no extra disk space) or ``"copies"``. Sources are
    only read. Nothing that exists is replaced: ``destination`` must be new or empty and may
    not be, hold, or lie inside the folder curated. (:func:`write_outputs` with ``export=``
    replaces ``DIR/clean`` as a whole on every run.)

    Raises:
        OutputError: ``destination`` is, holds or lies inside the folder curated, or is not empty.
    """
    if mode not in ("links", "copies"):
        raise ValueError(f"mode must be 'links' or 'copies', got {mode!r}")
    destination = check_output_folder(findings.folder, destination)
    if destination.exists() and any(destination.iterdir()):
        raise OutputError(
            f"export folder {printable_name(str(destination))!r} is not empty; export into a new folder"
        )
    split_of = dict(zip(findings.paths, findings.proposed_split, strict=True))
    for path in findings.keep:
        source = (findings.folder / path).resolve()
        rest = path.split("/", 1)[1] if findings.has_splits and "/" in path else path
        target = destination / split_of[path] / rest
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "links":
            target.symlink_to(source)  # fails if anything is there: nothing is replaced
        else:
            with open(source, "rb") as src, open(target, "xb") as dst:
                shutil.copyfileobj(src, dst)
            shutil.copystat(source, target)
    return len(findings.keep)
