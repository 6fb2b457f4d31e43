"""The whole ``python -m embedkit curate`` on a folder of about 1,000 photos and edited copies.

    python benchmarks/bench_curate.py [--per-file 4] [--repeats 2] [--big 6] [--fastdup-python PATH]

The folder: the bundled images (their ``train/`` and ``test/`` splits) and ``per_file``
edited copies of each (:func:`embedkit.variants.make_variants`: crops, flips, brightness,
watermarks, re-encodings), each copy in its source's split. Each side is a fresh process
run under ``/usr/bin/time`` (wall time and peak resident memory, the way a user meets them),
the sides taking turns repeat by repeat, with other processes' CPU use recorded:

- ``curate --precision float32`` and ``curate --precision auto`` (bfloat16 where the CPU
  has it natively and the network's measured fidelity allows it), each with ``--verbose``:
  the split of the time by step (start-up and imports, hashing and decoding, the forward
  pass, pair search, the report with its thumbnails, ...);
- fastdup (``fastdup.create(...).run()`` at its defaults), when ``--fastdup-python`` names
  a Python that has it installed (it is not one of the course's requirements).

It prints the time and memory ratios and what the two precisions found differently.

First, what one file costs to decode, on one thread (CPU time, so others' load lengthens it
less than the wall clock), on the bundled images and on ``--big`` 12-megapixel JPEGs made
from bundled photos enlarged (smooth, so they decode faster than real photos of that size):

- ``embed_images``' input: the reduced decode (DCT scaling) and the network's preprocessing;
- a full decode, and a full decode with the pixel hash;
- before one decode: the full decode with its hash, then ``embed_images``' reduced decode;
- ``curate``'s one decode: the full decode, its hash, and the network's input box-reduced
  from the same pixels (:func:`~embedkit.images.load_rgb_and_reduced`);
- the naive one decode: the network's preprocessing run on the full-size picture.

Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import (
    Repeat,
    best,
    contention_note,
    cpu_sample,
    describe,
    flag,
    interleaved,
    others_cores,
    ratio,
    table,
    timed,
)
from PIL import Image

from embedkit.dataset import load_manifest
from embedkit.variants import make_variants

REPO = Path(__file__).resolve().parents[1]
FASTDUP = """
import sys, fastdup
fd = fastdup.create(work_dir=sys.argv[2], input_dir=sys.argv[1])
fd.run(overwrite=True, verbose=False)
print("fastdup similarity pairs:", len(fd.similarity()))
"""


def make_folder(root: Path, per_file: int) -> int:
    """The bundled images and ``per_file`` edited copies of each, under their splits; file count."""
    manifest = load_manifest()
    for row in manifest.itertuples():
        target = root / row.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(row.file, target)
    scratch = root.parent / "variants"
    variants = make_variants(manifest, scratch, per_file=per_file, seed=0)
    for row in variants.itertuples():
        target = root / row.split / "edited" / row.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(row.file, target)
    shutil.rmtree(scratch)
    return sum(1 for p in root.rglob("*") if p.is_file())


def make_big_jpegs(folder: Path, count: int) -> list[str]:
    """``count`` 4032x3024 JPEGs (quality 90): bundled photos enlarged to 12 megapixels."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = load_manifest().query("transformation == 'original'")["file"].tolist()[:count]
    made = []
    for i, source in enumerate(sources):
        with Image.open(source) as photo:
            big = photo.convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC)
        big.save(folder / f"big_{i:02d}.jpg", quality=90)
        made.append(str(folder / f"big_{i:02d}.jpg"))
    return made


def thread_timed(fn) -> Repeat:
    """Run ``fn`` once; the CPU time this thread used, and others' CPU use meanwhile."""
    before = cpu_sample()
    start = time.thread_time()
    fn()
    return Repeat(time.thread_time() - start, others_cores(before, cpu_sample()))


