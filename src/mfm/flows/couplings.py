"""Couplings: re-pair source and target samples before building the path."""

from __future__ import annotations

import numpy as np
import ot
import torch
from torch import Tensor


def independent_coupling(x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
    r"""Independent coupling :math:`\pi = \mu_0 \otimes \mu_1`: keep the pairs as drawn.

    Parameters
    ----------
    x0
        Source samples ``(n, d)`` or ``(B, n, d)``.
    x1
        Target samples ``(n, d)`` or ``(B, n, d)``.

    Returns
    -------
    ``(x0, x1)`` unchanged.

    See Also
    --------
    ot_coupling : exact minibatch optimal transport pairing.
    """
    return x0, x1


def ot_coupling(
    x0: Tensor,
    x1: Tensor,
    *,
    generator: torch.Generator | None = None,
    num_iter_max: int = 1_000_000,
) -> tuple[Tensor, Tensor]:
    r"""Re-pair ``x1`` with ``x0`` by exact minibatch optimal transport, per batch item.

    For each item, the plan

    .. math::
        \pi^\star = \arg\min_{\pi \in \Pi(\frac{1}{n}\mathbb{1}_n, \frac{1}{m}\mathbb{1}_m)}
        \sum_{ij} \pi_{ij} \|x_{0,i} - x_{1,j}\|^2

    is solved with POT's network simplex `ot.emd`. This step runs on the CPU in float64 (an
    explicit host round trip: exact EMD has no GPU solver); only indices travel back. When
    ``n == m`` the plan is a permutation and row ``i`` of ``x0`` is paired with
    :math:`x_{1, \arg\max_j \pi_{ij}}`. When ``n != m``, every row ``i`` of ``x0`` is kept once
    and its partner is drawn from the conditional :math:`\pi_{i\cdot} / \pi_{i\cdot}\mathbb{1}`
    (each pair is then distributed as :math:`\pi^\star`, stratified over ``i``).

    Parameters
    ----------
    x0
        Source samples ``(n, d)`` or ``(B, n, d)``.
    x1
        Target samples ``(m, d)`` or ``(B, m, d)`` (same ``B`` and ``d``).
    generator
        Random generator for the draws when ``n != m``; ``None`` draws from torch's global
        generator (seeded by :func:`torch.manual_seed`), on the CPU.
    num_iter_max
        Maximum number of network simplex iterations of `ot.emd`.

    Returns
    -------
    ``(x0, x1_paired)`` with ``x1_paired`` of the shape of ``x0``, on the device and dtype of
    ``x1``; ``x0`` is returned as given.

    See Also
    --------
    independent_coupling : keep the pairs as drawn.
    """
    if x0.ndim == 2 and x1.ndim == 2:
        paired = ot_coupling(x0[None], x1[None], generator=generator, num_iter_max=num_iter_max)
        return x0, paired[1][0]
    _check_clouds(x0, x1)
    columns = torch.stack(
        [_ot_columns(a, b, generator, num_iter_max) for a, b in zip(x0, x1, strict=True)]
    ).to(x1.device)
    batch = torch.arange(x1.shape[0], device=x1.device)[:, None]
    return x0, x1[batch, columns]


def _ot_columns(
    x0: Tensor, x1: Tensor, generator: torch.Generator | None, num_iter_max: int
) -> Tensor:
    """Partner index in ``x1`` (m, d) of each row of ``x0`` (n, d) under the exact OT plan."""
    source = x0.detach().to("cpu", torch.float64).numpy()
    target = x1.detach().to("cpu", torch.float64).numpy()
    cost = ot.dist(source, target, metric="sqeuclidean")
    if not np.isfinite(cost).all():
        msg = "`x0` and `x1` must be finite to compute an optimal transport coupling."
        raise ValueError(msg)
    n, m = cost.shape
    plan = torch.from_numpy(ot.emd(np.full(n, 1 / n), np.full(m, 1 / m), cost, num_iter_max))
    if n == m:
        return plan.argmax(dim=1)
    rows = plan if generator is None else plan.to(generator.device)
    return torch.multinomial(rows, 1, generator=generator).ravel().cpu()


def _check_clouds(x0: Tensor, x1: Tensor) -> None:
    """Raise a `ValueError` unless ``x0`` (B, n, d) and ``x1`` (B, m, d) can be coupled."""
    if x0.ndim != 3 or x1.ndim != 3 or x0.shape[0] != x1.shape[0] or x0.shape[2] != x1.shape[2]:
        msg = (
            f"`x0` and `x1` must be (n, d) and (m, d), or (B, n, d) and (B, m, d) with the same "
            f"B and d; got {tuple(x0.shape)} and {tuple(x1.shape)}."
        )
        raise ValueError(msg)
    if x0.shape[1] == 0 or x1.shape[1] == 0:
        got = f"{tuple(x0.shape)} and {tuple(x1.shape)}"
        msg = f"`x0` and `x1` must hold at least one point each, got {got}."
        raise ValueError(msg)
