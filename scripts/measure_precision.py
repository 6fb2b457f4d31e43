"""Measure how far each network's bfloat16 embeddings are from its float32 ones.

``notebooks/embedkit/precision.json`` holds, per network, what this script measures on the
bundled images, and the limits ``embed_images(precision="auto")`` applies
(``embedkit.embeddings.resolve_precision``): a network runs in bfloat16 only where the
hardware has it natively *and* its entry is within both limits:

- ``min_cosine``: the lowest cosine between an image's bfloat16 and float32 embedding;
- ``changed_share``: near-duplicate decisions that change (pairs on one side of the
  network's threshold in float32 and on the other in bfloat16), per pair found in float32.

bfloat16 is run the way ``embed_images`` runs it on a CPU (a bfloat16 copy of the
weights, bfloat16 activations); on a CPU without native bfloat16 that is emulated, slower,
and gives the same numbers up to rounding. Networks whose genuine weights cannot be loaded
here (the ResNets, unless their checkpoint is cached) keep no entry and stay in float32:
random weights say nothing about fidelity.

Usage::

    python scripts/measure_precision.py            # measure and write precision.json
    python scripts/measure_precision.py --check    # exit 1 if a stored entry is outside 0.002 of a new one
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedkit.backbones import NETWORKS, load_backbone, weights_cache_path
from embedkit.dataset import load_manifest, manifest_fingerprint
from embedkit.embeddings import forward_batch
from embedkit.images import load_rgb

PRECISION_FILE = Path(__file__).resolve().parents[1] / "notebooks" / "embedkit" / "precision.json"
#: What ``"auto"`` requires of a network before running it in bfloat16.
LIMITS = {"min_cosine": 0.98, "changed_share": 0.01}
NOTE = (
    "bfloat16 (weights and activations) against float32 on every bundled image; a network runs in "
    "bfloat16 under precision='auto' only where the hardware has it natively and min_cosine >= "
    "limits.min_cosine and pairs_changed / pairs_float32 <= limits.changed_share; the thresholds "
    "were calibrated in float32. Recomputed by scripts/measure_precision.py"
)


def measurable() -> list[str]:
    """Networks with genuine weights on this machine: shipped in a package, or a cached checkpoint."""
    return [name for name, net in NETWORKS.items() if net.offline or weights_cache_path(name).exists()]


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def measure(name: str, batch_size: int = 8) -> dict[str, Any]:
    """The precision.json entry of ``name``: both embeddings of every bundled image compared."""
    manifest = load_manifest()
    backbone = load_backbone(name, device="cpu", allow_download=False)
    if backbone.name != name:
        raise RuntimeError(f"{name}'s weights are not on this machine")
    tensors = torch.stack([backbone.preprocess(load_rgb(f)) for f in manifest["file"]])
    fp32 = np.concatenate([forward_batch(backbone, b, "float32") for b in tensors.split(batch_size)])
    bf16 = np.concatenate([forward_batch(backbone, b, "bfloat16") for b in tensors.split(batch_size)])
    a, b = _unit(fp32.astype(np.float64)), _unit(bf16.astype(np.float64))
    cosine = (a * b).sum(1)
    threshold = backbone.near_duplicate_threshold
    upper = np.triu_indices(len(a), 1)
    near32 = (a @ a.T)[upper] >= threshold
    near16 = (b @ b.T)[upper] >= threshold
    return {
        "images": len(a),
        "min_cosine": round(float(cosine.min()), 4),
        "mean_cosine": round(float(cosine.mean()), 5),
        "threshold": threshold,
        "pairs_float32": int(near32.sum()),
        "pairs_bfloat16": int(near16.sum()),
        "pairs_changed": int((near32 != near16).sum()),
        "pairs_total": len(near32),
        "data": {"manifest_sha256": manifest_fingerprint(manifest)[:16]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--file", type=Path, default=PRECISION_FILE)
    parser.add_argument("--networks", nargs="*", default=None, help="networks to measure (default: all here)")
    args = parser.parse_args(argv)
    names = measurable() if args.networks is None else args.networks
    stored = json.loads(args.file.read_text(encoding="utf-8")) if args.file.exists() else {}
    measured = {name: measure(name) for name in names}
    if args.check:
        old = {name: stored.get("networks", {}).get(name, {}).get("min_cosine", -9.0) for name in measured}
        problems = [
            f"{name}: stored min_cosine {old[name]}, measured {entry['min_cosine']}"
            for name, entry in measured.items()
            if abs(old[name] - entry["min_cosine"]) > 0.002
        ]
        print("\n".join(problems) or f"{args.file.name}: every stored entry matches ({', '.join(names)})")
        return 1 if problems else 0
    networks = {**stored.get("networks", {}), **measured}
    result = {"note": NOTE, "limits": LIMITS, "networks": dict(sorted(networks.items()))}
    args.file.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, entry in measured.items():
        share = entry["pairs_changed"] / max(1, entry["pairs_float32"])
        print(
            f"{name}: min cosine {entry['min_cosine']}, {entry['pairs_changed']} of "
            f"{entry['pairs_float32']} pairs changed ({share:.2%})"
        )
    print(f"wrote {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
