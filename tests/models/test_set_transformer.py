import pytest
import torch

from mfm.models.set_transformer import SetTransformerVelocity

B, N, D = 3, 7, 4


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SetTransformerVelocity(
        D, n_conditions=3, hidden=32, n_layers=2, n_heads=4, time_features=8
    ).eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, N, D, generator=g)
    t = torch.rand(B, generator=g)
    labels = torch.tensor([0, 2, 1])
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 5:] = False
    return x, t, labels, mask


def test_permutation_equivariance(model, batch):
    x, t, labels, mask = batch
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(2))
    out = model(x, t, labels, mask)
    permuted = model(x[:, perm], t, labels, mask[:, perm])
    torch.testing.assert_close(permuted, out[:, perm], atol=1e-5, rtol=1e-5)


def test_padding_invariance(model, batch):
    x, t, labels, mask = batch
    padded = torch.cat([x, torch.full((B, 3, D), torch.nan)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(B, 3, dtype=torch.bool)], dim=1)
    out = model(padded, t, labels, padded_mask)
    torch.testing.assert_close(
        out[:, :N][mask], model(x, t, labels, mask)[mask], atol=1e-5, rtol=1e-5
    )
    assert (out[~padded_mask] == 0).all()
    alone = model(x[1:2, :5], t[1:2], labels[1:2])
    torch.testing.assert_close(out[1, :5], alone[0], atol=1e-5, rtol=1e-5)


def test_conditioning_changes_output(model, batch):
    x, t, labels, mask = batch
    out = model(x, t, labels, mask)
    assert not torch.allclose(out, model(x, t, (labels + 1) % 3, mask))
    assert not torch.allclose(out, model(x, t + 0.1, labels, mask))
    assert not torch.allclose(out, model(x, t, None, mask))  # None is the null label
    torch.testing.assert_close(model(x, t, None, mask), model(x, t, torch.full((B,), 3), mask))


def test_guidance_formula(model, batch):
    x, t, labels, mask = batch
    w = 1.5
    expected = (1 + w) * model(x, t, labels, mask) - w * model(x, t, None, mask)
    torch.testing.assert_close(model.guided(x, t, labels, mask, w), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.guided(x, t, labels, mask, 0.0), model(x, t, labels, mask))


def test_cfg_dropout(batch):
    x, t, labels, mask = batch
    torch.manual_seed(0)
    model = SetTransformerVelocity(
        D, n_conditions=3, hidden=16, n_layers=1, n_heads=2, cfg_dropout=1.0
    )
    torch.testing.assert_close(
        model(x, t, labels, mask), model(x, t, None, mask)
    )  # training: all dropped
    model.cfg_dropout = 0.5
    drop = torch.rand(B, generator=torch.Generator().manual_seed(3)) < 0.5
    expected = model(x, t, torch.where(drop, 3, labels), mask)
    out = model(x, t, labels, mask, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, expected)
    model.eval()
    assert not torch.allclose(model(x, t, labels, mask), model(x, t, None, mask))


def test_unconditional_and_validation(batch):
    x, t, labels, mask = batch
    model = SetTransformerVelocity(D, hidden=16, n_layers=1, n_heads=2)
    assert model(x, 0.5, None, mask).shape == (B, N, D)
    with pytest.raises(ValueError, match="labels"):
        model(x, t, labels, mask)
    with pytest.raises(ValueError, match="`x` must be"):
        model(x[..., :2], t)
    with pytest.raises(ValueError, match="mask"):
        model(x, t, None, mask[:, :3])
    with pytest.raises(ValueError, match="n_heads"):
        SetTransformerVelocity(D, hidden=10, n_heads=4)
    with pytest.raises(ValueError, match="cfg_dropout"):
        SetTransformerVelocity(D, cfg_dropout=1.5)
