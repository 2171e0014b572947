"""Validation of values (numbers, seeds, choices, finite arrays): numpy only.

Each helper names the argument, what was expected and the fix. Checks of AnnData keys
(`check_obs_columns`, `check_uns`, ...) and of feature matrices (`check_feature_values`)
live in `mfm._anndata`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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
