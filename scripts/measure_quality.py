"""Plant image-quality, outlier and label problems, choose each check's threshold on one part
and measure its precision and recall on another part made from other photos.

    python scripts/measure_quality.py             # prints the tables (embeds ~540 files)
    python scripts/measure_quality.py --keep DIR  # also keeps the planted folders in DIR
    python scripts/measure_quality.py --keep DIR --cache C  # re-measures, reusing the embeddings

Two parts, built the same way from disjoint sets of photos:

- ``choice``: bundled originals of half of the source pictures (:data:`CHOICE_SOURCES`);
  each rule and threshold is chosen here (best F1, the middle of the best range);
- ``held_out``: the bundled originals of the other source pictures and photos that ship
  with scikit-image but are not in ``data/`` at all; nothing is chosen here.

Each part is a folder with one subfolder per label (the manifest's labels). Per photo it
holds four clean views (random crops of aspect 3:4 to 2:1, short side 150-400 px, mirror,
a mild brightness change, JPEG quality 70-95) and one file per planted problem, each made
from a fresh view: darkened (x0.06-0.25), over-exposed (x1.2-1.8 + 90-170), blurred
(Gaussian, radius 2.5-6 px at 224 px, scaled with the view), flattened (contrast x0.02-0.08), cut to a
strip (aspect 3.2-8), shrunk (short side 16-56 px) and desaturated (colour x0-0.03). One
more view of each photo is put into another label's folder (a wrong label).

The outlier check has parts of its own, the way outliers occur: class folders of one kind of
picture (12 crops of different regions of one photo each: :data:`OUTLIER_CLASSES`, 7 in
``choice``, 9 in ``held_out``, no photo in both) with 8 pictures from another domain planted
in folders drawn at random: in ``choice`` an application window and a form (rendered
screenshots), a rendered text page, a line and a bar chart, a horse silhouette, a CT phantom
and a photo of handwriting; in ``held_out`` a terminal and a spreadsheet, a scanned page
(scikit-image's ``page``) and a two-column text page, a scatter and a pie chart, a clock and a
clip-art present. Several outlier rules are compared (:func:`outlier_rules`), each with its
threshold chosen on ``choice``.

Truth per kind: the planted files of that kind; every file of a photo that has no colour at
all (a grayscale source) is also ``grayscale``. A naturally dark, smooth or low-entropy
photo is *not* counted as dark, blurry or low-information: if a check fires on it, that is
a false positive in the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from embedkit.curate import curate
from embedkit.dataset import DATA_DIR
from embedkit.quality import (
    EXPLAINED_BY,
    HIDES_CONTENT,
    HIGHER_IS_WORSE,
    IMAGE_KINDS,
    KINDS,
    NEIGHBOURS,
    THRESHOLDS,
    class_folder_labels,
    label_scores,
    measure_image,
    outlier_scores,
)

#: Source pictures (the manifest's ``source``) whose originals make the ``choice`` part.
CHOICE_SOURCES = (
    "skimage.astronaut",
    "sklearn.china",
    "skimage.brick",
    "skimage.cell",
    "skimage.coffee",
    "skimage.hubble_deep_field",
    "skimage.grass",
    "skimage.text",
)
#: Photos that ship with scikit-image and are not in ``data/``: ``(name, label, loader)``.
EXTRA_HELD_OUT = (
    ("moon", "space", "moon"),
    ("clock", "object", "clock"),
    ("page", "text", "page"),
    ("motorcycle", "vehicle", "stereo_motorcycle"),
)
#: The planted problems, one file each per photo (``label`` is a move, not an edit).
PLANTED = ("dark", "bright", "blurry", "low_information", "odd_aspect", "tiny", "grayscale")
#: Candidate neighbour counts for the label check.
NEIGHBOUR_CHOICES = (3, 5, 8)


def _source_is_gray(source: str) -> bool:
    package, name = source.split(".", 1)
    if package != "skimage":
        return False
    import skimage.data

    loader = {"immunohistochemistry": "immunohistochemistry"}.get(name, name)
    return getattr(skimage.data, loader)().ndim == 2


def _photos(part: str) -> list[tuple[str, str, Image.Image, bool]]:
    """``(name, label, picture, has no colour)`` of every photo of ``part``."""
    photos = []
    with open(DATA_DIR / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["transformation"] != "original":
                continue
            if (row["source"] in CHOICE_SOURCES) != (part == "choice"):
                continue
            picture = Image.open(DATA_DIR / row["path"]).convert("RGB")
            photos.append((row["group"], row["label"], picture, _source_is_gray(row["source"])))
    if part == "held_out":
        import skimage.data

        for name, label, loader in EXTRA_HELD_OUT:
            array = getattr(skimage.data, loader)()
            if isinstance(array, tuple):
                array = array[0]
            photos.append((name, label, Image.fromarray(array).convert("RGB"), array.ndim == 2))
    return photos


def _view(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A clean view: a random crop of aspect 3:4 to 2:1, short side 150-400 px, maybe mirrored,
    brightness x0.85-1.15."""
    w, h = picture.size
    aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(2.0))))
    if rng.random() < 0.5:
        aspect = 1 / aspect if aspect < 1.34 else aspect
    keep = rng.uniform(0.7, 1.0)
    cw = min(w, round(keep * min(w, h * aspect)))
    ch = min(h, round(cw / aspect))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    view = picture.crop((x0, y0, x0 + cw, y0 + ch))
    short = rng.uniform(150, 400)
    scale = short / min(view.size)
    view = view.resize((max(1, round(view.width * scale)), max(1, round(view.height * scale))), Image.LANCZOS)
    if rng.random() < 0.5:
        view = ImageOps.mirror(view)
    return ImageEnhance.Brightness(view).enhance(rng.uniform(0.85, 1.15))


