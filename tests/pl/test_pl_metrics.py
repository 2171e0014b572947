import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

import mfm


def _points(ax: Axes) -> list[np.ndarray]:
    """The (x, y) points of each scatter collection, in drawing order."""
    return [np.asarray(c.get_offsets()) for c in ax.collections]


def test_metrics_one_box_per_method_and_split(adata, assert_unchanged):
    before = adata.copy()
    ax = mfm.pl.metrics(adata, show=False)
    assert isinstance(ax, Axes)
    table = adata.uns["mfm"]["metrics"]
    # 3 methods x 3 splits, one box and one strip each; every row is one point
    assert len(ax.patches) == 9
    assert len(ax.collections) == 9
    assert sum(len(p) for p in _points(ax)) == len(table)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mfm", "fm", "identity"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val", "test"]
    assert ax.get_ylabel() == "W1"
    assert_unchanged(adata, before)


def test_metrics_points_are_the_values_of_their_box(adata):
    ax = mfm.pl.metrics(adata, metric="mmd", show=False)
    table = adata.uns["mfm"]["metrics"]
    width = 0.8 / 3
    points = iter(_points(ax))
    # drawn split by split (train, val, test), then method by method
    for j, split in enumerate(["train", "val", "test"]):
        for i, method in enumerate(["mfm", "fm", "identity"]):
            xy = next(points)
            rows = table[(table["split"] == split) & (table["method"] == method)]
            np.testing.assert_allclose(xy[:, 1], rows["mmd"])
            centre = i - 0.4 + (j + 0.5) * width
            assert np.all(np.abs(xy[:, 0] - centre) <= width / 4 + 1e-12)


def test_metrics_single_split_has_no_legend(adata):
    ax = mfm.pl.metrics(adata, split="test", show=False)
    assert ax.get_legend() is None
    assert len(ax.patches) == 3
    assert sum(len(p) for p in _points(ax)) == 2 * 3  # 2 test populations x 3 methods


def test_metrics_split_list_and_by(adata):
    ax = mfm.pl.metrics(adata, split=["val", "test"], by="condition", hue="split", show=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["drugA", "drugB"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["val", "test"]
    assert sum(len(p) for p in _points(ax)) == 4 * 3
    assert ax.get_xlabel() == "condition"


def test_metrics_by_condition_never_pools_methods(adata):
    # one box per method and condition, coloured by method, each holding exactly its rows
    ax = mfm.pl.metrics(adata, by="condition", show=False)
    table = adata.uns["mfm"]["metrics"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mfm", "fm", "identity"]
    assert ax.get_legend().get_title().get_text() == "method"
    assert len(ax.patches) == 3 * 2
    points, width = iter(_points(ax)), 0.8 / 3
    colors = []
    for j, method in enumerate(["mfm", "fm", "identity"]):
        for i, condition in enumerate(["drugA", "drugB"]):
            collection = ax.collections[len(colors)]
            colors.append(to_hex(collection.get_facecolor()[0]))
            xy = next(points)
            rows = table[(table["method"] == method) & (table["condition"] == condition)]
            np.testing.assert_allclose(xy[:, 1], rows["w1"])
            centre = i - 0.4 + (j + 0.5) * width
            assert np.all(np.abs(xy[:, 0] - centre) <= width / 4 + 1e-12)
    assert colors[0] == colors[1] != colors[2] == colors[3] != colors[4] == colors[5]
    ax = mfm.pl.metrics(adata, by="condition", hue=None, show=False)
    assert len(ax.patches) == 2  # asked for: pooled
    ax = mfm.pl.metrics(adata, by="condition", palette=["red", "blue", "green"], show=False)
    assert to_hex(ax.collections[2].get_facecolor()[0]) == to_hex("blue")
    with pytest.raises(KeyError, match="hue='nothing'"):
        mfm.pl.metrics(adata, by="condition", hue="nothing", show=False)
    with pytest.raises(ValueError, match="both 'condition'"):
        mfm.pl.metrics(adata, by="condition", hue="condition", show=False)


def test_metrics_drops_uncomputed_rows(adata):
    ax = mfm.pl.metrics(adata, metric="corr", show=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mfm", "fm"]
    assert sum(len(p) for p in _points(ax)) == 2 * 8


def test_metrics_category_order_and_repeated_index(adata):
    table = adata.uns["mfm"]["metrics"].copy()
    table["method"] = pd.Categorical(table["method"], categories=["identity", "fm", "mfm", "cgfm"])
    table.index = table["population"]  # index labels repeat once per method
    table = table.drop(columns="split")
    adata.uns["mfm"]["metrics"] = table
    ax = mfm.pl.metrics(adata, metric="r2", show=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["identity", "fm", "mfm"]
    assert ax.get_legend() is None
    for xy, method in zip(_points(ax), ["identity", "fm", "mfm"], strict=True):
        np.testing.assert_allclose(xy[:, 1], table.loc[table["method"] == method, "r2"])


def test_metrics_ax_and_return_fig(adata):
    fig, ax = plt.subplots()
    assert mfm.pl.metrics(adata, ax=ax, show=False) is ax
    assert len(ax.patches) == 9
    assert mfm.pl.metrics(adata, ax=ax, return_fig=True) is fig
    assert isinstance(mfm.pl.metrics(adata, return_fig=True), Figure)


def test_metrics_errors(adata):
    with pytest.raises(KeyError, match="choose one of"):
        mfm.pl.metrics(adata, metric="population", show=False)
    with pytest.raises(ValueError, match="split"):
        mfm.pl.metrics(adata, split="holdout", show=False)
    with pytest.raises(KeyError, match=r"\['nothing'\]"):
        mfm.pl.metrics(adata, by="nothing", show=False)
    table = adata.uns["mfm"]["metrics"]
    adata.uns["mfm"]["metrics"] = table.loc[table["split"] == "train"]
    with pytest.raises(ValueError, match="No evaluated population"):
        mfm.pl.metrics(adata, split="test", show=False)
    del adata.uns["mfm"]["metrics"]
    with pytest.raises(KeyError, match=r"`mfm\.tl\.evaluate`"):
        mfm.pl.metrics(adata, show=False)


def test_metrics_draws_the_median_noise_floor(adata):
    table = adata.uns["mfm"]["metrics"]
    floors = {p: 0.1 * (i + 1) for i, p in enumerate(pd.unique(table["population"]))}
    table["w1_floor"] = table["population"].map(floors)
    ax = mfm.pl.metrics(adata, split="test", show=False)
    shown = table.loc[table["split"] == "test", "population"].unique()
    expected = np.median([floors[p] for p in shown])
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    np.testing.assert_allclose(dashed[0].get_ydata(), [expected, expected])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["noise floor (median)"]
    ax = mfm.pl.metrics(adata, split="test", floor=False, show=False)
    assert ax.get_legend() is None
    plt.close("all")
