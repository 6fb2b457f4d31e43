"""Figures drawn for the slides, where the lesson's own figure is too small to read from a room.

A lesson draws its figures for a notebook page: a 205 x 205 heatmap with 7-point labels, a
map with a long legend, columns of small image pairs. On a 1280 x 720 slide those shrink
further. A talk file asks for a figure of this module instead (``redraw = "heatmap"``); it
is drawn here from the same data the lesson uses (the bundled embeddings of the network
``load_backbone()`` gives, the manifest), in the slide's proportions, with type of at least
14 points (about 20 canvas pixels at 100 dots an inch).

Each function returns PNG bytes; ``redraw(name, nb)`` picks one by name.
"""

from __future__ import annotations

import functools
import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["REDRAWS", "redraw"]

WIDTH_IN, HEIGHT_IN, DPI = 11.8, 5.5, 100  # the room a slide gives a figure under its title
FONT = 15


@functools.lru_cache(maxsize=1)
def _data():
    """The manifest, the bundled embeddings as unit rows, their cosine matrix, the network's threshold."""
    from embedkit.backbones import load_backbone
    from embedkit.dataset import bundled_embeddings, load_manifest

    with warnings.catch_warnings():  # which network stood in is the build's business, not the slide's
        warnings.simplefilter("ignore")
        backbone = load_backbone(device="cpu")
    manifest = load_manifest()
    X = bundled_embeddings(backbone, manifest, progress=False).vectors.astype(np.float64)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return manifest, U, U @ U.T, backbone


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def heatmap() -> bytes:
    """Lesson 03's heatmap of all pairs, sorted by source photo, with every source named legibly."""
    manifest, _, S, backbone = _data()
    order = manifest.sort_values(["source", "group", "transformation"]).index.to_numpy()
    sources = manifest["source"].to_numpy()[order]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    im = ax.imshow(S[np.ix_(order, order)], cmap="viridis", vmax=1.0, interpolation="nearest")
    starts = [i for i in range(len(sources)) if i == 0 or sources[i] != sources[i - 1]]
    ends = starts[1:] + [len(sources)]
    for s in starts[1:]:
        ax.axhline(s - 0.5, color="white", lw=0.6)
        ax.axvline(s - 0.5, color="white", lw=0.6)
    middles = [(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)]
    names = [sources[s].split(".", 1)[-1].replace("_", " ") for s in starts]
    ax.set_yticks(middles, names, fontsize=FONT - 3)
    ax.set_xticks([])
    ax.tick_params(length=0)
    bar = fig.colorbar(im, ax=ax, shrink=0.9)
    bar.ax.tick_params(labelsize=FONT)
    bar.set_label(f"cosine ({backbone.name})", fontsize=FONT)
    return _png(fig)


def tsne() -> bytes:
    """Lesson 04's t-SNE map, each image a dot in its label's colour, originals ringed, a legible legend."""
    from embedkit.maps import project

    manifest, U, _, backbone = _data()
    xy = project(U, "tsne")
    labels = manifest["label"].to_numpy()
    original = (manifest["transformation"] == "original").to_numpy()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    colours = plt.get_cmap("tab20")
    for k, name in enumerate(sorted(set(labels))):
        mine = labels == name
        ax.scatter(*xy[mine & ~original].T, s=40, color=colours(k % 20), label=name)
        ax.scatter(*xy[mine & original].T, s=160, color=colours(k % 20), edgecolor="black", linewidth=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"t-SNE of the {len(U)} images ({backbone.name}); ringed: the originals", fontsize=FONT)
    ax.legend(
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=FONT - 1,
        ncols=2,
        frameon=False,
        markerscale=1.5,
        handletextpad=0.2,
        columnspacing=0.8,
    )
    return _png(fig)


def _pairs_figure(pairs, scores) -> bytes:
    from embedkit.images import load_rgb

    manifest, _, _, _ = _data()
    fig, axes = plt.subplots(
        2, len(pairs), figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained", squeeze=False
    )
    for j, ((a, b), score) in enumerate(zip(pairs, scores, strict=True)):
        for row, i in enumerate((a, b)):
            ax = axes[row, j]
            ax.imshow(load_rgb(manifest["file"].iloc[i]))
            ax.set_xticks([])
            ax.set_yticks([])
            caption = f"{manifest['group'].iloc[i]}\n({manifest['transformation'].iloc[i]})"
            ax.set_xlabel(caption, fontsize=FONT - 1)
        axes[0, j].set_title(f"cos = {score:.3f}", fontsize=FONT + 1)
    return _png(fig)


def _ranked_pairs(same: bool, count: int = 4):
    manifest, _, S, _ = _data()
    groups = manifest["group"].to_numpy()
    i, j = np.triu_indices(len(groups), k=1)
    keep = (groups[i] == groups[j]) == same
    i, j, s = i[keep], j[keep], S[i[keep], j[keep]]
    chosen, seen = [], set()
    for k in np.argsort(s if same else -s, kind="stable"):  # one pair per pair of photos
        key = tuple(sorted((groups[i[k]], groups[j[k]])))
        if key not in seen:
            seen.add(key)
            chosen.append(k)
        if len(chosen) == count:
            break
    return [(int(i[k]), int(j[k])) for k in chosen], [float(s[k]) for k in chosen]


