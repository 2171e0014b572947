"""Plumbing shared by ``pl``: reading what ``tl`` wrote, axes, colours, the return rule."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from scanpy.plotting.palettes import default_20, default_102

from .._anndata import check_uns

#: Colour of context cells (the observed control population), as in scanpy's ``na_color``.
GREY = "lightgray"


def show_or_return(
    fig: Figure, axes: Axes | list[Axes], *, show: bool | None, return_fig: bool
) -> Figure | Axes | list[Axes] | None:
    """Show the figure or hand it back: the one return rule of every ``mfm.pl`` function.

    Parameters
    ----------
    fig
        The figure that was drawn.
    axes
        Its panel (or panels) holding the data, returned when the figure is not shown.
    show
        Call `matplotlib.pyplot.show`; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return ``fig`` (without showing it), whatever ``show`` says.

    Returns
    -------
    ``fig`` when ``return_fig``; ``None`` when the figure was shown; ``axes`` otherwise.
    """
    if return_fig:
        return fig
    if sc.settings.autoshow if show is None else show:
        plt.show()
        return None
    return axes


def read_table(
    adata: AnnData, key: str, entry: str, producer: str, columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Return the DataFrame ``adata.uns[key][entry]`` after checking it holds ``columns``.

    Parameters
    ----------
    adata
        Annotated data matrix (only read).
    key
        The ``key_added`` of the run, i.e. the ``adata.uns`` entry.
    entry
        The table inside ``adata.uns[key]``.
    producer
        The call that writes the table, named in the error messages.
    columns
        Columns the caller needs.

    Returns
    -------
    The table itself (callers never modify it).
    """
    table = check_uns(adata, key, entry, producer)
    if not isinstance(table, pd.DataFrame):
        msg = (
            f"`adata.uns[{key!r}][{entry!r}]` must be a DataFrame, got {type(table).__name__}; "
            f"run `{producer}` again."
        )
        raise TypeError(msg)
    missing = [column for column in columns if column not in table.columns]
    if missing:
        msg = (
            f"`adata.uns[{key!r}][{entry!r}]` lacks the columns {missing} "
            f"(has {list(table.columns)}); run `{producer}` again."
        )
        raise KeyError(msg)
    return table


def new_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    """Return ``(figure, ax)``: the given axes and its figure, or a new single-panel figure."""
    if ax is None:
        fig, ax = plt.subplots()
        return fig, ax
    if not isinstance(ax, Axes):
        msg = (
            f"`ax` must be a matplotlib Axes (e.g. from `plt.subplots()`) or None, "
            f"got {type(ax).__name__}."
        )
        raise TypeError(msg)
    return ax.figure, ax


def grid_axes(
    n_panels: int,
    ncols: int,
    *,
    panel_size: tuple[float, float] | None = None,
    share: bool = False,
) -> tuple[Figure, list[Axes]]:
    """Return a new figure with ``n_panels`` panels on a grid of ``ncols`` columns.

    Each panel gets the size ``panel_size`` (inches), by default ``rcParams['figure.figsize']``
    (as scanpy's multi-panel plots); ``share`` shares both axes between the panels. The unused
    cells of the last row are removed.
    """
    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    width, height = panel_size or plt.rcParams["figure.figsize"]
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        squeeze=False,
        layout="constrained",
        sharex=share,
        sharey=share,
    )
    panels = list(grid.ravel())
    for extra in panels[n_panels:]:
        extra.remove()
    if share:  # tick labels on every panel: removed cells leave some columns without a bottom
        for panel in panels[:n_panels]:
            panel.tick_params(labelbottom=True, labelleft=True)
    return fig, panels[:n_panels]


def palette(n_colors: int) -> list[str]:
    """Return ``n_colors`` colours of scanpy's default categorical palettes (cycled beyond 102)."""
    colors = default_20 if n_colors <= len(default_20) else default_102
    return [colors[i % len(colors)] for i in range(n_colors)]


def outside_legend(ax: Axes, **kwargs) -> None:
    """Draw the legend right of ``ax``, frameless, as scanpy's ``legend_loc="right margin"``."""
    ax.legend(**({"frameon": False, "loc": "center left", "bbox_to_anchor": (1.0, 0.5)} | kwargs))


def resolve_components(components: Sequence[int | str], names: list[str]) -> tuple[int, int]:
    """Turn two feature indices or names into two indices into ``names``."""
    if isinstance(components, str) or len(components) != 2:
        msg = f"`components` must hold two feature indices or names, got {components!r}."
        raise ValueError(msg)
    first, second = (resolve_component(c, names, "components") for c in components)
    return first, second


def resolve_component(component: int | str, names: list[str], argument: str) -> int:
    """Turn one feature index or name into an index into ``names``; errors name ``argument``."""
    if isinstance(component, str):
        if component not in names:
            msg = f"`{argument}`: feature {component!r} not found; features: {names[:10]}..."
            raise KeyError(msg)
        return names.index(component)
    if isinstance(component, int | np.integer) and not isinstance(component, bool):
        if not 0 <= component < len(names):
            msg = f"`{argument}`: index {component} out of range for {len(names)} features."
            raise ValueError(msg)
        return int(component)
    msg = f"`{argument}` must hold ints or feature names, got {component!r}."
    raise TypeError(msg)


