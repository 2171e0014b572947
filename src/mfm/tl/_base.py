"""Persistence shared by every trained model: explicit JSON config + state dict + feature names.

A saved model is a directory with ``config.json`` (the model class name and its frozen
config dataclass), ``weights.pt`` (a state dict, loaded with ``weights_only=True``) and
``features.json`` (the feature names it was trained on). Nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .._utils import Device, resolve_device

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
FEATURES_FILE = "features.json"

#: Model classes by name, filled by :func:`register`, used by :func:`load`.
_MODEL_CLASSES: dict[str, type[BaseModel]] = {}


def register(cls: type[BaseModel]) -> type[BaseModel]:
    """Class decorator making ``cls`` loadable by :func:`mfm.tl.load`."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


class BaseModel:
    """A torch module with its construction config and feature names.

    Subclasses define ``config_class`` (a frozen dataclass of plain types) and
    :meth:`build_module`, which rebuilds the module from the config alone.

    Parameters
    ----------
    config
        Frozen dataclass instance of ``config_class``.
    features
        Names of the features the model works on.
    device
        Where the module lives (``"auto"``: CUDA when available).
    seed
        Seed of the weight initialisation (the global torch RNG state is restored after).
    """

    config_class: ClassVar[type]

    def __init__(
        self, config: Any, features: list[str], device: Device = "auto", seed: int = 0
    ) -> None:
        self.config = config
        self.features = list(features)
        self.device = resolve_device(device)
        # seed the initialisation, then restore every global RNG (CPU and CUDA)
        with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
            torch.manual_seed(seed)
            self.module = self.build_module().to(self.device)

    def build_module(self) -> nn.Module:
        """Build the (untrained) torch module from ``self.config``."""
        raise NotImplementedError

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the model to directory ``path`` (config, weights, feature names).

        Parameters
        ----------
        path
            Directory to create.
        overwrite
            Replace the files of an existing model directory.
        """
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            msg = f"Directory {str(path)!r} exists and is not empty; pass `overwrite=True`."
            raise FileExistsError(msg)
        path.mkdir(parents=True, exist_ok=True)
        config = {"model": type(self).__name__, "config": dataclasses.asdict(self.config)}
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        (path / FEATURES_FILE).write_text(json.dumps(self.features))
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        torch.save(state, path / WEIGHTS_FILE)

    @classmethod
    def from_directory(cls, path: Path, config: dict[str, Any], device: Device) -> BaseModel:
        """Rebuild the model from a directory's parsed config, then load its weights."""
        features = json.loads((path / FEATURES_FILE).read_text())
        model = cls(cls.config_class(**config), features, device=device)
        state = torch.load(path / WEIGHTS_FILE, map_location=model.device, weights_only=True)
        model.module.load_state_dict(state)
        model.module.eval()
        return model

    def check_features(self, features: list[str]) -> None:
        """Raise a `ValueError` unless ``features`` equal the training features, in order."""
        if list(features) != self.features:
            missing = [f for f in self.features if f not in set(features)]
            msg = (
                f"The data's features do not match the model's {len(self.features)} training "
                f"features (got {len(features)}; missing {missing[:10]}, order must match too). "
                "Use the same `use_rep` and variables as in training."
            )
            raise ValueError(msg)

    def __repr__(self) -> str:
        n_params = sum(p.numel() for p in self.module.parameters())
        return (
            f"{type(self).__name__}({self.config}, n_parameters={n_params}, device={self.device})"
        )


def load(path: str | Path, *, device: Device = "auto") -> BaseModel:
    """Load a model written by ``model.save(path)``.

    Parameters
    ----------
    path
        Directory written by :meth:`BaseModel.save`.
    device
        Where to put the model (``"auto"``: CUDA when available).

    Returns
    -------
    The model, of the class it was saved from, in eval mode.
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        msg = f"{str(path / CONFIG_FILE)!r} not found; is {str(path)!r} a saved mfm model?"
        raise FileNotFoundError(msg)
    saved = json.loads((path / CONFIG_FILE).read_text())
    if saved.get("model") not in _MODEL_CLASSES:
        msg = f"Unknown model class {saved.get('model')!r}; known: {sorted(_MODEL_CLASSES)}."
        raise ValueError(msg)
    return _MODEL_CLASSES[saved["model"]].from_directory(path, saved["config"], device)