def decoding_costs(files: dict[str, list[str]], repeats: int) -> None:
    """One-thread CPU ms per file of each way to decode it, and the ratios, per set of files."""
    import torch

    from embedkit.backbones import load_backbone
    from embedkit.curate import _DecodeOnce
    from embedkit.duplicates import pixel_hash
    from embedkit.embeddings import ModelInput, resize_target
    from embedkit.images import load_rgb

    torch.set_num_threads(1)  # the preprocessing's tensor operations stay on this thread
    net = load_backbone(device="cpu")
    reduced = ModelInput(net.preprocess, resize_target(net))
    once = _DecodeOnce(net.preprocess, resize_target(net), measure=False)
    ways = {
        "embed_images' input (reduced decode)": reduced,
        "reduced decode alone": lambda f: load_rgb(f, min_side=resize_target(net)),
        "full decode": load_rgb,
        "full decode + pixel hash": lambda f: pixel_hash(load_rgb(f)),
        "before: full decode + hash, then reduced decode": lambda f: (pixel_hash(load_rgb(f)), reduced(f)),
        "one decode: full + hash + input reduced from it": once,
        "naive one decode: input from the full-size picture": lambda f: (
            pixel_hash(picture := load_rgb(f)),
            net.preprocess(picture),
        ),
    }
    before = "before: full decode + hash, then reduced decode"
    print(f"\ndecoding, one thread, CPU ms per file ({net.name}, short side kept {resize_target(net)} px):")
    for label, paths in files.items():

        def every(way, paths=paths):
            return lambda: [way(f) for f in paths]

        runs = interleaved(
            {k: every(way) for k, way in ways.items()}, repeats=repeats, warmup=1, timer=thread_timed
        )
        print(f"{label} ({len(paths)} files): {contention_note(runs)}")
        rows = []
        for name in ways:
            seconds, contended = best(runs[name])
            to_before, c = ratio(runs[name], runs[before])
            rows.append(
                (name, flag(f"{1e3 * seconds / len(paths):.1f}", contended), flag(f"{to_before:.2f}", c))
            )
        print(table(rows, ("way", "ms per file", "time / before")))
        full, c = ratio(runs["full decode"], runs["reduced decode alone"])
        once, c_once = ratio(runs["one decode: full + hash + input reduced from it"], runs[before])
        print(
            f"full decode / reduced decode: {flag(f'{full:.2f}', c)}; "
            f"one decode / before: {flag(f'{once:.2f}', c_once)}"
        )


