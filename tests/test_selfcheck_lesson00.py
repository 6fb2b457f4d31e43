"""embedkit.selfcheck.lesson00: the checks of the prediction and of exercise 1 pass the lesson's model
answers, say "Not done yet" while they are untouched, and turn away the mistakes a learner makes. It runs the
suite's backbone on the bundled cat photo and on a real photo no bundled file is cut from; what it takes
for the learner's own photo is tried on more real photos and on images that are none."""

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


def top_k_of_with(
    backbone,
    load=load_rgb,
    *,
    through_as_input=True,
    rest_as="outside",
    softmax_over="all",
    own_classifier=True,
):
    """The lesson's model answer, or one mistake in it."""

    def top_k_of(file, k, net=backbone):
        batch = net.preprocess(load(file)).unsqueeze(0)
        with torch.inference_mode():
            x = net.as_input(batch) if through_as_input else batch
            logits = (net if own_classifier else backbone).classifier(x).float()[0]
        if softmax_over == "all":
            probs = logits.softmax(dim=0)
            top_probs, top_indices = probs.topk(k)
        else:  # the k largest scores, made into probabilities among themselves
            top_logits, top_indices = logits.topk(k)
            probs = top_probs = top_logits.softmax(dim=0)
        top = [(net.categories[i], p) for p, i in zip(top_probs.tolist(), top_indices.tolist(), strict=True)]
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
    mine = lesson00.check_top_k_of(top_k_of_with(backbone), my_photo, backbone, manifest)
    assert "Correct!" in capsys.readouterr().out
    expected = backbone.top_k_classes(backbone.preprocess(load_rgb(my_photo)).unsqueeze(0), k=5)[0]
    assert [name for name, _ in mine] == [name for name, _ in expected]
    assert all(isinstance(p, float) for _, p in mine)
    assert _untouched()


def test_untouched_stub_says_not_done(backbone, manifest, my_photo, capsys):
    assert lesson00.check_top_k_of(None, my_photo, backbone, manifest) is None
    lesson00.check_guess_rest(None, 1000)
    out = capsys.readouterr().out
    assert out.count("Not done yet") == 2 and "top_k_of" in out and "MY_GUESS_REST" in out


def test_without_a_photo_the_function_is_still_checked_on_the_cat_files(backbone, manifest, capsys):
    assert lesson00.check_top_k_of(top_k_of_with(backbone), None, backbone, manifest) is None
    out = capsys.readouterr().out
    assert "Correct on the cat files" in out and "set MY_PHOTO" in out and "Not done yet" not in out
    with pytest.raises(AssertionError, match="rest is"):  # a wrong function is refused all the same
        lesson00.check_top_k_of(
            top_k_of_with(backbone, rest_as="numbered k and above"), None, backbone, manifest
        )
    with pytest.raises(AssertionError, match="composite transparency over white"):
        lesson00.check_top_k_of(top_k_of_with(backbone, load=_opened_as_rgb), None, backbone, manifest)
    assert _untouched()


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
        lesson00.check_top_k_of(top_k_of_with(backbone, **mistake), my_photo, backbone, manifest)
    assert _untouched()


@pytest.mark.parametrize("guess", [1.0, 0.99, 0.5, 99.5, 0.005, "0.995", True])
def test_a_wrong_guess_of_rest_is_refused(guess):
    # 1: nothing in the top 5; 0.99: the top 10; 99.5: a percentage; 0.005: the top 5's share, not the
    # rest; a string or a bool is no number.
    with pytest.raises(AssertionError, match="MY_GUESS_REST"):
        lesson00.check_guess_rest(guess, 1000)


def test_a_guess_within_rounding_passes(capsys):
    lesson00.check_guess_rest(0.996, 1000)
    out = capsys.readouterr().out
    assert "Correct! evenly spread, 0.995 lies outside the top 5 (your guess 0.996)" in out


