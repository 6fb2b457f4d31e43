"""Figures drawn for the slides, where the lesson's own figure is too small to read from a room.

A lesson draws its figures for a notebook page: a 205 x 205 heatmap with 7-point labels, a
map with a long legend, columns of small image pairs. On a 1280 x 720 slide those shrink
further. A talk file asks for a figure of this module instead (``redraw = "heatmap"``); it
is drawn here from the same data and the same package functions the lesson uses (the bundled
embeddings of the network ``load_backbone()`` gives, the manifest, the messy folder and the
new copies ``embedkit.variants`` writes), in the slide's proportions, with type of at least
16 points: 22 canvas pixels at 100 dots an inch, so that text stays above 20 pixels when a
slide shows the figure a little smaller than it was drawn.

Each function returns PNG bytes; ``redraw(name, nb)`` picks one by name. Every PNG records
the size of its smallest text in pixels (:func:`smallest_text_px` reads it back), so the
deck can say how large that text is on the slide and the browser test can check it.
"""

from __future__ import annotations

import functools
import io
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.text import Text  # noqa: E402

__all__ = ["REDRAWS", "redraw", "smallest_text_px", "TEXT_KEY"]

WIDTH_IN, HEIGHT_IN, DPI = 11.8, 5.2, 100  # the room a slide gives a figure under a one-line title
FONT = 17  # titles; captions, ticks and legends at FONT - 1 = 16 points at least
SMALL = FONT - 1
TEXT_KEY = "Smallest text px"  # the PNG text chunk that records the figure's smallest type


@functools.lru_cache(maxsize=1)
def _data():
    """The manifest, the bundled embeddings as unit rows, their cosine matrix, the network's threshold."""
    from embedkit.backbones import load_backbone
    from embedkit.dataset import bundled_embeddings

    with warnings.catch_warnings():  # which network stood in is the build's business, not the slide's
        warnings.simplefilter("ignore")
        backbone = load_backbone(device="cpu")
    manifest = load_manifest_once()
    X = bundled_embeddings(backbone, manifest, progress=False).vectors.astype(np.float64)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    return manifest, U, U @ U.T, backbone


def _smallest_text(fig) -> float:
    """The size, in pixels of the saved PNG, of the smallest text the figure draws (text of a
    hidden axis, or out of its view, is not drawn and does not count)."""
    sizes = []
    draw = Text.draw

    def counting(self, renderer, *args, **kwargs):
        if self.get_visible() and self.get_text().strip():
            sizes.append(self.get_fontsize())
        return draw(self, renderer, *args, **kwargs)

    Text.draw = counting
    try:
        fig.canvas.draw()
    finally:
        Text.draw = draw
    return min(sizes, default=float("inf")) * DPI / 72


def _png(fig) -> bytes:
    smallest = _smallest_text(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={TEXT_KEY: f"{smallest:.1f}"})
    plt.close(fig)
    return buf.getvalue()


def smallest_text_px(png: bytes) -> float | None:
    """The smallest text of a figure of this module, in pixels of its PNG; None for another PNG."""
    from PIL import Image

    value = Image.open(io.BytesIO(png)).text.get(TEXT_KEY)
    return float(value) if value else None


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
    # Every other source on the right: each side has room for its names at the slide's type size.
    ax.set_yticks(middles[::2], names[::2], fontsize=SMALL)
    right = ax.secondary_yaxis("right")
    right.set_yticks(middles[1::2], names[1::2], fontsize=SMALL)
    right.tick_params(length=0)
    ax.set_xticks([])
    ax.tick_params(length=0)
    bar = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.12)
    bar.ax.tick_params(labelsize=SMALL)
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
        fontsize=SMALL,
        ncols=2,
        frameon=False,
        markerscale=1.5,
        handletextpad=0.2,
        columnspacing=0.8,
    )
    return _png(fig)


