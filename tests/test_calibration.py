"""Calibration on planted copies: the rule on hand-built vectors, the guard, the folder path.

The synthetic vectors are built so that every cosine similarity is known by hand:
photo p's original is ``a·c + b·e_p`` (``c`` shared, ``e_p`` its own, ``a² = 0.455``), and
each copy is ``cos θ · original + sin θ · f`` with ``f`` orthogonal to everything else
(``cos θ = 0.92``). So

- original and copy: 0.92; two copies of one photo: 0.92² = 0.8464;
- two originals of different photos: 0.455; an original and another photo's copy:
  0.92·0.455 = 0.4186; copies of two photos: 0.8464·0.455 = 0.3851.

Every "same" pair is at least 0.8464 and every "different" pair at most 0.455, so on the
0.01 grid the thresholds 0.46 ... 0.84 (39 of them) all find every same pair and no other:
precision, recall and F1 are 1, nothing merges. The rule takes the middle of the tie,
the 20th of 39: 0.65.
"""

import json

import numpy as np
import pytest
from PIL import Image

from embedkit.calibration import (
    MIN_PHOTOS,
    CalibrationError,
    ThresholdCalibration,
    calibrate_on_vectors,
    calibrate_threshold,
    guard_duplicate_photos,
)
from embedkit.evaluation import choose_threshold
from embedkit.similarity import near_duplicate_pairs
from embedkit.variants import PLANTED_EDITS, plant_edit

COS_EDIT = 0.92
SHARED = 0.455  # a²: the cosine of two different originals
EXPECTED = 0.65  # the middle of 0.46 ... 0.84, see the module docstring


def planted(n_photos=8, n_copies=3, duplicate_of=None, cos_edit=COS_EDIT):
    """Vectors, photo numbers and original flags of the hand-built case.

    ``duplicate_of``: photo numbers whose original is *another* photo's original (a photo
    the folder already holds twice); their copies are made from it like any other's.
    """
    duplicate_of = duplicate_of or {}
    dim = 1 + n_photos + n_photos * n_copies
    a, b = np.sqrt(SHARED), np.sqrt(1 - SHARED)
    rows, photo, is_original = [], [], []
    for p in range(n_photos):
        original = np.zeros(dim)
        original[0], original[1 + duplicate_of.get(p, p)] = a, b
        rows.append(original)
        for k in range(n_copies):
            own = np.zeros(dim)
            own[1 + n_photos + p * n_copies + k] = 1.0
            rows.append(cos_edit * original + np.sqrt(1 - cos_edit**2) * own)
        photo += [p] * (1 + n_copies)
        is_original += [True] + [False] * n_copies
    return np.array(rows, dtype=np.float32), np.array(photo), np.array(is_original)


# --------------------------------------------------------------------------- the rule on vectors


def test_hand_built_case_gives_the_hand_computed_threshold():
    vectors, photo, is_original = planted()
    result = calibrate_on_vectors(vectors, photo, is_original, network="hand-built", seed=0)

    assert result.threshold == pytest.approx(EXPECTED)
    assert (result.in_sample_precision, result.in_sample_recall) == (1.0, 1.0)
    # each fold sees the same structure, so it chooses inside the same gap and misses nothing
    assert result.held_out_precision_min == 1.0 and result.held_out_recall_min == 1.0
    assert 0.46 <= result.threshold_min <= result.threshold_max <= 0.84
    assert result.folds_with_merge == 0.0
    # 8 photos of 4 items: 8·C(4,2) = 48 same pairs; C(32,2) - 48 = 448 different ones
    assert (result.n_photos, result.n_same_pairs, result.n_different_pairs) == (8, 48, 448)
    assert result.n_guarded == 0
    assert result.guard_similarity == pytest.approx(COS_EDIT, abs=1e-6)


def test_threshold_moves_with_the_copies():
    # Copies further from their originals (cos θ = 0.8: copy pairs at 0.64) shrink the gap
    # to 0.46 ... 0.63 (18 values): the rule takes the 10th, 0.55.
    vectors, photo, is_original = planted(cos_edit=0.8)
    assert calibrate_on_vectors(vectors, photo, is_original).threshold == pytest.approx(0.55)


