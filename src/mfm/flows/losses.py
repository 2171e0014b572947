"""Conditional flow matching objectives, shared by MFM, CGFM and FM (and their "w/N" variants)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from .._checks import check_number
from .couplings import independent_coupling, ot_coupling
from .interpolants import InterpolantSample, interior_times, stochastic_path
from .paths import PathSample, linear_path

Coupling = Literal["independent", "ot", "paired"]
Source = Literal["control", "noise"]


@dataclass
class LossOutput:
    """A training loss and its named parts (detached tensors: reading them syncs a GPU)."""

    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


class MetaFlowObjective(nn.Module):
    r"""Flow matching loss of a population-conditioned velocity field.

    For a batch of ``B`` (control, treated) population pairs with ``n`` cells each:

    .. math::
        h_i = \mathrm{embed}(X^0_i), \quad x_t = (1 - t) x_0 + t x_1, \quad
        \mathcal{L} = \mathbb{E} \lVert v(x_t, t \mid h_i, c_i) - (x_1 - x_0) \rVert^2

    with :math:`t \sim U(0, 1)` per cell, :math:`x_0` the control cells (or
    :math:`N(0, I)` noise when ``source="noise"``; the control cells are embedded either
    way) and :math:`(x_0, x_1)` paired independently or by exact minibatch OT within
    each population. The embedding and the velocity are trained together. With population
    dropout :math:`p`, each pair's :math:`h_i` is replaced by zeros with probability :math:`p`
    in training, so the same network also learns the velocity without population information
    (see :class:`mfm.models.MetaFlowNet`); the loss is always that of the network itself,
    whatever its population weight. Wrapping the loss in a module lets
    :class:`torch.nn.parallel.DistributedDataParallel` wrap it.

    With ``interpolant_sigma`` :math:`\sigma > 0` the path is the stochastic interpolant
    :math:`x_t = (1 - t) x_0 + t x_1 + \gamma(t) z` (:mod:`mfm.flows.interpolants`), with
    :math:`t \sim U(t_m, 1 - t_m)` (:math:`\dot\gamma` diverges at 0 and 1), and the loss adds
    the denoiser's regression on the noise (the network needs its denoiser head):

    .. math::
        \mathcal{L} = \mathbb{E} \lVert v - (x_1 - x_0 + \dot\gamma(t) z) \rVert^2
        + \mathbb{E} \lVert \eta(x_t, t \mid h_i, c_i) - z \rVert^2.

    With :math:`\sigma = 0` (the default) nothing changes: the same random draws, the same
    loss.

    Parameters
    ----------
    net
        A :class:`mfm.models.MetaFlowNet`.
    source
        ``"control"`` (transport control cells) or ``"noise"`` (the "w/N" variants).
    coupling
        ``"independent"`` or ``"paired"`` (keep the pairs as drawn: independent draws, or
        corresponding rows when the sampler drew paired cells), or ``"ot"`` (exact minibatch
        OT per population, on the CPU).
    population_dropout
        Probability :math:`p` of training a pair without its population embedding.
    interpolant_sigma
        :math:`\sigma \ge 0` of the interpolant's noise scale
        :math:`\gamma(t) = \sigma \sqrt{t (1 - t)}`.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        source: Source = "control",
        coupling: Coupling = "independent",
        population_dropout: float = 0.0,
        interpolant_sigma: float = 0.0,
    ) -> None:
        super().__init__()
        check_number("interpolant_sigma", interpolant_sigma, closed="left")
        self.interpolant_sigma = interpolant_sigma
        self.net = net
        self.source = source
        self.coupling = coupling
        self.population_dropout = population_dropout

    def forward(
        self,
        control: Tensor,
        treated: Tensor,
        population: Tensor,
        treatment: Tensor,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Loss of one batch.

        Parameters
        ----------
        control
            ``(B, n, d)`` control cells of each pair (embedded, and the source of the flow
            unless it starts from noise).
        treated
            ``(B, n, d)`` treated cells of each pair.
        population
            ``(B,)`` control population codes (used by the one-hot conditioner).
        treatment
            ``(B,)`` treatment codes.
        generator
            Random generator for noise sources and times.

        Returns
        -------
        The mean squared error between predicted and target velocities (part ``"mse"``),
        plus the denoiser's (part ``"denoiser"``) when ``interpolant_sigma > 0``.
        """
        path, condition = self._path(control, treated, population, treatment, generator)
        if not isinstance(path, InterpolantSample):
            loss = _mse(self.net.velocity(path.x_t, path.t, condition), path.dx_t)
            return LossOutput(loss, {"mse": loss.detach()})
        velocity, denoiser = self.net.velocity_and_denoiser(path.x_t, path.t, condition)
        mse, denoising = _mse(velocity, path.dx_t), _mse(denoiser, path.z)
        return LossOutput(mse + denoising, {"mse": mse.detach(), "denoiser": denoising.detach()})

    @torch.no_grad()
    def population_weight_terms(
        self,
        control: Tensor,
        treated: Tensor,
        population: Tensor,
        treatment: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[float, float]:
        r"""Sums :math:`\sum d \cdot r` and :math:`\sum d \cdot d` of one batch.

        With :math:`v_0 = v(x_t, t \mid 0, c)`, :math:`d = v(x_t, t \mid h, c) - v_0` and
        :math:`r = (x_1 - x_0) - v_0`, the loss of the mixture :math:`v_0 + \lambda d` is a
        quadratic in :math:`\lambda`, lowest at :math:`\sum d \cdot r / \sum d \cdot d`
        (summed over batches). Arguments as in :meth:`forward`; no population dropout.
        """
        path, condition = self._path(control, treated, population, treatment, generator, drop=False)
        free = self.net.velocity(path.x_t, path.t, self.net.without_population(condition))
        d = self.net.velocity(path.x_t, path.t, condition) - free
        return float((d * (path.dx_t - free)).sum()), float(d.square().sum())

    def _path(
        self,
        control: Tensor,
        treated: Tensor,
        population: Tensor,
        treatment: Tensor,
        generator: torch.Generator | None,
        *,
        drop: bool = True,
    ) -> tuple[PathSample, Tensor]:
        """The cells' path points and their conditions (one row per cell)."""
        batch, n, _ = control.shape
        h = self.net.embed(control, population)
        if drop and self.training and self.population_dropout > 0:
            dropped = torch.rand(batch, generator=generator, device=h.device)
            h = h * (dropped >= self.population_dropout)[:, None].to(h.dtype)
        condition = self.net.condition(h, treatment)
        x0 = control
        if self.source == "noise":
            x0 = torch.randn(
                control.shape, generator=generator, device=control.device, dtype=control.dtype
            )
        if self.coupling == "ot":
            x0, x1 = ot_coupling(x0, treated, generator=generator)
        else:
            x0, x1 = independent_coupling(x0, treated)
        t = torch.rand(batch * n, generator=generator, device=control.device, dtype=control.dtype)
        x0, x1 = x0.reshape(batch * n, -1), x1.reshape(batch * n, -1)
        if self.interpolant_sigma == 0:
            path = linear_path(x0, x1, t)
        else:
            z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            path = stochastic_path(x0, x1, interior_times(t), z, self.interpolant_sigma)
        return path, condition.repeat_interleave(n, dim=0)


def _mse(predicted: Tensor, target: Tensor) -> Tensor:
    """Mean over rows of the squared error summed over features: ``(N, d), (N, d) -> ()``."""
    return (predicted - target).square().sum(-1).mean()