def _pairs_figure(pairs, scores, titles=None, captions=None, colours=None, suptitle="") -> bytes:
    """One pair per column, the first image on top: a title above (default: the cosine), each
    image captioned below (default: its photo group and kind of copy). ``pairs`` hold rows of the
    manifest, or image files."""
    from embedkit.images import load_rgb

    manifest = load_manifest_once()

    def picture(item):
        return load_rgb(item if isinstance(item, str | Path) else manifest["file"].iloc[item])

    def label(item):
        return f"{manifest['group'].iloc[item]}\n({manifest['transformation'].iloc[item]})"

    fig, axes = plt.subplots(
        2, len(pairs), figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained", squeeze=False
    )
    for j, ((a, b), score) in enumerate(zip(pairs, scores, strict=True)):
        for row, i in enumerate((a, b)):
            ax = axes[row, j]
            ax.imshow(picture(i))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(captions[j][row] if captions else label(i), fontsize=SMALL)
        axes[0, j].set_title(
            titles[j] if titles else f"cos = {score:.3f}",
            fontsize=FONT,
            color=colours[j] if colours else "black",
        )
    if suptitle:
        fig.suptitle(suptitle, fontsize=FONT)
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
        ax.set_title(caption, fontsize=SMALL)
    return _png(fig)


