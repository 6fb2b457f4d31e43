"""scripts/make_figures.py: the figures in images/ are what the script draws, and they show what they claim.

PNG bytes differ between matplotlib and FreeType versions, so nothing here compares bytes.
Instead: the script regenerates every stored figure at the same size and, pixel for pixel at
a coarse scale, the same picture; and each figure's drawing encodes the right data (the map's
thumbnails sit at the projections of the embeddings, framed by label; the cosine panels show
1, 0 and -1).

t-SNE's layout changes with the float rounding of the CPU that computes it, so the map is
regenerated from the layout stored in its PNG, and a separate test checks that this layout is
a faithful t-SNE map of the embeddings computed on this machine (the same neighbourhoods), a
property every CPU respects.
"""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402

from conftest import REPO  # noqa: E402

pytestmark = pytest.mark.slow  # regenerates the figures: embeds the bundled set and runs t-SNE

SCRIPT = REPO / "scripts" / "make_figures.py"
STORED = REPO / "images"


def _stored_names():
    return sorted(p.name for p in STORED.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--map-layout", str(STORED / "embedding_map.png")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _coarse(path, factor=10):
    """The picture as a coarse grey-level array: block averages of ``factor`` x ``factor`` pixels."""
    with Image.open(path) as image:
        grey = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = (s // factor * factor for s in grey.shape)
    return grey[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def test_the_script_writes_every_stored_figure(regenerated):
    made = sorted(p.name for p in regenerated.iterdir())
    assert made, "the script wrote no figure"
    assert made == _stored_names(), (
        "images/ and the script's output differ: run `python scripts/make_figures.py`"
    )


@pytest.mark.parametrize("name", _stored_names())
def test_stored_figure_is_what_the_script_draws(regenerated, name):
    with Image.open(regenerated / name) as new, Image.open(STORED / name) as old:
        assert new.format == old.format == "PNG"
        assert new.size == old.size, f"{name}: {new.size} regenerated, {old.size} stored"
    new, old = _coarse(regenerated / name), _coarse(STORED / name)
    # Font rendering moves a few pixels between versions; a changed figure moves whole blocks.
    difference = np.abs(new - old).mean()
    assert difference < 4.0, (
        f"{name} differs from what the script draws now (mean {difference:.1f} grey levels)"
    )
    # Not blank: a figure has ink on a fair share of its area.
    ink = np.mean(new < 230)
    assert 0.02 < ink < 0.8, f"{name}: {ink:.0%} of the area is ink"


def test_the_stored_map_is_not_a_blank_or_uniform_picture():
    with Image.open(STORED / "embedding_map.png") as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = len(np.unique(pixels, axis=0))
    assert colours > 5000, f"only {colours} colours: the thumbnails are missing"


@pytest.fixture(scope="module")
def embedding_map():
    import make_figures

    data = make_figures.embedding_map_data()
    fig = make_figures.embedding_map()
    yield data, fig
    plt.close(fig)


def _neighbour_overlap(a, b, k=10):
    """Mean share of each point's ``k`` nearest neighbours that two layouts have in common."""
    from embedkit.maps import nearest_neighbours

    na, nb = nearest_neighbours(a, k), nearest_neighbours(b, k)
    return np.mean([len(set(x) & set(y)) / k for x, y in zip(na, nb, strict=True)])


def test_the_stored_map_layout_is_a_tsne_map_of_the_embeddings(embedding_map):
    import make_figures

    data, _ = embedding_map  # the embeddings and a t-SNE map computed on this machine
    stored = make_figures.stored_layout(STORED / "embedding_map.png")
    assert stored.shape == data["tsne"].shape, "one stored point per bundled image"
    # Another CPU's t-SNE lands elsewhere (its optimisation amplifies last-bit differences: a
    # 1e-6 nudge to the embeddings moves points by 20+ units) but keeps the same neighbourhoods:
    # about 84 % of each point's ten nearest neighbours agree, against about 5 % for a layout
    # with its rows shuffled.
    assert trustworthiness(data["unit_embeddings"], stored, n_neighbors=10) > 0.9
    assert _neighbour_overlap(stored, data["tsne"]) > 0.6
    shuffled = stored[np.random.default_rng(0).permutation(len(stored))]
    assert _neighbour_overlap(shuffled, data["tsne"]) < 0.2


def _thumbnails(ax):
    return [a for a in ax.artists if isinstance(a, AnnotationBbox)]


def test_map_points_are_the_projections_of_the_embeddings(embedding_map, manifest):
    from embedkit.backbones import load_backbone
    from embedkit.dataset import bundled_embeddings

    data, fig = embedding_map
    pca_ax, tsne_ax = fig.axes[:2]
    pca_xy = np.array([b.xy for b in _thumbnails(pca_ax)])
    tsne_xy = np.array([b.xy for b in _thumbnails(tsne_ax)])
    assert len(pca_xy) == len(tsne_xy) == len(manifest), "one thumbnail per bundled image on each map"

    # The embeddings themselves, loaded here, scaled to unit length.
    standin = load_backbone("efficientnet_lite0", device="cpu")
    X = bundled_embeddings(standin, manifest, progress=False).vectors
    U = X.astype(np.float64) / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
    assert np.allclose(data["unit_embeddings"], U)

    # PCA: scikit-learn's projection, up to the sign of each axis.
    ref = PCA(n_components=2, svd_solver="full").fit_transform(U)
    for j in range(2):
        assert np.allclose(np.abs(pca_xy[:, j]), np.abs(ref[:, j]), atol=1e-6)
    # t-SNE: the projection the script computed, and a map that keeps the embeddings' neighbourhoods.
    assert np.allclose(tsne_xy, data["tsne"])
    assert trustworthiness(U, tsne_xy, n_neighbors=10) > 0.9
    # Every thumbnail shows its own image: its pixels are those of the manifest row's file, shrunk.
    first = _thumbnails(tsne_ax)[0].offsetbox.get_data()
    with Image.open(manifest["file"][0]) as image:
        expected = np.asarray(image.convert("RGB").resize(first.shape[1::-1]), dtype=np.float64)
    assert np.abs(first.astype(np.float64) - expected).mean() < 20


def test_map_frames_are_coloured_by_label(embedding_map, manifest):
    _, fig = embedding_map
    ax = fig.axes[1]
    edge = [tuple(b.patch.get_edgecolor()) for b in _thumbnails(ax)]
    labels = manifest["label"].tolist()
    colour_of = dict(zip(labels, edge, strict=True))
    assert all(colour_of[lab] == e for lab, e in zip(labels, edge, strict=True)), "one colour per label"
    assert len(set(colour_of.values())) == len(colour_of), "two labels share a colour"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == sorted(set(labels))
    legend_sizes = [t.get_fontsize() for t in ax.get_legend().get_texts()]
    assert min(legend_sizes) >= 12, "legend too small for a projector"


def test_cosine_cases_show_one_zero_and_minus_one():
    import make_figures

    fig = make_figures.cosine_cases()
    titles = [ax.get_title() for ax in fig.axes]
    plt.close(fig)
    assert [t.split("\n")[1].split("(")[0].strip() for t in titles] == ["cos = 1", "cos = 0", "cos = \u22121"]
