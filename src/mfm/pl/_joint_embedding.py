"""Control, observed and predicted cells of treated populations in one shared 2-D embedding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scanpy as sc
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from .._checks import check_choice, check_positive_int
from .._utils import RandomState, as_numpy_rng
from ._cells import (
    GROUPS,
    check_pred,
    population_cells,
    read_observed,
    resolve_populations,
    subsample,
    title,
)
from ._utils import GREY, grid_axes, new_axes, palette, shared_legend, show_or_return

_BASES = ("pca", "umap")
#: Side of one panel of a grid, in inches.
PANEL_SIZE = 3.2


def joint_embedding(
    adata: AnnData,
    pred: AnnData,
    *,
    population: str | Sequence[str] | None = None,
    basis: Literal["pca", "umap"] = "pca",
    max_cells: int = 1000,
    key: str = "mfm",
    n_neighbors: int = 15,
    size: float | None = None,
    ncols: int = 4,
    random_state: RandomState = 0,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | list[Axes] | Figure | None:
    """Embed control, observed-treated and predicted cells together and scatter them.

    The control (source) cells, observed treated cells and predicted cells of every shown
    population (at most ``max_cells`` of each group and population, drawn at random) are pooled
    and embedded once: ``basis="pca"`` projects them on their first two principal components
    (`sklearn.decomposition.PCA`, exact SVD); ``basis="umap"`` runs `scanpy.pp.neighbors`
    (``n_neighbors``, on the features) and `scanpy.tl.umap` on a temporary AnnData of these
    cells. Where predicted cells (orange) cover the observed ones (blue), away from the control
    cells (grey), the prediction moved the population where the treatment did. One panel per
    population, all on the same coordinates (shared axes); ``population=None`` shows every
    population of ``pred``.

    Parameters
    ----------
    adata
        Annotated data matrix with the observed cells (only read), features as in
        `mfm.pl.predictions`.
    pred
        Predicted cells returned by `mfm.tl.predict`.
    population
        A treated population id (one panel), a list of them (a grid), or ``None`` for all
        populations of ``pred`` (a grid).
    basis
        ``"pca"`` or ``"umap"``.
    max_cells
        Cells drawn at most per group (control, observed, predicted) and population.
    key
        The ``key_added`` given to `mfm.pp.populations` and `mfm.tl.predict`.
    n_neighbors
        Neighbours of the kNN graph of ``basis="umap"``.
    size
        Point size in points^2; by default ``min(20, 20000 / cells in the panel)``.
    ncols
        Number of panel columns of a grid.
    random_state
        Seed of the subsample and of UMAP.
    ax
        Axes to draw into (one population only); a new figure when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    When not shown: the `~matplotlib.axes.Axes` for a single population id, else a list of axes
    (one per population). The `~matplotlib.figure.Figure` when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.organoid_screen(n_patients=4, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> pred = mfm.tl.predict(adata, model)
    >>> ids = list(pred.obs["mfm_population"].cat.categories)
    >>> mfm.pl.joint_embedding(adata, pred, population=ids[:3], basis="umap")
    """
    check_choice("basis", basis, _BASES)
    check_positive_int("max_cells", max_cells)
    check_positive_int("ncols", ncols)
    check_positive_int("n_neighbors", n_neighbors, minimum=2)
    observed = read_observed(adata, key)
    check_pred(pred, observed)
    ids = resolve_populations(population, pred, observed)
    if ax is not None and len(ids) > 1:
        msg = f"`ax` holds one panel but {len(ids)} populations are shown; pass `ax=None`."
        raise ValueError(msg)
    rng = as_numpy_rng(random_state)
    cells = [
        {g: subsample(x, max_cells, rng) for g, x in population_cells(pred, observed, p).items()}
        for p in ids
    ]
    pooled = np.concatenate([x for groups in cells for x in groups.values()])
    coords = _embed(pooled, basis, n_neighbors, rng)
    labels = ("PC1", "PC2") if basis == "pca" else ("UMAP1", "UMAP2")
    if ax is not None or isinstance(population, str):
        fig, panel = new_axes(ax)
        panels = [panel]
    else:
        fig, panels = grid_axes(len(ids), ncols, panel_size=(PANEL_SIZE, PANEL_SIZE), share=True)
    start = 0
    colors = dict(zip(GROUPS, [GREY, *palette(2)], strict=True))
    for population_id, groups, panel in zip(ids, cells, panels, strict=True):
        n_panel = sum(len(x) for x in groups.values())
        point_size = size if size is not None else min(20.0, 20000.0 / n_panel)
        for group in GROUPS:
            xy = coords[start : start + len(groups[group])]
            start += len(groups[group])
            alpha = 1.0 if group == GROUPS[0] else 0.7
            panel.scatter(*xy.T, s=point_size, color=colors[group], alpha=alpha, label=group)
        panel.set_title(title(observed.table, population_id), fontsize="medium")
        panel.set_xlabel(labels[0])
        panel.set_ylabel(labels[1])
    shared_legend(fig, panels, markerscale=2.0)
    returned = panels[0] if isinstance(population, str) else panels
    return show_or_return(fig, returned, show=show, return_fig=return_fig)


def _embed(x: np.ndarray, basis: str, n_neighbors: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2)`` coordinates of the pooled cells ``x`` in ``basis``."""
    if x.shape[1] < 2:
        msg = "A 2-D embedding needs at least two features."
        raise ValueError(msg)
    if basis == "pca":
        return PCA(n_components=2, svd_solver="full").fit_transform(x)
    tmp = AnnData(x.astype(np.float32))
    seed = int(rng.integers(2**31 - 1))
    sc.pp.neighbors(tmp, n_neighbors=min(n_neighbors, len(x) - 1), use_rep="X", random_state=seed)
    sc.tl.umap(tmp, random_state=seed)
    return np.asarray(tmp.obsm["X_umap"])
