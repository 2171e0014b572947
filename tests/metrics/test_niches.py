import numpy as np
import pytest
from scipy.spatial.distance import cdist

from mfm.metrics import cloud_summaries, label_accuracy, one_nn_accuracy


def _one_nna(real, gen):
    return one_nn_accuracy(cdist(real, real), cdist(gen, gen), cdist(real, gen))


def test_one_nna_far_apart_is_one():
    rng = np.random.default_rng(0)
    assert _one_nna(rng.normal(size=(30, 2)), rng.normal(size=(40, 2)) + 100.0) == 1.0


def test_one_nna_same_distribution_is_half():
    rng = np.random.default_rng(1)
    value = _one_nna(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)))
    assert value == pytest.approx(0.5, abs=0.06)


def test_one_nna_by_hand():
    # Interleaved real {0, 2} and generated {1, 3}: every nearest neighbour is of the other set
    # (ties go to the lowest pooled index: real before generated).
    real, gen = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    assert _one_nna(real, gen) == 0.0
    # Copies of the real items are also maximally bad.
    assert _one_nna(real, real + 1e-3) == 0.0


def test_one_nna_bad_shapes():
    with pytest.raises(ValueError, match="d_real_gen"):
        one_nn_accuracy(np.zeros((3, 3)), np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2 items"):
        one_nn_accuracy(np.zeros((1, 1)), np.zeros((0, 0)), np.zeros((1, 0)))


def _labelled(rng, n_per_class, shift=0.0):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.repeat(np.array(["a", "b", "c"]), n_per_class)
    features = centres[np.repeat(np.arange(3), n_per_class)] + rng.normal(size=(len(labels), 2))
    return features + shift, labels


def test_label_accuracy_separable():
    rng = np.random.default_rng(2)
    real_x, real_y = _labelled(rng, 20)
    gen_x, gen_y = _labelled(rng, 10)
    out = label_accuracy(real_x, real_y, gen_x, gen_y)
    assert out == {"generated": 1.0, "real": 1.0}
    # Generated items with the wrong labels are all misclassified.
    assert label_accuracy(real_x, real_y, gen_x, np.roll(gen_y, 10))["generated"] == 0.0


def test_label_accuracy_on_cloud_summaries():
    rng = np.random.default_rng(3)
    real = [rng.normal(size=(16, 2)) * (1 + 3 * (i % 2)) for i in range(40)]
    gen = [rng.normal(size=(16, 2)) * (1 + 3 * (i % 2)) for i in range(20)]
    out = label_accuracy(
        cloud_summaries(real), np.arange(40) % 2, cloud_summaries(gen), np.arange(20) % 2
    )
    assert out["generated"] == 1.0
    assert out["real"] == 1.0


def test_label_accuracy_rare_classes():
    rng = np.random.default_rng(4)
    real_x, real_y = _labelled(rng, 20)
    real_y = real_y.astype(object)
    real_y[:3] = "rare"  # 3 members < 5 folds: left out of the CV, with a warning
    with pytest.warns(UserWarning, match="rare"):
        out = label_accuracy(real_x, real_y, real_x, real_y)
    assert np.isfinite(out["real"])
    with pytest.warns(UserWarning, match="fewer than cv=5"):
        out = label_accuracy(real_x[:7], real_y[:7], real_x, real_y)
    assert np.isnan(out["real"])


def test_label_accuracy_seeded_and_checked():
    rng = np.random.default_rng(5)
    real_x, real_y = _labelled(rng, 15)
    real_x = real_x + rng.normal(scale=4.0, size=real_x.shape)  # overlap: imperfect CV
    a = label_accuracy(real_x, real_y, real_x, real_y, random_state=1)
    assert a == label_accuracy(real_x, real_y, real_x, real_y, random_state=1)
    with pytest.raises(ValueError, match="`gen_labels`"):
        label_accuracy(real_x, real_y, real_x, real_y[:-1])
    with pytest.raises(ValueError, match="same number of columns"):
        label_accuracy(real_x, real_y, real_x[:, :1], real_y)
    with pytest.raises(ValueError, match="`cv`"):
        label_accuracy(real_x, real_y, real_x, real_y, cv=1)
