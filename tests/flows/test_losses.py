"""`MetaFlowObjective`: exact losses of known velocities, and FM learning a constant shift."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import mfm
from mfm.flows import LossOutput, MetaFlowObjective
from mfm.models import GCNConditioner, MetaFlowNet, NullConditioner

SHIFT = torch.tensor([1.5, -1.0, 0.5, 0.0], dtype=torch.float64)


class ConstantVelocity(nn.Module):
    """The exact velocity ``v = c`` of the translation ``x -> x + c``, in MetaFlowNet's API."""

    def __init__(self, shift):
        super().__init__()
        self.conditioner = NullConditioner()
        self.register_buffer("shift", shift)

    def embed(self, cells, population):
        return self.conditioner(cells, population)

    def condition(self, embedding, treatment):
        return embedding

    def velocity(self, x, t, condition):
        return self.shift.expand_as(x)

    def without_population(self, condition):
        return condition


def _clouds(batch=3, n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n, 4, generator=generator, dtype=torch.float64)


def _loss(objective, source, target, generator=None):
    codes = torch.zeros(len(source), dtype=torch.long)
    return objective(source, target, codes, codes, generator)


@pytest.mark.parametrize("coupling", ["independent", "ot"])
def test_exact_velocity_has_zero_loss(coupling):
    source = _clouds()
    out = _loss(
        MetaFlowObjective(ConstantVelocity(SHIFT), coupling=coupling), source, source + SHIFT
    )
    assert isinstance(out, LossOutput)
    assert out.loss.item() < 1e-20
    assert out.parts == {"mse": out.loss.item()}


def test_ot_recovers_the_translation_of_shuffled_targets():
    """The OT pairing of a cloud with its translate is the translation, whatever the order."""
    source = _clouds()
    shuffled = torch.stack([c[torch.randperm(len(c))] for c in source])
    target = shuffled + SHIFT
    exact = ConstantVelocity(SHIFT)
    assert _loss(MetaFlowObjective(exact, coupling="ot"), source, target).loss.item() < 1e-20
    # independent pairs: the residual of v = c is x_perm - x, whatever the times
    independent = _loss(MetaFlowObjective(exact), source, target).loss.item()
    expected = (shuffled - source).square().sum(-1).mean().item()
    assert independent == pytest.approx(expected, rel=1e-12)


