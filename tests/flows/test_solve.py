import math

import pytest
import torch

from mfm.flows import integrate, integrate_path
from mfm.models import VelocityMLP

FIXED = ["euler", "midpoint", "rk4"]


def _decay(x, t, cond):
    return -x


@pytest.mark.parametrize("method", ["dopri5", *FIXED])
def test_constant_velocity_is_exact(method):
    x0 = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    n_steps = None if method == "dopri5" else 7
    out = integrate(lambda x, t, cond: c.expand_as(x), x0, method=method, n_steps=n_steps)
    torch.testing.assert_close(out, x0 + c)
    out = integrate(
        lambda x, t, cond: c.expand_as(x), x0, method=method, n_steps=n_steps, t0=0.5, t1=2.0
    )
    torch.testing.assert_close(out, x0 + 1.5 * c)


def test_decay_dopri5():
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(integrate(_decay, x0), x0 * math.exp(-1), atol=1e-5, rtol=1e-5)


def test_decay_rk4_20_steps():
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(2))
    out = integrate(_decay, x0, method="rk4", n_steps=20)
    torch.testing.assert_close(out, x0 * math.exp(-1), atol=1e-5, rtol=1e-5)


def test_euler_matches_closed_form():
    # Euler on dx/dt = -x with n steps multiplies by (1 - 1/n)^n
    x0 = torch.randn(5, 2, dtype=torch.float64)
    out = integrate(_decay, x0, method="euler", n_steps=8)
    torch.testing.assert_close(out, x0 * (1 - 1 / 8) ** 8)


@pytest.mark.parametrize(("method", "evaluations"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_exactly_n_steps(method, evaluations):
    # 61 steps: torchdiffeq's step_size grid would add a spurious step in float32
    calls = []

    def velocity(x, t, cond):
        calls.append(float(t[0]))
        return -x

    integrate(velocity, torch.ones(3, 1), method=method, n_steps=61)
    assert len(calls) == evaluations * 61
    assert max(calls) <= 1.0


def test_default_steps_logged(caplog):
    with caplog.at_level("INFO", logger="mfm.flows.solve"):
        out = integrate(_decay, torch.ones(2, 1, dtype=torch.float64), method="euler")
    assert "100 euler steps" in caplog.text
    torch.testing.assert_close(out, torch.full((2, 1), 0.99**100, dtype=torch.float64))


@pytest.mark.parametrize("method", FIXED)
def test_chunking_is_identical_for_fixed_steps(method):
    # a row-wise velocity: chunks see bit-identical arithmetic
    def velocity(x, t, cond):
        return torch.sin(3 * x) * cond - t[:, None] * x

    generator = torch.Generator().manual_seed(4)
    x0, cond = torch.randn(2, 37, 3, generator=generator)
    whole = integrate(velocity, x0, cond, method=method, n_steps=10, chunk_size=None)
    chunked = integrate(velocity, x0, cond, method=method, n_steps=10, chunk_size=8)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)


@pytest.mark.parametrize(("method", "n_steps", "tol"), [("rk4", 10, 1e-12), ("dopri5", None, 1e-5)])
def test_chunking_agrees_for_a_network(method, n_steps, tol):
    # matmuls of different row counts may round differently; dopri5 adapts per chunk
    torch.manual_seed(0)
    net = VelocityMLP(3, 2, hidden=16, n_layers=2).double().eval()
    x0, cond = torch.randn(37, 3, dtype=torch.float64), torch.randn(37, 2, dtype=torch.float64)
    options = {"method": method, "n_steps": n_steps, "atol": 1e-7, "rtol": 1e-7}
    whole = integrate(net, x0, cond, chunk_size=None, **options)
    chunked = integrate(net, x0, cond, chunk_size=10, **options)
    torch.testing.assert_close(chunked, whole, atol=tol, rtol=tol)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_cond_rows_stay_aligned(method):
    # velocity = cond: each row moves by its own condition, whatever the chunk it falls in
    x0 = torch.zeros(23, 2, dtype=torch.float64)
    cond = torch.randn(23, 2, dtype=torch.float64)
    n_steps = None if method == "dopri5" else 3
    out = integrate(lambda x, t, c: c, x0, cond, method=method, n_steps=n_steps, chunk_size=5)
    torch.testing.assert_close(out, cond)


def test_time_is_passed_per_row():
    # dx/dt = t: x(1) = x0 + 1/2; t arrives as an (N_chunk,) tensor
    def velocity(x, t, cond):
        assert t.shape == (len(x),)
        return t[:, None].expand_as(x)

    x0 = torch.zeros(9, 2, dtype=torch.float64)
    out = integrate(velocity, x0, chunk_size=4)
    torch.testing.assert_close(out, torch.full((9, 2), 0.5, dtype=torch.float64))


def test_integrate_path_matches_closed_form():
    x0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    times = [0.0, 0.3, 0.7, 1.0]
    out = integrate_path(_decay, x0, times=times, atol=1e-8, rtol=1e-8)
    assert out.shape == (4, 6, 2)
    torch.testing.assert_close(out[0], x0)
    expected = torch.stack([x0 * math.exp(-t) for t in times])
    torch.testing.assert_close(out, expected, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(integrate(_decay, x0, atol=1e-8, rtol=1e-8), out[-1])


def test_backward_in_time():
    x0 = torch.randn(4, 2, dtype=torch.float64)
    out = integrate(_decay, x0, method="rk4", n_steps=50, t0=1.0, t1=0.0)
    torch.testing.assert_close(out, x0 * math.e, atol=1e-8, rtol=1e-8)


def test_no_gradient_is_recorded():
    net = VelocityMLP(2, hidden=8, n_layers=1)
    out = integrate(net, torch.randn(4, 2), method="euler", n_steps=2)
    assert not out.requires_grad


def test_bad_arguments_raise():
    x0 = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"method.*dopri5.*euler.*midpoint.*rk4"):
        integrate(_decay, x0, method="rk45")
    with pytest.raises(ValueError, match="n_steps"):
        integrate(_decay, x0, method="dopri5", n_steps=10)
    with pytest.raises(ValueError, match="n_steps"):
        integrate(_decay, x0, method="rk4", n_steps=0)
    with pytest.raises(ValueError, match="chunk_size"):
        integrate(_decay, x0, chunk_size=0)
    with pytest.raises(ValueError, match="cond"):
        integrate(_decay, x0, torch.zeros(3, 1))
    with pytest.raises(ValueError, match="times"):
        integrate_path(_decay, x0, times=[0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="times"):
        integrate(_decay, x0, t0=1.0, t1=1.0)
    with pytest.raises(ValueError, match="velocity"):
        integrate(lambda x, t, c: x[:, :1], x0, method="euler", n_steps=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_cuda_decay(method):
    x0 = torch.randn(1000, 3, device="cuda")
    n_steps = None if method == "dopri5" else 20
    out = integrate(_decay, x0, method=method, n_steps=n_steps, chunk_size=300)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out, x0 * math.exp(-1), atol=1e-5, rtol=1e-5)