def plant(kind: str, view: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``view`` with the problem ``kind`` of :data:`PLANTED`, its strength drawn from ``rng``."""
    a = np.asarray(view, dtype=np.float32)
    if kind == "dark":
        return Image.fromarray((a * rng.uniform(0.06, 0.25)).clip(0, 255).astype(np.uint8))
    if kind == "bright":
        return Image.fromarray(
            (a * rng.uniform(1.2, 1.8) + rng.uniform(90, 170)).clip(0, 255).astype(np.uint8)
        )
    if kind == "blurry":
        return view.filter(ImageFilter.GaussianBlur(rng.uniform(2.5, 6.0) * min(view.size) / 224))
    if kind == "low_information":
        return ImageEnhance.Contrast(view).enhance(rng.uniform(0.02, 0.08))
    if kind == "odd_aspect":
        w, h = view.size
        ratio = rng.uniform(3.2, 8.0)
        if rng.random() < 0.5:
            side = max(1, round(w / ratio))
            y0 = int(rng.integers(0, h - side + 1))
            return view.crop((0, y0, w, y0 + side))
        side = max(1, round(h / ratio))
        x0 = int(rng.integers(0, w - side + 1))
        return view.crop((x0, 0, x0 + side, h))
    if kind == "tiny":
        short = rng.uniform(16, 56)
        scale = short / min(view.size)
        return view.resize(
            (max(1, round(view.width * scale)), max(1, round(view.height * scale))), Image.LANCZOS
        )
    if kind == "grayscale":
        return ImageEnhance.Color(view).enhance(rng.uniform(0.0, 0.03))
    raise ValueError(f"unknown planted problem {kind!r}")


def build_part(dest: str | Path, part: str, seed: int = 0, views: int = 4) -> dict[str, list[str]]:
    """Write the ``part`` (``"choice"`` or ``"held_out"``) folder to ``dest``; return its truth:
    ``{kind: sorted paths}`` for every kind of :data:`~embedkit.quality.KINDS`, and under
    ``"moved"`` the true label of each file put in a wrong folder."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    rng = np.random.default_rng(seed)
    photos = _photos(part)
    labels = sorted({label for _, label, _, _ in photos})
    truth: dict[str, list[str]] = {k: [] for k in KINDS}
    moved: dict[str, str] = {}

    def save(image: Image.Image, label: str, name: str, gray: bool, kinds: tuple[str, ...] = ()) -> str:
        rel = f"{label}/{name}.jpg"
        (dest / label).mkdir(parents=True, exist_ok=True)
        image.save(dest / rel, quality=int(rng.integers(70, 96)))
        for kind in kinds:
            truth[kind].append(rel)
        if gray and "grayscale" not in kinds:
            truth["grayscale"].append(rel)
        return rel

    for name, label, picture, gray in photos:
        for k in range(views):
            save(_view(picture, rng), label, f"{name}_view{k}", gray)
        for kind in PLANTED:
            save(plant(kind, _view(picture, rng), rng), label, f"{name}_{kind}", gray, (kind,))
        wrong = str(rng.choice([lab for lab in labels if lab != label]))
        rel = save(_view(picture, rng), wrong, f"{name}_moved", gray, ("label",))
        moved[rel] = label
    return {**{k: sorted(v) for k, v in truth.items()}, "moved": moved}


# --------------------------------------------------------------------------- the outlier parts

#: Class folders of the outlier parts: ``(label, loader)``; each holds crops of one photo's
#: regions (a folder of one kind of picture). Choice and held out share no photo.
OUTLIER_CLASSES = {
    "choice": (
        ("astronaut", "skimage.astronaut"),
        ("brick", "skimage.brick"),
        ("cell", "skimage.cell"),
        ("coffee", "skimage.coffee"),
        ("grass", "skimage.grass"),
        ("hubble", "skimage.hubble_deep_field"),
        ("china", "sklearn.china"),
    ),
    "held_out": (
        ("cat", "skimage.chelsea"),
        ("coins", "skimage.coins"),
        ("flower", "sklearn.flower"),
        ("gravel", "skimage.gravel"),
        ("ihc", "skimage.immunohistochemistry"),
        ("retina", "skimage.retina"),
        ("rocket", "skimage.rocket"),
        ("moon", "skimage.moon"),
        ("motorcycle", "skimage.stereo_motorcycle"),
    ),
}
#: Files per class folder of an outlier part.
CLASS_FILES = 12


def _load(source: str) -> Image.Image:
    """The full-size picture ``package.name`` (scikit-image, scikit-learn, matplotlib) as RGB."""
    package, name = source.split(".", 1)
    if package == "sklearn":
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg"))
    if package == "matplotlib":
        import matplotlib

        from embedkit.images import to_rgb

        return to_rgb(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / name))
    import skimage.data

    array = getattr(skimage.data, name)()
    array = array[0] if isinstance(array, tuple) else array
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        array = (255 * (array - array.min()) / max(np.ptp(array), 1e-12)).astype(np.uint8)
    from embedkit.images import to_rgb

    return to_rgb(Image.fromarray(array))


