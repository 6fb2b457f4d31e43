"""ResNet mechanics on an untrained ResNet-18, and load_backbone's weight resolution."""

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from embedkit import backbones
from embedkit.backbones import (
    BackboneUnavailableError,
    load_backbone,
    weights_cache_path,
)
from embedkit.images import load_rgb

# ---------------------------------------------------------------- ResNet-18 mechanics (no weights needed)


@pytest.fixture(scope="module")
def headless_resnet():
    torch.manual_seed(0)
    net = resnet18(weights=None)
    net.fc = nn.Identity()
    return net


def test_removing_the_head_gives_512_dimensions(headless_resnet):
    headless_resnet.eval()
    with torch.inference_mode():
        out = headless_resnet(torch.randn(3, 3, 224, 224))
    assert out.shape == (3, 512)


def test_sequential_without_last_child_keeps_spatial_dims():
    net = resnet18(weights=None).eval()
    trunk = nn.Sequential(*list(net.children())[:-1])
    with torch.inference_mode():
        assert trunk(torch.randn(2, 3, 224, 224)).shape == (2, 512, 1, 1)


def _first_row_in_two_batches(net, train: bool):
    torch.manual_seed(1)
    image = torch.randn(1, 3, 224, 224)
    batch_a = torch.cat([image, torch.randn(3, 3, 224, 224)])
    batch_b = torch.cat([image, torch.randn(3, 3, 224, 224) * 3 + 1])
    net.train(train)
    with torch.no_grad():
        return net(batch_a)[0], net(batch_b)[0]


def test_eval_mode_output_does_not_depend_on_the_batch(headless_resnet):
    a, b = _first_row_in_two_batches(headless_resnet, train=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_train_mode_output_depends_on_the_batch(headless_resnet):
    a, b = _first_row_in_two_batches(headless_resnet, train=True)
    assert (a - b).abs().max() > 1e-2  # BatchNorm used the batch's own statistics
    headless_resnet.eval()


def test_four_channel_input_is_rejected(headless_resnet):
    headless_resnet.eval()
    with pytest.raises(RuntimeError, match="channels"):
        headless_resnet(torch.randn(1, 4, 224, 224))


# ---------------------------------------------------------------- load_backbone


def test_offline_falls_back_to_the_standin_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    backbone = load_backbone("resnet18", device="cpu", allow_download=False)
    line = capsys.readouterr().out.strip()
    assert backbone.is_standin and backbone.name == "efficientnet_lite0"
    assert backbone.requested == "resnet18" and backbone.dim == 1280
    assert len(line.splitlines()) == 1
    assert "not reachable" in line and "efficientnet_lite0" in line
    assert str(weights_cache_path("resnet18")) in line and "resnet18-f37072fd.pth" in line
    assert not backbone.model.training and not backbone.classifier.training
    with torch.inference_mode():
        assert backbone.model(torch.zeros(2, 3, 224, 224)).shape == (2, 1280)
        assert backbone.classifier(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_cached_checkpoint_is_used_before_any_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights_cache_path("resnet18")
    assert path.is_relative_to(tmp_path)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), path)
    monkeypatch.setattr(backbones, "_download", lambda *a: pytest.fail("must not download"))

    backbone = load_backbone("resnet18", device="cpu")
    assert capsys.readouterr().out == ""
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


def test_corrupt_cached_checkpoint_falls_back_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights_cache_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    backbone = load_backbone("resnet18", device="cpu")
    assert backbone.is_standin
    assert "not reachable" in capsys.readouterr().out


def test_resnet50_is_offered(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert weights_cache_path("resnet50").name.startswith("resnet50-")
    assert load_backbone("resnet50", device="cpu", allow_download=False).requested == "resnet50"


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


def test_preprocess_gives_the_input_the_network_expects(backbone, manifest):
    image = load_rgb(manifest["file"].iloc[0])
    x = backbone.preprocess(image)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
