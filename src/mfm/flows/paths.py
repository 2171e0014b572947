"""Probability paths: interpolants between coupled samples and their time derivatives."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class PathSample:
    r"""A point on a path and its velocity.

    Attributes
    ----------
    x_t
        Interpolated samples, same shape as the endpoints (``(N, d)`` or ``(B, n, d)``).
    dx_t
        Time derivative :math:`\frac{d}{dt} x_t` (the regression target), same shape as ``x_t``.
    t
        Times as given (``(N,)`` / ``(B,)``, or a scalar tensor).
    """

    x_t: Tensor
    dx_t: Tensor
    t: Tensor


def linear_path(x0: Tensor, x1: Tensor, t: Tensor | float) -> PathSample:
    r"""Straight-line (rectified / conditional OT) interpolant.

    .. math::
        x_t = (1 - t) x_0 + t x_1, \qquad \dot x_t = x_1 - x_0.

    Parameters
    ----------
    x0
        Source samples ``(N, d)`` or clouds ``(B, n, d)``.
    x1
        Target samples of the same shape, paired row by row with ``x0``.
    t
        Times ``(N,)`` / ``(B,)`` (one per leading index, broadcast over the trailing dims), or a
        scalar.

    Returns
    -------
    `PathSample` with ``x_t``, ``dx_t`` (shape of ``x0``) and ``t``.
    """
    if x0.shape != x1.shape or x0.ndim == 0:
        msg = (
            f"`x0` {tuple(x0.shape)} and `x1` {tuple(x1.shape)} must have the same shape (N, ...)."
        )
        raise ValueError(msg)
    t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != len(x0)):
        msg = f"`t` must be a scalar or have shape ({len(x0)},), got {tuple(t.shape)}."
        raise ValueError(msg)
    t_x = t.reshape(t.shape + (1,) * (x0.ndim - t.ndim))
    return PathSample(x_t=(1 - t_x) * x0 + t_x * x1, dx_t=x1 - x0, t=t)
