"""embedkit.maps against scikit-learn and hand-computed cases."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from embedkit.maps import nearest_neighbours, neighbour_overlap, project, thumbnail_scatter  # noqa: E402


@pytest.fixture(scope="module")
def blobs():
    """Three well-separated clusters of 20 points in 30-D."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 30)) * 10
    X = np.repeat(centres, 20, axis=0) + rng.standard_normal((60, 30))
    return X, np.repeat([0, 1, 2], 20)


def test_pca_matches_scikit_learn_up_to_sign(blobs):
    X, _ = blobs
    ours = project(X, "pca")
    ref = PCA(n_components=2).fit_transform(X)
    assert ours.shape == (60, 2)
    for j in range(2):  # a principal axis may point either way
        assert np.allclose(np.abs(ours[:, j]), np.abs(ref[:, j]), atol=1e-8)


def test_tsne_is_deterministic_and_keeps_clusters(blobs):
    X, cluster = blobs
    a = project(X, "tsne", random_state=3)
    b = project(X, "tsne", random_state=3)
    assert np.array_equal(a, b)
    # every point's nearest map neighbour is in its own cluster
    assert (cluster[nearest_neighbours(a, 1)[:, 0]] == cluster).all()
    assert trustworthiness(X, a, n_neighbors=5) > 0.9


def test_nearest_neighbours_match_scikit_learn(blobs):
    X, _ = blobs
    _, ref = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X)
    assert np.array_equal(nearest_neighbours(X, 5), ref[:, 1:])  # scikit-learn lists the point itself first


def test_neighbour_overlap_by_hand():
    # Points on a line; the "map" swaps the two ends, so point 0's nearest (1) is no longer nearest.
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    xy = np.array([[7.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    # full space, k = 1: 0->1, 1->0, 2->1, 3->2 ; map: 0->2 (7 vs 3: 4), 1->3 (1), 2->1, 3->1
    assert neighbour_overlap(X, xy, k=1).tolist() == [0.0, 0.0, 1.0, 0.0]
    assert neighbour_overlap(X, X, k=2).tolist() == [1.0] * 4


def test_projection_overlap_is_perfect_for_data_that_is_already_2d():
    rng = np.random.default_rng(1)
    X = np.zeros((40, 5))
    X[:, :2] = rng.standard_normal((40, 2))  # lives in a plane: PCA loses nothing
    assert neighbour_overlap(X, project(X, "pca"), k=5).min() == 1.0


def test_thumbnail_scatter_places_every_image_at_its_point():
    rng = np.random.default_rng(2)
    xy = rng.standard_normal((7, 2))
    images = [Image.new("RGB", (50, 30), (30 * i, 0, 0)) for i in range(7)]
    cats = ["a", "b", "a", "c", "b", "a", "c"]
    ax = thumbnail_scatter(xy, images, cats, title="map")
    boxes = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 7
    assert np.allclose([b.xy for b in boxes], xy)
    # a thumbnail keeps its aspect ratio and is at most thumb_pixels on a side
    assert boxes[0].offsetbox.get_data().shape == (24, 40, 3)
    # one frame colour per category, named in the legend
    colours = [tuple(b.patch.get_edgecolor()) for b in boxes]
    assert colours[0] == colours[2] == colours[5] != colours[1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: project(np.zeros((0, 4))), "at least"),
        (lambda: project(np.ones((5, 4)), "umap"), "unknown projection"),
        (lambda: project(np.ones(5)), "2-D"),
        (lambda: project(np.array([[np.nan, 1.0]] * 5)), "NaN"),
        (lambda: neighbour_overlap(np.ones((5, 3)), np.ones((4, 2))), "one map point per row"),
        (lambda: nearest_neighbours(np.ones((5, 3)), 5), "k must be"),
        (lambda: thumbnail_scatter(np.zeros((3, 2)), [Image.new("RGB", (4, 4))] * 2), "one image per point"),
        (lambda: thumbnail_scatter(np.zeros((2, 2)), [Image.new("RGB", (4, 4))] * 2, ["a"]), "categories"),
        (lambda: thumbnail_scatter(np.zeros((0, 2)), []), "at least"),
        (lambda: thumbnail_scatter(np.zeros((2, 3)), [Image.new("RGB", (4, 4))] * 2), "2 columns"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
