"""`mfm.pl.niches`: panels of real and generated niches of one condition; `adata` never written."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

import mfm

K = 4
CONDITION = "cell_type"


@pytest.fixture(scope="module")
def tissue() -> AnnData:
    adata = mfm.datasets.simulated_tissue(n_cells=120, n_genes=3, n_cell_types=3, random_state=0)
    mfm.pp.niches(adata, n_neighbors=K, library_key="slice")
    return adata


def make_generated(adata: AnnData, offset: float = 100.0) -> AnnData:
    """Real niches moved by ``offset`` (so generated points are told apart), as generate_niches."""
    indices = adata.obsm["niche_indices"]
    x = np.asarray(adata.X)[indices].reshape(-1, adata.n_vars) + offset
    niche = np.repeat(np.arange(adata.n_obs), K)
    obs = pd.DataFrame(
        {
            "niche": pd.Categorical(niche.astype(str)),
            CONDITION: adata.obs[CONDITION].to_numpy()[niche],
        },
        index=[f"p{i}" for i in range(len(x))],
    )
    generated = AnnData(X=x.astype(np.float32), obs=obs, var=adata.var[[]])
    generated.uns["niche"] = {"params": {"condition_key": CONDITION, "use_rep": "X"}}
    return generated


def _key(points: np.ndarray) -> tuple:
    """An order-free fingerprint of a cloud (float32 round-off below 1e-3 ignored)."""
    return tuple(np.round(np.sort(np.asarray(points, dtype=np.float64), axis=0), 3).ravel())


def _niche_points(ax: Axes) -> np.ndarray:
    """Points of the last scatter of a panel (the niche; the grey context comes first)."""
    return np.asarray(ax.collections[-1].get_offsets())


def test_grid_shows_real_then_generated_niches_of_the_condition(tissue, assert_unchanged):
    generated = make_generated(tissue)
    before, gen_before = tissue.copy(), generated.copy()
    panels = mfm.pl.niches(
        tissue, generated, condition="type_1", n=3, components=(0, 2), show=False
    )
    assert len(panels) == 6
    x = np.asarray(tissue.X)
    real = {
        _key(x[i][:, [0, 2]])
        for c, i in zip(tissue.obs[CONDITION], tissue.obsm["niche_indices"], strict=True)
        if c == "type_1"
    }
    for panel in panels[:3]:
        assert panel.get_title() == "real"
        assert _key(_niche_points(panel)) in real
    for panel in panels[3:]:
        assert panel.get_title() == "generated"
        points = _niche_points(panel) - 100.0  # generated = real niches + 100
        assert len(points) == K
        assert _key(points) in real
    assert panels[0].get_xlabel() == "gene_0" and panels[0].get_ylabel() == "gene_2"
    assert panels[0].get_xlim() == panels[5].get_xlim()  # shared limits
    assert_unchanged(tissue, before)
    assert_unchanged(generated, gen_before)


def test_overlay_on_given_axes_and_return_fig(tissue):
    generated = make_generated(tissue, offset=0.0)
    _, ax = plt.subplots()
    out = mfm.pl.niches(
        tissue, generated, condition="type_0", n=2, components=("gene_1", "gene_0"), ax=ax,
        show=False,
    )  # fmt: skip
    assert out is ax
    assert [c.get_label() for c in ax.collections[-2:]] == ["real", "generated"]
    assert len(_niche_points(ax)) == 2 * K
    fig = mfm.pl.niches(tissue, generated, condition="type_0", n=2, return_fig=True)
    assert isinstance(fig, Figure)
    assert len([a for a in fig.axes if a.has_data()]) == 4


def test_fewer_niches_than_asked(tissue):
    generated = make_generated(tissue)
    generated = generated[generated.obs["niche"].astype(int) < 15].copy()
    n_gen = generated.obs.drop_duplicates("niche")[CONDITION].eq("type_2").sum()
    n_real = (tissue.obs[CONDITION] == "type_2").sum()
    assert n_gen < 8 < n_real
    panels = mfm.pl.niches(tissue, generated, condition="type_2", n=8, show=False)
    assert len(panels) == 8 + n_gen


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"condition": "type_9"}, ValueError, "no niche of 'type_9'"),
        ({"condition": None}, ValueError, "Pass `condition`"),
        ({"condition": "type_0", "components": (0, 7)}, ValueError, "out of range"),
        ({"condition": "type_0", "key": "nb"}, KeyError, r"run `mfm.pp.niches` first"),
        ({"condition": "type_0", "n": 0}, ValueError, "`n` must be an integer >= 1"),
    ],
)
def test_errors(tissue, kwargs, error, match):
    with pytest.raises(error, match=match):
        mfm.pl.niches(tissue, make_generated(tissue), show=False, **kwargs)


def test_generated_without_params(tissue):
    generated = make_generated(tissue)
    del generated.uns["niche"]
    with pytest.raises(KeyError, match="mfm.tl.generate_niches"):
        mfm.pl.niches(tissue, generated, condition="type_0", show=False)


def test_default_grid_is_two_rows_of_four_small_panels(tissue):
    fig = mfm.pl.niches(tissue, make_generated(tissue), condition="type_0", return_fig=True)
    assert len([a for a in fig.axes if a.has_data()]) == 8
    np.testing.assert_allclose(fig.get_size_inches(), [9.6, 4.8])


def test_composition_of_copied_niches_equals_the_real_one(tissue, assert_unchanged):
    generated = make_generated(tissue, offset=0.0)  # every real niche, copied
    before, gen_before = tissue.copy(), generated.copy()
    ax = mfm.pl.niche_composition(tissue, generated, label_key=CONDITION, show=False)
    types = list(tissue.obs[CONDITION].cat.categories)
    conditions = list(dict.fromkeys(generated.obs[CONDITION].astype(str)))
    n_rows = 2 * len(conditions)
    widths = np.array([p.get_width() for p in ax.patches]).reshape(len(types), n_rows).T
    labels = tissue.obs[CONDITION].astype(str).to_numpy()
    for i, condition in enumerate(conditions):
        neighbours = tissue.obsm["niche_indices"][labels == condition].ravel()
        expected = [np.mean(labels[neighbours] == t) for t in types]
        np.testing.assert_allclose(widths[2 * i], expected)  # real
        np.testing.assert_allclose(widths[2 * i + 1], expected)  # generated, labelled by 1-NN
    np.testing.assert_allclose(widths.sum(axis=1), 1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == types
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == [
        f"{conditions[0]}  real",
        "generated",
    ]
    assert_unchanged(tissue, before)
    assert_unchanged(generated, gen_before)


def test_composition_uses_stored_colours_and_labels_moved_points(tissue):
    adata = tissue.copy()
    adata.uns[f"{CONDITION}_colors"] = ["#ff0000", "#00ff00", "#0000ff"]
    generated = make_generated(adata, offset=0.0)
    # move every generated point of condition type_1 onto one cell of type_2
    target = np.flatnonzero(adata.obs[CONDITION] == "type_2")[0]
    rows = (generated.obs[CONDITION] == "type_1").to_numpy()
    generated.X[rows] = np.asarray(adata.X)[target]
    ax = mfm.pl.niche_composition(
        adata, generated, label_key=CONDITION, conditions=["type_1"], show=False
    )
    widths = np.array([p.get_width() for p in ax.patches]).reshape(3, 2).T
    np.testing.assert_allclose(widths[1], [0.0, 0.0, 1.0])
    colors = [to_hex(p.get_facecolor()) for p in ax.patches[::2]]
    assert colors == ["#ff0000", "#00ff00", "#0000ff"]
    with pytest.raises(ValueError, match="no niche of"):
        mfm.pl.niche_composition(
            adata, generated, label_key=CONDITION, conditions="type_7", show=False
        )
    with pytest.raises(KeyError, match="label_key"):
        mfm.pl.niche_composition(adata, generated, label_key="nothing", show=False)


def test_spatial_niches_marks_centres_and_neighbours(tissue, assert_unchanged):
    before = tissue.copy()
    centres = list(tissue.obs_names[:2])
    ax = mfm.pl.spatial_niches(tissue, color=CONDITION, centers=centres, show=False)
    rings, stars = ax.collections[-2:]
    coords = tissue.obsm["spatial"]
    neighbours = tissue.obsm["niche_indices"][:2].ravel()
    np.testing.assert_allclose(rings.get_offsets(), coords[neighbours])
    np.testing.assert_allclose(stars.get_offsets(), coords[:2])
    # squidpy drew the cells of the centres' slice, coloured by cell type, with its legend
    in_slice = (tissue.obs["slice"] == tissue.obs["slice"].iloc[0]).to_numpy()
    drawn = np.concatenate([c.get_offsets() for c in ax.collections[:-2]])
    np.testing.assert_allclose(np.unique(drawn, axis=0), np.unique(coords[in_slice], axis=0))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(tissue.obs[CONDITION].cat.categories)
    assert_unchanged(tissue, before)  # no colours written into uns


def test_spatial_niches_random_centres_and_errors(tissue):
    ax = mfm.pl.spatial_niches(tissue, color=CONDITION, n=2, groups="type_1", show=False)
    stars = np.asarray(ax.collections[-1].get_offsets())
    rows = [np.flatnonzero(np.all(tissue.obsm["spatial"] == s, axis=1))[0] for s in stars]
    assert set(tissue.obs[CONDITION].iloc[rows]) == {"type_1"}
    other = np.flatnonzero((tissue.obs["slice"] != tissue.obs["slice"].iloc[0]).to_numpy())[0]
    with pytest.raises(ValueError, match="several libraries"):
        mfm.pl.spatial_niches(tissue, color=CONDITION, centers=[0, int(other)], show=False)
    with pytest.raises(KeyError, match="neither a column"):
        mfm.pl.spatial_niches(tissue, color="nothing", n=1, show=False)
    with pytest.raises(KeyError, match="not an obs name"):
        mfm.pl.spatial_niches(tissue, color=CONDITION, centers=["cell_x"], show=False)


@pytest.mark.parametrize("plot", ["niches", "niche_composition", "spatial_niches"])
def test_subset_after_niches_is_an_error_not_other_cells(tissue, plot):
    # Niche indices are positions: after subsetting they would index other cells.
    generated = make_generated(tissue)
    subset = tissue[tissue.obs[CONDITION] != "type_2"].copy()
    calls = {
        "niches": lambda: mfm.pl.niches(subset, generated, condition="type_0", show=False),
        "niche_composition": lambda: mfm.pl.niche_composition(
            subset, generated, label_key=CONDITION, show=False
        ),
        "spatial_niches": lambda: mfm.pl.spatial_niches(subset, color=CONDITION, show=False),
    }
    with pytest.raises(ValueError, match=r"niches were built on 120.*run `mfm.pp.niches` again"):
        calls[plot]()
    plt.close("all")