def _grid(files, captions, ncols: int, font: int = SMALL, suptitle: str = "", colours=None) -> bytes:
    """Images in rows of ``ncols``, each with its caption, filling the slide's figure room."""
    from embedkit.images import load_rgb

    nrows = -(-len(files) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained", squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (ax, file, caption) in enumerate(zip(axes.ravel(), files, captions, strict=False)):
        ax.imshow(load_rgb(file))
        ax.set_title(caption, fontsize=font, color=colours[k] if colours else "black")
    if suptitle:
        fig.suptitle(suptitle, fontsize=FONT)
    return _png(fig)


def originals() -> bytes:
    """Lesson 00's grid: the original of every duplicate group, titled with its label."""
    manifest = _data()[0]
    rows = manifest[manifest["transformation"] == "original"]
    return _grid(rows["file"].tolist(), rows["label"].tolist(), ncols=8)


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


# --------------------------------------------------------------------------- lessons 02, 03 and 04


def rgba_twins() -> bytes:
    """Lesson 02's fair test: the two cut-outs whose naive twins differ most (the lowest cosine
    under the naive conversion, as the lesson's figure chooses them), each with a twin that hides
    the coins photo under its transparent pixels, as the naive conversion and as ``to_rgb`` show
    them, with the twins' cosine under each conversion."""
    from PIL import Image

    from embedkit.embeddings import embed_images
    from embedkit.images import load_rgb, to_rgb
    from embedkit.similarity import cosine_similarity

    manifest, _, _, backbone = _data()
    originals = manifest[manifest["transformation"] == "original"]
    hidden = load_rgb(originals.query("label == 'coins'")["file"].iloc[0])
    shown = []
    for cut in manifest[manifest["transformation"] == "rgba_cutout"].itertuples():
        with Image.open(cut.file) as image:
            black = image.convert("RGBA")
        pixels = np.asarray(black).copy()
        transparent = pixels[..., 3] == 0
        pixels[transparent, :3] = np.asarray(hidden.resize(black.size))[transparent]
        twin = Image.fromarray(pixels, mode="RGBA")
        naive = embed_images([black.convert("RGB"), twin.convert("RGB")], backbone, progress=False).vectors
        shown.append((cosine_similarity(*naive), cut.group, black, twin))
    shown = sorted(shown, key=lambda x: x[0])[:2]
    fig, axes = plt.subplots(2, 4, figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    for row, (_, group, black, twin) in zip(axes, shown, strict=True):
        for k, (name, convert) in enumerate((("naive", lambda im: im.convert("RGB")), ("to_rgb", to_rgb))):
            pair = [convert(black), convert(twin)]
            e = embed_images(pair, backbone, progress=False).vectors
            for j, (image, under) in enumerate(zip(pair, ("black", "coins"), strict=True)):
                ax = row[2 * k + j]
                ax.imshow(image)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{name}: {under} under", fontsize=SMALL)
            row[2 * k + 1].set_xlabel(f"twins' cosine {cosine_similarity(*e):.3f}", fontsize=SMALL)
        row[0].set_ylabel(group, fontsize=SMALL)
    fig.suptitle(f"twins under each conversion ({backbone.name})", fontsize=FONT)
    return _png(fig)


# --------------------------------------------------------------------------- lessons 03 and 04: pairs


def query_and_partners(nb) -> bytes:
    """Lesson 03's query, its copies, a photo with its label and an unrelated photo, each with its
    cosine: the partners and scores are read from what the executed lesson printed
    (``kind / group    cos = 0.843``), so the slide shows the lesson's own choice."""
    import re

    manifest = load_manifest_once()
    printed = ""
    for cell in nb.cells if nb is not None else []:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("name") == "stdout" and "unrelated / " in out.get("text", ""):
                printed = out["text"]
    rows = re.findall(r"^(.+?) / (\S+)\s+cos = (-?[\d.]+)$", printed, flags=re.M)
    if len(rows) < 3:
        raise ValueError("lesson 03 printed no 'kind / group  cos = x' lines for its query and partners")
    groups, kinds = manifest["group"], manifest["transformation"]
    query_group = rows[0][1]
    query = int(np.flatnonzero((groups == query_group) & (kinds == "original"))[0])
    files, captions = [manifest["file"].iloc[query]], [f"QUERY\n{query_group}"]
    for kind, group, score in rows:
        if kind in set(kinds):
            i = int(np.flatnonzero((groups == group) & (kinds == kind))[0])
        else:  # "same label (person)", "unrelated": that photo's original
            i = int(np.flatnonzero((groups == group) & (kinds == "original"))[0])
        files.append(manifest["file"].iloc[i])
        captions.append(f"{kind.replace(' (', chr(10) + '(')}\ncos = {float(score):.3f}")
    return _grid(files, captions, ncols=4)


def hardest_copies() -> bytes:
    """Lesson 04's hardest copy of four kinds: the one least like its original, original on top."""
    manifest, _, S, _ = _data()
    kinds, groups = manifest["transformation"].to_numpy(), manifest["group"].to_numpy()
    original = {g: i for i, g in enumerate(groups) if kinds[i] == "original"}
    hardest = []
    for kind in ["grayscale", "crop", "watermark", "resize"]:
        rows = np.flatnonzero(kinds == kind)
        hardest.append(int(rows[np.argmin([S[original[groups[i]], i] for i in rows])]))
    hardest.sort(key=lambda i: S[original[groups[i]], i])
    pairs = [(original[groups[i]], i) for i in hardest]
    return _pairs_figure(
        pairs,
        [S[a, b] for a, b in pairs],
        captions=[(f"original\n{groups[b]}", f"{kinds[b]}") for _, b in pairs],
    )


# --------------------------------------------------------------------------- lesson 01: hashes


@functools.lru_cache(maxsize=1)
def _dhash_pairs():
    """Lesson 01's dHash distances: every pair ``(iu, ju)``, its distance, whether it is one photo,
    the rule's threshold and the most lenient threshold that only asks for pair precision."""
    from embedkit import duplicates, evaluation

    manifest = load_manifest_once()
    groups = manifest["group"].to_numpy()
    H = duplicates.hamming_matrix([duplicates.dhash(f) for f in manifest["file"]])
    iu, ju = np.triu_indices(len(groups), k=1)
    distance = H[iu, ju]
    choice = evaluation.choose_threshold(
        np.stack([iu, ju], axis=1), distance, groups, range(65), higher_is_similar=False
    )
    curve = choice.curve
    pairs_only = int(curve.index[curve["precision"] >= evaluation.MIN_PRECISION].max())
    return H, iu, ju, distance, groups[iu] == groups[ju], int(choice.threshold), pairs_only, curve


@functools.lru_cache(maxsize=1)
def load_manifest_once():
    from embedkit.dataset import load_manifest

    return load_manifest()


def originals_by_split() -> bytes:
    """Lesson 01's originals: one picture per duplicate group, titled with its group, train's in
    black and test's in red."""
    import textwrap

    manifest = load_manifest_once()
    rows = manifest[manifest["transformation"] == "original"]
    rows = rows.sort_values(["split", "group"], ascending=[False, True])
    captions = [textwrap.fill(g.replace("-", " "), 12) for g in rows["group"]]
    colours = ["black" if split == "train" else "crimson" for split in rows["split"]]
    n_train = int((rows["split"] == "train").sum())
    return _grid(
        rows["file"].tolist(),
        captions,
        ncols=8,
        colours=colours,
        suptitle=f"the originals: {n_train} groups in train (black), {len(rows) - n_train} in test (red)",
    )


def dhash_bits() -> bytes:
    """Lesson 01's dHash steps for the cat, its resize and its mirror image: photo, 9 x 8 grayscale
    thumbnail, 64 bits, and how many bits differ from the original's."""
    from matplotlib.patches import Patch
    from PIL import Image

    from embedkit.duplicates import dhash
    from embedkit.images import load_rgb

    manifest = load_manifest_once()
    cat = manifest[manifest["label"] == "cat"]
    examples = [cat[cat["transformation"] == kind].iloc[0] for kind in ["original", "resize", "hflip"]]

    def bits_of(h):
        return np.array([(h >> (63 - k)) & 1 for k in range(64)], bool).reshape(8, 8)

    reference = bits_of(dhash(examples[0]["file"]))
    fig, axes = plt.subplots(3, 3, figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    for column, example in zip(axes.T, examples, strict=True):
        image = load_rgb(example["file"])
        bits = bits_of(dhash(example["file"]))
        column[0].imshow(image)
        column[0].set_title(f"{example['transformation']}, {image.width}×{image.height}", fontsize=FONT)
        column[1].imshow(
            np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)),
            cmap="gray",
            vmin=0,
            vmax=255,
        )
        column[2].imshow(bits, cmap="gray")
        column[2].set_xlabel(f"{int((bits != reference).sum())} of 64 bits differ", fontsize=SMALL)
        for ax in column:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, name in zip(axes[:, 0], ["photo", "grayscale 9×8", "64 bits"], strict=True):
        ax.set_ylabel(name, fontsize=SMALL)
    fig.legend(
        handles=[
            Patch(facecolor="white", edgecolor="black", label="1: brighter than its right neighbour"),
            Patch(facecolor="black", label="0: not brighter"),
        ],
        loc="outside right center",
        fontsize=SMALL,
        frameon=False,
    )
    return _png(fig)


def dhash_histogram() -> bytes:
    """Lesson 01's histogram of dHash distances: duplicate pairs against pairs of different photos."""
    _, _, _, distance, same, _, _, _ = _dhash_pairs()
    closest_unrelated = int(distance[~same].min())
    bins = np.arange(66) - 0.5
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    ax.hist(distance[~same], bins=bins, color="tab:blue", alpha=0.45, label="different photos")
    ax.hist(
        distance[same],
        bins=bins,
        color="tab:orange",
        histtype="step",
        linewidth=2.5,
        label="same photo (duplicates)",
    )
    ax.axvline(
        closest_unrelated - 0.5,
        color="black",
        linestyle="--",
        label=f"{closest_unrelated - 1} bits: no unrelated pair",
    )
    ax.set_yscale("log")
    ax.set_xlabel("Hamming distance between dHashes (bits of 64)", fontsize=FONT)
    ax.set_ylabel("pairs (log scale)", fontsize=FONT)
    ax.tick_params(labelsize=SMALL)
    ax.set_ylim(0.7, 3e4)
    ax.set_xlim(-1, distance.max() + 1)
    ax.legend(fontsize=SMALL, loc="upper left")
    return _png(fig)


def dhash_threshold_curve() -> bytes:
    """Lesson 01's pair precision and recall against the dHash threshold, the rule's choice marked."""
    _, _, _, _, _, threshold, pairs_only, curve = _dhash_pairs()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    ax.plot(curve.index, curve["precision"], lw=3, label="pair precision")
    ax.plot(curve.index, curve["recall"], lw=3, label="pair recall")
    ax.axvline(threshold, color="crimson", ls="--", lw=2, label=f"the rule: {threshold} bits")
    ax.axvline(pairs_only, color="grey", ls=":", lw=2, label=f"precision alone: {pairs_only} bits")
    ax.set_xlabel("dHash threshold (bits)", fontsize=FONT)
    ax.set_ylabel("pair precision, pair recall", fontsize=FONT)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, 64)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=SMALL)
    ax.legend(fontsize=SMALL, loc="center right")
    return _png(fig)


