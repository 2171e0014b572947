import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, cross_val_predict

from mfm.datasets import organoid_screen
from mfm.datasets._organoid import PROGRAMS

DESIGN_KEYS = ["patient", "culture", "replicate", "treatment"]


@pytest.fixture(scope="module")
def screen():
    start = time.perf_counter()
    adata = organoid_screen()
    return adata, time.perf_counter() - start


def _population_means(adata) -> pd.DataFrame:
    frame = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    return frame.groupby([adata.obs[key] for key in DESIGN_KEYS], observed=True).mean()


def _effects(adata, treatment):
    """Mean treated - mean control of every (patient, culture, replicate), and control means."""
    means = _population_means(adata)
    control = means.xs("control", level="treatment")
    return means.xs(treatment, level="treatment") - control, control


def _traits(adata) -> pd.DataFrame:
    return pd.DataFrame(adata.uns["organoid_screen"]["traits"]).set_index("patient")


def _program_mean(frame, adata, program):
    return frame.loc[:, (adata.var["program"] == program).to_numpy()].mean(axis=1)


def test_design_every_sample_has_control_and_each_treatment(screen):
    adata, seconds = screen
    assert seconds < 2.0
    assert adata.shape == (8 * 3 * 2 * 4 * 300, 40)
    assert adata.X.dtype == np.float32 and adata.X.min() >= 0.0
    assert adata.obs_names.is_unique
    counts = adata.obs.groupby(DESIGN_KEYS, observed=False).size()
    assert len(counts) == 8 * 3 * 2 * 4 and (counts == 300).all()
    assert list(adata.obs["treatment"].cat.categories) == ["control", "drug_A", "drug_B", "drug_C"]
    assert list(adata.obs["patient"].cat.categories) == [f"P0{i}" for i in range(1, 9)]
    assert list(adata.obs["replicate"].cat.categories) == ["r1", "r2"]
    assert {"EpCAM", "Vimentin", "Ki67", "pERK", "cleaved-Caspase3"} <= set(adata.var_names)


def test_composition_follows_culture_and_traits(screen):
    adata, _ = screen
    traits = _traits(adata)
    obs = adata.obs
    fraction = pd.crosstab([obs["patient"], obs["culture"]], obs["cell_type"], normalize="index")
    assert (fraction.xs("PDO", level="culture")["fibroblast"] == 0).all()
    assert (fraction.xs("fibroblasts", level="culture")["fibroblast"] == 1).all()
    coculture = fraction.xs("co-culture", level="culture")
    np.testing.assert_allclose(coculture["fibroblast"], traits["fibroblast_fraction"], atol=1 / 300)
    pdo = fraction.xs("PDO", level="culture")
    np.testing.assert_allclose(pdo["tumour_stem"], traits["stem_fraction"], atol=1 / 300)
    active = obs.groupby("patient", observed=True)["mapk_active"].mean()
    np.testing.assert_allclose(active, traits["mapk_fraction"], atol=2 / 300)


def test_effects_match_the_generative_model(screen):
    adata, _ = screen
    traits = _traits(adata)
    effect_a, _ = _effects(adata, "drug_A")
    pdo_a = _program_mean(effect_a.xs("PDO", level="culture"), adata, "apoptosis")
    pdo_a = pdo_a.groupby(level="patient", observed=True).mean()
    stem = traits["stem_fraction"]
    # PDO: only tumour cells, each shifted by a_p = 2.5 (1 - sigmoid(8 (s_p - 0.45)))
    np.testing.assert_allclose(pdo_a, 2.5 / (1 + np.exp(8 * (stem - 0.45))), atol=0.06)

    effect_b, _ = _effects(adata, "drug_B")
    mapk = _program_mean(effect_b, adata, "mapk").groupby(level="patient", observed=True).mean()
    np.testing.assert_allclose(mapk, -3.0 * (traits["mapk_fraction"] - 0.5), atol=0.06)

    effect_c, _ = _effects(adata, "drug_C")
    assert np.abs(effect_c.xs("PDO", level="culture").to_numpy()).max() < 0.2


