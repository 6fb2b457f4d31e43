"""Shared test set-up: import embedkit from notebooks/, load the backbone once."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "notebooks"))


@pytest.fixture(scope="session")
def backbone():
    """The backbone the lessons use: ResNet-18 when its weights are reachable, else the stand-in."""
    from embedkit.backbones import load_backbone

    return load_backbone("resnet18", device="cpu")


@pytest.fixture(scope="session")
def manifest():
    from embedkit.dataset import load_manifest

    return load_manifest()
