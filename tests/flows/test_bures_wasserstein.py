import numpy as np
import ot
import pytest
import scipy.linalg
import torch
from sklearn.covariance import ledoit_wolf

from mfm.flows.bures_wasserstein import (
    admissible_velocity,
    gaussian_from_clouds,
    geodesic,
    geodesic_path,
    monge_map,
    sqrtm_spd,
    step,
    velocity,
    w2_gaussian,
)

B, D = 4, 3


def _spd(generator: torch.Generator, batch: int = B, d: int = D) -> torch.Tensor:
    a = torch.randn(batch, d, d, generator=generator, dtype=torch.float64)
    return a @ a.mT + 0.5 * torch.eye(d, dtype=torch.float64)


@pytest.fixture
def gaussians():
    g = torch.Generator().manual_seed(0)
    m0 = torch.randn(B, D, generator=g, dtype=torch.float64)
    m1 = torch.randn(B, D, generator=g, dtype=torch.float64)
    return m0, _spd(g), m1, _spd(g)


def test_sqrtm_spd_matches_scipy(gaussians):
    S = gaussians[1]
    root = sqrtm_spd(S)
    torch.testing.assert_close(root @ root, S)
    for b in range(B):
        np.testing.assert_allclose(
            root[b].numpy(), scipy.linalg.sqrtm(S[b].numpy()).real, atol=1e-10
        )


def test_monge_map_matches_pot(gaussians):
    m0, S0, m1, S1 = gaussians
    A = monge_map(S0, S1)
    torch.testing.assert_close(A @ S0 @ A, S1)
    torch.testing.assert_close(A, A.mT)
    for b in range(B):
        A_pot, _ = ot.gaussian.bures_wasserstein_mapping(
            m0[b].numpy(), m1[b].numpy(), S0[b].numpy(), S1[b].numpy()
        )
        np.testing.assert_allclose(A[b].numpy(), A_pot, atol=1e-8)


def test_geodesic_endpoints(gaussians):
    m0, S0, m1, S1 = gaussians
    m, S = geodesic(m0, S0, m1, S1, 0.0)
    torch.testing.assert_close((m, S), (m0, S0))
    m, S = geodesic(m0, S0, m1, S1, torch.ones(B, dtype=torch.float64))
    torch.testing.assert_close((m, S), (m1, S1))


@pytest.mark.parametrize("t", [0.25, 0.5, 0.9])
def test_geodesic_commuting_case(t):
    # Same eigenbasis: S_t^{1/2} = (1 - t) S0^{1/2} + t S1^{1/2}.
    g = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(B, D, D, generator=g, dtype=torch.float64))
    d0 = torch.rand(B, D, generator=g, dtype=torch.float64) + 0.1
    d1 = torch.rand(B, D, generator=g, dtype=torch.float64) + 0.1
    S0, S1 = Q @ torch.diag_embed(d0) @ Q.mT, Q @ torch.diag_embed(d1) @ Q.mT
    m = torch.zeros(B, D, dtype=torch.float64)
    _, S_t = geodesic(m, S0, m, S1, t)
    root = (1 - t) * d0.sqrt() + t * d1.sqrt()
    torch.testing.assert_close(S_t, Q @ torch.diag_embed(root**2) @ Q.mT)


def test_geodesic_one_dimensional():
    sigma0 = torch.tensor([[[0.5]], [[2.0]]], dtype=torch.float64)
    sigma1 = torch.tensor([[[3.0]], [[0.1]]], dtype=torch.float64)
    m0 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    m1 = torch.tensor([[2.0], [-1.0]], dtype=torch.float64)
    t = torch.tensor([0.3, 0.7], dtype=torch.float64)
    m_t, S_t = geodesic(m0**1, sigma0**2, m1, sigma1**2, t)
    torch.testing.assert_close(m_t, (1 - t[:, None]) * m0 + t[:, None] * m1)
    torch.testing.assert_close(
        S_t.sqrt(), (1 - t[:, None, None]) * sigma0 + t[:, None, None] * sigma1
    )
    # 1-D W2: sqrt(|m0 - m1|^2 + (sigma0 - sigma1)^2).
    expected = ((m0 - m1) ** 2 + (sigma0 - sigma1)[..., 0] ** 2).sum(-1).sqrt()
    torch.testing.assert_close(w2_gaussian(m0, sigma0**2, m1, sigma1**2), expected)


