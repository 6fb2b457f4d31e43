"""load_rgb and scan_images on a generated corpus of every mode and every broken-file kind."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import bomb_png
from embedkit.images import (
    ImageLoadError,
    as_rgb,
    expand_paths,
    load_rgb,
    load_rgb_and_reduced,
    scan_images,
    to_rgb,
)

RED, GREEN, WHITE, BLACK = (220, 20, 30), (20, 200, 40), (255, 255, 255), (0, 0, 0)


def _png_bytes(image: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **params)
    return buf.getvalue()


def _cutout() -> Image.Image:
    """8x8 RGBA: a red opaque square in the middle, fully transparent black around it."""
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6] = (*RED, 255)
    return Image.fromarray(rgba, "RGBA")


# ---------------------------------------------------------------- every mode becomes RGB


def test_rgb_jpeg_is_returned_as_is(tmp_path):
    Image.new("RGB", (16, 12), GREEN).save(tmp_path / "a.png")
    image = load_rgb(tmp_path / "a.png")
    assert image.mode == "RGB" and image.size == (16, 12)
    assert image.getpixel((3, 3)) == GREEN


def test_rgba_is_composited_over_white_not_dropped(tmp_path):
    _cutout().save(tmp_path / "cut.png")
    image = load_rgb(tmp_path / "cut.png")
    assert image.getpixel((0, 0)) == WHITE  # transparent corner: the background shows
    assert image.getpixel((4, 4)) == RED  # opaque centre: unchanged
    # the naive conversion shows the black stored under transparent pixels
    assert Image.open(tmp_path / "cut.png").convert("RGB").getpixel((0, 0)) == BLACK


def test_custom_background(tmp_path):
    _cutout().save(tmp_path / "cut.png")
    assert load_rgb(tmp_path / "cut.png", background=(0, 0, 255)).getpixel((0, 0)) == (0, 0, 255)


def test_half_transparent_pixel_is_blended(tmp_path):
    Image.new("RGBA", (2, 2), (0, 0, 0, 128)).save(tmp_path / "half.png")
    r, g, b = load_rgb(tmp_path / "half.png").getpixel((0, 0))
    # 128/255 black over white: 255 * (1 - 128/255) = 127
    assert r == g == b and abs(r - 127) <= 1


def test_la_grayscale_with_alpha(tmp_path):
    la = Image.merge("LA", [Image.new("L", (4, 4), 10), Image.new("L", (4, 4), 0)])
    la.putpixel((1, 1), (10, 255))
    la.save(tmp_path / "la.png")
    image = load_rgb(tmp_path / "la.png")
    assert image.getpixel((0, 0)) == WHITE and image.getpixel((1, 1)) == (10, 10, 10)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparent_index(tmp_path, suffix):
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, *RED] + [0] * 762)
    p.putpixel((2, 1), 1)
    p.save(tmp_path / f"p{suffix}", transparency=0)
    image = load_rgb(tmp_path / f"p{suffix}")
    assert image.getpixel((0, 0)) == WHITE and image.getpixel((2, 1)) == RED


def test_palette_without_transparency(tmp_path):
    Image.new("RGB", (4, 4), GREEN).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    assert load_rgb(tmp_path / "p.png").getpixel((0, 0)) == GREEN


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_and_bilevel(tmp_path, mode):
    Image.new(mode, (4, 4), 255 if mode == "1" else 77).save(tmp_path / "g.png")
    value = 255 if mode == "1" else 77
    assert load_rgb(tmp_path / "g.png").getpixel((0, 0)) == (value,) * 3


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    r, g, b = load_rgb(tmp_path / "c.jpg").getpixel((4, 4))
    assert r > 240 and g < 15 and b < 15  # no magenta, no yellow ink left out: red


def test_16bit_png_keeps_its_brightness(tmp_path):
    values = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    image = load_rgb(tmp_path / "16.png")
    assert [image.getpixel(xy)[0] for xy in [(0, 0), (1, 0), (0, 1), (1, 1)]] == [0, 255, 128, 1]


def test_32bit_integer_tiff_is_stretched(tmp_path):
    values = np.array([[-1000, 0], [500, 1000]], dtype=np.int32)
    Image.fromarray(values, "I").save(tmp_path / "i.tif")
    image = load_rgb(tmp_path / "i.tif")
    assert image.getpixel((0, 0))[0] == 0 and image.getpixel((1, 1))[0] == 255


def test_float_tiff_in_unit_range(tmp_path):
    Image.fromarray(np.array([[0.0, 1.0], [0.5, 0.25]], np.float32), "F").save(tmp_path / "f.tif")
    image = load_rgb(tmp_path / "f.tif")
    assert [image.getpixel(xy)[0] for xy in [(0, 0), (1, 0), (0, 1)]] == [0, 255, 128]


def test_exif_orientation_is_applied(tmp_path):
    # stored 20 wide x 10 high with the left half red; orientation 6 = rotate 90° clockwise to view
    stored = Image.new("RGB", (20, 10), GREEN)
    stored.paste(RED, (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    image = load_rgb(tmp_path / "phone.jpg")
    assert image.size == (10, 20)  # shown upright: portrait
    top = np.asarray(image)[2, 5]
    assert top[0] > 180 and top[1] < 80  # the stored left edge is now at the top


def test_webp_with_alpha(tmp_path):
    _cutout().save(tmp_path / "cut.webp", lossless=True)
    image = load_rgb(tmp_path / "cut.webp")
    assert image.getpixel((0, 0)) == WHITE and image.getpixel((4, 4)) == RED


def test_to_rgb_premultiplied():
    rgba = _cutout().convert("RGBa")
    assert to_rgb(rgba).getpixel((0, 0)) == WHITE


def test_as_rgb_takes_a_path_or_an_opened_image(tmp_path):
    _cutout().save(tmp_path / "cut.png")
    from_path = as_rgb(tmp_path / "cut.png")
    from_image = as_rgb(Image.open(tmp_path / "cut.png"))
    assert from_path.tobytes() == from_image.tobytes() and from_image.getpixel((0, 0)) == WHITE
    assert as_rgb(Image.new("L", (2, 2), 9)).getpixel((0, 0)) == (9, 9, 9)
    with pytest.raises(TypeError, match="Image.fromarray"):
        as_rgb(np.zeros((2, 2, 3), np.uint8))


def test_returned_image_is_detached_from_the_file(tmp_path):
    Image.new("RGB", (4, 4), GREEN).save(tmp_path / "a.png")
    image = load_rgb(tmp_path / "a.png")
    (tmp_path / "a.png").unlink()  # would fail on some systems if the file were still open
    assert image.getpixel((0, 0)) == GREEN


# ---------------------------------------------------------------- broken files: a reason each


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _bad_png_crc() -> bytes:
    data = bytearray(_png_bytes(Image.new("RGB", (8, 8), GREEN)))
    data[29] ^= 0xFF  # inside the IHDR chunk's CRC
    return bytes(data)


BROKEN = {
    "empty.jpg": (b"", "empty file"),
    "notes.png": (b"shopping list: milk, eggs\n", "not an image file"),
    "page.jpg": (b"<html><body>404 Not Found</body></html>", "not an image file"),
    "cut.jpg": (_jpeg_bytes()[:1500], "truncated JPEG"),
    "cut.png": (_png_bytes(Image.new("RGB", (64, 64), GREEN))[:70], "truncated PNG"),
    "crc.png": (_bad_png_crc(), "corrupt PNG"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_raises_with_path_and_reason(tmp_path, name):
    content, reason = BROKEN[name]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageLoadError) as info:
        load_rgb(tmp_path / name)
    assert info.value.path == str(tmp_path / name)
    assert info.value.reason.startswith(reason), info.value.reason
    assert name in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found"):
        load_rgb(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="folder"):
        load_rgb(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(30_000, 30_000))  # 900 Mpx in ~110 kB
    assert (tmp_path / "bomb.png").stat().st_size < 200_000
    with pytest.raises(ImageLoadError, match="too large.*decompression bomb"):
        load_rgb(tmp_path / "bomb.png")


def test_max_pixels_is_adjustable(tmp_path):
    Image.new("RGB", (100, 100)).save(tmp_path / "a.png")
    with pytest.raises(ImageLoadError, match="too large"):
        load_rgb(tmp_path / "a.png", max_pixels=9_999)
    assert load_rgb(tmp_path / "a.png", max_pixels=10_000).size == (100, 100)


# ---------------------------------------------------------------- scan_images


def test_scan_images_returns_every_good_file_and_a_reason_for_each_bad_one(tmp_path):
    good = []
    for i, mode in enumerate(["RGB", "RGBA", "L", "P", "CMYK"]):
        path = tmp_path / "sub" / f"good_{i}.{'jpg' if mode == 'CMYK' else 'png'}"
        path.parent.mkdir(exist_ok=True)
        Image.new(mode, (8, 8)).save(path)
        good.append(path)
    for name, (content, _) in BROKEN.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "readme.txt").write_text("not picked up: no image ending")
    (tmp_path / ".hidden").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / ".hidden" / "thumb.png")

    result = scan_images(tmp_path)
    assert sorted(result.good) == sorted(good)
    reasons = {p.name: r for p, r in result.bad}
    assert sorted(reasons) == sorted(BROKEN)
    for name, (_, reason) in BROKEN.items():
        assert reasons[name].startswith(reason), (name, reasons[name])
    good_list, bad_list = result  # unpacks like a tuple
    assert len(good_list) == 5 and len(bad_list) == len(BROKEN)


def test_scan_images_takes_a_list_and_keeps_its_order(tmp_path):
    a, b, c = (tmp_path / f"{n}.png" for n in "abc")
    Image.new("RGB", (4, 4)).save(c)
    Image.new("RGB", (4, 4)).save(a)
    b.write_bytes(b"")
    result = scan_images([c, b, a, tmp_path / "missing.png"])
    assert result.good == [c, a]
    assert [(p.name, r) for p, r in result.bad] == [
        ("b.png", "empty file (0 bytes)"),
        ("missing.png", "file not found"),
    ]


def test_scan_images_reports_dangling_links_and_link_loops(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "ok.png")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    result = scan_images(tmp_path)
    assert result.good == [tmp_path / "ok.png"]
    reasons = {p.name: r for p, r in result.bad}
    assert reasons["gone.jpg"].startswith("dangling symbolic link") and "deleted.jpg" in reasons["gone.jpg"]
    assert reasons["loop.png"].startswith("symbolic link loop")


def test_scan_images_lists_a_folder_as_curate_does(tmp_path):
    # The same walker as curate: folder links followed once, loops and pipes reported, never opened.
    (tmp_path / "real").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "real" / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "real" / "odd name \u202e.png")
    (tmp_path / "alias").symlink_to(tmp_path / "real")  # the same folder under a second name
    (tmp_path / "real" / "up").symlink_to(tmp_path)  # a loop back to the top
    os.mkfifo(tmp_path / "pipe.png")  # opening it would block forever
    result = scan_images(tmp_path)
    assert result.good == [tmp_path / "real" / "a.png", tmp_path / "real" / "odd name \u202e.png"]
    reasons = {p.relative_to(tmp_path).as_posix(): r for p, r in result.bad}
    assert reasons["pipe.png"].startswith("a named pipe")
    assert "loop" in reasons["real/up"]
    assert list(reasons) == sorted(reasons) == ["pipe.png", "real/up"]
    assert expand_paths(tmp_path) == sorted([*result.good, tmp_path / "pipe.png"])  # loading says why


@pytest.mark.parametrize("paths", [None, 42, [Path("a.png"), None]])
def test_scan_images_refuses_what_is_not_a_path(paths):
    with pytest.raises(TypeError, match="file path|not a file path"):
        scan_images(paths)


# ---------------------------------------------------------------- arguments are checked on entry


@pytest.mark.parametrize("background", ["white", None, (255, 255), (0, 0, 256), (0.5, 0, 0)])
def test_background_must_be_an_rgb_triple(tmp_path, background):
    _cutout().save(tmp_path / "cut.png")
    with pytest.raises((TypeError, ValueError), match="background"):
        load_rgb(tmp_path / "cut.png", background=background)
    with pytest.raises((TypeError, ValueError), match="background"):
        scan_images([tmp_path / "cut.png"], background=background)


@pytest.mark.parametrize(
    "max_pixels, error", [(None, TypeError), ("1e6", TypeError), (float("nan"), ValueError), (0, ValueError)]
)
def test_max_pixels_must_be_a_positive_number(tmp_path, max_pixels, error):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(error, match="max_pixels"):
        load_rgb(tmp_path / "a.png", max_pixels=max_pixels)


def test_max_pixels_above_pillows_own_limit_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # Pillow refuses above twice this
    Image.new("RGB", (50, 50), GREEN).save(tmp_path / "a.png")  # 2,500 pixels
    assert load_rgb(tmp_path / "a.png", max_pixels=10_000).getpixel((0, 0)) == GREEN
    with pytest.raises(ImageLoadError, match="too large"):
        load_rgb(tmp_path / "a.png", max_pixels=2_000)


# ---------------------------------------------------------------- reduced decoding for networks


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour gradients, a disc and noise: compresses and decodes like a photo."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    rgb[(x - width // 3) ** 2 + (y - height // 2) ** 2 < (height // 4) ** 2] = (230, 40, 30)
    noise = np.random.default_rng(seed).integers(-10, 11, (height, width, 1))
    return Image.fromarray(np.clip(rgb + noise, 0, 255).astype(np.uint8))


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    size = (64, 48) if a.width > a.height else (48, 64)
    pa = np.asarray(a.resize(size, Image.Resampling.BOX), dtype=float)
    pb = np.asarray(b.resize(size, Image.Resampling.BOX), dtype=float)
    return float(np.abs(pa - pb).mean())


def test_jpeg_is_decoded_reduced_oriented_and_still_covers_min_side(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    _photo(2016, 1512).save(tmp_path / "phone.jpg", quality=90, exif=exif)
    full = load_rgb(tmp_path / "phone.jpg")
    fast = load_rgb(tmp_path / "phone.jpg", min_side=256)
    assert full.size == (1512, 2016)
    # DCT scaling by 4 (the largest power of two keeping 1512 / s >= 256): 378 x 504, portrait
    assert fast.size == (378, 504)
    assert _mean_difference(full, fast) < 2.0  # the same picture, the same way up


def test_other_formats_are_box_reduced_keeping_min_side(tmp_path):
    _photo(1200, 700).save(tmp_path / "scan.png")
    fast = load_rgb(tmp_path / "scan.png", min_side=200)
    assert fast.size == (400, 234)  # reduced by 3 (700 // 200), partial blocks kept
    assert _mean_difference(load_rgb(tmp_path / "scan.png"), fast) < 2.0
    small = load_rgb(tmp_path / "scan.png", min_side=500)
    assert small.size == (1200, 700)  # 700 // 500 = 1: nothing to gain


def _same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("name", "size", "exif"),
    [
        ("scan.png", (1200, 700), False),  # box-reduced by 2 either way
        ("small.jpg", (500, 300), False),  # short side under 2 x 256: no DCT scaling
        ("cmyk.jpg", (300, 200), False),
        ("cutout.png", (600, 600), False),
        ("phone.jpg", (2016, 1512), True),  # DCT scaling by 4 for the reduced decode
        ("odd.jpg", (1031, 777), False),  # DCT scaling by 2, partial blocks at the edges
    ],
)
def test_one_decode_gives_every_pixel_and_the_network_picture(tmp_path, name, size, exif):
    path = tmp_path / name
    photo = _photo(*size)
    params = {"quality": 90} if name.endswith(".jpg") else {}
    if exif:
        params["exif"] = Image.Exif()
        params["exif"][0x0112] = 6  # stored landscape, shown portrait
    if name.startswith("cmyk"):
        photo = photo.convert("CMYK")
    if name.startswith("cutout"):
        photo = photo.convert("RGBA")
        photo.putalpha(Image.new("L", size, 0).resize(size))
        photo.paste(Image.new("RGBA", (200, 200), (*RED, 255)), (200, 200))
    photo.save(path, **params)
    full, reduced = load_rgb_and_reduced(path, 256)
    assert _same_pixels(full, load_rgb(path))  # what pixel hashes need: every pixel, as before
    assert full.mode == reduced.mode == "RGB"
    fast = load_rgb(path, min_side=256)
    assert reduced.size == fast.size
    if name in ("phone.jpg", "odd.jpg"):
        # block averages after colour conversion instead of DCT scaling: the same picture
        difference = np.abs(np.asarray(reduced, dtype=float) - np.asarray(fast, dtype=float))
        assert difference.mean() < 1.5 and np.percentile(difference, 99) < 8, difference.mean()
        assert not _same_pixels(reduced, fast)  # the check above compares two different decodes
    else:
        assert _same_pixels(reduced, fast)  # no DCT scaling: exactly what load_rgb(min_side) gives


def test_one_decode_refuses_what_load_rgb_refuses_with_the_same_reason(tmp_path):
    _photo(300, 200).save(tmp_path / "good.jpg", quality=90)
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a picture", encoding="utf-8")
    Image.new("L", (6000, 100), 128).save(tmp_path / "strip.png")
    os.mkfifo(tmp_path / "pipe.jpg")
    for name in ("truncated.jpg", "empty.jpg", "notes.png", "strip.png", "pipe.jpg", "missing.jpg"):
        with pytest.raises(ImageLoadError) as expected:
            load_rgb(tmp_path / name, min_side=256, max_aspect_ratio=20)
        with pytest.raises(ImageLoadError) as got:
            load_rgb_and_reduced(tmp_path / name, 256, max_aspect_ratio=20)
        assert (got.value.path, got.value.reason) == (expected.value.path, expected.value.reason)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_rgb_and_reduced(tmp_path / "good.jpg", 256, max_pixels=1000)
    with pytest.raises(ValueError, match="min_side"):
        load_rgb_and_reduced(tmp_path / "good.jpg", None)


@pytest.mark.parametrize("size", [(60_000, 1), (1, 40_000), (2_100, 100)])
def test_extreme_aspect_ratios_are_refused_for_networks_by_name(tmp_path, size):
    Image.new("L", size, 128).save(tmp_path / "strip.png")
    with pytest.raises(ImageLoadError, match=r"extreme aspect ratio: .* more than 20:1") as info:
        load_rgb(tmp_path / "strip.png", min_side=256, max_aspect_ratio=20)
    assert info.value.path.endswith("strip.png")
    assert load_rgb(tmp_path / "strip.png").size == size  # hashing still sees every pixel


def test_in_memory_images_without_pixels_or_too_elongated_are_refused():
    with pytest.raises(ImageLoadError, match=r"no pixels \(0x0\)"):
        as_rgb(Image.new("RGB", (0, 0)), min_side=256, max_aspect_ratio=20)
    with pytest.raises(ImageLoadError, match="extreme aspect ratio"):
        as_rgb(Image.new("RGB", (3000, 10)), min_side=256, max_aspect_ratio=20)
    assert as_rgb(Image.new("RGB", (1024, 600)), min_side=256).size == (512, 300)
