"""The reference prediction: adaptive dopri5 with 500 output times on [0, 1], all cells at once.

The published code integrates each population with torchdyn's ``NeuralODE(...,
solver="dopri5", atol=1e-4, rtol=1e-4).trajectory(x0, t_span=torch.linspace(0, 1, 500))`` and
keeps the last state. torchdiffeq's ``odeint`` with the same times stands in for it. By
default torchdiffeq steps as the tolerances allow and interpolates the output times; torchdyn
without an interpolator (``NeuralODE``'s default) instead shortens every step to land on the
next output time, so it takes at least 499 dopri5 steps (~3000 velocity evaluations).
``step_to_outputs=True`` reproduces that with torchdiffeq's ``step_t`` option.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torchdiffeq import odeint


def reference_integrate(
    velocity: Callable[[Tensor, Tensor, Tensor | None], Tensor],
    x0: Tensor,
    cond: Tensor | None = None,
    *,
    n_times: int = 500,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    step_to_outputs: bool = False,
) -> Tensor:
    """``x(1)`` of ``dx/dt = velocity(x, t, cond)`` from ``x(0) = x0`` ``(N, d)``.

    Parameters
    ----------
    velocity
        ``v(x (N, d), t (N,), cond (N, c) | None) -> (N, d)``, as for `mfm.flows.integrate`.
    x0
        Initial states ``(N, d)``.
    cond
        Per-row conditions ``(N, c)``, or ``None``.
    n_times
        Output times ``linspace(0, 1, n_times)`` (the trajectory is kept, as the reference
        keeps it for its plots).
    atol, rtol
        dopri5 tolerances.
    step_to_outputs
        Make every output time a step boundary (torchdyn's behaviour) instead of
        interpolating between adaptive steps (torchdiffeq's).

    Returns
    -------
    ``(N, d)`` states at ``t = 1``.
    """
    times = torch.linspace(0.0, 1.0, n_times, dtype=x0.dtype, device=x0.device)

    def func(t: Tensor, x: Tensor) -> Tensor:
        return velocity(x, t.reshape(1).expand(len(x)), cond)

    with torch.no_grad():
        options = {"step_t": times} if step_to_outputs else None
        trajectory = odeint(func, x0, times, method="dopri5", atol=atol, rtol=rtol, options=options)
    return trajectory[-1]
