"""embedkit.selfcheck.lesson02: each check passes the lesson's model answer, stands in while the
exercise returns None, and turns away the mistakes a learner makes. Small hand-made networks and
images, except exercise 4, which runs the lessons' backbone."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import efficientnet_b0

import embedkit.images
from embedkit.embeddings import embed_images
from embedkit.images import load_rgb
from embedkit.selfcheck import is_stand_in, lesson02

# --------------------------------------------------------------------------- exercise 1


def train_but_frozen_batchnorm(net):
    net.train()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return net


def only_batchnorm2d(net):
    net.train()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    return net


def momentum_zero(net):
    net.train()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0
    return net


def flag_only(net):
    net.eval()
    net.training = True
    return net


def batchnorm_removed(net):
    for name, module in net.named_children():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
    return net.train()


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    batches = [torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(k)) for k in range(5)]
    return net.eval(), batches


def test_frozen_batchnorm_right_answer(small_net, capsys):
    net, batches = small_net
    assert lesson02.check_train_but_frozen_batchnorm(train_but_frozen_batchnorm, net, batches) is (
        train_but_frozen_batchnorm
    )
    assert "Correct!" in capsys.readouterr().out


def test_frozen_batchnorm_not_done(small_net, capsys):
    net, batches = small_net
    assert lesson02.check_train_but_frozen_batchnorm(None, net, batches) is None
    assert "Not done yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (only_batchnorm2d, "BatchNorm1d"),
        (momentum_zero, "differs from eval mode"),
        (flag_only, "not in train mode"),
        (batchnorm_removed, "differs from eval mode"),
        (lambda net: None, "return the network"),
    ],
)
def test_frozen_batchnorm_wrong_answers(small_net, wrong, message):
    net, batches = small_net
    with pytest.raises(AssertionError, match=message):
        lesson02.check_train_but_frozen_batchnorm(wrong, net, batches)


# --------------------------------------------------------------------------- exercise 2


@pytest.fixture(scope="module")
def batch():
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def efficientnet_answer(batch, head="classifier", mode="eval", context=torch.inference_mode):
    fc_net = efficientnet_b0(weights=None).eval()
    fc_net.fc = nn.Identity()
    with torch.inference_mode():
        fc_output = fc_net(batch[:2])
    eff = efficientnet_b0(weights=None).eval()
    if head == "classifier":
        eff.classifier = nn.Identity()
    elif head == "fc":
        eff.fc = nn.Identity()
    elif head == "sequential":
        eff = nn.Sequential(*list(eff.children())[:-2], nn.Flatten())
    if mode == "train":
        eff.train()
    with context():
        eff_embedding = eff(batch[:2])
    return eff, eff_embedding, fc_net, fc_output, "classifier"


def test_efficientnet_right_answer(batch, capsys):
    lesson02.check_efficientnet_head(*efficientnet_answer(batch), batch)
    assert "Correct!" in capsys.readouterr().out


def test_efficientnet_fc_output_under_no_grad_is_accepted(batch, capsys):
    eff, eff_embedding, fc_net, _, head_name = efficientnet_answer(batch)
    with torch.no_grad():  # the measurement is about the shape and the numbers, not the context
        fc_output = fc_net(batch[:2])
    lesson02.check_efficientnet_head(eff, eff_embedding, fc_net, fc_output, head_name, batch)
    assert "Correct!" in capsys.readouterr().out


def test_efficientnet_not_done(batch, capsys):
    lesson02.check_efficientnet_head(None, None, None, None, None, batch)
    assert "Not done yet" in capsys.readouterr().out


def test_efficientnet_wrong_measurements(batch):
    eff, eff_embedding, fc_net, fc_output, head_name = efficientnet_answer(batch)

    def check(net, output):
        lesson02.check_efficientnet_head(eff, eff_embedding, net, output, head_name, batch)

    for guess in [(2, 1000), (2, 1280)]:  # shapes typed in, not measured
        with pytest.raises(AssertionError, match="not a measurement"):
            check(fc_net, guess)
    with torch.inference_mode():
        made_up = torch.zeros(2, 1000)  # the right shape, an inference tensor, but not measured
        other = efficientnet_b0(weights=None).eval()(batch[:2])  # another fresh network's output
    for guess in [made_up, other, eff_embedding]:
        with pytest.raises(AssertionError, match="not what fc_net gives"):
            check(fc_net, guess)
    plain = efficientnet_b0(weights=None).eval()  # measured without setting .fc
    with torch.inference_mode():
        plain_output = plain(batch[:2])
    with pytest.raises(AssertionError, match="no child fc"):
        check(plain, plain_output)
    with pytest.raises(AssertionError, match="fc_net is a NoneType"):
        check(None, fc_output)
    with pytest.raises(AssertionError, match="fc_net is eff"):
        lesson02.check_efficientnet_head(eff, eff_embedding, eff, fc_output, head_name, batch)
    headless = copy.deepcopy(fc_net)  # the real head removed on the probed network too
    headless.classifier = nn.Identity()
    with pytest.raises(AssertionError, match="change nothing else"):
        check(headless, fc_output)
    for guess in ["fc"]:
        with pytest.raises(AssertionError, match="head_name") as raised:
            lesson02.check_efficientnet_head(eff, eff_embedding, fc_net, fc_output, guess, batch)
        assert "classifier" not in str(raised.value)  # the message does not give the answer away


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"head": "fc"}, "the head is still there"),  # eff.fc = Identity and nothing else
        ({"mode": "train"}, "train mode"),
        ({"context": torch.no_grad}, "inference_mode"),
        ({"head": "sequential"}, "don't wrap it"),
    ],
)
def test_efficientnet_wrong_answers(batch, kwargs, message):
    with pytest.raises(AssertionError, match=message):
        lesson02.check_efficientnet_head(*efficientnet_answer(batch, **kwargs), batch)


# --------------------------------------------------------------------------- exercise 3


def composite(image, background):
    pixels = np.asarray(image)
    if image.mode == "RGBA":
        rgb, alpha = pixels[..., :3], pixels[..., 3]
    elif image.mode == "LA":
        rgb, alpha = np.repeat(pixels[..., :1], 3, axis=2), pixels[..., 1]
    elif image.mode == "P":  # opaque everywhere when there is no transparent entry
        palette = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
        rgb = palette[pixels]
        alpha = np.where(pixels == image.info.get("transparency", -1), 0, 255)
    else:
        raise ValueError(f"mode {image.mode} has no transparency to composite")
    a = alpha[..., None] / 255.0
    return np.rint(a * rgb + (1 - a) * np.asarray(background, dtype=np.float64)).astype(np.uint8)


def composite_truncating(image, background):
    pixels = np.asarray(image)
    if image.mode != "RGBA":
        return composite(image, background)
    a = pixels[..., 3:] / 255.0
    return (a * pixels[..., :3] + (1 - a) * np.asarray(background)).astype(np.uint8)


def composite_rgba_only(image, background):  # forgets the palette's transparent entry
    if image.mode == "P":
        palette = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
        return palette[np.asarray(image)]
    return composite(image, background)


def composite_palette_needs_transparency(image, background):  # raises for a plain palette image
    if image.mode == "P" and "transparency" not in image.info:
        raise ValueError(f"mode {image.mode}: no transparency this function knows")
    return composite(image, background)


def composite_palette_entry_0_default(image, background):  # takes entry 0 as transparent when none is set
    if image.mode == "P" and "transparency" not in image.info:
        image.info["transparency"] = 0
    return composite(image, background)


def composite_always_white(image, background):
    return composite(image, (255, 255, 255))


def composite_by_convert(image, background):
    return np.asarray(image.convert("RGB"))


def composite_by_alpha_composite(image, background):  # Pillow's formula in place of the lesson's
    if image.mode != "RGBA":
        return composite(image, background)
    under = Image.new("RGBA", image.size, tuple(background) + (255,))
    return np.asarray(Image.alpha_composite(under, image))[..., :3]


def composite_by_paste(image, background):
    if image.mode != "RGBA":
        return composite(image, background)
    under = Image.new("RGB", image.size, tuple(background))
    under.paste(image, mask=image.getchannel("A"))
    return np.asarray(under)


def composite_by_package(image, background):
    return np.asarray(embedkit.images.to_rgb(image, background))


def composite_alpha_swapped(image, background):
    if image.mode != "LA":
        return composite(image, background)
    gray, alpha = np.asarray(image)[..., 1], np.asarray(image)[..., 0]
    a = alpha[..., None] / 255.0
    return np.rint(a * gray[..., None] + (1 - a) * np.asarray(background, dtype=np.float64)).astype(np.uint8)


def test_composite_right_answer(capsys):
    assert lesson02.check_composite(composite) is composite
    assert "Correct!" in capsys.readouterr().out
    Image.new("RGBA", (2, 2)).convert("RGB")  # Pillow's convert is back


def test_composite_not_done(capsys):
    fallback = lesson02.check_composite(None)
    assert is_stand_in(fallback) and "Not done yet" in capsys.readouterr().out
    image = Image.new("LA", (3, 2), (100, 0))
    assert (fallback(image, (10, 20, 30)) == [10, 20, 30]).all()
    assert lesson02.check_composite(fallback) is fallback  # run twice: still not done


@pytest.mark.parametrize(
    "wrong, message",
    [
        (composite_truncating, "levels off on average"),
        (composite_rgba_only, "P image"),
        (composite_palette_needs_transparency, r"a P \(no transparency\) image.*raised ValueError"),
        (composite_palette_entry_0_default, r"P \(no transparency\) image, background"),
        (composite_always_white, "background"),
        (composite_by_convert, "convert, alpha_composite, composite and paste are switched off"),
        (composite_by_alpha_composite, "alpha_composite, composite and paste are switched off"),
        (composite_by_paste, "alpha_composite, composite and paste are switched off"),
        (composite_by_package, "compositing itself"),
        (composite_alpha_swapped, "LA image"),
    ],
)
def test_composite_wrong_answers(wrong, message):
    with pytest.raises(AssertionError, match=message):
        lesson02.check_composite(wrong)
    assert embedkit.images.to_rgb(Image.new("LA", (2, 2))).mode == "RGB"  # switched on again
    under = Image.new("RGBA", (2, 2), (0, 0, 0, 255))
    Image.alpha_composite(under, Image.new("RGBA", (2, 2)))  # Pillow's compositing is back
    under.paste(Image.new("RGB", (2, 2)), mask=Image.new("L", (2, 2)))


# --------------------------------------------------------------------------- exercise 4


@pytest.fixture(scope="module")
def check_files(tmp_path_factory):
    """Seven small hand-made PNGs, the last an RGBA cut-out that stores black under its transparent half."""
    folder = tmp_path_factory.mktemp("check_files")
    rng = np.random.default_rng(4)
    files = []
    for k in range(7):
        ramp = np.linspace(0, 255, 96)[None, :, None] * rng.uniform(0.2, 1, 3)
        pixels = (ramp + rng.integers(0, 60, (72, 96, 3))).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        if k == 6:
            alpha = np.where(np.arange(96) < 48, 255, 0).astype(np.uint8) * np.ones((72, 1), np.uint8)
            pixels[alpha == 0] = 0
            image = Image.fromarray(np.dstack([pixels, alpha]), mode="RGBA")
        files.append(folder / f"image_{k}.png")
        image.save(files[-1])
    return files


def embed_in_batches(files, backbone, batch_size):
    rows = []
    for start in range(0, len(files), batch_size):
        batch = torch.stack([backbone.preprocess(load_rgb(f)) for f in files[start : start + batch_size]])
        with torch.inference_mode():
            rows.append(backbone.model(backbone.as_input(batch)).float().cpu().numpy())
    return np.concatenate(rows)


def embed_convert_rgb(files, backbone, batch_size):
    rows = []
    for start in range(0, len(files), batch_size):
        images = [Image.open(f).convert("RGB") for f in files[start : start + batch_size]]
        batch = torch.stack([backbone.preprocess(image) for image in images])
        with torch.inference_mode():
            rows.append(backbone.model(backbone.as_input(batch)).float().cpu().numpy())
    return np.concatenate(rows)


def embed_without_as_input(files, backbone, batch_size):  # right on a CPU, but skips backbone.as_input
    rows = []
    for start in range(0, len(files), batch_size):
        batch = torch.stack([backbone.preprocess(load_rgb(f)) for f in files[start : start + batch_size]])
        with torch.inference_mode():
            rows.append(backbone.model(batch.to(backbone.device)).float().cpu().numpy())
    return np.concatenate(rows)


def embed_one_batch(files, backbone, batch_size):
    return embed_in_batches(files, backbone, len(files))


def embed_with_forward(files, backbone, batch_size):
    batch = torch.stack([backbone.preprocess(load_rgb(f)) for f in files])
    with torch.inference_mode():
        return backbone.model.forward(backbone.as_input(batch)).float().cpu().numpy()


def embed_by_package(files, backbone, batch_size):
    return embed_images(files, backbone, batch_size=batch_size, progress=False).vectors


def test_embed_right_answer_and_not_done(backbone, check_files, capsys):
    assert lesson02.check_embed_in_batches(embed_in_batches, backbone, check_files) is embed_in_batches
    assert "Correct!" in capsys.readouterr().out
    fallback = lesson02.check_embed_in_batches(None, backbone, check_files)
    assert is_stand_in(fallback) and "Not done yet" in capsys.readouterr().out
    assert fallback(check_files[:2], backbone, 3).shape == (2, backbone.dim)  # the package's loop is back


@pytest.mark.parametrize(
    "wrong, message",
    [
        (embed_convert_rgb, "image_6.png"),
        (embed_without_as_input, "as_input"),
        (embed_one_batch, "images per forward pass"),
        (embed_with_forward, r"not backbone.model.forward"),
        (embed_by_package, "run the loop itself"),
    ],
)
def test_embed_wrong_answers(backbone, check_files, wrong, message):
    with pytest.raises(AssertionError, match=message):
        lesson02.check_embed_in_batches(wrong, backbone, check_files)


def test_embed_on_the_lessons_files(backbone, manifest):
    """The lesson's own seven files: six photos, then the cat cut-out, a fifth of it transparent with
    black stored underneath. Dropping its alpha is refused by name."""
    originals = manifest[manifest["transformation"] == "original"]
    cutouts = manifest[manifest["transformation"] == "rgba_cutout"]
    files = [*originals["file"].head(6), cutouts.query("label == 'cat'")["file"].iloc[0]]
    assert lesson02.check_embed_in_batches(embed_in_batches, backbone, files) is embed_in_batches
    with pytest.raises(AssertionError, match=r"chelsea-cat_rgba_cutout.png is closer to Image.open"):
        lesson02.check_embed_in_batches(embed_convert_rgb, backbone, files)


def test_a_wrong_row_is_named(backbone, check_files):
    def nan_row(files, backbone, batch_size):
        rows = embed_in_batches(files, backbone, batch_size)
        rows[-1] = np.nan
        return rows

    with pytest.raises(AssertionError, match=Path(check_files[-1]).name):
        lesson02.check_embed_in_batches(nan_row, backbone, check_files)
