"""Helpers shared by the speed benchmarks: data sets, our training step, interleaved timing.

Benchmarks put this folder on ``sys.path`` (running ``python benchmarks/<script>.py`` does), so
they import ``_common``, ``ot_batch``, ``letters_table`` and the ``reference`` package by name.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from letters_table import letters_adata

import mfm
from mfm import _keys as K
from mfm.data import PopulationSampler, feature_statistics
from mfm.tl import MetaFlowConfig, MetaFlowModel
from mfm.tl._io import population_pairs
from mfm.train import TrainSettings, train

__all__ = [
    "OURS_DEFAULT",
    "OURS_REFERENCE_SIZES",
    "OursSizes",
    "OursTrainer",
    "fit_defaults",
    "interleaved_times",
    "letters_adata",
    "median",
    "organoid_adata",
    "print_table",
    "seeded_generator",
    "synchronize",
    "torch_device",
]


@dataclass(frozen=True)
class OursSizes:
    """Model and batch sizes of our MFM training step (``mfm.tl.fit`` arguments)."""

    batch_populations: int = 8
    cells_per_population: int = 256
    knn: int = 10
    gcn_hidden: int = 64
    gcn_layers: int = 3
    embedding_dim: int = 32
    hidden: int = 256
    n_layers: int = 4
    time_features: int = 32

    def label(self) -> str:
        return (
            f"{self.batch_populations} x {self.cells_per_population}, k={self.knn}, "
            f"GCN {self.gcn_layers}x{self.gcn_hidden}->{self.embedding_dim}, "
            f"MLP {self.hidden} x {self.n_layers}"
        )


def fit_defaults() -> dict:
    """``mfm.tl.fit``'s keyword defaults, read from its signature (benchmarks follow changes)."""
    return {
        name: p.default
        for name, p in inspect.signature(mfm.tl.fit).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _fit_default_sizes() -> OursSizes:
    """``mfm.tl.fit``'s sizes (``time_features``, not a ``fit`` argument, keeps the config's)."""
    defaults = fit_defaults()
    return OursSizes(**{f.name: defaults[f.name] for f in fields(OursSizes) if f.name in defaults})


#: ``mfm.tl.fit``'s defaults.
OURS_DEFAULT = _fit_default_sizes()
#: The published letters configuration (10 populations x 700 cells, k = 50, GCN 3 x 64, MLP
#: 512 x 4, 128-d time embedding).
OURS_REFERENCE_SIZES = replace(
    OURS_DEFAULT,
    batch_populations=10,
    cells_per_population=700,
    knn=50,
    embedding_dim=64,
    hidden=512,
    time_features=128,
)


class OursTrainer:
    """The objects ``mfm.tl.fit`` builds (MetaFlowNet, MetaFlowObjective, batch sampler).

    :meth:`run` calls the package's training loop (AdamW, warm-up/cosine schedule, gradient
    clipping) for a number of steps, so a timing covers exactly what ``fit`` runs per step
    (each call starts a fresh optimiser and schedule; the module keeps training).

    Parameters
    ----------
    adata
        AnnData after ``mfm.pp.populations`` and ``mfm.pp.split``.
    sizes
        Model and batch sizes.
    coupling
        ``"independent"`` or ``"ot"``.
    device
        Torch device.
    random_state
        Seed of the initialisation and of the draws.
    """

    def __init__(
        self,
        adata,
        sizes: OursSizes,
        *,
        coupling: str = "independent",
        device: torch.device | str = "cpu",
        random_state: int = 0,
    ):
        pairs, table, features = population_pairs(adata, K.Keys("mfm"))
        self.train_pairs = pairs.treated(np.flatnonzero(table[K.SPLIT].astype(str) == K.TRAIN))
        standardize = fit_defaults()["standardize"]
        mean, scale = feature_statistics(pairs, self.train_pairs, standardize)
        #: ``mfm.tl.fit``'s default peak learning rate for these pairs.
        self.lr = fit_learning_rate(adata)
        config = MetaFlowConfig(
            method="mfm",
            coupling=coupling,
            treatments=pairs.treatments,
            train_sources=sorted({pairs.names[i] for i in pairs.control[self.train_pairs]}),
            knn=sizes.knn,
            gcn_hidden=sizes.gcn_hidden,
            gcn_layers=sizes.gcn_layers,
            embedding_dim=sizes.embedding_dim,
            hidden=sizes.hidden,
            n_layers=sizes.n_layers,
            time_features=sizes.time_features,
            cells_per_population=sizes.cells_per_population,
            standardize=standardize,
            feature_mean=mean,
            feature_scale=scale,
        )
        self.model = MetaFlowModel(config, features, device=device, seed=random_state)
        self.objective = self.model.objective()
        self.sampler = PopulationSampler(
            pairs,
            np.array([self.model.population_code(name) for name in pairs.names]),
            batch_populations=sizes.batch_populations,
            cells_per_population=sizes.cells_per_population,
            paired=coupling == "paired",
            to_model_space=self.model.to_model_space,
            device=self.model.device,
            seed=random_state,
        )

    def next_batch(self) -> tuple:
        """Arguments of the objective for the next training batch (on the device)."""
        return self.sampler.batch(self.train_pairs)

    def run(self, n_steps: int) -> None:
        """``n_steps`` steps of :func:`mfm.train.train` (no progress bar, no validation)."""
        settings = TrainSettings(max_steps=n_steps, lr=self.lr, val_every=n_steps, progress=False)
        train(self.objective, self.next_batch, settings)


def fit_learning_rate(adata) -> float:
    """The peak learning rate ``mfm.tl.fit`` resolves for ``adata`` at its defaults.

    Read from ``params['fit']['lr']`` of a one-step fit on a copy (the rule depends on the
    number of training pairs).
    """
    probe, keys = adata.copy(), K.Keys("mfm")
    mfm.tl.fit(probe, max_steps=1, progress=False)
    return float(probe.uns[keys.uns][keys.params][K.FIT_PARAMS][K.LR])


def organoid_adata(*, n_patients: int = 8, n_cells: int = 300, random_state: int = 0):
    """Simulated organoid screen after ``pp.populations``; last patient test, one before val."""
    adata = mfm.datasets.organoid_screen(
        n_patients=n_patients, n_cells=n_cells, random_state=random_state
    )
    mfm.pp.populations(
        adata,
        sample_key=["patient", "culture", "replicate"],
        condition_key="treatment",
        control="control",
        min_cells=min(50, n_cells),
    )
    patients = list(adata.obs["patient"].cat.categories)
    mfm.pp.split(adata, by="patient", test=patients[-1:], val=patients[-2:-1])
    return adata


def torch_device(name: str) -> torch.device:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    methods: dict[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int,
    device: torch.device,
) -> dict[str, list[float]]:
    """Seconds of each call of each method, after ``warmup`` untimed rounds.

    Every round calls every method once, in alternating forward / reverse order, so slow drifts
    of the machine (other jobs, clocks) hit all methods alike.
    """
    times: dict[str, list[float]] = {name: [] for name in methods}
    for round_ in range(warmup + repeats):
        names = list(methods) if round_ % 2 == 0 else list(reversed(methods))
        for name in names:
            synchronize(device)
            start = time.perf_counter()
            methods[name]()
            synchronize(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str) -> None:
    """Print a markdown table; ``align`` has one ``l`` or ``r`` per column."""
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" if a == "l" else "---:" for a in align) + " |")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
