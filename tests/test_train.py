"""The training loop: warm-up + cosine schedule, history rows, and convergence on a toy problem."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mfm.flows import LossOutput
from mfm.train import NonFiniteLossError, TrainSettings, train
from mfm.train._loop import _warmup_cosine

TARGET = torch.tensor([3.0, -2.0, 0.5])


class Quadratic(nn.Module):
    """Loss |w - TARGET|^2, minimised at w = TARGET."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))

    def forward(self):
        loss = (self.w - TARGET).square().sum()
        return LossOutput(loss, {"mse": float(loss.detach())})


def test_warmup_cosine_values():
    settings = TrainSettings(max_steps=110, warmup_steps=10, min_lr_ratio=0.1)
    factor = _warmup_cosine(settings)
    # linear warm-up over 10 steps, then a cosine over the remaining 100 from 1 to 0.1
    assert [factor(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert factor(35) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert factor(110) == pytest.approx(0.1)
    assert factor(500) == pytest.approx(0.1)  # clamped after the end


def test_warmup_is_capped_at_a_tenth_of_training():
    factor = _warmup_cosine(TrainSettings(max_steps=50, warmup_steps=100, min_lr_ratio=0.0))
    assert [factor(s) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert factor(50) == pytest.approx(0.0)
    no_warmup = _warmup_cosine(TrainSettings(max_steps=5, warmup_steps=100))
    assert no_warmup(0) == pytest.approx(1.0)


@pytest.mark.parametrize(("max_steps", "val_every"), [(30, 10), (25, 10), (7, 10), (10, 1)])
def test_history_rows(max_steps, val_every):
    settings = TrainSettings(max_steps=max_steps, val_every=val_every, lr=0.01, progress=False)
    calls = []

    def validate(objective):
        calls.append(objective.training)
        return 1.5

    history = train(Quadratic(), tuple, settings, validate=validate)
    assert len(history) == math.ceil(max_steps / val_every)
    expected = [*range(val_every, max_steps, val_every), max_steps]
    assert history["step"].tolist() == sorted(set(expected))
    assert (history["val_loss"] == 1.5).all()
    assert calls == [False] * len(history)  # validated in eval mode
    # the lr column follows the schedule
    factor = _warmup_cosine(settings)
    np.testing.assert_allclose(history["lr"], [0.01 * factor(s) for s in history["step"]])


def test_quadratic_converges():
    objective = Quadratic()
    settings = TrainSettings(max_steps=300, lr=0.1, val_every=50, progress=False)
    history = train(objective, tuple, settings)
    torch.testing.assert_close(objective.w.detach(), TARGET, atol=1e-2, rtol=0)
    assert history["val_loss"].isna().all()
    assert history["train_loss"].iloc[-1] < 1e-3 < history["train_loss"].iloc[0]
    assert not objective.training  # left in eval mode


def _scripted_validation(losses):
    """A validation function returning ``losses`` in turn and recording the weights seen."""
    seen = []

    def validate(objective):
        seen.append(objective.w.detach().clone())
        return losses[len(seen) - 1]

    return validate, seen


def test_restore_best_keeps_the_lowest_validation_loss():
    losses = [5.0, 2.0, 0.5, 3.0, 1.0]
    validate, seen = _scripted_validation(losses)
    settings = TrainSettings(max_steps=50, val_every=10, lr=0.05, progress=False, restore_best=True)
    objective = Quadratic()
    history = train(objective, tuple, settings, validate=validate)
    assert history["kept"].tolist() == [False, False, True, False, False]
    assert history.loc[history["kept"], "step"].item() == 30
    torch.testing.assert_close(objective.w.detach(), seen[2], rtol=0, atol=0)
    assert not torch.equal(seen[2], seen[-1])  # training moved on after step 30


def test_without_restore_best_the_last_weights_stay():
    validate, seen = _scripted_validation([5.0, 0.5, 3.0])
    settings = TrainSettings(max_steps=30, val_every=10, lr=0.05, progress=False)
    objective = Quadratic()
    history = train(objective, tuple, settings, validate=validate)
    assert history["kept"].tolist() == [False, False, True]
    torch.testing.assert_close(objective.w.detach(), seen[-1], rtol=0, atol=0)


def test_early_stopping_after_patience_rows_without_improvement():
    validate, seen = _scripted_validation([4.0, 3.0, 3.5, 3.2, 3.1, 0.1, 0.1])
    settings = TrainSettings(
        max_steps=70, val_every=10, lr=0.05, progress=False, restore_best=True, early_stopping=3
    )
    objective = Quadratic()
    history = train(objective, tuple, settings, validate=validate)
    # best at step 20; rows at 30, 40, 50 do not improve on it: stop after step 50
    assert history["step"].tolist() == [10, 20, 30, 40, 50]
    assert history.loc[history["kept"], "step"].item() == 20
    torch.testing.assert_close(objective.w.detach(), seen[1], rtol=0, atol=0)


def test_restore_best_ignores_nan_validation_losses():
    validate, _ = _scripted_validation([math.nan, 2.0, math.nan])
    settings = TrainSettings(max_steps=30, val_every=10, lr=0.05, progress=False, restore_best=True)
    history = train(Quadratic(), tuple, settings, validate=validate)
    assert history["kept"].tolist() == [False, True, False]


class NanAt(Quadratic):
    """The quadratic loss, but NaN from call ``bad`` on; records the weights before each call."""

    def __init__(self, bad):
        super().__init__()
        self.bad, self.calls, self.seen = bad, 0, []

    def forward(self):
        self.calls += 1
        self.seen.append(self.w.detach().clone())
        out = super().forward()
        return LossOutput(out.loss * math.nan, {}) if self.calls >= self.bad else out


def test_non_finite_loss_stops_with_the_last_good_weights():
    objective = NanAt(bad=4)
    settings = TrainSettings(max_steps=10, val_every=5, lr=0.05, progress=False)
    with pytest.raises(NonFiniteLossError, match="at step 4; .* after step 3") as error:
        train(objective, tuple, settings)
    assert error.value.step == 4
    torch.testing.assert_close(objective.w.detach(), objective.seen[3], rtol=0, atol=0)
    assert torch.isfinite(objective.w).all()
