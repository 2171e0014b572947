"""`mfm.tl.evaluate`: distances between predicted and observed treated populations."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import make_actual
from .._checks import check_finite
from ..data import RowStore
from ..metrics import distribution_metrics, noise_floor
from ._io import population_pairs

logger = logging.getLogger(__name__)


def evaluate(
    adata: AnnData,
    pred: AnnData,
    *,
    metrics: Sequence[str] = ("w1", "w2", "mmd", "energy", "r2"),
    floor: bool = True,
    max_cells: int | None = 2000,
    random_state: int = 0,
    key_added: str = "mfm",
) -> pd.DataFrame:
    """Compare every predicted population with the observed one.

    Parameters
    ----------
    adata
        Annotated data matrix with the observed populations (after
        :func:`mfm.pp.populations`).
    pred
        Predicted cells from :func:`mfm.tl.predict` or :func:`mfm.tl.baseline`.
    metrics
        Any of ``"w1"``, ``"w2"`` (exact OT, POT ``emd2``), ``"mmd"`` (RBF kernels at
        several bandwidths, see :func:`mfm.metrics.mmd`), ``"energy"`` (energy distance with
        Euclidean distances, pertpy's convention), ``"r2"`` (of the feature means) and
        ``"corr"`` (correlation of feature-feature correlations).
    floor
        Also report each metric's noise floor: its value between two random halves of the
        observed population (:func:`mfm.metrics.noise_floor`; MMD and energy distance
        rescaled to the prediction's sample size, W1/W2 at half size, an upper estimate),
        about the best score a prediction can be expected to reach, in columns
        ``'{metric}_floor'``.
    max_cells
        Cells per population used by W1/W2/MMD (random subsample above it; None: all).
    random_state
        Seed of the subsamples.
    key_added
        Key of the populations written by :func:`mfm.pp.populations`.

    Returns
    -------
    DataFrame with one row per predicted population: ``method``, ``population``,
    ``condition``, ``split``, the sample columns, ``n_observed``, ``n_predicted``, one
    column per metric and, with ``floor=True``, ``'{metric}_floor'``. The rows are also stored
    in ``adata.uns[key_added]['metrics']``, replacing earlier rows of the same method and
    population, so several methods accumulate there.

    Examples
    --------
    >>> pred = mfm.tl.predict(adata, model)
    >>> table = mfm.tl.evaluate(adata, pred)                     # one row per population
    >>> table.groupby("condition")[["w1", "energy", "energy_floor"]].mean()
    >>> mfm.tl.evaluate(adata, mfm.tl.baseline(adata, method="mean_shift"))
    >>> adata.uns["mfm"]["metrics"].groupby("method")["energy"].mean()   # both methods
    """
    keys = K.Keys(key_added)
    make_actual(adata)  # a view would write into its parent's uns
    pairs, table, features = population_pairs(adata, keys)
    _check_prediction(pred, features, keys, adata.uns[keys.uns][keys.params][K.USE_REP])
    method = str(pred.uns.get(K.PREDICTION_UNS, {}).get(K.METHOD, "prediction"))
    sample_keys = list(adata.uns[keys.uns][keys.params][K.SAMPLE_KEY])
    index = {name: i for i, name in enumerate(pairs.names)}
    labels = pred.obs[keys.obs_population].astype(str).to_numpy()

    predicted_rows = RowStore(pred.X)  # reads a backed prediction population by population
    rows = []
    for population in pd.unique(labels):
        if population not in index:
            msg = f"Predicted population {population!r} is not in the populations table of `adata`."
            raise KeyError(msg)
        observed = pairs.population_cells(index[population])
        predicted = predicted_rows.take(np.flatnonzero(labels == population))
        check_finite(predicted, f"The prediction of population {population!r}")
        info = table.loc[population]
        scores = distribution_metrics(
            predicted, observed, metrics, max_cells=max_cells, random_state=random_state
        )
        if floor:
            scores |= _floor(observed, len(predicted), metrics, max_cells, random_state)
        rows.append(
            {
                K.METHOD: method,
                K.POPULATION: population,
                K.CONDITION: info[K.CONDITION],
                K.SPLIT: str(info[K.SPLIT]),
                **{c: info[c] for c in sample_keys},
                "n_observed": len(observed),
                "n_predicted": len(predicted),
                **scores,
            }
        )
    result = pd.DataFrame(rows)
    _store(adata, keys, result)
    logger.info(
        "evaluated %d populations of %r; added uns[%r][%r]",
        len(result),
        method,
        keys.uns,
        keys.metrics,
    )
    return result


def _floor(
    observed: np.ndarray,
    n_predicted: int,
    metrics: Sequence[str],
    max_cells: int | None,
    random_state: int,
) -> dict[str, float]:
    """``{'{metric}_floor': value}``; NaN for populations too small to halve."""
    if len(observed) < 4:
        return {f"{name}_floor": np.nan for name in dict.fromkeys(metrics)}
    values = noise_floor(
        observed, metrics, n_predicted=n_predicted, max_cells=max_cells, random_state=random_state
    )
    return {f"{name}_floor": value for name, value in values.items()}


def _check_prediction(pred: AnnData, features: list[str], keys: K.Keys, use_rep: str) -> None:
    if keys.obs_population not in pred.obs:
        msg = f"`pred.obs[{keys.obs_population!r}]` not found; pass the result of `mfm.tl.predict`."
        raise KeyError(msg)
    if list(pred.var_names) != list(features):
        msg = "`pred.var_names` differ from the features of `adata`; was `pred` made from it?"
        raise ValueError(msg)
    made_on = pred.uns.get(K.PREDICTION_UNS, {}).get(K.USE_REP)
    if made_on is not None and str(made_on) != str(use_rep):
        msg = (
            f"`pred` was made on `use_rep={made_on!r}`, but `adata`'s populations use "
            f"`use_rep={use_rep!r}`; evaluate against the data the prediction was made from."
        )
        raise ValueError(msg)


def _store(adata: AnnData, keys: K.Keys, result: pd.DataFrame) -> None:
    """Replace rows of the same (method, population) in ``uns[key]['metrics']``."""
    previous = adata.uns[keys.uns].get(keys.metrics)
    if previous is not None:
        same = previous.set_index([K.METHOD, K.POPULATION]).index.isin(
            result.set_index([K.METHOD, K.POPULATION]).index
        )
        result = pd.concat([previous[~same], result], ignore_index=True)
    adata.uns[keys.uns][keys.metrics] = result.reset_index(drop=True)
