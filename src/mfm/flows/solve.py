"""Integration of learned velocity fields, in chunks of rows: ODEs (torchdiffeq) and SDEs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch
from torch import Tensor
from torchdiffeq import odeint

from .._checks import check_choice, check_positive_int

logger = logging.getLogger(__name__)

#: State of a fixed-step generator: a tensor or a tuple of tensors (e.g. a Gaussian's ``(m, S)``).
State = TypeVar("State")
#: One step of a fixed-step generator: ``step(state, t (B,), h) -> state`` at time ``t``.
StepFn = Callable[[State, Tensor, float], State]

#: Velocity field ``v(x (N, d), t (N,), cond (N, c) | None) -> (N, d)``.
Velocity = Callable[[Tensor, Tensor, Tensor | None], Tensor]

ADAPTIVE_METHODS = ("dopri5",)
FIXED_STEP_METHODS = ("euler", "midpoint", "rk4")
METHODS = ADAPTIVE_METHODS + FIXED_STEP_METHODS
#: Number of steps of the fixed-step methods when ``n_steps=None``.
DEFAULT_N_STEPS = 100


def integrate(
    velocity: Velocity,
    x0: Tensor,
    cond: Tensor | None = None,
    *,
    method: str = "dopri5",
    n_steps: int | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    chunk_size: int | None = 8192,
    t0: float = 0.0,
    t1: float = 1.0,
) -> Tensor:
    r"""Push ``x0`` through the flow of ``velocity`` from ``t0`` to ``t1``.

    Solves :math:`\frac{dx}{dt} = v(x, t, c)`, :math:`x(t_0) = x_0` with torchdiffeq's
    `odeint`, without gradients, ``chunk_size`` rows at a time to bound memory. Rows are
    independent, so fixed-step results do not depend on ``chunk_size``; ``dopri5`` adapts its
    step to each chunk (results agree to the tolerances).

    Parameters
    ----------
    velocity
        ``v(x, t, cond)`` called with ``x`` ``(N_chunk, d)``, ``t`` a ``(N_chunk,)`` tensor (all
        equal) and the matching rows of ``cond`` (or ``None``); returns ``(N_chunk, d)``. Put
        modules in ``eval()`` mode first.
    x0
        Initial states ``(N, d)``.
    cond
        Per-row conditions ``(N, c)``, or ``None``.
    method
        ``"dopri5"`` (adaptive, only the end time is requested), or the fixed-step ``"euler"``,
        ``"midpoint"``, ``"rk4"``.
    n_steps
        Number of equal steps of a fixed-step method (default ``DEFAULT_N_STEPS`` = 100 when
        ``None``); must be ``None`` for ``"dopri5"``.
    atol
        Absolute tolerance of ``dopri5``.
    rtol
        Relative tolerance of ``dopri5``.
    chunk_size
        Rows integrated together; ``None`` for all at once.
    t0
        Start time.
    t1
        End time.

    Returns
    -------
    ``x(t1)`` ``(N, d)``, on the device and dtype of ``x0``.

    See Also
    --------
    integrate_path : the states at several times.
    """
    return integrate_path(
        velocity, x0, cond, times=(t0, t1), method=method, n_steps=n_steps,
        atol=atol, rtol=rtol, chunk_size=chunk_size,
    )[-1]  # fmt: skip


def integrate_path(
    velocity: Velocity,
    x0: Tensor,
    cond: Tensor | None = None,
    *,
    times: Sequence[float],
    method: str = "dopri5",
    n_steps: int | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    chunk_size: int | None = 8192,
) -> Tensor:
    """States along the flow of ``velocity`` at each of ``times``.

    Same solver as `integrate` (which returns the last state only). For fixed-step methods the
    ``n_steps`` equal steps span ``times[0]`` to ``times[-1]``, and intermediate times are
    interpolated linearly between grid points.

    Parameters
    ----------
    velocity
        ``v(x, t, cond)`` as in `integrate`.
    x0
        States ``(N, d)`` at ``times[0]``.
    cond
        Per-row conditions ``(N, c)``, or ``None``.
    times
        Strictly monotonic times (at least two); ``times[0]`` is the time of ``x0``.
    method
        ``"dopri5"``, ``"euler"``, ``"midpoint"`` or ``"rk4"``.
    n_steps
        Number of equal steps of a fixed-step method (100 when ``None``); ``None`` for ``"dopri5"``.
    atol
        Absolute tolerance of ``dopri5``.
    rtol
        Relative tolerance of ``dopri5``.
    chunk_size
        Rows integrated together; ``None`` for all at once.

    Returns
    -------
    ``(T, N, d)`` states, ``out[0] == x0``.
    """
    _check_inputs(x0, cond, chunk_size)
    grid = _time_grid(times, x0)
    options = _solver_options(method, n_steps)
    out = torch.empty((len(grid), *x0.shape), dtype=x0.dtype, device=x0.device)
    with torch.no_grad():
        for rows, func in _chunks(velocity, x0, cond, chunk_size):
            out[:, rows] = odeint(
                func, x0[rows], grid, method=method, atol=atol, rtol=rtol, options=options
            )
    return out


def integrate_fixed(step: StepFn[State], state: State, *, n_steps: int, like: Tensor) -> State:
    r"""Apply ``n_steps`` fixed steps of size ``h = 1 / n_steps`` from t = 0 to 1, without gradient.

    .. math:: s_{k+1} = \mathrm{step}(s_k, t_k, h), \qquad t_k = k h, \quad k = 0, \dots,
              n_\mathrm{steps} - 1

    The one loop of the niche generators: the step decides the geometry (an Euler or midpoint
    step of point clouds, :func:`~mfm.flows.generate.generate_clouds`; the push-forward step of
    Gaussians, :func:`~mfm.flows.generate.generate_gaussians`), which torchdiffeq's Euclidean
    solvers of :func:`integrate` cannot express.

    Parameters
    ----------
    step
        ``step(state, t, h) -> state`` with ``t`` a ``(B,)`` tensor of equal times.
    state
        The state at t = 0 (passed to ``step`` as is).
    n_steps
        Number of steps.
    like
        ``(B, ...)`` tensor whose length, dtype and device the times take.

    Returns
    -------
    The state at t = 1.

    See Also
    --------
    integrate : adaptive and fixed-step ODE solvers of Euclidean states (torchdiffeq).
    """
    check_positive_int("n_steps", n_steps)
    h = 1.0 / n_steps
    with torch.no_grad():
        for k in range(n_steps):
            t = torch.full((len(like),), k * h, dtype=like.dtype, device=like.device)
            state = step(state, t, h)
    return state


def integrate_sde(
    drift: Velocity,
    x0: Tensor,
    cond: Tensor | None = None,
    *,
    diffusion: Callable[[Tensor], Tensor],
    n_steps: int,
    generator: torch.Generator | None = None,
    chunk_size: int | None = 8192,
) -> Tensor:
    r"""Push ``x0`` through the SDE :math:`dX = f(X, t, c)\,dt + \sqrt{2 \epsilon(t)}\,dW` to t = 1.

    Euler-Maruyama with ``n_steps`` equal steps :math:`h` from t = 0, without gradients:

    .. math::
        x_{k+1} = x_k + f(x_k, t_k, c)\, h + \sqrt{2 \epsilon(t_k) h}\, \xi_k, \qquad
        t_k = k h, \quad \xi_k \sim N(0, I).

    The noise is drawn from ``generator``, chunk after chunk and step after step, so the same
    seed and ``chunk_size`` give the same samples.

    Parameters
    ----------
    drift
        ``f(x, t, cond)`` with ``x`` ``(N_chunk, d)``, ``t`` a ``(N_chunk,)`` tensor (all
        equal) and the matching rows of ``cond``; returns ``(N_chunk, d)``.
    x0
        Initial states ``(N, d)``.
    cond
        Per-row conditions ``(N, c)``, or ``None``.
    diffusion
        :math:`\epsilon(t)`: maps the ``(N_chunk,)`` times to ``(N_chunk,)`` coefficients >= 0
        (e.g. :func:`mfm.flows.interpolants.diffusion`).
    n_steps
        Number of steps.
    generator
        Source of the noise (on the device of ``x0``); ``None``: torch's global generator.
    chunk_size
        Rows integrated together; ``None`` for all at once.

    Returns
    -------
    ``x(1)`` ``(N, d)``, on the device and dtype of ``x0``.

    See Also
    --------
    integrate : the ODE (no noise).
    """
    _check_inputs(x0, cond, chunk_size)
    check_positive_int("n_steps", n_steps)
    out = torch.empty_like(x0)
    with torch.no_grad():
        for rows, func in _chunks(drift, x0, cond, chunk_size):
            out[rows] = _euler_maruyama(func, x0[rows], diffusion, n_steps, generator)
    return out


def _euler_maruyama(
    func: _ODEFunc,
    x: Tensor,
    diffusion: Callable[[Tensor], Tensor],
    n_steps: int,
    generator: torch.Generator | None,
) -> Tensor:
    """``n_steps`` Euler-Maruyama steps of one chunk ``x (n, d)`` from t = 0 to 1."""

    def step(x: Tensor, t: Tensor, h: float) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        eps = torch.as_tensor(diffusion(t), dtype=x.dtype, device=x.device)
        return x + h * func(t[0], x) + (2 * h * eps).sqrt().reshape(-1, 1) * noise

    return integrate_fixed(step, x, n_steps=n_steps, like=x)


def _chunks(
    velocity: Velocity, x0: Tensor, cond: Tensor | None, chunk_size: int | None
) -> Iterator[tuple[slice, _ODEFunc]]:
    """The row slices of ``chunk_size`` rows of ``x0`` and the velocity on each one's conditions."""
    step = max(len(x0), 1) if chunk_size is None else chunk_size
    for start in range(0, len(x0), step):
        rows = slice(start, start + step)
        yield rows, _ODEFunc(velocity, None if cond is None else cond[rows])


