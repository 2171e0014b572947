"""Permutation-equivariant velocity field on point clouds: a set transformer with padding masks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .._masks import resolve_mask
from ._guidance import GuidedVelocity
from .embedding import SinusoidalTimeEmbedding


class SetTransformerVelocity(GuidedVelocity):
    r"""Velocity :math:`v_\theta(x, t \mid c)` of every point of a cloud, for WFM on point clouds.

    .. math::
        h_i^{(0)} = W_{\mathrm{in}} x_i + \mathrm{MLP}(e(t)) + E[c], \quad
        h^{(l+1)} = \mathrm{TransformerLayer}(h^{(l)}), \quad
        v_i = W_{\mathrm{out}} \mathrm{LN}(h_i^{(L)})

    Self-attention without positional encoding makes ``v`` permutation-equivariant: permuting
    the points permutes the velocities. Padded points are excluded as attention keys
    (``src_key_padding_mask``), so they never change the velocity of valid points, and get
    velocity 0. ``E`` has ``n_conditions + 1`` rows: the last is the "null" label of
    classifier-free guidance, used for ``labels=None`` and, during training, for a fraction
    ``cfg_dropout`` of the clouds.

    Parameters
    ----------
    features
        Dimension ``d`` of the points (and of the velocity).
    n_conditions
        Number of labels ``c`` (e.g. cell types of the niche centres); ``0`` for none.
    hidden
        Width of the tokens.
    n_layers
        Number of transformer encoder layers.
    n_heads
        Attention heads (must divide ``hidden``).
    time_features
        Size of the sinusoidal time embedding `~mfm.models.SinusoidalTimeEmbedding`.
    dropout
        Dropout inside the transformer layers.
    cfg_dropout
        Probability of replacing a cloud's label by the null label in training mode.
    """

    def __init__(
        self,
        features: int,
        *,
        n_conditions: int = 0,
        hidden: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        time_features: int = 32,
        dropout: float = 0.0,
        cfg_dropout: float = 0.0,
    ):
        super().__init__(n_conditions, cfg_dropout)
        for name, value, minimum in [
            ("features", features, 1),
            ("hidden", hidden, 1),
            ("n_layers", n_layers, 1),
            ("n_heads", n_heads, 1),
        ]:
            check_positive_int(name, value, minimum=minimum)
        if hidden % n_heads:
            msg = f"`n_heads={n_heads}` must divide `hidden={hidden}`."
            raise ValueError(msg)
        self.features = features
        self.input = nn.Linear(features, hidden)
        self.time = nn.Sequential(
            SinusoidalTimeEmbedding(time_features),
            nn.Linear(time_features, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
        )
        self.label = nn.Embedding(n_conditions + 1, hidden) if n_conditions else None
        layer = nn.TransformerEncoderLayer(
            hidden,
            n_heads,
            2 * hidden,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, norm=nn.LayerNorm(hidden), enable_nested_tensor=False
        )
        self.output = nn.Linear(hidden, features)

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        labels: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Velocities of the points; in training mode labels are dropped with ``cfg_dropout``.

        Parameters
        ----------
        x
            ``(B, n, d)`` point clouds.
        t
            ``(B,)`` times (one per cloud) or a scalar.
        labels
            ``(B,)`` integer labels in ``[0, n_conditions]`` (``n_conditions`` is the null label),
            or ``None`` (unconditional; required when ``n_conditions=0``).
        mask
            ``(B, n)`` bool, True on valid points (``None``: all valid). Every cloud needs at
            least one valid point.
        generator
            Torch generator for the label dropout (``None``: torch's default generator, as
            ``nn.Dropout``).

        Returns
        -------
        ``(B, n, d)`` velocities (0 on padded points).
        """
        return self._velocity(x, t, self.drop_labels(labels, generator), mask)

    def guided(
        self,
        x: Tensor,
        t: Tensor | float,
        labels: Tensor | None,
        mask: Tensor | None = None,
        guidance_scale: float = 1.0,
    ) -> Tensor:
        r"""Classifier-free guided velocity (no label dropout).

        .. math:: v_w = (1 + w)\, v(x, t \mid c) - w\, v(x, t \mid \varnothing)

        Parameters
        ----------
        x
            ``(B, n, d)`` point clouds.
        t
            ``(B,)`` times or a scalar.
        labels
            ``(B,)`` labels ``c``; ``None`` returns the unconditional velocity.
        mask
            ``(B, n)`` bool, True on valid points, or ``None``.
        guidance_scale
            ``w``; 0 gives the conditional velocity.

        Returns
        -------
        ``(B, n, d)`` guided velocities.
        """
        if labels is None or guidance_scale == 0:
            return self._velocity(x, t, labels, mask)
        n = len(x)
        both = self._velocity(
            torch.cat([x, x]),
            _per_cloud(t, x).repeat(2),
            torch.cat([labels, torch.full_like(labels, self.null_label)]),
            None if mask is None else torch.cat([mask, mask]),
        )
        return self.guide(both[:n], both[n:], guidance_scale)

    def _velocity(
        self, x: Tensor, t: Tensor | float, labels: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        """Forward pass without label dropout."""
        mask = self._check_inputs(x, labels, mask)
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        tokens = self.input(x) + self.time(_per_cloud(t, x))[:, None, :]
        if self.label is not None:
            if labels is None:
                labels = torch.full((len(x),), self.null_label, dtype=torch.long, device=x.device)
            tokens = tokens + self.label(labels)[:, None, :]
        hidden = self.encoder(tokens, src_key_padding_mask=~mask)
        return self.output(hidden) * mask[..., None]

    def _check_inputs(self, x: Tensor, labels: Tensor | None, mask: Tensor | None) -> Tensor:
        """Check shapes; return the mask (all True when ``None``)."""
        if x.ndim != 3 or x.shape[-1] != self.features:
            msg = f"`x` must be (B, n, {self.features}), got {tuple(x.shape)}."
            raise ValueError(msg)
        if labels is not None and (self.label is None or labels.shape != (len(x),)):
            msg = (
                f"`labels` must be None (n_conditions=0) or a ({len(x)},) integer tensor "
                f"with n_conditions={self.n_conditions}, got shape {tuple(labels.shape)}."
            )
            raise ValueError(msg)
        return resolve_mask(x, mask)


def _per_cloud(t: Tensor | float, x: Tensor) -> Tensor:
    """``t`` as one time per cloud: ``(B,)`` in ``x``'s dtype and device."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.numel() == 1:
        return t.reshape(1).expand(len(x))
    if t.shape != (len(x),):
        msg = f"`t` must be a scalar or have shape ({len(x)},), got {tuple(t.shape)}."
        raise ValueError(msg)
    return t
