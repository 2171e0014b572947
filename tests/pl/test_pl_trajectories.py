"""`mfm.pl.trajectories`: the drawn paths are the model's flow, ending at its predictions."""

import numpy as np
import pytest
from matplotlib.collections import LineCollection

import mfm

N_CELLS, N_TIMES = 6, 5


@pytest.fixture(scope="module")
def trained():
    adata = mfm.datasets.organoid_screen(
        n_patients=2, cultures=["PDO"], n_replicates=1, treatments=["drug_A"], n_cells=60,
        n_markers=32, random_state=0,
    )  # fmt: skip
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    model = mfm.tl.fit(adata, max_steps=3, knn=3, progress=False, random_state=0)
    return adata, model


def _treated(adata):
    table = adata.uns["mfm"]["populations"]
    return table.index[table["source"] != table.index][0], table


def test_paths_follow_the_flow_from_control_cells(trained, assert_unchanged):
    adata, model = trained
    population, table = _treated(adata)
    before = adata.copy()
    ax = mfm.pl.trajectories(
        adata, model, population=population, n_cells=N_CELLS, n_times=N_TIMES,
        basis=(0, 1), show=False,
    )  # fmt: skip
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = np.asarray(lines.get_segments()).reshape(N_CELLS, N_TIMES - 1, 2, 2)
    np.testing.assert_allclose(lines.get_array(), np.tile([0.125, 0.375, 0.625, 0.875], N_CELLS))
    # consecutive segments of a path join
    np.testing.assert_allclose(segments[:, 1:, 0], segments[:, :-1, 1])
    # every path starts at a control cell of the source population ...
    labels = adata.obs["mfm_population"].to_numpy()
    control = np.asarray(adata.X)[labels == table.loc[population, "source"]]
    starts = segments[:, 0, 0]
    matches = [
        np.flatnonzero(np.all(np.isclose(control[:, :2], s, atol=1e-5), axis=1)) for s in starts
    ]
    assert all(len(m) == 1 for m in matches)
    x0 = control[[m[0] for m in matches]]
    # ... and ends where `transport` (what `predict` integrates) takes that cell
    embedding = model.embed(control, table.loc[population, "source"], 0)
    end = model.transport(x0, embedding, table.loc[population, "condition"])
    np.testing.assert_allclose(segments[:, -1, 1], end[:, :2], atol=1e-4)
    np.testing.assert_allclose(ax.collections[-1].get_offsets(), end[:, :2], atol=1e-4)
    assert (ax.get_xlabel(), ax.get_ylabel()) == (model.features[0], model.features[1])
    assert ax.get_title().endswith("MFM paths")
    assert_unchanged(adata, before)


def test_default_basis_is_the_largest_observed_effect(trained):
    adata, model = trained
    population, table = _treated(adata)
    ax = mfm.pl.trajectories(adata, model, population=population, n_cells=3, show=False)
    labels = adata.obs["mfm_population"].to_numpy()
    x = np.asarray(adata.X)
    control, treated = x[labels == table.loc[population, "source"]], x[labels == population]
    effect = np.abs(treated.mean(0) - control.mean(0)) / control.std(0)
    first, second = np.argsort(-effect, kind="stable")[:2]
    assert (ax.get_xlabel(), ax.get_ylabel()) == (model.features[first], model.features[second])
    ax = mfm.pl.trajectories(adata, model, population=population, basis="pca", show=False)
    assert ax.get_xlabel() == "PC1"


def test_trajectories_errors(trained):
    adata, model = trained
    population, table = _treated(adata)
    with pytest.raises(ValueError, match="control population"):
        mfm.pl.trajectories(adata, model, population=table["source"].iloc[0], show=False)
    with pytest.raises(ValueError, match="n_times"):
        mfm.pl.trajectories(adata, model, population=population, n_times=1, show=False)
    with pytest.raises(ValueError, match="'effect'"):
        mfm.pl.trajectories(adata, model, population=population, basis="umap", show=False)
    with pytest.raises(ValueError, match="features"):
        mfm.pl.trajectories(adata[:, :3].copy(), model, population=population, show=False)