class _ODEFunc:
    """``f(t, x) = velocity(x, t expanded to rows, cond)`` in torchdiffeq's argument order."""

    def __init__(self, velocity: Velocity, cond: Tensor | None):
        self.velocity = velocity
        self.cond = cond

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        dx = self.velocity(x, t.reshape(1).repeat(len(x)), self.cond)
        if dx.shape != x.shape:
            msg = (
                f"`velocity` returned shape {tuple(dx.shape)} for states of shape {tuple(x.shape)}."
            )
            raise ValueError(msg)
        return dx


def _solver_options(method: str, n_steps: int | None) -> dict | None:
    """Build torchdiffeq ``options``: an exact grid of ``n_steps`` steps for fixed-step methods."""
    check_choice("method", method, METHODS)
    if method in ADAPTIVE_METHODS:
        if n_steps is not None:
            msg = (
                f"`n_steps={n_steps}` is only used by the fixed-step methods "
                f"{list(FIXED_STEP_METHODS)}; pass None with `method={method!r}`."
            )
            raise ValueError(msg)
        return None
    if n_steps is None:
        logger.info("`n_steps=None`: integrating with %d %s steps.", DEFAULT_N_STEPS, method)
        n_steps = DEFAULT_N_STEPS
    check_positive_int("n_steps", n_steps)
    return {"grid_constructor": _linspace_grid(n_steps)}