def test_guard_drops_a_photo_the_folder_already_holds_twice():
    clean = calibrate_on_vectors(*planted())
    vectors, photo, is_original = planted(n_photos=9, duplicate_of={8: 3})

    keep, level, dropped = guard_duplicate_photos(vectors, photo, is_original)
    assert dropped == [(8, 3)] and keep.tolist() == [True] * 8 + [False]
    assert level == pytest.approx(COS_EDIT, abs=1e-6)

    guarded = calibrate_on_vectors(vectors, photo, is_original)
    assert guarded.n_guarded == 1 and guarded.n_photos == 8
    assert guarded.threshold == clean.threshold == pytest.approx(EXPECTED)

    # Unguarded, photo 8 and photo 3 (identical originals at cosine 1) count as different:
    # even the strictest grid threshold, 1.00, finds and merges them, so the rule has none.
    pairs, scores = near_duplicate_pairs(vectors, threshold=0.3, precision="float32")
    with pytest.raises(ValueError, match="no threshold on the grid"):
        choose_threshold(pairs, scores, photo)


def test_guard_looks_at_every_item_of_two_photos_not_only_their_originals():
    # Photo 8's original is photo 3's moved a little out of its plane (cosine 0.85 to it:
    # less alike than any planted copy, 0.92, so a test on originals alone keeps it), and
    # one of photo 8's copies is photo 3's original itself (cosine 1: as a folder's crop,
    # cropped again, can land back on the photo it was cut from).
    vectors, photo, is_original = planted(n_photos=9)
    rows = np.flatnonzero(photo == 8)
    three = vectors[np.flatnonzero((photo == 3) & is_original)[0]]
    own = np.zeros(len(three))
    own[1 + 8] = 1.0  # photo 8's own axis, orthogonal to photo 3's original
    vectors[rows[0]] = 0.85 * three + np.sqrt(1 - 0.85**2) * own
    for row in rows[2:]:  # its other copies at 0.92 to it, along their own axes as before
        vectors[row] = COS_EDIT * vectors[rows[0]] + (
            vectors[row] - COS_EDIT * planted(n_photos=9)[0][rows[0]]
        )
    vectors[rows[1]] = three  # 1 of the 27 copy similarities at 0.85, the rest at 0.92
    keep, level, dropped = guard_duplicate_photos(vectors, photo, is_original)
    assert 0.85 < level <= COS_EDIT  # the originals (0.85 apart) are below the guard's level
    assert dropped == [(8, 3)] and keep.sum() == 8
    # with photo 8 dropped, the threshold is the clean case's
    assert calibrate_on_vectors(vectors, photo, is_original).threshold == pytest.approx(EXPECTED)


def test_guard_level_is_a_low_quantile_of_the_copies():
    # Copies of photos 0-3 at cosine 0.92 to their originals, of photos 4-7 at 0.80: the
    # 2nd percentile of those 24 similarities is 0.80, the median 0.86.
    first, _, _ = planted(cos_edit=0.92)
    second, photo, is_original = planted(cos_edit=0.80)
    vectors = np.where((photo < 4)[:, None], first, second)
    _, level, _ = guard_duplicate_photos(vectors, photo, is_original)
    assert level == pytest.approx(0.80, abs=1e-6)
    _, median, _ = guard_duplicate_photos(vectors, photo, is_original, quantile=0.5)
    assert median == pytest.approx(0.86, abs=1e-6)


def test_guard_uses_dhash_when_the_network_does_not_see_it():
    vectors, photo, is_original = planted()
    hashes = [0xFF << (8 * p) for p in range(8)]  # any two differ in 16 of 64 bits
    hashes[5] = hashes[2] ^ 0b111  # photo 5's picture is photo 2's up to 3 bits
    keep, _, dropped = guard_duplicate_photos(vectors, photo, is_original, hashes)
    assert dropped == [(5, 2)] and int(keep.sum()) == 7
    keep, _, dropped = guard_duplicate_photos(vectors, photo, is_original, hashes, dhash_bits=2)
    assert dropped == []


