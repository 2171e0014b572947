"""The training loop of every model: optimiser, schedule, progress bar, validation, DDP.

Distributed training uses PyTorch's own engine: launch the script with ``torchrun``; when
``torch.distributed`` is initialised the objective is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` and every rank draws its own batches
(seeded by ``random_state + rank``), so gradients are averaged over ranks.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import _keys as K

logger = logging.getLogger(__name__)


def _tqdm() -> type:
    """``tqdm.auto`` (a widget in notebooks) when ipywidgets is installed, else the text bar.

    Without ipywidgets, ``tqdm.auto`` warns in Jupyter and falls back to the text bar anyway.
    """
    if importlib.util.find_spec("ipywidgets") is None:
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings.

    Parameters
    ----------
    max_steps
        Number of gradient steps.
    lr
        Peak learning rate of AdamW.
    weight_decay
        AdamW weight decay.
    warmup_steps
        Linear warm-up steps; a cosine decay to ``lr * min_lr_ratio`` follows.
    min_lr_ratio
        Final learning rate as a fraction of ``lr``.
    grad_clip
        Maximum gradient norm (``None``: no clipping).
    val_every
        Steps between validation losses (and history rows).
    progress
        Show a tqdm progress bar with the loss.
    restore_best
        With a validation loss: at the end, put back the weights of the history row with the
        lowest validation loss (marked ``kept`` in the history).
    early_stopping
        With a validation loss: stop after this many history rows without a lower validation
        loss (``None``: train all ``max_steps``).
    """

    max_steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float | None = 1.0
    val_every: int = 100
    progress: bool = True
    restore_best: bool = False
    early_stopping: int | None = None


@dataclass
class Checkpoints:
    """Periodic saves of the whole training state, and resuming from the last one.

    Parameters
    ----------
    directory
        Folder of the checkpoint files (one per rank: ``checkpoint_rank{r}.pt``).
    every
        Steps between saves.
    resume
        Continue from the checkpoint in ``directory`` when there is one.
    get_sampler_state
        Returns the batch sampler's random state (saved with the weights).
    set_sampler_state
        Restores it.
    """

    directory: Path
    every: int
    resume: bool = False
    get_sampler_state: Callable[[], dict] | None = None
    set_sampler_state: Callable[[dict], None] | None = None

    @property
    def path(self) -> Path:
        """The checkpoint file of this rank."""
        return Path(self.directory) / f"checkpoint_rank{rank_and_world()[0]}.pt"

    def save(self, state: dict) -> None:
        """Write ``state`` atomically (a crash never leaves half a checkpoint)."""
        if self.get_sampler_state is not None:
            state["sampler"] = self.get_sampler_state()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        torch.save(state, partial)
        os.replace(partial, self.path)

    def load(self, settings: TrainSettings) -> dict | None:
        """The saved state of a run with the same settings, or None when there is none."""
        if not (self.resume and self.path.is_file()):
            if self.resume:
                logger.warning("no checkpoint in %s: training from the start", self.directory)
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        saved, current = state["settings"], _settings_record(settings)
        if saved != current:
            changed = sorted(k for k in current if saved.get(k) != current[k])
            msg = (
                f"The checkpoint {str(self.path)!r} was written with other settings {changed}; "
                "resume with the settings of the interrupted run."
            )
            raise ValueError(msg)
        if self.set_sampler_state is not None:
            self.set_sampler_state(state["sampler"])
        return state


