"""embedkit.selfcheck.lesson00: the check of exercise 1 passes the lesson's model answer, says "Not
done yet" while the exercise is untouched, and turns away the mistakes a learner makes. It runs the
suite's backbone on the bundled cat photo and on a photo made from another bundled one."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from solutions import make_my_photo

from embedkit.backbones import Backbone
from embedkit.images import load_rgb
from embedkit.selfcheck import lesson00

EVEN = 0.995  # the model answer's guess: rest at k = 5 when each of 1,000 classes gets 1/1000


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread: on 2 busy cores a forward pass of the small network is then several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def my_photo(tmp_path_factory):
    return make_my_photo(tmp_path_factory.mktemp("lesson00") / "my_photo.jpg")


def top_k_of_with(backbone, load=load_rgb, *, through_as_input=True, rest_as="outside", softmax_over="all"):
    """The lesson's model answer, or one mistake in it."""

    def top_k_of(file, k):
        batch = backbone.preprocess(load(file)).unsqueeze(0)
        with torch.inference_mode():
            x = backbone.as_input(batch) if through_as_input else batch
            logits = backbone.classifier(x).float()[0]
        if softmax_over == "all":
            probs = logits.softmax(dim=0)
            top_probs, top_indices = probs.topk(k)
        else:  # the k largest scores, made into probabilities among themselves
            top_logits, top_indices = logits.topk(k)
            probs = top_probs = top_logits.softmax(dim=0)
        top = [
            (backbone.categories[i], p) for p, i in zip(top_probs.tolist(), top_indices.tolist(), strict=True)
        ]
        rest = 1 - sum(top_probs.tolist()) if rest_as == "outside" else float(probs[k:].sum())
        return top, rest

    return top_k_of


def _opened_as_rgb(file):
    with Image.open(file) as image:
        return image.convert("RGB")


def _alpha_over_white_only(file):  # transparency handled, the EXIF orientation not
    with Image.open(file) as image:
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _untouched():
    """The package's functions are back as they were after a check, passed or failed."""
    return (
        Backbone.top_k_classes.__code__.co_name == "top_k_classes"
        and Backbone.as_input.__name__ == "as_input"
    )


# --------------------------------------------------------------------------- right and not done


def test_the_model_answer_passes_and_gives_the_photos_top_5(backbone, manifest, my_photo, capsys):
    mine = lesson00.check_top_k_of(top_k_of_with(backbone), my_photo, EVEN, backbone, manifest)
    assert "Correct!" in capsys.readouterr().out
    expected = backbone.top_k_classes(backbone.preprocess(load_rgb(my_photo)).unsqueeze(0), k=5)[0]
    assert [name for name, _ in mine] == [name for name, _ in expected]
    assert all(isinstance(p, float) for _, p in mine)
    assert _untouched()


@pytest.mark.parametrize(
    "with_function, with_photo, with_guess",
    [(False, False, False), (True, False, True), (False, True, True), (True, True, False)],
)
def test_untouched_stub_says_not_done(
    backbone, manifest, my_photo, capsys, with_function, with_photo, with_guess
):
    function = top_k_of_with(backbone) if with_function else None
    photo = my_photo if with_photo else None
    guess = EVEN if with_guess else None
    assert lesson00.check_top_k_of(function, photo, guess, backbone, manifest) is None
    out = capsys.readouterr().out
    assert "Not done yet" in out
    assert ("MY_PHOTO" in out) != with_photo and ("top_k_of" in out) != with_function
    assert ("MY_GUESS_REST" in out) != with_guess


# --------------------------------------------------------------------------- wrong answers


@pytest.mark.parametrize(
    "mistake, message",
    [
        ({"rest_as": "numbered k and above"}, "rest is"),
        ({"softmax_over": "the top k"}, "probabilities differ"),
        ({"through_as_input": False}, "backbone.as_input"),
        ({"load": _opened_as_rgb}, "composite transparency over white"),
        ({"load": _alpha_over_white_only}, "EXIF"),
    ],
    ids=["rest-by-index", "softmax-over-top-k", "no-as_input", "no-alpha", "no-exif"],
)
def test_a_mistake_is_refused_with_its_cause(backbone, manifest, my_photo, mistake, message):
    with pytest.raises(AssertionError, match=message):
        lesson00.check_top_k_of(top_k_of_with(backbone, **mistake), my_photo, EVEN, backbone, manifest)
    assert _untouched()