def _linspace_grid(n_steps: int) -> Callable[[object, Tensor, Tensor], Tensor]:
    """Grid of exactly ``n_steps`` equal steps from ``t[0]`` to ``t[-1]``.

    torchdiffeq's ``step_size`` option adds a spurious step when ``(t1 - t0) / step_size``
    rounds up in float32 (e.g. 61 steps on [0, 1]); a linspace grid does not.
    """

    def grid_constructor(func: object, y0: Tensor, t: Tensor) -> Tensor:
        grid = torch.linspace(
            t[0].item(), t[-1].item(), n_steps + 1, dtype=t.dtype, device=t.device
        )
        grid[0], grid[-1] = t[0], t[-1]
        return grid

    return grid_constructor


def _time_grid(times: Sequence[float], x0: Tensor) -> Tensor:
    """Return ``times`` as a tensor in the dtype/device of ``x0``, checked strictly monotonic."""
    grid = torch.as_tensor(list(times), dtype=x0.dtype, device=x0.device)
    steps = grid.diff()
    if grid.ndim != 1 or len(grid) < 2 or not ((steps > 0).all() or (steps < 0).all()):
        msg = f"`times` must be at least two strictly monotonic times, got {list(times)}."
        raise ValueError(msg)
    return grid


def _check_inputs(x0: Tensor, cond: Tensor | None, chunk_size: int | None) -> None:
    """Raise a `ValueError` on malformed states, conditions or chunk size."""
    if x0.ndim != 2:
        msg = f"`x0` must be (N, d), got {tuple(x0.shape)}."
        raise ValueError(msg)
    if cond is not None and (cond.ndim != 2 or len(cond) != len(x0)):
        msg = f"`cond` must be (N, c) with N = {len(x0)} rows like `x0`, got {tuple(cond.shape)}."
        raise ValueError(msg)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
