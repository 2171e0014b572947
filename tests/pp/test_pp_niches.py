"""`mfm.pp.niches`: kNN niches equal sklearn's per slice, never cross slices; clean errors."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from sklearn.neighbors import NearestNeighbors

import mfm


def make_tissue(n_per_slice=(40, 30), seed=0) -> AnnData:
    """Cells of several slices on the same square (so a global kNN would cross slices)."""
    rng = np.random.default_rng(seed)
    n = sum(n_per_slice)
    slices = np.repeat([f"s{i}" for i in range(len(n_per_slice))], n_per_slice)
    obs = pd.DataFrame({"slice": pd.Categorical(slices)}, index=[f"c{i}" for i in range(n)])
    obs["z"] = np.where(slices == "s0", 0.21, 0.26)  # float slice labels, as MERFISH's z
    adata = AnnData(X=rng.normal(size=(n, 3)).astype(np.float32), obs=obs)
    adata.obsm["spatial"] = rng.uniform(0, 100, size=(n, 2))
    adata.obsm["X_pca"] = rng.normal(size=(n, 2))
    return adata


def sklearn_niches(adata, k, slices=None):
    """Reference: k nearest other cells of the same slice (sklearn excludes the query itself)."""
    slices = np.zeros(adata.n_obs) if slices is None else np.asarray(slices)
    out = np.empty((adata.n_obs, k), dtype=np.int64)
    for value in np.unique(slices):
        pos = np.flatnonzero(slices == value)
        nn = NearestNeighbors(n_neighbors=k).fit(adata.obsm["spatial"][pos])
        out[pos] = pos[nn.kneighbors(return_distance=False)]
    return out


@pytest.mark.parametrize("library_key", ["slice", "z"])
def test_indices_equal_sklearn_per_slice(library_key):
    adata = make_tissue()
    mfm.pp.niches(adata, n_neighbors=5, library_key=library_key)
    indices = adata.obsm["niche_indices"]
    assert indices.shape == (70, 5)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, sklearn_niches(adata, 5, adata.obs["slice"]))
    slices = adata.obs["slice"].to_numpy()
    assert (slices[indices] == slices[:, None]).all()  # never crosses slices
    assert (indices != np.arange(70)[:, None]).all()  # the centre is not in its niche
    # nearest first
    distance = np.linalg.norm(
        adata.obsm["spatial"][indices] - adata.obsm["spatial"][:, None], axis=-1
    )
    assert (np.diff(distance, axis=1) >= 0).all()


def test_without_library_key_is_a_global_knn():
    adata = make_tissue()
    mfm.pp.niches(adata, n_neighbors=4)
    np.testing.assert_array_equal(adata.obsm["niche_indices"], sklearn_niches(adata, 4))
    assert "library_key" not in adata.uns["niche"]["params"]


def test_include_center_puts_the_cell_first():
    adata = make_tissue()
    mfm.pp.niches(adata, n_neighbors=5, library_key="slice", include_center=True)
    indices = adata.obsm["niche_indices"]
    np.testing.assert_array_equal(indices[:, 0], np.arange(adata.n_obs))
    np.testing.assert_array_equal(indices[:, 1:], sklearn_niches(adata, 4, adata.obs["slice"]))


def test_duplicated_coordinates_are_neighbours():
    adata = make_tissue()
    adata.obsm["spatial"][1] = adata.obsm["spatial"][0]  # distance 0 (absent from sparse dists)
    mfm.pp.niches(adata, n_neighbors=3, library_key="slice")
    assert adata.obsm["niche_indices"][0, 0] == 1
    assert adata.obsm["niche_indices"][1, 0] == 0


def test_only_documented_keys_are_written_and_survive_h5ad(tmp_path):
    adata = make_tissue()
    adata.uns["other"] = {"kept": 1}
    before = adata.copy()
    mfm.pp.niches(adata, n_neighbors=3, library_key="slice", use_rep="X_pca", key_added="nb")
    assert len(adata.obsp) == 0
    assert sorted(adata.obsm) == ["X_pca", "nb_indices", "spatial"]
    assert sorted(adata.uns) == ["nb", "other"]
    pd.testing.assert_frame_equal(adata.obs, before.obs)
    assert adata.uns["nb"]["params"] == {
        "n_neighbors": 3,
        "spatial_key": "spatial",
        "use_rep": "X_pca",
        "include_center": False,
        "n_obs": 70,
        "library_key": "slice",
    }
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.obsm["nb_indices"], adata.obsm["nb_indices"])
    assert back.uns["nb"]["params"] == adata.uns["nb"]["params"]


def test_a_new_call_replaces_earlier_results():
    adata = make_tissue()
    mfm.pp.niches(adata, n_neighbors=3)
    adata.uns["niche"]["metrics"] = pd.DataFrame({"w2": [1.0]})
    mfm.pp.niches(adata, n_neighbors=4, library_key="slice")
    assert list(adata.uns["niche"]) == ["params"]
    assert adata.obsm["niche_indices"].shape == (70, 4)


@pytest.mark.parametrize(
    ("change", "kwargs", "error", "match"),
    [
        (None, {"spatial_key": "xy"}, KeyError, r"obsm\['xy'\].*not found"),
        (None, {"library_key": "sample"}, KeyError, "Column 'sample' not found"),
        (None, {"use_rep": "X_umap"}, KeyError, "use_rep='X_umap'"),
        (None, {"n_neighbors": 30, "library_key": "slice"}, ValueError, r"\['s1'\].*\[30\]"),
        (None, {"n_neighbors": 70}, ValueError, "lower `n_neighbors`"),
        (None, {"n_neighbors": 0}, ValueError, "`n_neighbors` must be an integer >= 1"),
        (None, {"n_neighbors": 1, "include_center": True}, ValueError, ">= 2"),
        ("nan_xy", {}, ValueError, r"NaN or infinite coordinates in 1 cells \(first rows: \[3\]"),
        ("nan_slice", {"library_key": "slice"}, ValueError, "missing values"),
    ],
)
def test_errors(change, kwargs, error, match):
    adata = make_tissue()
    if change == "nan_xy":
        adata.obsm["spatial"][3, 1] = np.nan
    if change == "nan_slice":
        adata.obs.loc["c0", "slice"] = np.nan
    with pytest.raises(error, match=match):
        mfm.pp.niches(adata, **kwargs)
    assert "niche" not in adata.uns and "niche_indices" not in adata.obsm


def test_include_center_needs_one_cell_less():
    adata = make_tissue((5, 5))
    mfm.pp.niches(adata, n_neighbors=5, library_key="slice", include_center=True)
    with pytest.raises(ValueError, match="lower `n_neighbors`"):
        mfm.pp.niches(adata, n_neighbors=5, library_key="slice")
