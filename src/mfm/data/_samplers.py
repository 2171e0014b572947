"""Training samplers: random batches of population pairs (MFM) or point clouds (WFM).

Both fits draw through the same design: a :class:`RandomStreams` base holding one numpy
generator (which items) and one torch generator (noise and times in the objective), seeded
per process so that DDP ranks draw different batches, and saved with the checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._utils import as_torch_generator
from ._clouds import PointClouds
from ._populations import PopulationPairs

#: Offset between the torch seeds of DDP ranks (a prime, so rank streams never coincide).
RANK_SEED_STRIDE = 7919


class RandomStreams:
    """The numpy and torch random streams of one process of a training run.

    Parameters
    ----------
    seed
        The run's ``random_state``.
    rank
        DDP rank of this process (0 without DDP).
    device
        Device of the torch generator.
    """

    def __init__(self, seed: int, rank: int, device: torch.device | str) -> None:
        self.rng = np.random.default_rng([seed, rank])
        self.generator = as_torch_generator(seed + RANK_SEED_STRIDE * rank, device)

    def state(self) -> dict:
        """Both streams' states (for checkpoints)."""
        return {"rng": self.rng.bit_generator.state, "generator": self.generator.get_state()}

    def set_state(self, state: dict) -> None:
        """Continue both streams from :meth:`state`."""
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])


class PopulationSampler(RandomStreams):
    """Batches of (control, treated) population pairs, and a fixed validation set.

    Parameters
    ----------
    pairs
        The populations.
    codes
        ``(n_populations,)`` population code of each population (the CGFM one-hot index of a
        training control population, ``-1`` otherwise).
    batch_populations
        Pairs per batch.
    cells_per_population
        Cells drawn per population.
    paired
        Draw corresponding rows of paired populations (``coupling="paired"``).
    to_model_space
        Applied to the drawn cells (the model's standardisation).
    device
        Device of the batches.
    seed, rank
        See :class:`RandomStreams`.
    """

    def __init__(
        self,
        pairs: PopulationPairs,
        codes: np.ndarray,
        *,
        batch_populations: int,
        cells_per_population: int,
        paired: bool,
        to_model_space: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device | str,
        seed: int,
        rank: int = 0,
    ) -> None:
        super().__init__(seed, rank, device)
        self.pairs = pairs
        self.codes = torch.as_tensor(np.asarray(codes), device=device)  # indexed on the device
        self.batch_size, self.n_cells, self.paired = batch_populations, cells_per_population, paired
        self.to_model_space, self.device = to_model_space, device
        self.resident = pairs.resident_features(device)  # None on the CPU

    def batch(self, candidates: np.ndarray) -> tuple:
        """Objective arguments ``(control, treated, codes, treatment, generator)`` of a batch."""
        replace = len(candidates) < self.batch_size
        chosen = self.rng.choice(candidates, self.batch_size, replace=replace)
        return (*self._draw(chosen, self.rng), self.generator)

    def validation_draws(self, val_pairs: np.ndarray) -> list[tuple]:
        """Objective arguments (without generator) of every validation pair, in batches.

        Each batch's cells come from its own seeded generator: the same draws on every call.
        """
        chunks = np.array_split(val_pairs, -(-len(val_pairs) // self.batch_size))
        return [self._draw(chunk, np.random.default_rng(i)) for i, chunk in enumerate(chunks)]

    def validation(self, val_pairs: np.ndarray) -> Callable[[torch.nn.Module], float]:
        """A loss on a fixed draw of every validation pair (same cells and times each call)."""
        draws = self.validation_draws(val_pairs)

        def loss(objective: torch.nn.Module) -> float:
            generator = as_torch_generator(0, self.device)
            return float(np.mean([objective(*args, generator).loss.item() for args in draws]))

        return loss

    def _draw(self, chosen: np.ndarray, rng: np.random.Generator) -> tuple:
        b = self.pairs.sample(
            chosen, self.n_cells, rng, self.device, paired=self.paired, resident=self.resident
        )
        control, treated = self.to_model_space(b.control), self.to_model_space(b.treated)
        return control, treated, self.codes[b.control_index], b.treatment


class CloudSampler(RandomStreams):
    """Batches of padded point clouds (niches) with their labels.

    Parameters
    ----------
    clouds
        The point clouds.
    labels
        ``(n_clouds,)`` integer label of each cloud, or None.
    batch_size
        Clouds per batch.
    device
        Device of the batches.
    seed, rank
        See :class:`RandomStreams`.
    """

    def __init__(
        self,
        clouds: PointClouds,
        labels: np.ndarray | None,
        *,
        batch_size: int,
        device: torch.device | str,
        seed: int,
        rank: int = 0,
    ) -> None:
        super().__init__(seed, rank, device)
        self.clouds, self.labels, self.batch_size, self.device = clouds, labels, batch_size, device

    def batch(self) -> tuple:
        """Objective arguments ``(points, mask, labels, generator)`` of a batch."""
        n = len(self.clouds)
        chosen = self.rng.choice(n, self.batch_size, replace=n < self.batch_size)
        x, mask = self.clouds.pad(chosen, device=self.device)
        labels = None
        if self.labels is not None:
            labels = torch.as_tensor(self.labels[chosen], device=self.device)
        return x, mask, labels, self.generator
