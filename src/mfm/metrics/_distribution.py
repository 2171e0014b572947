"""Several distribution metrics of one prediction, by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .._utils import RandomState, as_numpy_rng
from ._inputs import as_point_pair, check_max_cells, subsample
from ._mmd import mmd
from ._moments import corr_of_correlations, r2_means
from ._wasserstein import wasserstein

#: Names accepted by :func:`distribution_metrics`.
DISTRIBUTION_METRICS: tuple[str, ...] = ("w1", "w2", "mmd", "r2", "corr")

# Metrics on the shared subsample (already drawn, so no further subsampling).
_SAMPLED: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "w1": lambda x, y: wasserstein(x, y, p=1, max_cells=None),
    "w2": lambda x, y: wasserstein(x, y, p=2, max_cells=None),
    "mmd": lambda x, y: mmd(x, y, max_cells=None),
}
# Metrics of moments, cheap in the number of cells: computed on all cells.
_FULL: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "r2": r2_means,
    "corr": corr_of_correlations,
}


def distribution_metrics(
    x: np.ndarray,
    y: np.ndarray,
    metrics: Sequence[str] | str = ("w1", "w2", "mmd", "r2"),
    *,
    max_cells: int | None = 2000,
    random_state: RandomState = 0,
) -> dict[str, float]:
    """Compute several metrics between predicted cells ``x`` and observed cells ``y``.

    Names: ``"w1"``, ``"w2"`` (:func:`wasserstein`), ``"mmd"`` (:func:`mmd` with the MFM
    bandwidths), ``"r2"`` (:func:`r2_means`), ``"corr"`` (:func:`corr_of_correlations`).
    ``w1``, ``w2`` and ``mmd`` share one subsample of at most ``max_cells`` cells per set (drawn
    once, ``x`` first, then ``y``); ``r2`` and ``corr`` use every cell.

    Parameters
    ----------
    x
        ``(n, d)`` predicted cells.
    y
        ``(m, d)`` observed cells.
    metrics
        Metric names (or one name), computed in this order; repeated names count once.
    max_cells
        Largest number of cells per set for the OT and MMD metrics; None uses all.
    random_state
        Seed or generator of the subsampling.

    Returns
    -------
    ``{name: value}`` in the order of ``metrics``.

    Raises
    ------
    ValueError
        On an unknown metric name (listing the valid ones) or invalid inputs.
    """
    names = _check_names(metrics)
    check_max_cells(max_cells)
    x, y = as_point_pair(x, y)
    rng = as_numpy_rng(random_state)
    x_sub, y_sub = subsample(x, max_cells, rng), subsample(y, max_cells, rng)
    return {
        name: _SAMPLED[name](x_sub, y_sub) if name in _SAMPLED else _FULL[name](x, y)
        for name in names
    }


def _check_names(metrics: Sequence[str] | str) -> list[str]:
    """Return the unique metric names in order, raising on an unknown one."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [name for name in names if name not in DISTRIBUTION_METRICS]
    if unknown or not names:
        what = f"Unknown metric names {unknown}" if unknown else "No metric names"
        msg = f"{what} in `metrics`; choose one or more of {list(DISTRIBUTION_METRICS)}."
        raise ValueError(msg)
    return list(dict.fromkeys(names))
