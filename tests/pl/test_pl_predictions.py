import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from scipy import sparse

import mfm

POPULATION = "mfm_population"


def _observed(adata, population, dims, use_rep=None):
    x = adata.obsm[use_rep] if use_rep else adata.X
    rows = (adata.obs[POPULATION] == population).to_numpy()
    return np.asarray(x)[rows][:, dims]


def _check_panel(ax, adata, pred, population, dims, use_rep=None, control=None):
    """Grey source cells, then observed, then predicted cells of ``population`` on ``dims``."""
    source, observed, predicted = (np.asarray(c.get_offsets()) for c in ax.collections)
    control = control or population.split("_")[0] + "_control"
    np.testing.assert_allclose(source, _observed(adata, control, dims, use_rep))
    np.testing.assert_allclose(observed, _observed(adata, population, dims, use_rep))
    rows = (pred.obs[POPULATION] == population).to_numpy()
    np.testing.assert_allclose(predicted, pred.X[rows][:, dims])
    np.testing.assert_allclose(ax.collections[0].get_facecolor()[0][:3], to_rgb("lightgray"))
    assert ax.get_title() == f"{population} ({population.split('_')[1]})"  # no "|" in these ids


def test_predictions_single_population(adata, pred, assert_unchanged):
    before, pred_before = adata.copy(), pred.copy()
    ax = mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0, 1), show=False)
    assert isinstance(ax, Axes)
    # p2: 10 control cells, 11 treated cells, 10 predicted cells (one per control cell)
    assert [len(c.get_offsets()) for c in ax.collections] == [10, 11, 10]
    _check_panel(ax, adata, pred, "p2_drugA", [0, 1])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("g0", "g1")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["control (source)", "observed", "predicted"]
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1  # outside
    assert_unchanged(adata, before)
    assert_unchanged(pred, pred_before)


def test_predictions_components_by_name(adata, pred):
    ax = mfm.pl.predictions(adata, pred, population="p3_drugB", components=("g2", 0), show=False)
    _check_panel(ax, adata, pred, "p3_drugB", [2, 0])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("g2", "g0")


def test_predictions_grid(adata, pred):
    populations = ["p2_drugA", "p2_drugB", "p3_drugA"]
    axes = mfm.pl.predictions(
        adata, pred, population=populations, ncols=2, components=(0, 1), show=False
    )
    assert isinstance(axes, list)
    assert len(axes) == 3
    fig = axes[0].figure
    assert len(fig.axes) == 3  # the fourth grid cell is removed
    for ax, population in zip(axes, populations, strict=True):
        _check_panel(ax, adata, pred, population, [0, 1])
    # one legend for the figure, right of the panels; shared axes; 3.2-inch panels
    assert all(ax.get_legend() is None for ax in axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "control (source)",
        "observed",
        "predicted",
    ]
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[2])
    assert axes[0].get_shared_y_axes().joined(axes[1], axes[2])
    assert axes[0].get_xlim() == axes[2].get_xlim()
    np.testing.assert_allclose(fig.get_size_inches(), [6.4, 6.4])
    fig = mfm.pl.predictions(adata, pred, population=populations, return_fig=True)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3


def test_predictions_list_of_one_returns_a_list(adata, pred):
    axes = mfm.pl.predictions(adata, pred, population=["p3_drugA"], show=False)
    assert isinstance(axes, list)
    assert len(axes) == 1


def test_predictions_uses_given_ax(adata, pred):
    fig, ax = plt.subplots()
    assert mfm.pl.predictions(adata, pred, population="p2_drugB", ax=ax, show=False) is ax
    assert [len(c.get_offsets()) for c in ax.collections] == [10, 12, 10]
    assert mfm.pl.predictions(adata, pred, population=["p2_drugB"], ax=ax, return_fig=True) is fig
    with pytest.raises(ValueError, match="one panel"):
        mfm.pl.predictions(adata, pred, population=["p2_drugA", "p2_drugB"], ax=ax, show=False)


def test_predictions_on_an_obsm_representation(adata, make_pred, assert_unchanged):
    adata.uns["mfm"]["params"]["use_rep"] = "X_pca"
    pred = make_pred(adata, use_rep="X_pca")
    before = adata.copy()
    ax = mfm.pl.predictions(adata, pred, population="p3_drugA", components=(1, 0), show=False)
    _check_panel(ax, adata, pred, "p3_drugA", [1, 0], use_rep="X_pca")
    assert ax.get_xlabel() == "X_pca_1"
    assert_unchanged(adata, before)


