"""`MetaFlowNet`: the conditioner and the velocity network of MFM / CGFM / FM, as one module."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from ._guidance import GuidedVelocity
from .mlp import VelocityMLP

#: Output of one network pass: the velocity, or the velocity and the denoiser.
Output = TypeVar("Output", Tensor, tuple[Tensor, Tensor])


class MetaFlowNet(nn.Module):
    r"""Velocity field :math:`v(x_t, t \mid h, c)` with its population conditioner.

    The condition of a population pair is the concatenation of the population embedding
    :math:`h` (from ``conditioner``) and the one-hot treatment :math:`c`. Trained with
    population dropout (:class:`mfm.flows.MetaFlowObjective`), the same network also gives the
    velocity without population information, :math:`v(x_t, t \mid 0, c)`, and the forward pass
    returns the mixture

    .. math::
        v_\lambda = v(x_t, t \mid 0, c) + \lambda\,
        \bigl(v(x_t, t \mid h, c) - v(x_t, t \mid 0, c)\bigr)

    with the population weight :math:`\lambda` (1: the population-conditioned velocity, the
    default; 0: the population-free one). :attr:`velocity` is the network itself.

    With ``denoiser=True`` (stochastic interpolants, :mod:`mfm.flows.interpolants`) a second
    linear head :attr:`denoiser` reads the velocity network's last hidden layer and predicts
    :math:`\eta(x_t, t \mid h, c) \approx E[z \mid x_t]`, the interpolant's noise, whence the
    score :math:`s = -\eta / \gamma(t)`; :meth:`heads` returns both outputs, mixed with the
    same :math:`\lambda`. Without it (the default) the parameters are those of a network
    built before the option existed.

    Parameters
    ----------
    conditioner
        A module mapping ``(cells (B, n, d), population codes (B,))`` to ``(B, e)``, with
        attribute ``out_features``: see :mod:`mfm.models.conditioners`.
    features
        Number of cell features ``d``.
    n_treatments
        Number of treatments (one-hot width).
    hidden
        Width of the velocity MLP.
    n_layers
        Depth of the velocity MLP.
    time_features
        Size of the sinusoidal time embedding.
    residual
        Residual connections between hidden layers.
    activation
        Activation of the velocity MLP.
    population_weight
        :math:`\lambda` of the forward pass.
    denoiser
        Add the denoiser head (``(hidden, d)`` linear map, created after every other
        parameter).
    """

    def __init__(
        self,
        conditioner: nn.Module,
        features: int,
        n_treatments: int,
        *,
        hidden: int = 256,
        n_layers: int = 4,
        time_features: int = 32,
        residual: bool = True,
        activation: str = "silu",
        population_weight: float = 1.0,
        denoiser: bool = False,
    ) -> None:
        super().__init__()
        self.conditioner = conditioner
        self.population_weight = population_weight
        self.n_treatments = n_treatments
        self.velocity = VelocityMLP(
            features,
            conditioner.out_features + n_treatments,
            hidden=hidden,
            n_layers=n_layers,
            time_features=time_features,
            residual=residual,
            activation=activation,
        )
        self.denoiser = nn.Linear(hidden, features) if denoiser else None

    def embed(self, cells: Tensor, population: Tensor) -> Tensor:
        """``(B, e)`` population embeddings h of ``(B, n, d)`` control cells."""
        return self.conditioner(cells, population)

    def condition(self, embedding: Tensor, treatment: Tensor) -> Tensor:
        """``(B, e + n_treatments)`` condition: embedding h and one-hot treatment c."""
        onehot = nn.functional.one_hot(treatment, self.n_treatments).to(embedding.dtype)
        return torch.cat([embedding, onehot], dim=-1)

    def without_population(self, condition: Tensor) -> Tensor:
        """``condition`` with the embedding part set to zero (no population information)."""
        e = self.conditioner.out_features
        return torch.cat([torch.zeros_like(condition[:, :e]), condition[:, e:]], dim=-1)

    def forward(self, x: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        r"""Velocity ``(N, d)`` at cells ``x (N, d)``, times ``t (N,)``, conditions ``(N, c)``.

        The mixture :math:`v_\lambda` of the class description (two network passes when
        :math:`\lambda \ne 1`).
        """
        return self._mixture(self.velocity, x, t, condition)

    def velocity_and_denoiser(
        self, x: Tensor, t: Tensor, condition: Tensor
    ) -> tuple[Tensor, Tensor]:
        r"""The network's two heads :math:`(v, \eta)` ``(N, d)`` each, one pass, no mixture.

        Arguments as in :meth:`forward`. `ValueError` without the denoiser head.
        """
        if self.denoiser is None:
            msg = (
                "This network has no denoiser head: it was built with `denoiser=False` "
                "(a model fitted with `interpolant_sigma=0`)."
            )
            raise ValueError(msg)
        z = self.velocity.hidden_state(x, t, condition)
        return self.velocity.output(z), self.denoiser(z)

    def heads(self, x: Tensor, t: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        r"""Velocity and denoiser ``(N, d)`` each, mixed with :math:`\lambda` as :meth:`forward`."""
        return self._mixture(self.velocity_and_denoiser, x, t, condition)

    def _mixture(
        self, network: Callable[[Tensor, Tensor, Tensor], Output], x: Tensor, t: Tensor, c: Tensor
    ) -> Output:
        """``network(x, t, c)`` mixed with its population-free output (weight lambda)."""
        conditional = network(x, t, c)
        if self.population_weight == 1 or self.conditioner.out_features == 0:
            return conditional
        free = network(x, t, self.without_population(c))
        return GuidedVelocity.guide(conditional, free, self.population_weight - 1)
