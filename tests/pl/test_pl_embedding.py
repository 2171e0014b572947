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
    # controls of p0, p1 (train), p2 (val), p3 (test): one scatter per split, sorted
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["test", "train", "val"]
    assert [len(c.get_offsets()) for c in ax.collections] == [1, 2, 1]
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
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b", "a", "NA"]
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 1, 1]
    np.testing.assert_allclose(ax.collections[-1].get_facecolor()[0][:3], to_rgb("lightgray"))


def test_embedding_numeric_colour_has_a_colorbar(adata):
    ax = mfm.pl.population_embedding(adata, color="n_cells", show=False)
    (points,) = ax.collections
    embedding = adata.uns["mfm"]["population_embedding"]
    n_cells = adata.uns["mfm"]["populations"].loc[embedding.index, "n_cells"]
    np.testing.assert_array_equal(points.get_array(), n_cells)
    assert len(ax.figure.axes) == 2  # the plot and its colour bar
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
    with pytest.raises(KeyError, match="choose one of"):
        mfm.pl.population_embedding(adata, color="nothing", show=False)
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