def test_w2_matches_pot(gaussians):
    m0, S0, m1, S1 = gaussians
    w = w2_gaussian(m0, S0, m1, S1)
    for b in range(B):
        expected = ot.gaussian.bures_wasserstein_distance(
            m0[b].numpy(), m1[b].numpy(), S0[b].numpy(), S1[b].numpy()
        )
        np.testing.assert_allclose(w[b].item(), float(expected), rtol=1e-8)
    torch.testing.assert_close(w2_gaussian(m0, S0, m0, S0), torch.zeros(B, dtype=torch.float64))


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_geodesic_is_constant_speed(gaussians, t):
    m0, S0, m1, S1 = gaussians
    m_t, S_t = geodesic(m0, S0, m1, S1, t)
    total = w2_gaussian(m0, S0, m1, S1)
    torch.testing.assert_close(w2_gaussian(m0, S0, m_t, S_t), t * total)
    torch.testing.assert_close(w2_gaussian(m_t, S_t, m1, S1), (1 - t) * total)


@pytest.mark.parametrize("t", [0.0, 0.3, 0.9])
def test_velocity_is_time_derivative_of_geodesic(gaussians, t):
    m0, S0, m1, S1 = gaussians
    times = torch.full((B,), t, dtype=torch.float64)
    (m_t, S_t), (dm, dS) = torch.func.jvp(
        lambda s: geodesic(m0, S0, m1, S1, s), (times,), (torch.ones_like(times),)
    )
    v_m, S_v = velocity(m0, S0, m1, S1, times)
    torch.testing.assert_close(S_v, S_v.mT)
    torch.testing.assert_close(v_m, dm)
    torch.testing.assert_close(S_v @ S_t + S_t @ S_v, dS)


@pytest.mark.parametrize("t", [0.0, 0.4, 1.0])
def test_geodesic_path_is_geodesic_and_velocity(gaussians, t):
    m0, S0, m1, S1 = gaussians
    sample = geodesic_path(m0, S0, m1, S1, t)
    torch.testing.assert_close(
        (sample.m_t, sample.S_t), geodesic(m0, S0, m1, S1, t), rtol=0, atol=0
    )
    torch.testing.assert_close(
        (sample.v_m, sample.S_v), velocity(m0, S0, m1, S1, t), rtol=0, atol=0
    )
    torch.testing.assert_close(sample.t, torch.full((B,), t, dtype=torch.float64))


def test_geodesic_path_one_dimensional_known_answer():
    # 1-D: A = s1 / s0, S_t = ((1 - t) s0 + t s1)^2, S_v = (s1 - s0) / ((1 - t) s0 + t s1).
    s0, s1 = (
        torch.tensor([0.5, 2.0], dtype=torch.float64),
        torch.tensor([3.0, 0.1], dtype=torch.float64),
    )
    t = torch.tensor([0.25, 0.75], dtype=torch.float64)
    zero = torch.zeros(2, 1, dtype=torch.float64)
    sample = geodesic_path(zero, s0[:, None, None] ** 2, zero, s1[:, None, None] ** 2, t)
    sd_t = (1 - t) * s0 + t * s1
    torch.testing.assert_close(sample.S_t[:, 0, 0], sd_t**2)
    torch.testing.assert_close(sample.S_v[:, 0, 0], (s1 - s0) / sd_t)


