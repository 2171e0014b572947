"""Niche workflow: `pp.niches` -> `tl.fit_niches` -> `tl.generate_niches` -> `tl.evaluate_niches`.

Known answers where they exist (oracle velocities have zero loss, exact Gaussian steps, the W2
between a niche set and its translate), tiny budgets elsewhere (shapes, keys, determinism,
save/load, h5ad); one slow test checks that a short training generates recognisable niches.
"""

import copy
import json
import math
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData
from torch import nn

import mfm
from mfm.flows import bures_wasserstein as bw
from mfm.flows.generate import generate_gaussians
from mfm.flows.niche_objectives import BuresWassersteinObjective, PointCloudObjective
from mfm.models import GaussianVelocity
from mfm.tl import NicheConfig, NicheModel

K = 6
CONDITION = "cell_type"
TYPES = ["type_0", "type_1", "type_2"]
#: Tiny, fast settings (~0.5 s per fit on one busy CPU thread).
FIT = {
    "condition_key": CONDITION,
    "hidden": 16,
    "n_layers": 1,
    "n_heads": 2,
    "time_features": 8,
    "batch_size": 8,
    "max_steps": 12,
    "val_every": 5,
    "ot_iter": 20,
    "device": "cpu",
    "progress": False,
}
GEN = {"n_per_condition": 3, "n_steps": 4}


def tissue(n_cells=240, n_genes=5, **kwargs) -> AnnData:
    adata = mfm.datasets.simulated_tissue(
        n_cells=n_cells, n_genes=n_genes, n_cell_types=3, n_domains=3, random_state=0
    )
    mfm.pp.niches(adata, n_neighbors=K, library_key="slice", **kwargs)
    return adata


@pytest.fixture(scope="module")
def fitted():
    """``fitted(**fit_kwargs)``: a fresh copy of the niche AnnData after fitting, and the model."""
    cache = {}

    def get(**kwargs):
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            adata = tissue()
            cache[key] = (adata, mfm.tl.fit_niches(adata, **{**FIT, **kwargs}))
        adata, model = cache[key]
        return adata.copy(), model

    return get


def as_generated(adata: AnnData, offset: float = 0.0) -> AnnData:
    """The real niches of ``adata`` (plus ``offset``) as if returned by `generate_niches`."""
    indices = adata.obsm["niche_indices"]
    x = np.asarray(adata.X)[indices].reshape(-1, adata.n_vars) + offset
    niche = np.repeat(np.arange(adata.n_obs), indices.shape[1])
    obs = pd.DataFrame(
        {
            "niche": pd.Categorical(
                niche.astype(str), categories=[str(i) for i in range(adata.n_obs)]
            ),
            CONDITION: adata.obs[CONDITION].to_numpy()[niche],
        },
        index=[f"p{i}" for i in range(len(x))],
    )
    generated = AnnData(X=x.astype(np.float32), obs=obs, var=adata.var[[]])
    generated.uns["niche"] = {"params": {"condition_key": CONDITION, "use_rep": "X"}}
    return generated


def plain(params: dict) -> dict:
    """``params`` read from h5ad with its arrays back as lists."""
    return {
        k: plain(v) if isinstance(v, dict) else v.tolist() if isinstance(v, np.ndarray) else v
        for k, v in params.items()
    }


# ---------------------------------------------------------------- objectives (torch only)


