"""embedkit.splits: train/test leaks and the group-aware re-split."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedkit.pairs import connected_groups
from embedkit.splits import group_aware_split, leak_report

PATHS = [
    "train/cat.png",  # 0  group cat
    "test/cat_copy.png",  # 1  group cat   -> leaks (cat, cat_crop in train)
    "train/cat_crop.png",  # 2  group cat
    "test/dog.png",  # 3  group dog   (both in test: no leak)
    "test/dog_copy.png",  # 4  group dog
    "train/bird.png",  # 5  group bird
    "test/bird_copy.png",  # 6  group bird  -> leaks (bird in train)
    "train/fish.png",  # 7  alone
]
SPLITS = ["train", "test", "train", "test", "test", "train", "test", "train"]
PAIRS = [(1, 0), (0, 2), (2, 1), (4, 3), (6, 5)]  # any order within a pair


def test_leak_report_hand_example():
    report = leak_report(PATHS, SPLITS, PAIRS)
    assert list(report.columns) == ["test_path", "train_matches", "n_matches"]
    expected = pd.DataFrame(
        {
            "test_path": ["test/bird_copy.png", "test/cat_copy.png"],
            "train_matches": [["train/bird.png"], ["train/cat.png", "train/cat_crop.png"]],
            "n_matches": [1, 2],
        }
    )
    pd.testing.assert_frame_equal(report, expected)


def test_leak_report_empty_has_columns():
    report = leak_report(PATHS, SPLITS, [(3, 4)])
    assert report.empty
    assert list(report.columns) == ["test_path", "train_matches", "n_matches"]
    assert leak_report(PATHS, SPLITS, []).empty


def test_leak_report_accepts_paths_and_own_labels():
    splits = ["fit" if s == "train" else "holdout" for s in SPLITS]
    report = leak_report([Path(p) for p in PATHS], splits, PAIRS, train="fit", test="holdout")
    assert report["n_matches"].tolist() == [1, 2]
    assert report["test_path"].tolist() == [str(Path("test/bird_copy.png")), str(Path(PATHS[1]))]


def test_leak_report_errors():
    with pytest.raises(ValueError, match="paths has 8 items but splits has 2"):
        leak_report(PATHS, ["train", "test"], PAIRS)
    with pytest.raises(ValueError, match=r"no item is labelled 'train' or 'test'.*train= and test="):
        leak_report(PATHS, ["Train"] * 8, PAIRS)
    with pytest.raises(ValueError, match=r"pair \(8, 0\) in pairs has an index outside"):
        leak_report(PATHS, SPLITS, [(8, 0)])


def test_group_aware_split_removes_every_leak():
    groups = connected_groups(len(PATHS), PAIRS)
    np.testing.assert_array_equal(groups, [0, 0, 0, 1, 1, 2, 2, 3])
    new = group_aware_split(groups, SPLITS)
    # cat: 2 train vs 1 test -> train; dog: all test; bird: 1 vs 1, a tie -> train; fish stays.
    assert new.tolist() == ["train", "train", "train", "test", "test", "train", "train", "train"]
    assert leak_report(PATHS, new, PAIRS).empty
    moved = [i for i, (a, b) in enumerate(zip(SPLITS, new, strict=True)) if a != b]
    assert moved == [1, 6]  # two moves, the minimum for these groups


def test_group_aware_split_missing_labels_and_other_splits():
    groups = ["g", "g", "g", None, float("nan"), "h", "h"]
    splits = ["val", "test", "test", "test", "val", "val", "test"]
    new = group_aware_split(groups, splits)
    # g: 2 test vs 1 val -> test; None and NaN are groups of one and stay;
    # h: a val/test tie with no train member -> the split seen first, "val".
    assert new.tolist() == ["test", "test", "test", "test", "val", "val", "val"]
    with pytest.raises(ValueError, match="groups has 2 items but splits has 3"):
        group_aware_split([0, 1], ["train", "test", "test"])
