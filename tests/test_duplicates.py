"""embedkit.duplicates: file, pixel and perceptual hashes, Hamming distances, exact groups."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from embedkit import duplicates
from embedkit.duplicates import (
    dhash,
    exact_duplicate_groups,
    file_sha256,
    hamming_distance,
    hamming_matrix,
    pixel_hash,
)
from embedkit.images import ImageLoadError

# --------------------------------------------------------------------------- test images


def photo_like(width: int = 256, height: int = 192) -> Image.Image:
    """A smooth, asymmetric RGB picture (waves, a gradient and a bright blob)."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    v = 0.45 * np.sin(6 * x + 2 * y**2) + 0.35 * np.cos(9 * y * x + 1) + 0.6 * x**2 - 0.3 * y
    v += np.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) / 0.01)
    v = (v - v.min()) / (v.max() - v.min())
    rgb = np.stack([v, v**1.5, 1 - 0.5 * v], axis=-1)
    return Image.fromarray(np.round(rgb * 255).astype(np.uint8))


def dhash_by_hand(image: Image.Image, hash_size: int = 8) -> int:
    """The algorithm exactly as dhash's docstring states it (what a lesson writes out)."""
    gray = image.convert("L")
    small = gray.resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS)
    px = np.asarray(small)
    bits = px[:, :-1] > px[:, 1:]
    return int("".join("1" if b else "0" for b in bits.flatten()), 2)


# --------------------------------------------------------------------------- file_sha256


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 41 + b"tail"
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(str(path), block_size=7) == expected  # many blocks, a short last one
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()


def test_file_sha256_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "nope.png")


@pytest.mark.parametrize("block_size", [0, -1, 2.5])
def test_file_sha256_refuses_a_block_size_that_reads_nothing(tmp_path, block_size):
    (tmp_path / "a.bin").write_bytes(b"abc")
    with pytest.raises(ValueError, match="block_size"):
        file_sha256(tmp_path / "a.bin", block_size=block_size)


# --------------------------------------------------------------------------- pixel_hash


def test_pixel_hash_ignores_how_pixels_are_stored(tmp_path):
    image = photo_like(40, 30)
    fast, small = tmp_path / "fast.png", tmp_path / "small.png"
    image.save(fast, compress_level=0)
    image.save(small, compress_level=9)
    assert file_sha256(fast) != file_sha256(small)
    assert pixel_hash(fast) == pixel_hash(small) == pixel_hash(image)
    tiff = tmp_path / "same.tiff"
    image.save(tiff)
    assert pixel_hash(tiff) == pixel_hash(fast)


def test_pixel_hash_sees_a_one_pixel_change(tmp_path):
    image = photo_like(40, 30)
    changed = image.copy()
    r, g, b = changed.getpixel((5, 7))
    changed.putpixel((5, 7), (r, g, (b + 1) % 256))
    assert pixel_hash(changed) != pixel_hash(image)


def test_pixel_hash_includes_the_shape():
    data = bytes(range(48))  # 16 RGB pixels
    wide = Image.frombytes("RGB", (8, 2), data)
    tall = Image.frombytes("RGB", (2, 8), data)
    assert wide.tobytes() == tall.tobytes()
    assert pixel_hash(wide) != pixel_hash(tall)


def test_pixel_hash_matches_load_rgb_for_transparent_images(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    path = tmp_path / "cutout.png"
    rgba.save(path)
    white = Image.new("RGB", (4, 4), (255, 255, 255))
    assert pixel_hash(path) == pixel_hash(rgba) == pixel_hash(white)


def test_pixel_hash_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageLoadError, match="not an image file"):
        pixel_hash(bad)
    with pytest.raises(TypeError, match="PIL.Image.fromarray"):
        pixel_hash(np.zeros((4, 4, 3), np.uint8))


# --------------------------------------------------------------------------- dhash


def gradient(width: int, height: int, decreasing_rows: list[int]) -> Image.Image:
    """Rows listed in ``decreasing_rows`` get darker to the right, the others brighter."""
    ramp = np.linspace(40, 200, width).round().astype(np.uint8)
    px = np.tile(ramp, (height, 1))
    px[decreasing_rows] = px[decreasing_rows, ::-1]
    return Image.fromarray(px, mode="L")