def test_noise_source_residual():
    """With ``source="noise"``, x0 = z is the first draw of the generator: loss = |x - z|^2."""
    source = _clouds()
    objective = MetaFlowObjective(ConstantVelocity(SHIFT), source="noise")
    out = _loss(objective, source, source + SHIFT, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(source.shape, generator=generator, dtype=source.dtype)
    expected = (source - noise).square().sum(-1).mean().item()
    assert out.loss.item() == pytest.approx(expected, rel=1e-12)


def test_noise_source_keeps_the_dtype():
    """Noise sources are drawn in the dtype of the batch (no promotion of bfloat16 batches)."""
    seen = []

    class Recording(ConstantVelocity):
        def velocity(self, x, t, condition):
            seen.append(x.dtype)
            return super().velocity(x, t, condition)

    source = _clouds().to(torch.bfloat16)
    objective = MetaFlowObjective(Recording(SHIFT.to(torch.bfloat16)), source="noise")
    out = _loss(objective, source, source + 1, torch.Generator().manual_seed(0))
    assert seen == [torch.bfloat16]
    assert out.loss.dtype == torch.bfloat16


@pytest.mark.parametrize(("source", "coupling"), [("control", "ot"), ("noise", "independent")])
def test_real_net_gives_finite_loss_and_gradients(source, coupling):
    net = MetaFlowNet(
        GCNConditioner(4, hidden=8, n_layers=2, out_features=4, knn=3), 4, 2, hidden=16
    )
    objective = MetaFlowObjective(net, source=source, coupling=coupling)
    clouds = _clouds().float()
    treatment = torch.tensor([0, 1, 0])
    out = objective(clouds, clouds + 1, treatment, treatment, torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0
    assert torch.isfinite(out.loss)
    out.loss.backward()
    gcn = net.conditioner.encoder.layers[0].linear.weight.grad
    assert gcn is not None
    assert torch.isfinite(gcn).all()
    assert gcn.abs().sum() > 0  # the embedding is trained with the velocity


def _shift_adata(n_patients=2, n_cells=150, spread=0.3, seed=0) -> ad.AnnData:
    """Control cells ~ N(0, spread^2 I); the treated cells are the same cells + SHIFT."""
    rng = np.random.default_rng(seed)
    shift = SHIFT.numpy().astype(np.float32)
    blocks, rows = [], []
    for p in range(n_patients):
        x0 = (spread * rng.normal(size=(n_cells, 4))).astype(np.float32)
        blocks += [x0, x0 + shift]
        rows += [(f"P{p}", "control")] * n_cells + [(f"P{p}", "drug")] * n_cells
    obs = pd.DataFrame(rows, columns=["patient", "treatment"])
    obs.index = [f"cell{i}" for i in range(len(obs))]
    return ad.AnnData(np.concatenate(blocks), obs=obs, var=pd.DataFrame(index=list("abcd")))


@pytest.mark.parametrize("coupling", ["independent", "ot"])
def test_fm_learns_a_constant_shift(coupling):
    adata = _shift_adata()
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    model = mfm.tl.fit(
        adata,
        method="fm",
        coupling=coupling,
        max_steps=200,
        lr=3e-3,
        hidden=32,
        n_layers=2,
        batch_populations=2,
        cells_per_population=64,
        device="cpu",
        progress=False,
    )
    pred = mfm.tl.predict(adata, model, solver="euler", n_steps=10)
    control = adata[pred.obs["source_cell"]].X
    displacement = pred.X - control
    shift = SHIFT.numpy()
    np.testing.assert_allclose(displacement.mean(0), shift, atol=0.05)
    error = np.linalg.norm(displacement - shift, axis=1)
    assert np.median(error) < 0.1
    assert error.max() < 0.35


class EmbeddingShift(nn.Module):
    """``v(x, t | h) = h_0 * direction``: the population-free velocity (h = 0) is zero."""

    def __init__(self, direction):
        super().__init__()
        self.conditioner = NullConditioner()
        self.conditioner.out_features = 1
        self.register_buffer("direction", direction)

    def embed(self, cells, population):
        return torch.ones(len(cells), 1, dtype=cells.dtype)

    def condition(self, embedding, treatment):
        return embedding

    def velocity(self, x, t, condition):
        return condition[:, :1] * self.direction

    def without_population(self, condition):
        return torch.zeros_like(condition)


@pytest.mark.parametrize(("weight", "expected"), [(0.3, 0.3), (1.7, 1.0), (-0.4, 0.0)])
def test_fitted_population_weight_is_the_least_squares_mixture(weight, expected):
    """Targets move every cell by ``weight * direction``: the best mixture of v(h) = direction
    and v(0) = 0 is ``weight``, clipped to [0, 1]."""
    from mfm.tl._fit import fitted_population_weight

    objective = MetaFlowObjective(EmbeddingShift(SHIFT), population_dropout=0.5)
    source = _clouds()
    codes = torch.zeros(len(source), dtype=torch.long)
    draws = [(source, source + weight * SHIFT, codes, codes)]
    assert fitted_population_weight(objective, draws) == pytest.approx(expected, abs=1e-12)


def test_population_dropout_trains_without_the_embedding():
    """With dropout 1 every pair sees h = 0, so the loss is that of v(0) = 0; in eval mode, and
    with dropout 0, h is kept and the exact velocity has zero loss."""
    source = _clouds()
    target = source + SHIFT
    generator = torch.Generator().manual_seed(0)
    dropped = MetaFlowObjective(EmbeddingShift(SHIFT), population_dropout=1.0)
    expected = SHIFT.square().sum()
    torch.testing.assert_close(_loss(dropped, source, target, generator).loss, expected)
    assert float(_loss(dropped.eval(), source, target, generator).loss) == pytest.approx(0.0)
    kept = MetaFlowObjective(EmbeddingShift(SHIFT), population_dropout=0.0)
    assert float(_loss(kept, source, target, generator).loss) == pytest.approx(0.0)


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0])
def test_population_weight_mixes_the_two_velocities(weight):
    net = MetaFlowNet(
        GCNConditioner(4, hidden=8, n_layers=2, out_features=3, knn=3), 4, 2, hidden=16
    ).eval()
    x, t = torch.randn(5, 4), torch.rand(5)
    condition = net.condition(torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1]))
    conditional = net.velocity(x, t, condition)
    free = net.velocity(x, t, torch.cat([torch.zeros(5, 3), condition[:, 3:]], dim=1))
    net.population_weight = weight
    torch.testing.assert_close(net(x, t, condition), free + weight * (conditional - free))
