"""k-nearest-neighbour graphs of point clouds, computed in row blocks (GPU friendly)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_positive_int
from ._masks import check_mask


@torch.no_grad()
def knn_graph(x: Tensor, k: int, *, block_size: int = 2048, mask: Tensor | None = None) -> Tensor:
    r"""Find the ``k`` nearest other points of each point, per cloud.

    Euclidean distances are computed with `torch.cdist` for ``block_size`` rows at a time and
    reduced with `torch.topk`, so memory is :math:`O(B \cdot \text{block\_size} \cdot n)`
    rather than :math:`O(B n^2)`. A point is excluded from its own neighbours by setting its
    own distance to :math:`+\infty` (not by dropping the first hit), so duplicated points are
    each other's nearest neighbours. No gradient flows through the result.

    Parameters
    ----------
    x
        Point clouds ``(B, n, d)``, or a single cloud ``(n, d)``.
    k
        Number of neighbours, ``0 <= k < n``. ``k=0`` gives an empty ``(B, n, 0)`` graph.
    block_size
        Number of rows whose distances are held in memory at once.
    mask
        Optional ``(B, n)`` (or ``(n,)``) bool, ``True`` for real points and ``False`` for
        padding. Padded points are never neighbours; entries that cannot be filled (rows of
        padded points, clouds with at most ``k`` real points) are ``-1``.

    Returns
    -------
    Long tensor ``(B, n, k)`` (``(n, k)`` for a single cloud): ``out[b, i]`` lists the indices of
    the ``k`` points of cloud ``b`` nearest to point ``i``, nearest first.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [3.0]])
    >>> knn_graph(x, 1).ravel().tolist()
    [1, 0, 1]
    """
    if x.ndim == 2:
        single_mask = None if mask is None else mask[None]
        return knn_graph(x[None], k, block_size=block_size, mask=single_mask)[0]
    _check_knn_inputs(x, k, block_size, mask)
    n_batch, n, _ = x.shape
    out = torch.empty((n_batch, n, k), dtype=torch.long, device=x.device)
    if k == 0:
        return out
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        out[:, start:stop] = _block_neighbors(x, k, start, stop, mask)
    return out


def _block_neighbors(x: Tensor, k: int, start: int, stop: int, mask: Tensor | None) -> Tensor:
    """Neighbours ``(B, stop - start, k)`` of rows ``start:stop`` (``-1`` where none)."""
    dist = torch.cdist(x[:, start:stop], x)  # (B, rows, n)
    rows = torch.arange(stop - start, device=x.device)
    dist[:, rows, rows + start] = torch.inf
    if mask is None:
        return dist.topk(k, dim=-1, largest=False).indices
    dist.masked_fill_(~mask[:, None, :], torch.inf)
    values, indices = dist.topk(k, dim=-1, largest=False)
    missing = torch.isinf(values) | ~mask[:, start:stop, None]
    return indices.masked_fill_(missing, -1)


def _check_knn_inputs(x: Tensor, k: int, block_size: int, mask: Tensor | None) -> None:
    """Raise a `ValueError` on a malformed cloud, ``k``, ``block_size`` or ``mask``."""
    if x.ndim != 3 or not x.is_floating_point():
        msg = f"`x` must be a float tensor (B, n, d) or (n, d), got {x.dtype} {tuple(x.shape)}."
        raise ValueError(msg)
    check_positive_int("k", k, minimum=0)
    check_positive_int("block_size", block_size)
    if k >= x.shape[1]:
        msg = f"`k={k}` must be smaller than the number of points per cloud (n={x.shape[1]})."
        raise ValueError(msg)
    check_mask(x, mask)
