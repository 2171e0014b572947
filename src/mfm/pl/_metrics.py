"""Box plot of one evaluation metric per method (and split), with one point per population."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .._checks import check_choice
from .._keys import EVALUATE_VERB, METHOD, SPLIT, SPLITS, Keys
from ._utils import (
    Palette,
    colors_from_palette,
    new_axes,
    outside_legend,
    read_table,
    show_or_return,
)
from ._utils import palette as palette_of

#: Axis labels of the metrics written by `mfm.tl.evaluate`; other columns keep their name.
_LABELS = {
    "w1": "W1",
    "w2": "W2",
    "mmd": "MMD",
    "energy": "energy distance",
    "r2": "$R^2$ of means",
    "corr": "correlation",
}
#: Total width of the boxes drawn at one group position.
_GROUP_WIDTH = 0.8
#: Golden-ratio conjugate: consecutive multiples mod 1 spread points evenly without an RNG.
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def metrics(
    adata: AnnData,
    *,
    metric: str = "w1",
    key: str = "mfm",
    by: str = METHOD,
    hue: str | None = "auto",
    split: str | Sequence[str] | None = None,
    floor: bool = True,
    palette: Palette = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Box plot of one metric of `mfm.tl.evaluate`: one box per group of ``by`` and per ``hue``.

    Reads ``adata.uns[key]['metrics']`` (one row per method and predicted population). Each box
    summarises the populations of one group and one hue level, drawn side by side at the
    group's position and coloured by the hue level (a legend names them); each population is a
    point on top of its box, spread horizontally by a deterministic jitter. With the default
    ``hue="auto"``, methods are never pooled: ``by="condition"`` draws one box per method and
    condition, coloured by method; ``by="method"`` colours by split when several are shown.

    Parameters
    ----------
    adata
        Annotated data matrix on which `mfm.tl.evaluate` was run (only read).
    metric
        Numeric column of the metrics table, e.g. ``"w1"``, ``"w2"``, ``"mmd"``, ``"r2"``,
        ``"corr"``. Rows where it is NaN (not computed) are left out.
    key
        The ``key_added`` given to `mfm.tl.evaluate`.
    by
        Column of the metrics table giving the groups on the x axis (``"method"``, ``"condition"``,
        a sample column, ...). Categorical columns keep their category order, others the order of
        first appearance.
    hue
        Column of the metrics table splitting each group into coloured boxes. ``"auto"``:
        ``"method"`` when ``by`` is another column and the table holds several methods, else
        ``"split"`` when several splits are shown, else none. ``None``: one box per group.
    split
        Keep only these splits (``"train"``, ``"val"``, ``"test"``); ``None`` keeps all rows.
    floor
        Draw the median noise floor of the shown populations (column ``'{metric}_floor'``
        of `mfm.tl.evaluate`: the metric between two halves of the observed cells) as a
        dashed line: about the best score any method can reach.
    palette
        Colours of the hue levels: a matplotlib colormap name, a list of colours, or a mapping
        level -> colour; scanpy's default palette when ``None``.
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

    Examples
    --------
    >>> import mfm
    >>> adata = mfm.datasets.organoid_screen(n_patients=4, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> mfm.pp.split(adata, by="patient", test=["P03"])
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> table = mfm.tl.evaluate(adata, mfm.tl.predict(adata, model))
    >>> table = mfm.tl.evaluate(adata, mfm.tl.baseline(adata, method="identity"))
    >>> mfm.pl.metrics(adata, by="condition", split="test")
    """
    keys = Keys(key)
    table = read_table(adata, keys.uns, keys.metrics, EVALUATE_VERB, (by,))
    computed = _metric_values(table, metric, keys.uns).notna().to_numpy()
    table = _select_splits(table.loc[computed], split)
    hue = _resolve_hue(table, by, hue)
    groups = _ordered_levels(table[by])
    levels = [None] if hue is None else _hue_levels(table, hue)
    fig, ax = new_axes(ax)
    colors = palette_of(len(levels)) if palette is None else colors_from_palette(palette, levels)
    width = _GROUP_WIDTH / len(levels)
    # positional masks: the metrics table may repeat index labels (one row per method)
    values, group_of = table[metric].to_numpy(dtype=float), table[by].to_numpy()
    for j, (level, color) in enumerate(zip(levels, colors, strict=True)):
        in_level = np.ones(len(table), bool) if level is None else _is(table[hue], level)
        offset = -_GROUP_WIDTH / 2 + (j + 0.5) * width
        for i, group in enumerate(groups):
            y = values[in_level & (group_of == group)]
            if len(y):
                _box_with_points(ax, y, position=i + offset, width=width, color=color)
    ax.set_xticks(np.arange(len(groups)), [str(g) for g in groups])
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_xlabel(by)
    ax.set_ylabel(_LABELS.get(metric, metric))
    handles = [
        Patch(facecolor=c, alpha=0.4, edgecolor="black", label=str(v))
        for v, c in zip(levels, colors, strict=True)
    ]
    handles = handles if hue is not None else []
    if floor and f"{metric}_floor" in table.columns:
        handles.append(_draw_floor(ax, table, metric))
    if handles:
        outside_legend(ax, handles=handles, title=hue)
    return show_or_return(fig, ax, show=show, return_fig=return_fig)


