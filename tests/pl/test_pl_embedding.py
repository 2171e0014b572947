import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from scipy.spatial.distance import pdist

import mfm


def _offsets(ax: Axes) -> np.ndarray:
    return np.concatenate([np.asarray(c.get_offsets()) for c in ax.collections])


def test_embedding_pca_preserves_a_planar_embedding(adata, assert_unchanged):
    # points on a tilted plane of R^3: a 2-D PCA is an isometry of them
    plane = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [3.0, 1.0], [1.0, 0.5]])
    basis = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    basis[1] -= basis[1] @ basis[0] * basis[0]
    basis[1] /= np.linalg.norm(basis[1])
    ids = [f"pop{i}" for i in range(len(plane))]
    adata.uns["mfm"]["population_embedding"] = pd.DataFrame(
        plane @ basis + 7.0, index=ids, columns=["h0", "h1", "h2"]
    )
    before = adata.copy()
    ax = mfm.pl.population_embedding(adata, show=False)
    assert isinstance(ax, Axes)
    assert len(ax.collections) == 1
    coords = _offsets(ax)
    np.testing.assert_allclose(pdist(coords), pdist(plane), atol=1e-10)
    np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-10)
    assert coords[:, 0].var() >= coords[:, 1].var()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PC1", "PC2")
    assert_unchanged(adata, before)


def test_embedding_categorical_colour_has_a_legend(adata, assert_unchanged):
    before = adata.copy()
    ax = mfm.pl.population_embedding(adata, color="split", show=False)
    # controls of p0, p1 (train), p2 (val), p3 (test): one scatter per split, sorted, and the
    # held-out (test) population outlined in black, which the legend says
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["test", "train", "val", "test (outlined)"]
    assert ax.get_legend().get_title().get_text() == "split"
    assert [len(c.get_offsets()) for c in ax.collections] == [1, 2, 1]
    edges = [to_rgb(c.get_edgecolor()[0]) for c in ax.collections]
    assert edges == [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)]
    assert ax.get_title() == "split"
    assert len(ax.figure.axes) == 1
    assert_unchanged(adata, before)


def test_embedding_categorical_missing_values_are_na(adata):
    populations = adata.uns["mfm"]["populations"].copy()
    batch = ["a"] * 12
    batch[0], batch[3], batch[6], batch[9] = "b", "a", None, "b"  # the control populations
    populations["batch"] = pd.Categorical(batch, categories=["b", "c", "a"])
    adata.uns["mfm"]["populations"] = populations
    ax = mfm.pl.population_embedding(adata, color="batch", show=False)
    # category order kept, absent "c" skipped, the missing value last as "NA" in grey
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["b", "a", "NA"]
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 1, 1]
    np.testing.assert_allclose(ax.collections[-1].get_facecolor()[0][:3], to_rgb("lightgray"))


def test_embedding_numeric_colour_has_a_colorbar(adata):
    ax = mfm.pl.population_embedding(adata, color="n_cells", show=False)
    (points,) = ax.collections
    embedding = adata.uns["mfm"]["population_embedding"]
    n_cells = adata.uns["mfm"]["populations"].loc[embedding.index, "n_cells"]
    np.testing.assert_array_equal(points.get_array(), n_cells)
    assert len(ax.figure.axes) == 2  # the plot and its colour bar
    assert ax.figure.axes[1].get_ylabel() == "n_cells"
    # the only legend entry says what the black edge (held-out population) means
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["test (outlined)"]
    ax = mfm.pl.population_embedding(adata, color="n_cells", outline=None, show=False)
    assert ax.get_legend() is None


def test_embedding_ax_and_return_fig(adata):
    fig, ax = plt.subplots()
    assert mfm.pl.population_embedding(adata, ax=ax, show=False) is ax
    assert len(ax.collections[0].get_offsets()) == 4
    assert mfm.pl.population_embedding(adata, ax=ax, return_fig=True) is fig
    assert isinstance(mfm.pl.population_embedding(adata, return_fig=True), Figure)


