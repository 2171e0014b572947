"""Per-marker densities of control, observed and predicted cells of one treated population."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde

from .._checks import check_positive_int
from ._cells import (
    CONTROL,
    GROUPS,
    OBSERVED,
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
    resolve_features,
    shared_legend,
    show_or_return,
)

#: Points of the grid each density is evaluated on.
N_GRID = 200
#: Size of one panel, in inches.
PANEL_SIZE = (2.8, 2.2)


def marker_densities(
    adata: AnnData,
    pred: AnnData,
    *,
    population: str,
    features: Sequence[int | str] | None = None,
    n_features: int = 8,
    key: str = "mfm",
    ncols: int = 4,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | list[Axes] | Figure | None:
    r"""Density of each marker in the control, observed and predicted cells of a population.

    The plot cytometrists read: one panel per feature, with the kernel density estimate
    (`scipy.stats.gaussian_kde`, Scott's bandwidth) of the control (source) cells filled in
    grey, of the observed treated cells in blue and of the predicted cells in orange (dashed),
    evaluated on a grid spanning all three. A good prediction moves the grey curve onto the blue
    one. A group whose values are all equal is drawn as a vertical line.

    Parameters
    ----------
    adata
        Annotated data matrix with the observed cells (only read), features as in
        `mfm.pl.predictions`.
    pred
        Predicted cells returned by `mfm.tl.predict`.
    population
        The treated population id.
    features
        Features (indices or names), one panel each, in this order. ``None``: the
        ``n_features`` features of largest observed effect
        (:math:`|\bar x_{obs} - \bar x_{ctrl}| / s_{ctrl}`), largest first.
    n_features
        Number of features chosen when ``features`` is ``None``.
    key
        The ``key_added`` given to `mfm.pp.populations` and `mfm.tl.predict`.
    ncols
        Panels per row.
    ax
        Axes to draw into (a single feature only); a new figure when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    When not shown: the list of panels, one per feature (the `~matplotlib.axes.Axes` itself
    when ``ax`` is given). The `~matplotlib.figure.Figure` when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.organoid_screen(n_patients=4, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> pred = mfm.tl.predict(adata, model)
    >>> population = pred.obs["mfm_population"].cat.categories[0]
    >>> mfm.pl.marker_densities(adata, pred, population=population, n_features=4)
    """
    check_positive_int("n_features", n_features)
    check_positive_int("ncols", ncols)
    if not isinstance(population, str):
        msg = f"`population` must be one population id, got {population!r}."
        raise TypeError(msg)
    observed = read_observed(adata, key)
    check_pred(pred, observed)
    cells = population_cells(pred, observed, population)
    if features is None:
        dims = top_features(standardised_effects([cells]), n_features)
    else:
        dims = resolve_features(features, observed.names)
    if ax is not None and len(dims) > 1:
        msg = f"`ax` holds one panel but {len(dims)} features are shown; pass `ax=None`."
        raise ValueError(msg)
    if ax is not None:
        fig, panel = new_axes(ax)
        panels = [panel]
    else:
        fig, panels = grid_axes(len(dims), ncols, panel_size=PANEL_SIZE)
        fig.suptitle(title(observed.table, population))
    colors = dict(zip(GROUPS, [GREY, *palette(2)], strict=True))
    for i, (dim, panel) in enumerate(zip(dims, panels, strict=True)):
        values = {group: x[:, dim] for group, x in cells.items()}
        _draw_densities(panel, values, colors)
        panel.set_title(observed.names[dim], fontsize="medium")
        panel.set_yticks([])
        if i % ncols == 0:
            panel.set_ylabel("density")
    shared_legend(fig, panels)
    returned = panel if ax is not None else panels
    return show_or_return(fig, returned, show=show, return_fig=return_fig)


def _draw_densities(ax: Axes, values: dict[str, np.ndarray], colors: dict[str, str]) -> None:
    """Control filled, observed solid, predicted dashed, on a grid spanning all three."""
    pooled = np.concatenate(list(values.values()))
    low, high = float(pooled.min()), float(pooled.max())
    margin = 0.05 * (high - low or 1.0)
    grid = np.linspace(low - margin, high + margin, N_GRID)
    for group, x in values.items():
        style = {"color": colors[group], "label": group}
        if group == OBSERVED:
            style["linestyle"] = "-"
        elif group != CONTROL:
            style["linestyle"] = "--"
        if np.ptp(x) == 0:
            ax.axvline(x[0], **style)
            continue
        density = gaussian_kde(x)(grid)
        if group == CONTROL:
            ax.fill_between(grid, density, color=colors[group], alpha=0.6, label=group, lw=0)
        else:
            ax.plot(grid, density, linewidth=1.5, **style)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(bottom=0)
