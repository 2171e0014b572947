import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from mfm.models import knn_graph


def _sklearn_knn(x: torch.Tensor, k: int) -> np.ndarray:
    points = x.numpy()
    neighbors = NearestNeighbors(n_neighbors=k + 1).fit(points)
    return neighbors.kneighbors(points, return_distance=False)[:, 1:]


@pytest.mark.parametrize("block_size", [2048, 7])
def test_matches_sklearn_batched(block_size):
    x = torch.randn(3, 60, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = knn_graph(x, 5, block_size=block_size)
    assert out.shape == (3, 60, 5)
    assert out.dtype == torch.long
    for b in range(3):
        np.testing.assert_array_equal(out[b].numpy(), _sklearn_knn(x[b], 5))


def test_single_cloud_float32():
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(1))
    out = knn_graph(x, 4, block_size=16)
    assert out.shape == (100, 4)
    np.testing.assert_array_equal(out.numpy(), _sklearn_knn(x, 4))


def test_docstring_example():
    assert knn_graph(torch.tensor([[0.0], [1.0], [3.0]]), 1).ravel().tolist() == [1, 0, 1]


def test_k_zero_is_empty():
    out = knn_graph(torch.randn(2, 5, 3), 0)
    assert out.shape == (2, 5, 0)
    assert out.dtype == torch.long


@pytest.mark.parametrize("k", [5, 6])
def test_k_at_least_n_raises(k):
    with pytest.raises(ValueError, match="k=.*smaller than the number of points"):
        knn_graph(torch.randn(2, 5, 3), k)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="k"):
        knn_graph(torch.randn(5, 3), -1)
    with pytest.raises(ValueError, match="block_size"):
        knn_graph(torch.randn(5, 3), 1, block_size=0)
    with pytest.raises(ValueError, match="float"):
        knn_graph(torch.ones(5, 3, dtype=torch.long), 1)


def test_duplicates_are_each_others_neighbours():
    # every point appears twice: its twin (distance 0) must come first, never itself
    base = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 7.0], [9.0, 9.0]])
    x = torch.cat([base, base])
    out = knn_graph(x, 2, block_size=3)
    twins = (torch.arange(8) + 4) % 8
    torch.testing.assert_close(out[:, 0], twins)
    assert not (out == torch.arange(8)[:, None]).any()


def test_all_points_identical():
    out = knn_graph(torch.zeros(1, 6, 2), 5)
    for i in range(6):
        assert sorted(out[0, i].tolist()) == [j for j in range(6) if j != i]


def test_mask_ignores_padding():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 10, 3, generator=generator)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    out = knn_graph(x, 3, mask=mask, block_size=4)
    torch.testing.assert_close(out[0], knn_graph(x[0], 3))
    torch.testing.assert_close(out[1, :6], knn_graph(x[1, :6], 3))
    assert (out[1, 6:] == -1).all()


def test_mask_with_too_few_points_fills_minus_one():
    x = torch.tensor([[[0.0], [1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False, False]])
    out = knn_graph(x, 2, mask=mask)
    assert out[0].tolist() == [[1, -1], [0, -1], [-1, -1], [-1, -1]]


def test_no_gradient():
    x = torch.randn(1, 8, 2, requires_grad=True)
    assert not knn_graph(x, 2).requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(2, 500, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = knn_graph(x.cuda(), 6, block_size=128)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), knn_graph(x, 6))
