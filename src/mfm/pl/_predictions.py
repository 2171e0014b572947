"""Predicted against observed cells of treated populations, on two features or a shared PCA."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from .._checks import check_positive_int
from ._cells import (
    GROUPS,
    check_pred,
    population_cells,
    read_observed,
    standardised_effects,
    title,
    top_features,
)
from ._utils import (
    GREY,
    grid_axes,
    new_axes,
    palette,
    resolve_components,
    shared_legend,
    show_or_return,
)

#: Side of one panel of a grid, in inches.
PANEL_SIZE = 3.2


def predictions(
    adata: AnnData,
    pred: AnnData,
    *,
    population: str | Sequence[str],
    components: Literal["effect", "pca"] | Sequence[int | str] = "effect",
    key: str = "mfm",
    ncols: int = 4,
    size: float | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | list[Axes] | Figure | None:
    r"""Scatter predicted and observed cells of treated populations on two axes.

    For each treated population ``p``, one panel shows the observed cells of its control
    population (``pred.obs['{key}_source']``, else the ``source`` column of
    ``adata.uns[key]['populations']``) in light grey, the observed cells of ``p`` and the
    predicted cells of ``p`` (rows of ``pred`` whose ``pred.obs['{key}_population']`` is ``p``)
    in two colours, with one legend right of the panels. Several populations make a grid of
    panels (``3.2`` inches each) sharing both axes.

    By default (``components="effect"``) the axes are the two features with the largest
    observed treatment effect over the shown populations: the mean over populations of the
    standardised mean shift :math:`|\bar x_{obs} - \bar x_{ctrl}| / s_{ctrl}` (``s`` the
    standard deviation of the control cells), so the panel shows what the treatment does.

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
        The axes: ``"effect"`` (the two features of largest observed effect, see above),
        ``"pca"`` (the first two principal components of the control, observed and predicted
        cells of all shown populations together), or two features as indices or names.
    key
        The ``key_added`` given to `mfm.pp.populations` and `mfm.tl.predict`.
    ncols
        Number of panel columns when ``population`` is a list.
    size
        Point size in points^2; by default ``min(20, 20000 / cells in the panel)``.
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

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.organoid_screen(n_patients=4, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> pred = mfm.tl.predict(adata, model)
    >>> ids = list(pred.obs["mfm_population"].cat.categories)
    >>> mfm.pl.predictions(adata, pred, population=ids[:4])
    """
    ids = _ids(population)
    check_positive_int("ncols", ncols)
    if ax is not None and len(ids) > 1:
        msg = f"`ax` holds one panel but `population` names {len(ids)}; pass `ax=None`."
        raise ValueError(msg)
    observed = read_observed(adata, key)
    check_pred(pred, observed)
    cells = [population_cells(pred, observed, p) for p in ids]
    project, labels = _projection(components, cells, observed.names)
    if ax is not None or isinstance(population, str):
        fig, panel = new_axes(ax)
        panels = [panel]
    else:
        fig, panels = grid_axes(len(ids), ncols, panel_size=(PANEL_SIZE, PANEL_SIZE), share=True)
    for population_id, groups, panel in zip(ids, cells, panels, strict=True):
        _draw_panel(panel, {g: project(x) for g, x in groups.items()}, size)
        panel.set_title(title(observed.table, population_id), fontsize="medium")
        panel.set_xlabel(labels[0])
        panel.set_ylabel(labels[1])
    shared_legend(fig, panels, markerscale=2.0)
    returned = panels[0] if isinstance(population, str) else panels
    return show_or_return(fig, returned, show=show, return_fig=return_fig)


def _ids(population: str | Sequence[str]) -> list[str]:
    """The population ids as a list; raise on an empty list."""
    ids = [population] if isinstance(population, str) else list(population)
    if not ids:
        msg = "`population` is empty; pass a population id or a list of them."
        raise ValueError(msg)
    return ids


def _projection(components, cells: list[dict[str, np.ndarray]], names: list[str]):
    """Return the map from ``(n, d)`` cells to ``(n, 2)`` coordinates and the axis labels."""
    if isinstance(components, str) and components == "pca":
        pooled = np.concatenate([x for groups in cells for x in groups.values()])
        if pooled.shape[1] < 2:
            msg = "`components='pca'` needs at least two features."
            raise ValueError(msg)
        pca = PCA(n_components=2, svd_solver="full").fit(pooled)
        return pca.transform, ("PC1", "PC2")
    if isinstance(components, str) and components == "effect":
        if len(names) < 2:
            msg = "`components='effect'` needs at least two features."
            raise ValueError(msg)
        dims = tuple(top_features(standardised_effects(cells), 2))
    elif isinstance(components, str):
        msg = f"`components` must be 'effect', 'pca' or two features, got {components!r}."
        raise ValueError(msg)
    else:
        dims = resolve_components(components, names)
    return (lambda x: x[:, list(dims)]), (names[dims[0]], names[dims[1]])


def _draw_panel(ax: Axes, cells: dict[str, np.ndarray], size: float | None) -> None:
    """Scatter the three groups of cells, context (grey) first so the others stay visible."""
    if size is None:
        size = min(20.0, 20000.0 / max(1, sum(len(x) for x in cells.values())))
    colors = [GREY, *palette(2)]
    for label, color in zip(GROUPS, colors, strict=True):
        points = cells[label]
        alpha = 1.0 if color == GREY else 0.7
        ax.scatter(points[:, 0], points[:, 1], s=size, color=color, alpha=alpha, label=label)