def test_a_function_that_ignores_the_net_it_is_given_is_refused(backbone, manifest):
    model = top_k_of_with(backbone)
    with pytest.raises(AssertionError, match="takes the network as a third argument"):
        lesson00.check_top_k_of(lambda file, k: model(file, k), None, backbone, manifest)
    with pytest.raises(AssertionError, match=r"given \(net\) for everything"):
        lesson00.check_top_k_of(lambda file, k, net=None: model(file, k), None, backbone, manifest)
    # net's class names, but backbone's classifier: the names come right, the probabilities do not
    with pytest.raises(AssertionError, match=r"probabilities differ .*given \(net\) for everything"):
        lesson00.check_top_k_of(top_k_of_with(backbone, own_classifier=False), None, backbone, manifest)
    assert _untouched()


def test_a_guess_shown_by_the_random_network_is_not_advertised(capsys):
    lesson00.check_guess_rest(None, 1000)
    assert "predict before you run the random network" in capsys.readouterr().out


def test_a_batch_without_its_batch_axis_is_refused_with_a_hint(backbone, manifest, my_photo):
    def no_unsqueeze(file, k):
        backbone.classifier(backbone.as_input(backbone.preprocess(load_rgb(file))))

    with pytest.raises(AssertionError, match=r"unsqueeze\(0\) before as_input"):
        lesson00.check_top_k_of(no_unsqueeze, my_photo, backbone, manifest)
    assert _untouched()


def test_a_fixed_k_is_refused(backbone, manifest, my_photo):
    five = top_k_of_with(backbone)
    with pytest.raises(AssertionError, match="k=1: expected 1"):
        lesson00.check_top_k_of(
            lambda file, k, net=backbone: five(file, 5, net), my_photo, backbone, manifest
        )


def test_calling_the_package_is_refused_under_any_name(backbone, manifest, my_photo):
    kept = Backbone.top_k_classes  # a name kept before the check runs

    def lazy(file, k):
        top = kept(backbone, backbone.preprocess(load_rgb(file)).unsqueeze(0), k=k)[0]
        return top, 1 - sum(p for _, p in top)

    with pytest.raises(AssertionError, match="not call top_k_classes"):
        lesson00.check_top_k_of(lazy, my_photo, backbone, manifest)
    assert _untouched()
    assert backbone.top_k_classes(backbone.preprocess(load_rgb(my_photo)).unsqueeze(0), k=1)[0]


def test_a_bundled_image_or_a_packaged_photo_is_not_the_learners(backbone, manifest, tmp_path):
    answer = top_k_of_with(backbone)
    cut_out = manifest.query("label == 'coffee' and transformation == 'rgba_cutout'")["file"].iloc[0]
    with pytest.raises(AssertionError, match="looks like the bundled"):
        lesson00.check_top_k_of(answer, cut_out, backbone, manifest)
    original = manifest.query("label == 'cat' and transformation == 'original'")["file"].iloc[0]
    with Image.open(original) as image:  # a copy somewhere else, a little smaller
        ImageOps.scale(image.convert("RGB"), 0.8).save(tmp_path / "renamed.jpg", quality=85)
    with pytest.raises(AssertionError, match="looks like the bundled"):
        lesson00.check_top_k_of(answer, tmp_path / "renamed.jpg", backbone, manifest)
    packaged = next(
        Path(sysconfig.get_paths()["purelib"]).glob("PIL/*.py")
    )  # any file will do: refused by place
    with pytest.raises(AssertionError, match="installed package"):
        lesson00.check_top_k_of(answer, packaged, backbone, manifest)
    with pytest.raises(AssertionError, match="no file at"):
        lesson00.check_top_k_of(answer, tmp_path / "not_there.jpg", backbone, manifest)


def _saved(picture: Image.Image, folder: Path, name: str) -> Path:
    picture.save(folder / name, quality=85)
    return folder / name


def _bundled(manifest, group: str) -> Image.Image:
    return load_rgb(manifest.query("group == @group and transformation == 'original'")["file"].iloc[0])


