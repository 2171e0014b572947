"""`mfm.tl.baseline`: the reference predictions every method is compared with."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
from anndata import AnnData

from .. import _keys as K
from .._checks import check_choice
from ._pairs import population_pairs
from ._predict import _resolve_targets, prediction_anndata

logger = logging.getLogger(__name__)

BASELINES = ("identity", "mean_shift")


def baseline(
    adata: AnnData,
    *,
    method: Literal["identity", "mean_shift"] = "identity",
    populations: Sequence[str] | None = None,
    key_added: str = "mfm",
) -> AnnData:
    """Predict treated populations without learning a flow.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.populations` (and :func:`mfm.pp.split`).
    method
        ``"identity"``: the control cells themselves (no effect). ``"mean_shift"``: the
        control cells shifted by the average (treated mean - control mean) of the
        training pairs with the same treatment.
    populations
        Ids of treated populations to predict; default: all.
    key_added
        Key of the populations written by :func:`mfm.pp.populations`.

    Returns
    -------
    AnnData of predicted cells, laid out like the result of :func:`mfm.tl.predict`,
    with ``uns['mfm_prediction']['method']`` set to ``method``.
    """
    check_choice("method", method, BASELINES)
    keys = K.Keys(key_added)
    pairs, table, features = population_pairs(adata, keys)
    targets = _resolve_targets(pairs, populations)
    shifts = np.zeros((len(pairs.treatments), pairs.n_features), dtype=np.float32)
    if method == "mean_shift":
        train = np.flatnonzero(table[K.SPLIT].astype(str).to_numpy() == K.TRAIN)
        shifts = _mean_shifts(pairs, pairs.pairs(train))
    predicted = [
        pairs.population_cells(pairs.source[t]) + shifts[pairs.treatment[t]] for t in targets
    ]
    pred = prediction_anndata(adata, pairs, table, targets, predicted, features, keys, True)
    pred.uns[K.PREDICTION_UNS] = {K.METHOD: method, "key_added": key_added}
    logger.info("%s baseline for %d populations", method, len(targets))
    return pred


def _mean_shifts(pairs, train_pairs: np.ndarray) -> np.ndarray:
    """Average (treated mean - control mean) per treatment over ``train_pairs``."""
    shifts = np.zeros((len(pairs.treatments), pairs.n_features), dtype=np.float32)
    for code in range(len(pairs.treatments)):
        chosen = train_pairs[pairs.treatment[train_pairs] == code]
        if len(chosen) == 0:
            continue  # no training pair of this treatment: no shift to learn
        deltas = [
            pairs.population_cells(i).mean(0) - pairs.population_cells(pairs.source[i]).mean(0)
            for i in chosen
        ]
        shifts[code] = np.mean(deltas, axis=0)
    return shifts
