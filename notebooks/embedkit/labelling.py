"""Label borderline pairs by hand and recalibrate the near-duplicate threshold from the labels.

Lesson 05 says "label a few hundred pairs of your own data"; this is the tool for it.

- :class:`PairLabeller` is the logic, a plain class (tested without a browser): it records a
  ``same`` / ``different`` / ``skip`` answer per pair, counts what a threshold would do to
  the labelled pairs, and recalibrates the threshold from the labels, reporting the result on
  labelled pairs it was *not* chosen on.
- :func:`labeller_widget` is a thin ipywidgets view over it: one pair at a time with
  same / different / skip buttons and a threshold slider whose counts update live. It works
  in JupyterLab and Colab; where no widget front end runs (nbval, a static page) the
  notebook shows :meth:`PairLabeller.table` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .pairs import connected_groups

__all__ = ["ANSWERS", "Recalibration", "PairLabeller", "labeller_widget", "choose_threshold_held_out"]

#: The answers a person can give for a pair.
ANSWERS = ("same", "different", "skip")

#: Lesson 05's rule: the threshold with the best F1 among those with at least this precision.
MIN_PRECISION = 0.95


@dataclass(frozen=True)
class Recalibration:
    """A threshold chosen on some labelled pairs and scored on the others.

    Attributes:
        threshold: the chosen threshold.
        n_labelled: labelled pairs used (skips excluded).
        n_chosen_on, n_held_out: pairs the threshold was chosen on, and scored on.
        held_out_precision, held_out_recall: the threshold's precision and recall on the
            held-out pairs (NaN when they hold no "same" pair, or nothing is predicted).
    """

    threshold: float
    n_labelled: int
    n_chosen_on: int
    n_held_out: int
    held_out_precision: float
    held_out_recall: float

    def __str__(self) -> str:
        return (
            f"threshold {self.threshold:.3f} chosen on {self.n_chosen_on} labelled pairs; on the other "
            f"{self.n_held_out}: precision {self.held_out_precision:.3f}, recall {self.held_out_recall:.3f}"
        )


def _rule(scores: np.ndarray, same: np.ndarray) -> float:
    """Lesson 05's rule on labelled pairs: best F1 with precision >= MIN_PRECISION (best F1 if none)."""
    candidates = np.unique(scores)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    tp = np.cumsum(y)
    predicted = np.arange(1, len(s) + 1)
    # at threshold t = candidates[k], predicted same are all pairs with score >= t
    last = len(s) - np.searchsorted(s[::-1], candidates, side="left") - 1
    tp_at, pred_at = tp[last], predicted[last]
    precision = tp_at / pred_at
    f1 = 2 * tp_at / (pred_at + max(1, int(y.sum())))
    eligible = precision >= MIN_PRECISION
    pool = np.flatnonzero(eligible) if eligible.any() else np.arange(len(candidates))
    best = pool[np.argmax(f1[pool])]
    return float(candidates[best])


