"""Predicted against observed treatment effect: mean shift of each marker, per population."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._checks import check_positive_int
from ._cells import (
    CONTROL,
    OBSERVED,
    PREDICTED,
    check_pred,
    population_cells,
    read_observed,
    resolve_populations,
    standardised_effects,
    title,
    top_features,
)
from ._utils import new_axes, resolve_features, show_or_return


def effects(
    adata: AnnData,
    pred: AnnData,
    *,
    population: str | Sequence[str] | None = None,
    features: Sequence[int | str] | None = None,
    n_features: int = 20,
    standardize: bool = False,
    key: str = "mfm",
    cmap: str = "RdBu_r",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    r"""Heatmap of the observed and predicted treatment effect of each marker, per population.

    For each treated population and feature, the observed effect is the shift of the mean,
    :math:`\bar x_{obs} - \bar x_{ctrl}`, between its observed cells and the cells of its
    control population, and the predicted effect :math:`\bar x_{pred} - \bar x_{ctrl}` the same
    for its predicted cells. Each population gets two adjacent rows, observed then predicted,
    on one diverging colour scale centred at 0 (red up, blue down); the predicted row is
    labelled with the Pearson correlation ``r`` of the two rows over the shown features. A good
    prediction repeats the pattern of the row above it.

    Parameters
    ----------
    adata
        Annotated data matrix with the observed cells (only read), features as in
        `mfm.pl.predictions`.
    pred
        Predicted cells returned by `mfm.tl.predict`.
    population
        Treated population id(s) to show; ``None`` shows every population of ``pred``.
    features
        Features (indices or names) as columns, in this order. ``None``: the ``n_features``
        features of largest observed effect (mean over the shown populations of
        :math:`|\bar x_{obs} - \bar x_{ctrl}| / s_{ctrl}`), largest first.
    n_features
        Number of features chosen when ``features`` is ``None``.
    standardize
        Divide each shift by the standard deviation of the feature in the control cells of
        the population (an effect size) instead of showing it in the units of the data.
    key
        The ``key_added`` given to `mfm.pp.populations` and `mfm.tl.predict`.
    cmap
        Diverging colormap.
    ax
        Axes to draw into; a new figure sized to the table when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    The `~matplotlib.axes.Axes` of the heatmap when not shown (its image holds the
    ``(2 n_populations, n_features)`` shifts), the `~matplotlib.figure.Figure` when
    ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.organoid_screen(n_patients=4, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> pred = mfm.tl.predict(adata, model)
    >>> ids = list(pred.obs["mfm_population"].cat.categories)
    >>> mfm.pl.effects(adata, pred, population=ids[:6], n_features=12)
    """
    check_positive_int("n_features", n_features)
    observed = read_observed(adata, key)
    check_pred(pred, observed)
    ids = resolve_populations(population, pred, observed)
    cells = [population_cells(pred, observed, p) for p in ids]
    if features is None:
        dims = top_features(standardised_effects(cells), n_features)
    else:
        dims = resolve_features(features, observed.names)
    rows, labels = [], []
    for population_id, groups in zip(ids, cells, strict=True):
        shift = {g: _shift(groups, g, standardize)[dims] for g in (OBSERVED, PREDICTED)}
        rows += [shift[OBSERVED], shift[PREDICTED]]
        r = _pearson(shift[OBSERVED], shift[PREDICTED])
        labels += [f"{title(observed.table, population_id)}  observed", f"predicted (r = {r})"]
    shifts = np.asarray(rows)
    limit = float(np.abs(shifts).max()) or 1.0
    if ax is None:
        fig, ax = new_axes(None)
        fig.set_size_inches(2.5 + 0.38 * len(dims), 1.2 + 0.3 * len(rows))
    else:
        fig, ax = new_axes(ax)
    image = ax.imshow(shifts, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(np.arange(len(dims)), [observed.names[d] for d in dims], rotation=90)
    ax.set_yticks(np.arange(len(rows)), labels, fontsize="small")
    for boundary in np.arange(1.5, len(rows) - 1, 2):  # between populations
        ax.axhline(boundary, color="white", linewidth=2)
    unit = "standardised " if standardize else ""
    fig.colorbar(image, ax=ax, label=f"{unit}mean shift vs control", shrink=0.8)
    return show_or_return(fig, ax, show=show, return_fig=return_fig)


def _shift(groups: dict[str, np.ndarray], group: str, standardize: bool) -> np.ndarray:
    """Mean of ``group`` minus mean of the control, per feature (over the control's sd)."""
    shift = groups[group].mean(axis=0) - groups[CONTROL].mean(axis=0)
    if not standardize:
        return shift
    scale = groups[CONTROL].std(axis=0)
    return shift / np.where(scale > 0, scale, 1.0)


def _pearson(a: np.ndarray, b: np.ndarray) -> str:
    """Pearson correlation of ``a`` and ``b`` with two decimals; ``"n/a"`` if undefined."""
    if len(a) < 2 or _constant(a) or _constant(b):
        return "n/a"
    return f"{np.corrcoef(a, b)[0, 1]:.2f}"


def _constant(x: np.ndarray) -> bool:
    """All values equal up to float32 round-off (a correlation with them is undefined)."""
    return bool(np.ptp(x) <= 1e-5 * max(float(np.abs(x).max()), 1e-12))
