"""Label borderline pairs by hand and recalibrate the near-duplicate threshold from the labels.

Lesson 05 says "label a few hundred pairs of your own data"; this is the tool for it.

- :class:`PairLabeller` is the logic, a plain class (tested without a browser): it records a
  ``same`` / ``different`` / ``skip`` answer per pair, counts what a threshold would do to
  the labelled pairs, and recalibrates the threshold from the labels with the package's rule
  (:mod:`embedkit.evaluation`), with the held-out score of the rule: the rule chosen again
  without some photos and scored on them (each fold's own threshold, not the one it returns).
- :func:`sample_around_threshold` decides what to ask: the pairs scoring near the threshold,
  where a person's answer can change the threshold, in a seeded random order (not sorted by
  score, so one answer does not suggest the next).
- :func:`labeller_widget` is a thin ipywidgets view over it: one pair at a time with
  same / different / skip buttons, and *no score*: a number next to the pictures anchors the
  answer. A threshold slider below counts what any threshold does to the pairs answered so
  far. It works in JupyterLab and Colab; where no widget front end runs (nbval, a static
  page) the notebook shows :meth:`PairLabeller.to_label` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .evaluation import (
    COSINE_GRID,
    choose_threshold,
    cross_validate_threshold,
    summarise_cross_validation,
)
from .pairs import connected_groups

__all__ = [
    "ANSWERS",
    "PairLabeller",
    "Recalibration",
    "choose_threshold_held_out",
    "labeller_widget",
    "photo_groups_from_answers",
    "sample_around_threshold",
]

#: The answers a person can give for a pair.
ANSWERS = ("same", "different", "skip")
#: Pairs scoring within this much of the threshold are the ones worth asking about.
LABEL_WIDTH = 0.10


def sample_around_threshold(
    scores: Sequence[float], threshold: float, width: float = LABEL_WIDTH, n: int | None = None, seed: int = 0
) -> np.ndarray:
    """The pairs to ask a person about: those scoring within ``width`` of ``threshold``.

    Args:
        scores: ``(m,)`` cosine similarity of each pair.
        threshold: the threshold in use.
        width: how far from the threshold a pair may score (both sides).
        n: at most this many pairs (a seeded random sample of them); ``None`` for all.
        seed: the order (and the sample) depend only on it and the scores.

    Returns:
        ``(k,)`` int64 pair indices, in a seeded random order rather than by score, so
        that the order of the questions does not hint at the answers.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not width >= 0:
        raise ValueError(f"width must be 0 or more, got {width}")
    near = np.flatnonzero(np.abs(scores - float(threshold)) <= width)
    order = np.random.default_rng(seed).permutation(near)
    return (order if n is None else order[: max(0, int(n))]).astype(np.int64)


@dataclass(frozen=True)
class Recalibration:
    """A threshold chosen from labelled pairs with the package's rule, and the rule's held-out score.

    The threshold is chosen on every labelled pair, so its own scores are in-sample. The
    held-out numbers score the *rule*: each fold chooses its own threshold without the
    held-out photos (``threshold_min`` to ``threshold_max``) and is scored on them; they are
    evidence about choosing a threshold this way, not a measurement of ``threshold``.

    Attributes:
        threshold: the rule (:func:`~embedkit.evaluation.choose_threshold`) on every labelled pair.
        n_labelled: labelled pairs used (skips excluded).
        n_photos: photo groups the answers imply (files joined by "same" answers; a file in
            no "same" pair is a photo of its own). Cross-validation holds out whole photos.
        conflicts: pairs answered "different" whose files the "same" answers join through
            other files (a~b, b~c, yet a "different" from c): the rule counts them as same;
            look at them again.
        unlabelled_same: pairs the answers imply (two files of one photo) that were never
            labelled, so have no score: the rule counts each as a pair no threshold finds,
            which lowers recall. Label every pair of a photo, or give the labeller every
            pair above the window you look at, to bring it to 0.
        in_sample_precision, in_sample_recall: the threshold's scores on the pairs it was
            chosen on (optimistic).
        folds: cross-validation folds (:func:`~embedkit.evaluation.cross_validate_threshold`).
        held_out_precision, held_out_recall: the held-out score of the rule: mean over the
            folds of the precision and recall of the threshold that fold chose without the
            held-out photos, on pairs that involve them
            (NaN when no fold found, or had, a "same" pair to score).
        held_out_precision_min, held_out_recall_min: the worst fold.
        threshold_min, threshold_max: the spread of the thresholds the folds chose.
    """

    threshold: float
    n_labelled: int
    n_photos: int
    conflicts: int
    unlabelled_same: int
    in_sample_precision: float
    in_sample_recall: float
    folds: int
    held_out_precision: float
    held_out_recall: float
    held_out_precision_min: float
    held_out_recall_min: float
    threshold_min: float
    threshold_max: float

    def __str__(self) -> str:
        text = (
            f"threshold {self.threshold:.2f} chosen on {self.n_labelled} labelled pairs of "
            f"{self.n_photos} photos (in-sample precision {self.in_sample_precision:.3f}, recall "
            f"{self.in_sample_recall:.3f}); held-out score of the rule over {self.folds} folds, "
            f"each scoring its own threshold ({self.threshold_min:.2f} to {self.threshold_max:.2f}) "
            f"on photos it did not see: precision {self.held_out_precision:.3f} (worst "
            f"{self.held_out_precision_min:.3f}), recall {self.held_out_recall:.3f} (worst "
            f"{self.held_out_recall_min:.3f})"
        )
        if self.conflicts:
            text += f"; {self.conflicts} 'different' answers contradict the 'same' ones"
        if self.unlabelled_same:
            n = self.unlabelled_same
            text += f"; {n} {'pair' if n == 1 else 'pairs'} implied but never labelled, counted as missed"
        return text


