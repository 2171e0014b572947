"""2-D view of the learned population embedding h, one point per control population."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from .._checks import check_choice
from .._keys import Keys
from ._utils import (
    FIT_VERB,
    GREY,
    POPULATIONS_VERB,
    new_axes,
    outside_legend,
    palette,
    read_table,
    show_or_return,
)

_BASES = ("pca",)
_POINT_SIZE = 60


def population_embedding(
    adata: AnnData,
    *,
    color: str | None = None,
    key: str = "mfm",
    basis: Literal["pca"] = "pca",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    r"""Scatter the first two principal components of the population embedding learned by MFM.

    Reads ``adata.uns[key]['population_embedding']``, an ``(n_populations, d)`` table of the
    embeddings :math:`h_i` of the control populations (written by MFM and CGFM, not FM),
    centres it and projects it on its first two principal components
    (`sklearn.decomposition.PCA`, exact SVD):
    :math:`z_i = (h_i - \bar h) V_{:, :2}`.

    Parameters
    ----------
    adata
        Annotated data matrix on which `mfm.tl.fit` was run (only read).
    color
        Column of ``adata.uns[key]['populations']`` to colour the populations by: numeric columns
        get a colour bar, others (strings, categories, booleans) one colour per value and a legend
        (missing values in grey as ``"NA"``). ``None`` draws every population in one colour.
    key
        The ``key_added`` given to `mfm.tl.fit`.
    basis
        The 2-D projection; only ``"pca"``.
    ax
        Axes to draw into; a new figure when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    The `~matplotlib.axes.Axes` when not shown, the `~matplotlib.figure.Figure` when
    ``return_fig``, else ``None``.
    """
    check_choice("basis", basis, _BASES)
    keys = Keys(key)
    try:
        embedding = read_table(adata, keys.uns, keys.population_embedding, FIT_VERB)
    except KeyError as error:
        msg = f"{error.args[0]} FM (`method='fm'`) learns no population embedding."
        raise KeyError(msg) from error
    values = _color_values(adata, keys, embedding.index, color)
    coords = _pca_2d(embedding, keys.uns)
    fig, ax = new_axes(ax)
    if values is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=_POINT_SIZE, color=palette(1)[0])
    elif _is_numeric(values):
        points = ax.scatter(coords[:, 0], coords[:, 1], s=_POINT_SIZE, c=values.to_numpy(float))
        fig.colorbar(points, ax=ax, label=color)
    else:
        _scatter_categories(ax, coords, values)
        outside_legend(ax, title=color)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title("population embedding")
    return show_or_return(fig, ax, show=show, return_fig=return_fig)


def _pca_2d(embedding: pd.DataFrame, key: str) -> np.ndarray:
    """Return the ``(n_populations, 2)`` PCA coordinates of the embedding table."""
    n_populations, dim = embedding.shape
    if n_populations < 2 or dim < 2:
        msg = (
            f"`adata.uns[{key!r}]['population_embedding']` has shape {embedding.shape}; "
            "a 2-D PCA needs at least 2 populations and 2 embedding dimensions."
        )
        raise ValueError(msg)
    pca = PCA(n_components=2, svd_solver="full")
    return pca.fit_transform(embedding.to_numpy(dtype=float))


def _color_values(
    adata: AnnData, keys: Keys, populations: pd.Index, color: str | None
) -> pd.Series | None:
    """Return the ``color`` column of the populations table aligned to the embedded populations."""
    if color is None:
        return None
    table = read_table(adata, keys.uns, keys.populations, POPULATIONS_VERB)
    if color not in table.columns:
        msg = (
            f"`color={color!r}` is not a column of `adata.uns[{keys.uns!r}]['populations']`; "
            f"choose one of {list(table.columns)}."
        )
        raise KeyError(msg)
    missing = populations.difference(table.index)
    if len(missing):
        msg = (
            f"Embedded populations {list(missing)[:5]} are missing from "
            f"`adata.uns[{keys.uns!r}]['populations']`; were they fitted on another AnnData?"
        )
        raise KeyError(msg)
    return table[color].reindex(populations)


def _is_numeric(values: pd.Series) -> bool:
    """Numeric and not boolean: such columns get a colour bar rather than a legend."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _scatter_categories(ax: Axes, coords: np.ndarray, values: pd.Series) -> None:
    """Draw one scatter (and legend entry) per category; missing values last, in grey."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        levels = [level for level in values.cat.categories if level in present]
    else:
        levels = sorted(pd.unique(values.dropna()), key=str)
    for level, level_color in zip(levels, palette(len(levels)), strict=True):
        chosen = (values == level).to_numpy()
        ax.scatter(*coords[chosen].T, s=_POINT_SIZE, color=level_color, label=str(level))
    missing = values.isna().to_numpy()
    if missing.any():
        ax.scatter(*coords[missing].T, s=_POINT_SIZE, color=GREY, label="NA")
