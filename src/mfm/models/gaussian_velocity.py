"""`GaussianVelocity`: a velocity field on the Bures-Wasserstein manifold of Gaussians."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from ._guidance import GuidedVelocity
from .mlp import VelocityMLP


class GaussianVelocity(GuidedVelocity):
    r"""Velocity :math:`(v_m, S_v)(m, S, t \mid c)` on the Bures-Wasserstein manifold.

    A :class:`~mfm.models.VelocityMLP` on the flattened Gaussian
    :math:`z = [m, \operatorname{vech}(S)]` (upper triangle, off-diagonal entries times
    :math:`\sqrt 2` so that :math:`\lVert\operatorname{vech}(S)\rVert = \lVert S\rVert_F`),
    conditioned on the one-hot of the label (``n_conditions + 1`` entries: the last is the null
    label of classifier-free guidance). Its output is read as :math:`[v_m,
    \operatorname{vech}(S_v)]`, so :math:`S_v` is symmetric by construction.

    Parameters
    ----------
    features
        Dimension ``d`` of the Gaussians.
    n_conditions
        Number of labels; ``0`` for an unconditional velocity.
    hidden
        Width of the MLP.
    n_layers
        Hidden layers of the MLP.
    time_features
        Size of the time embedding.
    cfg_dropout
        Probability of replacing a label by the null label in training mode.
    """

    def __init__(
        self,
        features: int,
        *,
        n_conditions: int = 0,
        hidden: int = 256,
        n_layers: int = 4,
        time_features: int = 32,
        cfg_dropout: float = 0.0,
    ) -> None:
        super().__init__(n_conditions, cfg_dropout)
        check_positive_int("features", features)
        self.features = features
        n_cond = n_conditions + 1 if n_conditions else 0
        size = features + features * (features + 1) // 2
        self.mlp = VelocityMLP(
            size, n_cond, hidden=hidden, n_layers=n_layers, time_features=time_features
        )
        rows, cols = torch.triu_indices(features, features)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def forward(
        self,
        m: Tensor,
        S: Tensor,
        t: Tensor,
        labels: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Velocity at ``N(m, S)``; in training mode labels are dropped with ``cfg_dropout``.

        Parameters
        ----------
        m
            ``(B, d)`` means.
        S
            ``(B, d, d)`` covariances.
        t
            ``(B,)`` times or a scalar.
        labels
            ``(B,)`` integer labels in ``[0, n_conditions]``, or ``None`` (null label).
        generator
            Torch generator of the label dropout.

        Returns
        -------
        ``(v_m, S_v)`` of shapes ``(B, d)`` and ``(B, d, d)`` (``S_v`` symmetric).
        """
        return self._velocity(m, S, t, self.drop_labels(labels, generator))

    def guided(
        self,
        m: Tensor,
        S: Tensor,
        t: Tensor,
        labels: Tensor | None,
        guidance_scale: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        r"""Classifier-free guided velocity.

        .. math:: v_w = (1 + w)\, v(\cdot \mid c) - w\, v(\cdot \mid \varnothing)

        Parameters
        ----------
        m
            ``(B, d)`` means.
        S
            ``(B, d, d)`` covariances.
        t
            ``(B,)`` times or a scalar.
        labels
            ``(B,)`` labels; ``None`` gives the unconditional velocity.
        guidance_scale
            ``w``; 0 gives the conditional velocity.

        Returns
        -------
        The guided ``(v_m, S_v)``.
        """
        conditional = self._velocity(m, S, t, labels)
        if labels is None or guidance_scale == 0:
            return conditional
        null = self._velocity(m, S, t, torch.full_like(labels, self.null_label))
        return self.guide(conditional, null, guidance_scale)

    def vech(self, S: Tensor) -> Tensor:
        r"""``(B, d (d + 1) / 2)`` upper triangles, off-diagonal entries times :math:`\sqrt 2`."""
        scale = torch.where(self.rows == self.cols, 1.0, math.sqrt(2.0)).to(S.dtype)
        return S[..., self.rows, self.cols] * scale

    def unvech(self, z: Tensor) -> Tensor:
        """``(B, d, d)`` symmetric matrices from :meth:`vech` vectors (its inverse)."""
        scale = torch.where(self.rows == self.cols, 1.0, math.sqrt(2.0)).to(z.dtype)
        d = self.features
        S = torch.zeros(*z.shape[:-1], d, d, dtype=z.dtype, device=z.device)
        S[..., self.rows, self.cols] = z / scale
        S[..., self.cols, self.rows] = z / scale
        return S

    def _velocity(
        self, m: Tensor, S: Tensor, t: Tensor, labels: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Forward pass without label dropout."""
        d = self.features
        if m.ndim != 2 or m.shape[1] != d or S.shape != (len(m), d, d):
            got = f"{tuple(m.shape)} and {tuple(S.shape)}"
            msg = f"`m` must be (B, {d}) and `S` (B, {d}, {d}), got {got}."
            raise ValueError(msg)
        cond = None
        if self.n_conditions:
            if labels is None:
                labels = torch.full((len(m),), self.null_label, dtype=torch.long, device=m.device)
            cond = nn.functional.one_hot(labels, self.n_conditions + 1).to(m.dtype)
        out = self.mlp(torch.cat([m, self.vech(S)], dim=-1), t, cond)
        return out[:, :d], self.unvech(out[:, d:])
