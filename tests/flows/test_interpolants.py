"""Stochastic interpolants: the path, the closed-form fields of Gaussians, the SDE sampler.

For independent :math:`x_0 \\sim N(m_0, S_0)`, :math:`x_1 \\sim N(m_1, S_1)`, :math:`z \\sim
N(0, I)`, :math:`x_t` is Gaussian with mean :math:`\\mu_t = (1-t) m_0 + t m_1` and covariance
:math:`C_t = (1-t)^2 S_0 + t^2 S_1 + \\gamma^2 I`, and jointly Gaussian with the targets, so

.. math::
    E[x_1 - x_0 \\mid x_t] = m_1 - m_0 + (t S_1 - (1-t) S_0) C_t^{-1} (x - \\mu_t), \\quad
    \\eta = E[z \\mid x_t] = \\gamma C_t^{-1} (x - \\mu_t),

    b = \\dot\\mu_t + \\tfrac12 \\dot C_t C_t^{-1} (x - \\mu_t), \\qquad
    s = -\\eta / \\gamma = -C_t^{-1} (x - \\mu_t).
"""

import math

import pytest
import torch
from torch import nn

from mfm.flows import (
    InterpolantDrift,
    MetaFlowObjective,
    integrate_sde,
    linear_path,
    stochastic_path,
)
from mfm.flows.interpolants import (
    diffusion,
    gamma,
    gamma_dot,
    interior_times,
    score,
    sde_drift,
)
from mfm.models import MetaFlowNet, NullConditioner, OneHotConditioner

F64 = torch.float64


class GaussianFields:
    """Exact velocity b, denoiser eta and score s of the interpolant between two Gaussians."""

    def __init__(self, m0, s0, m1, s1, sigma):
        self.m0, self.s0, self.m1, self.s1, self.sigma = m0, s0, m1, s1, sigma
        self.eye = torch.eye(len(m0), dtype=F64)

    def _moments(self, t):
        """Per-row mean (N, d), covariance C (N, d, d) and dC/dt (N, d, d)."""
        t3 = t[:, None, None]
        g, g_dot = gamma(t, self.sigma)[:, None, None], self._gamma_dot(t)[:, None, None]
        mean = (1 - t[:, None]) * self.m0 + t[:, None] * self.m1
        cov = (1 - t3) ** 2 * self.s0 + t3**2 * self.s1 + g**2 * self.eye
        cov_dot = -2 * (1 - t3) * self.s0 + 2 * t3 * self.s1 + 2 * g * g_dot * self.eye
        return mean, cov, cov_dot

    def _gamma_dot(self, t):
        # gamma * gamma' = sigma^2 (1 - 2t) / 2 is finite at the ends; gamma' itself is not
        return torch.where((t > 0) & (t < 1), gamma_dot(t.clamp(1e-12, 1 - 1e-12), self.sigma), 0)

    def _whitened(self, x, t):
        mean, cov, cov_dot = self._moments(t)
        return torch.linalg.solve(cov, (x - mean)[..., None]), cov_dot

    def velocity(self, x, t):
        solved, cov_dot = self._whitened(x, t)
        return (self.m1 - self.m0) + 0.5 * (cov_dot @ solved)[..., 0]

    def score(self, x, t):
        return -self._whitened(x, t)[0][..., 0]

    def denoiser(self, x, t):
        return -gamma(t, self.sigma)[:, None] * self.score(x, t)

    def heads(self, x, t, cond=None):
        return self.velocity(x, t), self.denoiser(x, t)


def _gaussians(d=2, sigma=0.8):
    m0 = torch.tensor([0.0, 1.0][:d], dtype=F64)
    m1 = torch.tensor([2.0, -1.0][:d], dtype=F64)
    s0 = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=F64)[:d, :d]
    s1 = torch.tensor([[0.25, -0.1], [-0.1, 0.8]], dtype=F64)[:d, :d]
    return GaussianFields(m0, s0, m1, s1, sigma)


