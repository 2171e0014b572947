import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel

from mfm.metrics import MFM_BANDWIDTHS, MFM_GAMMAS, mmd


def _mfm_reference(x, y):
    """compute_scalar_mmd of the Meta Flow Matching code: mean over gammas of the V-statistic."""
    return np.mean(
        [
            rbf_kernel(x, x, gamma=g).mean()
            + rbf_kernel(y, y, gamma=g).mean()
            - 2 * rbf_kernel(x, y, gamma=g).mean()
            for g in MFM_GAMMAS
        ]
    )


def _direct(x, y, sigma):
    def k(a, b):
        return np.exp(-(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)) / (2 * sigma**2))

    return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()


def test_bandwidths_are_mfm_gammas():
    np.testing.assert_allclose(
        MFM_BANDWIDTHS, [0.5, np.sqrt(0.5), 1.0, np.sqrt(5), np.sqrt(50), 10]
    )
    np.testing.assert_allclose(1 / (2 * np.square(MFM_BANDWIDTHS)), MFM_GAMMAS)


def test_identical_sets_are_zero():
    x = np.random.default_rng(0).normal(size=(50, 3))
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-12)


def test_matches_direct_formula_and_mfm_reference():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.7
    assert mmd(x, y, bandwidths=[1.3]) == pytest.approx(_direct(x, y, 1.3), rel=1e-10)
    expected = np.mean([_direct(x, y, s) for s in (0.5, 2.0)])
    assert mmd(x, y, bandwidths=(0.5, 2.0)) == pytest.approx(expected, rel=1e-10)
    assert mmd(x, y) == pytest.approx(_mfm_reference(x, y), rel=1e-10)


def test_grows_with_shift():
    rng = np.random.default_rng(2)
    x, noise = rng.normal(size=(200, 2)), rng.normal(size=(200, 2))
    values = [mmd(x, noise + shift) for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert values[0] < 0.01
    assert np.all(np.diff(values) > 0)


def test_subsampling_is_seeded():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 0.3
    a = mmd(x, y, max_cells=50, random_state=1)
    assert a == mmd(x, y, max_cells=50, random_state=1)
    assert a != mmd(x, y, max_cells=50, random_state=2)


@pytest.mark.parametrize("bandwidths", [[], [0.0], [-1.0, 1.0], [np.nan]])
def test_bad_bandwidths(bandwidths):
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="`bandwidths`"):
        mmd(x, x, bandwidths=bandwidths)


def test_dimension_mismatch():
    with pytest.raises(ValueError, match="same number of features"):
        mmd(np.zeros((3, 2)), np.zeros((3, 4)))
