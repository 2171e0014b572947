"""Real against generated niches of one condition, on two feature components."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._checks import check_positive_int
from .._keys import CONDITION_KEY, NicheKeys
from .._utils import RandomState, as_numpy_rng
from ..tl._niche_io import cell_features, generated_params, niche_indices
from ._utils import GREY, grid_axes, new_axes, palette, resolve_components, show_or_return

#: Cells drawn as grey context, at most.
MAX_CONTEXT = 5000
#: Side of one panel of the grid, in inches (2 x 4 panels: about 10 x 5 inches).
PANEL_SIZE = 2.4


def niches(
    adata: AnnData,
    generated: AnnData,
    *,
    condition: str | None = None,
    n: int = 4,
    components: Sequence[int | str] = (0, 1),
    key: str = "niche",
    random_state: RandomState = 0,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | list[Axes] | Figure | None:
    """Scatter real and generated niches of a condition on two features.

    ``n`` real niches whose centre cell has ``condition`` and ``n`` generated niches of
    ``condition`` are drawn at random; each panel shows one niche's points on the features
    ``components``, over all cells in light grey (at most 5000, drawn at random). Without
    ``ax``: a grid of two rows of 2.4-inch panels, real niches on top, generated below, with
    shared limits. With ``ax``: the points of all chosen real and generated niches in two
    colours on that axes. See `mfm.pl.niche_composition` for the cell types in the niches and
    `mfm.pl.spatial_niches` for real niches on the tissue.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.niches` (only read).
    generated
        Niches returned by :func:`mfm.tl.generate_niches`.
    condition
        Condition to show (a value of the generating model's ``condition_key``); ``None`` only
        for unconditional niches.
    n
        Niches per row.
    components
        The two features on the x and y axes: indices into the features or feature names.
    key
        The ``key_added`` of :func:`mfm.pp.niches` and of the niche ids of ``generated``.
    random_state
        Seed of the choice of niches and of the context cells.
    ax
        Axes to draw all niches into; a new grid of ``2 x n`` panels when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    When not shown: ``ax`` when given, else the list of ``2 n`` panels (real niches first).
    The `~matplotlib.figure.Figure` when ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.simulated_tissue(n_cells=500, random_state=0)
    >>> mfm.pp.niches(adata, n_neighbors=8, library_key="slice")
    >>> model = mfm.tl.fit_niches(adata, condition_key="cell_type", max_steps=100)
    >>> gen = mfm.tl.generate_niches(model, n_per_condition=20)
    >>> mfm.pl.niches(adata, gen, condition="type_0")
    """
    check_positive_int("n", n)
    keys = NicheKeys(key)
    rng = as_numpy_rng(random_state)
    cells, names = cell_features(adata, keys)
    dims = resolve_components(components, names)
    fake = _generated_niches(generated, keys, condition, n, rng)
    real = _real_niches(adata, generated, keys, condition, n, rng)
    points = np.asarray(generated.X, dtype=np.float64)[:, dims]
    real, fake = [cells[i][:, dims] for i in real], [points[i] for i in fake]
    context = cells[rng.permutation(len(cells))[:MAX_CONTEXT]][:, dims]
    colors = palette(2)
    if ax is not None:
        fig, panel = new_axes(ax)
        _scatter(panel, context, np.concatenate(real), colors[0], "real")
        _scatter(panel, None, np.concatenate(fake), colors[1], "generated")
        panel.legend(frameon=False, loc="best", fontsize="small", markerscale=2.0)
        _label(panel, names, dims, f"niches of {condition}" if condition else "niches")
        return show_or_return(fig, panel, show=show, return_fig=return_fig)
    ncols = max(len(real), len(fake))
    fig, grid = grid_axes(2 * ncols, ncols, panel_size=(PANEL_SIZE, PANEL_SIZE))
    panels = grid[: len(real)] + grid[ncols : ncols + len(fake)]
    for unused in set(grid) - set(panels):
        unused.remove()
    for i, (cloud, panel) in enumerate(zip(real + fake, panels, strict=True)):
        is_real = i < len(real)
        _scatter(panel, context, cloud, colors[0 if is_real else 1], None)
        _label(panel, names, dims, "real" if is_real else "generated")
        panel.set_xlim(*_limits(context[:, 0], real, fake, 0))
        panel.set_ylim(*_limits(context[:, 1], real, fake, 1))
    fig.suptitle(f"niches of {condition}" if condition else "niches")
    return show_or_return(fig, panels, show=show, return_fig=return_fig)


def _real_niches(
    adata: AnnData,
    generated: AnnData,
    keys: NicheKeys,
    condition: str | None,
    n: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Point positions of ``n`` random real niches whose centre has ``condition``."""
    condition_key = generated_params(generated, keys).get(CONDITION_KEY)
    _, indices = niche_indices(adata, keys)
    if condition_key is None:
        centres = np.arange(adata.n_obs)
    else:
        if condition_key not in adata.obs.columns:
            msg = f"`adata.obs[{condition_key!r}]` (the generating condition) not found."
            raise KeyError(msg)
        centres = np.flatnonzero((adata.obs[condition_key].astype(str) == condition).to_numpy())
    if len(centres) == 0:
        msg = f"No real niche has {condition_key} == {condition!r}."
        raise ValueError(msg)
    chosen = rng.choice(centres, min(n, len(centres)), replace=False)
    return [indices[c] for c in chosen]


def _generated_niches(
    generated: AnnData, keys: NicheKeys, condition: str | None, n: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Row positions of ``n`` random generated niches of ``condition``."""
    condition_key = generated_params(generated, keys).get(CONDITION_KEY)
    if (condition_key is None) != (condition is None):
        msg = (
            "Pass `condition` (a value of the generating model's condition) for conditional "
            "niches and `condition=None` for unconditional ones."
        )
        raise ValueError(msg)
    ids = generated.obs[keys.key_added].astype(str).to_numpy()
    if condition_key is not None:
        values = generated.obs[condition_key].astype(str).to_numpy()
        if condition not in set(values):
            msg = f"`generated` holds no niche of {condition!r}; it has {sorted(set(values))}."
            raise ValueError(msg)
        ids = np.where(values == condition, ids, None)
    names = [i for i in dict.fromkeys(ids) if i is not None]
    chosen = rng.choice(len(names), min(n, len(names)), replace=False)
    return [np.flatnonzero(ids == names[c]) for c in chosen]


def _scatter(
    ax: Axes, context: np.ndarray | None, points: np.ndarray, color: str, label: str | None
) -> None:
    """Grey context cells, then the niche points on top."""
    if context is not None:
        ax.scatter(context[:, 0], context[:, 1], s=2.0, color=GREY, rasterized=True)
    ax.scatter(points[:, 0], points[:, 1], s=18.0, color=color, label=label)


def _label(ax: Axes, names: list[str], dims: tuple[int, int], title: str) -> None:
    ax.set_xlabel(names[dims[0]])
    ax.set_ylabel(names[dims[1]])
    ax.set_title(title)


def _limits(
    context: np.ndarray, real: list[np.ndarray], fake: list[np.ndarray], dim: int
) -> tuple[float, float]:
    """Shared axis limits covering the context and every niche, with a 5 % margin."""
    values = np.concatenate([context, *[c[:, dim] for c in real + fake]])
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low or 1.0)
    return low - margin, high + margin
