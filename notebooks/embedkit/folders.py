"""Find the image files in a folder, each once, and say what could not be listed.

One walker for the whole package: :func:`scan_folder` is what ``curate`` scans with and what
:func:`embedkit.images.scan_images`, :func:`~embedkit.images.expand_paths` and
:func:`~embedkit.embeddings.embed_images` list a folder with. What it guarantees:

- every file with an image ending (:data:`IMAGE_SUFFIXES`, any case) below the folder, hidden
  files and folders skipped, sorted;
- only regular files are listed: a named pipe, a device or a link to one is reported by its
  type, never opened (types come from ``stat``);
- a folder that cannot be entered is reported and the walk goes on;
- links to folders are followed once, after the real folders; a file reached again through a
  folder link counts once, under its first name; a link back to an enclosing folder is a loop,
  reported and not followed; a link to a file is a name of its own (an exact copy);
- dangling links and link loops are reported as such (:func:`link_problem`, the same reason
  :func:`~embedkit.images.load_rgb` gives for one);
- names are kept as the file system gives them (:func:`os.fsdecode`), and every reason shows
  them through :func:`printable_name`, so a name that is not valid UTF-8 or holds control or
  right-to-left characters is written with visible escapes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "IMAGE_SUFFIXES",
    "FolderError",
    "Scan",
    "check_folder",
    "file_kind",
    "link_problem",
    "list_image_files",
    "printable_name",
    "scan_folder",
]

#: File endings a folder's image files have (any case).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
    | {".avif", ".heic", ".heif"}  # read when Pillow has the codec; otherwise reported, not ignored
)


class FolderError(ValueError):
    """A folder to scan is missing, not a folder or unreadable (or, to curate, holds no image files)."""


# Bytes that are not UTF-8 (decoded by os.fsdecode as lone surrogates), control characters,
# and the characters that reorder text (bidirectional embeddings, overrides and isolates).
_UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable_name(text: str) -> str:
    """``text`` with undecodable bytes, control and text-direction characters as visible escapes.

    A byte that is not UTF-8 becomes ``\\xff``, a right-to-left override ``\\u202e``, a
    newline ``\\x0a``: the result can be written as UTF-8 anywhere (JSON, CSV, HTML, a
    terminal) and shows the name as it is stored, not reordered. Other text is unchanged.
    """
    return _UNSAFE_CHARACTERS.sub(_escape, text)


def link_problem(path: str | os.PathLike) -> str:
    """Why a symbolic link cannot be followed: a loop, or a target that does not exist."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link points back to itself)"
    try:
        target = printable_name(os.readlink(path))
    except OSError:
        return "dangling symbolic link"
    return f"dangling symbolic link (it points to {target}, which does not exist)"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _key(st: os.stat_result) -> tuple[int, int]:
    """What identifies a file or folder whatever its name: device and inode."""
    return st.st_dev, st.st_ino


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, from its ``stat`` mode: ``"a named pipe"``, ..."""
    for test, name in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


@dataclass
class Scan:
    """What :func:`scan_folder` found.

    Attributes:
        files: regular files with an image ending, each file once, sorted.
        problems: ``(path, reason)`` for what looks like an image file or a folder but cannot
            be used: dangling links, link loops, pipes and devices, folders that cannot be read.
        skipped: ``(path, reason)`` for folder links to folders already walked, and files
            reached again through a folder link.
    """

    files: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def check_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as a Path, or :class:`FolderError` if it is missing, not a folder or unreadable."""
    root = Path(folder)
    if not root.exists():
        raise FolderError(f"folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise FolderError(f"{str(root)!r} is a file, not a folder; pass the folder that holds the images")
    if not os.access(root, os.R_OK | os.X_OK):
        raise FolderError(f"folder {str(root)!r} cannot be read (permission denied)")
    return root


def scan_folder(folder: str | os.PathLike, exclude: Sequence[str | os.PathLike] = ()) -> Scan:
    """Every regular image file below ``folder``, once each, and what could not be listed.

    Real folders are walked first, then links to folders not walked yet; a file reached
    through a folder link that was listed already (same device and inode) is skipped, so
    folder links never make a file count twice. A link to a file counts as a file of its own
    (an exact copy). A link back to an enclosing folder is a loop, reported and not followed.
    Folders in ``exclude`` (an output folder) are never entered, whatever name reaches them.
    Nothing is opened: types come from ``stat``.

    Raises:
        FolderError: ``folder`` is missing, not a folder or cannot be read.
    """
    root = check_folder(folder)
    scan = Scan()
    excluded = set()
    for path in exclude:
        with contextlib.suppress(OSError):
            excluded.add(_key(os.stat(path)))
    try:
        root_key = _key(os.stat(root))
    except OSError as exc:
        raise FolderError(f"folder {str(root)!r} cannot be read ({exc.strerror})") from None
    walked: dict[tuple[int, int], Path] = {root_key: root}
    found: list[tuple[bool, str, Path, os.stat_result]] = []
    folder_links: list[tuple[Path, tuple[tuple[int, int], ...]]] = []

    def walk(top: Path, enclosing: tuple[tuple[int, int], ...], linked: bool = False) -> None:
        stack = [(top, enclosing)]
        while stack:
            here, above = stack.pop()
            try:
                with os.scandir(here) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                if here == root:
                    raise FolderError(f"folder {str(root)!r} cannot be read ({exc.strerror})") from None
                scan.problems.append(
                    (here, f"folder cannot be read ({exc.strerror}); its files were not scanned")
                )
                continue
            for entry in reversed(entries):
                if entry.name.startswith("."):
                    continue
                path = here / entry.name
                is_image_name = Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
                is_link = False
                try:
                    is_link = entry.is_symlink()
                    st = os.stat(path) if is_link else entry.stat(follow_symlinks=False)
                except OSError as exc:
                    if exc.errno in (errno.EACCES, errno.EPERM) and not is_link:
                        why = f"folder can be listed but not entered ({exc.strerror})"
                        scan.problems.append((here, f"{why}; its files were not scanned"))
                        break
                    if is_image_name and is_link and exc.errno in (errno.ELOOP, errno.ENOENT):
                        scan.problems.append((path, link_problem(path)))
                    elif is_image_name:
                        scan.problems.append((path, f"cannot be read ({exc.strerror})"))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if is_link:
                        folder_links.append((path, above))
                    elif _key(st) in excluded:
                        scan.skipped.append((path, "the output folder; not scanned"))
                    elif _key(st) not in walked:  # a bind mount seen twice is walked once
                        walked[_key(st)] = path
                        stack.append((path, (*above, _key(st))))
                elif is_image_name and stat.S_ISREG(st.st_mode):
                    found.append((linked, str(path), path, st))
                elif is_image_name:
                    scan.problems.append((path, f"{file_kind(st.st_mode)}, not an image file; not opened"))

    walk(root, (root_key,))
    for path, above in folder_links:  # grows while linked folders are walked
        try:
            key = _key(os.stat(path))
        except OSError:
            continue
        if key in above:
            scan.problems.append(
                (path, "symbolic link loop (points back to a folder that holds it); not followed")
            )
        elif key in excluded:
            scan.skipped.append((path, "link to the output folder; not scanned"))
        elif key in walked:
            first = printable_name(_rel(walked[key], root)) if walked[key] != root else "the folder itself"
            scan.skipped.append((path, f"link to a folder scanned already ({first}); not followed again"))
        else:
            walked[key] = path
            walk(path, (*above, key), linked=True)

    listed: dict[tuple[int, int], Path] = {}
    for linked, _, path, st in sorted(found, key=lambda f: f[:2]):  # files in real folders first
        if linked and _key(st) in listed:
            first = printable_name(_rel(listed[_key(st)], root))
            scan.skipped.append(
                (path, f"same file as {first}, reached again through a folder link; counted once")
            )
        else:
            listed.setdefault(_key(st), path)
            scan.files.append(path)
    scan.files.sort()
    return scan


def list_image_files(folder: str | os.PathLike) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(files, problems)`` of :func:`scan_folder`: sorted image files, each once, and what
    could not be used (dangling links, link loops, pipes and devices, unreadable folders).

    Raises:
        FolderError: ``folder`` is missing, not a folder or cannot be read.
    """
    scan = scan_folder(folder)
    return scan.files, scan.problems