def rank_and_world() -> tuple[int, int]:
    """Rank of this process and number of processes (``(0, 1)`` without torch.distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def train(
    objective: nn.Module,
    next_batch: Callable[[], tuple],
    settings: TrainSettings,
    *,
    validate: Callable[[nn.Module], float] | None = None,
    desc: str = "training",
    checkpoints: Checkpoints | None = None,
) -> pd.DataFrame:
    """Minimise ``objective(*next_batch()).loss`` and return the loss history.

    Parameters
    ----------
    objective
        Module whose forward returns a :class:`mfm.flows.LossOutput`.
    next_batch
        Returns the positional arguments of the next forward call (already on the device).
    settings
        Optimisation settings.
    validate
        Called every ``settings.val_every`` steps with the (unwrapped) objective in eval
        mode under ``torch.no_grad()``; returns the validation loss.
    desc
        Label of the progress bar.
    checkpoints
        Save the training state every ``checkpoints.every`` steps; with
        ``checkpoints.resume``, continue from the saved state: the same total steps, the
        same history and, on the CPU, the same weights as an uninterrupted run.

    Returns
    -------
    DataFrame with columns ``step``, ``train_loss`` (mean since the previous row),
    ``val_loss`` (NaN without ``validate``), ``lr`` and ``kept`` (True on the row whose
    weights the objective holds at the end: the last row, or with ``settings.restore_best``
    and ``validate`` the row of the lowest validation loss).
    """
    rank, world = rank_and_world()
    model = objective
    if world > 1:
        model = nn.parallel.DistributedDataParallel(objective)
    optimizer = torch.optim.AdamW(
        objective.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(settings))
    history, running, start = [], [], 1
    best = _BestWeights(objective, enabled=settings.restore_best and validate is not None)
    state = checkpoints.load(settings) if checkpoints is not None else None
    if state is not None:
        for name, part in (("objective", objective), ("optimizer", optimizer)):
            part.load_state_dict(state[name])
        scheduler.load_state_dict(state["scheduler"])
        history, running, start = state["history"], state["running"], state["step"] + 1
        best.row, best.loss, best.state = state["best"]
        logger.info("resuming from step %d", state["step"])
    bar = _tqdm()(
        range(start, settings.max_steps + 1),
        desc=desc,
        disable=not settings.progress or rank != 0,
        mininterval=0.5,
    )
    for step in bar:
        objective.train()
        out = model(*next_batch())
        _check_loss(out.loss, step)  # the one host sync of a step: stop before NaN weights
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(objective.parameters(), settings.grad_clip)
        optimizer.step()
        scheduler.step()
        running.append(out.loss.detach())  # read every `val_every` steps: no sync per step
        if step % settings.val_every == 0 or step == settings.max_steps:
            row = _history_row(step, running, objective, validate, scheduler)
            history.append(row)
            running = []
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith("loss")})
            best.update(len(history) - 1, row[K.VAL_LOSS])
        if checkpoints is not None and step % checkpoints.every == 0:
            parts = {"objective": objective, "optimizer": optimizer, "scheduler": scheduler}
            checkpoints.save(_training_state(step, parts, history, running, best, settings))
        if history and history[-1][K.STEP] == step and _stop_early(settings, best, len(history)):
            logger.info("early stopping at step %d (best step %d)", step, best.step(history))
            break
    objective.eval()
    frame = pd.DataFrame(history)
    frame[K.KEPT] = np.arange(len(frame)) == best.restore(len(frame) - 1)
    return frame


def _settings_record(settings: TrainSettings) -> dict:
    """The settings a resumed run must share with the interrupted one (all but the bar)."""
    return {k: v for k, v in dataclasses.asdict(settings).items() if k != "progress"}


def _training_state(
    step: int,
    parts: dict,
    history: list[dict],
    running: list[torch.Tensor],
    best: _BestWeights,
    settings: TrainSettings,
) -> dict:
    """Everything :func:`train` needs to continue after ``step`` (see :class:`Checkpoints`)."""
    return {
        "step": step,
        **{name: part.state_dict() for name, part in parts.items()},
        "history": history,
        "running": running,
        "best": (best.row, best.loss, best.state),
        "settings": _settings_record(settings),
    }


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the weights are those of the step before.

    Attributes
    ----------
    step
        The step whose loss was not finite.
    model
        Set by :func:`mfm.tl.fit`: the model with the last good
        weights (``None`` when raised by :func:`train` itself).
    """

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step
        self.model = None


def _check_loss(loss: torch.Tensor, step: int) -> None:
    """Stop before a non-finite loss updates the weights (the last good ones stay)."""
    if not bool(torch.isfinite(loss.detach())):
        msg = (
            f"The training loss is {float(loss.detach())} at step {step}; training stopped and "
            f"the weights are those after step {step - 1}. Likely causes: a learning rate too "
            "large for the data (pass a smaller `lr`) or extreme feature values (check the input "
            "for outliers; `standardize='global'` removes the data's units)."
        )
        raise NonFiniteLossError(msg, step)


class _BestWeights:
    """Copies of the weights at the lowest validation loss so far (when enabled)."""

    def __init__(self, objective: nn.Module, *, enabled: bool) -> None:
        self.objective, self.enabled = objective, enabled
        self.row, self.loss, self.state = -1, math.inf, None

    def update(self, row: int, val_loss: float) -> None:
        if self.enabled and val_loss < self.loss:  # NaN never improves
            self.row, self.loss = row, val_loss
            self.state = {k: v.detach().clone() for k, v in self.objective.state_dict().items()}

    def step(self, history: list[dict]) -> int:
        return int(history[self.row][K.STEP]) if self.row >= 0 else -1

    def restore(self, last_row: int) -> int:
        """Load the best weights (if any); return the history row the weights belong to."""
        if self.state is None:
            return last_row
        self.objective.load_state_dict(self.state)
        return self.row


def _stop_early(settings: TrainSettings, best: _BestWeights, n_rows: int) -> bool:
    patience = settings.early_stopping
    return patience is not None and best.row >= 0 and n_rows - 1 - best.row >= patience


def _history_row(
    step: int,
    running: list[torch.Tensor],
    objective: nn.Module,
    validate: Callable[[nn.Module], float] | None,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, float]:
    val_loss = math.nan
    if validate is not None:
        objective.eval()
        with torch.no_grad():
            val_loss = float(validate(objective))
    return {
        K.STEP: step,
        K.TRAIN_LOSS: float(torch.stack(running).double().mean()),
        K.VAL_LOSS: val_loss,
        K.LR: float(scheduler.get_last_lr()[0]),
    }


def _warmup_cosine(settings: TrainSettings) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``min_lr_ratio``."""
    warmup = max(0, min(settings.warmup_steps, settings.max_steps // 10))
    decay = max(1, settings.max_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / decay)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return settings.min_lr_ratio + (1 - settings.min_lr_ratio) * cosine

    return factor
