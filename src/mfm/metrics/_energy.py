"""Energy distance with Euclidean distances (pertpy's ``Edistance`` convention since 2025)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from .._utils import RandomState, as_numpy_rng
from ._inputs import as_point_pair, check_max_cells, subsample


def energy_distance(
    x: np.ndarray,
    y: np.ndarray,
    *,
    max_cells: int | None = 2000,
    random_state: RandomState = 0,
) -> float:
    r"""Energy distance between the empirical measures of ``x`` and ``y``.

    .. math::
        E(x, y) = \frac{2}{nm} \sum_{ij} \lVert x_i - y_j \rVert
        - \frac{1}{n^2} \sum_{ii'} \lVert x_i - x_{i'} \rVert
        - \frac{1}{m^2} \sum_{jj'} \lVert y_j - y_{j'} \rVert

    with Euclidean (not squared) distances, the V-statistic (diagonal terms included), as
    pertpy's ``Edistance`` computes it since 2025. With squared distances the expression reduces
    to ``2 * ||mean(x) - mean(y)||^2`` and compares means only; with Euclidean distances it is
    zero only for equal distributions (Szekely & Rizzo 2013), so it also sees a wrong spread.

    Parameters
    ----------
    x
        ``(n, d)`` predicted (or first) cells.
    y
        ``(m, d)`` observed (or second) cells.
    max_cells
        When a set has more than ``max_cells`` cells, ``max_cells`` of them are drawn without
        replacement (``x`` first, then ``y``, from one generator); the distance matrices cost
        O((n + m)^2) memory. None uses every cell.
    random_state
        Seed or generator of the subsampling.

    Returns
    -------
    The energy distance, a float >= 0 (up to rounding), 0 for identical sets.

    Raises
    ------
    ValueError
        On empty inputs, a feature-dimension mismatch or NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> import mfm
    >>> rng = np.random.default_rng(0)
    >>> predicted, observed = rng.normal(size=(200, 3)), rng.normal(loc=0.5, size=(200, 3))
    >>> round(mfm.metrics.energy_distance(predicted, observed), 3)
    0.284
    """
    check_max_cells(max_cells)
    x, y = as_point_pair(x, y)
    rng = as_numpy_rng(random_state)
    x, y = subsample(x, max_cells, rng), subsample(y, max_cells, rng)
    between = cdist(x, y).mean()
    return float(2.0 * between - cdist(x, x).mean() - cdist(y, y).mean())