class ConvergeToPoint(nn.Module):
    """Exact velocity towards a cloud whose points all equal ``c``: ``(c - x) / (1 - t)``."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x, t, labels, mask, generator=None):
        return (self.c - x) / (1 - t)[:, None, None] * mask[..., None]


def test_point_cloud_objective_of_the_exact_velocity_is_zero():
    g = torch.Generator().manual_seed(0)
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 4, 2, 5])[:, None]
    x1 = torch.where(mask[..., None], c, torch.nan)  # NaN padding must not leak
    objective = PointCloudObjective(ConvergeToPoint(c), reg=0.1, n_iter=20)
    out = objective(x1, mask, None, g)
    assert out.loss.item() < 1e-20
    wrong = PointCloudObjective(ConvergeToPoint(c + 1), reg=0.1, n_iter=20)(x1, mask, None, g)
    assert wrong.loss.item() > 0.1
    assert set(wrong.parts) == {"mse"} and not wrong.parts["mse"].requires_grad
    torch.testing.assert_close(wrong.parts["mse"], wrong.loss.detach())


class GeodesicToTarget(nn.Module):
    """Exact Bures-Wasserstein velocity towards the fixed Gaussian ``N(m1, S1)``."""

    def __init__(self, m1, S1):
        super().__init__()
        self.m1, self.S1 = m1, S1

    def forward(self, m, S, t, labels, generator=None):
        A = bw.monge_map(S, self.S1.expand_as(S))
        eye = torch.eye(S.shape[-1], dtype=S.dtype)
        return (self.m1 - m) / (1 - t)[:, None], (A - eye) / (1 - t)[:, None, None]


def test_bures_wasserstein_objective_of_the_exact_velocity_is_zero():
    # the rest of a geodesic is a geodesic: from (m_t, S_t), (A_t - I) / (1 - t) = (A - I) M_t^-1
    g = torch.Generator().manual_seed(0)
    cloud = torch.randn(1, 9, 3, generator=g, dtype=torch.float64)
    x1 = cloud.expand(5, 9, 3)
    mask = torch.ones(5, 9, dtype=torch.bool)
    objective = BuresWassersteinObjective(GaussianVelocity(3), shrinkage=0.2)
    m1, S1 = objective.gaussians(cloud, None)
    objective.net = GeodesicToTarget(m1, S1)
    out = objective(x1, mask, None, g)
    assert out.loss.item() < 1e-18
    assert set(out.parts) == {"mean", "cov"}
    # parts are detached tensors (no host sync per step) that add up to the loss
    assert all(isinstance(p, torch.Tensor) and not p.requires_grad for p in out.parts.values())
    torch.testing.assert_close(out.parts["mean"] + out.parts["cov"], out.loss.detach())


def test_gaussian_velocity_vech_is_an_isometry():
    net = GaussianVelocity(4)
    S = torch.randn(3, 4, 4, dtype=torch.float64)
    S = S + S.mT
    z = net.vech(S)
    assert z.shape == (3, 10)
    torch.testing.assert_close(z.norm(dim=-1), S.flatten(1).norm(dim=-1))
    torch.testing.assert_close(net.unvech(z), S)


def test_gaussian_velocity_guidance_and_dropout():
    torch.manual_seed(0)
    net = GaussianVelocity(2, n_conditions=3, hidden=8, n_layers=1, cfg_dropout=1.0).double()
    m, S = torch.zeros(4, 2, dtype=torch.float64), torch.eye(2, dtype=torch.float64).expand(4, 2, 2)
    t, labels = torch.full((4,), 0.3, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    null = net.guided(m, S, t, torch.full_like(labels, 3), 0.0)
    cond = net.guided(m, S, t, labels, 0.0)
    for a, b in zip(net(m, S, t, labels), null, strict=True):  # dropout 1: always the null label
        torch.testing.assert_close(a, b)
    w = 2.0
    for a, c, u in zip(net.guided(m, S, t, labels, w), cond, null, strict=True):
        torch.testing.assert_close(a, (1 + w) * c - w * u)
    assert torch.allclose(cond[1], cond[1].mT)  # S_v symmetric


def test_generate_gaussians_with_known_velocity():
    # v_m = c, S_v = a I: m1 = m0 + c, S1 = (1 + a / n)^(2 n) S0 with n explicit steps
    m0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    S0 = torch.tensor([[[2.0, 0.5], [0.5, 1.0]]], dtype=torch.float64)
    c, a, n = torch.tensor([1.0, -1.0], dtype=torch.float64), 0.3, 8

    def velocity(m, S, t, cond):
        return c.expand_as(m), a * torch.eye(2, dtype=S.dtype).expand_as(S)

    m1, S1 = generate_gaussians(velocity, m0, S0, n_steps=n)
    torch.testing.assert_close(m1, m0 + c)
    torch.testing.assert_close(S1, (1 + a / n) ** (2 * n) * S0)


# ---------------------------------------------------------------- fit


def test_fit_writes_history_params_and_config(fitted):
    adata, model = fitted()
    history = adata.uns["niche"]["history"]
    assert history["step"].tolist() == [5, 10, 12]
    assert np.isfinite(history["train_loss"]).all()
    params = adata.uns["niche"]["params"]["fit"]
    assert params["condition_key"] == CONDITION
    assert params["geometry"] == "point_cloud"
    assert params["max_steps"] == 12
    c = model.config
    assert c.conditions == TYPES
    assert (c.niche_sizes, c.size_counts) == ([K], [adata.n_obs])
    assert model.features == list(adata.var_names)
    points = np.asarray(adata.X, dtype=np.float64)[adata.obsm["niche_indices"]].reshape(-1, 5)
    np.testing.assert_allclose(c.feature_mean, points.mean(0), rtol=1e-6)
    assert c.feature_scale == pytest.approx(np.sqrt(points.var(0).mean()))
    assert model.standardize(points).reshape(-1).std() == pytest.approx(1.0, rel=0.05)


def test_fit_logs_the_keys_it_added(caplog):
    adata = tissue()
    with caplog.at_level("INFO", logger="mfm"):
        mfm.tl.fit_niches(adata, **{**FIT, "max_steps": 2}, key_added="niche")
    finished = [
        r.getMessage()
        for r in caplog.records
        if r.name == "mfm.tl._fit_niches" and "finished" in r.getMessage()
    ]
    assert finished == ["finished; added uns['niche']['history'], uns['niche']['params']['fit']"]
    assert "history" in adata.uns["niche"] and "fit" in adata.uns["niche"]["params"]


def test_fit_is_deterministic(fitted):
    _, model = fitted()
    again = mfm.tl.fit_niches(tissue(), **FIT)
    for name, value in model.module.state_dict().items():
        torch.testing.assert_close(again.module.state_dict()[name], value, rtol=0, atol=0)


def test_chol_normal_noise_is_the_pooled_gaussian(fitted):
    adata, model = fitted(noise="chol_normal")
    points = np.asarray(adata.X, dtype=np.float64)[adata.obsm["niche_indices"]].reshape(-1, 5)
    standardised = (points - points.mean(0)) / model.config.feature_scale
    np.testing.assert_allclose(model.config.noise_mean, 0.0, atol=1e-6)
    cov = np.cov(standardised.T, bias=True)
    np.testing.assert_allclose(
        model.config.noise_cov, 0.999 * cov + 1e-3 * np.trace(cov) / 5 * np.eye(5), atol=1e-6
    )


def test_models_saved_with_the_former_noise_name_load_as_normal_noise():
    assert mfm.tl.NicheConfig(noise="gaussian").noise == "normal"
    assert mfm.tl.NicheConfig().noise == "normal"


def test_nan_conditions_are_left_out():
    adata = tissue()
    adata.obs[CONDITION] = adata.obs[CONDITION].astype(object)
    adata.obs.iloc[:10, adata.obs.columns.get_loc(CONDITION)] = np.nan
    with pytest.warns(UserWarning, match="Left out 10 niches"):
        model = mfm.tl.fit_niches(adata, **{**FIT, "max_steps": 1})
    assert model.config.conditions == TYPES  # sorted values of a non-categorical column
    assert model.config.size_counts == [adata.n_obs - 10]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"geometry": "sphere"}, ValueError, "`geometry` must be one of"),
        ({"noise": "uniform"}, ValueError, "`noise` must be one of"),
        ({"mode": "exact"}, ValueError, "`mode` must be one of"),
        ({"shrinkage": 2.0}, ValueError, "`shrinkage` must be in"),
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        ({"condition_key": "tissue"}, KeyError, "Column 'tissue' not found"),
        ({"key_added": "nb"}, KeyError, r"run `mfm.pp.niches` first"),
    ],
)
def test_fit_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        mfm.tl.fit_niches(tissue(), **{**FIT, **kwargs})


def test_fit_after_subsetting_asks_for_new_niches():
    adata = tissue()[:200].copy()
    with pytest.raises(ValueError, match="run `mfm.pp.niches` again after subsetting"):
        mfm.tl.fit_niches(adata, **FIT)
    del adata.obsm["niche_indices"]
    with pytest.raises(KeyError, match=r"obsm\['niche_indices'\]"):
        mfm.tl.fit_niches(adata, **FIT)


# ---------------------------------------------------------------- generate


def test_generated_anndata(fitted):
    _, model = fitted()
    gen = mfm.tl.generate_niches(model, conditions=["type_2", "type_0"], **GEN)
    assert gen.n_obs == 2 * 3 * K
    assert list(gen.var_names) == model.features
    assert gen.X.dtype == np.float32 and np.isfinite(gen.X).all()
    assert gen.obs["niche"].dtype == "category"
    assert list(gen.obs["niche"].cat.categories) == [str(i) for i in range(6)]
    assert (gen.obs["niche"].value_counts() == K).all()
    assert list(gen.obs[CONDITION].cat.categories) == TYPES
    assert (
        gen.obs.groupby("niche", observed=True)[CONDITION].first().tolist()
        == ["type_2"] * 3 + ["type_0"] * 3
    )
    assert gen.obs_names.is_unique
    assert gen.uns["niche"]["params"]["condition_key"] == CONDITION
    sized = mfm.tl.generate_niches(model, conditions="type_1", n_points=4, **GEN)
    assert (sized.obs["niche"].value_counts() == 4).all() and sized.n_obs == 12


def test_counts_per_condition(fitted):
    _, model = fitted()
    gen = mfm.tl.generate_niches(model, n_per_condition={"type_2": 2, "type_0": 1}, n_steps=2)
    per_niche = gen.obs.groupby("niche", observed=True)[CONDITION].first()
    assert per_niche.tolist() == ["type_2", "type_2", "type_0"]
    assert gen.uns["niche"]["params"]["n_per_condition"] == [2, 1]
    assert gen.uns["niche"]["params"]["conditions"] == ["type_2", "type_0"]
    with pytest.raises(ValueError, match="not both"):
        mfm.tl.generate_niches(model, conditions=["type_0"], n_per_condition={"type_0": 1})
    with pytest.raises(ValueError, match="`n_per_condition` must be an integer >= 1"):
        mfm.tl.generate_niches(model, n_per_condition={"type_0": 0})


def test_generation_is_deterministic(fitted):
    _, model = fitted()
    a = mfm.tl.generate_niches(model, **GEN, random_state=3)
    b = mfm.tl.generate_niches(model, **GEN, random_state=3)
    c = mfm.tl.generate_niches(model, **GEN, random_state=4)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.allclose(a.X, c.X)
    pd.testing.assert_frame_equal(a.obs, b.obs)


def test_guidance(fitted):
    """Guidance follows (1 + w) v(x | c) - w v(x | null): known answer with constant velocities."""
    _, model = fitted()
    plain = mfm.tl.generate_niches(model, **GEN)
    guided = mfm.tl.generate_niches(model, **GEN, guidance_scale=2.0)
    assert not np.allclose(plain.X, guided.X)
    # velocity shift[c] under label c and 0 under the null label: from the same noise, guidance
    # w moves every point of a niche of c by (1 + w) shift[c] (in standardised units)
    oracle = copy.deepcopy(model)
    shift = torch.tensor([[1.0, 0, 0, 0, 0], [0, -2.0, 0, 0, 0], [0, 0, 0.5, 0, 0], [0] * 5])

    def constant(x, t, labels, mask):
        return shift[labels][:, None, :].expand_as(x) * mask[..., None]

    oracle.module._velocity = constant
    base = mfm.tl.generate_niches(oracle, **GEN, random_state=5)
    for w in (0.0, 2.0):
        out = mfm.tl.generate_niches(oracle, **GEN, guidance_scale=w, random_state=5)
        codes = out.obs[CONDITION].cat.codes.to_numpy()
        moved = w * shift.numpy()[codes] * model.config.feature_scale
        np.testing.assert_allclose(out.X - base.X, moved, atol=1e-4)
    _, no_null = fitted(cfg_dropout=0.0)
    with pytest.raises(ValueError, match="cfg_dropout > 0"):
        mfm.tl.generate_niches(no_null, **GEN, guidance_scale=1.0)


def test_unknown_condition(fitted):
    _, model = fitted()
    with pytest.raises(
        ValueError, match=r"\['type_9'\].*known conditions: \['type_0', 'type_1', 'type_2'\]"
    ):
        mfm.tl.generate_niches(model, conditions=["type_0", "type_9"], **GEN)


@pytest.mark.parametrize("kwargs", [{}, {"geometry": "gaussian", "noise": "chol_normal"}])
def test_save_load_gives_identical_generations(fitted, tmp_path, kwargs):
    _, model = fitted(**kwargs)
    model.save(tmp_path / "model")
    loaded = mfm.tl.load(tmp_path / "model", device="cpu")
    assert isinstance(loaded, NicheModel)
    assert loaded.config == model.config
    assert isinstance(loaded.config, NicheConfig)
    before = mfm.tl.generate_niches(model, **GEN, random_state=1)
    after = mfm.tl.generate_niches(loaded, **GEN, random_state=1)
    np.testing.assert_array_equal(after.X, before.X)


# ---------------------------------------------------------------- evaluate


def test_evaluate_known_answers():
    adata = tissue(n_cells=90, n_genes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rare classes left out of the CV
        same = mfm.tl.evaluate_niches(adata, as_generated(adata), max_niches=1000)
        shift = 30.0
        moved = mfm.tl.evaluate_niches(adata, as_generated(adata, shift), max_niches=1000)
    counts = adata.obs[CONDITION].value_counts()
    assert same.index.tolist() == [*adata.obs[CONDITION].cat.categories, "all"]
    assert same.loc["all", "n_real"] == same.loc["all", "n_generated"] == 90
    assert (same.loc[TYPES, "n_real"] == counts[TYPES]).all()
    np.testing.assert_allclose(same["w2"], 0.0, atol=1e-12)  # a niche set against itself
    # translating every niche by c: the set W2 is |c| (the identity plan stays optimal)
    np.testing.assert_allclose(moved["w2"], shift * np.sqrt(3), rtol=1e-7)  # float32 points
    assert (moved["one_nn_accuracy"] == 1.0).all()
    assert moved.loc[TYPES, "label_accuracy"].isna().all()
    assert moved.loc["all", "label_accuracy"] < same.loc["all", "label_accuracy"]
    summaries = mfm.metrics.cloud_summaries(
        [np.asarray(adata.X)[i] for i in adata.obsm["niche_indices"]]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = mfm.metrics.label_accuracy(
            summaries,
            adata.obs[CONDITION].astype(str).to_numpy(),
            summaries,
            adata.obs[CONDITION].astype(str).to_numpy(),
            random_state=np.random.default_rng(0),
        )
    assert same.loc["all", "label_accuracy"] == pytest.approx(reference["generated"])
    pd.testing.assert_frame_equal(adata.uns["niche"]["metrics"], moved)


def test_evaluate_subsamples_balanced_by_condition(fitted):
    """5 generated niches per condition, at most 10 per side: 4 + 3 + 3, the same on both sides.

    The generated niches are copies of real ones, so a 1-NN label classifier fitted on the real
    niches labels every one right; moved far away, each is told apart from the real ones.
    """
    adata, _ = fitted()
    copies = as_generated(adata)
    first = copies.obs.groupby(CONDITION, observed=True)["niche"].unique().map(lambda n: n[:5])
    chosen = np.concatenate(first.to_numpy()).astype(str)
    keep = copies.obs["niche"].astype(str).isin(chosen).to_numpy()
    gen = copies[keep].copy()
    gen.obs["niche"] = gen.obs["niche"].cat.remove_unused_categories()
    moved = gen.copy()
    moved.X = moved.X + 30.0
    tables = [
        mfm.tl.evaluate_niches(adata, g, max_niches=10, n_neighbors=1, cv=2) for g in (gen, moved)
    ]
    for table in tables:
        assert table.loc[TYPES, "n_real"].tolist() == [4, 3, 3]  # shared as evenly as possible
        assert table.loc[TYPES, "n_generated"].tolist() == [4, 3, 3]
        assert table.loc["all", ["n_real", "n_generated"]].tolist() == [10, 10]
    same, far = tables
    assert same.loc["all", "label_accuracy"] == 1.0
    assert (far["one_nn_accuracy"] == 1.0).all()
    # the real niches' own accuracy does not depend on the generated ones
    assert same.loc["all", "label_accuracy_real"] == far.loc["all", "label_accuracy_real"]
    assert 0.5 < same.loc["all", "label_accuracy_real"] < 1.0


def test_h5ad_round_trip_of_every_key(fitted, tmp_path):
    adata, model = fitted()
    gen = mfm.tl.generate_niches(model, **GEN)
    mfm.tl.evaluate_niches(adata, gen, max_niches=20)
    adata.write_h5ad(tmp_path / "a.h5ad")
    gen.write_h5ad(tmp_path / "g.h5ad")
    a, g = ad.read_h5ad(tmp_path / "a.h5ad"), ad.read_h5ad(tmp_path / "g.h5ad")
    np.testing.assert_array_equal(a.obsm["niche_indices"], adata.obsm["niche_indices"])
    pd.testing.assert_frame_equal(a.uns["niche"]["history"], adata.uns["niche"]["history"])
    pd.testing.assert_frame_equal(a.uns["niche"]["metrics"], adata.uns["niche"]["metrics"])
    assert plain(a.uns["niche"]["params"]) == adata.uns["niche"]["params"]
    pd.testing.assert_frame_equal(g.obs, gen.obs)
    assert plain(g.uns["niche"]["params"]) == gen.uns["niche"]["params"]
    # the written files are enough to evaluate again
    table = mfm.tl.evaluate_niches(a, g, max_niches=20)
    pd.testing.assert_frame_equal(table, adata.uns["niche"]["metrics"])


def test_evaluate_errors(fitted):
    adata, model = fitted()
    gen = mfm.tl.generate_niches(model, **GEN)
    with pytest.raises(KeyError, match="pass the AnnData returned by `mfm.tl.generate_niches`"):
        mfm.tl.evaluate_niches(adata, gen, key_added="nb")
    other = gen.copy()
    other.var_names = [f"x{i}" for i in range(other.n_vars)]
    with pytest.raises(ValueError, match="differ from the niche features"):
        mfm.tl.evaluate_niches(adata, other)


# ---------------------------------------------------------------- other geometries, unconditional


class ExactGaussianVelocity(nn.Module):
    """The Bures-Wasserstein velocity that reaches N(m1[c], S1[c]) at t = 1 from any (m, S)."""

    def __init__(self, m1: torch.Tensor, S1: torch.Tensor):
        super().__init__()
        self.m1, self.S1 = m1, S1

    def guided(self, m, S, t, labels, guidance_scale=0.0):
        left = (1 - torch.as_tensor(t, dtype=m.dtype)).reshape(-1, 1)
        A = bw.monge_map(S.double(), self.S1[labels].double()).to(S.dtype)
        eye = torch.eye(m.shape[1], dtype=m.dtype)
        return (self.m1[labels] - m) / left, (A - eye) / left[..., None]


def test_gaussian_geometry(fitted):
    adata, model = fitted(geometry="gaussian")
    assert isinstance(model.module, GaussianVelocity)
    loss = adata.uns["niche"]["history"]["train_loss"]
    assert loss.iloc[-1] < loss.iloc[0]
    # generation steps the noise Gaussians along the velocity, then draws the points: with the
    # exact velocity towards N(m1[c], S1[c]) the last Euler step lands on it exactly
    d = len(model.features)
    m1 = torch.tensor([[1.0, 0, 0, 0, 0], [0, -1.0, 0, 0, 0], [0, 0, 2.0, 0, 0]])
    root = torch.eye(d) + 0.3 * torch.ones(d, d) / d
    S1 = torch.stack([root @ root.T * s for s in (0.5, 1.0, 2.0)])
    oracle = copy.deepcopy(model)
    oracle.module = ExactGaussianVelocity(m1, S1)
    gen = mfm.tl.generate_niches(oracle, n_per_condition=1, n_steps=3, n_points=20000)
    assert gen.n_obs == 3 * 20000
    scale, mean = model.config.feature_scale, np.asarray(model.config.feature_mean)
    for code, condition in enumerate(TYPES):
        points = (gen.X[(gen.obs[CONDITION] == condition).to_numpy()] - mean) / scale
        np.testing.assert_allclose(points.mean(0), m1[code].numpy(), atol=0.05)
        np.testing.assert_allclose(np.cov(points.T), S1[code].numpy(), atol=0.06 * (code + 1))


def test_unconditional_model(fitted, tmp_path):
    adata, model = fitted(condition_key=None, mode="barycentric")
    assert model.config.conditions == [] and model.config.condition_key is None
    gen = mfm.tl.generate_niches(model, **GEN)
    assert list(gen.obs.columns) == ["niche"] and gen.n_obs == 3 * K
    with pytest.raises(ValueError, match="unconditional"):
        mfm.tl.generate_niches(model, conditions=["type_0"], **GEN)
    table = mfm.tl.evaluate_niches(adata, gen, max_niches=6)
    assert table.index.tolist() == ["all"]
    assert math.isnan(table.loc["all", "label_accuracy"])
    adata.write_h5ad(tmp_path / "a.h5ad")  # no None / empty entries that h5ad cannot hold
    gen.write_h5ad(tmp_path / "g.h5ad")


# ---------------------------------------------------------------- quality


@pytest.mark.slow
@pytest.mark.parametrize(("geometry", "minimum"), [("point_cloud", 0.6), ("gaussian", 0.45)])
def test_generated_niches_are_recognisable(geometry, minimum):
    """After a short training, the real-niche classifier labels generated niches well.

    Untrained (1 step) both geometries score 0.21-0.26, chance level; the real niches' own
    cross-validated accuracy is 0.75.
    """
    adata = mfm.datasets.simulated_tissue(n_cells=1500, n_genes=6, n_cell_types=4, random_state=0)
    mfm.pp.niches(adata, n_neighbors=8, library_key="slice")
    model = mfm.tl.fit_niches(
        adata,
        condition_key=CONDITION,
        geometry=geometry,
        hidden=32,
        n_layers=2,
        n_heads=2,
        batch_size=32,
        max_steps=300,
        ot_iter=50,
        lr=2e-3,
        device="cpu",
        progress=False,
    )
    gen = mfm.tl.generate_niches(model, n_per_condition=40, n_steps=20)
    table = mfm.tl.evaluate_niches(adata, gen, max_niches=80)
    accuracy = table.loc["all", "label_accuracy"]
    assert accuracy > minimum  # chance: 0.25
    assert table.loc["all", "label_accuracy_real"] > 0.7


DDP_SCRIPT = """
import json
import sys
import torch
import mfm
from mfm.data import PointClouds

