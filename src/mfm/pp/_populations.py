"""`mfm.pp.populations`: which cells form which population, and each population's control."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import (
    check_no_separator,
    check_obs_columns,
    feature_matrix,
    group_codes,
    make_actual,
)
from .._checks import check_positive_int

logger = logging.getLogger(__name__)

#: Separator between the parts of a population id, e.g. ``"Patient1|BCRXL"``.
ID_SEPARATOR = K.ID_SEPARATOR


def populations(
    adata: AnnData,
    *,
    sample_key: str | Sequence[str],
    condition_key: str,
    control: str,
    use_rep: str | None = None,
    min_cells: int = 50,
    key_added: str = "mfm",
    copy: bool = False,
) -> AnnData | None:
    """Define the cell populations and pair every treated population with its control.

    A *sample* is one value of ``sample_key`` (e.g. a patient, or patient x culture x
    replicate); a *population* is the cells of one sample under one condition. Every sample
    must have a control population (``condition == control``), which is the source that
    the flow transports to each of the sample's treated populations.

    Parameters
    ----------
    adata
        Annotated data matrix; cells in rows.
    sample_key
        Column of ``adata.obs``, or a list of columns (e.g. ``["patient", "culture",
        "replicate"]``), identifying the sample of each cell.
    condition_key
        Column of ``adata.obs`` with the condition (treatment) of each cell.
    control
        Value of ``condition_key`` that marks control (untreated) cells.
    use_rep
        Features to learn on: ``None`` for ``adata.X`` (dense or sparse), a key of
        ``adata.layers``, or a key of ``adata.obsm`` (e.g. ``"X_pca"``).
    min_cells
        Populations with fewer cells are dropped with a warning naming them; treated
        populations whose control was dropped are dropped with it.
    key_added
        Prefix of the keys written (see Returns).
    copy
        Return a copy of ``adata`` with the keys added, instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy, with ``copy=True``); sets

    - ``adata.obs['{key_added}_population']``: categorical population id of each cell
      (NaN for cells in no population).
    - ``adata.uns[key_added]['populations']``: DataFrame indexed by population id with the
      sample columns, ``condition``, ``n_cells``, ``source`` (id of the control population
      of the same sample) and ``split`` (all ``"train"`` until :func:`mfm.pp.split`).
    - ``adata.uns[key_added]['params']``: the parameters, as plain types.

    Any earlier ``adata.uns[key_added]`` (a fitted history, metrics) is replaced. A view is
    made an actual AnnData first (with a warning), so its parent is never changed.

    Examples
    --------
    >>> adata = mfm.datasets.organoid_screen()
    >>> mfm.pp.populations(
    ...     adata, sample_key=["patient", "culture", "replicate"],
    ...     condition_key="treatment", control="control",
    ... )
    """
    adata = adata.copy() if copy else adata
    sample_keys = [sample_key] if isinstance(sample_key, str) else list(sample_key)
    make_actual(adata)
    _check_inputs(adata, sample_keys, condition_key, control, use_rep, min_cells)
    keys = K.Keys(key_added)

    table, labels = _population_table(adata.obs, sample_keys, condition_key, control)
    table, labels = _drop_small(table, labels, min_cells)

    adata.obs[keys.obs_population] = pd.Categorical(labels).set_categories(table.index.tolist())
    adata.uns[keys.uns] = {
        keys.populations: table,
        keys.params: {
            K.SAMPLE_KEY: sample_keys,
            K.CONDITION_KEY: condition_key,
            K.CONTROL: str(control),
            K.USE_REP: "X" if use_rep is None else use_rep,
            K.MIN_CELLS: int(min_cells),
        },
    }
    logger.info(
        "found %d populations (%d controls); added obs[%r], uns[%r]",
        len(table),
        int((table[K.CONDITION] == str(control)).sum()),
        keys.obs_population,
        keys.uns,
    )
    return adata if copy else None


def _check_inputs(
    adata: AnnData,
    sample_keys: list[str],
    condition_key: str,
    control: str,
    use_rep: str | None,
    min_cells: int,
) -> None:
    if not sample_keys:
        msg = "`sample_key` must name at least one column of `adata.obs`."
        raise ValueError(msg)
    check_obs_columns(adata, [*sample_keys, condition_key])
    reserved = [column for column in sample_keys if column in K.RESERVED_COLUMNS]
    if reserved:
        msg = (
            f"Sample column {reserved[0]!r} has the name of a column of the populations table "
            f"({list(K.RESERVED_COLUMNS)}); rename it in `adata.obs` first."
        )
        raise ValueError(msg)
    if condition_key in sample_keys:
        msg = f"`condition_key={condition_key!r}` must not also be a `sample_key`."
        raise ValueError(msg)
    if adata.obs[[*sample_keys, condition_key]].isna().any(axis=None):
        msg = (
            f"`adata.obs` has missing values in {[*sample_keys, condition_key]}; fill or drop them."
        )
        raise ValueError(msg)
    conditions = {str(v) for v in pd.unique(adata.obs[condition_key])}
    if str(control) not in conditions:
        msg = (
            f"Control label {control!r} not found in `adata.obs[{condition_key!r}]`; "
            f"values are {sorted(conditions)[:20]}."
        )
        raise ValueError(msg)
    check_positive_int("min_cells", min_cells)
    check_no_separator(adata.obs, [*sample_keys, condition_key])
    feature_matrix(adata, use_rep)  # raises on unknown keys and NaN/inf, without a dense copy


def _population_table(
    obs: pd.DataFrame, sample_keys: list[str], condition_key: str, control: str
) -> tuple[pd.DataFrame, pd.Categorical]:
    """One row per (sample, condition); the population label of every cell (categorical).

    Cells are grouped by the integer codes of their columns, and strings are built for the
    populations only (not per cell), so millions of cells cost a few integer passes.
    """
    group, first = group_codes(obs[[*sample_keys, condition_key]])
    parts = obs.iloc[first][sample_keys].astype(str)
    sample_ids = parts.agg(ID_SEPARATOR.join, axis=1).to_numpy()
    conditions = obs[condition_key].iloc[first].astype(str).to_numpy()
    names = np.char.add(np.char.add(sample_ids.astype(str), ID_SEPARATOR), conditions.astype(str))
    labels = pd.Categorical.from_codes(group, categories=names)

    table = obs.iloc[first][sample_keys].copy()
    table.index = pd.Index(names, name=K.POPULATION)
    table[K.CONDITION] = conditions
    table[K.N_CELLS] = np.bincount(group, minlength=len(first))
    sample_of = dict(zip(table.index, sample_ids, strict=True))
    controls = {sample_of[p]: p for p in table.index[table[K.CONDITION] == str(control)]}
    missing = sorted({s for s in sample_ids if s not in controls})
    if missing:
        msg = (
            f"{len(missing)} samples have no control population ({condition_key} == {control!r}): "
            f"{missing[:10]}. Every sample of `sample_key` needs control cells."
        )
        raise ValueError(msg)
    table[K.SOURCE] = [controls[sample_of[p]] for p in table.index]
    table[K.SPLIT] = K.TRAIN
    for column in sample_keys:  # keep the user's values, but as plain strings for h5ad
        if not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = table[column].astype(str)
    table = table.sort_values([*sample_keys, K.CONDITION], kind="stable")
    return table, labels


def _drop_small(
    table: pd.DataFrame, labels: pd.Categorical, min_cells: int
) -> tuple[pd.DataFrame, pd.Categorical]:
    """Drop populations under ``min_cells`` and treated populations whose control was dropped."""
    small = table.index[table[K.N_CELLS] < min_cells]
    orphans = table.index[table[K.SOURCE].isin(small) & ~table.index.isin(small)]
    dropped = small.append(orphans)
    if len(dropped) == len(table):
        orphaned = f", the other {len(orphans)} lost their control" if len(orphans) else ""
        msg = (
            f"No population is left: {len(small)} of {len(table)} have fewer than "
            f"`min_cells={min_cells}` cells{orphaned} (largest: {int(table[K.N_CELLS].max())}); "
            "lower `min_cells`."
        )
        raise ValueError(msg)
    if len(dropped):
        warnings.warn(
            f"Dropped {len(small)} populations with fewer than {min_cells} cells: "
            f"{small.tolist()[:20]}"
            + (
                f", and {len(orphans)} whose control was dropped: {orphans.tolist()[:20]}"
                if len(orphans)
                else ""
            ),
            UserWarning,
            stacklevel=3,
        )
        table = table.drop(index=dropped)
        labels = labels.remove_categories(dropped.tolist())
    return table, labels
