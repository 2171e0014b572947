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


def test_feature_kind_divides_each_feature_by_its_standard_deviation():
    x = np.array([[0.0, 1.0, 5.0], [2.0, 1.0, 9.0], [4.0, 1.0, 7.0]])
    scaling = FeatureScaling.fit(x, kind="feature")
    np.testing.assert_allclose(scaling.scale, [np.sqrt(8 / 3), 1.0, np.sqrt(8 / 3)])
    z = scaling.transform(x, dtype=np.float64)
    np.testing.assert_allclose(z.std(0), [1.0, 0.0, 1.0])  # the constant feature is centred
    np.testing.assert_allclose(scaling.inverse(z, dtype=np.float64), x, atol=1e-12)
    with pytest.raises(ValueError, match="'global' or 'feature'"):
        FeatureScaling.fit(x, kind="none")


@pytest.mark.parametrize("kind", ["global", "feature"])
def test_streamed_statistics_match_the_in_memory_scaling(kind):
    from mfm.data import PopulationPairs, feature_statistics

    rng = np.random.default_rng(0)
    x = rng.normal(2.0, [1.0, 3.0, 0.5], size=(50, 3)).astype(np.float32)
    cells = [np.arange(0, 20), np.arange(20, 50)]
    pairs = PopulationPairs(x, cells, ["c", "t"], np.array([0, 0]), np.array([-1, 0]), ["t"])
    mean, scale = feature_statistics(pairs, np.array([1]), kind)
    expected = FeatureScaling.fit(x[:20], kind=kind)  # the training control cells only
    np.testing.assert_allclose(mean, expected.mean)
    np.testing.assert_allclose(scale, np.broadcast_to(expected.scale, (3,)))
    assert feature_statistics(pairs, np.array([1]), "none") == ([], [])
