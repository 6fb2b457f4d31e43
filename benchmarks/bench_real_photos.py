"""Embedding real photos: 12-megapixel JPEGs and large PNGs, decoded full size and reduced.

    python benchmarks/bench_real_photos.py [--photos 16] [--pngs 3] [--rounds 5]

The bundled images are a few hundred pixels wide, so decoding them is almost free. A
learner's own folder holds phone photos (4032x3024 JPEGs). This benchmark generates
such photos (smooth gradients, shapes and sensor-like noise, JPEG quality 90, some with
an EXIF orientation tag) in a temporary folder and measures, side by side in one run:

- full decode: ``preprocess(load_rgb(f))``, every pixel decoded, CPU ms per image on one thread;
- fast decode: ``preprocess(load_rgb(f, min_side=resize target))`` (DCT-scaled JPEG
  decoding, box reduction for other formats), CPU ms per image on one thread, and how
  much of it the decoding alone (``load_rgb``) takes;
- bare forward: the network on ready-made input tensors, images/s on all cores;
- ``embed_images`` from the files, images/s, and its ratio to the bare forward. Here the
  network's threads fill every core, so decoding and the network take turns; beside it,
  the same call with the same decoding threads made to decode ahead while the network
  runs (what it does beside a GPU). For each: the CPU time all of the process's threads
  used per image, spinning included;
- the ratio these costs allow when every core runs the forward pass and then every core
  decodes: with ``f`` the forward time per image, ``d`` the one-thread decoding cost and
  ``c`` the cores, ``f / (f + d / c)``. Costs measured apart vary, so a run can land a
  little above it.

On a shared machine, run it as ``OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_real_photos.py``:
by default torch's OpenMP threads spin while they wait for each other, and when another
process holds one of the cores the bare forward pass slows by up to 10x, which makes any
ratio meaningless.

Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import best, contention_note, describe, flag, interleaved, ratio, table
from PIL import Image

from embedkit.backbones import load_backbone
from embedkit.embeddings import embed_images, resize_target
from embedkit.images import load_rgb


def synthetic_photo(rng: np.random.Generator, width: int, height: int, noise: int = 12) -> Image.Image:
    """A photo-like RGB image: smooth colour gradients, a few shapes, per-pixel noise of +-``noise``."""
    small_w, small_h = width // 8, height // 8
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    freq = rng.uniform(1, 4, 3)
    channels = [127 + 100 * np.sin(freq[c] * x / small_w * np.pi + phase[c] + y / small_h) for c in range(3)]
    base = np.stack(channels, axis=-1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, small_w), rng.uniform(0, small_h), rng.uniform(small_h / 12, small_h / 3)
        inside = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        base[inside] = rng.uniform(0, 255, 3)
    picture = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    grain = rng.integers(-noise, noise + 1, (height, width, 1), dtype=np.int16)
    pixels = np.asarray(picture, dtype=np.int16) + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_photos(
    folder: Path, n_jpeg: int, n_png: int, noise: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """``n_jpeg`` 4032x3024 JPEGs (every third stored sideways with EXIF orientation 6) and
    ``n_png`` 4000x3000 PNGs in ``folder``, with per-pixel noise of +-``noise``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    jpegs, pngs = [], []
    for i in range(n_jpeg):
        photo, exif = synthetic_photo(rng, 4032, 3024, noise), Image.Exif()
        if i % 3 == 2:
            photo, exif[0x0112] = photo.transpose(Image.Transpose.ROTATE_90), 6
        path = folder / f"IMG_{i:04d}.jpg"
        photo.save(path, quality=90, exif=exif)
        jpegs.append(str(path))
    for i in range(n_png):
        path = folder / f"scan_{i:02d}.png"
        synthetic_photo(rng, 4000, 3000, noise).save(path, compress_level=6)
        pngs.append(str(path))
    return jpegs, pngs


def decode_ms(files: list[str], fn) -> float:
    """CPU milliseconds per image of ``fn(file)`` on one thread (best of two runs).

    CPU time rather than wall time: on a shared machine other processes' load
    lengthens the wall clock but not the work this thread does.
    """
    best = float("inf")
    for _ in range(2):
        start = time.thread_time()
        for f in files:
            fn(f)
        best = min(best, time.thread_time() - start)
    return 1e3 * best / len(files)


def cpu_counted(fn, seconds: list[float]):
    """``fn`` that appends the CPU time this process used during each call (all its threads)."""

    def run() -> None:
        start = time.process_time()
        fn()
        seconds.append(time.process_time() - start)

    return run


def measure_decoding(files: list[str], preprocess, target: int, full_sample: int | None = None):
    """One-thread CPU ms per image: full decode + preprocess, reduced decode + preprocess,
    and the reduced decode alone."""
    full = decode_ms(files[:full_sample], lambda f: preprocess(load_rgb(f)))
    fast = decode_ms(files, lambda f: preprocess(load_rgb(f, min_side=target)))
    return full, fast, decode_ms(files, lambda f: load_rgb(f, min_side=target))


def decoding_ahead(files: list[str], backbone) -> None:
    """``embed_images`` made to decode ahead while the network runs, as it does on a GPU."""
    embed_images(files, backbone, progress=False, decode_ahead=True)  # the same threads, never waiting


def load_note(cores: int) -> str:
    """The machine's load, and a warning when other work competes for its cores."""
    if not hasattr(os, "getloadavg"):
        return ""
    load = os.getloadavg()[0]
    busy = " (other processes compete for the cores: wall-clock ratios are noisy)" if load > cores else ""
    return f"load average {load:.1f} on {cores} cores{busy}"


