"""Point-cloud (niche) distances and summaries: exact W2 between small clouds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ot
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ._inputs import as_points

Clouds = Sequence[np.ndarray] | np.ndarray


def cloud_w2_matrix(clouds_a: Clouds, clouds_b: Clouds | None = None) -> np.ndarray:
    r"""Pairwise exact 2-Wasserstein distances between point clouds with uniform weights.

    .. math::
        D_{ij} = W_2(\mu_{a_i}, \mu_{b_j}) = \Big(\min_{P \in U(1_n/n, 1_m/m)}
        \sum_{kl} P_{kl} \lVert a_{ik} - b_{jl} \rVert^2\Big)^{1/2}

    Clouds of equal size ``n`` are matched by :func:`scipy.optimize.linear_sum_assignment`:
    between two uniform measures on ``n`` points an optimal plan is a permutation divided by
    ``n`` (Birkhoff), so :math:`W_2^2` is the mean squared distance of the optimal assignment,
    exactly :func:`ot.emd2`'s value but faster for small clouds. Other pairs use :func:`ot.emd2`.
    For equal sizes the cost matrices of one row cloud against all column clouds of that size
    come from one batched matmul; the matched distances are then recomputed from the points, so
    identical clouds are exactly 0 apart.

    Parameters
    ----------
    clouds_a
        ``B_a`` clouds: a ``(B_a, n, d)`` array or a sequence of ``(n_i, d)`` arrays.
    clouds_b
        ``B_b`` clouds in the same ``d`` dimensions; None for ``clouds_a`` against itself, in
        which case only the upper triangle is solved and the result is symmetric with a zero
        diagonal.

    Returns
    -------
    ``(B_a, B_b)`` float64 matrix of distances.

    Raises
    ------
    ValueError
        On an empty collection, an empty or non-finite cloud, or mismatched dimensions.

    See Also
    --------
    wasserstein : the same distance between two large cell sets (with subsampling).

    Examples
    --------
    >>> import numpy as np
    >>> import mfm
    >>> clouds = np.random.default_rng(0).normal(size=(4, 16, 2))   # 4 niches of 16 points
    >>> mfm.metrics.cloud_w2_matrix(clouds).shape
    (4, 4)
    >>> mfm.metrics.cloud_w2_matrix(clouds[:1], clouds[1:]).shape
    (1, 3)
    """
    a = as_clouds(clouds_a, "clouds_a")
    b = a if clouds_b is None else as_clouds(clouds_b, "clouds_b")
    _check_same_dim(a, b)
    out = np.zeros((len(a), len(b)))
    for size_b, cols in _group_by_size(b).items():
        stacked_b = np.stack([b[j] for j in cols])  # (B_size, size_b, d)
        for i, cloud in enumerate(a):
            # Symmetric case: solve only j > i, mirror afterwards.
            sel = cols > i if clouds_b is None else np.ones(len(cols), dtype=bool)
            if sel.any():
                out[i, cols[sel]] = _w2_one_to_many(cloud, stacked_b[sel], size_b)
    if clouds_b is None:
        out = out + out.T
    return out


def set_w2(distances: np.ndarray) -> float:
    r"""W2 between two collections of clouds, from the W2 distances between their clouds.

    Each collection is the uniform measure over its clouds :math:`\{\mu_i\}_{i \le n_a}` and
    :math:`\{\nu_j\}_{j \le n_b}`; the ground cost is the W2 distance between clouds:

    .. math:: \mathcal W_2 = \Big(\min_{P \in U(1/n_a, 1/n_b)} \sum_{ij} P_{ij}
              W_2(\mu_i, \nu_j)^2\Big)^{1/2}

    (exact OT, :func:`ot.emd2`). 0 when one collection is a permutation of the other.

    Parameters
    ----------
    distances
        ``(n_a, n_b)`` W2 distances between the clouds of the two collections, e.g.
        :func:`cloud_w2_matrix` of both.

    Returns
    -------
    The set-level W2 distance.

    Examples
    --------
    >>> import numpy as np
    >>> import mfm
    >>> real = np.random.default_rng(0).normal(size=(5, 16, 2))
    >>> mfm.metrics.set_w2(mfm.metrics.cloud_w2_matrix(real, real[::-1]))
    0.0
    """
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 2 or 0 in distances.shape:
        msg = f"`distances` must be a non-empty (n_a, n_b) matrix, got shape {distances.shape}."
        raise ValueError(msg)
    n_a, n_b = distances.shape
    return float(np.sqrt(max(ot.emd2(ot.unif(n_a), ot.unif(n_b), distances**2), 0.0)))


def cloud_summaries(clouds: Clouds) -> np.ndarray:
    r"""Per-cloud summary features: mean and upper triangle of the covariance.

    For cloud :math:`i` with points :math:`x_{i1}, \dots, x_{in_i} \in \mathbb{R}^d`, the
    features are the mean :math:`m_i` followed by the upper triangle (diagonal included, row by
    row) of the covariance of the uniform measure,
    :math:`\Sigma_i = \frac{1}{n_i} \sum_k (x_{ik} - m_i)(x_{ik} - m_i)^\top` (divided by ``n``,
    not ``n - 1``, so a single-point cloud has zero covariance). Used as classifier features
    in :func:`label_accuracy`.

    Parameters
    ----------
    clouds
        ``B`` clouds: a ``(B, n, d)`` array or a sequence of ``(n_i, d)`` arrays.

    Returns
    -------
    ``(B, d + d (d + 1) / 2)`` float64 array.

    Examples
    --------
    >>> import numpy as np
    >>> import mfm
    >>> clouds = np.random.default_rng(0).normal(size=(4, 16, 2))
    >>> mfm.metrics.cloud_summaries(clouds).shape   # mean (2) and covariance (3) of each cloud
    (4, 5)
    """
    cs = as_clouds(clouds, "clouds")
    upper = np.triu_indices(cs[0].shape[1])
    rows = []
    for cloud in cs:
        centred = cloud - cloud.mean(axis=0)
        cov = centred.T @ centred / len(cloud)
        rows.append(np.concatenate([cloud.mean(axis=0), cov[upper]]))
    return np.stack(rows)


def as_clouds(clouds: Clouds, name: str) -> list[np.ndarray]:
    """Check ``clouds`` and return them as a list of float64 ``(n_i, d)`` arrays of equal ``d``."""
    if isinstance(clouds, np.ndarray) and clouds.ndim != 3:
        msg = f"`{name}` as an array must have shape (B, n, d), got {clouds.shape}."
        raise ValueError(msg)
    out = [as_points(cloud, f"{name}[{i}]") for i, cloud in enumerate(clouds)]
    if not out:
        msg = f"`{name}` must hold at least one point cloud."
        raise ValueError(msg)
    _check_same_dim(out, out[:1], name)
    return out


def _check_same_dim(a: list[np.ndarray], b: list[np.ndarray], name: str | None = None) -> None:
    """Raise a `ValueError` unless every cloud of ``a`` and ``b`` has the same dimension."""
    dims = {cloud.shape[1] for cloud in (*a, *b)}
    if len(dims) > 1:
        what = f"The clouds of `{name}`" if name else "`clouds_a` and `clouds_b`"
        msg = f"{what} must all have the same number of dimensions, got {sorted(dims)}."
        raise ValueError(msg)


def _group_by_size(clouds: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Map each cloud size to the indices of the clouds of that size."""
    sizes = np.array([len(cloud) for cloud in clouds])
    return {int(s): np.flatnonzero(sizes == s) for s in np.unique(sizes)}