_NOISE = np.random.default_rng(0)
NOT_PHOTOS = {  # what a learner who takes no photo may make in a line or two, and what the check says
    "blank": (lambda m: Image.new("RGB", (320, 240), (128, 128, 128)), r"\(nearly\) one colour"),
    "faint noise on gray": (
        lambda m: Image.fromarray((128 + _NOISE.integers(-2, 3, (240, 320, 3))).astype(np.uint8)),
        r"\(nearly\) one colour",
    ),
    "gray gradient": (
        lambda m: Image.fromarray(np.tile(np.linspace(0, 255, 300), (300, 1)).astype(np.uint8)),
        "even shading",
    ),
    "colour gradient": (
        lambda m: Image.fromarray(
            np.stack(
                [np.tile(np.linspace(0, 255, 300), (200, 1)).T[:, :200]] * 2 + [np.full((300, 200), 90.0)], -1
            ).astype(np.uint8)
        ),
        "even shading",
    ),
    "noise": (lambda m: Image.fromarray(_NOISE.integers(0, 256, (300, 300, 3), dtype=np.uint8)), "noise"),
    "noise, gray": (lambda m: Image.fromarray(_NOISE.integers(0, 256, (480, 640), dtype=np.uint8)), "noise"),
    "dahlia upside down, middle 2/3, turned 15°": (
        lambda m: ImageOps.flip(_bundled(m, "dahlia")).crop((37, 37, 187, 187)).rotate(15),
        "looks like the bundled dahlia",
    ),
    "helmet turned a quarter and mirrored": (
        lambda m: ImageOps.mirror(_bundled(m, "astronaut-helmet").rotate(90, expand=True)),
        "looks like the bundled astronaut-helmet",
    ),
    "cat mirrored, turned 10°, enlarged": (
        lambda m: ImageOps.mirror(_bundled(m, "chelsea-cat")).rotate(-10).resize((900, 900)),
        "looks like the bundled chelsea-cat",
    ),
    "pagoda brightened, re-encoded badly": (
        lambda m: Image.eval(_bundled(m, "china-pagoda"), lambda v: min(255, int(v * 1.3))),
        "looks like the bundled china-pagoda",
    ),
}


@pytest.mark.parametrize("kind", list(NOT_PHOTOS))
def test_an_image_that_is_no_photo_of_ones_own_is_refused(manifest, tmp_path, kind):
    make, message = NOT_PHOTOS[kind]
    with pytest.raises(AssertionError, match=message):
        lesson00._refuse_bundled(_saved(make(manifest), tmp_path, "mine.jpg"), manifest)


def _real_photos():
    """Real photos that no bundled file is cut from, as scikit-image and matplotlib ship them."""
    import matplotlib
    from skimage import data

    sample = Path(matplotlib.get_data_path(), "sample_data", "Minduka_Present_Blue_Pack.png")
    return {
        "motorcycle": lambda: Image.fromarray(data.stereo_motorcycle()[1]),
        "clock": lambda: Image.fromarray(data.clock()),
        "moon": lambda: Image.fromarray(data.moon()),
        "page of text": lambda: Image.fromarray(data.page()),
        "eye's blood vessels": lambda: Image.fromarray(data.microaneurysms()),
        "gift box": lambda: Image.open(sample).convert("RGB"),
    }


@pytest.mark.parametrize("kind", list(_real_photos()))
def test_a_real_photo_is_taken(manifest, tmp_path, kind):
    photo = _real_photos()[kind]()
    lesson00._refuse_bundled(_saved(photo, tmp_path, "mine.jpg"), manifest)  # raises if refused
    lesson00._refuse_bundled(_saved(ImageOps.mirror(photo), tmp_path, "mine.png"), manifest)


@pytest.mark.parametrize("kind", ["chelsea", "coffee"])
def test_the_photo_a_bundled_image_is_cut_from_gets_a_notice_not_a_refusal(manifest, tmp_path, capsys, kind):
    # the uncropped photo, as a learner's own photo of the same subject might look: much alike, not a copy
    from skimage import data

    photo = Image.fromarray(getattr(data, kind)())
    lesson00._refuse_bundled(_saved(photo, tmp_path, "mine.jpg"), manifest)  # raises if refused
    assert "looks much like the bundled" in capsys.readouterr().out