drawn = []  # the niches this rank pads into its batches, step by step
pad = PointClouds.pad
PointClouds.pad = lambda self, chosen, **kw: drawn.append(sorted(map(int, chosen))) or pad(
    self, chosen, **kw
)
torch.distributed.init_process_group("gloo")
adata = mfm.datasets.simulated_tissue(n_cells=120, n_genes=3, n_cell_types=2, random_state=0)
mfm.pp.niches(adata, n_neighbors=4, library_key="slice")
model = mfm.tl.fit_niches(adata, condition_key="cell_type", hidden=8, n_layers=1, n_heads=2,
                          batch_size=4, max_steps=4, ot_iter=10, device="cpu", progress=False)
model.save(f"{sys.argv[1]}/rank{torch.distributed.get_rank()}")
with open(f"{sys.argv[1]}/drawn{torch.distributed.get_rank()}.json", "w") as file:
    json.dump(drawn, file)
torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_ranks_stay_in_sync(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "train.py"
    script.write_text(DDP_SCRIPT)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
        f"--master-port={port}", str(script), str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (mfm.tl.load(tmp_path / f"rank{r}", device="cpu") for r in (0, 1))
    # each rank drew its own niches (4 steps of 4), DDP averaged the gradients: same weights
    drawn = [json.loads((tmp_path / f"drawn{r}.json").read_text()) for r in (0, 1)]
    assert [len(d) for d in drawn] == [4, 4] and all(len(b) == 4 for d in drawn for b in d)
    assert all(a != b for a, b in zip(*drawn, strict=True))
    for name, value in first.module.state_dict().items():
        torch.testing.assert_close(second.module.state_dict()[name], value, rtol=0, atol=1e-6)
    fresh = NicheModel(first.config, first.features, device="cpu")
    assert any(
        not torch.equal(fresh.module.state_dict()[k], v)
        for k, v in first.module.state_dict().items()
    )


def test_fit_niches_resumes_an_interrupted_run_exactly(tmp_path, monkeypatch):
    """The niche fit saves and restores its sampler's random states like `tl.fit`."""
    adata = tissue()
    kw = {**FIT, "max_steps": 12, "val_every": 4, "checkpoint_every": 4}
    whole = mfm.tl.fit_niches(adata.copy(), **kw, checkpoint_dir=tmp_path / "whole")
    batch = mfm.data.CloudSampler.batch
    calls = []

    def stop_at_step_7(self):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return batch(self)

    cut = adata.copy()
    with monkeypatch.context() as patch:
        patch.setattr(mfm.data.CloudSampler, "batch", stop_at_step_7)
        with pytest.raises(KeyboardInterrupt):
            mfm.tl.fit_niches(cut, **kw, checkpoint_dir=tmp_path / "cut")
    resumed = mfm.tl.fit_niches(cut, **kw, checkpoint_dir=tmp_path / "cut", resume=True)
    for name, value in resumed.module.state_dict().items():
        torch.testing.assert_close(value, whole.module.state_dict()[name], rtol=0, atol=0)


@pytest.mark.slow
def test_gaussian_generation_on_merfish_does_not_diverge():
    # Regression: after 200 training steps on MERFISH niches the learned Gaussian velocity grew
    # with the covariance; generation blew up (t ~ 0.7) and `torch.linalg.eigh` failed.
    import os

    if not os.environ.get("MFM_DATA_DIR"):
        pytest.skip("needs MFM_DATA_DIR with the MERFISH file")
    import scanpy as sc

    adata = mfm.datasets.moffitt_hypothalamus()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=16, random_state=0)
    mfm.pp.niches(adata, n_neighbors=16, library_key="z", use_rep="X_pca")
    adata.obs["cell_class"] = adata.obs["Cell_class"].astype(str).astype("category")
    model = mfm.tl.fit_niches(
        adata, condition_key="cell_class", geometry="gaussian", max_steps=200,
        device="cpu", progress=False,
    )  # fmt: skip
    gen = mfm.tl.generate_niches(model, n_per_condition=20, n_steps=50, random_state=0)
    assert np.isfinite(gen.X).all()
    # Generated points stay on the scale of the data (|x| <= 30 on real MERFISH PCs).
    assert np.abs(gen.X).max() < 5 * np.abs(adata.obsm["X_pca"]).max()


def test_evaluate_after_subsetting_asks_for_new_niches(fitted):
    adata, model = fitted()
    gen = mfm.tl.generate_niches(model, n_per_condition=2, n_steps=2)
    subset = adata[: adata.n_obs - 5].copy()
    with pytest.raises(ValueError, match="run `mfm.pp.niches` again after subsetting"):
        mfm.tl.evaluate_niches(subset, gen)
