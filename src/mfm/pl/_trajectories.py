"""Paths cells take under a trained flow, from their control state to the predicted one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from .._checks import check_positive_int
from .._keys import CONDITION, SOURCE
from .._utils import RandomState, as_numpy_rng
from ..tl import MetaFlowModel
from ._cells import (
    CONTROL,
    OBSERVED,
    read_observed,
    standardised_effects,
    subsample,
    title,
    top_features,
)
from ._utils import GREY, new_axes, outside_legend, palette, resolve_components, show_or_return

#: Context cells drawn at most per group.
MAX_CONTEXT = 2000


def trajectories(
    adata: AnnData,
    model: MetaFlowModel,
    *,
    population: str,
    n_cells: int = 50,
    basis: Literal["effect", "pca"] | Sequence[int | str] = "effect",
    n_times: int = 25,
    key: str = "mfm",
    cmap: str = "viridis",
    random_state: RandomState = 0,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    r"""Draw the paths that cells of a control population take under the learned flow.

    ``n_cells`` control cells of the population's source (drawn at random; for models trained
    with ``source="noise"``, ``n_cells`` N(0, I) draws) are integrated from :math:`t = 0` to 1
    with the model's ODE solver (`mfm.tl.MetaFlowModel.transport_path`, the flow `mfm.tl.predict`
    integrates), conditioned on the population's embedding and treatment, and their states at
    ``n_times`` equally spaced times drawn as lines coloured by time, over the control cells
    (grey) and the observed treated cells (blue); the end points (orange) are the predicted
    cells.

    Parameters
    ----------
    adata
        Annotated data matrix after `mfm.pp.populations` (only read), with the features the
        model was trained on.
    model
        Model returned by `mfm.tl.fit` or `mfm.tl.load`.
    population
        The treated population id whose treatment and control population are used.
    n_cells
        Number of paths.
    basis
        The 2-D view: ``"effect"`` (the two features of largest observed effect,
        :math:`|\bar x_{obs} - \bar x_{ctrl}| / s_{ctrl}`: the plane where the treatment moves
        the cells), ``"pca"`` (the first two principal components of the population's control
        and observed treated cells, which often show other structure, such as cell types), or
        two features as indices or names.
    n_times
        Times at which the states are recorded (at least 2, including 0 and 1).
    key
        The ``key_added`` given to `mfm.pp.populations`.
    cmap
        Colormap of the time along the paths.
    random_state
        Seed of the chosen cells (or noise), of the embedding's subsample and of the context.
    ax
        Axes to draw into; a new figure when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    The `~matplotlib.axes.Axes` when not shown (its `~matplotlib.collections.LineCollection`
    holds the paths), the `~matplotlib.figure.Figure` when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.organoid_screen(n_patients=4, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> table = adata.uns["mfm"]["populations"]
    >>> treated = table.index[table["source"] != table.index]
    >>> mfm.pl.trajectories(adata, model, population=treated[0], n_cells=30)
    """
    check_positive_int("n_cells", n_cells)
    check_positive_int("n_times", n_times, minimum=2)
    observed = read_observed(adata, key)
    observed.check_treated(population)
    model.check_features(observed.names)
    source = str(observed.table.loc[population, SOURCE])
    treatment = str(observed.table.loc[population, CONDITION])
    rng = as_numpy_rng(random_state)
    cells = {CONTROL: observed.cells(source), OBSERVED: observed.cells(population)}
    embedding = model.embed(cells[CONTROL], source, random_state)
    if model.config.source == "noise":
        x0 = model.noise(n_cells, rng)
    else:
        x0 = subsample(cells[CONTROL], n_cells, rng)
    times = np.linspace(0.0, 1.0, n_times)
    path = model.transport_path(x0, embedding, treatment, times=times)
    project, labels = _projection(basis, cells, observed.names)
    fig, ax = new_axes(ax)
    colors = [GREY, *palette(2)]
    for (group, x), color in zip(cells.items(), colors, strict=False):
        xy = project(subsample(x, MAX_CONTEXT, rng))
        alpha = 1.0 if group == CONTROL else 0.35
        ax.scatter(*xy.T, s=8, color=color, alpha=alpha, label=group, rasterized=True)
    lines = np.stack([project(state) for state in path], axis=1)  # (n_cells, n_times, 2)
    segments = np.concatenate([lines[:, :-1, None], lines[:, 1:, None]], axis=2).reshape(-1, 2, 2)
    t_mid = np.tile((times[:-1] + times[1:]) / 2, len(lines))
    collection = LineCollection(segments, cmap=cmap, linewidths=1.0, alpha=0.8)
    collection.set_array(t_mid)
    ax.add_collection(collection)
    ax.scatter(*lines[:, -1].T, s=14, color=colors[2], edgecolors="black", linewidths=0.3,
               label="predicted (t = 1)", zorder=3)  # fmt: skip
    fig.colorbar(collection, ax=ax, label="time t", location="bottom", shrink=0.5, aspect=30)
    ax.autoscale_view()
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(f"{title(observed.table, population)}: {model.label} paths", fontsize="medium")
    outside_legend(ax, markerscale=1.5)
    return show_or_return(fig, ax, show=show, return_fig=return_fig)


def _projection(basis, cells: dict[str, np.ndarray], names: list[str]):
    """Return the map from ``(n, d)`` cells to ``(n, 2)`` coordinates and the axis labels."""
    if isinstance(basis, str) and basis == "pca":
        if len(names) < 2:
            msg = "`basis='pca'` needs at least two features."
            raise ValueError(msg)
        pca = PCA(n_components=2, svd_solver="full").fit(np.concatenate(list(cells.values())))
        return pca.transform, ("PC1", "PC2")
    if isinstance(basis, str) and basis == "effect":
        dims = tuple(top_features(standardised_effects([cells]), 2))
    elif isinstance(basis, str):
        msg = f"`basis` must be 'pca', 'effect' or two features, got {basis!r}."
        raise ValueError(msg)
    else:
        dims = resolve_components(basis, names)
    return (lambda x: x[:, list(dims)]), (names[dims[0]], names[dims[1]])
