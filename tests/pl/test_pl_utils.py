import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mfm.pl._utils import grid_axes, new_axes, palette, read_table, show_or_return


@pytest.fixture
def autoshow():
    """Restore ``scanpy.settings.autoshow`` (a class property: monkeypatch cannot undo it)."""
    saved = sc.settings.autoshow
    yield
    sc.settings.autoshow = saved


def test_show_or_return_rule(autoshow):
    fig, ax = plt.subplots()
    assert show_or_return(fig, ax, show=False, return_fig=True) is fig
    assert show_or_return(fig, ax, show=True, return_fig=True) is fig
    assert show_or_return(fig, ax, show=False, return_fig=False) is ax
    assert show_or_return(fig, [ax], show=True, return_fig=False) is None
    sc.settings.autoshow = False
    assert show_or_return(fig, ax, show=None, return_fig=False) is ax
    sc.settings.autoshow = True
    assert show_or_return(fig, ax, show=None, return_fig=False) is None


def test_new_axes_reuses_the_given_axes():
    fig, ax = plt.subplots()
    assert new_axes(ax) == (fig, ax)
    new_fig, new_ax = new_axes(None)
    assert isinstance(new_fig, Figure)
    assert isinstance(new_ax, Axes)
    assert new_fig is not fig


def test_grid_axes_removes_unused_cells():
    width, height = plt.rcParams["figure.figsize"]
    fig, panels = grid_axes(5, ncols=2)
    assert len(panels) == 5
    assert len(fig.axes) == 5
    np.testing.assert_allclose(fig.get_size_inches(), [2 * width, 3 * height])
    fig, panels = grid_axes(2, ncols=4)  # fewer panels than columns: one row of two
    np.testing.assert_allclose(fig.get_size_inches(), [2 * width, height])


def test_palette_uses_scanpy_colours():
    from scanpy.plotting.palettes import default_20, default_102

    assert palette(3) == list(default_20[:3])
    assert palette(30) == list(default_102[:30])
    assert len(palette(250)) == 250


def test_read_table_errors(adata):
    with pytest.raises(KeyError, match=r"mfm\.tl\.fit"):
        read_table(adata, "other", "history", "mfm.tl.fit")
    with pytest.raises(KeyError, match=r"\['loss'\].*mfm\.tl\.fit"):
        read_table(adata, "mfm", "history", "mfm.tl.fit", ("step", "loss"))
    adata.uns["mfm"]["history"] = {"step": [0]}
    with pytest.raises(TypeError, match="DataFrame"):
        read_table(adata, "mfm", "history", "mfm.tl.fit")
    table = read_table(adata, "mfm", "populations", "mfm.pp.populations", ("source",))
    assert isinstance(table, pd.DataFrame)