def test_gamma_vanishes_at_the_ends_and_gamma_dot_is_its_derivative():
    t = torch.tensor([0.0, 1.0], dtype=F64)
    assert gamma(t, 0.7).tolist() == [0.0, 0.0]
    t = torch.linspace(0.05, 0.95, 7, dtype=F64)
    h = 1e-6
    slope = (gamma(t + h, 0.7) - gamma(t - h, 0.7)) / (2 * h)
    torch.testing.assert_close(gamma_dot(t, 0.7), slope)
    u = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    torch.testing.assert_close(interior_times(u, 0.01), torch.tensor([0.01, 0.5, 0.99], dtype=F64))


def test_path_velocity_is_the_time_derivative_and_sigma_zero_is_the_line():
    generator = torch.Generator().manual_seed(0)
    x0, x1, z = torch.randn(3, 6, 2, generator=generator, dtype=F64)
    t = torch.linspace(0.1, 0.9, 6, dtype=F64)
    path = stochastic_path(x0, x1, t, z, 0.5)
    h = 1e-6
    ahead, behind = (stochastic_path(x0, x1, t + s, z, 0.5).x_t for s in (h, -h))
    torch.testing.assert_close(path.dx_t, (ahead - behind) / (2 * h))
    torch.testing.assert_close(
        path.x_t, (1 - t[:, None]) * x0 + t[:, None] * x1 + gamma(t, 0.5)[:, None] * z
    )
    assert path.z is z
    line, flat = linear_path(x0, x1, t), stochastic_path(x0, x1, t, z, 0.0)
    assert torch.equal(flat.x_t, line.x_t) and torch.equal(flat.dx_t, line.dx_t)


def test_path_rejects_end_times_negative_sigma_and_bad_shapes():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"`t` must lie in \(0, 1\)"):
        stochastic_path(x, x, torch.tensor([0.0, 0.5, 0.5]), x, 0.1)
    with pytest.raises(ValueError, match="`sigma` must be a finite number"):
        stochastic_path(x, x, torch.full((3,), 0.5), x, -0.1)
    with pytest.raises(ValueError, match="`z`"):
        stochastic_path(x, x, torch.full((3,), 0.5), torch.zeros(3, 3), 0.1)


def test_sde_drift_is_velocity_plus_eps_score_and_finite_at_the_ends():
    generator = torch.Generator().manual_seed(1)
    b, eta = torch.randn(2, 5, 3, generator=generator, dtype=F64)
    t = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=F64)
    drift = sde_drift(b, eta, t, sigma=0.4, eps=0.3)
    inner = slice(1, 4)
    expected = b[inner] + diffusion(t[inner], 0.3)[:, None] * score(eta[inner], t[inner], 0.4)
    torch.testing.assert_close(drift[inner], expected)
    torch.testing.assert_close(drift[[0, -1]], b[[0, -1]])  # eps(t) s -> 0 at the ends
    torch.testing.assert_close(sde_drift(b, eta, t, sigma=0.4, eps=0.0), b)


def test_exact_fields_are_the_conditional_expectations():
    """b and eta of `GaussianFields` equal regressions of the targets on x_t (Monte Carlo)."""
    fields, n = _gaussians(d=1), 200_000
    generator = torch.Generator().manual_seed(2)
    x0 = fields.m0 + fields.s0.sqrt() * torch.randn(n, 1, generator=generator, dtype=F64)
    x1 = fields.m1 + fields.s1.sqrt() * torch.randn(n, 1, generator=generator, dtype=F64)
    z = torch.randn(n, 1, generator=generator, dtype=F64)
    t = torch.full((n,), 0.3, dtype=F64)
    path = stochastic_path(x0, x1, t, z, fields.sigma)
    design = torch.cat([torch.ones(n, 1, dtype=F64), path.x_t], dim=1)
    for target, exact in ((path.dx_t, fields.velocity), (path.z, fields.denoiser)):
        coef = torch.linalg.lstsq(design, target).solution
        grid = torch.tensor([[-1.0], [0.6], [2.0]], dtype=F64)
        fitted = coef[0] + grid * coef[1]
        torch.testing.assert_close(
            fitted, exact(grid, torch.full((3,), 0.3, dtype=F64)), atol=0.02, rtol=0
        )


