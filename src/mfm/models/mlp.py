"""Velocity field network: an MLP on ``[x, embedding(t), cond]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from ._activations import make_activation
from .embedding import SinusoidalTimeEmbedding


class VelocityMLP(nn.Module):
    r"""Conditional velocity field :math:`v_\theta(x, t \mid c)` as a (residual) MLP.

    .. math::
        z_1 = \sigma(W_1 [x, e(t), c]),\quad
        z_{l+1} = z_l + \sigma(W_{l+1} z_l)\ (\text{or } \sigma(W_{l+1} z_l)),\quad
        v = W_{\mathrm{out}} z_L,

    with :math:`e` the `SinusoidalTimeEmbedding`.

    Parameters
    ----------
    features
        Dimension ``d`` of the state ``x`` (and of the velocity).
    cond_features
        Size of the condition ``cond`` (population embedding, treatment, ...); ``0`` for none.
    hidden
        Width of the hidden layers.
    n_layers
        Number ``L`` of hidden layers (>= 1); the network has ``L + 1`` linear maps.
    time_features
        Size of the time embedding (even, >= 2).
    residual
        Add skip connections between hidden layers: :math:`z + \sigma(W z)`.
    activation
        ``"relu"``, ``"silu"``, ``"selu"``, ``"gelu"`` or ``"tanh"``.
    """

    def __init__(
        self,
        features: int,
        cond_features: int = 0,
        *,
        hidden: int = 256,
        n_layers: int = 4,
        time_features: int = 32,
        residual: bool = True,
        activation: str = "silu",
    ):
        super().__init__()
        check_positive_int("features", features)
        check_positive_int("cond_features", cond_features, minimum=0)
        check_positive_int("hidden", hidden)
        check_positive_int("n_layers", n_layers)
        self.features = features
        self.cond_features = cond_features
        self.residual = residual
        self.time_embedding = SinusoidalTimeEmbedding(time_features)
        self.input = nn.Linear(features + time_features + cond_features, hidden)
        self.hidden_layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_layers - 1))
        self.output = nn.Linear(hidden, features)
        self.activation = make_activation(activation)

    def forward(self, x: Tensor, t: Tensor | float, cond: Tensor | None = None) -> Tensor:
        """Velocity at ``(x, t)`` given ``cond``.

        Parameters
        ----------
        x
            States ``(N, d)``.
        t
            Times ``(N,)``, ``(N, 1)``, or a scalar (Python number or one-element tensor)
            shared by all rows.
        cond
            Conditions ``(N, cond_features)``; ``None`` (or ``(N, 0)``) when ``cond_features=0``.

        Returns
        -------
        ``(N, d)`` velocities.
        """
        return self.output(self.hidden_state(x, t, cond))

    def hidden_state(self, x: Tensor, t: Tensor | float, cond: Tensor | None = None) -> Tensor:
        """The last hidden layer :math:`z_L` ``(N, hidden)``, before the output map.

        Arguments as in :meth:`forward`; extra heads (the denoiser of
        :class:`~mfm.models.MetaFlowNet`) read it.
        """
        if x.ndim != 2 or x.shape[1] != self.features:
            msg = f"`x` must be (N, {self.features}), got {tuple(x.shape)}."
            raise ValueError(msg)
        inputs = [x, self.time_embedding(_rows_of_t(t, x))]
        inputs += self._cond_inputs(cond, len(x))
        z = self.activation(self.input(torch.cat(inputs, dim=-1)))
        for layer in self.hidden_layers:
            update = self.activation(layer(z))
            z = z + update if self.residual else update
        return z

    def _cond_inputs(self, cond: Tensor | None, n_rows: int) -> list[Tensor]:
        """``[cond]`` after checking its shape, or ``[]`` when there is no condition."""
        if self.cond_features == 0 and (cond is None or cond.shape[-1] == 0):
            return []
        if cond is None or cond.shape != (n_rows, self.cond_features):
            got = None if cond is None else tuple(cond.shape)
            msg = f"`cond` must be ({n_rows}, {self.cond_features}) (`cond_features`), got {got}."
            raise ValueError(msg)
        return [cond]


def _rows_of_t(t: Tensor | float, x: Tensor) -> Tensor:
    """``t`` as one time per row of ``x``: ``(N,)`` in the dtype and device of ``x``."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.numel() == 1:
        return t.reshape(1).expand(len(x))
    if t.numel() != len(x) or (t.ndim == 2 and t.shape[1] != 1) or t.ndim > 2:
        msg = f"`t` must be a scalar, ({len(x)},) or ({len(x)}, 1), got {tuple(t.shape)}."
        raise ValueError(msg)
    return t.reshape(-1)
