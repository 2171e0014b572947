"""Training: the loop every model is trained by, its settings, checkpoints and errors.

:func:`mfm.tl.fit` and :func:`mfm.tl.fit_niches` call :func:`train` with their model's
objective; use it directly to train a model's objective on batches of your own (e.g. a custom
schedule or sampler), the way :mod:`scvi.train` is used.
"""

from ._loop import Checkpoints, NonFiniteLossError, TrainSettings, rank_and_world, train

__all__ = ["Checkpoints", "NonFiniteLossError", "TrainSettings", "rank_and_world", "train"]