def test_result_is_json_ready_and_says_how_it_was_made():
    result = calibrate_on_vectors(*planted(), network="hand-built", edits=("crop", "hflip", "resize"))
    record = json.loads(json.dumps(result.to_dict()))
    assert record["threshold"] == pytest.approx(EXPECTED)
    assert record["edits"] == ["crop", "hflip", "resize"] and record["network"] == "hand-built"
    assert {
        "held_out_precision_mean",
        "held_out_precision_min",
        "held_out_recall_mean",
        "held_out_recall_min",
        "n_photos",
        "n_same_pairs",
        "n_different_pairs",
        "seed",
        "method",
    } <= set(record)
    assert "choose_threshold" in record["method"] and "3 planted edits" in record["method"]
    assert "0.65" in str(result)
    with pytest.raises(AttributeError):
        result.threshold = 0.5  # frozen


def test_too_few_photos_is_a_calibration_error():
    vectors, photo, is_original = planted(n_photos=MIN_PHOTOS - 1)
    with pytest.raises(CalibrationError, match="at least"):
        calibrate_on_vectors(vectors, photo, is_original)
    # Duplicates do not count: 8 photos, two of them copies of others, leave 6.
    vectors, photo, is_original = planted(n_photos=8, duplicate_of={6: 0, 7: 1})
    with pytest.raises(CalibrationError, match="2 more were duplicates"):
        calibrate_on_vectors(vectors, photo, is_original)


def test_each_photo_needs_exactly_one_original():
    vectors, photo, is_original = planted()
    is_original[1] = True
    with pytest.raises(ValueError, match="photo 0 has 2 originals"):
        calibrate_on_vectors(vectors, photo, is_original)


# --------------------------------------------------------------------------- planted edits


@pytest.fixture(scope="module")
def picture():
    y, x = np.mgrid[0:120, 0:160]
    rgb = np.stack([x * 1.5, y * 2.0, (x + y) * 0.9], axis=-1) % 256
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


@pytest.mark.parametrize("kind", PLANTED_EDITS)
def test_every_planted_edit_makes_an_rgb_copy_reproducibly(picture, kind):
    copy = plant_edit(picture, kind, np.random.default_rng(7))
    again = plant_edit(picture, kind, np.random.default_rng(7))
    assert copy.mode == "RGB"
    assert np.array_equal(np.asarray(copy), np.asarray(again))
    assert not np.array_equal(np.asarray(copy.resize(picture.size)), np.asarray(picture))


def test_planted_edits_do_what_they_say(picture):
    rng = np.random.default_rng(0)
    w, h = picture.size
    crop = plant_edit(picture, "crop", rng)
    assert 0.67 * w <= crop.width <= 0.81 * w and 0.67 * h <= crop.height <= 0.81 * h
    small = plant_edit(picture, "resize", rng)
    assert 0.49 * w <= small.width <= 0.76 * w
    gray = np.asarray(plant_edit(picture, "grayscale", rng)).astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 2
    flipped = np.asarray(plant_edit(picture, "hflip", rng)).astype(int)
    assert np.abs(flipped[:, ::-1] - np.asarray(picture).astype(int)).mean() < 3  # JPEG noise only
    with pytest.raises(ValueError, match="unknown edit"):
        plant_edit(picture, "rotate", rng)


# --------------------------------------------------------------------------- from a folder


