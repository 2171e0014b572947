"""Input checks and subsampling shared by the metrics (numpy only)."""

from __future__ import annotations

import numpy as np

from .._checks import check_finite, check_positive_int


def as_points(x: np.ndarray, name: str) -> np.ndarray:
    """Return ``x`` as a float64 ``(n, d)`` array, raising a `ValueError` when it is not one.

    Parameters
    ----------
    x
        Array-like of shape ``(n, d)``: ``n`` cells (or points) with ``d`` features.
    name
        Argument name used in error messages.

    Returns
    -------
    The ``(n, d)`` float64 array (a view when ``x`` already is one).
    """
    points = np.asarray(x, dtype=np.float64)
    if points.ndim != 2:
        msg = (
            f"`{name}` must be a 2-D array of shape (n_cells, n_features), got shape "
            f"{points.shape}; reshape 1-D samples with `.reshape(-1, 1)`."
        )
        raise ValueError(msg)
    if points.shape[0] == 0 or points.shape[1] == 0:
        msg = f"`{name}` must hold at least one cell and one feature, got shape {points.shape}."
        raise ValueError(msg)
    check_finite(points, f"`{name}`")
    return points


def as_point_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check ``x`` ``(n, d)`` and ``y`` ``(m, d)`` with `as_points` and that their ``d`` agree."""
    x, y = as_points(x, "x"), as_points(y, "y")
    if x.shape[1] != y.shape[1]:
        msg = (
            f"`x` and `y` must have the same number of features, got {x.shape[1]} and {y.shape[1]}."
        )
        raise ValueError(msg)
    return x, y


def check_max_cells(max_cells: int | None) -> None:
    """Raise a `ValueError` unless ``max_cells`` is None or an integer >= 1."""
    if max_cells is not None:
        check_positive_int("max_cells", max_cells)


def subsample(x: np.ndarray, max_cells: int | None, rng: np.random.Generator) -> np.ndarray:
    """Return ``max_cells`` rows of ``x`` drawn without replacement, or ``x`` when it is smaller.

    Parameters
    ----------
    x
        ``(n, d)`` array.
    max_cells
        Largest number of rows kept; None keeps all rows.
    rng
        Generator drawing the rows (advanced only when rows are dropped).

    Returns
    -------
    ``(min(n, max_cells), d)`` array; rows keep their original order.
    """
    if max_cells is None or len(x) <= max_cells:
        return x
    keep = np.sort(rng.choice(len(x), size=max_cells, replace=False))
    return x[keep]
