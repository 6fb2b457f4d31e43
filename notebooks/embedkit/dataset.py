"""The course's bundled image set and the files lessons generate from it.

``data/`` (built by ``scripts/make_dataset.py``) holds the images and
``manifest.csv``, the ground truth: split, label, source photo, transformation
and duplicate group of every file. Lessons read it with :func:`load_manifest`
and share embeddings through :func:`bundled_embeddings`, which recomputes them
when the file an earlier lesson saved is absent or stale, so every notebook
also runs on its own in a fresh kernel.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pandas as pd

from .backbones import Backbone
from .embeddings import Embeddings, EmbeddingsFileError, embed_images

__all__ = [
    "ARTIFACTS_DIR",
    "DATA_DIR",
    "bundled_embeddings",
    "embeddings_file",
    "load_manifest",
    "manifest_fingerprint",
    "save_bundled_embeddings",
]

# The package lives in the course's notebooks/ folder (an editable install keeps it there); the
# bundled data sits beside that folder. An installed copy elsewhere has no data/: load_manifest()
# then says so rather than reading whatever folder happens to be two levels up.
_REPO = Path(__file__).resolve().parents[2]
#: The bundled images and their manifest (in a clone of the course).
DATA_DIR = _REPO / "data"
#: Files the lessons generate (embeddings, ...); git-ignored and recomputed when absent.
ARTIFACTS_DIR = _REPO / "notebooks" / "artifacts"


def load_manifest(data_dir: str | Path = DATA_DIR) -> pd.DataFrame:
    """The bundled data's ground truth, one row per file.

    Columns: ``path`` (relative to ``data/``), ``split``, ``label``, ``source``,
    ``transformation``, ``group``, ``sha256``, ``width``, ``height``, ``mode``, and
    ``file`` (the absolute path, ready for ``load_rgb``).
    """
    data_dir = Path(data_dir)
    if not (data_dir / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"no manifest.csv in {data_dir}: the bundled data comes with a clone of the course "
            "(embedkit installed elsewhere does not carry it); pass data_dir= the clone's data/ folder"
        )
    manifest = pd.read_csv(data_dir / "manifest.csv")
    manifest["file"] = [str(data_dir / p) for p in manifest["path"]]
    return manifest


def embeddings_file(backbone_name: str) -> Path:
    """Where the bundled images' embeddings by this backbone are saved for later lessons."""
    return ARTIFACTS_DIR / f"embeddings_{backbone_name}.npz"


def _content_sha256(file: str | Path) -> str:
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable ({type(exc).__name__})"


def manifest_fingerprint(manifest: pd.DataFrame) -> str:
    """SHA-256 over every file's path, recorded checksum and *actual* content.

    Changes whenever any bundled file does, even when ``manifest.csv`` was not
    updated (hashing the ~200 small bundled files takes milliseconds).
    """
    text = "\n".join(
        f"{p} {h} {_content_sha256(f)}"
        for p, h, f in zip(manifest["path"], manifest["sha256"], manifest["file"], strict=True)
    )
    return hashlib.sha256(text.encode()).hexdigest()


def save_bundled_embeddings(embeddings: Embeddings, manifest: pd.DataFrame | None = None) -> Path:
    """Save embeddings of every manifest file for the next lessons, keyed by relative path.

    ``embeddings`` must have one row per manifest row, in manifest order (as
    ``embed_images(manifest["file"], backbone)`` returns when no file fails). The rows
    are saved under the manifest's relative paths, so the file does not depend on where
    the course lives, together with the fingerprint of the files' contents, so changed
    images are never matched with old vectors.
    """
    manifest = load_manifest() if manifest is None else manifest
    if embeddings.paths not in (manifest["file"].tolist(), manifest["path"].tolist()):
        raise ValueError(
            f"expected one embedding per manifest row in manifest order ({len(manifest)} rows); "
            f"got {len(embeddings)} rows and {len(embeddings.failed)} failures"
        )
    keyed = Embeddings(
        embeddings.vectors,
        manifest["path"].tolist(),
        [],
        embeddings.backbone,
        source=manifest_fingerprint(manifest),
    )
    return keyed.save(embeddings_file(embeddings.backbone))


def _mismatch(saved: Embeddings, backbone: Backbone, manifest: pd.DataFrame) -> str | None:
    """Why a saved file does not hold this backbone's embeddings of these exact files, or None."""
    if saved.backbone != backbone.name:
        return f"made by {saved.backbone or 'an unnamed network'}, not {backbone.name}"
    if saved.vectors.shape[1] != backbone.dim:
        return f"holds {saved.vectors.shape[1]}-d vectors, {backbone.name} makes {backbone.dim}-d"
    if saved.paths != manifest["path"].tolist():
        return f"holds {len(saved)} rows for other files than the manifest's {len(manifest)}"
    if saved.source != manifest_fingerprint(manifest):
        return "the images changed since it was saved"
    return None


def _saved_if_current(cache: Path, backbone: Backbone, manifest: pd.DataFrame) -> Embeddings | None:
    """The saved embeddings if they are readable and current; else None, with a one-line warning."""
    if not cache.exists():
        return None
    try:
        saved = Embeddings.load(cache)
    except EmbeddingsFileError as exc:
        problem = exc.reason
    else:
        problem = _mismatch(saved, backbone, manifest)
        if problem is None:
            return saved
    warnings.warn(f"{cache.name}: {problem}; recomputing", stacklevel=3)
    return None


def bundled_embeddings(
    backbone: Backbone,
    manifest: pd.DataFrame | None = None,
    recompute: bool = False,
    progress: bool = True,
) -> Embeddings:
    """Embeddings of every bundled image, one row per manifest row, in manifest order.

    Reads ``notebooks/artifacts/embeddings_<backbone>.npz`` (saved by lesson 02)
    when it exists, is readable, and matches this backbone and these exact file
    contents; otherwise (one line says why) embeds the images and saves the file for
    the next lesson.
    """
    manifest = load_manifest() if manifest is None else manifest
    if not recompute:
        saved = _saved_if_current(embeddings_file(backbone.name), backbone, manifest)
        if saved is not None:
            return saved
    computed = embed_images(manifest["file"], backbone, progress=progress)
    if computed.failed:
        raise RuntimeError(f"bundled images failed to load: {computed.failed}")
    return Embeddings.load(save_bundled_embeddings(computed, manifest))