def borderline_false() -> bytes:
    """Lesson 05's borderline: the four pairs of different photos that score highest (one per two photos)."""
    return _pairs_figure(*_ranked_pairs(same=False))


def borderline_true() -> bytes:
    """Lesson 05's borderline: the four pairs of one photo that score lowest (one per photo)."""
    return _pairs_figure(*_ranked_pairs(same=True))


def _gallery(indices, captions) -> bytes:
    """Images in two rows of four, each with a caption of at least 14 points."""
    from embedkit.images import load_rgb

    manifest, _, _, _ = _data()
    fig, axes = plt.subplots(2, 4, figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i, caption in zip(axes.ravel(), indices, captions, strict=False):
        ax.imshow(load_rgb(manifest["file"].iloc[i]))
        ax.set_title(caption, fontsize=FONT - 1)
    return _png(fig)


def _grid(files, captions, ncols: int, font: int = FONT - 1) -> bytes:
    """Images in rows of ``ncols``, each with its caption, filling the slide's figure room."""
    from embedkit.images import load_rgb

    nrows = -(-len(files) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained", squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, file, caption in zip(axes.ravel(), files, captions, strict=False):
        ax.imshow(load_rgb(file))
        ax.set_title(caption, fontsize=font)
    return _png(fig)


def originals() -> bytes:
    """Lesson 00's grid: the original of every duplicate group, titled with its label."""
    manifest = _data()[0]
    rows = manifest[manifest["transformation"] == "original"]
    return _grid(rows["file"].tolist(), rows["label"].tolist(), ncols=8, font=FONT - 2)


def group_copies() -> bytes:
    """Lesson 00's grid: the largest group with files in train and in test, its original first, each
    copy titled with its kind and split."""
    manifest = _data()[0]
    straddling = manifest.groupby("group")["split"].nunique() > 1
    group = manifest[manifest["group"].map(straddling)].groupby("group").size().idxmax()
    members = manifest[manifest["group"] == group].sort_values(
        "transformation", key=lambda kind: kind != "original", kind="stable"
    )
    captions = [f"{t}\n({s})" for t, s in zip(members["transformation"], members["split"], strict=True)]
    return _grid(members["file"].tolist(), captions, ncols=6)


def gallery_hard() -> bytes:
    """Lesson 04's failure 1: the query whose worst group member scores below a stranger, and its
    seven nearest images, each captioned same photo, same label or other."""
    manifest, _, S, _ = _data()
    groups, labels = manifest["group"].to_numpy(), manifest["label"].to_numpy()
    n = len(groups)
    is_self = np.eye(n, dtype=bool)
    same = (groups[:, None] == groups[None, :]) & ~is_self
    margin = np.where(same, S, np.inf).min(axis=1) - np.where(same | is_self, -np.inf, S).max(axis=1)
    query = int(np.argmin(margin))
    order = np.argsort(-np.where(is_self[query], -np.inf, S[query]), kind="stable")[:7]

    def kind(j):
        return (
            "same photo"
            if groups[j] == groups[query]
            else ("same label" if labels[j] == labels[query] else "other")
        )

    captions = [f"QUERY: {groups[query]}\n{manifest['transformation'].iloc[query]}"]
    captions += [
        f"{r}. {kind(j)}\n{manifest['transformation'].iloc[j]}, {S[query, j]:.3f}"
        for r, j in enumerate(order, start=1)
    ]
    return _gallery([query, *order], captions)


def gallery_look_alikes() -> bytes:
    """Lesson 04's failure 2: an original and the nearest image of each other photo group."""
    manifest, _, S, _ = _data()
    groups, labels = manifest["group"].to_numpy(), manifest["label"].to_numpy()
    n = len(groups)
    is_self = np.eye(n, dtype=bool)
    same = (groups[:, None] == groups[None, :]) & ~is_self
    originals = np.flatnonzero((manifest["transformation"] == "original").to_numpy())
    masked = np.where(same | is_self, -np.inf, S)
    nearest = masked[originals].argmax(axis=1)
    score = S[originals, nearest]
    same_label = labels[originals] == labels[nearest]
    pool = np.flatnonzero(same_label) if same_label.any() else np.arange(len(originals))
    query = int(originals[pool[np.argmax(score[pool])]])
    others = np.flatnonzero(~same[query] & ~is_self[query])
    ranked = others[np.argsort(-S[query, others], kind="stable")]
    _, first = np.unique(groups[ranked], return_index=True)
    order = ranked[np.sort(first)][:7]
    captions = [f"QUERY: {groups[query]}\n({labels[query]})"]
    captions += [f"{r}. {groups[j]}\n({labels[j]}), {S[query, j]:.3f}" for r, j in enumerate(order, start=1)]
    return _gallery([query, *order], captions)


REDRAWS = {
    "originals": originals,
    "group_copies": group_copies,
    "heatmap": heatmap,
    "tsne": tsne,
    "gallery_hard": gallery_hard,
    "gallery_look_alikes": gallery_look_alikes,
    "borderline_false": borderline_false,
    "borderline_true": borderline_true,
}


def redraw(name: str, nb=None) -> bytes:
    """The slide figure ``name`` (one of REDRAWS) as PNG bytes; ``nb`` (the executed lesson) is not needed."""
    if name not in REDRAWS:
        raise KeyError(f"no slide figure {name!r}; slide_figures.py draws {sorted(REDRAWS)}")
    return REDRAWS[name]()