def test_effect_is_population_level_not_cell_level():
    adata = organoid_screen(cultures=["PDO"], treatments=["drug_A"], n_cells=2000, random_state=1)
    traits = _traits(adata)
    low, high = traits["stem_fraction"].idxmin(), traits["stem_fraction"].idxmax()
    obs = adata.obs

    def cells(patient, treatment):
        mask = (
            (obs["patient"] == patient)
            & (obs["treatment"] == treatment)
            & (obs["cell_type"] == "tumour_stem")
            & ~obs["mapk_active"]
        )
        return adata.X[mask.to_numpy()]

    # the same kind of cell looks the same in both patients before treatment ...
    gap = cells(low, "control").mean(axis=0) - cells(high, "control").mean(axis=0)
    assert np.abs(gap).max() < 0.2
    # ... but responds very differently, following its population's stem fraction
    apoptosis = (adata.var["program"] == "apoptosis").to_numpy()
    response = {
        p: (cells(p, "drug_A").mean(axis=0) - cells(p, "control").mean(axis=0))[apoptosis].mean()
        for p in (low, high)
    }
    assert response[low] - response[high] > 1.5


@pytest.mark.parametrize(
    ("treatment", "culture"),
    [
        ("drug_A", "PDO"),
        ("drug_A", "co-culture"),
        ("drug_B", "PDO"),
        ("drug_B", "fibroblasts"),
        ("drug_B", "co-culture"),
        ("drug_C", "co-culture"),
    ],
)
def test_effect_varies_across_patients_and_is_predictable_from_control(
    organoid_24, treatment, culture
):
    adata = organoid_24
    effect, control = _effects(adata, treatment)
    effect, control = effect.xs(culture, level="culture"), control.xs(culture, level="culture")
    summaries = np.column_stack(
        [_program_mean(control, adata, p) for p in ("stem", "epithelial", "mesenchymal", "mapk")]
    )
    patients = effect.index.get_level_values("patient")
    # across patients the effect varies far more than between replicates
    per_patient = effect.groupby(level="patient", observed=True).mean()
    between = per_patient.var(axis=0).sum()
    within = (effect - per_patient.loc[patients].to_numpy()).var(axis=0).sum()
    assert between > 1.0 and between > 20 * within
    # a linear map from control summaries predicts it for patients held out of the fit
    predicted = cross_val_predict(
        LinearRegression(), summaries, effect.to_numpy(), groups=patients, cv=GroupKFold(4)
    )
    assert r2_score(effect.to_numpy(), predicted, multioutput="variance_weighted") > 0.8
    # knowing only the treatment and culture (the mean effect of other patients) does not
    baseline = cross_val_predict(
        DummyRegressor(), summaries, effect.to_numpy(), groups=patients, cv=GroupKFold(4)
    )
    assert r2_score(effect.to_numpy(), baseline, multioutput="variance_weighted") < 0.1


@pytest.fixture(scope="module")
def organoid_24():
    return organoid_screen(n_patients=24, n_cells=200, random_state=2)


def test_markers_padding_and_programs():
    adata = organoid_screen(n_patients=2, n_cells=10, n_markers=43)
    assert list(adata.var_names[-3:]) == ["marker_40", "marker_41", "marker_42"]
    n_program_markers = sum(map(len, PROGRAMS.values()))
    assert (adata.var["program"] != "other").sum() == n_program_markers
    with pytest.raises(ValueError, match="n_markers"):
        organoid_screen(n_markers=n_program_markers - 1)


def test_seed_determinism():
    kwargs = {"n_patients": 3, "n_cells": 20}
    first, second = (
        organoid_screen(**kwargs, random_state=5),
        organoid_screen(**kwargs, random_state=5),
    )
    other = organoid_screen(**kwargs, random_state=6)
    np.testing.assert_array_equal(first.X, second.X)
    assert first.obs.equals(second.obs)
    assert first.uns["organoid_screen"]["traits"] == second.uns["organoid_screen"]["traits"]
    assert not np.allclose(first.X, other.X)


def test_h5ad_round_trip(tmp_path):
    adata = organoid_screen(n_patients=2, n_replicates=1, n_cells=15)
    path = tmp_path / "screen.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.X, adata.X)
    assert back.obs.equals(adata.obs)
    assert back.var.equals(adata.var)
    params = back.uns["organoid_screen"]["params"]
    assert list(params["cultures"]) == ["PDO", "fibroblasts", "co-culture"]
    np.testing.assert_allclose(
        back.uns["organoid_screen"]["traits"]["stem_fraction"],
        adata.uns["organoid_screen"]["traits"]["stem_fraction"],
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cultures": ["organoid"]}, "cultures"),
        ({"treatments": ["control"]}, "treatments"),
        ({"treatments": ["drug_A", "drug_A"]}, "treatments"),
        ({"n_patients": 0}, "n_patients"),
        ({"n_cells": -3}, "n_cells"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        organoid_screen(**kwargs)
