"""`mfm.pl.joint_embedding`, `effects`, `marker_densities`: numbers drawn against known answers."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgb
from scipy.stats import gaussian_kde
from sklearn.decomposition import PCA

import mfm

POPULATION = "mfm_population"


def _cells(data, population, column=POPULATION):
    return np.asarray(data.X)[(data.obs[column] == population).to_numpy()]


def _groups(adata, pred, population):
    control = population.split("_")[0] + "_control"
    return _cells(adata, control), _cells(adata, population), _cells(pred, population)


@pytest.fixture
def shifted(adata):
    """p2_drugA's treated cells moved by +4 on g1 and -2 on g2: a known observed effect."""
    rows = (adata.obs[POPULATION] == "p2_drugA").to_numpy()
    adata.X[rows, 1] += 4.0
    adata.X[rows, 2] -= 2.0
    return adata


def test_effects_heatmap_holds_observed_and_predicted_mean_shifts(shifted, pred, assert_unchanged):
    adata = shifted
    rows = (pred.obs[POPULATION] == "p3_drugB").to_numpy()
    pred.X[rows] += np.array([1.0, -2.0, 3.0], dtype=np.float32)  # a shift that varies
    before, pred_before = adata.copy(), pred.copy()
    ids = ["p2_drugA", "p3_drugB"]
    ax = mfm.pl.effects(adata, pred, population=ids, show=False)
    control, observed, predicted = _groups(adata, pred, "p2_drugA")
    # features by decreasing standardised observed effect, averaged over the two populations
    effects = []
    for population in ids:
        c, o, _ = _groups(adata, pred, population)
        effects.append(np.abs(o.mean(0) - c.mean(0)) / c.std(0))
    order = np.argsort(-np.mean(effects, axis=0), kind="stable")
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"g{i}" for i in order]
    image = ax.get_images()[0].get_array()
    assert image.shape == (4, 3)
    np.testing.assert_allclose(image[0], (observed.mean(0) - control.mean(0))[order], rtol=1e-5)
    np.testing.assert_allclose(image[1], (predicted.mean(0) - control.mean(0))[order], rtol=1e-5)
    np.testing.assert_allclose(image[1], 5.0, rtol=1e-5)  # pred = control + 5 everywhere
    # one colour scale centred at 0, as wide as the largest shift
    limit = np.abs(image).max()
    assert ax.get_images()[0].get_clim() == pytest.approx((-limit, limit))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "p2_drugA (drugA)  observed"
    assert labels[1] == "predicted (r = n/a)"  # a constant predicted shift has no correlation
    c, o, _ = _groups(adata, pred, "p3_drugB")
    r = np.corrcoef(o.mean(0) - c.mean(0), [6.0, 3.0, 8.0])[0, 1]
    assert labels[3] == f"predicted (r = {r:.2f})"
    assert_unchanged(adata, before)
    assert_unchanged(pred, pred_before)


def test_effects_given_features_and_standardized(shifted, pred):
    ax = mfm.pl.effects(
        shifted, pred, population="p2_drugA", features=["g2", 0], standardize=True, show=False
    )
    control, observed, _ = _groups(shifted, pred, "p2_drugA")
    expected = (observed.mean(0) - control.mean(0)) / control.std(0)
    np.testing.assert_allclose(ax.get_images()[0].get_array()[0], expected[[2, 0]], rtol=1e-5)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["g2", "g0"]
    assert "standardised" in ax.figure.axes[1].get_ylabel()
    with pytest.raises(ValueError, match="repeats"):
        mfm.pl.effects(shifted, pred, features=["g2", 2], show=False)
    with pytest.raises(KeyError, match="'g9'"):
        mfm.pl.effects(shifted, pred, features=["g9"], show=False)


def test_effects_defaults_to_every_predicted_population(adata, pred):
    ax = mfm.pl.effects(adata, pred, n_features=2, show=False)
    assert ax.get_images()[0].get_array().shape == (8, 2)
    labels = [t.get_text() for t in ax.get_yticklabels()][::2]
    assert labels == [
        f"{p} ({p.split('_')[1]})  observed" for p in pred.obs[POPULATION].cat.categories
    ]