#: Photo sets: per-pixel noise and what it stands for. JPEG decoding cost grows with the
#: file's size (entropy decoding reads every coefficient, even at 1/8 scale).
PHOTO_SETS = {"smooth": (3, "sky, indoor, ~1.3 MB"), "detailed": (12, "foliage, texture, ~3.7 MB")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16, help="12 MP JPEGs per photo set")
    parser.add_argument("--pngs", type=int, default=3, help="12 MP PNGs")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved bare/pipeline rounds")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    print(describe())
    backbone = load_backbone(device="cpu")
    target = resize_target(backbone)
    print(
        f"network: {backbone.name} (input {backbone.input_size} px, resize target {target} px, "
        f"batch size {backbone.batch_size}), {cores} cores"
    )
    print(load_note(cores), f"| OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    with tempfile.TemporaryDirectory() as tmp:
        sets, decode_rows, costs = {}, [], {}
        for name, (noise, meaning) in PHOTO_SETS.items():
            jpegs, _ = make_photos(Path(tmp) / name, args.photos, 0, noise)
            sets[name] = jpegs
            megabytes = np.mean([os.path.getsize(f) for f in jpegs]) / 1e6
            full, fast, decode_only = measure_decoding(jpegs, backbone.preprocess, target, full_sample=6)
            costs[name] = (full, fast)
            decode_rows.append(
                (
                    f"12 MP JPEG, {name} ({meaning})",
                    f"{megabytes:.1f}",
                    f"{full:.1f}",
                    f"{fast:.1f}",
                    f"{decode_only:.1f}",
                    f"{full / fast:.1f}x",
                )
            )
        _, pngs = make_photos(Path(tmp) / "png", 0, args.pngs, 6)
        if pngs:
            full, fast, decode_only = measure_decoding(pngs, backbone.preprocess, target)
            megabytes = np.mean([os.path.getsize(f) for f in pngs]) / 1e6
            decode_rows.append(
                (
                    "12 MP PNG",
                    f"{megabytes:.1f}",
                    f"{full:.1f}",
                    f"{fast:.1f}",
                    f"{decode_only:.1f}",
                    f"{full / fast:.1f}x",
                )
            )

        first = sets["smooth"]
        tensors = torch.stack([backbone.preprocess(load_rgb(f, min_side=target)) for f in first])
        batches = [backbone.as_input(b) for b in tensors.split(backbone.batch_size)]

        def bare() -> None:
            with torch.inference_mode():
                for b in batches:
                    backbone.model(b)

        # interleaved (bare, smooth, detailed, bare, ...), so a neighbour's load hits all alike;
        # ratios come from rounds in which nobody else used the cores, or are flagged
        sides = {"bare": bare}
        for name, files in sets.items():
            sides[name] = lambda files=files: embed_images(files, backbone, progress=False)
            sides[f"{name}, ahead"] = lambda files=files: decoding_ahead(files, backbone)
        cpu_s: dict[str, list[float]] = {side: [] for side in sides}
        runs = interleaved(
            {side: cpu_counted(fn, cpu_s[side]) for side, fn in sides.items()}, repeats=args.rounds, warmup=1
        )
    print(load_note(cores))

    n = args.photos
    bare_s, bare_contended = best(runs["bare"])
    forward_ms = 1e3 * bare_s / n
    print(
        table(
            decode_rows,
            (
                "decode + preprocess, one thread",
                "MB/file",
                "full CPU ms/img",
                "fast CPU ms/img",
                "of which decoding",
                "speed-up",
            ),
        )
    )
    print()

    def core_ms(side: str) -> str:  # least CPU time of any run, all threads together, per image
        return f"{1e3 * min(cpu_s[side]) / n:.1f}"

    bare_rate = flag(f"{n / bare_s:.1f}", bare_contended)
    rows = [("bare forward (ready tensors)", bare_rate, "1.00", core_ms("bare"), "", "")]
    for name in sets:
        full, fast = costs[name]
        limit_fast = forward_ms / (forward_ms + fast / cores)
        limit_full = forward_ms / (forward_ms + full / cores)
        for side, how in ((name, "in turns"), (f"{name}, ahead", "decoding ahead")):
            pipe_s, pipe_contended = best(runs[side])
            relative, relative_contended = ratio(runs["bare"], runs[side])  # = pipeline rate / bare rate
            rows.append(
                (
                    f"embed_images, {name} 12 MP JPEGs, {how}",
                    flag(f"{n / pipe_s:.1f}", pipe_contended),
                    flag(f"{relative:.2f}", relative_contended),
                    core_ms(side),
                    f"{limit_fast:.2f}",
                    f"{limit_full:.2f}",
                )
            )
    print(
        table(
            rows,
            (
                "path",
                "images/s",
                "x bare forward",
                "CPU core-ms/img",
                "limit (reduced decoding)",
                "limit (full decoding)",
            ),
        )
    )
    print(contention_note(runs))
    fast = costs["detailed"][1]
    print(
        f"\nforward {forward_ms:.1f} ms/img on {cores} cores. Limit = f / (f + d/c) with f the forward "
        "time per image, d the one-thread decoding cost, c the cores: the rate when every core runs the "
        "forward pass, then every core decodes. CPU core-ms/img: all of this process's threads, spinning "
        "included; the parts alone cost the bare forward's plus the fast decode's."
    )
    print(
        f"More cores: decoding spreads over them (d/c shrinks) while the forward pass gains less, so "
        f"the limit rises towards 1. A GPU makes the forward pass nearly free and decoding on the "
        f"CPU sets the rate: about {1e3 / costs['smooth'][1]:.0f} (smooth) to {1e3 / fast:.0f} (detailed) "
        f"images/s per core with reduced decoding, {1e3 / costs['detailed'][0]:.0f} decoding every pixel."
    )


if __name__ == "__main__":
    main()