def _region(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A crop of 35-70 % of the short side somewhere in ``picture`` (aspect 3:4 to 4:3), short
    side 160-300 px, maybe mirrored, brightness x0.85-1.15: another picture of the same kind."""
    w, h = picture.size
    side = rng.uniform(0.35, 0.7) * min(w, h)
    aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(4 / 3))))
    cw, ch = min(w, round(side * np.sqrt(aspect))), min(h, round(side / np.sqrt(aspect)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    view = picture.crop((x0, y0, x0 + cw, y0 + ch))
    scale = rng.uniform(160, 300) / min(view.size)
    view = view.resize((max(1, round(view.width * scale)), max(1, round(view.height * scale))), Image.LANCZOS)
    if rng.random() < 0.5:
        view = ImageOps.mirror(view)
    return ImageEnhance.Brightness(view).enhance(rng.uniform(0.85, 1.15))


def _words(rng: np.random.Generator, n: int) -> str:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return " ".join("".join(rng.choice(letters, int(rng.integers(2, 9)))) for _ in range(n))


def _screenshot(kind: str, rng: np.random.Generator) -> Image.Image:
    """A rendered screen: an application window (``window``), a form (``form``), a terminal
    (``terminal``) or a spreadsheet (``sheet``)."""
    from PIL import ImageDraw, ImageFont

    w, h = int(rng.integers(640, 1000)), int(rng.integers(400, 640))
    font = ImageFont.load_default(size=int(rng.integers(12, 17)))
    if kind == "terminal":
        image = Image.new("RGB", (w, h), (30, 30, 36))
        draw = ImageDraw.Draw(image)
        colours = [(200, 200, 200), (120, 220, 120), (230, 200, 90), (110, 170, 250)]
        for y in range(8, h - 16, 18):
            line = "$ " + _words(rng, int(rng.integers(2, 10)))
            draw.text((10, y), line, fill=colours[int(rng.integers(4))], font=font)
        return image
    image = Image.new("RGB", (w, h), (246, 246, 246))
    draw = ImageDraw.Draw(image)
    if kind == "sheet":
        for x in range(0, w, 90):
            draw.line([(x, 0), (x, h)], fill=(200, 200, 200))
        for y in range(0, h, 22):
            draw.line([(0, y), (w, y)], fill=(200, 200, 200))
            for x in range(0, w - 90, 90):
                draw.text((x + 4, y + 4), f"{rng.uniform(0, 1e4):.2f}", fill=(20, 20, 20), font=font)
        draw.rectangle([0, 0, w, 22], fill=(33, 115, 70))
        return image
    accent = tuple(int(c) for c in rng.integers(40, 200, 3))
    draw.rectangle([0, 0, w, 34], fill=accent)
    draw.text((12, 9), _words(rng, 3).title(), fill=(255, 255, 255), font=font)
    if kind == "window":
        draw.rectangle([0, 34, 170, h], fill=(228, 230, 235))
        for y in range(50, h - 20, 28):
            draw.text((14, y), _words(rng, 2), fill=(40, 40, 40), font=font)
        for y in range(50, h - 20, 22):
            draw.text((190, y), _words(rng, int(rng.integers(4, 12))), fill=(30, 30, 30), font=font)
        return image
    for y in range(60, h - 60, 56):  # a form: labels, input boxes, a button
        draw.text((30, y), _words(rng, 2).title() + ":", fill=(30, 30, 30), font=font)
        draw.rectangle([200, y - 6, w - 40, y + 24], outline=(150, 150, 150), fill=(255, 255, 255))
    draw.rounded_rectangle([w - 180, h - 50, w - 40, h - 16], 6, fill=accent)
    return image


def _document(rng: np.random.Generator, columns: int = 1) -> Image.Image:
    """A scanned page of text: off-white paper, lines of words, a slight tilt, scanner noise."""
    from PIL import ImageDraw, ImageFont

    w, h = 850, 1100
    image = Image.new("L", (w, h), int(rng.integers(225, 245)))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=int(rng.integers(16, 22)))
    draw.text((80, 70), _words(rng, 4).title(), fill=20, font=ImageFont.load_default(size=34))
    width = (w - 160) // columns
    for c in range(columns):
        for y in range(150, h - 90, 26):
            words = _words(rng, int(rng.integers(6, 11)) // columns + 2)
            draw.text((80 + c * width, y), words, fill=int(rng.integers(10, 60)), font=font)
    image = image.rotate(float(rng.uniform(-2.5, 2.5)), fillcolor=235, resample=Image.BICUBIC)
    noisy = np.asarray(image, np.float32) + rng.normal(0, 6, (h, w))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).convert("RGB")


def _chart(kind: str, rng: np.random.Generator) -> Image.Image:
    """A rendered matplotlib chart: ``line``, ``bar``, ``scatter`` or ``pie``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    if kind == "line":
        x = np.arange(50)
        for _ in range(3):
            ax.plot(x, np.cumsum(rng.normal(size=50)), label=_words(rng, 1))
        ax.legend()
    elif kind == "bar":
        ax.bar(_words(rng, 6).split(), rng.uniform(1, 10, 6), color="tab:blue")
    elif kind == "scatter":
        ax.scatter(rng.normal(size=200), rng.normal(size=200), c=rng.uniform(size=200), cmap="viridis")
    else:
        ax.pie(rng.uniform(1, 5, 5), labels=_words(rng, 5).split(), autopct="%1.0f%%")
    ax.set_title(_words(rng, 3).title())
    if kind != "pie":
        ax.set_xlabel(_words(rng, 1))
        ax.set_ylabel(_words(rng, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _outlier_pictures(part: str, rng: np.random.Generator) -> list[tuple[str, Image.Image]]:
    """The planted outliers of ``part``: pictures from another domain than any class folder
    (two screenshots, documents, two charts, photos of another kind), each source in one part only."""
    if part == "choice":
        return [
            ("screenshot-window", _screenshot("window", rng)),
            ("screenshot-form", _screenshot("form", rng)),
            ("document", _document(rng, columns=1)),
            ("chart-line", _chart("line", rng)),
            ("chart-bar", _chart("bar", rng)),
            ("horse-silhouette", _load("skimage.horse")),
            ("phantom-scan", _load("skimage.shepp_logan_phantom")),
            ("handwriting", _load("skimage.text")),
        ]
    return [
        ("screenshot-terminal", _screenshot("terminal", rng)),
        ("screenshot-sheet", _screenshot("sheet", rng)),
        ("scanned-page", _load("skimage.page")),
        ("document-columns", _document(rng, columns=2)),
        ("chart-scatter", _chart("scatter", rng)),
        ("chart-pie", _chart("pie", rng)),
        ("clock", _load("skimage.clock")),
        ("present", _load("matplotlib.Minduka_Present_Blue_Pack.png")),
    ]


def build_outlier_part(dest: str | Path, part: str, seed: int = 0) -> list[str]:
    """Write ``part`` of the outlier experiment to ``dest``: one folder per class of
    :data:`OUTLIER_CLASSES` with :data:`CLASS_FILES` crops of its photo's regions, and the planted
    outliers of :func:`_outlier_pictures`, each in a class folder drawn at random. Returns the
    outliers' paths (the truth)."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    rng = np.random.default_rng(seed)
    classes = OUTLIER_CLASSES[part]
    for label, source in classes:
        picture = _load(source)
        (dest / label).mkdir(parents=True)
        for k in range(CLASS_FILES):
            view = _region(picture, rng)
            view.save(dest / label / f"{label}_{k:02d}.jpg", quality=int(rng.integers(70, 96)))
    truth = []
    for name, picture in _outlier_pictures(part, rng):
        label = classes[int(rng.integers(len(classes)))][0]
        picture.save(dest / label / f"{name}.jpg", quality=int(rng.integers(70, 96)))
        truth.append(f"{label}/{name}.jpg")
    return sorted(truth)


# --------------------------------------------------------------------------- choosing and scoring


def _scores(found: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((found & truth).sum())
    precision = tp / found.sum() if found.sum() else float("nan")
    recall = tp / truth.sum() if truth.sum() else float("nan")
    f1 = 2 * tp / (found.sum() + truth.sum()) if found.sum() + truth.sum() else float("nan")
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "flagged": int(found.sum()),
        "true": int(truth.sum()),
    }


def _fires(kind: str, score: np.ndarray, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return score >= threshold if HIGHER_IS_WORSE[kind] else score <= threshold


def choose(kind: str, score: np.ndarray, truth: np.ndarray) -> float:
    """The threshold with the best F1 on ``score`` (``nan`` = not scored), the middle of the
    range of thresholds that reach it, so the margin to both sides is as wide as the data allows."""
    values = np.unique(score[~np.isnan(score)])
    best, cuts = -1.0, []
    for v in values:
        f1 = _scores(_fires(kind, score, v), truth)["f1"]
        if f1 > best + 1e-12:
            best, cuts = f1, [v]
        elif abs(f1 - best) <= 1e-12:
            cuts.append(v)
    # the best range runs from the chosen score to the next score that changes the verdict
    v = cuts[0] if HIGHER_IS_WORSE[kind] else cuts[-1]
    beyond = values[values < v] if HIGHER_IS_WORSE[kind] else values[values > v]
    nxt = (beyond.max() if HIGHER_IS_WORSE[kind] else beyond.min()) if beyond.size else v
    return float((v + nxt) / 2)


def _label_share(findings, hidden: np.ndarray, k: int) -> np.ndarray:
    """The label check's share per file, as ``curate`` computes it (``nan`` = not checked)."""
    labels, used, _ = class_folder_labels(findings.paths, k)
    if not used:
        return np.full(len(findings.paths), np.nan)
    share, _ = label_scores(findings.vectors, labels, k, np.flatnonzero(~hidden))
    return np.where(~hidden, share, np.nan)


def _outlier_found(findings, image_fired: dict) -> tuple[np.ndarray, np.ndarray]:
    """Outlier z-scores where the check can report one, with the rules ``curate`` applies:
    files whose picture hides its content shape no centre, and an outlier is not reported
    where a kind of ``EXPLAINED_BY["outlier"]`` fires or the label check (at the package's
    defaults) does. Returns ``(z, hidden)``, ``z`` ``nan`` where not reportable."""
    hidden = np.logical_or.reduce([image_fired[k] for k in HIDES_CONTENT])
    labels, used, _ = class_folder_labels(findings.paths)
    z, _ = outlier_scores(findings.vectors, labels if used else None, np.flatnonzero(~hidden))
    explained = np.logical_or.reduce([image_fired[k] for k in EXPLAINED_BY["outlier"]])
    explained |= _fires("label", _label_share(findings, hidden, NEIGHBOURS["label"]), THRESHOLDS["label"])
    return np.where(explained, np.nan, z), hidden


def _embedding_scores(findings, image_fired: dict, k_lab: int) -> np.ndarray:
    """The label share, with the rules ``curate`` applies: files whose picture hides its
    content are left out."""
    hidden = np.logical_or.reduce([image_fired[k] for k in HIDES_CONTENT])
    return _label_share(findings, hidden, k_lab)


def evaluate(findings, truth: dict, thresholds: dict | None = None) -> tuple[dict, dict]:
    """Per kind: the thresholds (chosen here when ``thresholds`` is None) and the scores."""
    paths = findings.paths
    row = {p: i for i, p in enumerate(paths)}
    true = {}
    for kind in KINDS:
        t = np.zeros(len(paths), dtype=bool)
        t[[row[p] for p in truth[kind] if p in row]] = True
        true[kind] = t
    chosen = dict(thresholds or {})
    fired: dict[str, np.ndarray] = {}
    for kind in IMAGE_KINDS:  # in order: a kind is not reported where a kind it is explained by fires
        explained = np.zeros(len(paths), dtype=bool)
        for cause in EXPLAINED_BY.get(kind, ()):
            explained |= fired[cause]
        score = np.where(explained, np.nan, findings.measures[kind])
        if thresholds is None:
            chosen[kind] = choose(kind, score, true[kind])
        fired[kind] = _fires(kind, score, chosen[kind])
    if thresholds is None:
        best = (-1.0, None)
        for k_lab in NEIGHBOUR_CHOICES:
            share = _embedding_scores(findings, fired, k_lab)
            t = choose("label", share, true["label"])
            f1 = _scores(_fires("label", share, t), true["label"])["f1"]
            best = max(best, (f1, (k_lab, t)), key=lambda b: b[0])
        chosen["label_k"], chosen["label"] = best[1]
    share = _embedding_scores(findings, fired, chosen["label_k"])
    found = {**fired, "label": _fires("label", share, chosen["label"])}
    table = {kind: _scores(found[kind], true[kind]) for kind in KINDS if kind != "outlier"}
    return chosen, table


def _image_fired(findings) -> dict[str, np.ndarray]:
    """Where each image check fires at the package's thresholds (what ``curate`` reports)."""
    fired: dict[str, np.ndarray] = {}
    for kind in IMAGE_KINDS:
        explained = np.zeros(len(findings.paths), dtype=bool)
        for cause in EXPLAINED_BY.get(kind, ()):
            explained |= fired[cause]
        fired[kind] = _fires(kind, np.where(explained, np.nan, findings.measures[kind]), THRESHOLDS[kind])
    return fired


def outlier_rules(findings) -> dict[str, np.ndarray]:
    """Each compared outlier rule's score per file (higher is more of an outlier; ``nan`` =
    not scored); files whose picture hides its content shape nothing, and a file whose
    picture explains its distance (``EXPLAINED_BY["outlier"]``) or that the label check
    flags is not scored."""
    from sklearn.neighbors import LocalOutlierFactor

    from embedkit.quality import _neighbours, _unit

    fired = _image_fired(findings)
    z, hidden = _outlier_found(findings, fired)
    explained = np.isnan(z)
    voters = np.flatnonzero(~hidden)
    labels = np.array([str(lab) for lab in class_folder_labels(findings.paths)[0]])
    rules = {"centre of the class folder (the package's rule)": z}
    one_folder = np.full(len(labels), np.nan)  # each class folder curated alone: a folder of one kind
    for name in np.unique(labels):
        members = np.flatnonzero(labels == name)
        sub = np.flatnonzero(~hidden[members])
        one_folder[members] = outlier_scores(findings.vectors[members], None, sub)[0]
    rules["centre of the folder, each class folder alone"] = one_folder
    unit = _unit(findings.vectors)
    for k in (1, 3):  # distance to the k-th nearest file of the class folder, pooled robust z
        d = np.full(len(labels), np.nan)
        for name in np.unique(labels):
            members = np.flatnonzero(labels == name)
            pool = members[~hidden[members]]
            if len(pool) > k:
                _, sim = _neighbours(unit, pool, k)
                d[members] = 1.0 - sim[members, -1]
        dev = d - np.array([np.nanmedian(d[(labels == lab) & ~hidden]) for lab in labels])
        rules[f"k-th nearest in the class folder, k={k}"] = dev / (1.4826 * np.nanmedian(np.abs(dev[voters])))
    lof = LocalOutlierFactor(n_neighbors=10, metric="cosine", novelty=True).fit(findings.vectors[voters])
    rules["local outlier factor (scikit-learn, 10 neighbours, whole folder)"] = -lof.score_samples(
        findings.vectors
    )
    return {name: np.where(explained, np.nan, score) for name, score in rules.items()}


def evaluate_outliers(choice, choice_truth, held, held_truth) -> tuple[float, list[tuple]]:
    """Choose each rule's threshold on the choice part (best F1, middle of the best range);
    return the package rule's chosen threshold and, per rule, ``(name, threshold, in-sample
    scores, held-out scores at that threshold)``; the package rule is also scored held out at
    the package's default."""

    def truth(findings, paths):
        t = np.zeros(len(findings.paths), dtype=bool)
        t[[findings.paths.index(p) for p in paths]] = True
        return t

    t_choice, t_held = truth(choice, choice_truth), truth(held, held_truth)
    rules_choice, rules_held = outlier_rules(choice), outlier_rules(held)
    rows = []
    for name, score in rules_choice.items():
        t = choose("outlier", score, t_choice)
        rows.append(
            (
                name,
                t,
                _scores(_fires("outlier", score, t), t_choice),
                _scores(_fires("outlier", rules_held[name], t), t_held),
            )
        )
    package = next(iter(rules_held))
    default = _scores(_fires("outlier", rules_held[package], THRESHOLDS["outlier"]), t_held)
    rows.append((package + ", package default", THRESHOLDS["outlier"], None, default))
    return rows[0][1], rows


def _cached_curate(folder: Path, build, stored: Path | None):
    """``(findings, truth)``: ``build()`` the folder and curate it, or what ``stored`` holds."""
    import pickle

    if stored is not None and stored.exists():
        with open(stored, "rb") as f:
            return pickle.load(f)
    truth = build()
    findings = curate(folder, progress=False)
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        with open(stored, "wb") as f:
            pickle.dump((findings, truth), f)
    return findings, truth


def run_part(part: str, folder: Path, seed: int, cache: Path | None = None):
    """Build the part and curate it; with ``cache``, reuse (or store) the pickled result
    (its embeddings; the image measures are taken again, so a change to them is measured)."""
    stored = cache / f"{part}.pickle" if cache else None
    reused = stored is not None and stored.exists()
    findings, truth = _cached_curate(folder, lambda: build_part(folder, part, seed=seed), stored)
    if reused:
        from embedkit.images import load_rgb

        rows = [measure_image(load_rgb(folder / p)) for p in findings.paths]
        findings.measures.update({k: np.array([r[k] for r in rows]) for k in IMAGE_KINDS})
    return findings, truth


def run_outlier_part(part: str, folder: Path, seed: int, cache: Path | None = None):
    """Build ``part`` of the outlier experiment and curate it; with ``cache``, reuse (or store)
    the pickled ``(findings, truth)``."""
    stored = cache / f"outlier-{part}.pickle" if cache else None
    return _cached_curate(folder, lambda: build_outlier_part(folder, part, seed=seed), stored)


def _table(title: str, table: dict, chosen: dict) -> str:
    lines = [
        f"{title}",
        "| kind | threshold | true | flagged | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    for kind, s in table.items():
        t = chosen[kind]
        extra = f" (k={chosen[kind + '_k']})" if kind + "_k" in chosen else ""
        scores = f"{s['true']} | {s['flagged']} | {s['precision']:.2f} | {s['recall']:.2f}"
        lines.append(f"| {kind} | {t:.4g}{extra} | {scores} |")
    return "\n".join(lines)


def _outlier_table(rows: list[tuple]) -> str:
    lines = [
        "outlier rules: threshold chosen on the choice part (in-sample F1), scored held out",
        "| rule | threshold | in-sample F1 | held out: planted | flagged | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t, inside, held in rows:
        f1 = "—" if inside is None else f"{inside['f1']:.2f}"
        lines.append(
            f"| {name} | {t:.3g} | {f1} | {held['true']} | {held['flagged']} | "
            f"{held['precision']:.2f} | {held['recall']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="keep the planted folders here")
    parser.add_argument(
        "--cache", type=Path, default=None, help="reuse the embeddings of parts pickled here (with --keep)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write thresholds and tables as JSON")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="planted-quality-"))
    try:
        choice, choice_truth = run_part("choice", base / "choice", seed=1, cache=args.cache)
        chosen, in_sample = evaluate(choice, choice_truth)
        rounded = {k: (v if k.endswith("_k") else float(f"{v:.3g}")) for k, v in chosen.items()}
        package = {**THRESHOLDS, **{f"{k}_k": v for k, v in NEIGHBOURS.items()}}
        held, held_truth = run_part("held_out", base / "held_out", seed=2, cache=args.cache)
        _, held_out = evaluate(held, held_truth, package)
        print(f"backbone: {choice.backbone}; {len(choice.paths)} files chosen on, {len(held.paths)} held out")
        print(f"chosen (3 significant digits): {rounded}")
        if rounded != {k: package[k] for k in rounded}:
            print(f"NOTE: the package's defaults differ: {package}")
        print(_table("in-sample (choice part, where the thresholds were chosen)", in_sample, chosen))
        print()
        print(
            _table("held out (other photos; the package's defaults, nothing chosen here)", held_out, package)
        )
        print()
        out_choice, out_choice_truth = run_outlier_part("choice", base / "outlier-choice", 11, args.cache)
        out_held, out_held_truth = run_outlier_part("held_out", base / "outlier-held_out", 12, args.cache)
        chosen["outlier"], outlier_rows = evaluate_outliers(
            out_choice, out_choice_truth, out_held, out_held_truth
        )
        print(
            f"outlier parts: {len(out_choice.paths)} files chosen on, {len(out_held.paths)} held out; "
            f"outlier threshold chosen: {chosen['outlier']:.3g} (package: {THRESHOLDS['outlier']})"
        )
        print(_outlier_table(outlier_rows))
        for name, f in (("choice", choice), ("held_out", held)):
            print(f"{name}: seconds per step {json.dumps({k: round(v, 2) for k, v in f.seconds.items()})}")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "chosen": chosen,
                        "in_sample": in_sample,
                        "held_out": held_out,
                        "outlier_rules": outlier_rows,
                    },
                    indent=1,
                    default=float,
                )
                + "\n"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
