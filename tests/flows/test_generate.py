import pytest
import torch

from mfm.flows import bures_wasserstein as bw
from mfm.flows.generate import generate_gaussian_clouds, generate_gaussians
from mfm.flows.solve import integrate_fixed

B, D = 5, 4


def _spd(generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(B, D, D, generator=generator, dtype=torch.float64)
    return a @ a.mT + 0.5 * torch.eye(D, dtype=torch.float64)


@pytest.fixture
def source():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, D, generator=g, dtype=torch.float64), _spd(g)


def _feedback(m, S, t, cond):
    # A velocity that grows with S, as a network fed covariances beyond its training range:
    # dS/dt = 2 S^2 blows up in finite time (the bug: eigh of a diverged covariance failed).
    return torch.zeros_like(m), 10.0 * S


def _is_spd(S: torch.Tensor) -> bool:
    return bool(torch.isfinite(S).all()) and bool((torch.linalg.eigvalsh(S) > 0).all())


def test_integrate_fixed_calls_every_step_with_its_time():
    seen = []

    def step(state, t, h):
        seen.append((t.tolist(), h))
        return state + h

    out = integrate_fixed(step, torch.zeros(3), n_steps=4, like=torch.zeros(2))
    torch.testing.assert_close(out, torch.ones(3))
    assert seen == [([k / 4] * 2, 0.25) for k in range(4)]
    with pytest.raises(ValueError, match="n_steps"):
        integrate_fixed(step, torch.zeros(3), n_steps=0, like=torch.zeros(2))


@pytest.mark.parametrize("n_steps", [10, 100, 1000])
def test_growing_velocity_stays_spd_and_bounded(source, n_steps):
    m0, S0 = source
    _, S = generate_gaussians(_feedback, m0, S0, n_steps=n_steps)
    assert _is_spd(S)
    torch.testing.assert_close(S, S.mT, rtol=0, atol=0)
    # Clamped to 1/t after the first step: ||S(1)|| <= (1 + h ||S_v(0)||)^2 n^2 ||S0||, reached
    # when the top eigenvalue is clamped at every step (n = 10).
    norm0 = torch.linalg.matrix_norm(S0, ord=2)
    bound = (1 + 10.0 * norm0 / n_steps) ** 2 * n_steps**2 * norm0
    assert (torch.linalg.matrix_norm(S, ord=2) <= bound * (1 + 1e-9)).all()


def test_clamped_velocity_has_known_answer(source):
    # S_v = 1e3 I: clamped to I / t for t > 0, so S(1) = (1 + 1e3 h)^2 prod_k ((k+1)/k)^2 S0
    # = (1 + 1e3 h)^2 n^2 S0; S_v = -1e3 I: clamped to -I / (1 - t), the geodesic to a point
    # mass, S(t) = (1 - t)^2 S0, which the steps follow exactly: S(1) = 0.
    m0, S0 = source
    eye = torch.eye(D, dtype=torch.float64)
    n = 20

    def constant(scale):
        return lambda m, S, t, cond: (torch.zeros_like(m), scale * eye.expand_as(S))

    _, S_up = generate_gaussians(constant(1e3), m0, S0, n_steps=n)
    torch.testing.assert_close(S_up, (1 + 1e3 / n) ** 2 * n**2 * S0)
    _, S_down = generate_gaussians(constant(-1e3), m0, S0, n_steps=n)
    torch.testing.assert_close(S_down, torch.zeros_like(S0), atol=1e-12, rtol=0)


def test_non_finite_velocity_names_what_diverged(source):
    m0, S0 = source

    def nan_at_half(m, S, t, cond):
        v = torch.zeros_like(S) + torch.where(t[0] >= 0.5, torch.nan, 0.0)
        return torch.zeros_like(m), v

    with pytest.raises(ValueError, match=r"velocity of 5 of 5 Gaussians .* t = 0\.5"):
        generate_gaussians(nan_at_half, m0, S0, n_steps=10)


def test_gaussian_clouds_of_a_growing_velocity_are_finite():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(B, 16, D, generator=g)
    mask = torch.arange(16)[None, :] < torch.tensor([16, 12, 9, 16, 3])[:, None]
    out = generate_gaussian_clouds(_feedback, x0, mask, n_steps=200, generator=g)
    assert out.dtype == x0.dtype
    assert torch.isfinite(out).all()
    assert (out[~mask] == 0).all()


def test_gaussian_clouds_follow_a_geodesic_velocity():
    # The exact geodesic velocity to N(m1, S1) generates clouds whose Gaussian is N(m1, S1).
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(1, 4000, 2, generator=g, dtype=torch.float64)
    m0, S0 = bw.gaussian_from_clouds(x0, shrinkage=0.1)
    m1 = torch.tensor([[3.0, -1.0]], dtype=torch.float64)
    S1 = torch.tensor([[[2.0, 0.6], [0.6, 0.5]]], dtype=torch.float64)

    def geodesic_velocity(m, S, t, cond):
        return bw.velocity(m0, S0, m1, S1, t)

    out = generate_gaussian_clouds(geodesic_velocity, x0, n_steps=7, generator=g)
    m, S = bw.gaussian_from_clouds(out, shrinkage=0.0)
    torch.testing.assert_close(m, m1, atol=0.08, rtol=0)
    torch.testing.assert_close(S, S1, atol=0.1, rtol=0)
