"""Helpers shared by the dataset generators: categorical columns and writable parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._utils import RandomState


def categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    """Build a categorical column from integer ``codes`` into ``categories``."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(categories))


def cell_names(blocks: Sequence[str], n_per_block: int) -> list[str]:
    """Return unique cell names ``"{block}_{i}"``, ``n_per_block`` per block, in order."""
    return [f"{block}_{i}" for block in blocks for i in range(n_per_block)]


def seed_param(random_state: RandomState) -> dict[str, Any]:
    """Return ``{"random_state": seed}`` for an int seed, else ``{}`` (not writable to h5ad)."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return {"random_state": int(random_state)}
    return {}


def check_nonnegative(name: str, value: float) -> None:
    """Raise a `ValueError` when ``value`` is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        msg = f"`{name}` must be a number >= 0, got {value!r}."
        raise ValueError(msg)
    if not np.isfinite(value) or value < 0:
        msg = f"`{name}` must be a finite number >= 0, got {value!r}."
        raise ValueError(msg)


def check_unique_subset(name: str, values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """Return ``values`` as a list after checking they are distinct members of ``allowed``."""
    values = [values] if isinstance(values, str) else list(values)
    unknown = [value for value in values if value not in allowed]
    if not values or unknown or len(set(values)) != len(values):
        msg = (
            f"`{name}` must be a non-empty sequence of distinct values from {list(allowed)}, "
            f"got {values!r}."
        )
        raise ValueError(msg)
    return values
