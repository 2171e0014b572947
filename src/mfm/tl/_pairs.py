"""Read the populations written by `mfm.pp.populations` into a `PopulationPairs`."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._checks import check_uns
from .._utils import feature_rows
from ..data import PopulationPairs


def populations_table(adata: AnnData, keys: K.Keys) -> tuple[pd.DataFrame, dict]:
    """The populations table and params, or a `KeyError` asking for `mfm.pp.populations`."""
    table = check_uns(adata, keys.uns, keys.populations, "mfm.pp.populations")
    params = check_uns(adata, keys.uns, keys.params, "mfm.pp.populations")
    if keys.obs_population not in adata.obs:
        msg = f"`adata.obs[{keys.obs_population!r}]` not found; run `mfm.pp.populations` first."
        raise KeyError(msg)
    return table, params


def population_pairs(
    adata: AnnData, keys: K.Keys, treatments: list[str] | None = None
) -> tuple[PopulationPairs, pd.DataFrame, list[str]]:
    """Features, cells and control pairing of every population, in table order.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.populations`.
    keys
        Keys of the workflow.
    treatments
        Treatment names fixing the codes (a trained model's); default: the table's
        non-control conditions, sorted.

    Returns
    -------
    The pairs, the populations table and the feature names.
    """
    table, params = populations_table(adata, keys)
    use_rep = params[K.USE_REP]
    x, features = feature_rows(adata, None if use_rep == "X" else use_rep)
    rows_of = _rows_by_population(adata.obs[keys.obs_population])
    names = table.index.astype(str).tolist()
    missing = [p for p in names if p not in rows_of]
    if missing:
        msg = (
            f"Populations {missing[:5]} of `uns[{keys.uns!r}]['populations']` have no cells in "
            f"`obs[{keys.obs_population!r}]`; re-run `mfm.pp.populations`."
        )
        raise ValueError(msg)
    control = params["control"]
    conditions = table[K.CONDITION].astype(str)
    if treatments is None:
        treatments = sorted(set(conditions) - {control})
    codes = {name: i for i, name in enumerate(treatments)}
    treatment = np.array([-1 if c == control else codes.get(c, -2) for c in conditions])
    position = {name: i for i, name in enumerate(names)}
    pairs = PopulationPairs(
        x=x,
        cells=[rows_of[p] for p in names],
        names=names,
        source=np.array([position[s] for s in table[K.SOURCE].astype(str)]),
        treatment=treatment,
        treatments=list(treatments),
    )
    return pairs, table, features


def _rows_by_population(column: pd.Series) -> dict[str, np.ndarray]:
    """Population id -> its row positions, ascending.

    From the category codes: no string per cell, so millions of cells cost one integer sort.
    """
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    codes = column.cat.codes.to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(column.cat.categories) + 1))
    return {
        str(name): order[bounds[i] : bounds[i + 1]]
        for i, name in enumerate(column.cat.categories)
        if bounds[i + 1] > bounds[i]
    }


def trained_treatments(adata: AnnData, keys: K.Keys) -> list[str]:
    """Treatments of the populations in the ``"train"`` split, sorted: the model's one-hot order.

    Validation populations of other treatments are left out of the validation loss, with a
    warning, and :func:`mfm.tl.predict` refuses them.
    """
    table, params = populations_table(adata, keys)
    conditions = table[K.CONDITION].astype(str)
    split = table[K.SPLIT].astype(str)
    control = str(params["control"])
    trained = sorted(set(conditions[split == K.TRAIN]) - {control})
    unseen = sorted(set(conditions[split == K.VAL]) - {*trained, control})
    if unseen:
        msg = (
            f"Validation populations of treatments {unseen} are left out of the validation loss: "
            "no training population has them, so the model cannot predict them."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
    return trained