def test_embedding_errors(adata):
    with pytest.raises(ValueError, match="basis"):
        mfm.pl.population_embedding(adata, basis="umap", show=False)
    with pytest.raises(KeyError, match="neither a column"):
        mfm.pl.population_embedding(adata, color="nothing", show=False)
    with pytest.raises(ValueError, match="outline"):
        mfm.pl.population_embedding(adata, outline="holdout", show=False)
    with pytest.raises(ValueError, match="2 titles for 1"):
        mfm.pl.population_embedding(adata, color="split", title=["a", "b"], show=False)
    with pytest.raises(ValueError, match="one panel"):
        mfm.pl.population_embedding(adata, color=["split", "patient"], ax=plt.gca(), show=False)
    embedding = adata.uns["mfm"]["population_embedding"]
    adata.uns["mfm"]["population_embedding"] = embedding.rename(index={"p0_control": "px"})
    with pytest.raises(KeyError, match="px"):
        mfm.pl.population_embedding(adata, color="split", show=False)
    adata.uns["mfm"]["population_embedding"] = embedding[["h0"]]
    with pytest.raises(ValueError, match="2 embedding dimensions"):
        mfm.pl.population_embedding(adata, show=False)
    adata.uns["mfm"]["population_embedding"] = embedding
    del adata.uns["mfm"]["populations"]
    with pytest.raises(KeyError, match=r"`mfm\.pp\.populations`"):
        mfm.pl.population_embedding(adata, color="split", show=False)
    del adata.uns["mfm"]["population_embedding"]
    with pytest.raises(KeyError, match=r"`mfm\.tl\.fit`.*no population embedding"):
        mfm.pl.population_embedding(adata, show=False)


def test_embedding_obs_column_constant_within_populations(adata, assert_unchanged):
    # a patient attribute stored per cell, with the colours scanpy keeps in uns
    adata.obs["age"] = adata.obs["patient"].map({"p0": "old", "p1": "young", "p2": "old"})
    adata.obs["age"] = pd.Categorical(adata.obs["age"], categories=["young", "old"])
    adata.uns["age_colors"] = ["#00ff00", "#0000ff"]
    before = adata.copy()
    ax = mfm.pl.population_embedding(adata, color="age", outline=None, show=False)
    # p0, p1, p2 controls: old, young, old; p3 has no age (NaN): grey "NA"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["young", "old", "NA"]
    colors = [to_rgb(c.get_facecolor()[0]) for c in ax.collections]
    assert colors == [to_rgb("#00ff00"), to_rgb("#0000ff"), to_rgb("lightgray")]
    assert [len(c.get_offsets()) for c in ax.collections] == [1, 2, 1]
    assert ax.get_title() == "age"
    assert_unchanged(adata, before)


def test_embedding_obs_column_varying_within_a_population_is_refused(adata):
    adata.obs["cell_type"] = np.where(np.arange(adata.n_obs) % 2, "T", "B")
    with pytest.raises(ValueError, match=r"`adata.obs\['cell_type'\]` varies within populations"):
        mfm.pl.population_embedding(adata, color="cell_type", show=False)


def test_embedding_palette_title_size_legend_loc(adata):
    ax = mfm.pl.population_embedding(
        adata,
        color="split",
        palette={"train": "red", "val": "green", "test": "blue"},
        title="held out?",
        size=10,
        legend_loc=None,
        show=False,
    )
    colors = [to_rgb(c.get_facecolor()[0]) for c in ax.collections]
    assert colors == [to_rgb("blue"), to_rgb("red"), to_rgb("green")]  # test, train, val
    assert ax.get_title() == "held out?"
    assert ax.get_legend() is None
    np.testing.assert_allclose(ax.collections[0].get_sizes(), [10])
    ax = mfm.pl.population_embedding(adata, color="split", palette="tab10", show=False)
    assert to_rgb(ax.collections[0].get_facecolor()[0]) == to_rgb(plt.get_cmap("tab10")(0))
    ax = mfm.pl.population_embedding(adata, color="split", legend_loc="on data", show=False)
    assert sorted(t.get_text() for t in ax.texts) == ["test", "train", "val"]
    train = np.asarray(ax.collections[1].get_offsets())
    text = next(t for t in ax.texts if t.get_text() == "train")
    np.testing.assert_allclose(text.get_position(), np.median(train, axis=0))


def test_embedding_several_keys_make_a_grid_titled_by_key(adata):
    axes = mfm.pl.population_embedding(adata, color=["split", "n_cells", "patient"], show=False)
    assert [ax.get_title() for ax in axes] == ["split", "n_cells", "patient"]
    first = np.concatenate([c.get_offsets() for c in axes[0].collections])
    second = np.asarray(axes[1].collections[0].get_offsets())
    np.testing.assert_allclose(np.sort(first, axis=0), np.sort(second, axis=0))
    assert len(axes[0].figure.axes) == 4  # three panels and the colour bar of n_cells


def test_embedding_jitter_is_seeded_and_small(adata):
    exact = _offsets(mfm.pl.population_embedding(adata, show=False))
    one = _offsets(mfm.pl.population_embedding(adata, jitter=0.05, random_state=1, show=False))
    two = _offsets(mfm.pl.population_embedding(adata, jitter=0.05, random_state=1, show=False))
    np.testing.assert_array_equal(one, two)
    assert 0 < np.abs(one - exact).max() < 0.5 * exact.std(axis=0).max()
