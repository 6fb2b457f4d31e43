"""Command line: ``python -m embedkit curate FOLDER --out DIR``.

Writes ``DIR/findings.json``, ``DIR/report.html`` and ``DIR/split.csv`` (see
:mod:`embedkit.curate`), replacing an earlier run's set as a whole. Exit status 0 when
the run completes, whatever it finds; 2 with one line on standard error when an argument
is wrong (FOLDER missing, empty or unreadable; DIR inside FOLDER, holding it or not
writable; an unknown backbone or precision; a threshold outside [-1, 1]), checked before any work;
1 with one line when the results cannot be written (a full disk); 130 with one line when
interrupted (Ctrl-C). Nothing in FOLDER is ever written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m embedkit", description="The course's image-curation tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    curate = commands.add_parser(
        "curate",
        help="find unreadable files, duplicates, leaks and quality issues in a folder of images",
        description="Scan FOLDER (its top-level subfolders are its splits), find unreadable files, "
        "exact and near duplicates, leaks between splits, image-quality issues, outliers and files "
        "whose neighbours carry another label, and write findings.json, report.html and split.csv to DIR.",
    )
    curate.add_argument("folder", metavar="FOLDER", help="folder of images to curate")
    curate.add_argument("--out", metavar="DIR", required=True, help="folder to write the results to")
    curate.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        help="cosine similarity from which two files are near duplicates, or 'auto' to measure it on "
        "planted copies of the folder's own photos (default: the network's measured threshold, "
        "'auto' for a network with none)",
    )
    curate.add_argument(
        "--backbone",
        default=None,
        help="network to embed with, as load_backbone names it (default: "
        "$EMBEDKIT_BACKBONE, else the course's default)",
    )
    curate.add_argument("--batch-size", type=int, default=None, help="images per forward pass")
    curate.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16", "float16"),
        default=None,
        help="what the network runs in: 'auto' uses bfloat16 only where the CPU (AMX, AVX512-BF16) or "
        "GPU has it natively and the network's measured fidelity allows it; 'float32' is reproducible "
        "(default: $EMBEDKIT_PRECISION, else auto; the Python functions default to float32)",
    )
    curate.add_argument(
        "--export",
        choices=("links", "copies"),
        default=None,
        help="also lay the kept files out as DIR/clean/<split>/... (links or copies)",
    )
    curate.add_argument(
        "--checks",
        default="all",
        help="issues to look for, separated by commas: dark, bright, blurry, low_information, "
        "odd_aspect, tiny, grayscale, outlier, label; 'all' (default) or 'none'",
    )
    curate.add_argument(
        "--labels",
        choices=("auto", "folders", "none"),
        default="auto",
        help="which folders are labels for the label check: 'auto' (default) only folders that look "
        "like class folders (at least 2, each with at least 4 files directly inside, no folder inside, "
        "no name that looks like a date), 'folders' every top-level folder (below train/, test/, ...), "
        "'none' none",
    )
    curate.add_argument("--quiet", action="store_true", help="no progress bars, no warnings and no summary")
    curate.add_argument("--verbose", action="store_true", help="also print where the time went, step by step")
    return parser


PROG = "python -m embedkit curate"


def _check_backbone(name: str | None) -> None:
    """Raise ValueError unless ``name`` (or the default it stands for) is a known network."""
    from .backbones import NETWORKS, default_network_name

    if name is None:
        default_network_name()  # raises for an unknown $EMBEDKIT_BACKBONE
    elif name not in NETWORKS:
        raise ValueError(f"unknown --backbone {name!r}; choose one of {', '.join(sorted(NETWORKS))}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 done, 2 bad argument, 130 interrupted)."""
    started = time.perf_counter()
    args = _parser().parse_args(argv)
    args.started = started
    if args.quiet:
        warnings.simplefilter("ignore")
    try:
        return _curate(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; earlier results in --out are unchanged", file=sys.stderr)
        return 130


def _error(message: str, status: int = 2) -> int:
    from .curate import printable_name

    print(f"{PROG}: error: {printable_name(message)}", file=sys.stderr)
    return status


def _threshold(text: str) -> float | str:
    """``--threshold``'s value: ``auto`` or a number (its range is checked with the other arguments)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [-1, 1] or auto, got {text!r}") from None


def _let_waiting_threads_sleep() -> None:
    """OpenMP threads that wait for the others sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``).

    Spinning pays off only when the process has the cores to itself. Beside other programs (a
    browser, a build, another run), spinning threads take the time the working ones need, and
    each of the network's many short parallel steps waits for them: a forward pass then takes many
    times as long (``benchmarks/bench_curate.py`` measures both). Set before PyTorch loads OpenMP,
    and only when the user has chosen no policy (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``).
    """
    if "torch" not in sys.modules and not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & os.environ.keys():
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _curate(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        return _error(f"--batch-size must be at least 1, got {args.batch_size}")
    number = isinstance(args.threshold, float)
    if number and not (math.isfinite(args.threshold) and -1.0 <= args.threshold <= 1.0):
        return _error(f"--threshold must be in [-1, 1] or auto, got {args.threshold}")
    _let_waiting_threads_sleep()
    imports = time.perf_counter()
    from .curate import (
        FolderError,
        OutputError,
        Staging,
        check_folder,
        check_output_folder,
        curate,
        peak_mib,
        printable_name,
        write_outputs,
    )
    from .embeddings import default_precision

    imports = time.perf_counter() - imports
    peak_after_imports = peak_mib()
    try:  # every argument, before any work
        from .quality import check_kinds

        check_kinds(args.checks)
        _check_backbone(args.backbone)
        precision = args.precision or default_precision("auto")  # raises for an unknown $EMBEDKIT_PRECISION
        check_folder(args.folder)
        out = check_output_folder(args.folder, args.out)
        Staging(out).discard()  # proves DIR can be written (and leaves it as it was)
        findings = curate(
            args.folder,
            args.backbone,
            threshold=args.threshold,
            batch_size=args.batch_size,
            progress=not args.quiet,
            exclude=[out],
            checks=args.checks,
            precision=precision,
            labels=args.labels,
        )
        writing = time.perf_counter()
        written = write_outputs(findings, out, export=args.export)
        writing = time.perf_counter() - writing
    except (FolderError, OutputError, ValueError) as exc:
        return _error(str(exc))
    except OSError as exc:  # a disk that fills up, a folder removed while writing
        return _error(f"could not write the results ({exc}); earlier results in --out are unchanged", 1)
    if not args.quiet:
        print(findings.summary())
        for path in written.values():
            print(f"wrote {printable_name(str(path))}")
    if args.verbose:
        steps = {"imports": imports, **findings.seconds, "write results": writing}
        peaks = {"imports": peak_after_imports, **findings.peak_mib, "write results": peak_mib()}
        total = time.perf_counter() - args.started
        print(
            f"time: {total:.2f} s in all ({findings.backbone} in {findings.precision}); "
            "peak memory: the process's highest resident memory when the step ended"
        )
        for step, seconds in steps.items():
            peak = f"  peak {peaks[step]:5.0f} MiB" if peaks.get(step) is not None else ""
            print(f"  {step:<20} {seconds:7.2f} s  {seconds / total:4.0%}{peak}")
        walls = sum(v for step, v in steps.items() if not step.endswith("(summed over threads)"))
        print(f"  {'other':<20} {total - walls:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
