"""Grow the bundled data set into a larger one with known groups: edited copies and bad files.

``make_variants`` writes randomly edited copies of every bundled image (crops, mirror
images, resizes, JPEG re-encodes, in combination) into a folder. Each copy keeps its
source's ``group`` and ``split``, so the manifest's ground truth still scores every
method; ``make_bad_files`` adds the files a real folder holds that are not images.

It is the package's job because lessons and tests need it at run time, in any number:
``scripts/make_dataset.py`` builds the fixed bundled set once (committed, checksummed) and
``scripts/make_messy_folder.py`` a small fixed folder of planted problems for lesson 06.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from .images import load_rgb

__all__ = ["COLUMNS", "make_bad_files", "make_variants"]

#: The columns of :func:`make_variants`' table (present even when it has no rows).
COLUMNS = ["file", "path", "source", "group", "split", "transformation"]


def _edit(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """One random combination of mild edits; returns the image and a name for them."""
    names = []
    w, h = image.size
    if rng.random() < 0.5:
        keep = rng.uniform(0.8, 0.95)
        cw, ch = max(1, round(w * keep)), max(1, round(h * keep))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        image = image.crop((x0, y0, x0 + cw, y0 + ch))
        names.append("crop")
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
        names.append("mirror")
    if rng.random() < 0.5 or not names:
        scale = rng.uniform(0.5, 0.9)
        image = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
        names.append("resize")
    return image, "+".join(names)


def make_variants(
    manifest: pd.DataFrame, out_dir: str | os.PathLike, per_file: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Write ``per_file`` edited JPEG copies of every manifest file into ``out_dir``.

    Args:
        manifest: from :func:`embedkit.dataset.load_manifest` (needs ``file``, ``path``,
            ``group``, ``split``).
        out_dir: folder to write into (created).
        per_file: copies per bundled file.
        seed: the edits are random but reproducible.

    Returns:
        One row per copy: ``file`` (absolute path), ``path`` (relative to ``out_dir``),
        ``source`` (the bundled file's relative path), ``group``, ``split`` (the
        source's) and ``transformation`` (the edits, e.g. ``"crop+mirror"``).
    """
    if isinstance(per_file, bool) or not isinstance(per_file, int) or per_file < 0:
        raise ValueError(f"per_file must be a whole number, 0 or more; got {per_file!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for src in manifest.itertuples():
        picture = load_rgb(src.file)
        stem = Path(src.path).with_suffix("").as_posix().replace("/", "__")
        for k in range(per_file):
            edited, kind = _edit(picture, rng)
            name = f"{stem}__v{k:02d}.jpg"
            edited.save(out / name, quality=int(rng.integers(60, 95)))
            rows.append({"file": str(out / name), "path": name, "source": src.path, "group": src.group,
                         "split": src.split, "transformation": kind})
    return pd.DataFrame(rows, columns=COLUMNS)


def make_bad_files(out_dir: str | os.PathLike, good_jpeg: str | os.PathLike) -> list[Path]:
    """Write three files that are not usable images into ``out_dir``: empty, text, truncated JPEG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    empty, text, truncated = out / "empty.jpg", out / "notes.jpg", out / "truncated.jpg"
    empty.write_bytes(b"")
    text.write_text("this is a text file with an image's name\n")
    data = Path(good_jpeg).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return [empty, text, truncated]
