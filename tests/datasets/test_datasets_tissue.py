import time

import anndata as ad
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from mfm.datasets import simulated_tissue


@pytest.fixture(scope="module")
def tissue():
    start = time.perf_counter()
    adata = simulated_tissue()
    return adata, time.perf_counter() - start


def _neighbourhood_composition(adata, n_neighbors=10):
    """Mean type composition of the k nearest neighbours of the cells of each type (K x K)."""
    codes = adata.obs["cell_type"].cat.codes.to_numpy()
    n_types = len(adata.obs["cell_type"].cat.categories)
    onehot = np.eye(n_types)[codes]
    totals = np.zeros((n_types, n_types))
    for name in adata.obs["slice"].cat.categories:
        in_slice = (adata.obs["slice"] == name).to_numpy()
        xy = adata.obsm["spatial"][in_slice]
        knn = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(xy)
        neighbours = knn.kneighbors(xy, return_distance=False)[:, 1:]
        np.add.at(totals, codes[in_slice], onehot[in_slice][neighbours].mean(axis=1))
    return totals / np.bincount(codes, minlength=n_types)[:, None]


def test_layout_and_annotations(tissue):
    adata, seconds = tissue
    assert seconds < 1.0
    assert adata.shape == (3000, 30)
    assert adata.X.dtype == np.float32 and adata.X.min() >= 0
    assert adata.obsm["spatial"].shape == (3000, 2)
    assert adata.obsm["spatial"].min() >= 0 and adata.obsm["spatial"].max() <= 1000
    assert adata.obs_names.is_unique
    assert list(adata.obs["slice"].cat.categories) == ["s0", "s1"]
    assert (adata.obs["slice"].value_counts() == 1500).all()
    assert list(adata.obs["cell_type"].cat.categories) == [f"type_{k}" for k in range(5)]
    assert list(adata.obs["domain"].cat.categories) == ["d0", "d1", "d2", "d3"]


def test_domains_are_bands_given_by_the_stored_edges(tissue):
    adata, _ = tissue
    edges = np.array(adata.uns["simulated_tissue"]["edges"])
    assert edges.shape == (2, 5)
    widths = np.diff(edges, axis=1)
    assert (widths >= 0.5 * 1000 / 4).all()
    np.testing.assert_allclose(widths.sum(axis=1), 1000.0)
    slices = adata.obs["slice"].cat.codes.to_numpy()
    x = adata.obsm["spatial"][:, 0]
    expected = np.array(
        [np.searchsorted(edges[s, 1:-1], xi, side="right") for s, xi in zip(slices, x, strict=True)]
    )
    np.testing.assert_array_equal(adata.obs["domain"].cat.codes.to_numpy(), expected)


def test_domain_mixtures_closed_form(tissue):
    adata, _ = tissue
    mixtures = np.array(adata.uns["simulated_tissue"]["mixtures"])
    domain_centres = (np.arange(4) + 0.5) / 4
    type_centres = (np.arange(5) + 0.5) / 5
    weights = np.exp(-((domain_centres[:, None] - type_centres) ** 2) / (2 * 0.15**2)) + 0.02
    np.testing.assert_allclose(mixtures, weights / weights.sum(axis=1, keepdims=True))
    # the leftmost domain is dominated by type_0, the rightmost by type_4
    assert mixtures[0].argmax() == 0 and mixtures[-1].argmax() == 4


def test_neighbourhood_composition_differs_by_cell_type(tissue):
    adata, _ = tissue
    composition = _neighbourhood_composition(adata)
    frequency = adata.obs["cell_type"].value_counts(normalize=True).sort_index().to_numpy()
    # every type is enriched among its own neighbours ...
    assert (np.diag(composition) > frequency + 0.2).all()
    # ... and each type's niche composition is distinct from every other type's
    distance = np.abs(composition[:, None] - composition[None]).sum(axis=-1)
    assert distance[np.triu_indices(5, 1)].min() > 0.4


def test_expression_is_type_mean_plus_domain_offset_plus_noise(tissue):
    adata, _ = tissue
    types = adata.obs["cell_type"].cat.codes.to_numpy()
    domains = adata.obs["domain"].cat.codes.to_numpy()
    design = np.column_stack([np.eye(5)[types], np.eye(4)[domains][:, 1:]])
    coef, *_ = np.linalg.lstsq(design, adata.X, rcond=None)
    residual = adata.X - design @ coef
    # the additive model leaves only the N(0, 0.3^2) cell noise (up to rare clipping at 0)
    assert residual.std() == pytest.approx(0.3, abs=0.02)
    # the cell type dominates the expression
    assert adata.X.var(axis=0).mean() > 5 * residual.var()


def test_seed_determinism():
    first, second = simulated_tissue(random_state=4), simulated_tissue(random_state=4)
    other = simulated_tissue(random_state=5)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.obsm["spatial"], second.obsm["spatial"])
    assert first.obs.equals(second.obs)
    assert not np.allclose(first.obsm["spatial"], other.obsm["spatial"])


def test_sizes_follow_arguments():
    adata = simulated_tissue(n_cells=1001, n_genes=7, n_slices=3, n_cell_types=3, n_domains=2)
    assert adata.shape == (1001, 7)
    assert sorted(adata.obs["slice"].value_counts().tolist()) == [333, 334, 334]
    assert adata.obs["domain"].cat.categories.tolist() == ["d0", "d1"]
    with pytest.raises(ValueError, match="n_domains"):
        simulated_tissue(n_domains=0)


def test_h5ad_round_trip(tmp_path):
    adata = simulated_tissue(n_cells=200)
    path = tmp_path / "tissue.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.X, adata.X)
    np.testing.assert_array_equal(back.obsm["spatial"], adata.obsm["spatial"])
    assert back.obs.equals(adata.obs)
    np.testing.assert_allclose(
        back.uns["simulated_tissue"]["mixtures"], adata.uns["simulated_tissue"]["mixtures"]
    )
