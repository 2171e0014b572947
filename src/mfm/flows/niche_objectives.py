r"""Wasserstein flow matching objectives for niches: point clouds and Gaussians (Bures-Wasserstein).

Both objectives take a padded batch of niches ``x1`` ``(B, n, d)`` with its ``(B, n)`` bool mask
and the ``(B,)`` labels (condition codes), draw one noise cloud per niche with the same number of
points, and return a :class:`~mfm.flows.LossOutput`:

- :class:`PointCloudObjective`: the WFM point-cloud loss (Haviv et al., ICML 2025), noise points
  mapped to niche points by entropic OT (:func:`~mfm.flows.point_clouds.wfm_path`);
- :class:`BuresWassersteinObjective`: each cloud summarised by its Gaussian ``N(m, S)``, the flow
  regresses the Bures-Wasserstein geodesic velocity ``(v_m, S_v)``
  (:mod:`mfm.flows.bures_wasserstein`).

The generators of both geometries live in :mod:`mfm.flows.generate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from . import bures_wasserstein as bw
from .losses import LossOutput
from .point_clouds import NoiseKind, TargetMode, masked_mse, sample_noise_clouds, wfm_path

if TYPE_CHECKING:
    from ..models import GaussianVelocity, SetTransformerVelocity

__all__ = [
    "BuresWassersteinObjective",
    "PointCloudObjective",
]


class _NoiseSource(nn.Module):
    """Noise clouds of :func:`~mfm.flows.point_clouds.sample_noise_clouds` with stored moments."""

    def __init__(self, noise: NoiseKind, mean: Tensor | None, cov: Tensor | None) -> None:
        super().__init__()
        self.noise = noise
        # Buffers follow the module across devices (and DDP broadcasts them).
        self.register_buffer("noise_mean", mean)
        self.register_buffer("noise_cov", cov)

    def noise_clouds(
        self, like: Tensor, mask: Tensor | None, generator: torch.Generator | None = None
    ) -> Tensor:
        """``(B, n, d)`` noise clouds shaped as ``like``, 0 on padding.

        Parameters
        ----------
        like
            ``(B, n, d)`` clouds: only their shape, dtype and device are used.
        mask
            ``(B, n)`` bool, True on valid points, or ``None``.
        generator
            Torch generator on ``like``'s device.

        Returns
        -------
        The noise clouds.
        """
        return sample_noise_clouds(
            like,
            mask,
            kind=self.noise,
            mean=self.noise_mean,
            cov=self.noise_cov,
            generator=generator,
        )


class PointCloudObjective(_NoiseSource):
    r"""Wasserstein flow matching loss on point clouds, conditioned on a label per cloud.

    For niches :math:`x_1` and noise clouds :math:`x_0` of the same sizes, entropic OT maps
    :math:`T` (:func:`~mfm.flows.point_clouds.entropic_ot_targets`) and
    :math:`t \sim U(0, 1)` per cloud:

    .. math:: x_t = (1 - t) x_0 + t T(x_0), \qquad
              \mathcal L = \frac1B \sum_b \frac1{n_b} \sum_{i \text{ valid}} \frac1d
              \lVert v_\theta(x_t, t \mid c_b)_i - (T(x_0)_i - x_{0,i}) \rVert^2

    with labels dropped to the null label at the velocity's ``cfg_dropout`` rate.

    Parameters
    ----------
    net
        The velocity :class:`~mfm.models.SetTransformerVelocity`.
    noise
        ``"normal"`` (:math:`N(0, I)` points) or ``"chol_normal"`` (points of
        :math:`N(m, \Sigma)` with ``noise_mean``, ``noise_cov``).
    noise_mean
        ``(d,)`` mean ``m`` (``"chol_normal"`` only).
    noise_cov
        ``(d, d)`` SPD covariance ``Σ`` (``"chol_normal"`` only).
    reg
        Entropic regularisation, relative to each cloud's mean cost.
    n_iter
        Sinkhorn iterations.
    mode
        ``"matching"`` (a permutation) or ``"barycentric"`` (barycentric projection).
    """

    def __init__(
        self,
        net: SetTransformerVelocity,
        *,
        noise: NoiseKind = "normal",
        noise_mean: Tensor | None = None,
        noise_cov: Tensor | None = None,
        reg: float = 0.01,
        n_iter: int = 200,
        mode: TargetMode = "matching",
    ) -> None:
        super().__init__(noise, noise_mean, noise_cov)
        self.net, self.reg, self.n_iter, self.mode = net, reg, n_iter, mode

    def forward(
        self,
        x1: Tensor,
        mask: Tensor,
        labels: Tensor | None,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Loss of one batch of niches.

        Parameters
        ----------
        x1
            ``(B, n, d)`` niches, padded.
        mask
            ``(B, n)`` bool, True on valid points.
        labels
            ``(B,)`` condition codes, or ``None`` (unconditional velocity).
        generator
            Torch generator of the noise, the times and the label dropout.

        Returns
        -------
        The masked mean squared error (part ``"mse"``, a detached tensor).
        """
        x0 = self.noise_clouds(x1, mask, generator)
        t = torch.rand(len(x1), generator=generator, dtype=x1.dtype, device=x1.device)
        path = wfm_path(x0, x1, mask, t, reg=self.reg, n_iter=self.n_iter, mode=self.mode)
        predicted = self.net(path.x_t, t, labels, mask, generator=generator)
        loss = masked_mse(predicted, path.dx_t, mask)
        return LossOutput(loss, {"mse": loss.detach()})


