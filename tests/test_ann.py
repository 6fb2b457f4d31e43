"""embedkit.ann's collection model: the Gaussian is sklearn's Ledoit-Wolf estimate, copies sit
at the cosines they were drawn with, and the draw has the structure the docstring promises."""

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf

from embedkit.ann import (
    ShrunkGaussian,
    build_flat,
    build_ivf,
    draw_collection,
    fit_collection_model,
    pair_recall,
    range_pairs,
    unit_rows,
)


def _real_like(seed=0, photos=12, d=40):
    """Photos around a common direction (cosine about 0.5), and three edited copies of each."""
    rng = np.random.default_rng(seed)
    p = unit_rows(1.0 + rng.standard_normal((photos, d)))
    originals = np.repeat(p, 3, axis=0)
    edited = unit_rows(originals + 0.3 * rng.standard_normal(originals.shape) / np.sqrt(d))
    return p, edited, originals


def test_shrunk_gaussian_covariance_is_sklearns_ledoit_wolf():
    x = np.random.default_rng(1).standard_normal((9, 25)) @ np.diag(np.linspace(0.1, 3, 25))
    fitted = ShrunkGaussian.fit(x)
    covariance, shrinkage = ledoit_wolf(x)
    assert fitted.shrinkage == pytest.approx(shrinkage)
    np.testing.assert_allclose(fitted.covariance(), covariance, atol=1e-10)
    np.testing.assert_allclose(fitted.mean, x.mean(axis=0))


def test_shrunk_gaussian_draws_have_its_mean_and_covariance():
    x = np.random.default_rng(2).standard_normal((6, 8)) * np.arange(1, 9)
    fitted = ShrunkGaussian.fit(x)
    draws = fitted.draw(200_000, np.random.default_rng(3))
    np.testing.assert_allclose(draws.mean(axis=0), fitted.mean, atol=0.05)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), fitted.covariance(), atol=0.15)


def test_shrunk_gaussian_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        ShrunkGaussian.fit(np.ones((1, 4)))


def test_copies_sit_at_a_real_cosine_from_their_photo():
    model = fit_collection_model(*_real_like())
    vectors, source = draw_collection(model, photos=50, with_copies=10, copies=3, seed=4)
    assert vectors.shape == (80, 40) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(source[:50], np.arange(50))
    np.testing.assert_array_equal(source[50:], np.repeat(np.arange(10), 3))
    cos = np.einsum("ij,ij->i", vectors[50:], vectors[source[50:]])
    nearest = np.abs(cos[:, None] - model.cosines[None, :]).min(axis=1)
    assert nearest.max() < 1e-5  # each copy's cosine is one of the real edited pairs' cosines


def test_exact_copies_are_left_out_of_the_cosines():
    p, edited, originals = _real_like()
    edited[:4] = originals[:4]
    model = fit_collection_model(p, edited, originals)
    assert len(model.cosines) == len(edited) - 4 and model.cosines.max() < 0.999


def test_strangers_are_as_similar_as_real_photos_on_average():
    photos, edited, originals = _real_like(photos=30)
    model = fit_collection_model(photos, edited, originals)
    drawn, _ = draw_collection(model, photos=400, with_copies=0, seed=5)
    real = photos @ photos.T
    fake = drawn @ drawn.T
    iu_r, iu_f = np.triu_indices(len(photos), 1), np.triu_indices(len(drawn), 1)
    assert abs(np.median(real[iu_r]) - np.median(fake[iu_f])) < 0.05


def test_same_seed_same_collection_other_seed_other():
    model = fit_collection_model(*_real_like())
    a, _ = draw_collection(model, 20, 5, seed=7)
    b, _ = draw_collection(model, 20, 5, seed=7)
    c, _ = draw_collection(model, 20, 5, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_draw_collection_refuses_more_copied_photos_than_photos():
    model = fit_collection_model(*_real_like())
    with pytest.raises(ValueError, match="with_copies"):
        draw_collection(model, photos=3, with_copies=4)


def test_ivf_on_a_drawn_collection_misses_pairs_at_one_cell_and_finds_all_at_every_cell():
    """Where copies and strangers share cells, one probed cell loses pairs; all cells lose none."""
    photos, edited, originals = _real_like(photos=30, d=64)
    model = fit_collection_model(photos, edited, originals)
    x, source = draw_collection(model, photos=2000, with_copies=300, copies=2, seed=6)
    queries = np.flatnonzero(source < 300)
    exact = range_pairs(build_flat(x), x[queries], queries, 0.9)
    assert (source[exact[:, 0]] == source[exact[:, 1]]).mean() > 0.9  # mostly planted pairs
    ivf = build_ivf(x, nlist=64)
    ivf.nprobe = 1
    assert pair_recall(range_pairs(ivf, x[queries], queries, 0.9), exact) < 0.99
    ivf.nprobe = 64
    assert pair_recall(range_pairs(ivf, x[queries], queries, 0.9), exact) == 1.0


def test_choose_nprobe_takes_the_smallest_that_reaches_the_target_in_any_order():
    from embedkit.ann import choose_nprobe

    assert choose_nprobe([1, 2, 4, 8], [0.5, 0.9, 0.95, 0.99], 0.95) == 4  # reaching counts (>=)
    assert choose_nprobe([8, 2, 4, 1], [0.99, 0.9, 0.96, 0.5], 0.95) == 4  # rows in any order
    assert choose_nprobe([1, 2], [0.5, 0.9], 0.95) is None
    assert type(choose_nprobe(np.array([1, 2]), np.array([0.99, 1.0]), 0.95)) is int
    with pytest.raises(ValueError, match="one recall per nprobe"):
        choose_nprobe([1, 2], [0.5], 0.9)