def _w2_one_to_many(cloud: np.ndarray, others: np.ndarray, size: int) -> np.ndarray:
    """W2 between ``cloud`` ``(n, d)`` and each of ``others`` ``(B, size, d)``; returns ``(B,)``."""
    if len(cloud) != size:
        weights_a, weights_b = ot.unif(len(cloud)), ot.unif(size)
        costs = [cdist(cloud, other, metric="sqeuclidean") for other in others]
        values = np.array([ot.emd2(weights_a, weights_b, cost) for cost in costs])
        return np.sqrt(np.maximum(values, 0.0))
    # Costs (B, n, n) = |a|^2 + |b|^2 - 2 a.b from one batched matmul choose the assignments,
    cross = np.swapaxes(others @ cloud.T, 1, 2)
    costs = (cloud**2).sum(axis=-1)[None, :, None] + (others**2).sum(axis=-1)[:, None, :]
    costs -= 2.0 * cross
    # one linear_sum_assignment each (rows come back as 0..n-1, so keep the columns);
    cols = np.stack([linear_sum_assignment(cost)[1] for cost in costs])
    # the matched squared distances are then recomputed exactly (equal clouds give 0).
    matched = np.take_along_axis(others, cols[:, :, None], axis=1)  # (B, n, d)
    return np.sqrt(((matched - cloud[None]) ** 2).sum(axis=-1).mean(axis=1))
