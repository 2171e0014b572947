import string
import time

import anndata as ad
import numpy as np
import pytest
from scipy.spatial import cKDTree

import mfm
from mfm.datasets import letters
from mfm.datasets._letters import _render, letter_shape


@pytest.fixture(scope="module")
def default_letters():
    start = time.perf_counter()
    adata = letters()
    return adata, time.perf_counter() - start


def _population(adata, letter, rotation, condition):
    obs = adata.obs
    mask = (
        (obs["letter"] == letter) & (obs["rotation"] == rotation) & (obs["condition"] == condition)
    )
    return adata.X[mask.to_numpy()]


def test_default_size_splits_and_speed(default_letters):
    adata, seconds = default_letters
    assert adata.shape == (26 * 10 * 2 * 1000, 2)
    assert seconds < 5.0
    assert adata.X.dtype == np.float32
    assert list(adata.var_names) == ["x", "y"]
    assert adata.obs_names.is_unique
    assert list(adata.obs["letter"].cat.categories) == list(string.ascii_uppercase)
    assert list(adata.obs["condition"].cat.categories) == ["source", "target"]
    assert adata.obs["rotation"].dtype.kind == "i"
    split = adata.obs.groupby("letter", observed=True)["split"].agg(lambda s: set(s))
    assert split["X"] == {"val"} and split["Y"] == {"test"}
    assert all(
        split[letter] == {"train"} for letter in string.ascii_uppercase if letter not in "XY"
    )
    counts = adata.obs.groupby(["letter", "rotation", "condition"], observed=True).size()
    assert len(counts) == 26 * 10 * 2 and (counts == 1000).all()


def test_targets_inside_box_and_centred(default_letters):
    adata, _ = default_letters
    targets = adata.X[(adata.obs["condition"] == "target").to_numpy()]
    assert np.abs(targets).max() < 3.5
    # each shape is centred on its pixel mean, so every population is centred too
    centre = _population(adata, "O", 3, "target").mean(axis=0)
    np.testing.assert_allclose(centre, 0.0, atol=0.1)


def test_source_is_target_plus_gaussian_noise(default_letters):
    adata, _ = default_letters
    for letter, rotation in [("A", 0), ("Q", 7), ("Y", 9)]:
        diff = _population(adata, letter, rotation, "source") - _population(
            adata, letter, rotation, "target"
        )
        np.testing.assert_allclose(diff.std(axis=0), 0.5, atol=0.04)
        np.testing.assert_allclose(diff.mean(axis=0), 0.0, atol=0.06)


def test_targets_are_rotated_letter_shapes():
    adata = letters(n_points=500, n_rotations=3, letters="RG", target_noise=0.0, random_state=3)
    for letter in "RG":
        pixels, pixel = _render(letter)
        tree = cKDTree(pixels)
        for rotation in range(3):
            mask = (
                (adata.obs["letter"] == letter) & (adata.obs["rotation"] == rotation)
            ).to_numpy()
            theta = adata.obs["angle"].to_numpy()[mask][0]
            points = _population(adata, letter, rotation, "target").astype(np.float64)
            back = points @ np.array(
                [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
            )
            # undoing the rotation lands every point in a foreground pixel (jitter <= half a pixel)
            distance, _ = tree.query(back, p=np.inf)
            assert distance.max() <= pixel / 2 + 1e-5


def test_letters_distinguishable_by_mean_radius():
    adata = letters(n_points=2000, n_rotations=2, letters="OI", random_state=1)
    radius = {
        letter: np.linalg.norm(_population(adata, letter, 0, "target"), axis=1).mean()
        for letter in "OI"
    }
    # O is a ring near the rim, I a bar through the centre (mean |y| of a bar of half-length 3)
    assert radius["O"] > 2.2
    assert radius["I"] == pytest.approx(1.5, abs=0.15)
    assert radius["O"] - radius["I"] > 0.7


def test_shape_rendering_is_deterministic_and_scaled():
    shape = letter_shape("B")
    assert shape is letter_shape("B")  # cached
    assert not shape.flags.writeable
    np.testing.assert_allclose(shape.mean(axis=0), 0.0, atol=1e-9)
    pixel = _render("B")[1]
    assert np.linalg.norm(shape, axis=1).max() + pixel * np.sqrt(0.5) == pytest.approx(3.0)
    # upright: the top bar of "T" is above its centre of mass
    t_shape = letter_shape("T")
    top = t_shape[:, 1] > 0.5 * t_shape[:, 1].max()
    assert np.ptp(t_shape[top, 0]) > 3 * np.ptp(t_shape[~top, 0])


def test_seed_determinism():
    first = letters(n_points=50, n_rotations=2, letters="AB", random_state=7)
    second = letters(n_points=50, n_rotations=2, letters="AB", random_state=7)
    other = letters(n_points=50, n_rotations=2, letters="AB", random_state=8)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.obs["angle"], second.obs["angle"])
    assert not np.allclose(first.X, other.X)


def test_h5ad_round_trip(tmp_path):
    adata = letters(n_points=20, n_rotations=2, letters="AXY")
    path = tmp_path / "letters.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.X, adata.X)
    assert back.obs.equals(adata.obs)
    assert back.uns["letters"]["letters"] == "AXY"
    assert back.uns["letters"]["random_state"] == 0
    assert back.uns["letters"]["source_noise"] == 0.5


def test_generator_seed_is_not_stored():
    adata = letters(n_points=5, n_rotations=1, letters="A", random_state=np.random.default_rng(0))
    assert "random_state" not in adata.uns["letters"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"letters": "ab"}, "letters"),
        ({"letters": "AA"}, "letters"),
        ({"letters": ""}, "letters"),
        ({"n_points": 0}, "n_points"),
        ({"n_rotations": 1.5}, "n_rotations"),
        ({"source_noise": -1.0}, "source_noise"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        letters(**kwargs)


def test_public_api():
    assert set(mfm.datasets.__all__) == {
        "bodenmiller_bcrxl",
        "letters",
        "moffitt_hypothalamus",
        "organoid_screen",
        "simulated_tissue",
    }
    assert all(callable(getattr(mfm.datasets, name)) for name in mfm.datasets.__all__)