def test_predictions_sparse_x_and_no_params(adata, pred):
    dense = adata.X.copy()
    adata.X = sparse.csr_matrix(dense)
    del adata.uns["mfm"]["params"]
    ax = mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0, 1), show=False)
    adata.X = dense
    _check_panel(ax, adata, pred, "p2_drugA", [0, 1])


def test_predictions_source_from_pred_or_table(adata, pred):
    rows = (pred.obs["mfm_population"] == "p2_drugA").to_numpy()
    sources = pred.obs["mfm_source"].astype(str).to_numpy()
    sources[rows] = "p3_control"  # the prediction says where it started from
    pred.obs["mfm_source"] = sources
    ax = mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0, 1), show=False)
    _check_panel(ax, adata, pred, "p2_drugA", [0, 1], control="p3_control")
    del pred.obs["mfm_source"]  # not recorded: the pairing of the populations table
    ax = mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0, 1), show=False)
    _check_panel(ax, adata, pred, "p2_drugA", [0, 1])
    pred.obs["mfm_source"] = np.where(np.arange(pred.n_obs) % 2, "p2_control", "p3_control")
    with pytest.raises(ValueError, match="several sources"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", show=False)


def test_predictions_population_errors(adata, pred):
    with pytest.raises(KeyError, match="not in"):
        mfm.pl.predictions(adata, pred, population="p9_drugA", show=False)
    with pytest.raises(ValueError, match="control population"):
        mfm.pl.predictions(adata, pred, population="p2_control", show=False)
    with pytest.raises(ValueError, match=r"no predicted cell.*mfm\.tl\.predict"):
        mfm.pl.predictions(adata, pred, population="p0_drugA", show=False)
    with pytest.raises(ValueError, match="empty"):
        mfm.pl.predictions(adata, pred, population=[], show=False)


def test_predictions_component_errors(adata, pred):
    with pytest.raises(ValueError, match="two feature"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0,), show=False)
    with pytest.raises(KeyError, match="'g7'"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0, "g7"), show=False)
    with pytest.raises(ValueError, match="out of range"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0, 3), show=False)
    with pytest.raises(TypeError, match="ints or feature names"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", components=(0, 1.0), show=False)


def test_predictions_missing_inputs_name_the_producer(adata, pred):
    pred.var_names = ["a", "b", "c"]
    with pytest.raises(ValueError, match="var_names"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", show=False)
    del pred.obs[POPULATION]
    with pytest.raises(KeyError, match=r"pred\.obs.*`mfm\.tl\.predict`"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", show=False)
    del adata.obs[POPULATION]
    with pytest.raises(KeyError, match=r"adata\.obs.*`mfm\.pp\.populations`"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", show=False)
    del adata.uns["mfm"]["populations"]
    with pytest.raises(KeyError, match=r"`mfm\.pp\.populations`"):
        mfm.pl.predictions(adata, pred, population="p2_drugA", show=False)


def test_predictions_default_axes_are_the_largest_observed_effects(adata, pred):
    # shift g2 strongly and g0 a little in the treated cells of p2_drugA only
    treated = (adata.obs[POPULATION] == "p2_drugA").to_numpy()
    adata.X[treated, 2] += 30.0
    adata.X[treated, 0] -= 6.0
    ax = mfm.pl.predictions(adata, pred, population="p2_drugA", show=False)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("g2", "g0")
    _check_panel(ax, adata, pred, "p2_drugA", [2, 0])


def test_predictions_shared_pca(adata, pred):
    from sklearn.decomposition import PCA

    ax = mfm.pl.predictions(adata, pred, population="p2_drugB", components="pca", show=False)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PC1", "PC2")
    groups = [_observed(adata, "p2_control", [0, 1, 2]), _observed(adata, "p2_drugB", [0, 1, 2])]
    groups.append(pred.X[(pred.obs[POPULATION] == "p2_drugB").to_numpy()])
    pca = PCA(n_components=2, svd_solver="full").fit(np.concatenate(groups))
    for collection, x in zip(ax.collections, groups, strict=True):
        np.testing.assert_allclose(collection.get_offsets(), pca.transform(x), atol=1e-5)
    with pytest.raises(ValueError, match="'effect', 'pca'"):
        mfm.pl.predictions(adata, pred, population="p2_drugB", components="umap", show=False)


def test_title_names_the_condition_once():
    from mfm.pl._cells import title

    table = pd.DataFrame({"condition": ["drugA", "drugA"]}, index=["P1|drugA", "P1_x"])
    assert title(table, "P1|drugA") == "P1|drugA"
    assert title(table, "P1_x") == "P1_x (drugA)"
