import numpy as np
import ot
import pytest
import torch

from mfm.flows import independent_coupling, ot_coupling


def _emd2(x0: torch.Tensor, x1: torch.Tensor) -> float:
    a, b = x0.double().numpy(), x1.double().numpy()
    cost = ot.dist(a, b)
    return ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost)


def test_independent_coupling_is_identity():
    x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    out0, out1 = independent_coupling(x0, x1)
    assert out0 is x0
    assert out1 is x1


def test_recovers_known_permutation():
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 20, 4, generator=generator)
    shift = 1e-3 * torch.randn(3, 20, 4, generator=generator)
    perms = torch.stack([torch.randperm(20, generator=generator) for _ in range(3)])
    x1 = torch.stack([(x0[b] + shift[b])[perms[b]] for b in range(3)])
    out0, out1 = ot_coupling(x0, x1)
    assert out0 is x0
    torch.testing.assert_close(out1, x0 + shift, rtol=0, atol=0)


def test_cost_equals_emd2():
    generator = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(2, 2, 30, 3, generator=generator, dtype=torch.float64)
    out0, out1 = ot_coupling(x0, x1)
    for b in range(2):
        cost = (out0[b] - out1[b]).square().sum(-1).mean().item()
        assert cost == pytest.approx(_emd2(x0[b], x1[b]), rel=1e-10)
        # a re-pairing: the same multiset of target rows
        torch.testing.assert_close(out1[b].sort(dim=0).values, x1[b].sort(dim=0).values)
    assert (out0 - out1).square().sum(-1).mean() < (x0 - x1).square().sum(-1).mean()


def test_unbatched_and_dtype():
    generator = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(2, 15, 2, generator=generator)
    out0, out1 = ot_coupling(x0, x1)
    assert out1.shape == (15, 2)
    assert out1.dtype == torch.float32
    batched = ot_coupling(x0[None], x1[None])[1][0]
    torch.testing.assert_close(out1, batched)


def test_unequal_sizes_sample_from_the_plan():
    generator = torch.Generator().manual_seed(3)
    x0 = torch.randn(12, 2, generator=generator, dtype=torch.float64)
    x1 = torch.randn(5, 2, generator=generator, dtype=torch.float64)
    out0, out1 = ot_coupling(x0, x1, generator=torch.Generator().manual_seed(0))
    assert out0 is x0
    assert out1.shape == (12, 2)
    # every drawn pair carries mass in the exact plan
    cost = ot.dist(x0.numpy(), x1.numpy())
    plan = ot.emd(np.full(12, 1 / 12), np.full(5, 1 / 5), cost)
    columns = [int(np.flatnonzero((x1.numpy() == row).all(1))[0]) for row in out1.numpy()]
    assert all(plan[i, j] > 0 for i, j in enumerate(columns))
    again = ot_coupling(x0, x1, generator=torch.Generator().manual_seed(0))[1]
    torch.testing.assert_close(again, out1, rtol=0, atol=0)


def test_unequal_sizes_follow_the_plan_in_distribution():
    # 2 sources, 4 targets: each source splits its mass over two targets (1/2 each)
    x0 = torch.tensor([[0.0], [10.0]]).repeat(500, 1)
    x1 = torch.tensor([[-1.0], [1.0], [9.0], [11.0]])
    out1 = ot_coupling(x0, x1, generator=torch.Generator().manual_seed(1))[1]
    near = (out1 - x0).abs().ravel()
    assert torch.all(near == 1.0)
    assert 0.45 < (out1 > x0).double().mean() < 0.55


def test_mismatched_inputs_raise():
    with pytest.raises(ValueError, match="same"):
        ot_coupling(torch.randn(2, 5, 3), torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match="same"):
        ot_coupling(torch.randn(5, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match="finite"):
        ot_coupling(torch.full((3, 2), float("nan")), torch.randn(3, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_stay_on_cuda():
    generator = torch.Generator().manual_seed(4)
    x0, x1 = torch.randn(2, 3, 10, 2, generator=generator)
    out0, out1 = ot_coupling(x0.cuda(), x1.cuda())
    assert out1.device.type == "cuda"
    torch.testing.assert_close(out1.cpu(), ot_coupling(x0, x1)[1])
    cuda_generator = torch.Generator(device="cuda").manual_seed(0)
    out1 = ot_coupling(x0.cuda(), x1[:, :4].cuda(), generator=cuda_generator)[1]
    assert out1.shape == (3, 10, 2)
    assert out1.device.type == "cuda"


def test_unequal_sizes_without_generator_follow_torch_manual_seed():
    """No generator: the draws come from torch's global generator, so a seed reproduces them."""
    generator = torch.Generator().manual_seed(4)
    x0, x1 = torch.randn(12, 2, generator=generator), torch.randn(5, 2, generator=generator)
    torch.manual_seed(7)
    first = ot_coupling(x0, x1)[1]
    torch.manual_seed(7)
    assert torch.equal(ot_coupling(x0, x1)[1], first)