def histogram(picture):
    """A stand-in embedding: the colour histogram (4 levels per channel), plus one."""
    q = np.asarray(picture.convert("RGB").resize((64, 64))) // 64
    return np.bincount((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel(), minlength=64) + 1.0


#: Edits a colour histogram sees through (gray, colour-shifted or watermarked copies it sees
#: as other pictures, so the guard would find every photo alike to some other one).
SEEN = ("jpeg_reencode", "resize", "hflip")


class Recorder:
    """An ``embed`` stand-in that remembers what it was given."""

    def __init__(self):
        self.seen = []

    def __call__(self, pictures):
        self.seen += [np.asarray(p).tobytes() for p in pictures]
        return np.stack([histogram(p) for p in pictures])


@pytest.fixture(scope="module")
def photos(manifest):
    return sorted(manifest.loc[manifest["transformation"] == "original", "file"])


def test_folder_calibration_is_reproducible_with_its_seed(photos):
    first, second, other = Recorder(), Recorder(), Recorder()
    a = calibrate_threshold(
        photos, embed=first, sample=10, seed=3, repeats=1, network="histogram", edits=SEEN
    )
    b = calibrate_threshold(
        photos, embed=second, sample=10, seed=3, repeats=1, network="histogram", edits=SEEN
    )
    calibrate_threshold(photos, embed=other, sample=10, seed=4, repeats=1, edits=SEEN)
    assert a == b and first.seen == second.seen
    assert first.seen != other.seen  # another seed samples and edits other pictures
    assert isinstance(a, ThresholdCalibration) and a.network == "histogram"
    # 10 photos, each embedded with its three copies
    assert len(first.seen) == 10 * (1 + len(SEEN))
    assert a.n_photos + a.n_guarded == 10 and a.edits == SEEN


def test_given_vectors_are_used_for_the_originals(photos):
    vectors = np.stack([histogram(Image.open(f)) for f in photos])
    recorder = Recorder()
    with_vectors = calibrate_threshold(
        photos, embed=recorder, vectors=vectors, sample=10, repeats=1, edits=SEEN
    )
    assert len(recorder.seen) == 10 * len(SEEN)  # only the copies were embedded
    assert with_vectors.n_photos + with_vectors.n_guarded == 10
    with pytest.raises(ValueError, match="one row per file"):
        calibrate_threshold(photos, embed=recorder, vectors=vectors[:-1])


def test_folder_guard_drops_a_file_that_is_there_twice(photos, tmp_path):
    for k, f in enumerate(photos[:9]):
        Image.open(f).convert("RGB").save(tmp_path / f"{k}.png")
    (tmp_path / "9-copy.png").write_bytes((tmp_path / "4.png").read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    result = calibrate_threshold(tmp_path, embed=Recorder(), sample=20, repeats=1, edits=SEEN)
    assert result.n_guarded == 1 and result.n_photos == 9 and result.n_unreadable == 1


def test_a_folder_too_small_to_calibrate(photos, tmp_path):
    for k, f in enumerate(photos[:3]):
        Image.open(f).convert("RGB").save(tmp_path / f"{k}.png")
    with pytest.raises(CalibrationError, match="only 3 readable photos"):
        calibrate_threshold(tmp_path, embed=Recorder())
    with pytest.raises(ValueError, match="backbone"):
        calibrate_threshold(tmp_path)
    with pytest.raises(ValueError, match="edits must be"):
        calibrate_threshold(tmp_path, embed=Recorder(), edits=("rotate",))


# --------------------------------------------------------------------------- a real network


@pytest.mark.slow
def test_real_network_threshold_separates_the_bundled_test_files(backbone, manifest):
    """Calibrated on the training photos alone, scored on the test files' ground truth."""
    from embedkit.backbones import calibration
    from embedkit.dataset import bundled_embeddings
    from embedkit.evaluation import threshold_curve

    train = manifest[(manifest["split"] == "train") & (manifest["transformation"] == "original")]
    result = calibrate_threshold(list(train["file"]), backbone, sample=len(train), repeats=2)
    assert result.n_photos + result.n_guarded == len(train) and result.network == backbone.name

    test = (manifest["split"] == "test").to_numpy()
    vectors = bundled_embeddings(backbone, manifest, progress=False).vectors[test]
    pairs, scores = near_duplicate_pairs(vectors, threshold=0.3, precision="float32")
    row = threshold_curve(pairs, scores, manifest["group"].to_numpy()[test], [result.threshold]).iloc[0]
    assert row["precision"] >= 0.95 and row["recall"] >= 0.90
    stored = calibration(backbone.name)
    if stored.measured:
        assert abs(result.threshold - stored.threshold) <= 0.1