def photo_groups_from_answers(
    pairs: Sequence[tuple[str, str]], same: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Item indices of labelled pairs and the photo group of each file, as the answers imply.

    Args:
        pairs: ``(m,)`` labelled ``(a, b)`` file names.
        same: ``(m,)`` bool, the answer for each pair.

    Returns:
        ``(index_pairs, groups)``: ``(m, 2)`` int64 file indices (files numbered by first
        appearance) and ``(n_files,)`` int64 group labels, the connected groups of the
        "same" pairs (:func:`~embedkit.pairs.connected_groups`); a file in no "same" pair
        is a group of its own.
    """
    same = np.asarray(same, dtype=bool)
    index_pairs = pd.factorize(pd.Series([p for pair in pairs for p in pair], dtype=object))[0]
    index_pairs = index_pairs.reshape(-1, 2).astype(np.int64)
    n_files = int(index_pairs.max()) + 1 if len(index_pairs) else 0
    return index_pairs, connected_groups(n_files, index_pairs[same])


def choose_threshold_held_out(
    pairs: Sequence[tuple[str, str]],
    scores: np.ndarray,
    same: np.ndarray,
    seed: int = 0,
    n_folds: int = 4,
    n_repeats: int = 5,
) -> Recalibration:
    """The package's threshold rule on labelled pairs, and the rule's held-out score.

    The answers become photo groups (:func:`photo_groups_from_answers`); the threshold is
    :func:`~embedkit.evaluation.choose_threshold` on every labelled pair (grid
    :data:`~embedkit.evaluation.COSINE_GRID`, pair precision at least
    :data:`~embedkit.evaluation.MIN_PRECISION`, no two photos merged, best F1), and
    :func:`~embedkit.evaluation.cross_validate_threshold` chooses a threshold again with
    whole photos held out and scores each fold's own threshold on them: the held-out score
    of the rule, which is not a held-out score of the returned threshold (that one has seen
    every photo).

    Only the labelled pairs have scores: two files the answers join through a third but
    that were never shown as a pair count as a pair to find that no threshold finds, so
    recall is then a lower bound (``unlabelled_same`` says how many such pairs there are).

    Raises:
        ValueError: too few photos to hold some out (fewer than two), or no threshold on
            the grid satisfies the rule.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    same = np.asarray(same, dtype=bool).reshape(-1)
    if not len(pairs) == len(scores) == len(same):
        raise ValueError(
            f"{len(pairs)} pairs, {len(scores)} scores and {len(same)} answers; pass one of each per pair"
        )
    index_pairs, groups = photo_groups_from_answers(pairs, same)
    n_photos = len(np.unique(groups))
    if n_photos < 2:
        raise ValueError(
            f"the answers imply {n_photos} photo; cross-validation needs at least 2, label more pairs"
        )
    chosen = choose_threshold(index_pairs, scores, groups, COSINE_GRID)
    folds = cross_validate_threshold(
        index_pairs,
        scores,
        groups,
        COSINE_GRID,
        n_folds=min(n_folds, n_photos),
        n_repeats=n_repeats,
        seed=seed,
    )
    summary = summarise_cross_validation(folds)
    within = groups[index_pairs[:, 0]] == groups[index_pairs[:, 1]]
    conflicts = int((~same & within).sum())
    sizes = np.bincount(groups).astype(np.int64)
    labelled_within = len(np.unique(np.sort(index_pairs[within], axis=1), axis=0))
    unlabelled_same = int((sizes * (sizes - 1) // 2).sum()) - labelled_within
    return Recalibration(
        threshold=chosen.threshold,
        n_labelled=len(scores),
        n_photos=n_photos,
        conflicts=conflicts,
        unlabelled_same=unlabelled_same,
        in_sample_precision=chosen.precision,
        in_sample_recall=chosen.recall,
        folds=int(summary["folds"]),
        held_out_precision=summary["held_out_precision_mean"],
        held_out_recall=summary["held_out_recall_mean"],
        held_out_precision_min=summary["held_out_precision_min"],
        held_out_recall_min=summary["held_out_recall_min"],
        threshold_min=summary["threshold_min"],
        threshold_max=summary["threshold_max"],
    )


class PairLabeller:
    """Record same / different answers for scored pairs; count and recalibrate from them.

    Args:
        pairs: ``(a, b)`` file paths of each pair.
        scores: ``(len(pairs),)`` cosine similarity of each pair.
        threshold: the threshold in use (e.g. the backbone's calibrated one).
        width, seed: which pairs to ask about and in what order
            (:func:`sample_around_threshold`); they form :attr:`queue`.

    Every pair can be labelled (:meth:`label`), but a person is asked only about the
    pairs in :attr:`queue`, in its order (:meth:`next_to_label`).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        scores: Sequence[float],
        threshold: float,
        *,
        width: float = LABEL_WIDTH,
        seed: int = 0,
    ):
        if len(pairs) != len(scores):
            raise ValueError(f"{len(pairs)} pairs but {len(scores)} scores; pass one score per pair")
        self.pairs = [(str(a), str(b)) for a, b in pairs]
        self.scores = np.asarray(scores, dtype=np.float64)
        self.threshold = float(threshold)
        self.answers: dict[int, str] = {}
        self.queue = sample_around_threshold(self.scores, self.threshold, width, seed=seed)

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

    def next_to_label(self) -> int | None:
        """The first pair of :attr:`queue` without a label, or ``None`` when all have one."""
        return next((int(i) for i in self.queue if int(i) not in self.answers), None)

    def to_label(self) -> pd.DataFrame:
        """The pairs to ask about, in the order they are asked, with their labels: no scores."""
        return pd.DataFrame(
            {
                "a": [self.pairs[i][0] for i in self.queue],
                "b": [self.pairs[i][1] for i in self.queue],
                "label": [self.answers.get(int(i), "") for i in self.queue],
            }
        )

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
        """Choose a new threshold from the labels and make it the current one.

        See :func:`choose_threshold_held_out` (the package's rule, cross-validated on photos).
        """
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
    """An ipywidgets view: the pairs of ``labeller.queue`` one at a time, no score shown.

    Same / different / skip buttons answer the pair on screen and move to the next one in
    the queue. Below, a threshold slider counts what any threshold does to the pairs
    answered so far (counts only, never the score of a pair).
    """
    from pathlib import Path

    import ipywidgets as widgets

    from .report import thumbnail_uri

    queue = labeller.queue

    def following(position: int) -> int | None:
        """The next queue position whose pair has no label, wrapping round (skips come back last)."""
        for step in range(1, len(queue) + 1):
            j = (position + step) % len(queue)
            if int(queue[j]) not in labeller.answers:
                return j
        return None

    state = {"position": following(-1) if len(queue) else None}
    left, right = widgets.HTML(), widgets.HTML()
    caption, tally = widgets.HTML(), widgets.HTML()
    buttons = [
        widgets.Button(description=a, button_style=s)
        for a, s in zip(ANSWERS, ("success", "danger", ""), strict=True)
    ]
    slider = widgets.FloatSlider(
        value=labeller.threshold,
        min=float(labeller.scores.min(initial=labeller.threshold)) - 0.05,
        max=min(1.0, float(labeller.scores.max(initial=labeller.threshold)) + 0.05),
        step=0.005,
        description="threshold",
        readout_format=".3f",
        continuous_update=True,
    )

    def image(path: str) -> str:
        return f'<img src="{thumbnail_uri(Path(root) / path, thumbnail)}" title="{Path(path).name}">'

    def show() -> None:
        position = state["position"]
        done = sum(int(k) in labeller.answers for k in queue)
        if position is None:
            left.value = right.value = ""
            caption.value = f"all {len(queue)} pairs answered; now run labeller.recalibrate()"
        else:
            a, b = labeller.pairs[int(queue[position])]
            left.value, right.value = image(a), image(b)
            caption.value = (
                f"{done} of {len(queue)} pairs answered. Is <b>{Path(a).name}</b> the same photo as "
                f"<b>{Path(b).name}</b>?"
            )
        c = labeller.counts(slider.value)
        counted = ", ".join(f"{k} {v}" for k, v in c.items())
        tally.value = f"answered so far, at the slider's threshold: {counted}"

    def answer(button) -> None:
        if state["position"] is not None:
            labeller.label(int(queue[state["position"]]), button.description)
            state["position"] = following(state["position"])
        show()

    for button in buttons:
        button.on_click(answer)
    slider.observe(lambda _: show(), names="value")
    show()
    return widgets.VBox([widgets.HBox([left, right]), caption, widgets.HBox(buttons), slider, tally])
