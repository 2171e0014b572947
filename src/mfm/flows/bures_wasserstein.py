r"""Bures-Wasserstein geometry of Gaussians: Monge maps, geodesics, velocities, generation steps.

A Gaussian :math:`\mathcal N(m, \Sigma)` is a point of the Bures-Wasserstein manifold. Every
function here is batched: means are ``(B, d)``, covariances ``(B, d, d)`` symmetric positive
definite (SPD), and works on any device and floating dtype (double precision is advised for
ill-conditioned covariances).

The Gaussian flavour of Wasserstein flow matching (Haviv et al., ICML 2025) learns the velocity
``(v_m, S_v)`` of :func:`velocity` along :func:`geodesic` and generates with :func:`step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "GaussianPathSample",
    "admissible_velocity",
    "gaussian_from_clouds",
    "geodesic",
    "geodesic_path",
    "monge_map",
    "sqrtm_spd",
    "step",
    "velocity",
    "w2_gaussian",
]


def sqrtm_spd(S: Tensor) -> Tensor:
    r"""Square root of symmetric positive semi-definite matrices by eigendecomposition.

    .. math:: S^{1/2} = U \operatorname{diag}(\sqrt{\max(\lambda, 0)}) U^\top,
              \quad S = U \operatorname{diag}(\lambda) U^\top

    Parameters
    ----------
    S
        ``(..., d, d)`` symmetric positive semi-definite matrices.

    Returns
    -------
    The ``(..., d, d)`` symmetric square roots (tiny negative eigenvalues from round-off are
    clamped to 0).
    """
    return _sym_power(S, 0.5)


def monge_map(S0: Tensor, S1: Tensor) -> Tensor:
    r"""Optimal (Monge) linear map between centred Gaussians with covariances ``S0`` and ``S1``.

    .. math:: A = S_0^{-1/2} (S_0^{1/2} S_1 S_0^{1/2})^{1/2} S_0^{-1/2},
              \qquad A S_0 A = S_1

    The map :math:`x \mapsto m_1 + A (x - m_0)` pushes :math:`\mathcal N(m_0, S_0)` onto
    :math:`\mathcal N(m_1, S_1)` at minimal squared-Euclidean cost.

    Parameters
    ----------
    S0
        ``(B, d, d)`` SPD source covariances.
    S1
        ``(B, d, d)`` SPD target covariances.

    Returns
    -------
    ``A``: ``(B, d, d)`` symmetric positive definite maps.
    """
    root0, inv_root0 = _sym_power(S0, 0.5), _sym_power(S0, -0.5)
    middle = sqrtm_spd(root0 @ S1 @ root0)
    return _symmetrize(inv_root0 @ middle @ inv_root0)


@dataclass(frozen=True)
class GaussianPathSample:
    """A point of the Bures-Wasserstein geodesic and its velocity (see :func:`geodesic_path`).

    Attributes
    ----------
    m_t
        ``(B, d)`` means at time ``t``.
    S_t
        ``(B, d, d)`` covariances at time ``t``.
    v_m
        ``(B, d)`` mean velocities.
    S_v
        ``(B, d, d)`` symmetric covariance velocities.
    t
        ``(B,)`` times.
    """

    m_t: Tensor
    S_t: Tensor
    v_m: Tensor
    S_v: Tensor
    t: Tensor


def geodesic_path(
    m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor, t: float | Tensor
) -> GaussianPathSample:
    r"""Point at time ``t`` on the Bures-Wasserstein geodesic and its velocity, one Monge map.

    .. math:: A = \text{monge\_map}(S_0, S_1), \quad M_t = (1 - t) I + t A, \quad
              m_t = (1 - t) m_0 + t m_1, \quad S_t = M_t S_0 M_t,

    .. math:: v_m = m_1 - m_0, \qquad S_v = (A - I) M_t^{-1}

    ``A`` and ``M_t`` commute (``M_t`` is a polynomial in ``A``), so ``S_v`` is symmetric and
    :math:`\dot S_t = S_v S_t + S_t S_v`; a particle at ``x`` moves with
    :math:`v_m + S_v (x - m_t)`. :math:`W_2` along the geodesic is
    :math:`W_2(\mu_0, \mu_t) = t W` and :math:`W_2(\mu_t, \mu_1) = (1 - t) W`. ``S_t`` and
    ``S_v`` are symmetrised to remove round-off asymmetry. The flow-matching objective needs
    both the point and the velocity: computing them together costs one Monge map (three
    eigendecompositions) instead of two.

    Parameters
    ----------
    m0
        ``(B, d)`` means at t = 0.
    S0
        ``(B, d, d)`` SPD covariances at t = 0.
    m1
        ``(B, d)`` means at t = 1.
    S1
        ``(B, d, d)`` SPD covariances at t = 1.
    t
        A float or a scalar / ``(B,)`` tensor of times in [0, 1].

    Returns
    -------
    The :class:`GaussianPathSample` ``(m_t, S_t, v_m, S_v, t)``.

    See Also
    --------
    geodesic : the point only.
    velocity : the velocity only.
    """
    t_vec = _as_times(t, m0)
    A = monge_map(S0, S1)
    M_t = _interpolate_identity(A, t_vec)
    m_t = (1 - t_vec)[:, None] * m0 + t_vec[:, None] * m1
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    # M_t is SPD for t in [0, 1] (convex combination of I and the SPD map A): solve, not invert.
    S_v = torch.linalg.solve(M_t, A - eye, left=False)
    return GaussianPathSample(m_t, _symmetrize(M_t @ S0 @ M_t), m1 - m0, _symmetrize(S_v), t_vec)


def geodesic(
    m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor, t: float | Tensor
) -> tuple[Tensor, Tensor]:
    r"""Point at time ``t`` on the Bures-Wasserstein geodesic from ``N(m0, S0)`` to ``N(m1, S1)``.

    .. math:: m_t = (1 - t) m_0 + t m_1, \quad M_t = (1 - t) I + t A,
              \quad S_t = M_t S_0 M_t

    with ``A`` the :func:`monge_map` from ``S0`` to ``S1``.

    Parameters
    ----------
    m0
        ``(B, d)`` means at t = 0.
    S0
        ``(B, d, d)`` SPD covariances at t = 0.
    m1
        ``(B, d)`` means at t = 1.
    S1
        ``(B, d, d)`` SPD covariances at t = 1.
    t
        A float or a scalar / ``(B,)`` tensor of times in [0, 1].

    Returns
    -------
    ``(m_t, S_t)`` of shapes ``(B, d)`` and ``(B, d, d)``.

    See Also
    --------
    geodesic_path : the point and its velocity, from one Monge map.
    """
    sample = geodesic_path(m0, S0, m1, S1, t)
    return sample.m_t, sample.S_t


def velocity(
    m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor, t: float | Tensor
) -> tuple[Tensor, Tensor]:
    r"""Velocity of the Bures-Wasserstein geodesic at time ``t`` (the flow-matching target).

    .. math:: v_m = m_1 - m_0, \qquad S_v = (A - I) M_t^{-1}, \quad M_t = (1 - t) I + t A

    Parameters
    ----------
    m0
        ``(B, d)`` means at t = 0.
    S0
        ``(B, d, d)`` SPD covariances at t = 0.
    m1
        ``(B, d)`` means at t = 1.
    S1
        ``(B, d, d)`` SPD covariances at t = 1.
    t
        A float or a scalar / ``(B,)`` tensor of times in [0, 1].

    Returns
    -------
    ``(v_m, S_v)`` of shapes ``(B, d)`` and ``(B, d, d)``.

    See Also
    --------
    geodesic_path : the point and its velocity, from one Monge map.
    """
    sample = geodesic_path(m0, S0, m1, S1, t)
    return sample.v_m, sample.S_v


def admissible_velocity(S_v: Tensor, t: float | Tensor) -> Tensor:
    r"""Project covariance velocities onto those a Bures-Wasserstein geodesic can have at ``t``.

    On the geodesic from ``S0`` to ``S1`` (:func:`geodesic_path`), ``S_v = (A - I) M_t^{-1}``
    has the eigenvalues :math:`f(a) = (a - 1) / (1 - t + t a)` of the Monge map's eigenvalues
    :math:`a > 0`; ``f`` increases from :math:`-1/(1 - t)` (``a -> 0``) to :math:`1/t`
    (``a -> ∞``), so every geodesic velocity, and every average of them (the marginal velocity a
    flow-matching network learns), has its spectrum in

    .. math:: \mathcal V_t = \{S_v = S_v^\top :
              -\tfrac{1}{1 - t} \le \lambda(S_v) \le \tfrac{1}{t}\}.

    This returns the Frobenius projection onto the convex set :math:`\mathcal V_t` (eigenvalues
    clamped to the interval). Projecting onto a convex set that holds the true velocity never
    moves a learned velocity further from it, and it keeps a generation :func:`step` of size
    ``h <= 1 - t`` positive semi-definite (``I + h S_v`` has eigenvalues
    :math:`\ge 1 - h / (1 - t) \ge 0`). It also bounds how fast a covariance can grow, which a
    network evaluated outside its training range does not. Matrices already in
    :math:`\mathcal V_t` are returned unchanged (bit for bit).

    Parameters
    ----------
    S_v
        ``(B, d, d)`` symmetric covariance velocities.
    t
        A float or a scalar / ``(B,)`` tensor of times in [0, 1].

    Returns
    -------
    ``(B, d, d)`` velocities with their spectra in :math:`\mathcal V_t`.
    """
    t_vec = _as_times(t, S_v)[:, None]
    inf = torch.full_like(t_vec, torch.inf)
    low = torch.where(t_vec < 1, -1 / (1 - t_vec).clamp_min(torch.finfo(S_v.dtype).tiny), -inf)
    high = torch.where(t_vec > 0, 1 / t_vec.clamp_min(torch.finfo(S_v.dtype).tiny), inf)
    eigvals, eigvecs = torch.linalg.eigh(_symmetrize(S_v))
    outside = ((eigvals < low) | (eigvals > high)).any(-1)
    if not bool(outside.any()):
        return S_v
    clamped = torch.minimum(torch.maximum(eigvals, low), high)
    projected = _symmetrize((eigvecs * clamped[..., None, :]) @ eigvecs.mT)
    return torch.where(outside[:, None, None], projected, S_v)


def step(
    m: Tensor, S: Tensor, v_m: Tensor, S_v: Tensor, h: float | Tensor
) -> tuple[Tensor, Tensor]:
    r"""One explicit generation step of size ``h`` along the velocity ``(v_m, S_v)``.

    .. math:: m \leftarrow m + h v_m, \qquad
              S \leftarrow (I + h S_v) S (I + h S_v)

    The covariance update is the push-forward of ``N(m, S)`` by the linear map
    ``x -> x + h (v_m + S_v (x - m))``, so it stays symmetric positive semi-definite and matches
    :math:`\dot S = S_v S + S S_v` to first order in ``h``. Along a geodesic it is exact for any
    ``h``: ``I + h S_v(t) = M_{t+h} M_t^{-1}``. For a learned velocity, project ``S_v`` with
    :func:`admissible_velocity` first, which keeps ``I + h S_v`` positive semi-definite.

    Parameters
    ----------
    m
        ``(B, d)`` current means.
    S
        ``(B, d, d)`` current covariances.
    v_m
        ``(B, d)`` mean velocities.
    S_v
        ``(B, d, d)`` symmetric covariance velocities.
    h
        Step size: a float or a scalar / ``(B,)`` tensor.

    Returns
    -------
    The updated ``(m, S)``.
    """
    h_vec = _as_times(h, m)
    eye = torch.eye(S.shape[-1], dtype=S.dtype, device=S.device)
    E = eye + h_vec[:, None, None] * S_v
    return m + h_vec[:, None] * v_m, _symmetrize(E @ S @ E)


def w2_gaussian(m0: Tensor, S0: Tensor, m1: Tensor, S1: Tensor) -> Tensor:
    r"""Bures-Wasserstein (2-Wasserstein) distance between Gaussians.

    .. math:: W_2^2 = \|m_0 - m_1\|^2 + \operatorname{tr}(S_0 + S_1
              - 2 (S_0^{1/2} S_1 S_0^{1/2})^{1/2})

    Parameters
    ----------
    m0, m1
        ``(B, d)`` means.
    S0, S1
        ``(B, d, d)`` SPD covariances.

    Returns
    -------
    ``(B,)`` distances :math:`W_2` (not squared).

    See Also
    --------
    ot.gaussian.bures_wasserstein_distance : the unbatched POT reference.
    """
    root0 = sqrtm_spd(S0)
    eigvals = torch.linalg.eigvalsh(_symmetrize(root0 @ S1 @ root0))
    cross = eigvals.clamp_min(0).sqrt().sum(-1)
    trace = torch.diagonal(S0 + S1, dim1=-2, dim2=-1).sum(-1)
    squared = ((m0 - m1) ** 2).sum(-1) + trace - 2 * cross
    return squared.clamp_min(0).sqrt()


def gaussian_from_clouds(
    x: Tensor,
    mask: Tensor | None = None,
    *,
    shrinkage: float | Literal["ledoit_wolf"] = 1e-3,
) -> tuple[Tensor, Tensor]:
    r"""Mean and shrunk covariance of each point cloud, seen as a uniform measure on its points.

    .. math:: m = \frac1n \sum_i x_i, \quad C = \frac1n \sum_i (x_i - m)(x_i - m)^\top,
              \quad S = (1 - \alpha) C + \alpha \mu I, \quad \mu = \operatorname{tr}(C) / d

    Shrinking towards the scaled identity keeps ``S`` positive definite when a cloud has no more
    points than dimensions (e.g. 16 neighbours in 16 PCA dimensions); ``μ`` is floored at the
    dtype's machine epsilon so that clouds of identical points still get an SPD covariance.

    Parameters
    ----------
    x
        ``(B, n, d)`` point clouds.
    mask
        ``(B, n)`` bool, True on valid points (``None``: all valid). Padded values are ignored
        (they may even be NaN). Every cloud needs at least one valid point.
    shrinkage
        The weight ``α`` in [0, 1], or ``"ledoit_wolf"`` for the Ledoit-Wolf estimate of ``α``
        per cloud (as :func:`sklearn.covariance.ledoit_wolf`).

    Returns
    -------
    ``(m, S)`` of shapes ``(B, d)`` and ``(B, d, d)``. A pooled Gaussian of all points of all
    clouds is ``gaussian_from_clouds(x.reshape(1, -1, d), mask.reshape(1, -1))``.
    """
    weights = _uniform_weights(x, mask)
    x = torch.where(weights[..., None] > 0, x, torch.zeros((), dtype=x.dtype, device=x.device))
    mean = torch.einsum("bn,bnd->bd", weights, x)
    centred = (x - mean[:, None]) * (weights[..., None] > 0)
    cov = torch.einsum("bn,bnd,bne->bde", weights, centred, centred)
    d = x.shape[-1]
    mu = (torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1) / d).clamp_min(torch.finfo(x.dtype).eps)
    alpha = _shrinkage_weight(shrinkage, cov, centred, weights, mu)
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    shrunk = (1 - alpha)[:, None, None] * cov + (alpha * mu)[:, None, None] * eye
    return mean, shrunk


def _shrinkage_weight(
    shrinkage: float | str, cov: Tensor, centred: Tensor, weights: Tensor, mu: Tensor
) -> Tensor:
    """``(B,)`` shrinkage weights: the given constant or the Ledoit-Wolf estimate."""
    if shrinkage == "ledoit_wolf":
        return _ledoit_wolf_weight(cov, centred, weights, mu)
    if isinstance(shrinkage, str) or not 0.0 <= float(shrinkage) <= 1.0:
        msg = f"`shrinkage` must be a float in [0, 1] or 'ledoit_wolf', got {shrinkage!r}."
        raise ValueError(msg)
    return torch.full_like(mu, float(shrinkage))


def _ledoit_wolf_weight(cov: Tensor, centred: Tensor, weights: Tensor, mu: Tensor) -> Tensor:
    """Ledoit-Wolf shrinkage per cloud (the formula of sklearn's ``ledoit_wolf_shrinkage``).

    With n valid points and ``C`` the empirical covariance:
    ``β = (mean_i ||x_i||^4 - ||C||_F^2) / (d n)``, ``δ = ||C - μ I||_F^2 / d``,
    ``α = min(β, δ) / δ`` (0 when ``β`` is 0).
    """
    d = cov.shape[-1]
    n_points = (weights > 0).sum(-1).to(cov.dtype)
    fourth = torch.einsum("bn,bn->b", weights, (centred**2).sum(-1) ** 2)
    cov_norm2 = (cov**2).sum((-2, -1))
    beta = (fourth - cov_norm2) / (d * n_points)
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    delta = ((cov - mu[:, None, None] * eye) ** 2).sum((-2, -1)) / d
    beta = torch.minimum(beta, delta)
    safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    return torch.where(beta > 0, beta / safe_delta, torch.zeros_like(beta))


def _uniform_weights(x: Tensor, mask: Tensor | None) -> Tensor:
    """``(B, n)`` point masses: uniform on the valid points of each cloud, 0 on padding."""
    if x.ndim != 3:
        msg = f"`x` must be a (B, n, d) tensor of point clouds, got shape {tuple(x.shape)}."
        raise ValueError(msg)
    if mask is None:
        return torch.full(x.shape[:2], 1.0 / x.shape[1], dtype=x.dtype, device=x.device)
    if mask.shape != x.shape[:2]:
        msg = f"`mask` must have shape {tuple(x.shape[:2])} (B, n), got {tuple(mask.shape)}."
        raise ValueError(msg)
    counts = mask.sum(-1, keepdim=True).to(x.dtype)
    return mask.to(x.dtype) / counts.clamp_min(1)


def _sym_power(S: Tensor, power: float) -> Tensor:
    """``S ** power`` for symmetric PSD ``S`` by eigendecomposition (eigenvalues clamped)."""
    eigvals, eigvecs = torch.linalg.eigh(_symmetrize(S))
    # Negative powers need a positive floor; relative to the largest eigenvalue of each matrix.
    floor = torch.finfo(S.dtype).eps * eigvals[..., -1:].abs() if power < 0 else 0.0
    eigvals = torch.clamp(eigvals, min=0) if power > 0 else torch.maximum(eigvals, floor)
    return _symmetrize((eigvecs * eigvals.pow(power)[..., None, :]) @ eigvecs.mT)


def _symmetrize(S: Tensor) -> Tensor:
    """``(S + S^T) / 2``: removes round-off asymmetry."""
    return 0.5 * (S + S.mT)


def _interpolate_identity(A: Tensor, t: Tensor) -> Tensor:
    """``M_t = (1 - t) I + t A`` for ``(B, d, d)`` ``A`` and ``(B,)`` ``t``."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    t = t[:, None, None]
    return (1 - t) * eye + t * A


def _as_times(t: float | Tensor, like: Tensor) -> Tensor:
    """Broadcast a float, a scalar or a ``(B,)`` tensor of times to ``(B,)`` (``like``'s dtype)."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t.expand(like.shape[0])
    if t.shape != (like.shape[0],):
        msg = f"Times must be a scalar or a ({like.shape[0]},) tensor, got shape {tuple(t.shape)}."
        raise ValueError(msg)
    return t
