import numpy as np
import pytest

from mfm.data import FeatureScaling


def test_fit_transform_inverse_known_answer():
    x = np.array([[0.0, 0.0], [2.0, 4.0], [4.0, 8.0]])
    scaling = FeatureScaling.fit(x)
    np.testing.assert_array_equal(scaling.mean, [2.0, 4.0])
    # variances 8/3 and 32/3: scale = sqrt(mean) = sqrt(20/3).
    assert scaling.scale == pytest.approx(np.sqrt(20 / 3))
    z = scaling.transform(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.var(0).mean(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(scaling.inverse(z), x, atol=1e-6)
    z64 = scaling.transform(x, dtype=np.float64)
    np.testing.assert_array_equal(z64, (x - x.mean(0)) / np.sqrt(20 / 3))


def test_constant_features_and_bad_input():
    assert FeatureScaling.fit(np.ones((4, 3))).scale == 1.0
    with pytest.raises(ValueError, match="non-empty"):
        FeatureScaling.fit(np.zeros((0, 3)))
