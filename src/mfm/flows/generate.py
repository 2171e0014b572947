r"""Generation of niches from a learned velocity: point clouds and Gaussians (Bures-Wasserstein).

Every generator runs the fixed-step loop :func:`~mfm.flows.solve.integrate_fixed` from t = 0
(noise) to t = 1 with ``h = 1 / n_steps``; they differ only by their step:

- :func:`generate_clouds`: Euler or midpoint steps of every point of padded clouds;
- :func:`generate_gaussians`: the push-forward step of a Gaussian
  (:func:`~mfm.flows.bures_wasserstein.step`) along the learned velocity projected onto the
  velocities a Bures-Wasserstein geodesic can have
  (:func:`~mfm.flows.bures_wasserstein.admissible_velocity`);
- :func:`generate_gaussian_clouds`: Gaussians of noise clouds through
  :func:`generate_gaussians`, then points drawn from the generated Gaussians.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from .._checks import check_choice, check_positive_int
from .._masks import zero_padding
from . import bures_wasserstein as bw
from .point_clouds import check_clouds
from .solve import integrate_fixed

__all__ = ["generate_clouds", "generate_gaussian_clouds", "generate_gaussians"]

#: ``velocity_fn(x (B, n, d), t (B,), cond, mask (B, n) | None) -> (B, n, d)``.
VelocityFn = Callable[[Tensor, Tensor, Any, Tensor | None], Tensor]
#: ``velocity_fn(m (B, d), S (B, d, d), t (B,), cond) -> (v_m (B, d), S_v (B, d, d))``.
GaussianVelocityFn = Callable[[Tensor, Tensor, Tensor, Any], tuple[Tensor, Tensor]]


def generate_clouds(
    velocity_fn: VelocityFn,
    x0: Tensor,
    mask: Tensor | None = None,
    cond: Any = None,
    *,
    n_steps: int = 100,
    method: Literal["euler", "midpoint"] = "euler",
) -> Tensor:
    r"""Integrate ``dx/dt = v(x, t | cond)`` from noise clouds at t = 0 to t = 1 with fixed steps.

    .. math:: \text{euler: } x \leftarrow x + h v(x, t); \qquad
              \text{midpoint: } x \leftarrow x + h v(x + \tfrac h2 v(x, t), t + \tfrac h2)

    with ``h = 1 / n_steps``. Runs without gradient; padded points stay 0. Put the velocity
    module in eval mode first (``model.eval()``), or its dropout and label dropout stay on.

    Parameters
    ----------
    velocity_fn
        ``velocity_fn(x (B, n, d), t (B,), cond, mask) -> (B, n, d)``, e.g. a
        `~mfm.models.SetTransformerVelocity` or ``functools.partial(model.guided,
        guidance_scale=w)``.
    x0
        ``(B, n, d)`` noise clouds (see :func:`~mfm.flows.point_clouds.sample_noise_clouds`).
    mask
        ``(B, n)`` bool, True on valid points, or ``None``.
    cond
        Condition passed through to ``velocity_fn`` (e.g. ``(B,)`` labels), or ``None``.
    n_steps
        Number of steps.
    method
        ``"euler"`` or ``"midpoint"``.

    Returns
    -------
    ``(B, n, d)`` generated clouds at t = 1.
    """
    check_positive_int("n_steps", n_steps)
    check_choice("method", method, ("euler", "midpoint"))
    mask = check_clouds(x0, x0, mask)

    def step(x: Tensor, t: Tensor, h: float) -> Tensor:
        v = velocity_fn(x, t, cond, mask)
        if method == "midpoint":
            v = velocity_fn(zero_padding(x + 0.5 * h * v, mask), t + 0.5 * h, cond, mask)
        return zero_padding(x + h * v, mask)

    return integrate_fixed(step, zero_padding(x0, mask), n_steps=n_steps, like=x0)


def generate_gaussians(
    velocity_fn: GaussianVelocityFn,
    m0: Tensor,
    S0: Tensor,
    cond: Any = None,
    *,
    n_steps: int = 100,
) -> tuple[Tensor, Tensor]:
    r"""Integrate a Gaussian velocity from ``N(m0, S0)`` at t = 0 to t = 1 with explicit steps.

    .. math:: S_v \leftarrow \Pi_{\mathcal V_t}(S_v), \qquad m \leftarrow m + h v_m, \qquad
              S \leftarrow (I + h S_v) S (I + h S_v), \qquad h = 1 / n_\mathrm{steps}

    (:func:`~mfm.flows.bures_wasserstein.step`). :math:`\Pi_{\mathcal V_t}` projects the
    velocity onto those a Bures-Wasserstein geodesic can have at ``t``, eigenvalues in
    :math:`[-1/(1 - t), 1/t]` (:func:`~mfm.flows.bures_wasserstein.admissible_velocity`): it
    leaves a velocity of the geodesic family unchanged, never moves a learned one further from
    it, and keeps ``S`` symmetric positive semi-definite and bounded. Without it, a network fed
    a covariance beyond its training range can answer with a velocity that grows with ``S``:
    the learned ODE then blows up in finite time (on MERFISH niches about 1 in 60 niches by
    t = 0.7, whatever the number of steps). Runs without gradient; put the velocity module in
    eval mode first.

    Parameters
    ----------
    velocity_fn
        ``velocity_fn(m (B, d), S (B, d, d), t (B,), cond) -> (v_m, S_v)``, e.g.
        ``functools.partial(net.guided, guidance_scale=w)`` of a
        :class:`~mfm.models.GaussianVelocity`.
    m0
        ``(B, d)`` source means.
    S0
        ``(B, d, d)`` SPD source covariances.
    cond
        Condition passed to ``velocity_fn`` (e.g. ``(B,)`` labels), or ``None``.
    n_steps
        Number of steps.

    Returns
    -------
    ``(m, S)`` at t = 1, shapes ``(B, d)`` and ``(B, d, d)``.

    Raises
    ------
    ValueError
        When the velocity or the generated mean or covariance of a Gaussian is not finite,
        naming the Gaussians and the time.
    """

    def step(state: tuple[Tensor, Tensor], t: Tensor, h: float) -> tuple[Tensor, Tensor]:
        m, S = state
        v_m, S_v = velocity_fn(m, S, t, cond)
        _check_finite("the velocity", v_m, S_v, t)
        m, S = bw.step(m, S, v_m, bw.admissible_velocity(S_v, t), h)
        _check_finite("the generated Gaussian", m, S, t + h)
        return m, S

    return integrate_fixed(step, (m0, S0), n_steps=n_steps, like=m0)


def generate_gaussian_clouds(
    velocity_fn: GaussianVelocityFn,
    x0: Tensor,
    mask: Tensor | None = None,
    cond: Any = None,
    *,
    shrinkage: float | Literal["ledoit_wolf"] = 0.1,
    n_steps: int = 100,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Generate point clouds through Gaussians: noise cloud -> Gaussian -> flow -> points.

    Each noise cloud is summarised by its float64 Gaussian ``N(m0, S0)``
    (:func:`~mfm.flows.bures_wasserstein.gaussian_from_clouds`), moved to t = 1 by
    :func:`generate_gaussians` (the network evaluated in ``x0``'s dtype), and as many points as
    the cloud holds are drawn from the generated ``N(m, S)``: :math:`m + S^{1/2} z`,
    :math:`z \sim N(0, I)`.

    Parameters
    ----------
    velocity_fn
        The Gaussian velocity, as in :func:`generate_gaussians`.
    x0
        ``(B, n, d)`` noise clouds.
    mask
        ``(B, n)`` bool, True on valid points, or ``None``.
    cond
        Condition passed to ``velocity_fn``, or ``None``.
    shrinkage
        Covariance shrinkage of the noise clouds' Gaussians (the model's training value).
    n_steps
        Number of steps.
    generator
        Torch generator of the drawn points, on ``x0``'s device.

    Returns
    -------
    ``(B, n, d)`` clouds in ``x0``'s dtype, 0 on padding.
    """
    mask = check_clouds(x0, x0, mask)
    m0, S0 = bw.gaussian_from_clouds(x0.double(), mask, shrinkage=shrinkage)

    def velocity64(m: Tensor, S: Tensor, t: Tensor, c: Any) -> tuple[Tensor, Tensor]:
        v_m, S_v = velocity_fn(m.to(x0.dtype), S.to(x0.dtype), t.to(x0.dtype), c)
        return v_m.double(), S_v.double()

    m, S = generate_gaussians(velocity64, m0, S0, cond, n_steps=n_steps)
    z = torch.randn(x0.shape, generator=generator, dtype=m.dtype, device=m.device)
    points = m[:, None, :] + z @ bw.sqrtm_spd(S)
    return torch.where(mask[..., None], points, 0.0).to(x0.dtype)


def _check_finite(what: str, m: Tensor, S: Tensor, t: Tensor) -> None:
    """Raise a `ValueError` naming the Gaussians whose mean or covariance is not finite."""
    finite = torch.isfinite(m).all(-1) & torch.isfinite(S).all(-1).all(-1)
    if bool(finite.all()):
        return
    bad = torch.nonzero(~finite).flatten().tolist()
    msg = (
        f"Gaussian generation diverged: {what} of {len(bad)} of {len(m)} Gaussians "
        f"(batch positions {bad[:10]}) is not finite at t = {float(t[0]):.3g}. The velocity "
        "network returns non-finite values there: check the model's training loss, or "
        "lower `guidance_scale`."
    )
    raise ValueError(msg)
