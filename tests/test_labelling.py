"""What a person is asked to label: pairs near the threshold, in a seeded random order, no score shown."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from embedkit.labelling import PairLabeller, Recalibration, labeller_widget, sample_around_threshold

# Twelve pairs; by hand, those within 0.1 of 0.6 are 2 (0.52), 3 (0.5873), 5 (0.6137),
# 6 (0.6631) and 8 (0.7) (inclusive bounds); the others lie further away.
SCORES = np.array([0.1, 0.35, 0.52, 0.5873, 0.49, 0.6137, 0.6631, 0.95, 0.7, 1.0, 0.2, 0.71])
NEAR = {2, 3, 5, 6, 8}


def test_sample_is_the_pairs_near_the_threshold_and_nothing_else():
    chosen = sample_around_threshold(SCORES, 0.6, width=0.1, seed=0)
    assert chosen.dtype == np.int64
    assert sorted(chosen.tolist()) == sorted(NEAR)
    assert sample_around_threshold(SCORES, 0.6, width=0.0).tolist() == []
    assert sorted(sample_around_threshold(SCORES, 0.6, width=1.0).tolist()) == list(range(len(SCORES)))
    with pytest.raises(ValueError, match="width"):
        sample_around_threshold(SCORES, 0.6, width=-0.1)


def test_sample_order_is_seeded_and_not_by_score():
    first = sample_around_threshold(SCORES, 0.6, width=0.1, seed=3)
    again = sample_around_threshold(SCORES, 0.6, width=0.1, seed=3)
    assert first.tolist() == again.tolist()
    # Over many seeds the orders differ, and some are neither ascending nor descending by score.
    orders = {tuple(sample_around_threshold(SCORES, 0.6, width=0.1, seed=s)) for s in range(40)}
    assert len(orders) > 10
    by_score = [tuple(sorted(NEAR, key=lambda i: SCORES[i])), tuple(sorted(NEAR, key=lambda i: -SCORES[i]))]
    assert any(order not in by_score for order in orders)


def test_sample_of_n_is_a_prefix_of_the_same_order():
    full = sample_around_threshold(SCORES, 0.6, width=0.1, seed=7)
    assert sample_around_threshold(SCORES, 0.6, width=0.1, n=3, seed=7).tolist() == full[:3].tolist()
    assert len(sample_around_threshold(SCORES, 0.6, width=0.1, n=100, seed=7)) == len(NEAR)


def test_labeller_asks_about_its_queue_in_order_and_skips_answered_pairs():
    pairs = [(f"a{i}.png", f"b{i}.png") for i in range(len(SCORES))]
    labeller = PairLabeller(pairs, SCORES, threshold=0.6, width=0.1, seed=5)
    queue = sample_around_threshold(SCORES, 0.6, width=0.1, seed=5).tolist()
    assert labeller.queue.tolist() == queue
    assert labeller.next_to_label() == queue[0]
    labeller.label(queue[0], "same")
    labeller.label(queue[2], "different")
    assert labeller.next_to_label() == queue[1]
    table = labeller.to_label()
    assert list(table.columns) == ["a", "b", "label"]  # no score column
    assert table["a"].tolist() == [pairs[i][0] for i in queue]
    assert table["label"].tolist()[:3] == ["same", "", "different"]
    for i in queue:
        labeller.label(i, "same")
    assert labeller.next_to_label() is None


def _texts(widget) -> list[str]:
    """Every text a widget tree shows: HTML values, button labels, descriptions."""
    texts = []
    for name in ("value", "description"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            texts.append(value)
    for child in getattr(widget, "children", ()):
        texts.extend(_texts(child))
    return texts


def _visible(html: str) -> str:
    """An HTML value without its tags and inline images (base64 data is not shown)."""
    return re.sub(r"<[^>]*>", " ", html)


def test_widget_never_shows_a_pair_score(tmp_path):
    pytest.importorskip("ipywidgets")
    names = []
    for i in range(len(SCORES)):
        for side in "ab":
            name = f"{side}{i}.png"
            Image.new("RGB", (8, 8), (20 * i, 0, 0)).save(tmp_path / name)
        names.append((f"a{i}.png", f"b{i}.png"))
    labeller = PairLabeller(names, SCORES, threshold=0.6, width=0.1, seed=1)
    view = labeller_widget(labeller, root=str(tmp_path), thumbnail=8)
    buttons = view.children[2].children
    shown = []
    for step in range(len(labeller.queue)):  # answer every pair, reading the screen each time
        shown.append(" ".join(_visible(t) for t in _texts(view)))
        buttons[step % 2].click()
    shown.append(" ".join(_visible(t) for t in _texts(view)))
    on_screen = " ".join(shown)
    for score in SCORES:
        for digits in (2, 3, 4):
            assert f"{score:.{digits}f}" not in on_screen, (score, digits)
    # The pair on screen was each pair of the queue in turn, by name.
    for i in labeller.queue:
        assert f"a{i}.png" in on_screen and f"b{i}.png" in on_screen
    assert "all 5 pairs answered" in shown[-1]
    assert set(labeller.answers) == NEAR


def test_recalibration_reads_as_the_rules_held_out_score_not_the_thresholds():
    # Built by hand: the threshold chosen on every pair, and folds that chose 0.55 to 0.62.
    result = Recalibration(
        threshold=0.6, n_labelled=40, n_photos=8, conflicts=0, unlabelled_same=0,
        in_sample_precision=1.0, in_sample_recall=0.9, folds=20,
        held_out_precision=0.97, held_out_recall=0.85, held_out_precision_min=0.8,
        held_out_recall_min=0.7, threshold_min=0.55, threshold_max=0.62,
    )  # fmt: skip
    text = str(result)
    assert text.startswith(
        "threshold 0.60 chosen on 40 labelled pairs of 8 photos (in-sample precision 1.000"
    )
    assert "held-out score of the rule over 20 folds" in text
    assert "each scoring its own threshold (0.55 to 0.62)" in text
    assert "precision 0.970 (worst 0.800), recall 0.850 (worst 0.700)" in text
    assert "on held-out photos" not in text  # the old wording, which read as a score of 0.60
