"""embedkit.plots: what each figure holds, and clear errors for input that cannot be drawn."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from embedkit.plots import image_grid, pair_grid, precision_recall_plot, similarity_heatmap  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _shown(ax) -> bool:
    return len(ax.images) == 1


def test_image_grid_layout_titles_and_an_unreadable_panel(tmp_path):
    Image.new("RGB", (10, 10), (200, 10, 10)).save(tmp_path / "red.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    items = [tmp_path / "red.png", Image.new("L", (6, 4), 50), tmp_path / "empty.jpg", tmp_path / "red.png"]
    fig = image_grid(items, titles=["a", "b", "c", "d"], ncols=3, suptitle="four")
    assert len(fig.axes) == 6  # 2 rows x 3 columns, the last two panels empty
    assert [ax.get_title() for ax in fig.axes[:4]] == ["a", "b", "unreadable", "d"]
    assert [_shown(ax) for ax in fig.axes] == [True, True, False, True, False, False]
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert texts and "empty file" in texts[0]  # the reason, not just "unreadable"
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array()[0, 0], (200, 10, 10))
    assert fig.axes[1].images[0].get_array().shape == (4, 6, 3)  # grayscale shown as RGB
    assert fig._suptitle.get_text() == "four"


def test_grid_titles_take_the_size_asked_for():
    image = Image.new("RGB", (8, 8), (0, 0, 255))
    small = image_grid([image], titles=["a\nb"])
    large = image_grid([image], titles=["a\nb"], title_size=11)
    assert small.axes[0].title.get_fontsize() == 8 and large.axes[0].title.get_fontsize() == 11
    assert large.get_size_inches()[1] > small.get_size_inches()[1]  # room for the larger titles
    pairs = pair_grid([(image, image)], scores=[0.5], title_size=11)
    assert pairs.axes[0].title.get_fontsize() == 11


def test_pair_grid_puts_each_score_above_its_pair(tmp_path):
    a, b = Image.new("RGB", (8, 8), (0, 0, 255)), Image.new("RGB", (8, 8), (0, 255, 0))
    fig = pair_grid([(a, b), (b, tmp_path / "missing.png")], scores=[0.91234, 7], captions=["x", "y"])
    assert len(fig.axes) == 4
    top = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in top] == ["x\ncos = 0.912", "y\ncos = 7"]  # floats rounded, ints as is
    missing = [ax for ax in fig.axes if ax.texts]
    assert len(missing) == 1 and "file not found" in missing[0].texts[0].get_text()


def test_similarity_heatmap_shape_range_and_label_runs():
    matrix = np.array([[1.0, 0.8, 0.1], [0.8, 1.0, 0.2], [0.1, 0.2, 1.0]])
    fig = similarity_heatmap(matrix, labels=["cat", "cat", "dog"], vmin=0.0)
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    shown = ax.images[0]
    np.testing.assert_array_equal(shown.get_array(), matrix)
    assert shown.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog"]
    assert list(ax.get_yticks()) == [0.5, 2]  # each name at the middle of its block
    assert fig.axes[1].get_ylabel() == "cosine similarity"  # the colour bar says what it measures


def test_precision_recall_plot_marks_the_chosen_threshold():
    t = np.linspace(0, 1, 5)
    fig = precision_recall_plot(t, t, 1 - t, chosen=0.25)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["precision", "recall", "chosen = 0.250"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), 1 - t)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: image_grid([]), ValueError, "images is empty"),
        (lambda: image_grid(None), TypeError, "images must be a list"),
        (lambda: image_grid([Image.new("RGB", (2, 2))], titles=["a", "b"]), ValueError, "titles has 2"),
        (lambda: pair_grid([]), ValueError, "pairs is empty"),
        (lambda: pair_grid(None), TypeError, "pairs must be a list"),
        (lambda: pair_grid([("a.png", "b.png")], scores=[0.1, 0.2]), ValueError, "scores has 2"),
        (lambda: pair_grid(["a.png"]), ValueError, r"\(left, right\)"),
        (lambda: similarity_heatmap(None), TypeError, "matrix is None"),
        (lambda: similarity_heatmap(np.zeros((0, 0))), ValueError, "square"),
        (lambda: similarity_heatmap(np.zeros((2, 3))), ValueError, "square"),
        (lambda: similarity_heatmap(np.eye(2), labels=["a"]), ValueError, "labels has 1"),
        (lambda: precision_recall_plot([], [], []), ValueError, "thresholds is empty"),
        (lambda: precision_recall_plot([0, 1], [1], [1, 0]), ValueError, "precision has 1"),
        (lambda: precision_recall_plot(None, [1], [1]), TypeError, "thresholds must be"),
    ],
)
def test_clear_errors_for_input_that_cannot_be_drawn(call, error, message):
    with pytest.raises(error, match=message):
        call()
    assert not plt.get_fignums()  # no half-drawn figure left behind
