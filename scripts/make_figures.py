"""Draw the figures the lessons' markdown shows, into ``images/``.

Every figure is computed, not hand-drawn, so it can be rebuilt and reviewed like
code. The output is deterministic: fixed data, the Agg backend, no timestamps or
version strings in the PNG metadata.

Usage::

    python scripts/make_figures.py              # writes the repository's images/
    python scripts/make_figures.py --out DIR    # writes the same files into DIR
    python scripts/make_figures.py --out DIR --map-layout images/embedding_map.png

Each entry of :data:`FIGURES` maps a file name to the function that draws it.

t-SNE's layout depends on the float rounding of the machine that computes it (its
optimisation amplifies last-bit differences between CPUs and BLAS builds), so the map
stores the layout it drew in a PNG text chunk (``embedkit:tsne``). ``--map-layout``
redraws the map from a stored layout instead of computing one: that is how a test checks,
on any CPU, that the stored figure is exactly what the script draws, while a separate test
checks that the stored layout is a faithful t-SNE map of the embeddings computed there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "images"

# PNG text chunks matplotlib would otherwise write (its version string).
PNG_METADATA = {"Software": None}
DPI = 100

COLOUR_A = "#1f5fa8"
COLOUR_B = "#d9531e"


def _arrow(ax, vector: np.ndarray, colour: str, width: float, label: str, label_at: np.ndarray) -> None:
    ax.annotate(
        "",
        xy=tuple(vector),
        xytext=(0.0, 0.0),
        arrowprops={
            "arrowstyle": "-|>",
            "color": colour,
            "lw": width,
            "mutation_scale": 16,
            "shrinkA": 0,
            "shrinkB": 0,
        },
    )
    ax.text(*label_at, label, color=colour, fontsize=12, fontweight="bold", ha="center", va="center")


def cosine_cases() -> Figure:
    """Three pairs of 2-D vectors: same direction (cos = 1), orthogonal (0), opposite (-1)."""
    cases = [
        # title, a, b, where to print "a" and "b", caption
        (
            "same direction",
            np.array([1.8, 0.9]),
            np.array([0.9, 0.45]),
            np.array([1.55, 1.15]),
            np.array([0.6, 0.6]),
            "b = 0.5 a: shorter, same direction",
        ),
        (
            "orthogonal",
            np.array([1.6, 0.0]),
            np.array([0.0, 1.1]),
            np.array([1.4, -0.22]),
            np.array([-0.22, 0.95]),
            "a \u00b7 b = 0: a right angle",
        ),
        (
            "opposite",
            np.array([1.3, 0.75]),
            np.array([-1.3, -0.75]),
            np.array([1.0, 0.9]),
            np.array([-1.0, -0.9]),
            "b = \u2212a: pointing back",
        ),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.3))
    for ax, (title, a, b, at_a, at_b, caption) in zip(axes, cases, strict=True):
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        ax.axhline(0.0, color="0.85", lw=0.8, zorder=0)
        ax.axvline(0.0, color="0.85", lw=0.8, zorder=0)
        # The longer arrow is drawn first and wider, so both stay visible when they overlap.
        _arrow(ax, a, COLOUR_A, 4.0, "a", at_a)
        _arrow(ax, b, COLOUR_B, 2.0, "b", at_b)
        if title == "orthogonal":  # right-angle mark
            s = 0.18
            ax.plot([s, s, 0.0], [0.0, s, s], color="0.3", lw=1.0)
        angle = round(float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
        ax.set_title(f"{title}\ncos = {cos:.0f}   (angle {angle}°)".replace("-", "\u2212"), fontsize=12)
        ax.text(
            0.0,
            -1.3,
            caption,
            fontsize=10,
            color="0.25",
            ha="center",
            va="center",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 2},
        )
        ax.set_xlim(-2.0, 2.0)
        ax.set_ylim(-1.42, 1.3)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle("Cosine similarity compares directions, not lengths", fontsize=13)
    fig.tight_layout()
    return fig


#: The network the map is drawn for: the offline stand-in, available everywhere.
MAP_NETWORK = "efficientnet_lite0"
#: t-SNE's seed for the map.
MAP_SEED = 0


#: PNG text chunk holding the map's t-SNE layout, as JSON ``[[x, y], ...]`` in manifest order.
LAYOUT_KEY = "embedkit:tsne"


def stored_layout(path: Path) -> np.ndarray:
    """The t-SNE layout ``(n, 2)`` stored in a map PNG the script wrote."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.info.get(LAYOUT_KEY)
    if text is None:
        raise ValueError(f"{path} holds no {LAYOUT_KEY!r} layout: redraw it with scripts/make_figures.py")
    return np.asarray(json.loads(text), dtype=np.float64)


