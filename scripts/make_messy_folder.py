"""Build a small messy photo folder with known truth, for lesson 06 and the curate tool's tests.

    python scripts/make_messy_folder.py DEST      # writes DEST/ and prints the truth as JSON

The folder is made at run time from the bundled photos in ``data/`` (nothing binary is
committed twice): ``train/``, ``test/`` and ``val/`` subfolders, nested folders with
spaces and non-ASCII names, uppercase endings, and planted problems:

- per planted photo: the original (in ``train/``), a byte copy with another name and an
  uppercase ``.JPG``/``.PNG`` ending, a lossless PNG re-save (same pixels, other bytes),
  a symbolic link to the original (where the file system allows links), a half-size
  copy in ``test/`` and a centre crop in ``val/``: one near-duplicate group that leaks
  into all three splits;
- photos that appear once, one of them as a 1200 × 150 panorama;
- files that cannot be used: an empty file, a truncated JPEG, a text file named ``.jpg``, a
  1200 × 3 strip (an extreme aspect ratio, refused by name) and a dangling symbolic link.

:func:`make_messy_folder` returns the truth as plain data (paths relative to the folder,
``/`` separators), so a lesson or a test can check what the tool finds. The result is
deterministic.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"

#: Photos planted with copies (distinct source photos), and photos that appear once.
PLANTED = ["chelsea-cat", "coffee-cup", "rocket-launch", "coins"]
SINGLES = ["brick", "retina", "hubble-deep-field", "dahlia", "cameraman", "handwriting"]
STRIP = "camera-campus"  # appears once, as an extreme-aspect strip

# Where each planted photo's files go: (subfolder, name pattern); {n} is the photo name.
_LAYOUT = {
    "original": ("train/holiday 2023", "{n}.jpg"),
    "byte_copy": ("train", "{n} (copy).JPG"),
    "png_resave": ("train/exports", "{n}.PNG"),
    "link": ("train/links", "{n}-link.jpg"),
    "half_size": ("test", "{n}_small.jpg"),
    "crop": ("val/café ☕", "{n}_crop.jpg"),
}


def _original(name: str) -> Path:
    matches = sorted(DATA.glob(f"*/{name}_original.*"))
    if not matches:
        raise FileNotFoundError(f"no original of {name!r} under {DATA}; run scripts/make_dataset.py")
    return matches[0]


def _as_jpeg(source: Path, target: Path, image: Image.Image | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    (image or Image.open(source).convert("RGB")).save(target, format="JPEG", quality=92)


def make_messy_folder(dest: str | os.PathLike, links: bool = True) -> dict:
    """Write the messy folder to ``dest`` (replacing it) and return its truth.

    Returns:
        ``{"files", "exact_groups", "near_groups", "leaks", "unreadable", "singles"}``:
        the number of image files, lists of path lists (sorted), leaks as
        ``{split: [paths]}`` dicts, the unreadable paths, and the files that belong to
        no group.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    can_link = links and hasattr(os, "symlink")
    exact_groups, near_groups, leaks = [], [], []
    for name in PLANTED:
        paths = {kind: f"{folder}/{pattern.format(n=name)}" for kind, (folder, pattern) in _LAYOUT.items()}
        if not can_link:
            paths.pop("link")
        original = dest / paths["original"]
        _as_jpeg(_original(name), original)
        picture = Image.open(original).convert("RGB")
        (dest / paths["byte_copy"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, dest / paths["byte_copy"])
        (dest / paths["png_resave"]).parent.mkdir(parents=True, exist_ok=True)
        picture.save(dest / paths["png_resave"], format="PNG")  # the decoded JPEG pixels, losslessly
        if can_link:
            (dest / paths["link"]).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(original, (dest / paths["link"]).parent), dest / paths["link"])
        w, h = picture.size
        _as_jpeg(
            original, dest / paths["half_size"], picture.resize((w // 2, h // 2), Image.Resampling.LANCZOS)
        )
        box = (w // 10, h // 10, w - w // 10, h - h // 10)
        _as_jpeg(original, dest / paths["crop"], picture.crop(box))
        exact = sorted(p for k, p in paths.items() if k in ("original", "byte_copy", "png_resave", "link"))
        exact_groups.append(exact)
        near_groups.append(sorted(paths.values()))
        by_split: dict[str, list[str]] = {}
        for p in paths.values():
            by_split.setdefault(p.split("/")[0], []).append(p)
        leaks.append({split: sorted(ps) for split, ps in sorted(by_split.items())})
    singles = []
    for k, name in enumerate(SINGLES):
        rel = f"{['train', 'test', 'val'][k % 3]}/{name}.{'jpeg' if k % 2 else 'png'}"
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(_original(name)).convert("RGB").save(target)
        singles.append(rel)
    panorama = f"train/{STRIP}_panorama.png"  # 8:1, wide but within what the package accepts
    Image.open(_original(STRIP)).convert("RGB").resize((1200, 150)).save(dest / panorama)
    singles.append(panorama)

    # 400:1: refused by name (the network would see only its centre square)
    strip = f"train/{STRIP}_strip.png"
    Image.open(_original(STRIP)).convert("RGB").resize((1200, 3)).save(dest / strip)
    unreadable = ["test/empty.png", "train/truncated.jpg", "val/notes.jpg", strip]
    (dest / unreadable[0]).write_bytes(b"")
    data = (dest / paths["original"]).read_bytes()
    (dest / unreadable[1]).write_bytes(data[: len(data) // 3])
    (dest / unreadable[2]).write_text("shopping list: milk, eggs\n", encoding="utf-8")
    if can_link:
        unreadable.append("val/missing-link.jpg")
        os.symlink("no-such-photo.jpg", dest / unreadable[-1])
    (dest / "README.txt").write_text("not an image; the tools ignore it\n", encoding="utf-8")
    n_files = sum(len(g) for g in near_groups) + len(singles) + len(unreadable)
    return {
        "files": n_files,
        "exact_groups": sorted(exact_groups),
        "near_groups": sorted(near_groups),
        "leaks": leaks,
        "unreadable": sorted(unreadable),
        "singles": sorted(singles),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/make_messy_folder.py DEST")
    print(json.dumps(make_messy_folder(sys.argv[1]), indent=1, ensure_ascii=False))
