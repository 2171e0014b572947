"""`mfm.tl.baseline`: the reference predictions every method is compared with."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._checks import check_choice, check_positive_int
from .._utils import as_numpy_rng
from ..data import PopulationPairs
from ..metrics import energy_distance
from ..metrics._inputs import subsample
from ._io import population_pairs, prediction_anndata, resolve_targets

logger = logging.getLogger(__name__)

BASELINES = ("identity", "mean_shift", "nearest_population")


def baseline(
    adata: AnnData,
    *,
    method: Literal["identity", "mean_shift", "nearest_population"] = "identity",
    groupby: str | None = None,
    populations: Sequence[str] | None = None,
    max_cells: int = 500,
    random_state: int = 0,
    key_added: str = "mfm",
) -> AnnData:
    """Predict treated populations without learning a flow.

    Every shift is learned on the ``"train"`` pairs of :func:`mfm.pp.split` only, so held-out
    patients are predicted from the training patients, as the flows are.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.populations` (and :func:`mfm.pp.split`).
    method
        ``"identity"``: the control cells themselves (no effect).
        ``"mean_shift"``: the control cells shifted by the average (treated mean - control
        mean) of the training pairs with the same treatment (and the same ``groupby`` group).
        ``"nearest_population"``: the control cells shifted by the response (treated mean -
        control mean) of the one training pair with the same treatment (and group) whose
        control population is closest to this control population (energy distance).
    groupby
        For ``"mean_shift"`` and ``"nearest_population"``: a column constant within each
        population (a sample column of :func:`mfm.pp.populations`, or any ``adata.obs``
        column such as a cell type or culture); shifts are then learned per group. A group
        without a training pair of the treatment falls back to the treatment-wide answer,
        with a warning naming the populations.
    populations
        Ids of treated populations to predict; default: all.
    max_cells
        ``"nearest_population"``: control cells per population in the energy distances
        (random subsample above it).
    random_state
        Seed of those subsamples.
    key_added
        Key of the populations written by :func:`mfm.pp.populations`.

    Returns
    -------
    AnnData of predicted cells, laid out like the result of :func:`mfm.tl.predict`,
    with ``uns['mfm_prediction']`` holding ``method`` (``"mean_shift"``, or e.g.
    ``"mean_shift[cell_type]"`` with ``groupby``) and the options.

    Raises
    ------
    ValueError
        When a predicted population's treatment has no training pair (nothing to learn a
        shift from), or ``groupby`` varies within a population.

    Examples
    --------
    >>> per_type = mfm.tl.baseline(adata, method="mean_shift", groupby="cell_type")
    >>> mfm.tl.evaluate(adata, per_type)
    """
    check_choice("method", method, BASELINES)
    check_positive_int("max_cells", max_cells, minimum=2)
    if groupby is not None and method == "identity":
        msg = "`groupby` applies to method='mean_shift' or 'nearest_population', not 'identity'."
        raise ValueError(msg)
    keys = K.Keys(key_added)
    pairs, table, features = population_pairs(adata, keys)
    targets = resolve_targets(pairs, populations)
    shifts = np.zeros((len(targets), pairs.n_features), dtype=np.float32)
    if method != "identity":
        train = pairs.treated(np.flatnonzero(table[K.SPLIT].astype(str).to_numpy() == K.TRAIN))
        groups = None if groupby is None else population_groups(adata, table, keys, groupby)
        candidates = _candidates(pairs, train, targets, groups)
        if method == "mean_shift":
            shifts = _mean_shifts(pairs, candidates)
        else:
            rng = as_numpy_rng(random_state)
            shifts = _nearest_shifts(pairs, targets, candidates, max_cells, rng)
    predicted = [
        pairs.population_cells(pairs.control[t]) + s for t, s in zip(targets, shifts, strict=True)
    ]
    pred = prediction_anndata(adata, pairs, table, targets, predicted, features, keys, True)
    label = method if groupby is None else f"{method}[{groupby}]"
    pred.uns[K.PREDICTION_UNS] = {
        K.METHOD: label,
        "key_added": key_added,
        "groupby": "none" if groupby is None else groupby,
        K.USE_REP: str(adata.uns[keys.uns][keys.params][K.USE_REP]),
    }
    logger.info("%s baseline for %d populations", label, len(targets))
    return pred


def population_groups(
    adata: AnnData, table: pd.DataFrame, keys: K.Keys, groupby: str
) -> np.ndarray:
    """The ``groupby`` value of every population (table order), checked constant within each."""
    if groupby in table.columns and groupby not in (K.CONDITION, K.N_CELLS, K.SOURCE, K.SPLIT):
        return table[groupby].astype(str).to_numpy()
    if groupby not in adata.obs.columns:
        msg = (
            f"`groupby={groupby!r}` is neither a sample column of the populations table "
            f"{list(table.columns)} nor a column of `adata.obs`."
        )
        raise KeyError(msg)
    values = adata.obs[groupby].astype(str)
    population = adata.obs[keys.obs_population]
    per_population = values.groupby(population, observed=True).unique()
    mixed = [str(p) for p, v in per_population.items() if len(v) > 1]
    if mixed:
        msg = (
            f"`adata.obs[{groupby!r}]` must be constant within each population (e.g. a cell type "
            f"that is part of `sample_key`); populations {mixed[:5]} mix several values."
        )
        raise ValueError(msg)
    return per_population.reindex(table.index.astype(str)).map(lambda v: v[0]).to_numpy()


def _candidates(
    pairs: PopulationPairs, train: np.ndarray, targets: np.ndarray, groups: np.ndarray | None
) -> list[np.ndarray]:
    """Training pairs each target may learn from: same treatment (and group, else all groups)."""
    out, fallback = [], []
    for t in targets:
        same = train[pairs.treatment[train] == pairs.treatment[t]]
        if len(same) == 0:
            msg = (
                f"Population {pairs.names[t]!r} has treatment "
                f"{pairs.treatments[pairs.treatment[t]]!r}, which no training pair has; there is "
                "no shift to learn it from (check `mfm.pp.split`)."
            )
            raise ValueError(msg)
        if groups is not None:
            in_group = same[groups[same] == groups[t]]
            if len(in_group) == 0:
                fallback.append(pairs.names[t])
            else:
                same = in_group
        out.append(same)
    if fallback:
        msg = (
            f"{len(fallback)} populations ({fallback[:5]}) have no training pair of their "
            "treatment in their group; they get the treatment-wide answer instead."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
    return out


def _response(pairs: PopulationPairs, pair: int) -> np.ndarray:
    """Treated mean - control mean of one pair."""
    control = pairs.population_cells(pairs.control[pair])
    return pairs.population_cells(pair).mean(0) - control.mean(0)


def _mean_shifts(pairs: PopulationPairs, candidates: list[np.ndarray]) -> np.ndarray:
    """Average response of each target's candidate pairs."""
    responses = {i: _response(pairs, i) for i in np.unique(np.concatenate(candidates))}
    return np.stack(
        [np.mean([responses[i] for i in chosen], axis=0) for chosen in candidates]
    ).astype(np.float32)


def _nearest_shifts(
    pairs: PopulationPairs,
    targets: np.ndarray,
    candidates: list[np.ndarray],
    max_cells: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Response of the candidate pair whose control is closest (energy distance) to the target's."""
    used = [pairs.control[targets], *(pairs.control[chosen] for chosen in candidates)]
    controls = np.unique(np.concatenate(used))
    sampled = {s: subsample(pairs.population_cells(s), max_cells, rng) for s in controls}
    distance: dict[tuple[int, int], float] = {}
    shifts = []
    for t, chosen in zip(targets, candidates, strict=True):
        s = pairs.control[t]
        for c in np.unique(pairs.control[chosen]):
            if (s, c) not in distance:
                distance[s, c] = distance[c, s] = energy_distance(
                    sampled[s], sampled[c], max_cells=None
                )
        nearest = min(chosen, key=lambda i: distance[s, pairs.control[i]])
        shifts.append(_response(pairs, nearest))
    return np.stack(shifts).astype(np.float32)