def _integrate(gaussians, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    m0, S0, m1, S1 = gaussians
    m, S, h = m0, S0, 1.0 / n_steps
    for k in range(n_steps):
        v_m, S_v = velocity(m0, S0, m1, S1, k * h)
        m, S = step(m, S, v_m, S_v, h)
    return m, S


@pytest.mark.parametrize("n_steps", [1, 7, 50])
def test_steps_reach_geodesic_endpoint(gaussians, n_steps):
    # I + h S_v(t) = M_{t+h} M_t^{-1}: each step lands exactly on the geodesic, any step size.
    m, S = _integrate(gaussians, n_steps)
    torch.testing.assert_close((m, S), (gaussians[2], gaussians[3]))


def test_flipped_covariance_step_misses_endpoint(gaussians):
    # The update with the opposite sign, S <- (I - h S_v) S (I - h S_v), does not follow the path.
    m0, S0, m1, S1 = gaussians
    S, h = S0, 1.0 / 50
    for k in range(50):
        _, S_v = velocity(m0, S0, m1, S1, k * h)
        S = step(m0, S, m0, -S_v, h)[1]
    assert (S - S1).abs().max() > 0.1 * S1.abs().max()


def test_step_is_pushforward():
    g = torch.Generator().manual_seed(2)
    S, S_v = _spd(g), _spd(g) - 2 * torch.eye(D, dtype=torch.float64)
    m, v_m = (
        torch.randn(B, D, generator=g, dtype=torch.float64),
        torch.ones(B, D, dtype=torch.float64),
    )
    m_new, S_new = step(m, S, v_m, S_v, 0.1)
    E = torch.eye(D, dtype=torch.float64) + 0.1 * S_v
    torch.testing.assert_close(m_new, m + 0.1 * v_m)
    torch.testing.assert_close(S_new, E @ S @ E.mT)


def test_gaussian_from_clouds_matches_numpy():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 10, D, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    x[1, 6:] = float("nan")  # padding must not leak
    m, S = gaussian_from_clouds(x, mask, shrinkage=0.0)
    for b, n in [(0, 10), (1, 6)]:
        points = x[b, :n].numpy()
        np.testing.assert_allclose(m[b].numpy(), points.mean(0))
        np.testing.assert_allclose(S[b].numpy(), np.cov(points.T, bias=True), atol=1e-12)


def test_gaussian_from_clouds_shrinkage():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 16, 16, generator=g, dtype=torch.float64)  # n <= d: singular covariance
    _, S_raw = gaussian_from_clouds(x, shrinkage=0.0)
    assert torch.linalg.eigvalsh(S_raw)[:, 0].min() < 1e-10
    _, S = gaussian_from_clouds(x, shrinkage=0.1)
    mu = torch.diagonal(S_raw, dim1=-2, dim2=-1).mean(-1)
    torch.testing.assert_close(
        S, 0.9 * S_raw + 0.1 * mu[:, None, None] * torch.eye(16, dtype=x.dtype)
    )
    assert torch.linalg.eigvalsh(gaussian_from_clouds(x)[1])[:, 0].min() > 0
    _, S_lw = gaussian_from_clouds(x, shrinkage="ledoit_wolf")
    for b in range(3):
        np.testing.assert_allclose(S_lw[b].numpy(), ledoit_wolf(x[b].numpy())[0], atol=1e-12)
    with pytest.raises(ValueError, match="shrinkage"):
        gaussian_from_clouds(x, shrinkage=2.0)


@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 1.0])
def test_geodesic_velocities_are_admissible(gaussians, t):
    # Every geodesic velocity has its spectrum in [-1/(1-t), 1/t]: the projection keeps it.
    m0, S0, m1, S1 = gaussians
    S_v = velocity(m0, S0, m1, S1, t)[1]
    assert admissible_velocity(S_v, t) is S_v


def test_admissible_velocity_clamps_the_spectrum():
    g = torch.Generator().manual_seed(5)
    Q, _ = torch.linalg.qr(torch.randn(3, D, D, generator=g, dtype=torch.float64))
    eigvals = torch.tensor([[-9.0, 0.5, 9.0], [-1.0, 0.0, 1.0], [-50.0, -3.0, 50.0]])
    S_v = Q @ torch.diag_embed(eigvals.double()) @ Q.mT
    t = torch.tensor([0.5, 0.5, 0.9], dtype=torch.float64)  # bounds [-2, 2], [-2, 2], [-10, 10/9]
    expected = torch.tensor([[-2.0, 0.5, 2.0], [-1.0, 0.0, 1.0], [-10.0, -3.0, 10 / 9]])
    out = admissible_velocity(S_v, t)
    torch.testing.assert_close(out, Q @ torch.diag_embed(expected.double()) @ Q.mT)
    assert torch.equal(out[1], S_v[1])  # already admissible: untouched
