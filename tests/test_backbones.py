"""ResNet mechanics on an untrained ResNet-18, every network entry, and load_backbone's weight resolution."""

import dataclasses
import socket
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import resnet18

from embedkit import backbones
from embedkit.backbones import (
    NETWORKS,
    BackboneUnavailableError,
    StandInWarning,
    calibration,
    load_backbone,
    make_backbone,
    weights_cache_path,
)
from embedkit.images import load_rgb

# ------------------------------------- the package's ResNet-18 backbone (mechanics: no weights needed)


@pytest.fixture(scope="module")
def resnet_backbone():
    """The package's ResNet-18 backbone with random weights: its mechanics need no training."""
    torch.manual_seed(0)
    net = NETWORKS["resnet18"]
    return make_backbone(net, net.build(), device="cpu")


def _first_row_in_two_batches(model, train: bool):
    torch.manual_seed(1)
    image = torch.randn(1, 3, 224, 224)
    batch_a = torch.cat([image, torch.randn(3, 3, 224, 224)])
    batch_b = torch.cat([image, torch.randn(3, 3, 224, 224) * 3 + 1])
    model.train(train)
    try:
        with torch.no_grad():
            return model(batch_a)[0], model(batch_b)[0]
    finally:
        model.eval()


def test_the_backbone_comes_in_eval_mode_so_a_row_does_not_depend_on_its_batch(resnet_backbone):
    assert not resnet_backbone.model.training
    assert not any(m.training for m in resnet_backbone.model.modules())
    a, b = _first_row_in_two_batches(resnet_backbone.model, train=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # The control: the same model in train mode normalises with each batch's own statistics.
    a, b = _first_row_in_two_batches(resnet_backbone.model, train=True)
    assert (a - b).abs().max() > 1e-2


def test_an_rgba_file_reaches_the_model_as_three_channels(resnet_backbone, tmp_path):
    Image.new("RGBA", (64, 48), (10, 200, 30, 128)).save(tmp_path / "cutout.png")
    x = resnet_backbone.preprocess(load_rgb(tmp_path / "cutout.png"))
    assert x.shape[0] == 3
    with torch.inference_mode():
        assert resnet_backbone.model(resnet_backbone.as_input(x[None])).shape == (1, 512)
        with pytest.raises(RuntimeError, match="channels"):  # what a raw 4-channel tensor meets
            resnet_backbone.model(torch.randn(1, 4, 224, 224))


# ---------------------------------------------------------------- every network entry


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_entry_builds_a_backbone_of_its_declared_shape(name):
    """Architecture, head, embedding size, input size and calibration agree with the entry."""
    net = NETWORKS[name]
    torch.manual_seed(0)
    backbone = make_backbone(net, net.build(), device="cpu")  # random weights: mechanics only
    assert isinstance(getattr(backbone.model, net.head), nn.Identity)
    assert not isinstance(getattr(backbone.classifier, net.head), nn.Identity)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 451, 3), dtype=np.uint8))
    x = backbone.preprocess(picture)
    assert x.shape == (3, net.input_size, net.input_size) and x.dtype == torch.float32
    with torch.inference_mode():
        out = backbone.model(backbone.as_input(x[None].repeat(2, 1, 1, 1)))
        logits = backbone.classifier(backbone.as_input(x[None]))
    assert out.shape == (2, net.dim)  # the declared size is what the network really outputs
    assert logits.shape == (1, len(backbone.categories)) == (1, 1000)
    assert not backbone.model.training and backbone.batch_size == net.cpu_batch_size
    stored = calibration(name).threshold
    assert 0 < stored < 1 and backbone.near_duplicate_threshold == stored


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_entries_preprocess_as_their_weights_do(name):
    weights = NETWORKS[name].weights.weights
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    torch.testing.assert_close(NETWORKS[name].preprocess()(picture), weights.transforms()(picture))
    assert weights_cache_path(name).name == NETWORKS[name].weights.weights.url.rsplit("/", 1)[-1]


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (256, 256), (292, 500), (50, 70), (1001, 257)])
@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_offline_preprocessing_is_torchvisions_bit_for_bit(name, size):
    """Made without torchvision, the same tensor as torchvision's pipeline of the same steps."""
    from torchvision import transforms

    mine = NETWORKS[name].preprocess()
    theirs = transforms.Compose(
        [
            transforms.Resize(mine.resize_size, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(mine.crop),
            transforms.PILToTensor(),
            transforms.ConvertImageDtype(torch.float32),
            transforms.Normalize(mine.mean, mine.std),
        ]
    )
    h, w = size[1], size[0]
    picture = Image.fromarray(np.random.default_rng(w * h).integers(0, 256, (h, w, 3), dtype=np.uint8))
    got, expected = mine(picture), theirs(picture)
    assert got.shape == (3, mine.crop, mine.crop) and torch.equal(got, expected)
    assert got.stride() == expected.stride()  # the same memory layout too


def test_torchvision_weights_are_named_as_torchvision_names_them():
    from torchvision import models

    for name, enum in (
        ("resnet18", models.ResNet18_Weights.IMAGENET1K_V1),
        ("resnet50", models.ResNet50_Weights.IMAGENET1K_V2),
    ):
        weights = NETWORKS[name].weights
        assert weights.weights is enum and weights.url == enum.url
    assert list(backbones.ImagenetCategories()) == models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


OFFLINE_WITHOUT_TORCHVISION = """
import sys, warnings
warnings.simplefilter("ignore")
import embedkit.curate
from embedkit.backbones import load_backbone
backbone = load_backbone(sys.argv[1], device="cpu")
print("torchvision" in sys.modules)
print(backbone.categories[281], len(backbone.categories))
"""


def test_an_offline_network_loads_without_torchvision():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", OFFLINE_WITHOUT_TORCHVISION, "efficientnet_lite0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["False", "tabby 1000"]  # the class names still come when asked


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_offline_networks_are_genuinely_pretrained(name, manifest):
    """Random weights cannot pass: the cat photo must land in a cat class of the 1000."""
    backbone = load_backbone(name, device="cpu")
    assert backbone.name == name and not backbone.is_standin
    cat = manifest.query("label == 'cat' and transformation == 'original'")["file"].iloc[0]
    top5 = [c for c, _ in backbone.top_k_classes(backbone.preprocess(load_rgb(cat))[None], k=5)[0]]
    assert {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"} & set(top5), top5


# ---------------------------------------------------------------- load_backbone


def test_offline_falls_back_to_the_standin_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    with pytest.warns(StandInWarning) as record:
        backbone = load_backbone("resnet18", device="cpu", allow_download=False)
    assert len(record) == 1
    message = str(record[0].message)
    assert backbone.is_standin and backbone.name == "efficientnet_lite0"
    assert backbone.requested == "resnet18" and backbone.dim == 1280
    assert len(message.splitlines()) == 1
    assert "not reachable" in message and "EfficientNet-Lite0" in message
    assert str(weights_cache_path("resnet18")) in message and "resnet18-f37072fd.pth" in message
    assert not backbone.model.training and not backbone.classifier.training
    with torch.inference_mode():
        assert backbone.model(torch.zeros(2, 3, 224, 224)).shape == (2, 1280)
        assert backbone.classifier(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_cached_checkpoint_is_used_before_any_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights_cache_path("resnet18")
    assert path.is_relative_to(tmp_path)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), path)
    monkeypatch.setattr(backbones, "_download", lambda *a: pytest.fail("must not download"))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stand-in warning, no other warning
        backbone = load_backbone("resnet18", device="cpu")
    assert not backbone.is_standin and backbone.name == "resnet18" and backbone.dim == 512
    assert str(path) in backbone.weights
    torch.testing.assert_close(backbone.classifier.fc.weight, reference.fc.weight)
    assert isinstance(backbone.model.fc, nn.Identity)
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert backbone.model(x).shape == (2, 512)
        reference.eval()
        reference.fc = nn.Identity()
        torch.testing.assert_close(backbone.model(x), reference(x))


def test_corrupt_cached_checkpoint_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights_cache_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    with pytest.raises(BackboneUnavailableError, match="cannot be loaded.*delete the file"):
        load_backbone("resnet18", device="cpu")


def test_a_bug_surfaces_instead_of_falling_back(tmp_path, monkeypatch):
    def broken_build():
        raise ZeroDivisionError("a bug in the builder")

    monkeypatch.setitem(NETWORKS, "resnet18", dataclasses.replace(NETWORKS["resnet18"], build=broken_build))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights_cache_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(resnet18(weights=None).state_dict(), path)
    with pytest.raises(ZeroDivisionError):
        load_backbone("resnet18", device="cpu")


class _Server:
    """A local HTTP server on a free loopback port whose handler does one thing."""

    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/resnet18-f37072fd.pth"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _point_resnet18_at(monkeypatch, url):
    weights = dataclasses.replace(NETWORKS["resnet18"].weights, url=url)
    entry = dataclasses.replace(NETWORKS["resnet18"], weights=weights)
    monkeypatch.setitem(NETWORKS, "resnet18", entry)


def test_a_silent_server_times_out_without_touching_global_state(tmp_path, monkeypatch):
    release = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_GET(self):  # accept, then send nothing
            release.wait(10)

        def log_message(self, *args):
            pass

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    before = socket.getdefaulttimeout()
    with _Server(Silent) as url:
        _point_resnet18_at(monkeypatch, url)
        with pytest.warns(StandInWarning, match="TimeoutError|timed out"):
            backbone = load_backbone("resnet18", device="cpu", download_timeout_s=0.5)
        release.set()
    assert backbone.is_standin
    assert socket.getdefaulttimeout() == before
    assert not list(tmp_path.rglob("*.partial")) and not weights_cache_path("resnet18").exists()


def test_a_download_that_is_not_the_checkpoint_is_not_kept(tmp_path, monkeypatch):
    class Portal(BaseHTTPRequestHandler):
        def do_GET(self):  # a captive portal's login page instead of the file
            body = b"<html>please log in</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with _Server(Portal) as url:
        _point_resnet18_at(monkeypatch, url)
        with pytest.warns(StandInWarning, match="hash mismatch"):
            assert load_backbone("resnet18", device="cpu", download_timeout_s=5).is_standin
    assert not weights_cache_path("resnet18").exists()


@pytest.mark.parametrize("bad", [-1, 0, float("nan"), float("inf"), "30", None, True])
def test_download_timeout_is_checked(bad):
    with pytest.raises(ValueError, match="download_timeout_s must be a positive number"):
        load_backbone("resnet18", device="cpu", download_timeout_s=bad)


def test_the_environment_variable_picks_the_default_network(monkeypatch):
    monkeypatch.setenv("EMBEDKIT_BACKBONE", "efficientnet_lite2")
    backbone = load_backbone(device="cpu")
    assert backbone.name == "efficientnet_lite2" and backbone.input_size == 260 and not backbone.is_standin
    assert load_backbone("efficientnet_lite0", device="cpu").name == "efficientnet_lite0"  # a name wins
    monkeypatch.setenv("EMBEDKIT_BACKBONE", "vgg16")
    with pytest.raises(ValueError, match="EMBEDKIT_BACKBONE='vgg16' names no known network"):
        load_backbone(device="cpu")


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'.*resnet18"):
        load_backbone("vgg16")


def test_no_weights_anywhere_is_an_error_never_random_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(BackboneUnavailableError, match="pip install efficientnet-lite-pytorch"):
        load_backbone("resnet18", device="cpu", allow_download=False)


def test_pretrained_weights_recognise_the_bundled_cat(backbone, manifest):
    cat = manifest.query("label == 'cat' and transformation == 'original'")["file"].iloc[0]
    batch = backbone.preprocess(load_rgb(cat)).unsqueeze(0)
    top5 = [name for name, _ in backbone.top_k_classes(batch, k=5)[0]]
    assert {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"} & set(top5), top5


def test_a_batch_on_another_device_gets_a_clear_error(backbone):
    with pytest.raises(ValueError, match=r"batch is on meta but the model is on cpu.*as_input"):
        backbone.model(torch.zeros(1, 3, backbone.input_size, backbone.input_size, device="meta"))


def test_strict_mode_catches_a_batch_that_skipped_as_input(monkeypatch):
    monkeypatch.delenv("EMBEDKIT_STRICT_INPUT", raising=False)
    backbone = load_backbone("efficientnet_lite0", device="cpu", strict_input=True)
    x = torch.zeros(2, 3, 224, 224)
    monkeypatch.setenv("EMBEDKIT_STRICT_INPUT", "1")  # the tests' switch gives the same
    assert backbones.strict_input_default()
    # A preprocessed picture: PILToTensor gives it channels-last strides already, so its layout
    # cannot tell whether it went through as_input.
    picture = backbone.preprocess(Image.new("RGB", (300, 200), "teal")).unsqueeze(0)
    assert picture.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert backbone.model(backbone.as_input(x)).shape == (2, 1280)
        assert backbone.model(backbone.as_input(picture)).shape == (1, 1280)
        for batch in (x, picture, picture.clone()):
            with pytest.raises(ValueError, match="did not go through backbone.as_input"):
                backbone.model(batch)
            with pytest.raises(ValueError, match="did not go through backbone.as_input"):
                backbone.classifier(batch)
    lenient = load_backbone("efficientnet_lite0", device="cpu", strict_input=False)
    with torch.inference_mode():
        assert lenient.model(picture.clone()).shape == (1, 1280)  # without strict_input, it works on a CPU
