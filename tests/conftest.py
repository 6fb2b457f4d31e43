"""Shared test set-up: the backbone the lessons use, loaded once, the bundled manifest, and a
decompression-bomb PNG for the tests of broken input.

``embedkit`` is imported as installed (``pip install -e .``, part of requirements-dev.txt);
scripts and benchmark helpers by name (pyproject.toml's ``pythonpath``). No test changes ``sys.path``.
"""

import os
import struct
import zlib
from pathlib import Path

import pytest

# The suite checks exact behaviour, so it runs the networks in float32 whatever the CPU: a test
# of another precision asks for it by name (embed_images(precision=...), resolve_precision).
os.environ["EMBEDKIT_PRECISION"] = "float32"

REPO = Path(__file__).resolve().parents[1]

#: Source of ``peak_kib()`` for scripts a test runs in a fresh process: that process's own peak
#: resident memory in KiB (VmHWM). ``ru_maxrss`` would also count the pytest process it was
#: forked from, which can be gigabytes.
PEAK_KIB_SOURCE = """
import resource


def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""


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


def bomb_png(width: int, height: int) -> bytes:
    """A valid bilevel PNG of the given size, all zeros: tiny on disk, huge in memory."""
    row = b"\x00" + bytes((width + 7) // 8)
    raw = zlib.compress(row * height, 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
