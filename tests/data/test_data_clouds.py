import numpy as np
import pytest
import torch

from mfm.data._clouds import PointClouds


@pytest.fixture
def clouds():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, 3)).astype(np.float32) for n in (4, 1, 6, 2, 5)]
    return arrays, PointClouds.from_list(arrays, labels=np.array([0, 1, 1, 2, 0]))


def test_container(clouds):
    arrays, pc = clouds
    assert len(pc) == 5 and pc.n_features == 3
    np.testing.assert_array_equal(pc.sizes, [4, 1, 6, 2, 5])
    np.testing.assert_array_equal(pc.offsets, [0, 4, 5, 11, 13, 18])
    for i, array in enumerate(arrays):
        np.testing.assert_array_equal(pc[i], array)


def test_pad(clouds):
    arrays, pc = clouds
    x, mask = pc.pad([2, 1, 3])
    assert x.dtype == torch.float32 and mask.dtype == torch.bool and x.shape == (3, 6, 3)
    np.testing.assert_array_equal(mask.sum(1).numpy(), [6, 1, 2])
    for row, i in enumerate([2, 1, 3]):
        np.testing.assert_array_equal(x[row, : len(arrays[i])].numpy(), arrays[i])
        assert (x[row, len(arrays[i]) :] == 0).all()
    x, mask = pc.pad([1], n_max=4)
    assert x.shape == (1, 4, 3) and mask.tolist() == [[True, False, False, False]]
    with pytest.raises(ValueError, match="n_max"):
        pc.pad([2], n_max=3)
    with pytest.raises(IndexError, match="indices"):
        pc.pad([5])


def test_from_neighbors():
    features = np.arange(12, dtype=np.float32).reshape(6, 2)
    neighbors = np.array([[0, 1, 2], [3, -1, 5], [-1, -1, 4]])
    pc = PointClouds.from_neighbors(features, neighbors, labels=np.array([1, 0, 1]))
    np.testing.assert_array_equal(pc.sizes, [3, 2, 1])
    np.testing.assert_array_equal(pc[1], features[[3, 5]])
    np.testing.assert_array_equal(pc[2], features[[4]])


def test_validation():
    points = np.zeros((4, 2))
    with pytest.raises(ValueError, match="offsets"):
        PointClouds(points, [0, 2, 3])
    with pytest.raises(ValueError, match="at least one point"):
        PointClouds(points, [0, 2, 2, 4])
    with pytest.raises(ValueError, match="labels"):
        PointClouds(points, [0, 2, 4], labels=np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        PointClouds(np.full((2, 2), np.nan), [0, 2])
    with pytest.raises(ValueError, match="neighbors"):
        PointClouds.from_neighbors(points, np.array([[0, 9]]))
