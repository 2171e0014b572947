"""Energy distance (Euclidean, pertpy's convention) and the noise floor, against known answers."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import energy_distance as scipy_energy

from mfm.metrics import distribution_metrics, energy_distance, mmd, noise_floor


def test_tiny_input_by_hand():
    # x = {0, 2}, y = {1}: E|x - y| = 1, E|x - x'| = (0 + 2 + 2 + 0) / 4 = 1, E|y - y'| = 0
    assert energy_distance(np.array([[0.0], [2.0]]), np.array([[1.0]])) == pytest.approx(1.0)
    # two points at distance 3: 2 * 3 - 0 - 0
    assert energy_distance(np.array([[0.0, 0.0]]), np.array([[3.0, 0.0]])) == pytest.approx(6.0)


def test_matches_scipy_in_one_dimension():
    # scipy returns sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|) for 1-D samples
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 1)), rng.normal(0.4, 2.0, size=(70, 1))
    assert energy_distance(x, y) == pytest.approx(scipy_energy(x[:, 0], y[:, 0]) ** 2, rel=1e-10)


def test_uses_euclidean_not_squared_distances():
    # equal means, different spreads: the squared-distance version would be 0
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = 3.0 * x
    squared = 2 * cdist(x, y, "sqeuclidean").mean() - cdist(x, x, "sqeuclidean").mean()
    squared -= cdist(y, y, "sqeuclidean").mean()
    assert squared == pytest.approx(2 * np.sum((x.mean(0) - y.mean(0)) ** 2), abs=1e-8)
    assert energy_distance(x, y) > 1.0
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)


def test_in_distribution_metrics():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 1
    out = distribution_metrics(x, y, ["energy", "mmd"], max_cells=None)
    assert out["energy"] == pytest.approx(energy_distance(x, y, max_cells=None))


def test_floor_is_the_metric_between_two_halves():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(11, 2))
    floor = noise_floor(y, ["w1", "energy"], random_state=5)
    order = np.random.default_rng(5).permutation(11)
    first, second = y[order[:5]], y[order[5:10]]
    expected = distribution_metrics(first, second, ["w1", "energy"], random_state=0)
    assert floor["w1"] == pytest.approx(expected["w1"])
    assert floor["energy"] == pytest.approx(expected["energy"])


def test_floor_estimates_a_perfect_prediction():
    # a "perfect prediction" is a fresh sample of the observed population's distribution; its
    # MMD and energy against y average to the floor rescaled to its size; a shifted one is above
    rng = np.random.default_rng(4)
    y = rng.normal(size=(400, 3))
    floor = noise_floor(y, ["mmd", "energy", "w1"], n_predicted=400, random_state=0)
    fresh = [rng.normal(size=(400, 3)) for _ in range(30)]
    perfect_mmd = np.mean([mmd(x, y) for x in fresh])
    perfect_energy = np.mean([energy_distance(x, y) for x in fresh])
    assert floor["mmd"] == pytest.approx(perfect_mmd, rel=0.35)
    assert floor["energy"] == pytest.approx(perfect_energy, rel=0.35)
    shifted = rng.normal(size=(400, 3)) + 0.5
    assert mmd(shifted, y) > 3 * floor["mmd"]
    assert energy_distance(shifted, y) > 3 * floor["energy"]
    # without n_predicted the floor is at half size: twice as large for the V-statistics
    halves = noise_floor(y, ["mmd"], random_state=0)
    assert halves["mmd"] == pytest.approx(2 * floor["mmd"])


def test_floor_needs_four_cells():
    with pytest.raises(ValueError, match="at least 4"):
        noise_floor(np.zeros((3, 2)))
