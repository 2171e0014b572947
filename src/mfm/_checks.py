"""Validation helpers shared by the verbs: each names the key, what was expected and the fix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

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


def check_uns(adata: AnnData, key: str, entry: str, producer: str) -> Any:
    """Return ``adata.uns[key][entry]`` or raise a `KeyError` naming the call that writes it."""
    if key not in adata.uns or entry not in adata.uns[key]:
        msg = f"`adata.uns[{key!r}][{entry!r}]` not found; run `{producer}` first."
        raise KeyError(msg)
    return adata.uns[key][entry]
