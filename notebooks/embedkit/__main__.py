"""Command line: ``python -m embedkit curate FOLDER --out DIR``.

Writes ``DIR/findings.json``, ``DIR/report.html`` and ``DIR/split.csv`` (see
:mod:`embedkit.curate`). Exit status 0 when the run completes, whatever it finds;
2 with one line on standard error when FOLDER is missing, empty or unreadable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m embedkit", description="The course's image-curation tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    curate = commands.add_parser(
        "curate",
        help="find unreadable files, duplicates and leaks in a folder of images",
        description="Scan FOLDER (its top-level subfolders are its splits), find unreadable files, "
        "exact and near duplicates and leaks between splits, and write findings.json, report.html "
        "and split.csv to DIR.",
    )
    curate.add_argument("folder", metavar="FOLDER", help="folder of images to curate")
    curate.add_argument("--out", metavar="DIR", required=True, help="folder to write the results to")
    curate.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine similarity from which two files are near duplicates "
        "(default: the backbone's calibrated threshold)",
    )
    curate.add_argument(
        "--backbone",
        default=None,
        help="network to embed with, as load_backbone names it (default: "
        "$EMBEDKIT_BACKBONE, else the course's default)",
    )
    curate.add_argument("--batch-size", type=int, default=None, help="images per forward pass")
    curate.add_argument(
        "--export",
        choices=("links", "copies"),
        default=None,
        help="also lay the kept files out as DIR/clean/<split>/... (links or copies)",
    )
    curate.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .curate import FolderError, curate, export_clean_folder, list_image_files, write_outputs

    prog = "python -m embedkit curate"
    if args.batch_size is not None and args.batch_size < 1:
        print(f"{prog}: error: --batch-size must be at least 1, got {args.batch_size}", file=sys.stderr)
        return 2
    if args.threshold is not None and not -1.0 <= args.threshold <= 1.0:
        print(f"{prog}: error: --threshold must be in [-1, 1], got {args.threshold}", file=sys.stderr)
        return 2
    try:
        list_image_files(args.folder)  # fail fast, before loading a network
        findings = curate(
            args.folder,
            args.backbone,
            threshold=args.threshold,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    except FolderError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    written = write_outputs(findings, args.out)
    if args.export:
        export_clean_folder(findings, f"{args.out}/clean", args.export)
    if not args.quiet:
        print(findings.summary())
        for path in written.values():
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
