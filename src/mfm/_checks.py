"""Validation helpers shared by the verbs: each names the key, what was expected and the fix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._keys import ID_SEPARATOR

if TYPE_CHECKING:
    from anndata import AnnData


def check_obs_columns(adata: AnnData, columns: Iterable[str]) -> None:
    """Raise a `KeyError` naming the first column of ``columns`` missing from ``adata.obs``."""
    for column in columns:
        if column not in adata.obs.columns:
            msg = (
                f"Column {column!r} not found in `adata.obs`; "
                f"available columns: {list(adata.obs.columns)}."
            )
            raise KeyError(msg)


def check_no_separator(obs: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise a `ValueError` when a value of ``columns`` contains the id separator ``"|"``.

    Population ids (and split groups) join these values with the separator, so a value holding
    it could make two populations share one id (samples ``("A|B", "C")`` and ``("A", "B|C")``).
    """
    for column in columns:
        values = obs[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.cat.categories
        clashing = [str(v) for v in pd.unique(np.asarray(values)) if ID_SEPARATOR in str(v)]
        if clashing:
            msg = (
                f"Values of `adata.obs[{column!r}]` contain {ID_SEPARATOR!r}, which joins the "
                f"parts of population ids: {clashing[:5]}. Replace it, e.g. "
                f"`adata.obs[{column!r}] = adata.obs[{column!r}].astype(str).str.replace("
                f"{ID_SEPARATOR!r}, '/')`."
            )
            raise ValueError(msg)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise a `ValueError` when ``value`` is not one of ``choices``."""
    if value not in choices:
        msg = f"`{name}` must be one of {list(choices)}, got {value!r}."
        raise ValueError(msg)


def check_positive_int(name: str, value: int, *, minimum: int = 1) -> None:
    """Raise a `ValueError` when ``value`` is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        msg = f"`{name}` must be an integer >= {minimum}, got {value!r}."
        raise ValueError(msg)


def check_number(
    name: str, value: Any, *, low: float = 0.0, high: float = np.inf, closed: str = "neither"
) -> None:
    """Raise a `ValueError` unless ``value`` is a real number in the interval ``(low, high)``.

    ``closed`` is ``"neither"``, ``"left"`` (``low`` allowed), ``"right"`` or ``"both"``.
    """
    real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    inside = real and bool(np.isfinite(value))
    if inside:
        above = value >= low if closed in ("left", "both") else value > low
        below = value <= high if closed in ("right", "both") else value < high
        inside = bool(above and below)
    if not inside:
        left = "[" if closed in ("left", "both") else "("
        right = "]" if closed in ("right", "both") else ")"
        msg = f"`{name}` must be a finite number in {left}{low}, {high}{right}, got {value!r}."
        raise ValueError(msg)


def check_seed(name: str, value: Any) -> None:
    """Raise a `ValueError` unless ``value`` is an integer seed >= 0 (recorded with the model)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        kind = type(value).__name__
        msg = (
            f"`{name}` must be an integer seed >= 0 (it is stored with the model, so that the "
            f"same seed gives the same model), got {value!r} ({kind}). To draw one from a "
            f"generator `rng`, pass `int(rng.integers(2**31))`."
        )
        raise ValueError(msg)


def check_positive_ints(**values: int) -> None:
    """Raise a `ValueError` naming the first of ``values`` that is not an integer >= 1."""
    for name, value in values.items():
        check_positive_int(name, value)


def check_finite(values: np.ndarray, what: str) -> None:
    """Raise a `ValueError` when ``values`` holds NaN or infinite entries."""
    finite = np.isfinite(values)
    if not finite.all():
        rows = np.flatnonzero(~finite.reshape(len(values), -1).all(axis=1))
        msg = (
            f"{what} contains {int((~finite).sum())} NaN or infinite values "
            f"(first rows: {rows[:5].tolist()}); remove or impute them first."
        )
        raise ValueError(msg)


def check_feature_values(
    matrix: np.ndarray | sparse.spmatrix, what: str, *, row_offset: int = 0
) -> None:
    """Raise when ``matrix`` is not real, holds NaN/inf, or holds values beyond float32.

    Sparse matrices are checked on their stored values, without a dense copy. Rows named in
    errors are counted from ``row_offset`` (the position of a streamed block).
    """
    if sparse.issparse(matrix):
        coo = matrix.tocoo()
        values, row_of = coo.data, coo.row
    else:
        values = np.asarray(matrix)
        row_of = None
    if values.dtype.kind not in "iuf":
        msg = f"{what} must hold real numbers, got dtype {values.dtype}."
        raise TypeError(msg)
    if values.size == 0:
        return
    if row_of is None:
        values = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(-1, 1)

    def rows(mask: np.ndarray) -> list[int]:
        found = row_of[mask] if row_of is not None else np.flatnonzero(mask.any(axis=1))
        return (np.unique(found)[:5] + row_offset).tolist()

    bad = ~np.isfinite(values)
    if bad.any():
        msg = (
            f"{what} contains {int(bad.sum())} NaN or infinite values "
            f"(first rows: {rows(bad)}); remove or impute them first."
        )
        raise ValueError(msg)
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return  # integers and float32 always fit
    limit = float(np.finfo(np.float32).max)
    large = np.abs(values) > limit
    if large.any():
        msg = (
            f"{what} holds {int(large.sum())} finite values beyond the float32 range "
            f"(|x| > {limit:.3g}, largest {float(np.abs(values).max()):.3g}; first rows: "
            f"{rows(large)}); mfm computes in float32, so rescale them first."
        )
        raise ValueError(msg)


def check_uns(adata: AnnData, key: str, entry: str, producer: str) -> Any:
    """Return ``adata.uns[key][entry]`` or raise a `KeyError` naming the call that writes it."""
    if key not in adata.uns or entry not in adata.uns[key]:
        msg = f"`adata.uns[{key!r}][{entry!r}]` not found; run `{producer}` first."
        raise KeyError(msg)
    return adata.uns[key][entry]