def _sample(fields, drift, eps, n=20_000, steps=200, seed=3):
    generator = torch.Generator().manual_seed(seed)
    chol = torch.linalg.cholesky(fields.s0)
    x0 = fields.m0 + torch.randn(n, len(fields.m0), generator=generator, dtype=F64) @ chol.T
    return integrate_sde(
        drift, x0, diffusion=lambda t: diffusion(t, eps), n_steps=steps, generator=generator
    )


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0, 3.0])
def test_sde_with_exact_fields_reaches_the_target_gaussian(eps):
    fields = _gaussians()
    drift = InterpolantDrift(fields.heads, sigma=fields.sigma, eps=eps)
    x1 = _sample(fields, drift, eps)
    # sampling error of 20k draws: ~0.007 on the mean, ~0.01 on the covariance
    torch.testing.assert_close(x1.mean(0), fields.m1, atol=0.03, rtol=0)
    torch.testing.assert_close(x1.T.cov(), fields.s1, atol=0.04, rtol=0)


def test_sde_without_the_score_misses_the_target():
    """The known-answer test has teeth: dropping eps(t) s adds the noise's variance."""
    fields = _gaussians()
    x1 = _sample(fields, lambda x, t, c: fields.velocity(x, t), eps=1.0)
    extra = 2 * 4 * 1.0 / 6  # int_0^1 2 eps(t) dt, before the flow's contraction
    assert (x1.T.cov().diagonal() - fields.s1.diagonal()).min() > 0.3 * extra


def test_sde_samples_are_seeded():
    fields = _gaussians()
    drift = InterpolantDrift(fields.heads, sigma=fields.sigma, eps=0.5)
    first, again = (_sample(fields, drift, 0.5, n=50, steps=5, seed=7) for _ in range(2))
    other = _sample(fields, drift, 0.5, n=50, steps=5, seed=8)
    assert torch.equal(first, again) and not torch.equal(first, other)


class ExactNet(nn.Module):
    """`MetaFlowNet`'s API around exact (optionally perturbed) Gaussian fields."""

    def __init__(self, fields, velocity_shift=0.0, denoiser_scale=1.0):
        super().__init__()
        self.fields, self.shift, self.scale = fields, velocity_shift, denoiser_scale
        self.conditioner = NullConditioner()

    def embed(self, cells, population):
        return self.conditioner(cells, population)

    def condition(self, embedding, treatment):
        return embedding

    def velocity_and_denoiser(self, x, t, condition):
        b, eta = self.fields.heads(x, t)
        return b + self.shift, eta * self.scale


def test_objective_is_lowest_at_the_exact_fields():
    fields = _gaussians()
    generator = torch.Generator().manual_seed(4)
    chol0, chol1 = torch.linalg.cholesky(fields.s0), torch.linalg.cholesky(fields.s1)
    control = fields.m0 + torch.randn(2, 4000, 2, generator=generator, dtype=F64) @ chol0.T
    treated = fields.m1 + torch.randn(2, 4000, 2, generator=generator, dtype=F64) @ chol1.T
    codes = torch.zeros(2, dtype=torch.long)

    def loss(**perturbation):
        objective = MetaFlowObjective(ExactNet(fields, **perturbation), interpolant_sigma=0.8)
        out = objective(control, treated, codes, codes, torch.Generator().manual_seed(5))
        return out.parts["mse"].item(), out.parts["denoiser"].item()

    exact = loss()
    for shift in (-0.2, 0.2):
        assert loss(velocity_shift=shift)[0] > exact[0] + 0.5 * 2 * shift**2
    for scale in (0.8, 1.2):
        assert loss(denoiser_scale=scale)[1] > exact[1] + 1e-3


def _old_loss(objective, control, treated, codes, generator):
    """`MetaFlowObjective.forward` as on main before the interpolant option (same draws)."""
    batch, n, _ = control.shape
    net = objective.net
    h = net.embed(control, codes)
    dropped = torch.rand(batch, generator=generator)
    h = h * (dropped >= objective.population_dropout)[:, None].to(h.dtype)
    condition = net.condition(h, codes).repeat_interleave(n, dim=0)
    t = torch.rand(batch * n, generator=generator, dtype=control.dtype)
    path = linear_path(control.reshape(batch * n, -1), treated.reshape(batch * n, -1), t)
    return (net.velocity(path.x_t, path.t, condition) - path.dx_t).square().sum(-1).mean()


