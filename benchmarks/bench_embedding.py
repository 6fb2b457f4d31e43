"""Embedding throughput: the whole pipeline against the bare forward pass, side by side.

    python benchmarks/bench_embedding.py [--images 128] [--batch-size 32] [--arch resnet18 standin]

For each network it measures, in one run on the same images and batch size:

- bare forward: the headless model on ready-made input tensors (the ceiling for the pipeline);
- pipeline: ``embed_images`` from file paths (decode, preprocess, forward);
- naive loop: one image at a time, decoded and preprocessed in the loop (what most tutorials do);
- the forward pass's achieved GFLOP/s against this machine's float32 GEMM GFLOP/s;
- what CPU tricks do to the forward pass: channels-last memory format, ``torch.jit.freeze``
  (oneDNN fusion), ``torch.compile``, and the number of threads.

Timings use random ResNet weights where the ResNet checkpoint is not cached: the time a
network takes does not depend on the values of its weights. The stand-in always has its
real weights. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import torch
from machine import best_time, describe, gemm_gflops, table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from embedkit.backbones import Backbone, load_backbone, weights_cache_path
from embedkit.dataset import load_manifest
from embedkit.embeddings import default_batch_size, embed_images
from embedkit.images import load_rgb


def resnet18_backbone() -> Backbone:
    """ResNet-18 as the course uses it; random weights if the checkpoint is not cached (timing only)."""
    from torchvision.models import ResNet18_Weights, resnet18

    if weights_cache_path("resnet18").exists():
        return load_backbone("resnet18", device="cpu", allow_download=False)
    net = resnet18(weights=None).eval()
    headless = copy.deepcopy(net)
    headless.fc = nn.Identity()
    return Backbone(
        headless.eval().to(memory_format=torch.channels_last),
        net.to(memory_format=torch.channels_last), ResNet18_Weights.IMAGENET1K_V1.transforms(), 512,
        "resnet18 (random weights, timing only)", "resnet18", [], False, 0.0, "none",
        memory_format=torch.channels_last,
    )


def flops_per_image(model: nn.Module) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.randn(1, 3, 224, 224))
    return counter.get_total_flops()


def forward_rate(model: nn.Module, batches: list[torch.Tensor], repeats: int = 3) -> float:
    """Images per second of ``model`` over ready-made batches."""
    n = sum(len(b) for b in batches)

    def run():
        with torch.inference_mode():
            for b in batches:
                model(b)

    return n / best_time(run, repeats=repeats)


def naive_rate(backbone: Backbone, files: list[str]) -> float:
    """One image at a time, the tutorial way: open, convert, preprocess, forward under no_grad."""
    from PIL import Image

    def run():
        for f in files:
            with Image.open(f) as image:
                x = backbone.preprocess(image.convert("RGB")).unsqueeze(0)
            with torch.no_grad():
                backbone.model(x)

    return len(files) / best_time(run, repeats=1)


def forward_variants(model: nn.Module, batches: list[torch.Tensor]) -> list[tuple[str, float]]:
    """Forward-pass throughput of CPU optimisations, each measured beside the plain model."""
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    nchw = [b.contiguous() for b in batches]
    results = [("plain (contiguous NCHW)", forward_rate(plain, nchw))]
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    cl_batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
    results.append(("channels-last (embedkit's default)", forward_rate(cl_model, cl_batches)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.compile
        with torch.inference_mode():
            frozen = torch.jit.freeze(torch.jit.trace(cl_model, cl_batches[0][:1]))
            frozen(cl_batches[0])
    results.append(("channels-last + jit.trace/freeze (oneDNN fusion)", forward_rate(frozen, cl_batches)))
    try:
        compiled = torch.compile(cl_model)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(cl_batches[0])  # compile outside the timing
        compile_s = time.perf_counter() - start
        rate = forward_rate(compiled, cl_batches)
        results.append((f"channels-last + torch.compile (compiling took {compile_s:.0f} s)", rate))
    except Exception as exc:  # noqa: BLE001 - report, do not fail: needs a C++ compiler
        results.append((f"torch.compile failed: {type(exc).__name__}", float("nan")))
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
        results.append(("channels-last, 1 thread", forward_rate(cl_model, cl_batches)))
        torch.set_num_threads(threads)
    return results


def batch_size_sweep(model: nn.Module, tensors: torch.Tensor, sizes=(1, 4, 8, 16, 32, 64)) -> list[tuple]:
    """Forward throughput by batch size: on a CPU, smaller batches can stay in cache."""
    rows = []
    for size in sizes:
        rows.append((size, f"{forward_rate(model, list(tensors.split(size)), repeats=2):.1f}"))
    return rows


def bench(
    backbone: Backbone, files: list[str], batch_size: int | None, ceiling: float, variants: bool
) -> None:
    batch_size = batch_size or default_batch_size(backbone.device)
    print(f"## {backbone.name} (batch size {batch_size})")
    tensors = backbone.as_input(torch.stack([backbone.preprocess(load_rgb(f)) for f in files]))
    batches = list(tensors.split(batch_size))
    model = backbone.model
    flops = flops_per_image(model)

    def pipeline() -> None:
        embed_images(files, backbone, batch_size=batch_size, progress=False)

    # Side by side, alternating, so drifting machine load hits both alike.
    bare_1 = forward_rate(model, batches)
    pipe_1 = len(files) / best_time(pipeline, repeats=2)
    bare_2 = forward_rate(model, batches)
    pipe_2 = len(files) / best_time(pipeline, repeats=2)
    bare, pipe = max(bare_1, bare_2), max(pipe_1, pipe_2)
    naive = naive_rate(backbone, files[: max(16, len(files) // 4)])
    decode_s = best_time(lambda: [backbone.preprocess(load_rgb(f)) for f in files], repeats=2) / len(files)
    achieved = flops * bare / 1e9
    rows = [
        ("bare forward (ready tensors)", f"{bare:.1f}", "1.00"),
        ("embed_images pipeline (from files)", f"{pipe:.1f}", f"{pipe / bare:.2f}"),
        ("naive one-at-a-time loop", f"{naive:.1f}", f"{naive / bare:.2f}"),
    ]
    print(table(rows, ("path", "images/s", "x bare forward")))
    print(f"pipeline vs naive loop: {pipe / naive:.2f}x")
    forward_s = 1 / bare
    print(f"decode + preprocess: {decode_s * 1e3:.2f} ms per image on one thread, "
          f"{decode_s / forward_s:.0%} of the forward pass's {forward_s * 1e3:.1f} ms on all cores; "
          f"if no core is idle during the forward, the pipeline can reach at most "
          f"{forward_s / (forward_s + decode_s):.2f}x the bare forward")
    print(f"forward: {flops / 1e9:.2f} GFLOP per image -> {achieved:.1f} GFLOP/s achieved, "
          f"{achieved / ceiling:.2f} of the float32 GEMM ceiling ({ceiling:.1f} GFLOP/s)")
    if variants:
        base = None
        rows = []
        for name, rate in forward_variants(model, batches):
            base = base or rate
            rows.append((name, f"{rate:.1f}", f"{rate / base:.2f}"))
        print(table(rows, ("forward pass variant", "images/s", "x plain")))
        print(table(batch_size_sweep(model, tensors), ("batch size", "images/s (channels-last)")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: embed_images' own default for the CPU")
    parser.add_argument("--arch", nargs="+", default=["resnet18", "standin"], choices=["resnet18", "standin"])
    parser.add_argument("--no-variants", action="store_true", help="skip the forward-pass variants")
    args = parser.parse_args()

    print(describe())
    files = load_manifest()["file"].tolist()[: args.images]
    for arch in args.arch:
        backbone = resnet18_backbone() if arch == "resnet18" else load_backbone(device="cpu")
        ceiling = gemm_gflops()  # measured next to each network's runs: this machine's speed drifts
        print(f"\nfloat32 GEMM (2048x2048, torch, best of 15): {ceiling:.1f} GFLOP/s")
        bench(backbone, files, args.batch_size, ceiling, not args.no_variants)


if __name__ == "__main__":
    main()
