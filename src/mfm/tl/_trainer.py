"""The training core of both fits: a model's objective trained by :func:`mfm.train.train`.

What the verbs ``fit`` and ``fit_niches`` share around the loop: checkpoint options, the
sampler's random streams saved with the checkpoints, ``params['fit']``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from torch import nn

from .._checks import check_positive_int
from ..data import RandomStreams
from ..train import Checkpoints, NonFiniteLossError, TrainSettings, train
from ._base import BaseModel


def check_checkpoint_options(
    checkpoint_every: int | None, checkpoint_dir: str | Path | None, resume: bool
) -> None:
    """Check the checkpoint options a training verb takes."""
    if checkpoint_every is not None:
        check_positive_int("checkpoint_every", checkpoint_every)
    if (checkpoint_every is not None or resume) and checkpoint_dir is None:
        msg = "`checkpoint_every` and `resume` need a `checkpoint_dir` to write or read."
        raise ValueError(msg)


def sampler_checkpoints(
    checkpoint_dir: str | Path | None,
    checkpoint_every: int | None,
    resume: bool,
    max_steps: int,
    sampler: RandomStreams,
) -> Checkpoints | None:
    """Checkpoints that also save the random streams of ``sampler``.

    ``None`` without ``checkpoint_dir``; without ``checkpoint_every``, one save at the end.
    """
    if checkpoint_dir is None:
        return None

    every = checkpoint_every or max_steps
    return Checkpoints(Path(checkpoint_dir), every, resume, sampler.state, sampler.set_state)


def train_model(
    model: BaseModel,
    sampler: RandomStreams,
    next_batch: Callable[[], tuple],
    settings: TrainSettings,
    *,
    validate: Callable[[nn.Module], float] | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> pd.DataFrame:
    """The training core of every fit: :func:`train` ``model.objective()`` with checkpoints.

    The sampler's random streams are saved with the checkpoints; a non-finite loss raises
    :class:`NonFiniteLossError` holding ``model`` (the weights of the step before).

    Parameters
    ----------
    model
        The model to train (a :class:`mfm.tl.MetaFlowModel` or :class:`mfm.tl.NicheModel`).
    sampler
        The sampler drawing the batches (its streams are checkpointed).
    next_batch
        Returns the objective's arguments of the next training batch.
    settings
        Optimiser, schedule and model-selection settings.
    validate
        Validation loss of the objective, or None.
    checkpoint_dir, checkpoint_every, resume
        As in :func:`mfm.tl.fit`.

    Returns
    -------
    The history (see :func:`train`).
    """
    checkpoints = sampler_checkpoints(
        checkpoint_dir, checkpoint_every, resume, settings.max_steps, sampler
    )
    try:
        return train(
            model.objective(),
            next_batch,
            settings,
            validate=validate,
            desc=model.label,
            checkpoints=checkpoints,
        )
    except NonFiniteLossError as error:
        error.model = model  # the last good weights, for inspection
        raise


def fit_params(config: object, settings: TrainSettings, skip: set[str], **extra: object) -> dict:
    """The ``params['fit']`` of a fit: config (less ``skip``), settings and ``extra``.

    Plain h5ad-writable types; ``None`` is written as ``"none"`` (h5ad has no null).
    """
    params = {k: v for k, v in vars(config).items() if k not in skip}
    params.update(vars(settings))
    params.update(extra)
    return {k: ("none" if v is None else v) for k, v in params.items()}
