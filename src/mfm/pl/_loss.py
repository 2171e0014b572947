"""Training curve: train and validation loss against the optimisation step."""

from __future__ import annotations

import warnings

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._keys import FIT_VERB, METHOD, STEP, TRAIN_LOSS, VAL_LOSS, Keys
from ._utils import (
    new_axes,
    outside_legend,
    palette,
    plain_log_ticks,
    read_table,
    show_or_return,
)


def loss(
    adata: AnnData,
    *,
    key: str = "mfm",
    log: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Plot the training and validation loss recorded by `mfm.tl.fit`.

    Reads ``adata.uns[key]['history']`` (columns ``step``, ``train_loss``, ``val_loss`` and,
    when several methods were fitted, ``method``); the training loss is drawn as a line at
    every recorded step, the validation loss as a line with markers at the steps where it was
    evaluated (``val_loss`` not NaN). Each method gets one colour (scanpy's palette, in order
    of first appearance): its training loss solid, its validation loss dashed with markers. The
    log axis is labelled in plain numbers (``0.3``, ``1``, ``3``), with labels at 2 and 5 times
    each power of ten when the losses span less than two decades.

    Parameters
    ----------
    adata
        Annotated data matrix on which `mfm.tl.fit` was run (only read).
    key
        The ``key_added`` given to `mfm.tl.fit`.
    log
        Use a logarithmic loss axis. Falls back to a linear one, with a warning, when a plotted
        loss is not positive.
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
    >>> adata = mfm.datasets.organoid_screen(n_patients=3, n_cells=100)
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    >>> model = mfm.tl.fit(adata, max_steps=100)
    >>> mfm.pl.loss(adata)
    """
    keys = Keys(key)
    history = read_table(adata, keys.uns, keys.history, FIT_VERB, (STEP, TRAIN_LOSS))
    fig, ax = new_axes(ax)
    methods = history[METHOD].unique().tolist() if METHOD in history.columns else [None]
    plotted = []
    for method, color in zip(methods, palette(len(methods)), strict=True):
        rows = history if method is None else history[history[METHOD] == method]
        prefix = "" if len(methods) == 1 else f"{method} "
        plotted += _plot_losses(ax, rows, prefix, color)
    if log:
        _set_log_scale(ax, np.concatenate(plotted))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    outside_legend(ax)
    return show_or_return(fig, ax, show=show, return_fig=return_fig)


def _plot_losses(ax: Axes, history, prefix: str, color: str) -> list[np.ndarray]:
    """Draw one method's train (solid) and validation (dashed, markers) losses; return them."""
    ax.plot(history[STEP], history[TRAIN_LOSS], "-", color=color, label=f"{prefix}train")
    plotted = [history[TRAIN_LOSS].to_numpy(dtype=float)]
    if VAL_LOSS in history.columns:
        val = history[[STEP, VAL_LOSS]].dropna()
        if len(val):
            label = f"{prefix}validation"
            ax.plot(val[STEP], val[VAL_LOSS], "o--", color=color, label=label, ms=3)
            plotted.append(val[VAL_LOSS].to_numpy(dtype=float))
    return plotted


def _set_log_scale(ax: Axes, values: np.ndarray) -> None:
    """Use a log loss axis unless some finite loss is <= 0 (flow matching losses are MSEs > 0)."""
    finite = values[np.isfinite(values)]
    if (finite <= 0).any():
        msg = "Some losses are <= 0; drawing a linear loss axis instead of `log=True`."
        warnings.warn(msg, UserWarning, stacklevel=3)
        return
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis, finite)
