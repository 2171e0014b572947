"""Moment-based metrics: r2 of feature means, correlation of feature-feature correlations."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.metrics import r2_score

from ._inputs import as_point_pair

logger = logging.getLogger(__name__)


def r2_means(x: np.ndarray, y: np.ndarray) -> float:
    r"""Coefficient of determination between the feature means of observed and predicted cells.

    .. math::
        r^2 = 1 - \frac{\sum_f (\bar y_f - \bar x_f)^2}{\sum_f (\bar y_f - \bar{\bar y})^2}

    with :math:`\bar x_f, \bar y_f` the mean of feature ``f`` over the cells of ``x`` and ``y``
    and :math:`\bar{\bar y}` the mean of the :math:`\bar y_f` (sklearn ``r2_score`` with the
    observed means as truth; not symmetric). When every observed mean is equal, sklearn returns
    1.0 for a perfect prediction and 0.0 otherwise.

    Parameters
    ----------
    x
        ``(n, d)`` predicted cells.
    y
        ``(m, d)`` observed cells (the truth).

    Returns
    -------
    :math:`r^2` (1 is perfect; can be negative).

    Raises
    ------
    ValueError
        On invalid inputs (see :func:`wasserstein`) or fewer than 2 features.

    Examples
    --------
    The marker means of a prediction that gets three of four markers right:

    >>> import numpy as np
    >>> import mfm
    >>> rng = np.random.default_rng(0)
    >>> observed = rng.normal(loc=[0.0, 1.0, 2.0, 3.0], size=(500, 4))
    >>> predicted = rng.normal(loc=[0.0, 1.0, 2.0, 2.5], size=(500, 4))
    >>> round(mfm.metrics.r2_means(predicted, observed), 2)
    0.94
    """
    x, y = as_point_pair(x, y)
    _check_min_features(x, "r2_means")
    return float(r2_score(y.mean(axis=0), x.mean(axis=0)))


def corr_of_correlations(x: np.ndarray, y: np.ndarray) -> float:
    r"""Pearson correlation between the feature-feature correlations of ``x`` and of ``y``.

    With :math:`C^x, C^y` the ``(d, d)`` Pearson correlation matrices of the features over the
    cells, returns :math:`\mathrm{corr}(\{C^x_{fg}\}_{f<g}, \{C^y_{fg}\}_{f<g})`, the metric of
    CellOT and Meta Flow Matching on mass cytometry (reported there as ``r2_pwf_corr``; it is a
    Pearson correlation, not squared). A feature that is constant in ``x`` or ``y`` has undefined
    correlations: the pairs involving it are dropped (pairwise deletion, as pandas does in the
    reference code) and the number dropped is logged at debug level.

    Parameters
    ----------
    x
        ``(n, d)`` predicted cells, ``n >= 2``.
    y
        ``(m, d)`` observed cells, ``m >= 2``.

    Returns
    -------
    The correlation in [-1, 1]; NaN (with a warning) when fewer than 2 pairs remain or the kept
    correlations of one set are all equal.

    Raises
    ------
    ValueError
        On invalid inputs (see :func:`wasserstein`), fewer than 2 features or fewer than 2 cells.

    Examples
    --------
    >>> import numpy as np
    >>> import mfm
    >>> rng = np.random.default_rng(0)
    >>> mixing = np.array([[1.0, 0.8, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 1.0]])
    >>> observed = rng.normal(size=(500, 3)) @ mixing   # markers 1 and 2 correlated
    >>> predicted = rng.normal(size=(500, 3)) @ mixing
    >>> round(mfm.metrics.corr_of_correlations(predicted, observed), 2)
    1.0
    """
    x, y = as_point_pair(x, y)
    _check_min_features(x, "corr_of_correlations")
    upper = np.triu_indices(x.shape[1], k=1)
    cx, cy = _correlations(x, "x")[upper], _correlations(y, "y")[upper]
    kept = np.isfinite(cx) & np.isfinite(cy)
    if not kept.all():
        logger.debug(
            "Dropped %d of %d feature pairs with a constant feature.", (~kept).sum(), kept.size
        )
    cx, cy = cx[kept], cy[kept]
    if kept.sum() < 2 or np.ptp(cx) == 0 or np.ptp(cy) == 0:
        msg = (
            f"The correlation of correlations is undefined: {int(kept.sum())} feature pairs "
            "without a constant feature remain, or their correlations are all equal; returning NaN."
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return float("nan")
    return float(np.corrcoef(cx, cy)[0, 1])


def _correlations(x: np.ndarray, name: str) -> np.ndarray:
    """``(d, d)`` Pearson correlations of the columns of ``x``; NaN for constant columns."""
    if len(x) < 2:
        msg = f"`{name}` needs at least 2 cells to compute feature correlations, got {len(x)}."
        raise ValueError(msg)
    centred = x - x.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    # Constant features get NaN instead of numpy's divide-by-zero warning.
    scaled = centred / np.where(norms > 0, norms, np.nan)
    return np.clip(scaled.T @ scaled, -1.0, 1.0)


def _check_min_features(x: np.ndarray, what: str) -> None:
    """Raise a `ValueError` when there are fewer than 2 features."""
    if x.shape[1] < 2:
        msg = f"`{what}` needs at least 2 features, got {x.shape[1]}."
        raise ValueError(msg)
