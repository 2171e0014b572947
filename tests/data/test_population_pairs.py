"""`mfm.data.PopulationPairs`: pairing, and the cells its sampler draws."""

import numpy as np
import pytest
import torch

from mfm.data import PopulationBatch, PopulationPairs

# Two samples: populations 0 (control, 10 cells), 1 (drugA, 12), 2 (drugB, 3); 3 (control, 4), 4
# (drugA, 6). Feature 0 of a cell is its population index, feature 1 its row, feature 2 a constant.
SIZES = [10, 12, 3, 4, 6]
NAMES = ["s0|control", "s0|drugA", "s0|drugB", "s1|control", "s1|drugA"]


@pytest.fixture
def pairs() -> PopulationPairs:
    population = np.repeat(np.arange(len(SIZES)), SIZES)
    rows = np.arange(len(population))
    x = np.stack([population, rows, np.full(len(rows), 7.0)], axis=1).astype(np.float32)
    starts = np.cumsum([0, *SIZES[:-1]])
    cells = [np.arange(s, s + n) for s, n in zip(starts, SIZES, strict=True)]
    return PopulationPairs(
        x=x,
        cells=cells,
        names=NAMES,
        control=np.array([0, 0, 0, 3, 3]),
        treatment=np.array([-1, 0, 1, -1, 0]),
        treatments=["drugA", "drugB"],
    )


def test_pairs_and_cells(pairs):
    assert pairs.n_features == 3
    np.testing.assert_array_equal(pairs.treated(), [1, 2, 4])
    np.testing.assert_array_equal(pairs.treated(np.array([0, 1, 3, 4])), [1, 4])
    np.testing.assert_array_equal(pairs.population_cells(2)[:, 0], [2, 2, 2])


def test_lengths_must_match(pairs):
    with pytest.raises(ValueError, match="one entry per population"):
        PopulationPairs(pairs.x, pairs.cells, NAMES[:4], pairs.control, pairs.treatment, [])


def test_sample_shapes_and_values(pairs):
    chosen = np.array([1, 4, 1, 2])
    batch = pairs.sample(chosen, 5, np.random.default_rng(0))
    assert isinstance(batch, PopulationBatch)
    assert batch.control.shape == batch.treated.shape == (4, 5, 3)
    assert batch.control.dtype == batch.treated.dtype == torch.float32
    assert batch.control_index.dtype == batch.treatment.dtype == torch.long
    np.testing.assert_array_equal(batch.control_index, [0, 3, 0, 0])
    np.testing.assert_array_equal(batch.treatment, [0, 0, 0, 1])
    # every drawn row comes from the right population: feature 0 is the population index
    np.testing.assert_array_equal(batch.control[..., 0], np.repeat([[0], [3], [0], [0]], 5, 1))
    np.testing.assert_array_equal(batch.treated[..., 0], np.repeat(chosen[:, None], 5, 1))
    # and is a real row of x
    x = torch.as_tensor(pairs.x)
    for cells in (batch.control, batch.treated):
        np.testing.assert_array_equal(cells, x[cells[..., 1].long()])


def test_replacement_only_for_small_populations(pairs):
    batch = pairs.sample(np.array([1, 2, 4]), 5, np.random.default_rng(1))
    rows = batch.treated[..., 1].numpy()
    assert len(set(rows[0])) == 5  # 12 cells: without replacement
    assert len(set(rows[1])) <= 3  # 3 cells: with replacement
    assert set(rows[1]) <= {22.0, 23.0, 24.0}
    assert len(set(batch.control[1, :, 1].numpy())) == 5  # the control has 10 cells
    assert len(set(batch.control[2, :, 1].numpy())) <= 4  # the s1 control has 4


def test_sample_is_deterministic(pairs):
    first = pairs.sample(np.array([1, 4]), 8, np.random.default_rng(3))
    second = pairs.sample(np.array([1, 4]), 8, np.random.default_rng(3))
    other = pairs.sample(np.array([1, 4]), 8, np.random.default_rng(4))
    torch.testing.assert_close(first.control, second.control)
    torch.testing.assert_close(first.treated, second.treated)
    assert not torch.equal(first.treated, other.treated)


def test_paired_sample_draws_the_same_positions():
    # two populations of 6 cells; feature 1 is the position within the population
    x = np.stack([np.repeat([0, 1], 6), np.tile(np.arange(6), 2)], axis=1).astype(np.float32)
    pairs = PopulationPairs(
        x, [np.arange(6), np.arange(6, 12)], ["c", "t"], np.array([0, 0]), np.array([-1, 0]), ["t"]
    )
    batch = pairs.sample(np.array([1, 1]), 4, np.random.default_rng(0), paired=True)
    np.testing.assert_array_equal(batch.control[..., 1], batch.treated[..., 1])
    assert (batch.control[..., 0] == 0).all() and (batch.treated[..., 0] == 1).all()
    unpaired = pairs.sample(np.array([1, 1]), 6, np.random.default_rng(0))
    assert not torch.equal(unpaired.control[..., 1], unpaired.treated[..., 1])


def test_paired_sample_needs_equal_sizes(pairs):
    match = r"'s0\|drugA' has 12 cells, its control 's0\|control' has 10"
    with pytest.raises(ValueError, match=match):
        pairs.sample(np.array([1]), 4, np.random.default_rng(0), paired=True)


@pytest.mark.parametrize("paired", [False, True])
def test_resident_features_give_the_same_batch(pairs, paired):
    chosen = np.array([1, 4]) if not paired else np.array([1, 1])
    if paired:  # equal sizes: the s0 control and its drugA population trimmed to 10 cells
        pairs.cells[1] = pairs.cells[1][:10]
    resident = torch.as_tensor(pairs.x)
    host = pairs.sample(chosen, 8, np.random.default_rng(5), paired=paired)
    gathered = pairs.sample(chosen, 8, np.random.default_rng(5), paired=paired, resident=resident)
    for field in ("control", "treated", "control_index", "treatment"):
        torch.testing.assert_close(getattr(gathered, field), getattr(host, field))


def test_features_stay_on_the_host_for_the_cpu(pairs):
    assert pairs.resident_features("cpu") is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_features_are_kept_on_the_gpu_when_they_fit(pairs):
    resident = pairs.resident_features("cuda")
    assert resident is not None and resident.is_cuda
    batch = pairs.sample(np.array([1, 4]), 8, np.random.default_rng(5), "cuda", resident=resident)
    host = pairs.sample(np.array([1, 4]), 8, np.random.default_rng(5))
    torch.testing.assert_close(batch.control.cpu(), host.control)
    assert pairs.resident_features("cuda", max_fraction=0.0) is None
