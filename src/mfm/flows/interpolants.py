r"""Stochastic interpolants (Albergo & Vanden-Eijnden): noisy path, two targets, SDE drift.

The interpolant between coupled samples :math:`(x_0, x_1)` with latent noise
:math:`z \sim N(0, I)` is

.. math::
    x_t = (1 - t) x_0 + t x_1 + \gamma(t) z, \qquad
    \gamma(t) = \sigma \sqrt{t (1 - t)},

(:math:`\sigma = 0` is the straight path of :func:`~mfm.flows.linear_path`). Its marginals
:math:`\rho_t` are transported by the velocity
:math:`b(t, x) = E[x_1 - x_0 + \dot\gamma(t) z \mid x_t = x]` (an ODE) and, for any
:math:`\epsilon(t) \ge 0`, by the SDE

.. math::
    dX_t = \bigl(b(t, X_t) + \epsilon(t) s(t, X_t)\bigr) dt + \sqrt{2 \epsilon(t)}\, dW_t,
    \qquad s(t, x) = \nabla \log \rho_t(x) = -E[z \mid x_t = x] / \gamma(t).

Both are learned by regression: :math:`b` on the target :math:`x_1 - x_0 + \dot\gamma z`,
and the denoiser :math:`\eta(t, x) = E[z \mid x_t = x]` on the target :math:`z`, whence
:math:`s = -\eta / \gamma`. :math:`\dot\gamma` diverges at t = 0 and 1, so training times are
drawn in :math:`[t_m, 1 - t_m]` (:func:`interior_times`); the denoiser's target :math:`z` is
bounded at every t (the score loss :math:`|s|^2/2 + z \cdot s / \gamma` is not). The SDE
uses :math:`\epsilon(t) = 4 \epsilon\, t (1 - t) = \epsilon\, (2\gamma(t) / \sigma)^2`, the
interpolant's own noise profile scaled to :math:`\epsilon` at t = 1/2: it vanishes at both
ends, where :math:`1/\gamma` diverges, so :math:`\epsilon(t) s = -4 \epsilon \sqrt{t (1 - t)}\,
\eta / \sigma` stays bounded (:func:`sde_drift`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from .._checks import check_number
from .paths import PathSample, linear_path

#: The schedule and field helpers (the path, its sample and the drift are in ``mfm.flows``).
__all__ = ["diffusion", "gamma", "gamma_dot", "interior_times", "score", "sde_drift"]

#: Training times are drawn in ``[T_MARGIN, 1 - T_MARGIN]`` when ``sigma > 0``.
T_MARGIN = 0.01

#: A network with both heads: ``heads(x (N, d), t (N,), cond (N, c)) -> (b, eta)``, each ``(N, d)``.
Heads = Callable[[Tensor, Tensor, Tensor | None], tuple[Tensor, Tensor]]


@dataclass
class InterpolantSample(PathSample):
    r"""A point of the stochastic interpolant, its velocity target and its noise.

    Attributes
    ----------
    x_t
        :math:`(1 - t) x_0 + t x_1 + \gamma(t) z`, shape of the endpoints ``(N, d)``.
    dx_t
        Velocity target :math:`x_1 - x_0 + \dot\gamma(t) z`, same shape.
    t
        Times ``(N,)``.
    z
        The latent noise, same shape (the denoiser's target).
    """

    z: Tensor


def gamma(t: Tensor, sigma: float) -> Tensor:
    r"""Noise scale :math:`\gamma(t) = \sigma \sqrt{t (1 - t)}` of times ``t`` (any shape)."""
    return sigma * (t * (1 - t)).clamp_min(0).sqrt()


def gamma_dot(t: Tensor, sigma: float) -> Tensor:
    r"""Time derivative :math:`\dot\gamma(t) = \sigma (1 - 2t) / (2 \sqrt{t (1 - t)})`.

    Infinite at t = 0 and 1 (for ``sigma > 0``): evaluate at interior times only.
    """
    return sigma * (1 - 2 * t) / (2 * (t * (1 - t)).sqrt())


def interior_times(u: Tensor, margin: float = T_MARGIN) -> Tensor:
    r"""Map uniform draws ``u`` in [0, 1) to [margin, 1 - margin) (:math:`\dot\gamma` finite)."""
    return margin + (1 - 2 * margin) * u


def stochastic_path(
    x0: Tensor, x1: Tensor, t: Tensor, z: Tensor, sigma: float
) -> InterpolantSample:
    r"""The stochastic interpolant and its velocity target at interior times.

    .. math::
        x_t = (1 - t) x_0 + t x_1 + \gamma(t) z, \qquad
        \dot x_t = x_1 - x_0 + \dot\gamma(t) z.

    Parameters
    ----------
    x0
        Source samples ``(N, d)``.
    x1
        Target samples ``(N, d)``, paired row by row with ``x0``.
    t
        Times ``(N,)`` in (0, 1) when ``sigma > 0`` (see :func:`interior_times`).
    z
        Standard normal noise ``(N, d)``.
    sigma
        Scale :math:`\sigma \ge 0` of :math:`\gamma`; 0 gives :func:`~mfm.flows.linear_path`
        (with ``z`` kept).

    Returns
    -------
    `InterpolantSample` with ``x_t``, ``dx_t``, ``t`` and ``z``.
    """
    check_number("sigma", sigma, closed="left")
    if z.shape != x0.shape or x0.ndim != 2 or t.shape != (len(x0),):
        msg = (
            f"`x0` {tuple(x0.shape)} must be (N, d), `z` {tuple(z.shape)} like it and `t` "
            f"{tuple(t.shape)} (N,)."
        )
        raise ValueError(msg)
    path = linear_path(x0, x1, t)
    if sigma == 0:
        return InterpolantSample(path.x_t, path.dx_t, path.t, z)
    if not ((t > 0) & (t < 1)).all():
        msg = "`t` must lie in (0, 1) when `sigma > 0`: the velocity target diverges at 0 and 1."
        raise ValueError(msg)
    g, g_dot = gamma(t, sigma)[:, None], gamma_dot(t, sigma)[:, None]
    return InterpolantSample(path.x_t + g * z, path.dx_t + g_dot * z, path.t, z)


def diffusion(t: Tensor, eps: float) -> Tensor:
    r"""Diffusion coefficient :math:`\epsilon(t) = 4 \epsilon\, t (1 - t)` of the sampling SDE."""
    return 4 * eps * t * (1 - t)


def sde_drift(velocity: Tensor, denoiser: Tensor, t: Tensor, *, sigma: float, eps: float) -> Tensor:
    r"""Drift :math:`b + \epsilon(t) s` of the SDE from the velocity and the denoiser.

    .. math::
        b + \epsilon(t) s = b - \frac{\epsilon(t)}{\gamma(t)} \eta
        = b - \frac{4 \epsilon \sqrt{t (1 - t)}}{\sigma} \eta,

    finite at every t in [0, 1].

    Parameters
    ----------
    velocity
        :math:`b` ``(N, d)``.
    denoiser
        :math:`\eta \approx E[z \mid x_t]` ``(N, d)``.
    t
        Times ``(N,)``.
    sigma
        The interpolant's :math:`\sigma > 0`.
    eps
        The SDE's :math:`\epsilon \ge 0`.

    Returns
    -------
    ``(N, d)`` drift.
    """
    weight = 4 * eps * (t * (1 - t)).clamp_min(0).sqrt() / sigma
    return velocity - weight.reshape(-1, 1) * denoiser


class InterpolantDrift:
    r"""The SDE drift :math:`f(x, t, c) = b + \epsilon(t) s` of a two-headed network.

    A `~mfm.flows.solve.Velocity` for :func:`~mfm.flows.integrate_sde`.

    Parameters
    ----------
    heads
        ``heads(x, t, cond) -> (b, eta)``, e.g. :meth:`mfm.models.MetaFlowNet.heads`.
    sigma
        The interpolant's :math:`\sigma > 0` (the one the heads were trained with).
    eps
        The SDE's :math:`\epsilon \ge 0`.
    """

    def __init__(self, heads: Heads, *, sigma: float, eps: float) -> None:
        check_number("sigma", sigma)
        check_number("eps", eps, closed="left")
        self.heads, self.sigma, self.eps = heads, sigma, eps

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
        """``(N, d)`` drift at states ``x (N, d)``, times ``t (N,)``, conditions ``cond``."""
        velocity, denoiser = self.heads(x, t, cond)
        return sde_drift(velocity, denoiser, t, sigma=self.sigma, eps=self.eps)


def score(denoiser: Tensor, t: Tensor, sigma: float) -> Tensor:
    r"""Score :math:`s = -\eta / \gamma(t)` of denoiser outputs ``(N, d)`` at times ``(N,)``."""
    return -denoiser / gamma(t, sigma).reshape(-1, 1)
