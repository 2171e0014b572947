"""`mfm.tl.baseline`: identity, mean shift (treatment-wide and per group), nearest population."""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import mfm

#: Control offset of each (patient, cell type) and the exact treatment response of its cells.
OFFSETS = {
    ("P0", "A"): [0.0, 0.0],
    ("P1", "A"): [5.0, 0.0],
    ("P2", "A"): [4.0, 0.0],  # closest to P1's A population
    ("P0", "B"): [0.0, 20.0],
    ("P1", "B"): [5.0, 20.0],
    ("P2", "B"): [0.5, 20.0],  # closest to P0's B population
}
RESPONSES = {
    ("P0", "A"): [2.0, 0.0],
    ("P1", "A"): [4.0, 0.0],
    ("P2", "A"): [3.0, 0.0],
    ("P0", "B"): [0.0, -1.0],
    ("P1", "B"): [0.0, -3.0],
    ("P2", "B"): [0.0, -2.0],
}


def _screen(n=30):
    """3 patients x 2 cell types x {control, drug}; treated cells = control cells + response."""
    rng = np.random.default_rng(0)
    blocks, rows = [], []
    for (patient, cell_type), offset in OFFSETS.items():
        control = np.asarray(offset) + rng.normal(scale=0.3, size=(n, 2))
        blocks += [control, control + RESPONSES[patient, cell_type]]
        rows += [(patient, cell_type, "control")] * n + [(patient, cell_type, "drug")] * n
    obs = pd.DataFrame(rows, columns=["patient", "cell_type", "treatment"])
    obs.index = obs.index.astype(str)
    return _populations(AnnData(np.concatenate(blocks).astype(np.float32), obs=obs))


def _populations(adata):
    """`pp.populations` per patient x cell type, then P2 held out."""
    mfm.pp.populations(
        adata,
        sample_key=["patient", "cell_type"],
        condition_key="treatment",
        control="control",
        min_cells=5,
    )
    mfm.pp.split(adata, by="patient", test=["P2"])
    return adata


def _shift(adata, pred, population):
    """The constant shift a baseline applied to ``population``'s control cells."""
    source = pred.obs.loc[pred.obs["mfm_population"] == population, "mfm_source"].iloc[0]
    control = adata.X[(adata.obs["mfm_population"] == source).to_numpy()]
    shift = pred.X[(pred.obs["mfm_population"] == population).to_numpy()] - control
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-5)
    return shift[0]


@pytest.fixture
def screen():
    return _screen()


def test_treatment_wide_mean_shift_averages_training_pairs(screen):
    pred = mfm.tl.baseline(screen, method="mean_shift", populations=["P2|A|drug"])
    # mean over the 4 training pairs (P0, P1 x A, B)
    np.testing.assert_allclose(_shift(screen, pred, "P2|A|drug"), [1.5, -1.0], atol=1e-5)
    assert pred.uns["mfm_prediction"]["method"] == "mean_shift"


@pytest.mark.parametrize("groupby", ["cell_type", "celltype_obs"])
def test_mean_shift_per_group(screen, groupby):
    screen.obs["celltype_obs"] = screen.obs["cell_type"].astype(str)  # an obs-only column
    pred = mfm.tl.baseline(screen, method="mean_shift", groupby=groupby)
    np.testing.assert_allclose(_shift(screen, pred, "P2|A|drug"), [3.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(_shift(screen, pred, "P2|B|drug"), [0.0, -2.0], atol=1e-5)
    assert pred.uns["mfm_prediction"]["method"] == f"mean_shift[{groupby}]"


def test_nearest_population_takes_the_closest_controls_response(screen):
    pred = mfm.tl.baseline(screen, method="nearest_population", populations=["P2|A|drug"])
    np.testing.assert_allclose(_shift(screen, pred, "P2|A|drug"), [4.0, 0.0], atol=1e-5)  # P1|A
    pred = mfm.tl.baseline(screen, method="nearest_population", populations=["P2|B|drug"])
    np.testing.assert_allclose(_shift(screen, pred, "P2|B|drug"), [0.0, -1.0], atol=1e-5)  # P0|B


def test_nearest_population_within_group(screen):
    # P2|B is moved next to P1|A; with groupby it must still look among the B populations only
    cells = (screen.obs["mfm_population"] == "P2|B|control").to_numpy()
    screen.X[cells] += np.array([4.5, -20.0], dtype=np.float32)
    free = mfm.tl.baseline(screen, method="nearest_population", populations=["P2|B|drug"])
    np.testing.assert_allclose(_shift(screen, free, "P2|B|drug"), [4.0, 0.0], atol=1e-5)
    grouped = mfm.tl.baseline(
        screen, method="nearest_population", groupby="cell_type", populations=["P2|B|drug"]
    )
    np.testing.assert_allclose(_shift(screen, grouped, "P2|B|drug"), [0.0, -3.0], atol=1e-5)


def test_group_without_training_pair_falls_back_with_a_warning(screen):
    screen.obs["group"] = np.where(screen.obs["patient"] == "P2", "new", "old")
    with pytest.warns(UserWarning, match="treatment-wide"):
        pred = mfm.tl.baseline(screen, method="mean_shift", groupby="group")
    np.testing.assert_allclose(_shift(screen, pred, "P2|A|drug"), [1.5, -1.0], atol=1e-5)


def test_groupby_must_be_constant_within_populations(screen):
    screen.obs["mixed"] = np.arange(screen.n_obs) % 2
    with pytest.raises(ValueError, match="constant within each population"):
        mfm.tl.baseline(screen, method="mean_shift", groupby="mixed")
    with pytest.raises(KeyError, match="nope"):
        mfm.tl.baseline(screen, method="mean_shift", groupby="nope")
    with pytest.raises(ValueError, match="identity"):
        mfm.tl.baseline(screen, groupby="cell_type")


def test_untrained_treatment_raises():
    adata = _screen()
    adata.obs["treatment"] = adata.obs["treatment"].astype(str)
    late = (adata.obs["patient"] == "P2") & (adata.obs["treatment"] == "drug")
    adata.obs.loc[late, "treatment"] = "drug2"
    _populations(adata)
    with pytest.raises(ValueError, match="'drug2', which no training pair has"):
        mfm.tl.baseline(adata, method="mean_shift", populations=["P2|A|drug2"])
    # the identity needs no training pair
    assert mfm.tl.baseline(adata, populations=["P2|A|drug2"]).n_obs == 30
