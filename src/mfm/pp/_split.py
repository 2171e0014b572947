"""`mfm.pp.split`: mark populations train / val / test (patient split or random replica split)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import check_no_separator, check_obs_columns, check_uns, group_codes, make_actual
from .._utils import RandomState, as_numpy_rng

logger = logging.getLogger(__name__)


def split(
    adata: AnnData,
    *,
    by: str | Sequence[str],
    test: Sequence | float,
    val: Sequence | float = (),
    random_state: RandomState = 0,
    key_added: str = "mfm",
    copy: bool = False,
) -> AnnData | None:
    """Assign every population to the ``train``, ``val`` or ``test`` split.

    Populations are grouped by the value of ``by`` (constant within a population), so
    that, e.g., all populations of a held-out patient are unseen in training.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.populations`.
    by
        Column of ``adata.obs`` (or a list of columns) whose values define the groups,
        e.g. ``"patient"`` for a patient split or ``["patient", "culture", "replicate"]``
        for a replica split.
    test
        Values of ``by`` to hold out for testing (tuples when ``by`` is a list), or a
        fraction in (0, 1) of the distinct values, drawn at random with ``random_state``.
    val
        Values (or a fraction) for validation, chosen among those not in ``test``.
    random_state
        Seed of the random draw when ``test`` or ``val`` is a fraction.
    key_added
        Key of the populations table written by :func:`mfm.pp.populations`.
    copy
        Return a copy of ``adata`` with the keys added, instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy, with ``copy=True``); sets the ``split`` column of
    ``adata.uns[key_added]['populations']`` and ``adata.uns[key_added]['params']['split']``. A
    view is made an actual AnnData first (with a warning), so its parent is never changed.

    Examples
    --------
    >>> mfm.pp.split(adata, by="patient", test=["P07", "P08"], val=["P06"])
    >>> mfm.pp.split(adata, by=["patient", "culture", "replicate"], test=0.2, random_state=0)
    """
    adata = adata.copy() if copy else adata
    keys = K.Keys(key_added)
    make_actual(adata)
    table = check_uns(adata, keys.uns, keys.populations, K.POPULATIONS_VERB)
    columns = [by] if isinstance(by, str) else list(by)
    groups = _group_of_population(adata, keys, columns, table.index)
    values = sorted(set(groups))
    rng = as_numpy_rng(random_state)
    test_values = _resolve_values("test", test, values, set(), rng)
    val_values = _resolve_values("val", val, values, test_values, rng)

    split_of = np.full(len(table), K.TRAIN, dtype=object)
    split_of[np.isin(groups, list(val_values))] = K.VAL
    split_of[np.isin(groups, list(test_values))] = K.TEST
    if not (split_of == K.TRAIN).any():
        msg = "`test` and `val` cover every population; nothing is left for training."
        raise ValueError(msg)

    table = table.copy()
    table[K.SPLIT] = pd.Categorical(split_of, categories=list(K.SPLITS))
    adata.uns[keys.uns][keys.populations] = table
    adata.uns[keys.uns][keys.params][K.SPLIT_PARAMS] = {
        "by": columns,
        K.TEST: sorted(map(str, test_values)),
        K.VAL: sorted(map(str, val_values)),
    }
    logger.info(
        "split populations: %s; updated uns[%r][%r]",
        {name: int(n) for name, n in pd.Series(split_of).value_counts().items()},
        keys.uns,
        keys.populations,
    )
    return adata if copy else None


def _group_of_population(
    adata: AnnData, keys: K.Keys, columns: list[str], populations: pd.Index
) -> np.ndarray:
    """The value of ``columns`` for each population (a string, or a ``"|"``-joined tuple)."""
    check_obs_columns(adata, columns)
    if len(columns) > 1:
        check_no_separator(adata.obs, columns)
    labels = adata.obs[keys.obs_population]
    rows = np.flatnonzero(labels.notna().to_numpy())
    group, first = group_codes(adata.obs.iloc[rows][columns])  # codes: no string per cell
    population = labels.cat.codes.to_numpy()[rows]
    combos = np.unique(population.astype(np.int64) * len(first) + group)
    n_values = np.bincount(combos // len(first), minlength=len(labels.cat.categories))
    mixed = labels.cat.categories[n_values > 1]
    if len(mixed):
        msg = (
            f"`by={columns}` is not constant within populations {mixed.tolist()[:5]}; split by "
            "sample columns (or coarser ones) so each population lies in one group."
        )
        raise ValueError(msg)
    values = adata.obs.iloc[rows[first]][columns].astype(str).agg(K.ID_SEPARATOR.join, axis=1)
    codes, first_cell = np.unique(population, return_index=True)  # one cell per population
    group_of = pd.Series(
        values.to_numpy()[group[first_cell]], index=labels.cat.categories[codes].astype(str)
    )
    return group_of.reindex(populations).to_numpy().astype(str)


def _resolve_values(
    name: str,
    spec: Sequence | float,
    values: list[str],
    taken: set[str],
    rng: np.random.Generator,
) -> set[str]:
    """Turn ``test``/``val`` (values or a fraction) into a set of group values."""
    if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        msg = f"`{name}` must be a fraction (float) or a list of values, got the integer {spec}."
        raise ValueError(msg)
    if isinstance(spec, float):
        if not 0 <= spec < 1:
            msg = f"`{name}` as a fraction must lie in [0, 1), got {spec}."
            raise ValueError(msg)
        free = [v for v in values if v not in taken]
        n = int(round(spec * len(values)))
        return set(rng.choice(free, size=min(n, len(free)), replace=False).tolist())
    if isinstance(spec, str):
        spec = [spec]
    chosen = {K.ID_SEPARATOR.join(map(str, v)) if isinstance(v, tuple) else str(v) for v in spec}
    unknown = sorted(chosen - set(values))
    if unknown:
        msg = f"`{name}` values {unknown} not found among the groups; available: {values[:20]}."
        raise ValueError(msg)
    overlap = sorted(chosen & taken)
    if overlap:
        msg = f"`{name}` values {overlap} are also in `test`."
        raise ValueError(msg)
    return chosen