def test_dhash_hand_computed_gradients():
    # A 9x8 image is already the hash's size. Every pixel brighter than its right
    # neighbour gives 64 one-bits; darker gives 64 zero-bits.
    assert dhash(gradient(9, 8, decreasing_rows=list(range(8)))) == 2**64 - 1
    assert dhash(gradient(9, 8, decreasing_rows=[])) == 0
    # Only the first row decreasing: bits 1111 1111 then 56 zeros -> 0xFF << 56.
    assert dhash(gradient(9, 8, decreasing_rows=[0])) == 0xFF00_0000_0000_0000
    # Only the last row: the least significant byte.
    assert dhash(gradient(9, 8, decreasing_rows=[7])) == 0xFF
    # hash_size=3 (9 bits, not a whole number of bytes): rows 0 and 2 decreasing
    # -> 111 000 111 = 0b111000111 = 455.
    assert dhash(gradient(4, 3, decreasing_rows=[0, 2]), hash_size=3) == 0b111000111 == 455


def test_dhash_equals_the_docstring_algorithm(tmp_path):
    image = photo_like()
    for hash_size in (8, 5, 16):
        assert dhash(image, hash_size) == dhash_by_hand(image, hash_size)
    path = tmp_path / "photo.png"
    image.save(path)
    assert dhash(path) == dhash_by_hand(Image.open(path))
    assert dhash(image).bit_length() <= 64
    assert dhash(image, hash_size=16).bit_length() <= 256


def test_dhash_robust_to_brightness_and_resizing():
    image = photo_like()
    base = dhash(image)
    for factor in (0.6, 0.8, 1.2):
        brighter = image.point(lambda p, f=factor: min(255, round(p * f)))
        assert hamming_distance(base, dhash(brighter)) <= 4
    half = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
    assert hamming_distance(base, dhash(half)) <= 4


def test_dhash_changes_for_a_mirrored_image():
    image = photo_like()
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert hamming_distance(dhash(image), dhash(mirrored)) >= 20


def test_dhash_rejects_bad_hash_size():
    with pytest.raises(ValueError, match="hash_size must be an integer >= 2"):
        dhash(photo_like(), hash_size=1)


# --------------------------------------------------------------------------- Hamming


def test_hamming_distance_hand_computed():
    assert hamming_distance(0b1011, 0b0001) == 2
    assert hamming_distance(0, 2**64 - 1) == 64
    assert hamming_distance(2**100, 0) == 1  # any length
    assert hamming_distance(np.uint64(7), 0) == 3
    with pytest.raises(ValueError, match="non-negative"):
        hamming_distance(-1, 0)


def test_hamming_matrix_matches_pure_python():
    rng = np.random.default_rng(0)
    hashes = [int(h) for h in rng.integers(0, 2**63, size=40, dtype=np.uint64)]
    hashes += [0, 2**64 - 1, 2**63, 1]
    D = hamming_matrix(hashes)
    expected = [[bin(x ^ y).count("1") for y in hashes] for x in hashes]
    assert D.dtype == np.int64
    np.testing.assert_array_equal(D, expected)
    np.testing.assert_array_equal(hamming_matrix(np.array(hashes, dtype=np.uint64)), expected)


def test_hamming_matrix_fallback_for_old_numpy_agrees():
    rng = np.random.default_rng(1)
    h = rng.integers(0, 2**64 - 1, size=(30,), dtype=np.uint64, endpoint=True)
    x = h[:, None] ^ h[None, :]
    expected = np.array([[bin(int(v)).count("1") for v in row] for row in x])
    np.testing.assert_array_equal(duplicates._popcount_table(x), expected)


def test_hamming_matrix_errors():
    with pytest.raises(ValueError, match="hash 1 has 65 bits.*hamming_distance"):
        hamming_matrix([1, 2**64])
    with pytest.raises(ValueError, match="hash 0 must be a non-negative int"):
        hamming_matrix([-3, 1])
    with pytest.raises(ValueError, match="hash 1 is negative"):
        hamming_matrix(np.array([3, -1]))
    assert hamming_matrix([]).shape == (0, 0)


# --------------------------------------------------------------------------- groups


def test_exact_duplicate_groups():
    keys = ["a", "b", "a", "c", "b", "a", "d"]
    assert exact_duplicate_groups(keys) == [[0, 2, 5], [1, 4]]
    assert exact_duplicate_groups(["x", "y"]) == []
    assert exact_duplicate_groups([]) == []
