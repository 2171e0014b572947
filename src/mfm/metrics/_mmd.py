"""Maximum mean discrepancy with a mixture of RBF kernels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist

from .._utils import RandomState, as_numpy_rng
from ._inputs import as_point_pair, check_max_cells, subsample

#: RBF precisions gamma of k(a, b) = exp(-gamma ||a - b||^2) in the Meta Flow Matching code
#: (``compute_scalar_mmd`` in ``util/distribution_distances.py`` of lazaratan/meta-flow-matching).
MFM_GAMMAS: tuple[float, ...] = (2.0, 1.0, 0.5, 0.1, 0.01, 0.005)
#: The same kernels as bandwidths sigma = 1 / sqrt(2 gamma):
#: 0.5, 0.7071, 1.0, 2.2361, 7.0711, 10.0.
MFM_BANDWIDTHS: tuple[float, ...] = tuple(float(1.0 / np.sqrt(2.0 * g)) for g in MFM_GAMMAS)


def mmd(
    x: np.ndarray,
    y: np.ndarray,
    *,
    bandwidths: Sequence[float] = MFM_BANDWIDTHS,
    max_cells: int | None = 2000,
    random_state: RandomState = 0,
) -> float:
    r"""Squared maximum mean discrepancy, averaged over RBF kernels of several bandwidths.

    For each bandwidth :math:`\sigma_k` (``K`` of them), with
    :math:`k_\sigma(a, b) = \exp(-\lVert a - b \rVert^2 / (2 \sigma^2))`,

    .. math::
        \mathrm{MMD}^2 = \frac{1}{K} \sum_k \Big( \frac{1}{n^2} \sum_{ii'} k_{\sigma_k}(x_i, x_{i'})
        + \frac{1}{m^2} \sum_{jj'} k_{\sigma_k}(y_j, y_{j'})
        - \frac{2}{nm} \sum_{ij} k_{\sigma_k}(x_i, y_j) \Big)

    i.e. the biased (V-statistic) estimator, diagonal terms included, so it is >= 0 and exactly 0
    for identical sets, averaged (mean, not sum) over the kernels. The defaults reproduce the
    Meta Flow Matching evaluation (``compute_scalar_mmd`` of lazaratan/meta-flow-matching, also
    used by CellOT): sklearn ``rbf_kernel`` precisions ``gamma = 2, 1, 0.5, 0.1, 0.01, 0.005``,
    i.e. ``sigma = 1 / sqrt(2 gamma) = 0.5, 0.7071, 1, 2.2361, 7.0711, 10``.

    Parameters
    ----------
    x
        ``(n, d)`` predicted (or first) cells.
    y
        ``(m, d)`` observed (or second) cells.
    bandwidths
        Kernel bandwidths :math:`\sigma_k > 0` (standard deviations, not precisions).
    max_cells
        When a set has more than ``max_cells`` cells, ``max_cells`` of them are drawn without
        replacement (``x`` first, then ``y``, from one generator); the kernel matrices cost
        O((n + m)^2) memory. None uses every cell (the MFM code does not subsample).
    random_state
        Seed or generator of the subsampling.

    Returns
    -------
    The squared MMD (a float, 0 when the sets coincide).

    Raises
    ------
    ValueError
        On empty inputs, a feature-dimension mismatch, NaN or infinite values, or an empty or
        non-positive ``bandwidths``.

    Examples
    --------
    >>> import numpy as np
    >>> import mfm
    >>> rng = np.random.default_rng(0)
    >>> predicted, observed = rng.normal(size=(200, 3)), rng.normal(loc=0.5, size=(200, 3))
    >>> round(mfm.metrics.mmd(predicted, observed), 4)
    0.0312
    """
    gammas = _gammas(bandwidths)
    check_max_cells(max_cells)
    x, y = as_point_pair(x, y)
    rng = as_numpy_rng(random_state)
    x, y = subsample(x, max_cells, rng), subsample(y, max_cells, rng)
    sq_xx = cdist(x, x, metric="sqeuclidean")
    sq_yy = cdist(y, y, metric="sqeuclidean")
    sq_xy = cdist(x, y, metric="sqeuclidean")
    values = [
        np.exp(-g * sq_xx).mean() + np.exp(-g * sq_yy).mean() - 2.0 * np.exp(-g * sq_xy).mean()
        for g in gammas
    ]
    return float(np.mean(values))


def _gammas(bandwidths: Sequence[float]) -> np.ndarray:
    """Turn bandwidths sigma into precisions gamma = 1 / (2 sigma^2), checking them."""
    sigmas = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    if sigmas.ndim != 1 or sigmas.size == 0 or not np.all(np.isfinite(sigmas) & (sigmas > 0)):
        msg = f"`bandwidths` must be a non-empty sequence of positive floats, got {bandwidths!r}."
        raise ValueError(msg)
    return 1.0 / (2.0 * sigmas**2)
