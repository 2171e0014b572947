"""Plumbing shared by ``pl``: reading what ``tl`` wrote, axes, colours, the return rule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scanpy.plotting.palettes import default_20, default_102

from .._checks import check_uns
from .._keys import METHOD, STEP, TRAIN_LOSS, VAL_LOSS  # noqa: F401 - re-exported to pl modules

#: The verbs that write what ``pl`` reads, named in error messages.
POPULATIONS_VERB = "mfm.pp.populations"
FIT_VERB = "mfm.tl.fit"
PREDICT_VERB = "mfm.tl.predict"
EVALUATE_VERB = "mfm.tl.evaluate"

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


def grid_axes(n_panels: int, ncols: int) -> tuple[Figure, list[Axes]]:
    """Return a new figure with ``n_panels`` panels on a grid of ``ncols`` columns.

    Each panel gets the size of ``rcParams['figure.figsize']`` (as scanpy's multi-panel plots);
    the unused cells of the last row are removed.
    """
    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    width, height = plt.rcParams["figure.figsize"]
    fig, grid = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained"
    )
    panels = list(grid.ravel())
    for extra in panels[n_panels:]:
        extra.remove()
    return fig, panels[:n_panels]


def palette(n_colors: int) -> list[str]:
    """Return ``n_colors`` colours of scanpy's default categorical palettes (cycled beyond 102)."""
    colors = default_20 if n_colors <= len(default_20) else default_102
    return [colors[i % len(colors)] for i in range(n_colors)]


def outside_legend(ax: Axes, **kwargs) -> None:
    """Draw the legend right of ``ax``, frameless, as scanpy's ``legend_loc="right margin"``."""
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5), **kwargs)


def resolve_components(components: Sequence[int | str], names: list[str]) -> tuple[int, int]:
    """Turn two feature indices or names into two indices into ``names``."""
    if isinstance(components, str) or len(components) != 2:
        msg = f"`components` must hold two feature indices or names, got {components!r}."
        raise ValueError(msg)
    dims = []
    for component in components:
        if isinstance(component, str):
            if component not in names:
                msg = f"`components`: feature {component!r} not found; features: {names[:10]}..."
                raise KeyError(msg)
            dims.append(names.index(component))
        elif isinstance(component, int | np.integer) and not isinstance(component, bool):
            if not 0 <= component < len(names):
                msg = f"`components`: index {component} out of range for {len(names)} features."
                raise ValueError(msg)
            dims.append(int(component))
        else:
            msg = f"`components` must hold ints or feature names, got {component!r}."
            raise TypeError(msg)
    return dims[0], dims[1]
