import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import mfm


def test_loss_lines_match_history(adata, assert_unchanged):
    before = adata.copy()
    ax = mfm.pl.loss(adata, show=False)
    assert isinstance(ax, Axes)
    history = adata.uns["mfm"]["history"]
    train, val = ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), history["step"])
    np.testing.assert_allclose(train.get_ydata(), history["train_loss"])
    # validation only where evaluated: steps 0 and 50
    np.testing.assert_array_equal(val.get_xdata(), [0, 50])
    np.testing.assert_allclose(val.get_ydata(), [2.0, 2.0 / 51.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "step"
    assert_unchanged(adata, before)


def test_loss_linear_and_without_val(adata):
    adata.uns["mfm"]["history"] = adata.uns["mfm"]["history"].drop(columns="val_loss")
    ax = mfm.pl.loss(adata, log=False, show=False)
    assert len(ax.get_lines()) == 1
    assert ax.get_yscale() == "linear"


def test_loss_nonpositive_falls_back_to_linear(adata):
    history = adata.uns["mfm"]["history"].copy()
    history.loc[3, "train_loss"] = 0.0
    adata.uns["mfm"]["history"] = history
    with pytest.warns(UserWarning, match="linear"):
        ax = mfm.pl.loss(adata, show=False)
    assert ax.get_yscale() == "linear"


def test_loss_uses_given_ax_and_returns_fig(adata):
    fig, ax = plt.subplots()
    assert mfm.pl.loss(adata, ax=ax, show=False) is ax
    assert len(ax.get_lines()) == 2
    returned = mfm.pl.loss(adata, ax=ax, return_fig=True)
    assert isinstance(returned, Figure)
    assert returned is fig
    assert mfm.pl.loss(adata, show=True) is None


def test_loss_reads_key_added(adata):
    adata.uns["run2"] = adata.uns.pop("mfm")
    assert isinstance(mfm.pl.loss(adata, key="run2", show=False), Axes)
    with pytest.raises(KeyError, match=r"`mfm\.tl\.fit`"):
        mfm.pl.loss(adata, show=False)


def test_loss_missing_history_names_fit(adata):
    del adata.uns["mfm"]["history"]
    with pytest.raises(KeyError, match=r"\['history'\].*`mfm\.tl\.fit`"):
        mfm.pl.loss(adata, show=False)


def test_loss_one_colour_pair_per_method(adata):
    one = adata.uns["mfm"]["history"]
    scales = [("FM", 1), ("MFM", 2)]
    two = [one.assign(method=m, train_loss=one["train_loss"] * s) for m, s in scales]
    adata.uns["mfm"]["history"] = pd.concat(two, ignore_index=True)
    ax = mfm.pl.loss(adata, show=False)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["FM train", "FM validation", "MFM train", "MFM validation"]
    mfm_train = ax.get_lines()[2]
    np.testing.assert_allclose(mfm_train.get_ydata(), one["train_loss"] * 2)
    assert len({line.get_color() for line in ax.get_lines()}) == 4
