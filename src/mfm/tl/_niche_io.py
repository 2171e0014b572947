"""AnnData -> arrays for the niche verbs and plots: real niches of `pp.niches`, generated niches.

One reader for `fit_niches`, `evaluate_niches` and the niche plots, so that every one of them
checks that the niches were built on the cells of the AnnData it is given (niche indices are
positions: after subsetting they would point at other cells).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import check_obs_columns, check_uns, get_features
from ..data import PointClouds

#: Condition name of unconditional niches.
UNCONDITIONAL = "all"


@dataclass(frozen=True)
class Niches:
    """The niches of an AnnData: clouds of features, their centre cells and labels.

    Attributes
    ----------
    clouds
        One cloud per kept centre cell, in the feature space of ``use_rep``.
    centres
        ``(n_niches,)`` obs positions of the centre cells.
    labels
        ``(n_niches,)`` condition codes into ``conditions``, or ``None`` (unconditional).
    conditions
        Condition names (categories in order, or sorted values), only those present.
    features
        Feature names of the points.
    use_rep
        The representation the niches were built from.
    """

    clouds: PointClouds
    centres: np.ndarray
    labels: np.ndarray | None
    conditions: list[str]
    features: list[str]
    use_rep: str


def niche_indices(adata: AnnData, keys: K.NicheKeys) -> tuple[dict, np.ndarray]:
    """The parameters and ``(n_obs, k)`` neighbour positions of :func:`mfm.pp.niches`, checked.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.niches`.
    keys
        Keys of the niche workflow.

    Returns
    -------
    ``uns[key]['params']`` and ``obsm['{key}_indices']``.

    Raises
    ------
    KeyError
        When :func:`mfm.pp.niches` has not been run (with this key).
    ValueError
        When ``adata`` does not have the cells the niches were built on (e.g. it was subset
        since): the positions would index other cells.
    """
    params = check_uns(adata, keys.uns, keys.params, K.NICHES_VERB)
    if keys.obsm_indices not in adata.obsm:
        msg = f"`adata.obsm[{keys.obsm_indices!r}]` not found; run `{K.NICHES_VERB}` first."
        raise KeyError(msg)
    indices = np.asarray(adata.obsm[keys.obsm_indices])
    if params.get(K.N_OBS) != adata.n_obs or indices.max(initial=0) >= adata.n_obs:
        msg = (
            f"`adata` has {adata.n_obs} cells but its niches were built on {params.get(K.N_OBS)}: "
            f"niche indices are positions, so run `{K.NICHES_VERB}` again after subsetting."
        )
        raise ValueError(msg)
    return params, indices


def cell_features(adata: AnnData, keys: K.NicheKeys) -> tuple[np.ndarray, list[str]]:
    """Float64 features the niches are made of (``use_rep`` of `pp.niches`) and their names.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.niches` (checked as in :func:`niche_indices`).
    keys
        Keys of the niche workflow.

    Returns
    -------
    ``(n_obs, d)`` features and the ``d`` feature names.
    """
    params, _ = niche_indices(adata, keys)
    features, names = get_features(adata, params.get(K.USE_REP))
    return np.asarray(features, dtype=np.float64), names


def real_niches(adata: AnnData, keys: K.NicheKeys, condition_key: str | None) -> Niches:
    """Read the niches written by :func:`mfm.pp.niches` (checked) and their centre labels.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.niches`.
    keys
        Keys of the niche workflow.
    condition_key
        Column of ``adata.obs`` labelling each niche by its centre cell, or ``None``.

    Returns
    -------
    The :class:`Niches`; centres without a condition value are left out with a warning.
    """
    params, indices = niche_indices(adata, keys)
    use_rep = str(params[K.USE_REP])
    features, names = get_features(adata, use_rep)
    centres = np.arange(adata.n_obs)
    labels, conditions = None, []
    if condition_key is not None:
        centres, labels, conditions = _centre_labels(adata, condition_key)
    clouds = PointClouds.from_neighbors(features, indices[centres], labels)
    return Niches(clouds, centres, labels, conditions, names, use_rep)


def generated_params(generated: AnnData, keys: K.NicheKeys) -> dict:
    """The ``uns[key]['params']`` of generated niches; `KeyError` when ``generated`` lacks them.

    Parameters
    ----------
    generated
        Niches returned by :func:`mfm.tl.generate_niches`.
    keys
        Keys of the niche workflow.

    Returns
    -------
    The generation parameters.
    """
    params = generated.uns.get(keys.uns, {}).get(keys.params)
    if params is None or keys.key_added not in generated.obs.columns:
        msg = (
            f"`generated` lacks `uns[{keys.uns!r}]['params']` or `obs[{keys.key_added!r}]`; "
            f"pass the AnnData returned by `{K.GENERATE_VERB}` (same `key_added`)."
        )
        raise KeyError(msg)
    return params


def generated_clouds(
    generated: AnnData, keys: K.NicheKeys, condition_key: str | None
) -> tuple[list[np.ndarray], np.ndarray]:
    """The generated clouds (float64, in niche-id order) and the condition of each.

    Parameters
    ----------
    generated
        Niches returned by :func:`mfm.tl.generate_niches`.
    keys
        Keys of the niche workflow.
    condition_key
        The generating model's condition column, or ``None`` (every niche is ``"all"``).

    Returns
    -------
    The ``(n_i, d)`` clouds and an object array of their condition names.
    """
    ids = pd.Categorical(generated.obs[keys.key_added])
    codes = ids.codes
    order = np.argsort(codes, kind="stable")
    x = np.asarray(generated.X, dtype=np.float64)[order]
    bounds = np.searchsorted(codes[order], np.arange(len(ids.categories) + 1))
    keep = np.diff(bounds) > 0  # unused categories hold no niche
    clouds = [x[a:b] for a, b, k in zip(bounds[:-1], bounds[1:], keep, strict=True) if k]
    if condition_key is None:
        return clouds, np.full(len(clouds), UNCONDITIONAL, dtype=object)
    first = order[bounds[:-1][keep]]
    labels = generated.obs[condition_key].astype(str).to_numpy()[first]
    return clouds, labels.astype(object)


def _centre_labels(adata: AnnData, condition_key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Centre cells with a condition value, their codes, and the condition names."""
    check_obs_columns(adata, [condition_key])
    values = adata.obs[condition_key]
    keep = values.notna().to_numpy()
    if not keep.any():
        msg = f"`adata.obs[{condition_key!r}]` has no values; pick another `condition_key`."
        raise ValueError(msg)
    if not keep.all():
        msg = f"Left out {int((~keep).sum())} niches whose centre has no `{condition_key}` value."
        warnings.warn(msg, UserWarning, stacklevel=3)
    present = values[keep].astype(str)
    if isinstance(values.dtype, pd.CategoricalDtype):
        order = [str(c) for c in values.cat.categories if str(c) in set(present)]
    else:
        order = sorted(set(present))
    codes = pd.Categorical(present, categories=order).codes.astype(np.int64)
    return np.flatnonzero(keep), codes, order
