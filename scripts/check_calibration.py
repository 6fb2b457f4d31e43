"""Check calibration on planted copies against the bundled data's ground truth.

For each offline network: :func:`embedkit.calibration.calibrate_threshold` on the
*training* photos alone (``data/manifest.csv`` rows with ``split == "train"`` and
``transformation == "original"``: the photos, none of their copies), then that threshold
scored as a pair classifier on the *test* split (every pair of test files, true when the
manifest puts both in one group), beside the stored, manifest-calibrated threshold of
``thresholds.json`` scored the same way. Nothing is chosen on the test files.

The bar: pair precision >= 0.95 and recall >= 0.90 on the test files.

Usage::

    python scripts/check_calibration.py                        # both offline networks
    python scripts/check_calibration.py --networks efficientnet_lite0 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from embedkit.backbones import NETWORKS, calibration, load_backbone
from embedkit.calibration import calibrate_threshold
from embedkit.dataset import bundled_embeddings, load_manifest
from embedkit.evaluation import threshold_curve
from embedkit.similarity import near_duplicate_pairs

#: The bar on the test files.
MIN_TEST_PRECISION = 0.95
MIN_TEST_RECALL = 0.90


def test_scores(vectors, groups, thresholds: list[float]) -> dict[float, dict[str, float]]:
    """Pair precision and recall of each threshold over every pair of the given files."""
    pairs, scores = near_duplicate_pairs(vectors, threshold=min(thresholds) - 0.01, precision="float32")
    curve = threshold_curve(pairs, scores, groups, sorted(set(thresholds)))
    return {
        t: {
            "precision": round(float(curve.loc[t, "precision"]), 3),
            "recall": round(float(curve.loc[t, "recall"]), 3),
            "fp": int(curve.loc[t, "fp"]),
            "fn": int(curve.loc[t, "fn"]),
            "merges": int(curve.loc[t, "merges"]),
        }
        for t in thresholds
    }


def check(name: str, seed: int) -> dict:
    """Calibrate ``name`` on the training photos with ``seed``; score on the test files."""
    backbone = load_backbone(name, device="cpu", allow_download=False)
    manifest = load_manifest()
    train_photos = manifest[(manifest["split"] == "train") & (manifest["transformation"] == "original")]
    start = time.perf_counter()
    calibrated = calibrate_threshold(
        list(train_photos["file"]), backbone, sample=len(train_photos), seed=seed
    )
    seconds = time.perf_counter() - start
    test = manifest["split"].to_numpy() == "test"
    vectors = bundled_embeddings(backbone, manifest, progress=False).vectors[test]
    stored = calibration(name).threshold
    scores = test_scores(vectors, manifest["group"].to_numpy()[test], [calibrated.threshold, stored])
    mine = scores[calibrated.threshold]
    return {
        "network": name,
        "seed": seed,
        "calibration": calibrated.to_dict(),
        "seconds": round(seconds, 1),
        "test_files": int(test.sum()),
        "test_groups": int(manifest.loc[test, "group"].nunique()),
        "calibrated_on_test": mine,
        "stored_threshold": stored,
        "stored_on_test": scores[stored],
        "difference": round(calibrated.threshold - stored, 3),
        "meets_bar": mine["precision"] >= MIN_TEST_PRECISION and mine["recall"] >= MIN_TEST_RECALL,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    offline = [name for name, net in NETWORKS.items() if net.offline]
    parser.add_argument("--networks", nargs="*", default=offline, help="offline networks to check")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="calibration seeds")
    parser.add_argument("--json", action="store_true", help="print every number as JSON")
    args = parser.parse_args(argv)
    results = [check(name, seed) for name in args.networks for seed in args.seeds]
    if args.json:
        print(json.dumps(results, indent=2))
    for r in results:
        c, mine, old = r["calibration"], r["calibrated_on_test"], r["stored_on_test"]
        print(
            f"{r['network']} seed {r['seed']}: calibrated {c['threshold']:.2f} on {c['n_photos']} training "
            f"photos x {len(c['edits'])} edits ({r['seconds']:.0f} s; held-out precision "
            f"{c['held_out_precision_mean']:.3f} min {c['held_out_precision_min']:.3f}, recall "
            f"{c['held_out_recall_mean']:.3f} min {c['held_out_recall_min']:.3f}; guarded {c['n_guarded']})\n"
            f"  on the {r['test_files']} test files ({r['test_groups']} groups): precision "
            f"{mine['precision']:.3f}, recall {mine['recall']:.3f} (fp {mine['fp']}, fn {mine['fn']}, "
            f"merges {mine['merges']}) -> {'meets' if r['meets_bar'] else 'MISSES'} the bar "
            f"(precision >= {MIN_TEST_PRECISION}, recall >= {MIN_TEST_RECALL})\n"
            f"  stored threshold {r['stored_threshold']:.2f} (difference {r['difference']:+.2f}): "
            f"precision {old['precision']:.3f}, recall {old['recall']:.3f}"
        )
    return 0 if all(r["meets_bar"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
