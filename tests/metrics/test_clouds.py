import time

import numpy as np
import ot
import pytest

from mfm.metrics import cloud_summaries, cloud_w2_matrix


def _emd_w2(a, b):
    return np.sqrt(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), ot.dist(a, b, metric="sqeuclidean")))


def test_equals_emd_per_pair_symmetric():
    rng = np.random.default_rng(0)
    clouds = rng.normal(size=(8, 16, 3)) + rng.normal(size=(8, 1, 3))
    d = cloud_w2_matrix(clouds)
    expected = np.array([[_emd_w2(a, b) for b in clouds] for a in clouds])
    np.testing.assert_allclose(d, expected, atol=1e-7)
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0.0)


def test_unequal_sizes_and_two_collections():
    rng = np.random.default_rng(1)
    a = [rng.normal(size=(n, 2)) for n in (16, 12, 16, 5)]
    b = [rng.normal(size=(n, 2)) + 1.0 for n in (12, 16, 16)]
    d = cloud_w2_matrix(a, b)
    assert d.shape == (4, 3)
    expected = np.array([[_emd_w2(x, y) for y in b] for x in a])
    np.testing.assert_allclose(d, expected, atol=1e-7)
    sym = cloud_w2_matrix(a)
    np.testing.assert_allclose(sym, [[_emd_w2(x, y) for y in a] for x in a], atol=1e-7)


def test_array_and_list_inputs_agree_and_translation():
    rng = np.random.default_rng(2)
    clouds = rng.normal(size=(4, 16, 2))
    np.testing.assert_allclose(cloud_w2_matrix(clouds), cloud_w2_matrix(list(clouds)))
    shift = np.array([3.0, 4.0])
    d = cloud_w2_matrix(clouds, clouds + shift)
    # W2 between a cloud and its translate is the length of the translation.
    np.testing.assert_allclose(np.diag(d), 5.0)
    np.testing.assert_allclose(cloud_w2_matrix(clouds, clouds[::-1])[:, ::-1].diagonal(), 0.0)


def test_bad_clouds():
    with pytest.raises(ValueError, match="at least one point cloud"):
        cloud_w2_matrix([])
    with pytest.raises(ValueError, match=r"\(B, n, d\)"):
        cloud_w2_matrix(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="same number of dimensions"):
        cloud_w2_matrix([np.zeros((3, 2)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="`clouds_a` and `clouds_b`"):
        cloud_w2_matrix([np.zeros((3, 2))], [np.zeros((3, 3))])
    with pytest.raises(ValueError, match=r"clouds_a\[1\]"):
        cloud_w2_matrix([np.zeros((3, 2)), np.full((3, 2), np.nan)])


def test_summaries_by_hand():
    clouds = [np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 3.0]])]
    # mean (2), then cov upper triangle (var0, cov01, var1) with 1/n.
    np.testing.assert_allclose(
        cloud_summaries(clouds), [[1.0, 0.0, 1.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0, 1.0]]
    )


def test_summaries_match_numpy():
    rng = np.random.default_rng(3)
    clouds = [rng.normal(size=(n, 3)) for n in (16, 9, 1)]
    out = cloud_summaries(clouds)
    assert out.shape == (3, 3 + 6)
    for row, cloud in zip(out, clouds, strict=True):
        cov = np.cov(cloud, rowvar=False, bias=True).reshape(3, 3)
        np.testing.assert_allclose(row, np.r_[cloud.mean(0), cov[np.triu_indices(3)]], atol=1e-12)


@pytest.mark.slow
def test_500_clouds_under_a_minute():
    clouds = np.random.default_rng(4).normal(size=(500, 16, 2))
    start = time.perf_counter()
    d = cloud_w2_matrix(clouds)
    assert time.perf_counter() - start < 60
    assert d.shape == (500, 500)


def test_set_w2_known_answers():
    from mfm.metrics import set_w2

    rng = np.random.default_rng(5)
    clouds = rng.normal(size=(6, 8, 2))
    assert set_w2(cloud_w2_matrix(clouds, clouds[::-1])) == 0.0
    # Each cloud shifted by the same vector c: every optimal pairing costs |c|^2.
    shifted = clouds + np.array([3.0, 4.0])
    np.testing.assert_allclose(set_w2(cloud_w2_matrix(clouds, shifted)), 5.0)
    # Two singletons: the set W2 is the W2 of the two clouds.
    d = cloud_w2_matrix(clouds[:1], clouds[1:2])
    np.testing.assert_allclose(set_w2(d), d[0, 0])
    # Unequal sizes: uniform weights 1/n_a, 1/n_b.
    d = np.array([[1.0, 3.0]])
    np.testing.assert_allclose(set_w2(d), np.sqrt((1 + 9) / 2))
    with pytest.raises(ValueError, match="distances"):
        set_w2(np.zeros((0, 3)))
