"""Real niches on the tissue: `squidpy.pl.spatial_scatter` with chosen niches marked."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import squidpy as sq
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D

from .._checks import check_positive_int
from .._keys import LIBRARY_KEY, SPATIAL_KEY, NicheKeys
from .._utils import RandomState, as_numpy_rng
from ..tl._niche_io import niche_indices
from ._utils import new_axes, show_or_return


def spatial_niches(
    adata: AnnData,
    *,
    color: str,
    centers: Sequence[int | str] | None = None,
    n: int = 3,
    groups: str | Sequence[str] | None = None,
    library_id: str | None = None,
    key: str = "niche",
    size: float | None = None,
    random_state: RandomState = 0,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Draw the tissue with `squidpy.pl.spatial_scatter` and mark real niches on it.

    The cells of one library (slice) are drawn at their ``adata.obsm[spatial_key]`` coordinates
    coloured by ``color``, by squidpy (which uses ``adata.uns[f"{color}_colors"]`` when present).
    For each chosen niche, its centre cell is a black star and its neighbours
    (``adata.obsm['{key}_indices']`` of `mfm.pp.niches`) are ringed in black, so one sees which
    cells a niche - the point cloud the niche models learn from - is made of. squidpy draws on
    a light copy holding only the needed columns: ``adata`` is never modified.

    Parameters
    ----------
    adata
        Annotated data matrix after `mfm.pp.niches` (only read).
    color
        Column of ``adata.obs`` (e.g. the cell class) or a gene to colour the cells by.
    centers
        Centre cells of the niches to mark (obs names or integer positions), all in one library.
        ``None``: ``n`` cells drawn at random (among ``groups`` when given).
    n
        Niches marked when ``centers`` is ``None``.
    groups
        Values of ``color`` (a categorical obs column) the random centres are drawn from.
    library_id
        The library (value of the ``library_key`` of `mfm.pp.niches`) to draw; by default that
        of the first centre, or the first library.
    key
        The ``key_added`` of `mfm.pp.niches`.
    size
        Size of the cells, passed to squidpy (its default when ``None``).
    random_state
        Seed of the random centres.
    ax
        Axes to draw into; a new figure when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    The `~matplotlib.axes.Axes` when not shown (the last two collections are the neighbours
    and the centres), the `~matplotlib.figure.Figure` when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.simulated_tissue(n_cells=500, random_state=0)
    >>> mfm.pp.niches(adata, n_neighbors=8, library_key="slice")
    >>> mfm.pl.spatial_niches(adata, color="cell_type", n=2)
    """
    check_positive_int("n", n)
    keys = NicheKeys(key)
    params, indices = niche_indices(adata, keys)
    spatial_key, library_key = params.get(SPATIAL_KEY, "spatial"), params.get(LIBRARY_KEY)
    libraries = (
        np.full(adata.n_obs, "all", dtype=object)
        if library_key is None
        else adata.obs[library_key].astype(str).to_numpy()
    )
    chosen = _centers(adata, centers, n, groups, color, libraries, library_id, random_state)
    library = libraries[chosen[0]] if library_id is None else str(library_id)
    if (libraries[chosen] != library).any():
        msg = f"The centres lie in several libraries {sorted(set(libraries[chosen]))}; pick one."
        raise ValueError(msg)
    in_library = libraries == library
    light = _light_copy(adata, color, spatial_key, in_library, library)
    fig, ax = new_axes(ax)
    with warnings.catch_warnings():  # squidpy's own, about its use of matplotlib
        warnings.filterwarnings("ignore", "The set_bad function", PendingDeprecationWarning)
        warnings.filterwarnings("ignore", "No data for colormapping", UserWarning)
        sq.pl.spatial_scatter(
            light, color=color, shape=None, library_key="library", library_id=[library],
            spatial_key=spatial_key, size=size, ax=ax, title=color,
        )  # fmt: skip
    coords = np.asarray(adata.obsm[spatial_key])
    neighbours = indices[chosen].ravel()
    ring = 2.0 * (size if size is not None else 15.0)
    ax.scatter(*coords[neighbours].T, s=ring, facecolors="none", edgecolors="black", lw=0.8)
    ax.scatter(*coords[chosen].T, s=4.0 * ring, marker="*", color="black", edgecolors="white")
    handles = [
        Line2D([], [], ls="", marker="*", color="black", ms=10, label="niche centre"),
        Line2D([], [], ls="", marker="o", mfc="none", mec="black", ms=7, label="its neighbours"),
    ]
    # a second legend, below the tissue; squidpy's legend of ``color`` stays ``ax.get_legend()``
    markers = Legend(
        ax, handles, [h.get_label() for h in handles], loc="upper left",
        bbox_to_anchor=(0.0, -0.07), ncols=2, frameon=False, fontsize="small",
    )  # fmt: skip
    ax.add_artist(markers)
    return show_or_return(fig, ax, show=show, return_fig=return_fig)


