"""Population conditioners (MFM / CGFM / FM) and `MetaFlowNet`'s condition."""

import pytest
import torch

from mfm.models import GCNConditioner, MetaFlowNet, NullConditioner, OneHotConditioner


def _cells(batch=3, n=20, d=4, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n, d, generator=generator, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_hot_codes_and_mean_for_unseen(dtype):
    codes = OneHotConditioner(3)(_cells(4, dtype=dtype), torch.tensor([0, 2, -1, 1]))
    expected = torch.tensor([[1, 0, 0], [0, 0, 1], [1 / 3] * 3, [0, 1, 0]], dtype=dtype)
    assert codes.dtype == dtype
    torch.testing.assert_close(codes, expected)


def test_null_is_empty():
    conditioner = NullConditioner()
    out = conditioner(_cells(5, dtype=torch.float64), torch.zeros(5, dtype=torch.long))
    assert conditioner.out_features == 0
    assert out.shape == (5, 0)
    assert out.dtype == torch.float64


@pytest.mark.parametrize("knn", [0, 5])
def test_gcn_permutation_invariant(knn):
    conditioner = GCNConditioner(4, hidden=16, n_layers=2, out_features=8, knn=knn).double()
    cells = _cells(dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    permuted = torch.stack([c[torch.randperm(len(c), generator=generator)] for c in cells])
    codes = torch.tensor([0, 1, 2])
    h = conditioner(cells, codes)
    assert h.shape == (3, 8)
    torch.testing.assert_close(conditioner(permuted, codes), h)
    torch.testing.assert_close(h.norm(dim=-1), torch.ones(3, dtype=torch.float64))  # normalize
    # h depends on the cells only, not on the population codes
    torch.testing.assert_close(conditioner(cells, torch.tensor([-1, -1, -1])), h)
    # different populations, different embeddings
    assert (h[0] - h[1]).abs().max() > 1e-3


def test_meta_flow_net_condition():
    net = MetaFlowNet(OneHotConditioner(2), 4, 3, hidden=16, n_layers=2)
    cells = _cells(2)
    h = net.embed(cells, torch.tensor([1, -1]))
    condition = net.condition(h, torch.tensor([2, 0]))
    expected = torch.tensor([[0, 1, 0, 0, 1], [0.5, 0.5, 1, 0, 0]])
    torch.testing.assert_close(condition, expected)
    x = cells.reshape(-1, 4)
    v = net(x, torch.rand(len(x)), condition.repeat_interleave(20, dim=0))
    assert v.shape == x.shape
