"""Predicted against observed cells of treated populations, on two chosen features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._keys import CONDITION, SOURCE, USE_REP, Keys
from .._utils import get_features
from ._utils import (
    GREY,
    POPULATIONS_VERB,
    PREDICT_VERB,
    grid_axes,
    new_axes,
    palette,
    read_table,
    resolve_components,
    show_or_return,
)

#: Parameter of ``uns[key]['params']`` naming the features the model was trained on.


def predictions(
    adata: AnnData,
    pred: AnnData,
    *,
    population: str | Sequence[str],
    components: Sequence[int | str] = (0, 1),
    key: str = "mfm",
    ncols: int = 4,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | list[Axes] | Figure | None:
    """Scatter predicted and observed cells of treated populations on two features.

    For each treated population ``p``, one panel shows, on features ``components``: the observed
    cells of its control population (``pred.obs['{key}_source']``, else the ``source`` column
    of ``adata.uns[key]['populations']``) in light grey, the observed cells of ``p`` and the
    predicted cells of ``p`` (rows of ``pred`` whose ``pred.obs['{key}_population']`` is ``p``)
    in two colours.

    Parameters
    ----------
    adata
        Annotated data matrix with the observed cells (only read). The features are those the
        model was trained on: ``adata.uns[key]['params']['use_rep']`` (``adata.X`` when absent).
    pred
        Predicted cells returned by `mfm.tl.predict`, with ``pred.var_names`` equal to the
        feature names of the observed data.
    population
        A treated population id (one panel on one axes) or a list of them (a grid of panels).
    components
        The two features on the x and y axes: indices into the features or feature names.
    key
        The ``key_added`` given to `mfm.pp.populations` and `mfm.tl.predict`.
    ncols
        Number of panel columns when ``population`` is a list.
    ax
        Axes to draw into (only with a single population); a new figure when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    When not shown: the `~matplotlib.axes.Axes` for a single population id, a list of axes (one
    per population, in order) for a list. The `~matplotlib.figure.Figure` when ``return_fig``,
    else ``None``.
    """
    keys = Keys(key)
    ids = [population] if isinstance(population, str) else list(population)
    _check_panels(ids, ax, ncols)
    table = read_table(adata, keys.uns, keys.populations, POPULATIONS_VERB, (SOURCE,))
    _check_population_columns(adata, pred, keys)
    use_rep = adata.uns[keys.uns].get(keys.params, {}).get(USE_REP)
    names = get_features(adata[:0], use_rep)[1]
    _check_feature_names(pred, names)
    dims = resolve_components(components, names)
    if ax is not None or isinstance(population, str):
        fig, panel = new_axes(ax)
        panels = [panel]
    else:
        fig, panels = grid_axes(len(ids), ncols)
    for population_id, panel in zip(ids, panels, strict=True):
        cells = _population_cells(adata, pred, keys, table, population_id, use_rep)
        _draw_panel(panel, cells, dims)
        panel.set_title(_title(table, population_id))
        panel.set_xlabel(names[dims[0]])
        panel.set_ylabel(names[dims[1]])
    panels[0].legend(frameon=False, loc="best", fontsize="small", markerscale=2.0)
    returned = panels[0] if isinstance(population, str) else panels
    return show_or_return(fig, returned, show=show, return_fig=return_fig)


def _check_panels(ids: list[str], ax: Axes | None, ncols: int) -> None:
    """Raise on an empty population list, on ``ax`` with several panels, or on ``ncols < 1``."""
    if not ids:
        msg = "`population` is empty; pass a population id or a list of them."
        raise ValueError(msg)
    if ax is not None and len(ids) > 1:
        msg = f"`ax` holds one panel but `population` names {len(ids)}; pass `ax=None`."
        raise ValueError(msg)
    if ncols < 1:
        msg = f"`ncols` must be >= 1, got {ncols!r}."
        raise ValueError(msg)


def _check_population_columns(adata: AnnData, pred: AnnData, keys: Keys) -> None:
    """Raise a `KeyError` naming the call that writes the missing population column."""
    for data, name, producer in ((adata, "adata", POPULATIONS_VERB), (pred, "pred", PREDICT_VERB)):
        if keys.obs_population not in data.obs.columns:
            msg = (
                f"`{name}.obs[{keys.obs_population!r}]` not found; run `{producer}` "
                f"with `key_added={keys.key_added!r}` first."
            )
            raise KeyError(msg)


def _check_feature_names(pred: AnnData, names: list[str]) -> None:
    """Raise unless ``pred.var_names`` are the observed feature names, in order."""
    if list(map(str, pred.var_names)) != names:
        msg = (
            f"`pred.var_names` ({list(pred.var_names)[:5]}...) differ from the features of the "
            f"observed data ({names[:5]}...); predict with `{PREDICT_VERB}` on this AnnData."
        )
        raise ValueError(msg)


def _population_cells(
    adata: AnnData,
    pred: AnnData,
    keys: Keys,
    table: pd.DataFrame,
    population: str,
    use_rep: str | None,
) -> dict[str, np.ndarray]:
    """Return the feature matrices of the source, observed and predicted cells of ``population``."""
    if population not in table.index:
        msg = (
            f"Population {population!r} not in `adata.uns[{keys.uns!r}]['populations']`; "
            f"ids look like {list(table.index[:5])}."
        )
        raise KeyError(msg)
    if table.loc[population, SOURCE] == population:
        msg = f"Population {population!r} is a control population; pick a treated one."
        raise ValueError(msg)
    predicted = (pred.obs[keys.obs_population] == population).to_numpy()
    if not predicted.any():
        msg = (
            f"`pred` holds no predicted cell of population {population!r}; "
            f"run `{PREDICT_VERB}(..., populations=[{population!r}, ...])`."
        )
        raise ValueError(msg)
    source = _source_of(pred, keys, predicted, table.loc[population, SOURCE])
    labels = adata.obs[keys.obs_population]
    return {
        "control (source)": _features(adata, (labels == source).to_numpy(), use_rep),
        "observed": _features(adata, (labels == population).to_numpy(), use_rep),
        "predicted": _features(pred, predicted, None),
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


def _features(data: AnnData, rows: np.ndarray, use_rep: str | None) -> np.ndarray:
    """Dense features of the chosen rows (subset first: never densify the whole matrix)."""
    return get_features(data[rows], use_rep)[0]


def _draw_panel(ax: Axes, cells: dict[str, np.ndarray], dims: tuple[int, int]) -> None:
    """Scatter the three groups of cells, context (grey) first so the others stay visible."""
    size = min(20.0, 20000.0 / max(1, sum(len(x) for x in cells.values())))
    colors = [GREY, *palette(2)]
    for (label, points), color in zip(cells.items(), colors, strict=True):
        alpha = 1.0 if color == GREY else 0.7
        ax.scatter(
            points[:, dims[0]], points[:, dims[1]], s=size, color=color, alpha=alpha, label=label
        )


def _title(table: pd.DataFrame, population: str) -> str:
    """Return ``"population (condition)"``, or the bare id when the table has no condition."""
    if CONDITION in table.columns:
        return f"{population} ({table.loc[population, CONDITION]})"
    return population