class BuresWassersteinObjective(_NoiseSource):
    r"""Flow matching loss on the Bures-Wasserstein manifold of Gaussians.

    Each niche :math:`x_1` (and its noise cloud :math:`x_0` of the same size) is summarised by
    its mean and shrunk covariance (:func:`~mfm.flows.bures_wasserstein.gaussian_from_clouds`),
    :math:`N(m_0, S_0)` and :math:`N(m_1, S_1)`. With :math:`t \sim U(0, 1)` per niche, the
    geodesic point :math:`(m_t, S_t)` and its velocity :math:`(v_m, S_v)`
    (:func:`~mfm.flows.bures_wasserstein.geodesic_path`, one Monge map, computed in float64),

    .. math:: \mathcal L = \frac1{Bd} \sum_b \lVert \hat v_m - v_m \rVert^2
              + \frac1{Bd^2} \sum_b \lVert \hat S_v - S_v \rVert_F^2 .

    The source is a *family* of Gaussians (one per noise cloud): a single source Gaussian would
    make the deterministic flow generate a single Gaussian per label.

    Parameters
    ----------
    net
        The velocity :class:`GaussianVelocity`.
    noise
        ``"normal"`` or ``"chol_normal"`` noise points (see :class:`PointCloudObjective`).
    noise_mean
        ``(d,)`` mean (``"chol_normal"`` only).
    noise_cov
        ``(d, d)`` covariance (``"chol_normal"`` only).
    shrinkage
        Covariance shrinkage weight in [0, 1] or ``"ledoit_wolf"``.
    """

    def __init__(
        self,
        net: GaussianVelocity,
        *,
        noise: NoiseKind = "normal",
        noise_mean: Tensor | None = None,
        noise_cov: Tensor | None = None,
        shrinkage: float | Literal["ledoit_wolf"] = 0.1,
    ) -> None:
        super().__init__(noise, noise_mean, noise_cov)
        self.net, self.shrinkage = net, shrinkage

    def gaussians(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """Float64 ``(m (B, d), S (B, d, d))`` of clouds ``x`` ``(B, n, d)`` (shrunk covariance).

        Parameters
        ----------
        x
            ``(B, n, d)`` clouds.
        mask
            ``(B, n)`` bool, True on valid points, or ``None``.

        Returns
        -------
        Means and covariances.
        """
        return bw.gaussian_from_clouds(x.double(), mask, shrinkage=self.shrinkage)

    def forward(
        self,
        x1: Tensor,
        mask: Tensor,
        labels: Tensor | None,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Loss of one batch of niches.

        Parameters
        ----------
        x1
            ``(B, n, d)`` niches, padded.
        mask
            ``(B, n)`` bool, True on valid points.
        labels
            ``(B,)`` condition codes, or ``None``.
        generator
            Torch generator of the noise, the times and the label dropout.

        Returns
        -------
        The sum of the mean and covariance errors (parts ``"mean"`` and ``"cov"``, detached
        tensors: reading them is left to the caller, so a step never waits for a GPU).
        """
        with torch.no_grad():
            m0, S0 = self.gaussians(self.noise_clouds(x1, mask, generator), mask)
            m1, S1 = self.gaussians(x1, mask)
            t = torch.rand(len(x1), generator=generator, dtype=m0.dtype, device=m0.device)
            path = bw.geodesic_path(m0, S0, m1, S1, t)
        dtype = x1.dtype
        pred_m, pred_S = self.net(
            path.m_t.to(dtype), path.S_t.to(dtype), t.to(dtype), labels, generator=generator
        )
        loss_m = (pred_m - path.v_m.to(dtype)).square().mean()
        loss_S = (pred_S - path.S_v.to(dtype)).square().mean()
        loss = loss_m + loss_S
        return LossOutput(loss, {"mean": loss_m.detach(), "cov": loss_S.detach()})
