"""Tools: the user's verbs (fit, predict, evaluate, ...) on AnnData."""

from ._base import load
from ._baseline import baseline
from ._evaluate import evaluate
from ._fit import fit
from ._model import MetaFlowConfig, MetaFlowModel
from ._predict import predict

__all__ = ["MetaFlowConfig", "MetaFlowModel", "baseline", "evaluate", "fit", "load", "predict"]