def test_sigma_zero_objective_is_the_old_one_with_the_same_draws():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = MetaFlowNet(NullConditioner(), 3, 2, hidden=16, n_layers=2)
    assert net.denoiser is None
    control, treated = torch.randn(2, 4, 10, 3, generator=torch.Generator().manual_seed(6))
    codes = torch.tensor([0, 1, 1, 0])
    objective = MetaFlowObjective(net, population_dropout=0.5, interpolant_sigma=0.0)
    new_generator, old_generator = (
        torch.Generator().manual_seed(9),
        torch.Generator().manual_seed(9),
    )
    new = objective(control, treated, codes, codes, new_generator).loss
    assert torch.equal(new, _old_loss(objective, control, treated, codes, old_generator))
    assert torch.equal(new_generator.get_state(), old_generator.get_state())  # no extra draws


def test_denoiser_head_adds_parameters_after_the_others():
    def build(denoiser):
        with torch.random.fork_rng():
            torch.manual_seed(1)
            return MetaFlowNet(NullConditioner(), 3, 2, hidden=16, n_layers=2, denoiser=denoiser)

    plain, noisy = build(False).state_dict(), build(True).state_dict()
    assert list(noisy) == [*plain, "denoiser.weight", "denoiser.bias"]
    assert all(torch.equal(plain[k], noisy[k]) for k in plain)
    with pytest.raises(ValueError, match="no denoiser head"):
        build(False).velocity_and_denoiser(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2, 2))


def test_learned_score_of_a_gaussian_toy_matches_the_closed_form():
    """A short training on 1-D Gaussians: the denoiser head's score is close to -(x - mu_t)/C_t."""
    fields = GaussianFields(
        torch.tensor([0.0], dtype=F64), torch.tensor([[1.0]], dtype=F64),
        torch.tensor([2.0], dtype=F64), torch.tensor([[0.25]], dtype=F64), 1.0,
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = MetaFlowNet(NullConditioner(), 1, 1, hidden=64, n_layers=3, denoiser=True)
    objective = MetaFlowObjective(net, interpolant_sigma=1.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    codes = torch.zeros(4, dtype=torch.long)
    for _ in range(600):
        control = torch.randn(4, 256, 1, generator=generator)
        treated = 2.0 + 0.5 * torch.randn(4, 256, 1, generator=generator)
        optimizer.zero_grad()
        objective(control, treated, codes, codes, generator).loss.backward()
        optimizer.step()
    t = torch.tensor([0.25, 0.5, 0.75]).repeat_interleave(5)
    mean, cov, _ = fields._moments(t.double())
    spread = torch.linspace(-1.5, 1.5, 5).repeat(3)[:, None].double()
    x = mean + spread * cov[:, 0].sqrt()
    with torch.no_grad():
        _, eta = net.velocity_and_denoiser(x.float(), t, torch.zeros(len(t), 1))
    learned, exact = score(eta.double(), t.double(), 1.0), fields.score(x, t.double())
    # exact scores span about +-2.5 here; a fitted network within 0.25 of them
    assert (learned - exact).abs().max() < 0.25 * exact.abs().max()
    assert math.isfinite(learned.sum().item())


def test_heads_mix_both_outputs_with_the_population_weight():
    with torch.random.fork_rng():
        torch.manual_seed(2)
        net = MetaFlowNet(OneHotConditioner(2), 3, 2, hidden=16, n_layers=2, denoiser=True)
    net.population_weight = 0.25
    generator = torch.Generator().manual_seed(3)
    x, t = torch.randn(4, 3, generator=generator), torch.rand(4, generator=generator)
    h = net.embed(torch.randn(4, 5, 3, generator=generator), torch.tensor([0, 1, -1, 0]))
    condition = net.condition(h, torch.tensor([1, 0, 1, 1]))
    full = net.velocity_and_denoiser(x, t, condition)
    free = net.velocity_and_denoiser(x, t, net.without_population(condition))
    velocity, denoiser = net.heads(x, t, condition)
    torch.testing.assert_close(velocity, free[0] + 0.25 * (full[0] - free[0]))
    torch.testing.assert_close(denoiser, free[1] + 0.25 * (full[1] - free[1]))
    torch.testing.assert_close(velocity, net(x, t, condition))