@pytest.mark.parametrize("guess", [1.0, 0.99, 0.5, 99.5, "0.995", True])
def test_a_wrong_guess_of_rest_is_refused(backbone, manifest, my_photo, guess):
    # 1: nothing in the top 5; 0.99: the top 10; 99.5: a percentage; a string or a bool is no number.
    with pytest.raises(AssertionError, match="MY_GUESS_REST"):
        lesson00.check_top_k_of(top_k_of_with(backbone), my_photo, guess, backbone, manifest)


def test_a_guess_within_rounding_passes_and_the_random_network_is_printed(
    backbone, manifest, my_photo, capsys
):
    lesson00.check_top_k_of(
        top_k_of_with(backbone), my_photo, 0.996, backbone, manifest, untrained=backbone
    )  # any network will do
    out = capsys.readouterr().out
    assert "evenly spread 0.995 (your guess 0.996), the random network" in out


def test_a_fixed_k_is_refused(backbone, manifest, my_photo):
    five = top_k_of_with(backbone)
    with pytest.raises(AssertionError, match="k=1: expected 1"):
        lesson00.check_top_k_of(lambda file, k: five(file, 5), my_photo, EVEN, backbone, manifest)


def test_calling_the_package_is_refused_under_any_name(backbone, manifest, my_photo):
    kept = Backbone.top_k_classes  # a name kept before the check runs

    def lazy(file, k):
        top = kept(backbone, backbone.preprocess(load_rgb(file)).unsqueeze(0), k=k)[0]
        return top, 1 - sum(p for _, p in top)

    with pytest.raises(AssertionError, match="not call top_k_classes"):
        lesson00.check_top_k_of(lazy, my_photo, EVEN, backbone, manifest)
    assert _untouched()
    assert backbone.top_k_classes(backbone.preprocess(load_rgb(my_photo)).unsqueeze(0), k=1)[0]


def test_a_bundled_image_or_a_packaged_photo_is_not_the_learners(backbone, manifest, tmp_path):
    answer = top_k_of_with(backbone)
    cut_out = manifest.query("label == 'coffee' and transformation == 'rgba_cutout'")["file"].iloc[0]
    with pytest.raises(AssertionError, match="looks like the bundled"):
        lesson00.check_top_k_of(answer, cut_out, EVEN, backbone, manifest)
    original = manifest.query("label == 'cat' and transformation == 'original'")["file"].iloc[0]
    with Image.open(original) as image:  # a copy somewhere else, a little smaller
        ImageOps.scale(image.convert("RGB"), 0.8).save(tmp_path / "renamed.jpg", quality=85)
    with pytest.raises(AssertionError, match="looks like the bundled"):
        lesson00.check_top_k_of(answer, tmp_path / "renamed.jpg", EVEN, backbone, manifest)
    packaged = next(
        Path(sysconfig.get_paths()["purelib"]).glob("PIL/*.py")
    )  # any file will do: refused by place
    with pytest.raises(AssertionError, match="installed package"):
        lesson00.check_top_k_of(answer, packaged, EVEN, backbone, manifest)
    with pytest.raises(AssertionError, match="no file at"):
        lesson00.check_top_k_of(answer, tmp_path / "not_there.jpg", EVEN, backbone, manifest)


@pytest.mark.parametrize("spread", [0, 2])
def test_a_nearly_one_colour_picture_is_refused(backbone, manifest, tmp_path, spread):
    # A blank screenshot (spread 0) or a plain picture with faint noise: no photo to read a top 5 from.
    gray = 128 + np.random.default_rng(0).integers(-spread, spread + 1, size=(240, 320, 3))
    Image.fromarray(gray.astype(np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(AssertionError, match=r"\(nearly\) one colour"):
        lesson00.check_top_k_of(top_k_of_with(backbone), tmp_path / "blank.png", EVEN, backbone, manifest)
