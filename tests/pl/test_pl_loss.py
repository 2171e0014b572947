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


def test_loss_one_colour_per_method_solid_train_dashed_validation(adata):
    one = adata.uns["mfm"]["history"]
    scales = [("FM", 1), ("MFM", 2)]
    two = [one.assign(method=m, train_loss=one["train_loss"] * s) for m, s in scales]
    adata.uns["mfm"]["history"] = pd.concat(two, ignore_index=True)
    ax = mfm.pl.loss(adata, show=False)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["FM train", "FM validation", "MFM train", "MFM validation"]
    fm_train, fm_val, mfm_train, mfm_val = ax.get_lines()
    np.testing.assert_allclose(mfm_train.get_ydata(), one["train_loss"] * 2)
    assert fm_train.get_color() == fm_val.get_color() != mfm_train.get_color()
    assert mfm_train.get_color() == mfm_val.get_color()
    assert [line.get_linestyle() for line in ax.get_lines()] == ["-", "--", "-", "--"]


def test_loss_log_ticks_are_plain_numbers(adata):
    history = adata.uns["mfm"]["history"].copy()
    history["train_loss"] = np.linspace(35.0, 15.0, len(history))  # less than one decade
    history["val_loss"] = np.nan
    adata.uns["mfm"]["history"] = history
    ax = mfm.pl.loss(adata, show=False)
    ax.figure.canvas.draw()
    shown = [t.get_text() for t in ax.get_yticklabels(minor=True) + ax.get_yticklabels()]
    shown = [s for s in shown if s]
    assert "20" in shown
    assert all(s.replace(".", "").isdigit() for s in shown), shown  # no "3x10^1"
    # over several decades only the powers of ten are labelled
    history["train_loss"] = np.geomspace(100.0, 0.01, len(history))
    ax = mfm.pl.loss(adata, show=False)
    ax.figure.canvas.draw()
    minor = [t.get_text() for t in ax.get_yticklabels(minor=True) if t.get_text()]
    major = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert minor == []
    assert {"0.01", "0.1", "1", "10", "100"} <= set(major)