def _resolve_hue(table: pd.DataFrame, by: str, hue: str | None) -> str | None:
    """Column colouring the boxes: ``hue`` itself, or the ``"auto"`` rule of `metrics`."""
    if hue == "auto":
        if by != METHOD and METHOD in table.columns and table[METHOD].nunique() > 1:
            return METHOD
        if by != SPLIT and SPLIT in table.columns and table[SPLIT].nunique() > 1:
            return SPLIT
        return None
    if hue is not None:
        if hue not in table.columns:
            msg = f"`hue={hue!r}` is not a column of the metrics table; has {list(table.columns)}."
            raise KeyError(msg)
        if hue == by:
            msg = f"`hue` and `by` are both {by!r}; pick another `hue` or `hue=None`."
            raise ValueError(msg)
    return hue


def _hue_levels(table: pd.DataFrame, hue: str) -> list:
    """Levels of the hue column present: splits train/val/test first, else `_ordered_levels`."""
    present = _ordered_levels(table[hue])
    if hue != SPLIT:
        return present
    return sorted(present, key=lambda s: SPLITS.index(s) if s in SPLITS else len(SPLITS))


def _draw_floor(ax: Axes, table: pd.DataFrame, metric: str) -> Line2D:
    """Dashed line at the median floor over the shown populations (each counted once)."""
    floors = table.drop_duplicates(subset="population")[f"{metric}_floor"].astype(float)
    level = float(np.nanmedian(floors))
    ax.axhline(level, color="0.3", linestyle="--", linewidth=1, zorder=1)
    return Line2D([], [], color="0.3", linestyle="--", label="noise floor (median)")


def _metric_values(table: pd.DataFrame, metric: str, key: str) -> pd.Series:
    """Return the numeric column ``metric`` of the metrics table, or raise naming the choices."""
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    if metric not in numeric:
        msg = (
            f"`metric={metric!r}` is not a numeric column of `adata.uns[{key!r}]['metrics']`; "
            f"choose one of {numeric} or compute it with `{EVALUATE_VERB}(..., metrics=...)`."
        )
        raise KeyError(msg)
    if table[metric].isna().all():
        msg = f"`metric={metric!r}` is NaN for every row of `adata.uns[{key!r}]['metrics']`."
        raise ValueError(msg)
    return table[metric]


def _select_splits(table: pd.DataFrame, split: str | Sequence[str] | None) -> pd.DataFrame:
    """Keep the rows of the requested splits (all rows for ``None``)."""
    if split is None:
        return table
    wanted = [split] if isinstance(split, str) else list(split)
    for name in wanted:
        check_choice("split", name, SPLITS)
    if SPLIT not in table.columns:
        msg = (
            f"`split={split!r}` needs a {SPLIT!r} column in the metrics table; see `mfm.pp.split`."
        )
        raise KeyError(msg)
    kept = table.loc[table[SPLIT].isin(wanted).to_numpy()]
    if kept.empty:
        msg = f"No evaluated population in `split={split!r}`; present: {sorted(set(table[SPLIT]))}."
        raise ValueError(msg)
    return kept


def _is(column: pd.Series, value: object) -> np.ndarray:
    """Return the boolean mask ``column == value`` as a numpy array."""
    return (column == value).to_numpy()


def _ordered_levels(column: pd.Series) -> list:
    """Return the levels of ``column`` present in it: category order, else first appearance."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna())
        return [level for level in column.cat.categories if level in present]
    return list(pd.unique(column.dropna()))


def _box_with_points(ax: Axes, y: np.ndarray, *, position: float, width: float, color: str) -> None:
    """Draw one box of ``y`` at ``position`` and its points over the inner half of the box."""
    ax.boxplot(
        y,
        positions=[position],
        manage_ticks=False,
        widths=[width * 0.9],
        patch_artist=True,
        showfliers=False,  # every point is drawn on top
        boxprops={"facecolor": color, "alpha": 0.4, "edgecolor": "black"},
        medianprops={"color": "black"},
    )
    jitter = (np.mod(np.arange(len(y)) * _GOLDEN, 1.0) - 0.5) * width * 0.5
    ax.scatter(
        position + jitter, y, s=12, color=color, edgecolors="black", linewidths=0.3, zorder=3
    )