def choose_threshold_held_out(
    pairs: Sequence[tuple[str, str]], scores: np.ndarray, same: np.ndarray, seed: int = 0
) -> Recalibration:
    """Choose a threshold on half of the labelled pairs and score it on the other half.

    The halves are group-aware: the photo groups the "same" answers imply are split in two,
    a pair is used on the side both its files are on (pairs across the halves are left out),
    so no photo is both chosen on and scored on.

    This is the labeller's one call site for the threshold rule; when the package's
    held-out rule (``embedkit.evaluation``) is used instead, only this function changes.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    names = pd.factorize(pd.Series([p for pair in pairs for p in pair]))[0].reshape(-1, 2)
    n_files = int(names.max()) + 1 if len(names) else 0
    # Photo groups as the labels imply them: files joined by "same" answers.
    photo = connected_groups(n_files, names[same])
    rng = np.random.default_rng(seed)
    photos = np.unique(photo)
    in_first = np.isin(photo, rng.permutation(photos)[: max(1, len(photos) // 2)])
    first_a, first_b = in_first[names[:, 0]], in_first[names[:, 1]]
    choose = first_a & first_b
    held_only = ~first_a & ~first_b  # pairs across the two halves are used by neither
    held = held_only
    if not same[choose].any() or not held.any():
        raise ValueError(
            "too few labelled photos to choose on one half and score on the other; label more pairs"
        )
    threshold = _rule(scores[choose], same[choose])
    predicted = held & (scores >= threshold)
    tp = int((predicted & same).sum())
    precision = tp / predicted.sum() if predicted.any() else float("nan")
    recall = tp / (held & same).sum() if (held & same).any() else float("nan")
    return Recalibration(
        threshold, int(len(scores)), int(choose.sum()), int(held.sum()), float(precision), float(recall)
    )


class PairLabeller:
    """Record same / different answers for scored pairs; count and recalibrate from them.

    Args:
        pairs: ``(a, b)`` file paths of each pair.
        scores: ``(len(pairs),)`` cosine similarity of each pair.
        threshold: the threshold in use (e.g. the backbone's calibrated one).
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], scores: Sequence[float], threshold: float):
        if len(pairs) != len(scores):
            raise ValueError(f"{len(pairs)} pairs but {len(scores)} scores; pass one score per pair")
        self.pairs = [(str(a), str(b)) for a, b in pairs]
        self.scores = np.asarray(scores, dtype=np.float64)
        self.threshold = float(threshold)
        self.answers: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def label(self, index: int, answer: str) -> None:
        """Record ``"same"`` or ``"different"`` for pair ``index``; ``"skip"`` removes its label."""
        if answer not in ANSWERS:
            raise ValueError(f"answer must be same, different or skip, got {answer!r}")
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"pair {index} does not exist; there are {len(self.pairs)} pairs")
        if answer == "skip":
            self.answers.pop(index, None)
        else:
            self.answers[index] = answer

    def next_unlabelled(self, after: int = -1) -> int | None:
        """The first pair after ``after`` without a label, or ``None``."""
        return next((i for i in range(after + 1, len(self.pairs)) if i not in self.answers), None)

    def _labelled(self) -> tuple[np.ndarray, np.ndarray]:
        idx = np.array(sorted(self.answers), dtype=np.int64)
        return idx, np.array([self.answers[i] == "same" for i in idx], dtype=bool)

    def counts(self, threshold: float | None = None) -> dict[str, int]:
        """What ``threshold`` (default: the current one) does to the labelled pairs."""
        t = self.threshold if threshold is None else float(threshold)
        idx, same = self._labelled()
        predicted = self.scores[idx] >= t
        return {
            "labelled": len(idx),
            "same": int(same.sum()),
            "different": int((~same).sum()),
            "predicted same": int(predicted.sum()),
            "true positives": int((predicted & same).sum()),
            "false positives": int((predicted & ~same).sum()),
            "missed": int((~predicted & same).sum()),
        }

    def recalibrate(self, seed: int = 0) -> Recalibration:
        """Choose a new threshold from the labels (held-out rule) and make it the current one."""
        idx, same = self._labelled()
        if len(idx) < 4 or same.all() or not same.any():
            raise ValueError(
                f"label at least 4 pairs, some 'same' and some 'different', first "
                f"({len(idx)} labelled, {int(same.sum())} same)"
            )
        result = choose_threshold_held_out([self.pairs[i] for i in idx], self.scores[idx], same, seed)
        self.threshold = result.threshold
        return result

    def table(self) -> pd.DataFrame:
        """Every pair with its score, its label and what the current threshold says."""
        return pd.DataFrame(
            {
                "a": [a for a, _ in self.pairs],
                "b": [b for _, b in self.pairs],
                "score": self.scores.round(3),
                "label": [self.answers.get(i, "") for i in range(len(self.pairs))],
                "at threshold": np.where(self.scores >= self.threshold, "same", "different"),
            }
        )


def labeller_widget(labeller: PairLabeller, root: str = "", thumbnail: int = 192):
    """An ipywidgets view: one pair at a time, same / different / skip, a live threshold slider."""
    from pathlib import Path

    import ipywidgets as widgets

    from .report import thumbnail_uri

    state = {"index": labeller.next_unlabelled() or 0}
    left, right = widgets.HTML(), widgets.HTML()
    caption, tally = widgets.HTML(), widgets.HTML()
    buttons = [
        widgets.Button(description=a, button_style=s)
        for a, s in zip(ANSWERS, ("success", "danger", ""), strict=True)
    ]
    slider = widgets.FloatSlider(
        value=labeller.threshold,
        min=float(labeller.scores.min()) - 0.05,
        max=min(1.0, float(labeller.scores.max()) + 0.05),
        step=0.005,
        description="threshold",
        readout_format=".3f",
        continuous_update=True,
    )

    def image(path: str) -> str:
        return f'<img src="{thumbnail_uri(Path(root) / path, thumbnail)}" title="{path}">'

    def show() -> None:
        i = state["index"]
        a, b = labeller.pairs[i]
        left.value, right.value = image(a), image(b)
        caption.value = (
            f"pair {i + 1} of {len(labeller)}: cosine <b>{labeller.scores[i]:.3f}</b>, "
            f"label: {labeller.answers.get(i, 'none yet')}"
        )
        c = labeller.counts(slider.value)
        tally.value = ", ".join(f"{k}: {v}" for k, v in c.items())

    def answer(button) -> None:
        labeller.label(state["index"], button.description)
        following = labeller.next_unlabelled(state["index"])
        state["index"] = following if following is not None else state["index"]
        show()

    for button in buttons:
        button.on_click(answer)
    slider.observe(lambda _: show(), names="value")
    show()
    return widgets.VBox([widgets.HBox([left, right]), caption, widgets.HBox(buttons), slider, tally])