def dhash_wrong_pairs() -> bytes:
    """Lesson 01's pairs of different photos that a threshold chosen on pair precision alone would
    add: the closest ones, one per pair of photos."""
    import pandas as pd

    manifest = load_manifest_once()
    _, iu, ju, distance, same, threshold, pairs_only, _ = _dhash_pairs()
    groups, kinds = manifest["group"].to_numpy(), manifest["transformation"].to_numpy()
    extra = (distance > threshold) & (distance <= pairs_only) & ~same
    wrong = pd.DataFrame(
        {
            "i": iu[extra],
            "j": ju[extra],
            "d": distance[extra],
            "gi": groups[iu[extra]],
            "gj": groups[ju[extra]],
        }
    )
    wrong = wrong.sort_values("d", kind="stable").drop_duplicates(["gi", "gj"]).head(5)
    pairs = list(zip(wrong["i"], wrong["j"], strict=True))
    return _pairs_figure(
        pairs,
        wrong["d"].tolist(),
        titles=[f"{d} bits" for d in wrong["d"]],
        captions=[(f"{groups[i]}\n({kinds[i]})", f"{groups[j]}\n({kinds[j]})") for i, j in pairs],
    )


def dhash_hardest() -> bytes:
    """Lesson 01's hardest copy of each kind: the copy furthest from its original in dHash bits,
    caught or missed at the rule's threshold."""
    manifest = load_manifest_once()
    H, _, _, _, _, threshold, _, _ = _dhash_pairs()
    kinds, groups = manifest["transformation"].to_numpy(), manifest["group"].to_numpy()
    original = {g: i for i, g in enumerate(groups) if kinds[i] == "original"}
    copies = manifest[kinds != "original"].copy()
    copies["bits"] = H[copies.index.to_numpy(), [original[g] for g in copies["group"]]]
    hardest = copies.loc[copies.groupby("transformation")["bits"].idxmax()]
    hardest = hardest[hardest["bits"] > 0].sort_values("bits")
    fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    ncols = -(-len(hardest) // 2)
    cells = fig.subfigures(2, ncols, squeeze=False).ravel()
    from embedkit.images import load_rgb

    for cell in cells[len(hardest) :]:
        cell.set_visible(False)
    for cell, (_, row) in zip(cells, hardest.iterrows(), strict=False):
        caught = row["bits"] <= threshold
        axes = cell.subplots(1, 2)
        for ax, file in zip(axes, [manifest["file"].iloc[original[row["group"]]], row["file"]], strict=True):
            ax.imshow(load_rgb(file))
            ax.axis("off")
        cell.suptitle(
            f"{row['transformation']}: {row['bits']} bits\n{'caught' if caught else 'missed'}",
            fontsize=SMALL,
            color="black" if caught else "crimson",
        )
    fig.suptitle(
        f"each kind's copy furthest from its original (left); threshold {threshold} bits", fontsize=FONT
    )
    return _png(fig)


# --------------------------------------------------------------------------- lesson 05: embeddings


@functools.lru_cache(maxsize=1)
def _candidates():
    """Lesson 05's pairs from COSINE_GRID[0] up, their scores, which are true, and the rule's threshold."""
    from embedkit.dataset import bundled_embeddings
    from embedkit.evaluation import COSINE_GRID, choose_threshold
    from embedkit.similarity import near_duplicate_pairs

    manifest, _, _, backbone = _data()
    X = bundled_embeddings(backbone, manifest, progress=False).vectors
    groups = manifest["group"].to_numpy()
    candidates, scores = near_duplicate_pairs(X, threshold=COSINE_GRID[0])
    is_true = groups[candidates[:, 0]] == groups[candidates[:, 1]]
    return X, candidates, scores, is_true, float(choose_threshold(candidates, scores, groups).threshold)


def cosine_histogram() -> bytes:
    """Lesson 05's scores of every pair from 0.30 up, true and false pairs, the stored threshold; and
    a linear close-up where they overlap."""
    from embedkit.evaluation import COSINE_GRID

    manifest, _, _, backbone = _data()
    _, _, scores, is_true, _ = _candidates()
    stored = backbone.near_duplicate_threshold
    false_scores, true_scores = scores[~is_true], scores[is_true]
    bins = np.round(np.arange(30, 101) / 100, 2)
    fig, (ax, zoom) = plt.subplots(
        1, 2, figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
    )
    ax.hist(false_scores, bins=bins, color="C0", alpha=0.7, label="different photos")
    ax.hist(true_scores, bins=bins, histtype="step", lw=2.5, color="C1", label="same photo")
    ax.axvline(stored, color="black", ls="--", lw=2, label=f"stored threshold {stored:.2f}")
    ax.set_yscale("log")
    ax.set_xlim(COSINE_GRID[0], 1.0)
    ax.set_ylim(top=np.histogram(scores, bins=bins)[0].max() * 6)
    ax.set_xlabel("cosine similarity", fontsize=FONT)
    ax.set_ylabel("pairs (log scale)", fontsize=FONT)
    ax.set_title(f"all pairs from {COSINE_GRID[0]:.2f} up ({backbone.name})", fontsize=FONT)
    ax.legend(fontsize=SMALL, loc="upper center", ncols=1, framealpha=0.9)
    highest_false = false_scores.max()
    lo = np.floor((highest_false - 0.10) * 100)
    near = np.round(np.arange(lo, np.ceil((highest_false + 0.05) * 100) + 1) / 100, 2)
    false_n, _ = np.histogram(false_scores, bins=near)
    true_n, _ = np.histogram(true_scores, bins=near)
    zoom.bar(near[:-1] + 0.0025, false_n, width=0.0045, color="C0", label="different")
    zoom.bar(near[:-1] + 0.0075, true_n, width=0.0045, color="C1", label="same")
    zoom.axvline(stored, color="black", ls="--", lw=2)
    zoom.set_xlim(near[0], near[-1])
    zoom.set_xlabel("cosine similarity", fontsize=FONT)
    zoom.set_ylabel("pairs", fontsize=FONT)
    zoom.set_title(f"close-up: highest false pair {highest_false:.3f}", fontsize=FONT)
    zoom.xaxis.set_major_locator(plt.MaxNLocator(4))
    zoom.legend(fontsize=SMALL, loc="upper left")
    for a in (ax, zoom):
        a.tick_params(labelsize=SMALL)
    return _png(fig)


def cv_folds() -> bytes:
    """Lesson 05's 20 folds (seed 0): the threshold each chose on 3/4 of the photos against its
    held-out precision and recall, folds that merged held-out photos marked."""
    import pandas as pd

    from embedkit.evaluation import cross_validate_threshold

    manifest = _data()[0]
    _, candidates, scores, _, threshold = _candidates()
    folds = cross_validate_threshold(candidates, scores, manifest["group"].to_numpy())
    merged = (folds["held_out_merges"] > 0).to_numpy()
    chose = folds["threshold"].to_numpy()
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained", sharey=True)
    for ax, metric in zip(axes, ["precision", "recall"], strict=True):
        y = folds[f"held_out_{metric}"].to_numpy()
        same = pd.DataFrame({"t": chose, "y": y.round(4), "merged": merged}).value_counts().reset_index()
        for is_merged, style in (
            (False, {"s": 90, "color": "C0", "label": "held-out photos kept apart"}),
            (True, {"s": 110, "marker": "D", "color": "crimson", "label": "held-out photos merged"}),
        ):
            part = same[same["merged"] == is_merged]
            ax.scatter(part["t"], part["y"], alpha=0.85, **style)
            for t, yy, k in zip(part["t"], part["y"], part["count"], strict=True):
                if k > 1:
                    ax.annotate(f"×{k}", (t, yy), xytext=(7, -6), textcoords="offset points", fontsize=SMALL)
        ax.axvline(
            threshold,
            color="black",
            ls="--",
            lw=1.5,
            zorder=0,
            label=f"chosen on all photos ({threshold:.2f})",
        )
        ax.xaxis.set_major_locator(plt.MultipleLocator(0.02))
        ax.set_xlim(min(chose.min(), threshold) - 0.012, max(chose.max(), threshold) + 0.02)
        ax.set_title(f"held-out {metric}", fontsize=FONT)
        ax.set_xlabel("threshold the fold chose", fontsize=FONT)
        ax.tick_params(labelsize=SMALL)
    axes[0].set_ylabel("score on the held-out 1/4", fontsize=FONT)
    bottom, top = axes[0].get_ylim()
    axes[0].set_ylim(bottom - 0.35 * (top - bottom), top)  # room for the legend below the points
    axes[0].legend(loc="lower left", fontsize=SMALL)
    fig.suptitle(f"{len(folds)} folds; ×k: k folds on one point", fontsize=FONT)
    return _png(fig)


@functools.lru_cache(maxsize=1)
def _new_copies():
    """Lesson 05's new files: four photos no threshold saw and three edited copies of every photo,
    written as the lesson writes them (``embedkit.variants``), embedded with the bundled ones."""
    from embedkit.embeddings import embed_images
    from embedkit.evaluation import COSINE_GRID
    from embedkit.similarity import near_duplicate_pairs
    from embedkit.variants import make_new_edits, unseen_photos

    manifest, _, _, backbone = _data()
    X, _, _, _, threshold = _candidates()
    workdir = Path(tempfile.mkdtemp(prefix="slides05_"))
    new_photos = unseen_photos(workdir / "unseen")
    originals = manifest[manifest["transformation"] == "original"]
    photos = dict(zip(originals["group"], originals["file"], strict=True)) | new_photos
    copies = make_new_edits(photos, workdir / "copies", per_photo=3, seed=2024)
    new_files = [*map(str, new_photos.values()), *copies["file"]]
    X_all = np.vstack([X, embed_images(new_files, backbone, progress=False).vectors])
    groups_all = np.concatenate([manifest["group"].to_numpy(), [*new_photos, *copies["photo"]]])
    pairs_all, scores_all = near_duplicate_pairs(X_all, threshold=COSINE_GRID[0])
    return new_photos, copies, new_files, X_all, groups_all, pairs_all, scores_all, threshold


def new_copies() -> bytes:
    """Lesson 05's four new photos and their new copies, each titled with its edits."""
    new_photos, copies, *_ = _new_copies()
    shown = copies[copies["photo"].isin(list(new_photos))]
    files = [*map(str, new_photos.values()), *shown["file"]]
    captions = [f"{p}\noriginal\n" for p in new_photos]
    captions += [
        f"{p}\n{e.replace('+', chr(10) + '+ ')}" for p, e in zip(shown["photo"], shown["edits"], strict=True)
    ]
    return _grid(files, captions, ncols=8)


def new_mistakes() -> bytes:
    """Lesson 05's mistakes on new files: the three highest false pairs with a new file, and the
    three new copies least like their original (one per photo); red where the threshold errs."""
    manifest = _data()[0]
    new_photos, copies, new_files, X_all, groups_all, pairs_all, scores_all, threshold = _new_copies()
    n = len(manifest)
    is_new = np.arange(len(X_all)) >= n
    new_false = (is_new[pairs_all[:, 0]] | is_new[pairs_all[:, 1]]) & (
        groups_all[pairs_all[:, 0]] != groups_all[pairs_all[:, 1]]
    )
    worst, used = [], set()
    for i in np.flatnonzero(new_false)[np.argsort(-scores_all[new_false], kind="stable")]:
        if len(worst) < 3 and not {*pairs_all[i]} & used:
            worst.append(i)
            used |= {*pairs_all[i]}
    Xn = X_all / np.linalg.norm(X_all, axis=1, keepdims=True)
    row_of_original = {
        g: i for i, g in enumerate(groups_all[:n]) if manifest["transformation"].iloc[i] == "original"
    }
    row_of_original |= {p: n + k for k, p in enumerate(new_photos)}
    first_copy = n + len(new_photos)
    copies = copies.assign(
        cosine=(Xn[first_copy:] * Xn[[row_of_original[p] for p in copies["photo"]]]).sum(axis=1)
    )
    missed = copies.sort_values("cosine", kind="stable").drop_duplicates("photo").head(3)
    kinds = [*manifest["transformation"], *["new photo"] * len(new_photos), *("new: " + copies["edits"])]
    files = [*manifest["file"], *new_files]
    panels = [(pairs_all[i, 0], pairs_all[i, 1], scores_all[i], "false pair") for i in worst]
    panels += [
        (first_copy + k, row_of_original[p], c, "copy")
        for k, p, c in zip(missed.index, missed["photo"], missed["cosine"], strict=True)
    ]
    titles, colours, captions = [], [], []
    for a, b, score, what in panels:
        wrong = (score >= threshold) == (what == "false pair")
        verdict = (
            ("merged" if wrong else "apart") if what == "false pair" else ("missed" if wrong else "found")
        )
        titles.append(f"{what} {score:.2f}\n{verdict}")
        colours.append("crimson" if wrong else "black")
        captions.append(tuple(f"{groups_all[x]}\n{kinds[x].removeprefix('new: ')}" for x in (a, b)))
    pairs = [(files[a], files[b]) for a, b, _, _ in panels]
    return _pairs_figure(
        pairs,
        [p[2] for p in panels],
        titles=titles,
        captions=captions,
        colours=colours,
        suptitle=f"red: a mistake at the threshold {threshold:.2f}",
    )


# --------------------------------------------------------------------------- lesson 06: a chain


def cross_fade_chain() -> bytes:
    """Lesson 06's planted chain: the messy folder's cat, four cross-fade frames towards the coffee
    cup, and the cup, each step's cosine above it and the two ends' cosine in the title."""
    from PIL import Image

    from embedkit.embeddings import embed_images
    from embedkit.images import load_rgb
    from embedkit.variants import make_messy_folder

    _, _, _, backbone = _data()
    folder = Path(tempfile.mkdtemp(prefix="slides06_")) / "photos"
    make_messy_folder(folder)
    cat, cup = "train/holiday 2023/chelsea-cat.jpg", "train/holiday 2023/coffee-cup.jpg"
    a = Image.open(folder / cat).convert("RGB")
    b = Image.open(folder / cup).convert("RGB").resize(a.size)
    frames = []
    for w in (0.25, 0.40, 0.55, 0.75):  # the lesson's FADE
        frames.append(folder / f"fade-{round(w * 100):02d}.jpg")
        Image.blend(a, b, w).save(frames[-1], quality=92)
    chain = [folder / cat, *frames, folder / cup]
    V = embed_images([str(p) for p in chain], backbone, progress=False).vectors.astype(np.float64)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    threshold = backbone.near_duplicate_threshold
    fig, axes = plt.subplots(1, len(chain), figsize=(WIDTH_IN, HEIGHT_IN * 0.62), layout="constrained")
    for k, (ax, path) in enumerate(zip(axes, chain, strict=True)):
        ax.imshow(load_rgb(path))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(path.name.replace("chelsea-", "").replace("coffee-", ""), fontsize=SMALL)
        if k:
            step = float(V[k - 1] @ V[k])
            ax.set_title(
                f"← {step:.2f}", fontsize=FONT, loc="left", color="black" if step >= threshold else "crimson"
            )
    ends = float(V[0] @ V[-1])
    fig.suptitle(
        f"each step's cosine with the one before; threshold {threshold:.2f}; the two ends: {ends:.2f}",
        fontsize=FONT,
    )
    return _png(fig)


REDRAWS = {
    "originals": originals,
    "group_copies": group_copies,
    "heatmap": heatmap,
    "tsne": tsne,
    "gallery_hard": gallery_hard,
    "gallery_look_alikes": gallery_look_alikes,
    "borderline_false": borderline_false,
    "borderline_true": borderline_true,
    "originals_by_split": originals_by_split,
    "dhash_bits": dhash_bits,
    "dhash_histogram": dhash_histogram,
    "dhash_threshold_curve": dhash_threshold_curve,
    "dhash_wrong_pairs": dhash_wrong_pairs,
    "dhash_hardest": dhash_hardest,
    "cosine_histogram": cosine_histogram,
    "cv_folds": cv_folds,
    "new_copies": new_copies,
    "new_mistakes": new_mistakes,
    "cross_fade_chain": cross_fade_chain,
    "query_and_partners": query_and_partners,
    "hardest_copies": hardest_copies,
    "rgba_twins": rgba_twins,
}
#: Figures drawn from what the executed lesson printed: they are given the notebook.
FROM_NOTEBOOK = {"query_and_partners"}


def redraw(name: str, nb=None) -> bytes:
    """The slide figure ``name`` (one of REDRAWS) as PNG bytes; ``nb`` is the executed lesson, which
    the figures in FROM_NOTEBOOK read their choice from."""
    if name not in REDRAWS:
        raise KeyError(f"no slide figure {name!r}; slide_figures.py draws {sorted(REDRAWS)}")
    return REDRAWS[name](nb) if name in FROM_NOTEBOOK else REDRAWS[name]()
