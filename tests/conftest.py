"""Shared test set-up: the backbone the lessons use, loaded once, and the bundled manifest.

``embedkit`` is imported as installed (``pip install -e .``, part of requirements-dev.txt);
scripts and benchmark helpers by name (pyproject.toml's ``pythonpath``). No test changes ``sys.path``.
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def backbone():
    """What ``load_backbone()`` gives on this machine ($EMBEDKIT_BACKBONE, ResNet-18 or the stand-in)."""
    from embedkit.backbones import load_backbone

    return load_backbone(device="cpu")


@pytest.fixture(scope="session")
def manifest():
    from embedkit.dataset import load_manifest

    return load_manifest()


#: Fixtures that make every test using them slow: the built editions (every lesson executed, a
#: browser), a local Ray, a two-node Ray cluster.
SLOW_FIXTURES = {"editions", "ray_running", "cluster"}


def pytest_collection_modifyitems(items):
    """Tests that use a slow fixture belong to the slow tier (``pytest -m "not slow"`` leaves them out)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
