"""Recompute every stored near-duplicate threshold from the package's rule.

``notebooks/embedkit/thresholds.json`` holds one entry per network; ``load_backbone``
reads it (``embedkit.backbones.calibration``). For every network whose weights ship in
a package (``Network.offline``), this script embeds the bundled images, applies
``embedkit.evaluation.choose_threshold`` to every pair of them against the manifest's
groups, and cross-validates the rule on held-out photo groups
(``cross_validate_threshold``). The entry it writes holds

- ``threshold``: the rule applied to all the bundled data (every photo group), the
  value ``load_backbone`` uses;
- ``in_sample``: that threshold's pair and grouping scores on the data it was chosen
  on (optimistic);
- ``held_out``: the rule chosen on 3/4 of the photo groups and scored on the other 1/4,
  4 folds repeated 5 times: spread of the thresholds, held-out precision and recall,
  and how often held-out photos got merged (``summarise_cross_validation``);
- ``pair_optimal_threshold``: what the rule would pick if found groups could merge
  photos (the grouping criterion's effect);
- ``rule`` and ``data``: the settings and the data it was measured with.

Networks whose weights cannot be loaded where the course is built (the ResNets) keep
their entries, documented defaults with ``"measured": false``.

Usage::

    python scripts/calibrate_thresholds.py          # measure and write thresholds.json
    python scripts/calibrate_thresholds.py --check  # exit 1 if a stored value differs from the rule
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from embedkit.backbones import NETWORKS, load_backbone
from embedkit.dataset import bundled_embeddings, load_manifest, manifest_fingerprint
from embedkit.evaluation import (
    COSINE_GRID,
    MAX_MERGES,
    MIN_PRECISION,
    choose_threshold,
    cross_validate_threshold,
    summarise_cross_validation,
)
from embedkit.similarity import near_duplicate_pairs

THRESHOLDS_FILE = Path(__file__).resolve().parents[1] / "notebooks" / "embedkit" / "thresholds.json"
#: Cross-validation settings (``cross_validate_threshold``'s defaults, written out).
FOLDS = {"n_folds": 4, "n_repeats": 5, "seed": 0}
NOTE = (
    "the package's rule (embedkit.evaluation.choose_threshold) on every pair of the bundled "
    "images: among thresholds 0.30 to 1.00 (step 0.01) whose found groups merge no two photos "
    "and whose pair precision is at least 0.95, the best F1; chosen on all photo groups and "
    "cross-validated on held-out groups (see held_out); recomputed by scripts/calibrate_thresholds.py"
)


def calibrate(name: str) -> dict[str, Any]:
    """The thresholds.json entry of offline network ``name``, measured on the bundled data."""
    manifest = load_manifest()
    vectors = bundled_embeddings(load_backbone(name), manifest, progress=False).vectors
    pairs, scores = near_duplicate_pairs(vectors, threshold=COSINE_GRID[0])
    groups = manifest["group"].to_numpy()
    chosen = choose_threshold(pairs, scores, groups)
    pair_optimal = choose_threshold(pairs, scores, groups, max_merges=len(manifest))
    folds = cross_validate_threshold(pairs, scores, groups, **FOLDS)
    return {
        "threshold": chosen.threshold,
        "measured": True,
        "note": NOTE,
        "in_sample": {
            "precision": round(chosen.precision, 3),
            "recall": round(chosen.recall, 3),
            "f1": round(chosen.f1, 3),
            "merges": chosen.merges,
            "ari": round(chosen.ari, 3),
        },
        "held_out": summarise_cross_validation(folds, stored=chosen.threshold),
        "pair_optimal_threshold": pair_optimal.threshold,
        "rule": {
            "grid": [COSINE_GRID[0], COSINE_GRID[-1], 0.01],
            "min_precision": MIN_PRECISION,
            "max_merges": MAX_MERGES,
            **FOLDS,
        },
        "data": {"files": len(manifest), "manifest_sha256": manifest_fingerprint(manifest)[:16]},
    }


def offline_networks() -> list[str]:
    """The networks this script can measure: their weights ship in a package."""
    return [name for name, net in NETWORKS.items() if net.offline]


#: How far a stored number may lie from a new measurement on another machine. Embeddings differ in
#: their last bits between CPUs (the order in which a BLAS adds), so a pair scoring within a hair of
#: a grid point can move a threshold by one step (0.01), a rounded rate by a little, a count by one.
FLOAT_TOLERANCE = 0.011
COUNT_TOLERANCE = 1


def _close(old: Any, new: Any) -> bool:
    """Equal, up to another CPU's rounding (see ``FLOAT_TOLERANCE``), recursing into dicts and lists."""
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(_close(old[k], new[k]) for k in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(map(_close, old, new))
    if isinstance(old, bool) or isinstance(new, bool) or isinstance(old, str) or isinstance(new, str):
        return old == new
    if isinstance(old, int) and isinstance(new, int):
        return abs(old - new) <= COUNT_TOLERANCE
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return abs(old - new) <= FLOAT_TOLERANCE
    return old == new


def differences(stored: dict[str, Any], measured: dict[str, Any]) -> list[str]:
    """One line per stored value (notes aside) farther from the measured one than rounding explains."""
    lines = []
    for name, entry in measured.items():
        old = stored.get(name)
        if old is None:
            lines.append(f"{name}: no stored entry; the rule gives {entry['threshold']}")
            continue
        for key, value in entry.items():
            if key in ("data", "rule"):  # what was measured and how: exact
                if old.get(key) != value:
                    lines.append(f"{name}: stored {key} {old.get(key)!r}, now {value!r}")
            elif key != "note" and not _close(old.get(key), value):
                lines.append(f"{name}: stored {key} {old.get(key)!r}, the rule gives {value!r}")
    for name, entry in stored.items():
        if name not in measured and entry.get("measured"):
            lines.append(f"{name}: marked measured, but this script cannot measure it here")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 on a difference"
    )
    parser.add_argument("--file", type=Path, default=THRESHOLDS_FILE, help="the thresholds file")
    parser.add_argument("--networks", nargs="*", default=None, help="offline networks to measure")
    args = parser.parse_args(argv)

    names = offline_networks() if args.networks is None else args.networks
    unknown = [name for name in names if name not in offline_networks()]
    if unknown:
        parser.error(f"cannot measure {unknown} here; offline networks: {offline_networks()}")
    stored = json.loads(args.file.read_text(encoding="utf-8"))
    measured = {name: calibrate(name) for name in names}
    if args.check:
        problems = differences(stored, measured)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print(
                "run `python scripts/calibrate_thresholds.py` to store what the rule gives", file=sys.stderr
            )
            return 1
        print(f"{args.file.name}: every measured threshold is what the rule gives ({', '.join(names)})")
        return 0
    known = {**stored, **measured}
    updated = {name: known[name] for name in NETWORKS if name in known}
    args.file.write_text(json.dumps(updated, indent=2) + "\n", encoding="utf-8")
    for name, entry in measured.items():
        held = entry["held_out"]
        print(
            f"{name}: threshold {entry['threshold']:.2f} (folds {held['threshold_min']:.2f} to "
            f"{held['threshold_max']:.2f}); held-out precision {held['held_out_precision_mean']:.3f} "
            f"(min {held['held_out_precision_min']:.3f}), recall {held['held_out_recall_mean']:.3f}; "
            f"folds with a merge {held['folds_with_merge']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