def _centers(
    adata: AnnData,
    centers: Sequence[int | str] | None,
    n: int,
    groups: str | Sequence[str] | None,
    color: str,
    libraries: np.ndarray,
    library_id: str | None,
    random_state: RandomState,
) -> np.ndarray:
    """Integer positions of the niche centres: given, or ``n`` drawn at random."""
    if centers is not None:
        positions = []
        for center in centers:
            if isinstance(center, str):
                if center not in adata.obs_names:
                    msg = f"`centers`: {center!r} is not an obs name of `adata`."
                    raise KeyError(msg)
                positions.append(adata.obs_names.get_loc(center))
            elif isinstance(center, int | np.integer) and 0 <= center < adata.n_obs:
                positions.append(int(center))
            else:
                msg = f"`centers` must hold obs names or positions < {adata.n_obs}, got {center!r}."
                raise ValueError(msg)
        if not positions:
            msg = "`centers` is empty; pass cells or `centers=None`."
            raise ValueError(msg)
        return np.asarray(positions)
    pool = np.ones(adata.n_obs, bool)
    if library_id is not None:
        pool &= libraries == str(library_id)
    else:
        pool &= libraries == libraries[0]
    if groups is not None:
        if color not in adata.obs.columns:
            msg = f"`groups` needs `color` to be a column of `adata.obs`, got {color!r}."
            raise KeyError(msg)
        wanted = [groups] if isinstance(groups, str) else list(groups)
        pool &= adata.obs[color].astype(str).isin(wanted).to_numpy()
    candidates = np.flatnonzero(pool)
    if len(candidates) == 0:
        msg = f"No cell to centre a niche on (library {library_id!r}, groups {groups!r})."
        raise ValueError(msg)
    rng = as_numpy_rng(random_state)
    return rng.choice(candidates, min(n, len(candidates)), replace=False)


def _light_copy(
    adata: AnnData, color: str, spatial_key: str, rows: np.ndarray, library: str
) -> AnnData:
    """The cells of ``rows`` with only what squidpy needs: coordinates, ``color``, its colours."""
    if color in adata.obs.columns:
        light = AnnData(obs=adata.obs.loc[rows, [color]].copy())
    elif color in adata.var_names:
        light = adata[rows, [color]].to_memory() if adata.isbacked else adata[rows, [color]].copy()
        light.obs = light.obs[[]]
    else:
        msg = f"`color={color!r}` is neither a column of `adata.obs` nor a gene of `adata`."
        raise KeyError(msg)
    light.obs["library"] = pd.Categorical([library] * light.n_obs)
    light.obsm[spatial_key] = np.asarray(adata.obsm[spatial_key])[rows]
    if f"{color}_colors" in adata.uns:
        light.uns[f"{color}_colors"] = list(adata.uns[f"{color}_colors"])
    return light
