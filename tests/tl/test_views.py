"""Every verb that writes into an AnnData makes a view actual first and leaves its parent alone."""

import numpy as np
import pytest
from anndata import AnnData

import mfm

NICHE_FIT = {
    "hidden": 8,
    "n_layers": 1,
    "n_heads": 2,
    "time_features": 4,
    "batch_size": 4,
    "max_steps": 2,
    "ot_iter": 5,
    "device": "cpu",
    "progress": False,
}


@pytest.fixture(scope="module")
def prepared(tiny) -> tuple[AnnData, mfm.tl.MetaFlowModel, AnnData]:
    """Populations + patient split, a tiny fitted model, and its predictions."""
    adata = tiny.make()
    mfm.pp.populations(adata, **tiny.populations)
    mfm.pp.split(adata, by="patient", test=["P2"], val=["P1"])
    model = mfm.tl.fit(adata, **{**tiny.fit, "max_steps": 2})
    return adata, model, mfm.tl.predict(adata, model, **tiny.predict)


@pytest.fixture(scope="module")
def niches() -> tuple[AnnData, AnnData]:
    adata = mfm.datasets.simulated_tissue(
        n_cells=60, n_genes=3, n_cell_types=2, n_domains=2, random_state=0
    )
    mfm.pp.niches(adata, n_neighbors=4, library_key="slice")
    model = mfm.tl.fit_niches(adata, condition_key="cell_type", **NICHE_FIT)
    return adata, mfm.tl.generate_niches(model, n_per_condition=2, n_steps=2)


def thinned(adata: AnnData) -> AnnData:
    """A view of every population, without every fifth cell."""
    return adata[np.arange(adata.n_obs) % 5 != 0]


CALLS = {
    "pp.populations": lambda v, t, c: mfm.pp.populations(v, **t.populations, min_cells=10),
    "pp.split": lambda v, t, c: mfm.pp.split(v, by="patient", test=["P1"]),
    "tl.fit": lambda v, t, c: mfm.tl.fit(v, **{**t.fit, "max_steps": 2}),
    "tl.predict": lambda v, t, c: mfm.tl.predict(v, c[1], **t.predict),
    "tl.evaluate": lambda v, t, c: mfm.tl.evaluate(v, c[2], metrics=["r2"]),
}
NICHE_CALLS = {
    "pp.niches": lambda v, g: mfm.pp.niches(v, n_neighbors=3, library_key="slice"),
    "tl.fit_niches": lambda v, g: mfm.tl.fit_niches(v, condition_key="cell_type", **NICHE_FIT),
    "tl.evaluate_niches": lambda v, g: mfm.tl.evaluate_niches(v, g, max_niches=4, cv=2),
}


@pytest.mark.parametrize("verb", list(CALLS))
def test_population_verbs_on_a_view(prepared, tiny, verb, assert_unchanged):
    parent = prepared[0].copy()
    if verb == "pp.populations":
        parent = tiny.make()
    before = parent.copy()
    view = thinned(parent)
    with pytest.warns(UserWarning, match="view of an AnnData"):
        CALLS[verb](view, tiny, prepared)
    assert not view.is_view
    assert_unchanged(parent, before)
    if verb == "pp.split":
        table = view.uns["mfm"]["populations"]
        assert set(table.index[table["split"] == "test"]) == {"P1|drugA", "P1|drugB", "P1|control"}


@pytest.mark.parametrize("verb", list(NICHE_CALLS))
def test_niche_verbs_on_a_view(niches, verb, assert_unchanged):
    parent, generated = niches[0].copy(), niches[1]
    before = parent.copy()
    view = parent[:]  # niche indices are positions: every cell stays
    assert view.is_view
    with pytest.warns(UserWarning, match="view of an AnnData"):
        NICHE_CALLS[verb](view, generated)
    assert not view.is_view
    assert_unchanged(parent, before)
