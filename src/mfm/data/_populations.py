"""`PopulationPairs`: cells of many populations, paired control -> treated, and their sampler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._rows import RowStore


@dataclass(frozen=True)
class PopulationBatch:
    """One training batch of ``B`` (control, treated) population pairs, ``n`` cells each.

    Attributes
    ----------
    control
        ``(B, n, d)`` cells drawn from each pair's control population.
    treated
        ``(B, n, d)`` cells drawn from each pair's treated population.
    control_index
        ``(B,)`` index of the control population (into ``PopulationPairs.names``).
    treatment
        ``(B,)`` treatment code (into ``PopulationPairs.treatments``).
    """

    control: Tensor
    treated: Tensor
    control_index: Tensor
    treatment: Tensor


@dataclass
class PopulationPairs:
    """Cells of many populations and the control -> treated pairing between them.

    Parameters
    ----------
    x
        ``(n_cells, d)`` features of every cell (float32), or a :class:`RowStore` of rows
        on disk, of which only the rows a batch or a population needs are read.
    cells
        For each population, the row indices of its cells in ``x``.
    names
        Population ids, aligned with ``cells``.
    control
        For each population, the index of its control population (itself for a control).
    treatment
        For each population, its treatment code into ``treatments``; ``-1`` for controls.
    treatments
        Names of the treatments (the non-control conditions).
    """

    x: np.ndarray | RowStore
    cells: list[np.ndarray]
    names: list[str]
    control: np.ndarray
    treatment: np.ndarray
    treatments: list[str]

    def __post_init__(self) -> None:
        n = len(self.cells)
        if not (len(self.names) == len(self.control) == len(self.treatment) == n):
            msg = "`cells`, `names`, `control` and `treatment` must have one entry per population."
            raise ValueError(msg)

    @property
    def n_features(self) -> int:
        """Number of features ``d``."""
        return int(self.x.shape[1])

    def treated(self, populations: np.ndarray | None = None) -> np.ndarray:
        """Indices of the treated populations (those with a treatment), optionally restricted."""
        treated = np.flatnonzero(self.treatment >= 0)
        return treated if populations is None else np.intersect1d(treated, populations)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """``(*rows.shape, d)`` float32 features of the cells at positions ``rows``."""
        rows = np.asarray(rows)
        if isinstance(self.x, RowStore):
            return self.x.take(rows.reshape(-1)).reshape(*rows.shape, self.n_features)
        return self.x[rows]

    def population_cells(self, index: int) -> np.ndarray:
        """``(n_i, d)`` features of population ``index``."""
        return self.take(self.cells[index])

    def sample(
        self,
        pairs: np.ndarray,
        n_cells: int,
        rng: np.random.Generator,
        device: torch.device | str = "cpu",
        *,
        paired: bool = False,
        resident: Tensor | None = None,
    ) -> PopulationBatch:
        """Draw ``n_cells`` cells of each pair's control and treated population.

        Cells are drawn without replacement when the population is large enough, with
        replacement otherwise, so every pair contributes the same number of cells.

        Parameters
        ----------
        pairs
            ``(B,)`` indices of treated populations (see :meth:`treated`).
        n_cells
            Cells drawn per population.
        rng
            Random generator.
        device
            Device of the returned tensors.
        paired
            Draw the same positions of both populations, so that row ``j`` of the control
            draw and row ``j`` of the treated draw are the ``k``-th cell of each population
            (for data whose control and treated cells correspond one to one, in order); both
            populations must then have the same number of cells.
        resident
            ``x`` already on ``device`` (see :meth:`resident_features`): the cells are
            gathered there, without a copy from the host.

        Returns
        -------
        The batch of ``B`` pairs.
        """
        controls = self.control[pairs]
        if paired:
            self.check_paired(pairs)
            positions = [self._draw(np.arange(len(self.cells[i])), n_cells, rng) for i in pairs]
            control_rows = np.stack(
                [self.cells[s][p] for s, p in zip(controls, positions, strict=True)]
            )
            treated_rows = np.stack(
                [self.cells[i][p] for i, p in zip(pairs, positions, strict=True)]
            )
        else:
            control_rows = np.stack([self._draw(self.cells[i], n_cells, rng) for i in controls])
            treated_rows = np.stack([self._draw(self.cells[i], n_cells, rng) for i in pairs])
        return PopulationBatch(
            control=self._gather(control_rows, device, resident),
            treated=self._gather(treated_rows, device, resident),
            control_index=torch.as_tensor(controls, dtype=torch.long, device=device),
            treatment=torch.as_tensor(self.treatment[pairs], dtype=torch.long, device=device),
        )

    def check_paired(self, pairs: np.ndarray) -> None:
        """`ValueError` unless every pair's control and treated populations have equal sizes."""
        for i in pairs:
            n_treated, n_control = len(self.cells[i]), len(self.cells[self.control[i]])
            if n_treated != n_control:
                msg = (
                    f"coupling='paired' needs control and treated populations of equal size "
                    f"(their cells correspond in order): {self.names[i]!r} has {n_treated} "
                    f"cells, its control {self.names[self.control[i]]!r} has {n_control}."
                )
                raise ValueError(msg)

    def resident_features(
        self, device: torch.device | str, max_fraction: float = 0.25
    ) -> Tensor | None:
        """``x`` copied to ``device`` once, when that is a GPU with room for it, else None.

        In-memory features that take less than ``max_fraction`` of the GPU's free memory are
        kept there, so that batches are gathered on the device instead of copied from the
        host at every step; on the CPU, or for rows on disk, None.
        """
        device = torch.device(device)
        if device.type != "cuda" or isinstance(self.x, RowStore):
            return None
        free, _ = torch.cuda.mem_get_info(device)
        if self.x.nbytes > max_fraction * free:
            return None
        return torch.as_tensor(self.x, device=device)

    def _gather(
        self, rows: np.ndarray, device: torch.device | str, resident: Tensor | None
    ) -> Tensor:
        if resident is not None:
            return resident[torch.as_tensor(rows, device=resident.device)]
        return torch.as_tensor(self.take(rows), device=device)

    @staticmethod
    def _draw(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(rows, size=n, replace=len(rows) < n)
