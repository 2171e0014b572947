"""Tools: the user's verbs (fit, predict, evaluate, ...) on AnnData."""

from ._base import load
from ._baseline import baseline
from ._evaluate import evaluate
from ._evaluate_niches import evaluate_niches
from ._fit import fit
from ._fit_niches import fit_niches
from ._generate_niches import generate_niches
from ._model import MetaFlowConfig, MetaFlowModel
from ._niche_model import NicheConfig, NicheModel
from ._predict import predict

__all__ = [
    "MetaFlowConfig",
    "MetaFlowModel",
    "NicheConfig",
    "NicheModel",
    "baseline",
    "evaluate",
    "evaluate_niches",
    "fit",
    "fit_niches",
    "generate_niches",
    "load",
    "predict",
]
