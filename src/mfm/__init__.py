"""mfm: learn how whole cell populations change, on AnnData.

Meta Flow Matching (population-conditioned flows that generalise to unseen patients) and
Wasserstein Flow Matching niche generators, with scanpy-style ``pp`` / ``tl`` / ``pl`` verbs.
"""

from importlib.metadata import PackageNotFoundError, version

from . import data, datasets, flows, metrics, models, pl, pp, tl, train
from ._settings import _install_handler, settings

_install_handler()

try:
    __version__ = version("mfm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "data",
    "datasets",
    "flows",
    "metrics",
    "models",
    "pl",
    "pp",
    "tl",
    "train",
    "settings",
    "__version__",
]