class Side:
    """One command, run in a fresh process under ``/usr/bin/time``; keeps each run's output."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.command = command
        self.env = env
        self.outputs: list[str] = []
        self.peaks_mib: list[float] = []

    def __call__(self) -> None:
        done = subprocess.run(
            ["/usr/bin/time", "-f", "peak-kib %M", *self.command],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(self.command)} failed:\n{done.stdout}\n{done.stderr}")
        peak = re.findall(r"peak-kib (\d+)", done.stderr)
        self.peaks_mib.append(int(peak[-1]) / 1024)
        self.outputs.append(done.stdout)


def steps(output: str) -> dict[str, float]:
    """The ``--verbose`` split: step -> seconds."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"\s{2}(\S.*?)\s+([\d.]+) s", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def compare(a: Path, b: Path) -> list[str]:
    """What two findings.json files found differently."""
    one = json.loads(a.read_text(encoding="utf-8"))
    two = json.loads(b.read_text(encoding="utf-8"))
    lines = []
    for key in ("exact_groups", "near_groups", "leaks", "keep", "unreadable"):
        x = {json.dumps(v, sort_keys=True) for v in one[key]}
        y = {json.dumps(v, sort_keys=True) for v in two[key]}
        lines.append(
            f"{key}: {len(one[key])} vs {len(two[key])}, {len(x - y)} only in float32, "
            f"{len(y - x)} only in the other"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-file", type=int, default=4, help="edited copies per bundled image")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fastdup-python", default=None, help="a Python with fastdup installed")
    parser.add_argument("--big", type=int, default=6, help="12-megapixel JPEGs for the decoding costs")
    parser.add_argument("--decoding-only", action="store_true", help="measure the decoding costs only")
    parser.add_argument("--backbone", default=None, help="network (default: the course's default)")
    parser.add_argument(
        "--fast",
        default="auto",
        choices=("auto", "bfloat16", "float16"),
        help="the precision compared with float32",
    )
    args = parser.parse_args()

    print(describe())
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="bench_curate_"))
    bundled = [str(f) for f in load_manifest()["file"]]
    big = make_big_jpegs(work / "big", args.big)
    sets = {"bundled images": bundled, "12 MP JPEGs": big}
    decoding_costs({name: files for name, files in sets.items() if files}, max(2, args.repeats))
    if args.decoding_only:
        shutil.rmtree(work, ignore_errors=True)
        return
    folder = work / "photos"
    n = make_folder(folder, args.per_file)
    print(f"folder: {n} files ({args.per_file} edited copies of each bundled image)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "notebooks")}
    env.pop("EMBEDKIT_PRECISION", None)
    backbone = ["--backbone", args.backbone] if args.backbone else []
    sides: dict[str, Side] = {}
    for precision in ("float32", args.fast):
        command = [
            sys.executable,
            "-m",
            "embedkit",
            "curate",
            str(folder),
            "--out",
            str(work / f"out_{precision}"),
            "--precision",
            precision,
            "--verbose",
            *backbone,
        ]
        sides[f"curate {precision}"] = Side(command, env)
    # The tool lets OpenMP's waiting threads sleep (OMP_WAIT_POLICY=PASSIVE); OpenMP's own default spins
    # first (libgomp's GOMP_SPINCOUNT, 300,000), which other programs on the same cores turn into stalls.
    fast_side = sides[f"curate {args.fast}"]
    spin_out = str(work / "out_spinning")
    sides[f"curate {args.fast}, spinning"] = Side(
        [spin_out if x == str(work / f"out_{args.fast}") else x for x in fast_side.command],
        {**fast_side.env, "GOMP_SPINCOUNT": "300000"},
    )
    if args.fastdup_python:
        script = work / "fastdup_run.py"
        script.write_text(FASTDUP)
        sides["fastdup"] = Side(
            [args.fastdup_python, str(script), str(folder), str(work / "fastdup")], {**os.environ}
        )
    fast = f"curate {args.fast}"
    runs: dict[str, list[Repeat]] = interleaved(sides, repeats=args.repeats, warmup=0, timer=timed)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(contention_note(runs))

    rows = []
    for name, side in sides.items():
        seconds, contended = best(runs[name])
        each = ", ".join(f"{r.seconds:.1f}" for r in runs[name])
        rows.append(
            (
                name,
                flag(f"{seconds:.1f}", contended),
                each,
                f"{max(side.peaks_mib):.0f}",
                flag(f"{ratio(runs['curate float32'], runs[name])[0]:.2f}", contended),
            )
        )
    print(table(rows, ("side", "best wall s", "each run", "peak MiB", "speed x float32")))
    if "fastdup" in sides:
        t, c = ratio(runs["fastdup"], runs[fast])
        memory = max(sides[fast].peaks_mib) / max(sides["fastdup"].peaks_mib)
        print(f"{fast} / fastdup: {flag(f'{1 / t:.2f}', c)}x its time, {memory:.2f}x its peak memory")

    print("\nwhere the time goes (the fastest run of each):")
    split_rows = []
    fastest = {
        name: min(range(len(runs[name])), key=lambda i: runs[name][i].seconds)
        for name in ("curate float32", fast)
    }
    split = {name: steps(sides[name].outputs[i]) for name, i in fastest.items()}
    for step in split["curate float32"]:
        a, b = split["curate float32"].get(step, 0.0), split[fast].get(step, 0.0)
        split_rows.append((step, f"{a:.2f}", f"{b:.2f}"))
    print(table(split_rows, ("step", "float32 s", f"{args.fast} s")))
    for name, i in fastest.items():
        print(name + ": " + next(x for x in sides[name].outputs[i].splitlines() if x.startswith("time:")))
    print(f"\nfindings, float32 against {args.fast}:")
    for line in compare(work / "out_float32" / "findings.json", work / f"out_{args.fast}" / "findings.json"):
        print("  " + line)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
