"""2-D view of the learned population embedding h, one point per control population."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.decomposition import PCA

from .._checks import check_choice, check_number, check_positive_int
from .._keys import FIT_VERB, POPULATIONS_VERB, SPLIT, SPLITS, TEST, Keys
from .._utils import RandomState, as_numpy_rng
from ._utils import (
    GREY,
    ON_DATA,
    RIGHT_MARGIN,
    Palette,
    category_colors,
    grid_axes,
    new_axes,
    palette,
    place_legend,
    read_table,
    show_or_return,
)

_BASES = ("pca",)
#: Default point size (points^2) of a population.
POINT_SIZE = 60.0
#: Opacity of the points: replicates embedded at (almost) the same place stack into darker spots.
ALPHA = 0.75


def population_embedding(
    adata: AnnData,
    *,
    color: str | Sequence[str] | None = None,
    key: str = "mfm",
    basis: Literal["pca"] = "pca",
    palette: Palette = None,
    cmap: str | None = None,
    size: float = POINT_SIZE,
    title: str | Sequence[str] | None = None,
    legend_loc: str | None = RIGHT_MARGIN,
    outline: str | Sequence[str] | None = TEST,
    jitter: float = 0.0,
    random_state: RandomState = 0,
    ncols: int = 4,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | list[Axes] | Figure | None:
    r"""Scatter the first two principal components of the population embedding learned by MFM.

    Reads ``adata.uns[key]['population_embedding']``, an ``(n_populations, d)`` table of the
    embeddings :math:`h_i` of the control populations (written by MFM and CGFM, not FM),
    centres it and projects it on its first two principal components
    (`sklearn.decomposition.PCA`, exact SVD):
    :math:`z_i = (h_i - \bar h) V_{:, :2}`.

    Colours follow `scanpy.pl.embedding`: categorical keys take ``palette``, else the colours
    scanpy stored in ``adata.uns[f"{color}_colors"]``, else scanpy's default palette; numeric
    keys get a colour bar. Each panel is titled by its colour key. Populations of the splits in
    ``outline`` (by default the held-out ``"test"`` populations of `mfm.pp.split`) are drawn
    with a black edge. Points are slightly transparent with a white edge, so that replicates
    embedded at almost the same place show as a darker stack rather than hiding each other;
    ``jitter`` spreads them apart instead.

    Parameters
    ----------
    adata
        Annotated data matrix on which `mfm.tl.fit` was run (only read).
    color
        What to colour the populations by, or a list of them (one panel each): a column of
        ``adata.uns[key]['populations']`` (e.g. ``"split"``, ``"n_cells"``, a sample column), or
        a column of ``adata.obs`` that is constant within each population (e.g. a patient
        attribute). Numeric columns get a colour bar, others (strings, categories, booleans) one
        colour per value and a legend (missing values in grey as ``"NA"``). ``None`` draws every
        population in one colour.
    key
        The ``key_added`` given to `mfm.tl.fit`.
    basis
        The 2-D projection; only ``"pca"``.
    palette
        Colours of a categorical key: a matplotlib colormap name, a list of colours (cycled), or
        a mapping value -> colour. ``None``: ``adata.uns[f"{color}_colors"]`` when it matches
        the categories of ``adata.obs[color]``, else scanpy's default palette.
    cmap
        Colormap of a numeric key (matplotlib's default when ``None``).
    size
        Point size in points^2.
    title
        Panel title (or one per colour key); the colour key by default.
    legend_loc
        ``"right margin"`` (default), ``"on data"`` (each value written at the median of its
        populations), ``None`` for no legend, or a matplotlib ``loc`` such as ``"best"``.
    outline
        Split (or splits) of ``adata.uns[key]['populations']['split']`` whose populations get a
        black edge; ``None`` outlines nothing. Ignored when the table has no split.
    jitter
        Standard deviation of a Gaussian displacement of each point, as a fraction of the
        spread (standard deviation) of the coordinates; ``0`` draws the exact projection.
    random_state
        Seed of the jitter.
    ncols
        Panels per row when ``color`` is a list.
    ax
        Axes to draw into (one colour key only); a new figure when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    When not shown: the `~matplotlib.axes.Axes` (a list of them, one per key, when ``color``
    is a list). The `~matplotlib.figure.Figure` when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.organoid_screen(n_patients=4, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> mfm.pp.split(adata, by="patient", test=["P03"])
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> mfm.pl.population_embedding(adata, color=["culture", "patient"])
    """
    check_choice("basis", basis, _BASES)
    check_positive_int("ncols", ncols)
    check_number("jitter", jitter, closed="left")
    keys = Keys(key)
    colors = [color] if color is None or isinstance(color, str) else list(color)
    titles = _titles(title, colors)
    if ax is not None and len(colors) > 1:
        msg = f"`ax` holds one panel but `color` names {len(colors)} keys; pass `ax=None`."
        raise ValueError(msg)
    try:
        embedding = read_table(adata, keys.uns, keys.population_embedding, FIT_VERB)
    except KeyError as error:
        msg = f"{error.args[0]} FM (`method='fm'`) learns no population embedding."
        raise KeyError(msg) from error
    values = [_color_values(adata, keys, embedding.index, c) for c in colors]
    coords = _pca_2d(embedding, keys.uns)
    if jitter > 0:
        rng = as_numpy_rng(random_state)
        coords = coords + rng.normal(scale=jitter * coords.std(axis=0), size=coords.shape)
    edges = _outlined(adata, keys, embedding.index, outline)
    if ax is not None or len(colors) == 1:
        fig, panel = new_axes(ax)
        panels = [panel]
    else:
        fig, panels = grid_axes(len(colors), ncols)
    style = {"s": size, "alpha": ALPHA, "linewidths": np.where(edges, 1.2, 0.4)}
    style["edgecolors"] = np.where(edges, "black", "white").tolist()
    for panel, name, value, panel_title in zip(panels, colors, values, titles, strict=True):
        _draw(fig, panel, adata, coords, name, value, style, palette, cmap, legend_loc)
        if edges.any() and legend_loc not in (None, "none"):
            # beside a colour bar, the one entry goes on the data, where it fits best
            numeric = value is not None and _is_numeric(value)
            _add_outline_handle(panel, outline, "best" if numeric else legend_loc)
        panel.set_xlabel("PC1")
        panel.set_ylabel("PC2")
        panel.set_title(panel_title)
    returned = panels if len(colors) > 1 else panels[0]
    return show_or_return(fig, returned, show=show, return_fig=return_fig)


def _titles(title: str | Sequence[str] | None, colors: list[str | None]) -> list[str]:
    """One title per panel: the given one(s), else the colour key."""
    if title is None:
        return ["population embedding" if c is None else c for c in colors]
    titles = [title] if isinstance(title, str) else list(title)
    if len(titles) != len(colors):
        msg = f"`title` gives {len(titles)} titles for {len(colors)} colour keys."
        raise ValueError(msg)
    return titles


def _draw(
    fig: Figure,
    ax: Axes,
    adata: AnnData,
    coords: np.ndarray,
    name: str | None,
    values: pd.Series | None,
    style: dict,
    palette_: Palette,
    cmap: str | None,
    legend_loc: str | None,
) -> None:
    """Scatter one panel: one colour, a colour bar (numeric values) or one colour per level."""
    if values is None:
        ax.scatter(coords[:, 0], coords[:, 1], color=palette(1)[0], **style)
    elif _is_numeric(values):
        points = ax.scatter(
            coords[:, 0], coords[:, 1], c=values.to_numpy(float), cmap=cmap, **style
        )
        fig.colorbar(points, ax=ax, label=name)
    else:
        _scatter_categories(ax, adata, coords, name, values, style, palette_, legend_loc)


def _outlined(
    adata: AnnData, keys: Keys, populations: pd.Index, outline: str | Sequence[str] | None
) -> np.ndarray:
    """Boolean mask of the embedded populations in the ``outline`` splits."""
    if outline is None:
        return np.zeros(len(populations), bool)
    wanted = [outline] if isinstance(outline, str) else list(outline)
    for split in wanted:
        check_choice("outline", split, SPLITS)
    table = adata.uns[keys.uns].get(keys.populations)
    if not isinstance(table, pd.DataFrame) or SPLIT not in table.columns:
        return np.zeros(len(populations), bool)
    return table[SPLIT].reindex(populations).isin(wanted).to_numpy()


def _add_outline_handle(ax: Axes, outline: str | Sequence[str], legend_loc: str) -> None:
    """Add "black edge = held-out split" to the legend (or draw a legend holding only it)."""
    splits = [outline] if isinstance(outline, str) else list(outline)
    handle = Line2D(
        [],
        [],
        ls="",
        marker="o",
        mfc="none",
        mec="black",
        mew=1.2,
        label=f"{'/'.join(splits)} (outlined)",
    )
    legend = ax.get_legend()
    handles = [] if legend is None else list(legend.legend_handles)
    labels = [] if legend is None else [t.get_text() for t in legend.get_texts()]
    title = None if legend is None else legend.get_title().get_text() or None
    loc = RIGHT_MARGIN if legend_loc == ON_DATA else legend_loc
    place_legend(
        ax, loc, handles=[*handles, handle], labels=[*labels, handle.get_label()], title=title
    )


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
    """Values of ``color`` per embedded population: a table column, else a constant obs column."""
    if color is None:
        return None
    table = read_table(adata, keys.uns, keys.populations, POPULATIONS_VERB)
    if color in table.columns:
        missing = populations.difference(table.index)
        if len(missing):
            msg = (
                f"Embedded populations {list(missing)[:5]} are missing from "
                f"`adata.uns[{keys.uns!r}]['populations']`; were they fitted on another AnnData?"
            )
            raise KeyError(msg)
        return table[color].reindex(populations)
    if color in adata.obs.columns:
        return _per_population(adata, keys, populations, color)
    msg = (
        f"`color={color!r}` is neither a column of `adata.uns[{keys.uns!r}]['populations']` "
        f"nor of `adata.obs`; choose one of {list(table.columns)} or an obs column that is "
        "constant within populations."
    )
    raise KeyError(msg)


def _per_population(adata: AnnData, keys: Keys, populations: pd.Index, color: str) -> pd.Series:
    """The value of ``adata.obs[color]`` in each population; raise when it varies inside one."""
    if keys.obs_population not in adata.obs.columns:
        msg = f"`adata.obs[{keys.obs_population!r}]` not found; run `{POPULATIONS_VERB}` first."
        raise KeyError(msg)
    obs = adata.obs[[keys.obs_population, color]]
    obs = obs[obs[keys.obs_population].isin(populations).to_numpy()]
    n_values = obs.groupby(keys.obs_population, observed=True)[color].nunique(dropna=False)
    varying = n_values[n_values > 1]
    if len(varying):
        msg = (
            f"`adata.obs[{color!r}]` varies within populations (e.g. {varying.index[0]!r} has "
            f"{int(varying.iloc[0])} values); colour by a column that is constant within each "
            f"population or by a column of `adata.uns[{keys.uns!r}]['populations']`."
        )
        raise ValueError(msg)
    first = obs.groupby(keys.obs_population, observed=True)[color].first()
    values = first.reindex(populations)
    if isinstance(adata.obs[color].dtype, pd.CategoricalDtype):
        values = values.astype(adata.obs[color].dtype)
    return values


def _is_numeric(values: pd.Series) -> bool:
    """Numeric and not boolean: such columns get a colour bar rather than a legend."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _scatter_categories(
    ax: Axes,
    adata: AnnData,
    coords: np.ndarray,
    name: str,
    values: pd.Series,
    style: dict,
    palette_: Palette,
    legend_loc: str | None,
) -> None:
    """Draw one scatter (and legend entry) per category; missing values last, in grey."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        levels = [level for level in values.cat.categories if level in present]
    else:
        levels = sorted(pd.unique(values.dropna()), key=str)
    colors = category_colors(adata, name, levels, palette_)
    groups = [
        ((values == level).to_numpy(), c, str(level))
        for level, c in zip(levels, colors, strict=True)
    ]
    missing = values.isna().to_numpy()
    if missing.any():
        groups.append((missing, GREY, "NA"))
    for chosen, level_color, label in groups:
        chosen_style = {k: _rows(v, chosen) for k, v in style.items()}
        ax.scatter(*coords[chosen].T, color=level_color, label=label, **chosen_style)
        if legend_loc == ON_DATA:
            x, y = np.median(np.asarray(coords[chosen]), axis=0)
            ax.text(x, y, label, ha="center", va="center", weight="bold", fontsize="small")
    place_legend(ax, legend_loc, title=name)


def _rows(value, chosen: np.ndarray):
    """The chosen rows of a per-point style value (arrays, lists); scalars unchanged."""
    if isinstance(value, np.ndarray):
        return value[chosen]
    if isinstance(value, list):
        return [v for v, keep in zip(value, chosen, strict=True) if keep]
    return value
