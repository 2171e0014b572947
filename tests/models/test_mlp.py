import math

import pytest
import torch

from mfm.models import SinusoidalTimeEmbedding, VelocityMLP


def test_time_embedding_known_values():
    embedding = SinusoidalTimeEmbedding(4, scale=1.0, max_period=100.0)
    t = torch.tensor([0.0, 0.5])
    out = embedding(t[:, None])
    # frequencies 100^(-0/2) = 1 and 100^(-1/2) = 0.1
    expected = torch.tensor(
        [
            [0.0, 0.0, 1.0, 1.0],
            [math.sin(0.5), math.sin(0.05), math.cos(0.5), math.cos(0.05)],
        ]
    )
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(embedding(t), out)


def test_time_embedding_default_spans_frequencies():
    out = SinusoidalTimeEmbedding(32)(torch.linspace(0, 1, 11, dtype=torch.float64))
    assert out.shape == (11, 32)
    assert out.dtype == torch.float64
    torch.testing.assert_close(
        out.square()[:, :16] + out.square()[:, 16:], torch.ones(11, 16, dtype=torch.float64)
    )
    # highest frequency oscillates within [0, 1], lowest barely moves
    assert out[:, 0].std() > 0.5
    assert out[:, 15].std() < 0.1


@pytest.mark.parametrize("dim", [0, 3, -2])
def test_time_embedding_bad_dim(dim):
    with pytest.raises(ValueError, match="dim"):
        SinusoidalTimeEmbedding(dim)


def _model(**kwargs) -> VelocityMLP:
    torch.manual_seed(0)
    return VelocityMLP(3, 4, hidden=16, n_layers=3, **kwargs)


def test_shapes_and_parameter_count():
    model = _model()
    x, t, cond = torch.randn(7, 3), torch.rand(7), torch.randn(7, 4)
    assert model(x, t, cond).shape == (7, 3)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (3 + 32 + 4, 16), (16, 16), (16, 16), (16, 3)
    ]  # fmt: skip


def test_time_shapes_agree():
    model = _model()
    x, cond = torch.randn(5, 3), torch.randn(5, 4)
    expected = model(x, torch.full((5,), 0.3), cond)
    torch.testing.assert_close(model(x, torch.full((5, 1), 0.3), cond), expected)
    torch.testing.assert_close(model(x, 0.3, cond), expected)
    torch.testing.assert_close(model(x, torch.tensor(0.3), cond), expected)
    with pytest.raises(ValueError, match="`t`"):
        model(x, torch.rand(4), cond)


def test_cond_is_used_and_deterministic():
    model = _model()
    x, t, cond = torch.randn(6, 3), torch.rand(6), torch.randn(6, 4)
    out = model(x, t, cond)
    torch.testing.assert_close(model(x, t, cond), out, rtol=0, atol=0)
    torch.testing.assert_close(_model()(x, t, cond), out, rtol=0, atol=0)
    changed = model(x, t, cond + 1.0)
    assert (changed - out).abs().min() > 0
    # rows are independent: changing one row's condition changes only that row
    cond2 = cond.clone()
    cond2[2] += 1.0
    diff = (model(x, t, cond2) - out).abs().sum(-1)
    assert diff[2] > 0
    assert torch.all(diff[[0, 1, 3, 4, 5]] == 0)


def test_time_is_used():
    model = _model()
    x, cond = torch.randn(4, 3), torch.randn(4, 4)
    assert not torch.allclose(model(x, 0.1, cond), model(x, 0.9, cond))


def test_no_condition():
    torch.manual_seed(0)
    model = VelocityMLP(3, hidden=8, n_layers=1)
    x = torch.randn(4, 3)
    out = model(x, 0.5)
    assert out.shape == (4, 3)
    torch.testing.assert_close(model(x, 0.5, torch.empty(4, 0)), out)
    with pytest.raises(ValueError, match="cond_features"):
        model(x, 0.5, torch.randn(4, 2))


def test_missing_or_wrong_condition_raises():
    model = _model()
    with pytest.raises(ValueError, match="cond"):
        model(torch.randn(4, 3), 0.5)
    with pytest.raises(ValueError, match="cond"):
        model(torch.randn(4, 3), 0.5, torch.randn(4, 5))


def test_residual_switch():
    x, t, cond = torch.randn(4, 3), torch.rand(4), torch.randn(4, 4)
    residual, plain = _model(residual=True), _model(residual=False)
    plain.load_state_dict(residual.state_dict())
    z = residual.activation(residual.input(torch.cat([x, residual.time_embedding(t), cond], -1)))
    for layer in residual.hidden_layers:
        z = z + residual.activation(layer(z))
    torch.testing.assert_close(residual(x, t, cond), residual.output(z))
    assert not torch.allclose(plain(x, t, cond), residual(x, t, cond))


@pytest.mark.parametrize("activation", ["relu", "silu", "selu", "gelu", "tanh"])
def test_activations(activation):
    assert _model(activation=activation)(torch.randn(2, 3), 0.5, torch.randn(2, 4)).shape == (2, 3)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="activation.*silu"):
        VelocityMLP(3, activation="Swish")
    with pytest.raises(ValueError, match="n_layers"):
        VelocityMLP(3, n_layers=0)
    with pytest.raises(ValueError, match="`x`"):
        VelocityMLP(3)(torch.randn(4, 2), 0.5)
