"""Persistence shared by every trained model: explicit JSON config + state dict + feature names.

A saved model is a directory with ``config.json`` (the format version, the model class name and
every field of its frozen config dataclass), ``weights.pt`` (a state dict, loaded with
``weights_only=True``) and ``features.json`` (the feature names it was trained on). Nothing is
pickled. Saving writes a temporary directory next to the target and renames it into place, so
a crash never leaves a half-written model; loading refuses anything but a complete directory of
the current format.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .._utils import Device, resolve_device

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
FEATURES_FILE = "features.json"
#: Files of a model directory.
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, FEATURES_FILE)
#: Version of the directory layout; :func:`load` refuses any other.
FORMAT_VERSION = 1
#: Entries of ``config.json``.
CONFIG_ENTRIES = ("format_version", "model", "config")

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
    #: Config fields added after models of the current format were saved, with the value
    #: that rebuilds those models (filled in when a saved config lacks them).
    legacy_defaults: ClassVar[dict[str, Any]] = {}

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

    def objective(self) -> nn.Module:
        """The training loss module around ``self.module`` (shares its parameters)."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """Short name of the model (the progress bar's and the history's label)."""
        return type(self).__name__

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the model to directory ``path`` (config, weights, feature names), atomically.

        The files are written to a temporary directory beside ``path``, which is then renamed
        to ``path``: an interrupted save leaves either the former directory or the new one.

        Parameters
        ----------
        path
            Directory to create (an existing empty directory is replaced).
        overwrite
            Replace an existing model directory (one holding only a saved model's files).
        """
        path = Path(path)
        _check_target(path, overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            self._write_files(staging)
            _swap_into_place(staging, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _write_files(self, directory: Path) -> None:
        config = {
            "format_version": FORMAT_VERSION,
            "model": type(self).__name__,
            "config": dataclasses.asdict(self.config),
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        (directory / FEATURES_FILE).write_text(json.dumps(self.features))
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        torch.save(state, directory / WEIGHTS_FILE)

    @classmethod
    def from_directory(cls, path: Path, config: dict[str, Any], device: Device) -> BaseModel:
        """Rebuild the model from a directory's parsed config, then load its weights."""
        if isinstance(config, dict):
            config = {**cls.legacy_defaults, **config}
        _check_fields(cls.config_class, config, path / CONFIG_FILE)
        features = _read_features(path / FEATURES_FILE)
        device = resolve_device(device)
        try:
            model = cls(cls.config_class(**config), features, device=device)
        except (TypeError, ValueError, KeyError, RuntimeError) as error:
            msg = f"Cannot build a {cls.__name__} from {str(path / CONFIG_FILE)!r}: {error}"
            raise ValueError(msg) from error
        file = path / WEIGHTS_FILE
        if not file.is_file():
            msg = f"{str(file)!r} not found; the model directory is incomplete."
            raise FileNotFoundError(msg)
        try:
            state = torch.load(file, map_location=model.device, weights_only=True)
            model.module.load_state_dict(state)
        except Exception as error:  # truncated, empty, not a state dict, wrong shapes
            msg = f"Cannot read the weights {str(file)!r}: {type(error).__name__}: {error}"[:2000]
            raise ValueError(msg) from error
        model.module.eval()
        return model

    def check_use_rep(self, use_rep: str) -> None:
        """Raise a `ValueError` unless ``use_rep`` is the representation the model was trained on.

        Parameters
        ----------
        use_rep
            The data's representation (``"X"``, a layer or an obsm key), as stored in its
            ``uns[key]['params']['use_rep']``.
        """
        trained = self.config.use_rep
        if str(use_rep) != str(trained):
            msg = (
                f"The model was trained on `use_rep={trained!r}`, but the data uses "
                f"`use_rep={use_rep!r}`; run the `mfm.pp` step again with `use_rep={trained!r}`."
            )
            raise ValueError(msg)

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

    def summary(self) -> str:
        """What the model is, in a few words (the start of its one-line repr)."""
        return ""

    def __repr__(self) -> str:
        """One short line: kind, features, parameters, device (the config is ``model.config``)."""
        n_params = sum(p.numel() for p in self.module.parameters())
        parts = [self.summary(), f"{len(self.features)} features", f"{n_params:,} parameters"]
        inner = ", ".join(part for part in parts if part)
        return f"{type(self).__name__}({inner}, device={self.device.type})"


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

    Raises
    ------
    FileNotFoundError
        When a file of the directory is missing.
    ValueError
        Naming the file, when it is not valid JSON, its format version is not
        ``FORMAT_VERSION``, a config field is missing or unknown, or the weights are truncated,
        empty or do not fit the model.

    Examples
    --------
    >>> model.save("model_dir")
    >>> model = mfm.tl.load("model_dir", device="cpu")   # a MetaFlowModel or a NicheModel
    >>> pred = mfm.tl.predict(adata, model)               # checks the features against adata
    """
    path = Path(path)
    file = path / CONFIG_FILE
    if not file.is_file():
        msg = f"{str(file)!r} not found; is {str(path)!r} a saved mfm model?"
        raise FileNotFoundError(msg)
    saved = _read_json(file)
    if not isinstance(saved, dict) or sorted(saved) != sorted(CONFIG_ENTRIES):
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        msg = f"{str(file)!r} must hold exactly the entries {list(CONFIG_ENTRIES)}, got {found}."
        raise ValueError(msg)
    if saved["format_version"] != FORMAT_VERSION:
        msg = (
            f"{str(file)!r} has format version {saved['format_version']!r}; this mfm reads "
            f"version {FORMAT_VERSION} only. Save the model again with a matching mfm."
        )
        raise ValueError(msg)
    if saved["model"] not in _MODEL_CLASSES:
        known = sorted(_MODEL_CLASSES)
        msg = f"Unknown model class {saved['model']!r} in {str(file)!r}; known: {known}."
        raise ValueError(msg)
    return _MODEL_CLASSES[saved["model"]].from_directory(path, saved["config"], device)


def _read_json(file: Path) -> Any:
    """Parsed JSON of ``file``; a `ValueError` naming the file when it is not valid JSON."""
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        msg = f"{str(file)!r} is not valid JSON ({error}); the model directory is damaged."
        raise ValueError(msg) from None


def _read_features(file: Path) -> list[str]:
    """The feature names of ``features.json``, checked to be a list of strings."""
    if not file.is_file():
        msg = f"{str(file)!r} not found; the model directory is incomplete."
        raise FileNotFoundError(msg)
    features = _read_json(file)
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        msg = f"{str(file)!r} must hold a JSON list of feature names."
        raise ValueError(msg)
    return features


def _check_fields(config_class: type, config: Any, file: Path) -> None:
    """Raise a `ValueError` naming ``file`` when ``config`` lacks or adds a config field."""
    if not isinstance(config, dict):
        msg = f"{str(file)!r}: 'config' must be a JSON object, got {type(config).__name__}."
        raise ValueError(msg)
    expected = {f.name for f in dataclasses.fields(config_class)}
    missing, unknown = sorted(expected - set(config)), sorted(set(config) - expected)
    if missing or unknown:
        msg = (
            f"{str(file)!r} does not match {config_class.__name__}: missing fields {missing}, "
            f"unknown fields {unknown}. Every field is required; save the model again."
        )
        raise ValueError(msg)


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty directory unless ``overwrite`` and it holds only a model."""
    if not path.exists():
        return
    if not path.is_dir():
        msg = f"{str(path)!r} exists and is not a directory."
        raise FileExistsError(msg)
    names = {p.name for p in path.iterdir()}
    if names and not overwrite:
        msg = f"Directory {str(path)!r} exists and is not empty; pass `overwrite=True`."
        raise FileExistsError(msg)
    if names - set(MODEL_FILES):
        msg = (
            f"Directory {str(path)!r} holds other files than a saved model "
            f"({sorted(names - set(MODEL_FILES))[:5]}); `overwrite` replaces model directories "
            "only. Choose another path."
        )
        raise FileExistsError(msg)


def _swap_into_place(staging: Path, path: Path) -> None:
    """Rename the finished ``staging`` directory to ``path``, replacing a former one."""
    if not path.exists():
        os.replace(staging, path)
        return
    former = staging.with_name(staging.name + ".old")
    os.replace(path, former)
    try:
        os.replace(staging, path)
    except OSError:
        os.replace(former, path)  # put the former model back
        raise
    shutil.rmtree(former, ignore_errors=True)
