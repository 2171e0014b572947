"""Cell-type composition of real and generated niches, per condition of the centre cell."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.neighbors import NearestNeighbors

from .._keys import CONDITION_KEY, NicheKeys
from ..tl._niche_io import cell_features, generated_params
from ._utils import Palette, category_colors, new_axes, outside_legend, show_or_return

#: Labels of the two bars of a condition.
REAL, GENERATED = "real", "generated"


def niche_composition(
    adata: AnnData,
    generated: AnnData,
    *,
    label_key: str,
    conditions: str | Sequence[str] | None = None,
    key: str = "niche",
    palette: Palette = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Stacked bars of the cell types in real and generated niches of each condition.

    For each condition (a value of the generating model's ``condition_key``, the label of the
    niche's centre cell), two horizontal bars give the fraction of the niche points of each
    cell type (``adata.obs[label_key]``, e.g. the cell class): ``real``, over the neighbours
    (``adata.obsm['{key}_indices']``) of every cell of that condition, and ``generated``, over
    the points of the generated niches of that condition. Generated points are expression
    profiles without a label: each gets the label of its nearest real cell in the feature space
    of the niches (``use_rep`` of `mfm.pp.niches`, Euclidean 1-nearest neighbour). A generator
    that learned the tissue gives each condition the composition of its real niches.

    Parameters
    ----------
    adata
        Annotated data matrix after `mfm.pp.niches` (only read).
    generated
        Niches returned by `mfm.tl.generate_niches` (conditional).
    label_key
        Categorical column of ``adata.obs`` with the cell type of each cell.
    conditions
        Conditions to show, top to bottom; ``None`` shows those of ``generated``.
    key
        The ``key_added`` of `mfm.pp.niches` and of the niche ids of ``generated``.
    palette
        Colours of the cell types: a matplotlib colormap name, a list, or a mapping;
        ``None`` uses ``adata.uns[f"{label_key}_colors"]`` when present, else scanpy's default.
    ax
        Axes to draw into; a new figure sized to the conditions when ``None``.
    show
        Show the figure; ``None`` follows ``scanpy.settings.autoshow``.
    return_fig
        Return the figure instead of the axes.

    Returns
    -------
    The `~matplotlib.axes.Axes` when not shown (bar ``2 i`` is the real niches of the ``i``-th
    condition, ``2 i + 1`` the generated ones), the `~matplotlib.figure.Figure` when
    ``return_fig``, else ``None``.

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.simulated_tissue(n_cells=500, random_state=0)
    >>> mfm.pp.niches(adata, n_neighbors=8, library_key="slice")
    >>> model = mfm.tl.fit_niches(adata, condition_key="cell_type", max_steps=100)
    >>> gen = mfm.tl.generate_niches(model, n_per_condition=20)
    >>> mfm.pl.niche_composition(adata, gen, label_key="cell_type")
    """
    keys = NicheKeys(key)
    cells, _ = cell_features(adata, keys)
    condition_key = generated_params(generated, keys).get(CONDITION_KEY)
    if condition_key is None:
        msg = "`generated` holds unconditional niches; `niche_composition` needs conditions."
        raise ValueError(msg)
    for column in (label_key, condition_key):
        if column not in adata.obs.columns:
            msg = f"`adata.obs[{column!r}]` not found; pass the cell-type column as `label_key`."
            raise KeyError(msg)
    labels = adata.obs[label_key]
    levels = _levels(labels)
    gen_conditions = generated.obs[condition_key].astype(str).to_numpy()
    shown = _conditions(conditions, gen_conditions)
    codes = pd.Categorical(labels.astype(str), categories=[str(v) for v in levels]).codes
    nearest = NearestNeighbors(n_neighbors=1).fit(cells)
    gen_points = np.asarray(generated.X, dtype=np.float64)
    gen_codes = codes[nearest.kneighbors(gen_points, return_distance=False)[:, 0]]
    centre_conditions = adata.obs[condition_key].astype(str).to_numpy()
    indices = np.asarray(adata.obsm[keys.obsm_indices])
    rows, names = [], []
    for condition in shown:
        centres = np.flatnonzero(centre_conditions == condition)
        rows.append(_fractions(codes[indices[centres].ravel()], len(levels)))
        rows.append(_fractions(gen_codes[gen_conditions == condition], len(levels)))
        names += [f"{condition}  {REAL}", GENERATED]
    fractions = np.asarray(rows)
    colors = category_colors(adata, label_key, levels, palette)
    if ax is None:
        fig, ax = new_axes(None)
        fig.set_size_inches(6.5, 0.8 + 0.32 * len(rows))
    else:
        fig, ax = new_axes(ax)
    y = _bar_positions(len(shown))
    left = np.zeros(len(rows))
    for j, (level, color) in enumerate(zip(levels, colors, strict=True)):
        ax.barh(y, fractions[:, j], left=left, color=color, label=str(level), height=0.8)
        left += fractions[:, j]
    ax.set_yticks(y, names, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"fraction of niche points ({label_key})")
    outside_legend(ax, title=label_key, fontsize="small")
    return show_or_return(fig, ax, show=show, return_fig=return_fig)


def _levels(labels: pd.Series) -> list:
    """The cell types: category order for categoricals, sorted values otherwise."""
    if isinstance(labels.dtype, pd.CategoricalDtype):
        return list(labels.cat.categories)
    return sorted(pd.unique(labels.dropna()), key=str)


def _conditions(conditions: str | Sequence[str] | None, generated: np.ndarray) -> list[str]:
    """The conditions to show; each must have generated niches."""
    present = list(dict.fromkeys(generated))
    shown = (
        present
        if conditions is None
        else [conditions]
        if isinstance(conditions, str)
        else [str(c) for c in conditions]
    )
    missing = [c for c in shown if c not in present]
    if missing or not shown:
        msg = f"`generated` holds no niche of {missing or shown}; it has {present}."
        raise ValueError(msg)
    return shown


def _fractions(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Fraction of each label code among ``codes`` (missing labels, code -1, left out)."""
    counts = np.bincount(codes[codes >= 0], minlength=n_levels).astype(float)
    return counts / max(counts.sum(), 1.0)


def _bar_positions(n_conditions: int) -> np.ndarray:
    """Y of the bars: pairs (real, generated) with a gap between conditions."""
    return (np.arange(n_conditions)[:, None] * 2.5 + np.array([0.0, 0.9])).ravel()
