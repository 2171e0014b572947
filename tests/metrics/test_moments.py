import warnings

import numpy as np
import pandas as pd
import pytest

from mfm.metrics import corr_of_correlations, r2_means


def _cellot_corr(pred, truth):
    """The MFM/CellOT reference: pandas correlations, upper triangles, Series.corr."""

    def pairs(data):
        corr = pd.DataFrame(data).corr().to_numpy()
        return pd.Series(corr[np.triu_indices(corr.shape[0], k=1)])

    return pairs(pred).corr(pairs(truth))


def test_r2_is_one_for_identical_means():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(100, 5)) + np.arange(5)
    x = 3.0 * (y - y.mean(axis=0)) + y.mean(axis=0)  # other spread, same means
    assert r2_means(x, y) == pytest.approx(1.0)


def test_r2_by_hand():
    # Observed means (1, 2, 3), predicted (1, 2, 4): r2 = 1 - 1 / 2.
    y = np.array([[1.0, 2.0, 3.0]])
    x = np.array([[1.0, 2.0, 4.0]])
    assert r2_means(x, y) == pytest.approx(0.5)


def test_corr_is_one_for_identical_data():
    x = np.random.default_rng(1).normal(size=(80, 6)) @ np.random.default_rng(2).normal(size=(6, 6))
    assert corr_of_correlations(x, x) == pytest.approx(1.0)
    assert corr_of_correlations(x, 2.0 * x + 1.0) == pytest.approx(1.0)


def test_corr_matches_pandas_reference():
    rng = np.random.default_rng(3)
    mix = rng.normal(size=(5, 5))
    x, y = rng.normal(size=(60, 5)) @ mix, rng.normal(size=(70, 5)) @ mix
    assert corr_of_correlations(x, y) == pytest.approx(_cellot_corr(x, y), rel=1e-10)


def test_corr_drops_pairs_with_constant_features():
    rng = np.random.default_rng(4)
    mix = rng.normal(size=(5, 5))
    x, y = rng.normal(size=(60, 5)) @ mix, rng.normal(size=(70, 5)) @ mix
    x[:, 1] = 2.0  # constant in x only: its 4 pairs are dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = corr_of_correlations(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns on the constant column
        expected = _cellot_corr(x, y)
    assert value == pytest.approx(expected, rel=1e-10)
    keep = [0, 2, 3, 4]
    assert value == pytest.approx(corr_of_correlations(x[:, keep], y[:, keep]), rel=1e-10)


def test_corr_undefined_returns_nan():
    rng = np.random.default_rng(5)
    with pytest.warns(RuntimeWarning, match="undefined"):
        value = corr_of_correlations(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)))
    assert np.isnan(value)


def test_too_few_features_or_cells():
    with pytest.raises(ValueError, match="at least 2 features"):
        r2_means(np.zeros((3, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="at least 2 features"):
        corr_of_correlations(np.zeros((3, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="at least 2 cells"):
        corr_of_correlations(np.zeros((1, 3)), np.zeros((4, 3)))