def plain_number(value: float, _position: object = None) -> str:
    """Format a tick value as a plain number (``0.03``, ``1``, ``300``), not ``3x10^1``."""
    return f"{value:.6g}"


def plain_log_ticks(axis: Axis, values: np.ndarray) -> None:
    """Label a log ``axis`` in plain numbers; also at 2 and 5 x 10^k over < 2 decades of ``values``.

    Matplotlib's default labels a log axis with powers of ten and, over a short range, its
    minor ticks as ``3x10^1``; this writes every label as a plain number instead.
    """
    axis.set_major_formatter(FuncFormatter(plain_number))
    positive = values[np.isfinite(values) & (values > 0)]
    decades = np.log10(positive.max() / positive.min()) if len(positive) else 0.0
    if decades < 2:
        axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        axis.set_minor_formatter(FuncFormatter(plain_number))
    else:
        axis.set_minor_formatter(NullFormatter())


#: A colour choice as in scanpy's ``palette``: a colormap name, a list of colours, or a mapping.
Palette: TypeAlias = str | Sequence[str] | Mapping[str, str] | None


def category_colors(adata: AnnData, key: str, levels: list, palette_: Palette = None) -> list[str]:
    """Return one colour per level of the categorical ``key``, as `scanpy.pl.embedding` does.

    In order of precedence: ``palette_`` (a matplotlib colormap name, a list of colours cycled
    over the levels, or a mapping level -> colour); the colours scanpy stored in
    ``adata.uns[f"{key}_colors"]`` (aligned with ``adata.obs[key].cat.categories``) when every
    level is one of those categories; scanpy's default palette.

    Parameters
    ----------
    adata
        Annotated data matrix (only read).
    key
        Name of the colour key (an ``obs`` column or a column of a table).
    levels
        The levels to colour, in drawing order.
    palette_
        The user's choice, or ``None``.

    Returns
    -------
    A list of colours, one per level.
    """
    if palette_ is not None:
        return colors_from_palette(palette_, levels)
    stored = adata.uns.get(f"{key}_colors")
    column = adata.obs[key] if key in adata.obs.columns else None
    if (
        stored is not None
        and column is not None
        and isinstance(column.dtype, pd.CategoricalDtype)
        and len(stored) == len(column.cat.categories)
    ):
        by_category = dict(zip(map(str, column.cat.categories), stored, strict=True))
        if all(str(level) in by_category for level in levels):
            return [by_category[str(level)] for level in levels]
    return palette(len(levels))


def colors_from_palette(palette_: Palette, levels: list) -> list[str]:
    """Colours of ``levels`` from a colormap name, a list of colours or a mapping."""
    if isinstance(palette_, str):
        if palette_ not in colormaps:
            msg = f"`palette={palette_!r}` is not a matplotlib colormap name."
            raise ValueError(msg)
        cmap = colormaps[palette_]
        n_listed = getattr(cmap, "N", 256)
        if n_listed < 256 and len(levels) <= n_listed:  # qualitative maps: their first colours
            return [to_hex(cmap(i)) for i in range(len(levels))]
        return [to_hex(cmap(x)) for x in np.linspace(0.0, 1.0, len(levels))]
    if isinstance(palette_, Mapping):
        missing = [lvl for lvl in levels if lvl not in palette_ and str(lvl) not in palette_]
        if missing:
            msg = f"`palette` lacks a colour for {missing[:5]}."
            raise KeyError(msg)
        return [palette_.get(level, palette_.get(str(level))) for level in levels]
    colors = list(palette_)
    if not colors:
        msg = "`palette` is an empty list of colours."
        raise ValueError(msg)
    return [colors[i % len(colors)] for i in range(len(levels))]


#: ``legend_loc`` values with a meaning of their own (others are matplotlib ``loc`` strings).
RIGHT_MARGIN, ON_DATA = "right margin", "on data"


def place_legend(ax: Axes, legend_loc: str | None, **kwargs) -> None:
    """Draw the legend of ``ax`` as scanpy's ``legend_loc``: right margin, on data, or a ``loc``.

    ``None`` or ``"none"`` draws no legend; ``"on data"`` is handled by the callers (labels at
    the medians of the groups); any other value is passed to `matplotlib.axes.Axes.legend`.
    """
    if legend_loc is None or legend_loc in ("none", ON_DATA):
        return
    if legend_loc == RIGHT_MARGIN:
        outside_legend(ax, **kwargs)
    else:
        ax.legend(loc=legend_loc, frameon=False, **kwargs)


def shared_legend(fig: Figure, panels: list[Axes], **kwargs) -> None:
    """One legend right of the panels: beside a single panel, or of the whole figure."""
    if len(panels) == 1:
        outside_legend(panels[0], **kwargs)
        return
    handles, labels = panels[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", frameon=False, **kwargs)


def resolve_features(features: Sequence[int | str], names: list[str]) -> list[int]:
    """Turn feature indices or names into indices into ``names`` (at least one, no repeats)."""
    if isinstance(features, str):
        features = [features]
    dims = [resolve_component(f, names, "features") for f in features]
    if not dims:
        msg = "`features` is empty; pass feature names or indices, or None."
        raise ValueError(msg)
    if len(set(dims)) != len(dims):
        msg = f"`features` repeats a feature: {list(features)}."
        raise ValueError(msg)
    return dims