def embedding_map_data(tsne: np.ndarray | None = None) -> dict:
    """What the map shows: the stand-in's unit-length embeddings of the bundled images,
    their PCA and t-SNE projections ``(n, 2)``, labels and files, in manifest order.

    ``tsne`` is a layout to draw instead of computing one (see the module's docstring)."""
    from embedkit.backbones import load_backbone
    from embedkit.dataset import bundled_embeddings, load_manifest
    from embedkit.maps import project

    manifest = load_manifest()
    X = bundled_embeddings(load_backbone(MAP_NETWORK, device="cpu"), manifest, progress=False).vectors
    U = X.astype(np.float64) / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
    return {
        "unit_embeddings": U,
        "pca": project(U, "pca"),
        "tsne": project(U, "tsne", random_state=MAP_SEED) if tsne is None else np.asarray(tsne, float),
        "labels": manifest["label"].tolist(),
        "files": manifest["file"].tolist(),
    }


def embedding_map(data: dict | None = None) -> Figure:
    """The bundled images as thumbnails on a PCA map and a t-SNE map, framed by label."""
    from embedkit.maps import thumbnail_scatter

    data = embedding_map_data() if data is None else data
    fig, axes = plt.subplots(1, 2, figsize=(19.0, 8.5))
    thumbnail_scatter(
        data["pca"],
        data["files"],
        data["labels"],
        ax=axes[0],
        legend=False,
        title="PCA: the two directions of largest spread",
    )
    thumbnail_scatter(
        data["tsne"], data["files"], data["labels"], ax=axes[1], title="t-SNE: near neighbours kept near"
    )
    axes[0].set_xlabel("PCA axis 1", fontsize=14)
    axes[0].set_ylabel("PCA axis 2", fontsize=14)
    fig.suptitle(
        f"{len(data['files'])} bundled images, EfficientNet-Lite0 embeddings (unit length), framed by label",
        fontsize=17,
    )
    fig.tight_layout()
    return fig


#: file name -> function that draws it.
FIGURES: dict[str, Callable[[], Figure]] = {
    "cosine_cases.png": cosine_cases,
    "embedding_map.png": embedding_map,
}


def make_figures(out: Path = DEFAULT_OUT, map_layout: Path | None = None) -> list[Path]:
    """Draw every figure into ``out`` and return the paths written.

    ``map_layout``: a map PNG whose stored t-SNE layout the map is drawn with.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        metadata = dict(PNG_METADATA)
        if draw is embedding_map:
            data = embedding_map_data(None if map_layout is None else stored_layout(map_layout))
            data["tsne"] = np.round(data["tsne"], 4)  # drawn exactly as stored
            fig = embedding_map(data)
            metadata[LAYOUT_KEY] = json.dumps(np.round(data["tsne"], 4).tolist())
        else:
            fig = draw()
        path = out / name
        fig.savefig(path, dpi=DPI, metadata=metadata)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder to write into (default: images/)"
    )
    parser.add_argument(
        "--map-layout",
        type=Path,
        default=None,
        help="draw the map with the t-SNE layout stored in this map PNG instead of computing one",
    )
    args = parser.parse_args()
    for path in make_figures(args.out, args.map_layout):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
