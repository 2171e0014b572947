import numpy as np
import pytest

from mfm.metrics import (
    DISTRIBUTION_METRICS,
    corr_of_correlations,
    distribution_metrics,
    mmd,
    r2_means,
    w1,
    w2,
)


@pytest.fixture
def cells():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(4, 4))
    return rng.normal(size=(120, 4)) @ mix, rng.normal(size=(90, 4)) @ mix + 0.5


def test_all_metrics_match_the_functions(cells):
    x, y = cells
    out = distribution_metrics(x, y, DISTRIBUTION_METRICS)
    assert list(out) == list(DISTRIBUTION_METRICS)
    assert out["w1"] == pytest.approx(w1(x, y))
    assert out["w2"] == pytest.approx(w2(x, y))
    assert out["mmd"] == pytest.approx(mmd(x, y))
    assert out["r2"] == pytest.approx(r2_means(x, y))
    assert out["corr"] == pytest.approx(corr_of_correlations(x, y))
    assert all(isinstance(v, float) for v in out.values())


def test_shared_subsample_matches_single_metric(cells):
    x, y = cells
    out = distribution_metrics(x, y, ["w2", "mmd", "r2"], max_cells=50, random_state=3)
    # Same seed -> same subsample as the single-metric call; r2 uses every cell.
    assert out["w2"] == pytest.approx(w2(x, y, max_cells=50, random_state=3))
    assert out["mmd"] == pytest.approx(mmd(x, y, max_cells=50, random_state=3))
    assert out["r2"] == pytest.approx(r2_means(x, y))


def test_order_duplicates_and_single_name(cells):
    x, y = cells
    assert list(distribution_metrics(x, y, ["mmd", "w1", "mmd"])) == ["mmd", "w1"]
    assert list(distribution_metrics(x, y, "r2")) == ["r2"]


def test_unknown_name_lists_valid_ones(cells):
    x, y = cells
    with pytest.raises(ValueError, match=r"\['w1', 'w2', 'mmd', 'energy', 'r2', 'corr'\]"):
        distribution_metrics(x, y, ["w1", "sinkhorn"])
    with pytest.raises(ValueError, match="No metric names"):
        distribution_metrics(x, y, [])
