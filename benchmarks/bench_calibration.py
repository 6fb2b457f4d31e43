"""What calibrating a threshold on a folder costs, in images embedded.

    python benchmarks/bench_calibration.py [--sizes 1000 10000] [--reference 300] [--repeats 1]
                                           [--sample 150] [--network efficientnet_lite0]

``calibrate_threshold`` samples ``--sample`` photos, plants nine edited copies of each,
embeds them (and the originals) and applies the threshold rule with cross-validation. Its
cost should depend on the sample, not on the folder: beyond listing the folder's files,
a 10,000-image folder costs what a 1,000-image one does. The bar: calibrating a
10,000-image folder costs at most about as much as embedding 2,000 images.

Folders of ``--sizes`` files are made once (in ``--workdir``) from random crops of the
photos that ship with scikit-image and scikit-learn: 320 px JPEGs, all different (some
overlap, as photos of one scene do). In one run, alternating repeat by repeat,
``embed_images`` on ``--reference`` files of the folder and ``calibrate_threshold`` on
each folder are timed; embedding time grows linearly with the number of images (it runs
in fixed-size batches), so

- *images-equivalent* = calibration time / (embedding time per image): how many images
  embedding would take as long as the calibration did;
- *ratio to 2,000* = images-equivalent / 2,000: at most about 1 meets the bar.

Calibration is timed standalone (it embeds the sampled originals too); inside ``curate``
the folder's vectors are passed in and the originals are not embedded again. Repeats
during which other programs took CPU are flagged (!) (see ``machine.py``). Nothing here
is a pass/fail test.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from machine import best, contention_note, describe, flag, interleaved, ratio, table
from PIL import Image

from embedkit.backbones import load_backbone
from embedkit.calibration import DEFAULT_SAMPLE, calibrate_threshold
from embedkit.embeddings import embed_images
from embedkit.images import expand_paths

#: The bar: calibration on a 10,000-image folder costs at most about embedding this many.
BAR_IMAGES = 2_000
SIDE = 320


def source_photos() -> list[np.ndarray]:
    """The larger photos that ship with scikit-image and scikit-learn, as RGB arrays."""
    import skimage.data
    from sklearn.datasets import load_sample_image

    photos = [getattr(skimage.data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")]
    photos += [load_sample_image(name) for name in ("china.jpg", "flower.jpg")]
    return [p if p.ndim == 3 else np.stack([p] * 3, axis=-1) for p in photos]


def make_folder(dest: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` JPEGs of random crops (10-45 % of a photo's side), mirrored at random; reused if present."""
    if dest.is_dir() and len(expand_paths(dest)) == n:
        return expand_paths(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = source_photos()
    for k in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.10, 0.45))
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crop = crop.resize((SIDE, SIDE), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop.save(dest / f"{k:05d}.jpg", quality=90)
    return expand_paths(dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000], help="folder sizes")
    parser.add_argument("--reference", type=int, default=300, help="images embedded for the per-image time")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="photos calibration samples")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--network", default=None, help="default: EMBEDKIT_BACKBONE or the stand-in")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "embedkit-bench-calibration"
    )
    args = parser.parse_args()
    print(describe())

    folders = {n: make_folder(args.workdir / f"folder-{n}", n) for n in args.sizes}
    backbone = load_backbone(args.network, device="cpu", allow_download=False)
    reference = folders[min(args.sizes)][: args.reference]
    embed_images(reference[:16], backbone, progress=False)  # first-call costs out of the timings
    results = {}

    def calibrate(n: int):
        def run():
            results[n] = calibrate_threshold(folders[n], backbone, sample=args.sample)

        return run

    fns = {"embed": lambda: embed_images(reference, backbone, progress=False)}
    fns.update({f"calibrate {n}": calibrate(n) for n in args.sizes})
    runs = interleaved(fns, repeats=args.repeats, warmup=0)
    print(f"{backbone.name}, sample {args.sample}; {contention_note(runs)}\n")

    per_image, per_image_contended = best(runs["embed"])
    per_image /= len(reference)
    rows = []
    for n in args.sizes:
        seconds, contended = best(runs[f"calibrate {n}"])
        times_embed, ratio_contended = ratio(runs[f"calibrate {n}"], runs["embed"])
        equivalent = times_embed * len(reference)
        r = results[n]
        rows.append(
            (
                n,
                f"{r.n_photos} (+{r.n_guarded} guarded)",
                f"{r.threshold:.2f}",
                flag(f"{seconds:.1f}", contended),
                flag(f"{equivalent:.0f}", ratio_contended),
                flag(f"{equivalent / BAR_IMAGES:.2f}", ratio_contended),
            )
        )
    print(
        f"embedding: {flag(f'{per_image * 1000:.1f}', per_image_contended)} ms per image "
        f"({len(reference)} images)"
    )
    print(
        table(
            rows,
            (
                "folder files",
                "photos used",
                "threshold",
                "calibration s",
                "images-equivalent",
                f"ratio to {BAR_IMAGES:,}",
            ),
        )
    )


if __name__ == "__main__":
    main()
