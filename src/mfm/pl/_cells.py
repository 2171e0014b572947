"""The cells a prediction plot compares: control (source), observed and predicted, per population.

Shared by `predictions`, `joint_embedding`, `effects`, `marker_densities` and `trajectories`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .._anndata import get_features
from .._keys import (
    CONDITION,
    ID_SEPARATOR,
    POPULATIONS_VERB,
    PREDICT_VERB,
    SOURCE,
    USE_REP,
    Keys,
)
from ._utils import read_table

#: Names of the three groups of cells, in drawing order (context first).
CONTROL, OBSERVED, PREDICTED = "control (source)", "observed", "predicted"
GROUPS = (CONTROL, OBSERVED, PREDICTED)


@dataclass
class Observed:
    """What the plots need from the observed data: populations table, features, their names."""

    adata: AnnData
    keys: Keys
    table: pd.DataFrame
    use_rep: str | None
    names: list[str]

    def cells(self, population: str) -> np.ndarray:
        """Dense ``(n, d)`` features of the observed cells of ``population``."""
        labels = self.adata.obs[self.keys.obs_population]
        return get_features(self.adata[(labels == population).to_numpy()], self.use_rep)[0]

    def check_treated(self, population: str) -> None:
        """Raise unless ``population`` is a treated population of the table."""
        if population not in self.table.index:
            msg = (
                f"Population {population!r} not in `adata.uns[{self.keys.uns!r}]['populations']`; "
                f"ids look like {list(self.table.index[:5])}."
            )
            raise KeyError(msg)
        if self.table.loc[population, SOURCE] == population:
            msg = f"Population {population!r} is a control population; pick a treated one."
            raise ValueError(msg)


def read_observed(adata: AnnData, key: str) -> Observed:
    """Check the populations of ``adata`` and return its features as the model was trained on."""
    keys = Keys(key)
    table = read_table(adata, keys.uns, keys.populations, POPULATIONS_VERB, (SOURCE,))
    if keys.obs_population not in adata.obs.columns:
        msg = (
            f"`adata.obs[{keys.obs_population!r}]` not found; run `{POPULATIONS_VERB}` "
            f"with `key_added={key!r}` first."
        )
        raise KeyError(msg)
    use_rep = adata.uns[keys.uns].get(keys.params, {}).get(USE_REP)
    names = get_features(adata[:0], use_rep)[1]
    return Observed(adata, keys, table, use_rep, names)


def check_pred(pred: AnnData, observed: Observed) -> None:
    """Raise unless ``pred`` holds predicted populations in the observed feature space."""
    if observed.keys.obs_population not in pred.obs.columns:
        msg = (
            f"`pred.obs[{observed.keys.obs_population!r}]` not found; pass the AnnData returned "
            f"by `{PREDICT_VERB}` (with `key_added={observed.keys.key_added!r}`)."
        )
        raise KeyError(msg)
    if list(map(str, pred.var_names)) != observed.names:
        msg = (
            f"`pred.var_names` ({list(pred.var_names)[:5]}...) differ from the features of the "
            f"observed data ({observed.names[:5]}...); predict with `{PREDICT_VERB}` on this "
            "AnnData."
        )
        raise ValueError(msg)


def predicted_populations(pred: AnnData, observed: Observed) -> list[str]:
    """The populations ``pred`` holds, in category order (else order of appearance)."""
    column = pred.obs[observed.keys.obs_population]
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna())
        return [str(c) for c in column.cat.categories if c in present]
    return [str(c) for c in pd.unique(column.dropna())]


def resolve_populations(
    population: str | Sequence[str] | None, pred: AnnData, observed: Observed
) -> list[str]:
    """The population ids to show: ``population`` (one or a list), or all of ``pred``."""
    ids = (
        predicted_populations(pred, observed)
        if population is None
        else [population]
        if isinstance(population, str)
        else list(population)
    )
    if not ids:
        msg = "`population` is empty; pass a population id or a list of them."
        raise ValueError(msg)
    return ids


def population_cells(pred: AnnData, observed: Observed, population: str) -> dict[str, np.ndarray]:
    """The ``(n, d)`` control (source), observed and predicted cells of ``population``."""
    observed.check_treated(population)
    keys = observed.keys
    predicted = (pred.obs[keys.obs_population] == population).to_numpy()
    if not predicted.any():
        msg = (
            f"`pred` holds no predicted cell of population {population!r}; "
            f"run `{PREDICT_VERB}(..., populations=[{population!r}, ...])`."
        )
        raise ValueError(msg)
    source = _source_of(pred, keys, predicted, observed.table.loc[population, SOURCE])
    return {
        CONTROL: observed.cells(source),
        OBSERVED: observed.cells(population),
        PREDICTED: get_features(pred[predicted], None)[0],
    }


def _source_of(pred: AnnData, keys: Keys, predicted: np.ndarray, paired: str) -> str:
    """Return the control population the predictions started from (``paired`` if unrecorded)."""
    if keys.obs_source not in pred.obs.columns:
        return paired
    sources = pd.unique(pred.obs[keys.obs_source].to_numpy()[predicted])
    if len(sources) != 1:
        msg = (
            f"`pred.obs[{keys.obs_source!r}]` gives several sources {list(sources)[:5]} "
            "for one predicted population; expected one control population."
        )
        raise ValueError(msg)
    return str(sources[0])


def title(table: pd.DataFrame, population: str) -> str:
    """The population id, with its condition in brackets only when the id does not hold it."""
    if CONDITION not in table.columns:
        return population
    condition = str(table.loc[population, CONDITION])
    parts = population.split(ID_SEPARATOR)
    return population if condition in parts else f"{population} ({condition})"


def standardised_effects(cells: list[dict[str, np.ndarray]], of: str = OBSERVED) -> np.ndarray:
    r"""Per feature, the mean over populations of :math:`|\bar x_{of} - \bar x_0| / s_0`.

    :math:`\bar x_0`, :math:`s_0` are the mean and standard deviation of the control cells of
    each population (a feature constant in the control gets :math:`s_0 = 1`).
    """
    shifts = []
    for groups in cells:
        scale = groups[CONTROL].std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        shifts.append(np.abs(groups[of].mean(axis=0) - groups[CONTROL].mean(axis=0)) / scale)
    return np.mean(shifts, axis=0)


def top_features(effects: np.ndarray, n: int) -> list[int]:
    """Indices of the ``n`` largest ``effects``, largest first (ties: lower index first)."""
    return [int(i) for i in np.argsort(-effects, kind="stable")[:n]]


def subsample(x: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``n`` rows of ``x`` drawn without replacement (all rows, in order, if fewer)."""
    if n is None or len(x) <= n:
        return x
    return x[np.sort(rng.choice(len(x), n, replace=False))]
