"""Several distribution metrics of one prediction, by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .._utils import RandomState, as_numpy_rng
from ._energy import energy_distance
from ._inputs import as_point_pair, as_points, check_max_cells, subsample
from ._mmd import mmd
from ._moments import corr_of_correlations, r2_means
from ._wasserstein import wasserstein

#: Names accepted by :func:`distribution_metrics`.
DISTRIBUTION_METRICS: tuple[str, ...] = ("w1", "w2", "mmd", "energy", "r2", "corr")

# Metrics on the shared subsample (already drawn, so no further subsampling).
_SAMPLED: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "w1": lambda x, y: wasserstein(x, y, p=1, max_cells=None),
    "w2": lambda x, y: wasserstein(x, y, p=2, max_cells=None),
    "mmd": lambda x, y: mmd(x, y, max_cells=None),
    "energy": lambda x, y: energy_distance(x, y, max_cells=None),
}
# Metrics of moments, cheap in the number of cells: computed on all cells.
_FULL: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "r2": r2_means,
    "corr": corr_of_correlations,
}


def distribution_metrics(
    x: np.ndarray,
    y: np.ndarray,
    metrics: Sequence[str] | str = ("w1", "w2", "mmd", "energy", "r2"),
    *,
    max_cells: int | None = 2000,
    random_state: RandomState = 0,
) -> dict[str, float]:
    """Compute several metrics between predicted cells ``x`` and observed cells ``y``.

    Names: ``"w1"``, ``"w2"`` (:func:`wasserstein`), ``"mmd"`` (:func:`mmd` with the MFM
    bandwidths), ``"energy"`` (:func:`energy_distance`), ``"r2"`` (:func:`r2_means`),
    ``"corr"`` (:func:`corr_of_correlations`). ``w1``, ``w2``, ``mmd`` and ``energy`` share
    one subsample of at most ``max_cells`` cells per set (drawn once, ``x`` first, then ``y``);
    ``r2`` and ``corr`` use every cell.

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

    Examples
    --------
    >>> import numpy as np
    >>> import mfm
    >>> rng = np.random.default_rng(0)
    >>> predicted, observed = rng.normal(size=(200, 3)), rng.normal(loc=0.5, size=(200, 3))
    >>> scores = mfm.metrics.distribution_metrics(predicted, observed, ["w1", "energy"])
    >>> {name: round(value, 3) for name, value in scores.items()}
    {'w1': 0.974, 'energy': 0.284}
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


def noise_floor(
    y: np.ndarray,
    metrics: Sequence[str] | str = ("w1", "w2", "mmd", "energy", "r2"),
    *,
    n_predicted: int | None = None,
    max_cells: int | None = 2000,
    random_state: RandomState = 0,
) -> dict[str, float]:
    """The metrics between two random halves of the observed cells ``y``: a data ceiling.

    No prediction can be expected to come closer to ``y`` than another sample of the same
    population does, so this is about the best score a method can reach on ``y`` (cell-eval
    calls it the data ceiling). The halves have ``m // 2`` cells each, and every sample-based
    metric depends on sample size:

    - ``"mmd"`` and ``"energy"`` are V-statistics whose expected value for two samples of
      sizes ``a`` and ``b`` from one distribution is ``c (1/a + 1/b)``; with ``n_predicted``
      their floors are rescaled from the halves' sizes to a prediction of ``n_predicted``
      cells scored against all ``m`` (both capped at ``max_cells``), so they estimate what a
      perfect prediction would score in the same table;
    - ``"w1"`` and ``"w2"`` shrink more slowly and with no closed form, so they are reported
      at half size: an upper estimate of the floor (and ``"r2"``, ``"corr"`` a lower one).

    Parameters
    ----------
    y
        ``(m, d)`` observed cells, ``m >= 4``.
    metrics
        Metric names, as for :func:`distribution_metrics`.
    n_predicted
        Cells of the predictions the floor is compared with (see above); None reports every
        metric at half size.
    max_cells
        Largest number of cells per half (and per set when rescaling) for the OT, MMD and
        energy metrics; None uses all.
    random_state
        Seed or generator of the split (and of the subsamples).

    Returns
    -------
    ``{name: value}`` in the order of ``metrics``.

    Examples
    --------
    The metrics between two halves of the observed cells: what a perfect prediction would score.

    >>> import numpy as np
    >>> import mfm
    >>> observed = np.random.default_rng(0).normal(size=(400, 3))
    >>> floor = mfm.metrics.noise_floor(observed, ["w1", "energy"])
    >>> {name: round(value, 3) for name, value in floor.items()}
    {'w1': 0.557, 'energy': 0.029}
    """
    y = as_points(y, "y")
    if len(y) < 4:
        msg = f"A noise floor needs at least 4 observed cells (two halves of 2), got {len(y)}."
        raise ValueError(msg)
    rng = as_numpy_rng(random_state)
    order = rng.permutation(len(y))
    half = len(y) // 2
    first, second = y[order[:half]], y[order[half : 2 * half]]
    values = distribution_metrics(first, second, metrics, max_cells=max_cells, random_state=rng)
    if n_predicted is not None:
        cap = np.inf if max_cells is None else max_cells
        size_half = min(half, cap)
        factor = (1 / min(n_predicted, cap) + 1 / min(len(y), cap)) / (2 / size_half)
        for name in _SIZE_SCALED.intersection(values):
            values[name] *= factor
    return values


#: V-statistics whose floor scales as 1/a + 1/b with the two sample sizes.
_SIZE_SCALED = frozenset({"mmd", "energy"})


def _check_names(metrics: Sequence[str] | str) -> list[str]:
    """Return the unique metric names in order, raising on an unknown one."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [name for name in names if name not in DISTRIBUTION_METRICS]
    if unknown or not names:
        what = f"Unknown metric names {unknown}" if unknown else "No metric names"
        msg = f"{what} in `metrics`; choose one or more of {list(DISTRIBUTION_METRICS)}."
        raise ValueError(msg)
    return list(dict.fromkeys(names))
