"""What the image-quality, outlier and label checks add to a ``curate`` run.

    python benchmarks/bench_quality_cost.py [--folder data] [--photos 0] [--repeats 2]

Runs :func:`embedkit.curate.curate` on the same folder with every check (``checks="all"``)
and with none (``checks="none"``), alternately, with one backbone loaded once, and prints

- the ratio of the two runs' wall times (the share the checks add is ``1 - none/all``);
- from the runs with the checks, the share of their time spent in the checks' own steps:
  the image measures (seconds summed over the decoding threads, so an upper bound on the
  wall time they add) and the outlier and label checks.

``--photos N`` also writes N 12-megapixel JPEGs (the bundled originals enlarged) into a
temporary folder and measures it too: there the measures resize each picture to 224 px first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from machine import REPO, contention_note, describe, flag, interleaved, ratio, table

from embedkit.backbones import load_backbone
from embedkit.curate import curate


def _large_photos(dest: Path, n: int) -> Path:
    from embedkit.images import load_rgb

    originals = sorted((REPO / "data").glob("*/*_original.*"))
    for k in range(n):
        image = load_rgb(originals[k % len(originals)]).resize((4000, 3000))
        image.save(dest / f"photo{k:03d}.jpg", quality=90)
    return dest


def measure(folder: Path, net, repeats: int) -> tuple[list, dict]:
    seen: list[dict] = []

    def run(checks):
        def go():
            findings = curate(folder, net, checks=checks, progress=False)
            if checks == "all":
                seen.append(findings.seconds)

        return go

    runs = interleaved({"all": run("all"), "none": run("none")}, repeats=repeats, warmup=0)
    value, contended = ratio(runs["all"], runs["none"])
    shares = {
        key: statistics.median(s[key] / sum(v for k, v in s.items() if "summed" not in k) for s in seen)
        for key in ("image measures (summed over threads)", "quality checks")
    }
    row = [
        str(folder.name or folder),
        flag(f"{value:.3f}", contended),
        flag(f"{1 - 1 / value:+.3f}", contended),
        f"{shares['image measures (summed over threads)']:.3f}",
        f"{shares['quality checks']:.4f}",
    ]
    return [row], runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=REPO / "data")
    parser.add_argument("--photos", type=int, default=0, help="also measure N 12 MP JPEGs")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print(describe())
    net = load_backbone()
    rows, runs = measure(args.folder, net, args.repeats)
    if args.photos:
        with tempfile.TemporaryDirectory() as tmp:
            more, more_runs = measure(_large_photos(Path(tmp), args.photos), net, args.repeats)
            rows += more
            runs = {**{f"{k} ({args.folder.name})": v for k, v in runs.items()}, **more_runs}
    header = ("folder", "all / none", "share added", "image measures / run", "outlier+label / run")
    print(table(rows, header))
    print(contention_note(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