def test_marker_densities_are_the_kernel_densities(shifted, pred, assert_unchanged):
    before = shifted.copy()
    panels = mfm.pl.marker_densities(shifted, pred, population="p2_drugA", n_features=2, show=False)
    assert [p.get_title() for p in panels] == ["g1", "g2"]  # the two largest observed effects
    control, observed, predicted = _groups(shifted, pred, "p2_drugA")
    panel = panels[0]
    observed_line, predicted_line = panel.get_lines()
    grid = observed_line.get_xdata()
    pooled = np.concatenate([control[:, 1], observed[:, 1], predicted[:, 1]])
    margin = 0.05 * (pooled.max() - pooled.min())
    assert grid[0] == pytest.approx(pooled.min() - margin)
    assert grid[-1] == pytest.approx(pooled.max() + margin)
    np.testing.assert_allclose(observed_line.get_ydata(), gaussian_kde(observed[:, 1])(grid))
    np.testing.assert_allclose(predicted_line.get_ydata(), gaussian_kde(predicted[:, 1])(grid))
    assert (observed_line.get_linestyle(), predicted_line.get_linestyle()) == ("-", "--")
    (fill,) = panel.collections  # the control, filled in grey
    np.testing.assert_allclose(fill.get_facecolor()[0][:3], to_rgb("lightgray"))
    top = fill.get_paths()[0].vertices
    inside = (top[:, 0] > grid[0]) & (top[:, 0] < grid[-1]) & (top[:, 1] > 0)
    np.testing.assert_allclose(top[inside, 1], gaussian_kde(control[:, 1])(top[inside, 0]))
    (legend,) = panels[0].figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "control (source)",
        "observed",
        "predicted",
    ]
    assert panels[0].figure._suptitle.get_text() == "p2_drugA (drugA)"
    assert_unchanged(shifted, before)


def test_marker_densities_on_given_axes_and_errors(adata, pred):
    _, ax = plt.subplots()
    assert (
        mfm.pl.marker_densities(adata, pred, population="p3_drugA", features=[0], ax=ax, show=False)
        is ax
    )
    with pytest.raises(ValueError, match="one panel"):
        mfm.pl.marker_densities(
            adata, pred, population="p3_drugA", features=[0, 1], ax=ax, show=False
        )
    with pytest.raises(TypeError, match="one population id"):
        mfm.pl.marker_densities(adata, pred, population=["p3_drugA"], show=False)
    with pytest.raises(ValueError, match="control population"):
        mfm.pl.marker_densities(adata, pred, population="p3_control", show=False)


def test_joint_embedding_is_one_pca_of_all_shown_cells(adata, pred, assert_unchanged):
    before = adata.copy()
    ids = ["p2_drugA", "p3_drugB"]
    axes = mfm.pl.joint_embedding(adata, pred, population=ids, show=False)
    groups = [g for p in ids for g in _groups(adata, pred, p)]
    pca = PCA(n_components=2, svd_solver="full").fit(np.concatenate(groups))
    drawn = [c for ax in axes for c in ax.collections]
    for collection, cells in zip(drawn, groups, strict=True):
        np.testing.assert_allclose(collection.get_offsets(), pca.transform(cells), atol=1e-5)
    assert [ax.get_title() for ax in axes] == ["p2_drugA (drugA)", "p3_drugB (drugB)"]
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[1])
    assert (axes[0].get_xlabel(), axes[0].get_ylabel()) == ("PC1", "PC2")
    assert len(axes[0].figure.legends) == 1
    assert_unchanged(adata, before)


def test_joint_embedding_subsamples_and_umap(adata, pred):
    ax = mfm.pl.joint_embedding(adata, pred, population="p2_drugB", max_cells=5, show=False)
    assert [len(c.get_offsets()) for c in ax.collections] == [5, 5, 5]
    one = mfm.pl.joint_embedding(adata, pred, population="p2_drugB", basis="umap", show=False)
    two = mfm.pl.joint_embedding(adata, pred, population="p2_drugB", basis="umap", show=False)
    assert [len(c.get_offsets()) for c in one.collections] == [10, 12, 10]
    for a, b in zip(one.collections, two.collections, strict=True):
        np.testing.assert_allclose(a.get_offsets(), b.get_offsets())  # seeded
    assert one.get_xlabel() == "UMAP1"
    with pytest.raises(ValueError, match="basis"):
        mfm.pl.joint_embedding(adata, pred, basis="tsne", show=False)
