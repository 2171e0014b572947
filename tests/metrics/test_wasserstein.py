import itertools
import warnings

import numpy as np
import ot
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from mfm.metrics import _wasserstein, w1, w2, wasserstein


def test_diracs():
    x, y = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    assert w1(x, y) == pytest.approx(5.0)
    assert w2(x, y) == pytest.approx(5.0)


def test_one_point_against_two():
    # All mass of x must go to both points of y: W1 = mean distance, W2 = sqrt(mean sq. distance).
    x, y = np.array([[0.0]]), np.array([[1.0], [3.0]])
    assert w1(x, y) == pytest.approx(2.0)
    assert w2(x, y) == pytest.approx(np.sqrt(5.0))


def test_three_points_by_hand():
    # x on a line, y a permuted shift by 0.5: the sorted matching moves every point by 0.5.
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array([[2.5], [0.5], [1.5]])
    assert w1(x, y) == pytest.approx(0.5)
    assert w2(x, y) == pytest.approx(0.5)


def test_three_by_three_equals_best_permutation():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    sq = cdist(x, y, "sqeuclidean")
    best = min(sq[range(3), perm].mean() for perm in itertools.permutations(range(3)))
    assert w2(x, y) == pytest.approx(np.sqrt(best))
    dist = np.sqrt(sq)
    best1 = min(dist[range(3), perm].mean() for perm in itertools.permutations(range(3)))
    assert w1(x, y) == pytest.approx(best1)


def test_one_dimensional_sorted_formula():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 1)), rng.exponential(size=(300, 1))
    expected_w2 = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert w2(x, y) == pytest.approx(expected_w2, rel=1e-10)
    expected_w1 = np.mean(np.abs(np.sort(x[:, 0]) - np.sort(y[:, 0])))
    assert w1(x, y) == pytest.approx(expected_w1, rel=1e-10)
    # Unequal sizes: scipy's 1-D W1.
    assert w1(x, y[:170]) == pytest.approx(wasserstein_distance(x[:, 0], y[:170, 0]), rel=1e-8)


def test_equals_pot_reference():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(70, 4)) + 1.0
    cost = ot.dist(x, y, metric="sqeuclidean")
    assert w2(x, y) == pytest.approx(np.sqrt(ot.emd2(ot.unif(50), ot.unif(70), cost)), rel=1e-8)


def test_shifted_gaussians():
    rng = np.random.default_rng(4)
    mu = np.array([3.0, -1.0])
    x = rng.normal(size=(1000, 2))
    y = rng.normal(size=(1000, 2)) + mu
    # W2(N(0, I), N(mu, I)) = ||mu||; the empirical version adds a small sampling bias.
    assert w2(x, y) == pytest.approx(np.linalg.norm(mu), abs=0.1)
    assert w1(x, y) <= w2(x, y) + 1e-12


def test_identical_sets_are_zero():
    x = np.random.default_rng(5).normal(size=(40, 3))
    assert w1(x, x[::-1]) == pytest.approx(0.0, abs=1e-12)
    assert w2(x, x[::-1]) == pytest.approx(0.0, abs=1e-12)


def test_subsampling_is_seeded():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(250, 2)) + 0.5
    a = w2(x, y, max_cells=100, random_state=7)
    assert a == w2(x, y, max_cells=100, random_state=7)
    assert a != w2(x, y, max_cells=100, random_state=8)
    assert w2(x, y, max_cells=None) == w2(x, y, max_cells=300, random_state=9)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((0, 2)), np.zeros((3, 2)), "at least one cell"),
        (np.zeros((3, 2)), np.zeros((3, 3)), "same number of features"),
        (np.array([[0.0, np.nan]]), np.zeros((3, 2)), "NaN or infinite"),
        (np.zeros((3, 2)), np.array([[np.inf, 0.0]]), "NaN or infinite"),
        (np.zeros(3), np.zeros((3, 1)), "2-D array"),
    ],
)
def test_bad_inputs(x, y, match):
    with pytest.raises(ValueError, match=match):
        w1(x, y)


def test_bad_options():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="`p`"):
        wasserstein(x, x, p=3)
    with pytest.raises(ValueError, match="`max_cells`"):
        wasserstein(x, x, max_cells=0)


def test_warns_when_simplex_stops_early(monkeypatch):
    monkeypatch.setattr(_wasserstein, "_num_iter_max", lambda n, m: 5)
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(60, 5)), rng.normal(size=(60, 5))
    with pytest.warns(RuntimeWarning, match="did not reach optimality"):
        w2(x, y)


@pytest.mark.slow
def test_2000_cells_converge_without_warning():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(2500, 43)), rng.normal(size=(2200, 43)) + 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = w2(x, y)
    assert np.isfinite(value)
