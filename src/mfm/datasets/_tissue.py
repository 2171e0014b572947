"""`mfm.datasets.simulated_tissue`: spatial slices with domains of distinct cell-type mixtures."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData

from .._checks import check_positive_int
from .._utils import RandomState, as_numpy_rng
from ._common import categorical, seed_param

logger = logging.getLogger(__name__)

#: Side of the square each slice covers (microns-like units).
SIDE = 1000.0
#: Dirichlet concentration of the band widths of the domains.
BAND_CONCENTRATION = 5.0
#: Width (in units of the slice side) of each type's preference for domains, and a floor.
MIXTURE_WIDTH, MIXTURE_FLOOR = 0.15, 0.02
#: Mean number of cells per homotypic clump, and the spread of a clump around its centre.
CLUMP_SIZE, CLUMP_SD = 6, 30.0
#: Spread of the domain offsets and of the cell noise.
DOMAIN_SD, CELL_SD = 0.5, 0.3


def simulated_tissue(
    *,
    n_cells: int = 3000,
    n_genes: int = 30,
    n_slices: int = 2,
    n_cell_types: int = 5,
    n_domains: int = 4,
    random_state: RandomState = 0,
) -> AnnData:
    r"""Simulate spatial slices whose domains have their own cell-type mixtures.

    Each slice is the square :math:`[0, 1000]^2`, cut into :math:`D` = ``n_domains``
    vertical bands ``d0, d1, ...`` (left to right) of widths
    :math:`1000\,(0.5 / D + 0.5\, w)`, :math:`w \sim \mathrm{Dir}(5 \cdot \mathbf{1})`, drawn
    per slice. Cell type :math:`k` of :math:`K` prefers the horizontal position
    :math:`c_k = (k + 1/2) / K` and domain :math:`d` has the nominal position
    :math:`c_d = (d + 1/2) / D` (in units of the side), so domain :math:`d` has the mixture

    .. math::

        \pi_{dk} \propto \exp\bigl(-(c_d - c_k)^2 / (2 \cdot 0.15^2)\bigr) + 0.02.

    Cells come in homotypic clumps (tissue grows in patches): each slice has
    ``ceil(n / 6)`` clump centres placed uniformly; a clump's type is drawn from the mixture
    of the domain of its centre; each cell joins a uniformly drawn clump, lies at the centre
    plus :math:`N(0, 30^2 I)` (clipped to the square), takes the domain of its own position,
    and has expression

    .. math::

        x = \max\bigl(0,\; \mu_k + o_d + \varepsilon\bigr), \qquad
        \mu_k \sim U(1, 4)^G, \; o_d \sim N(0, 0.5^2 I), \; \varepsilon \sim N(0, 0.3^2 I).

    So a cell's spatial neighbours are enriched in its own type (the clump) and in the types
    of the domains where its type is frequent: each type has its own niche composition.

    Parameters
    ----------
    n_cells
        Total number of cells, split as evenly as possible over the slices.
    n_genes
        Number of genes, named ``"gene_0"``, ``"gene_1"``, ...
    n_slices
        Number of slices, named ``"s0"``, ``"s1"``, ...
    n_cell_types
        Number of cell types :math:`K`, named ``"type_0"``, ...
    n_domains
        Number of spatial domains, named ``"d0"``, ...
    random_state
        Seed or generator of the layout, the means and the cells.

    Returns
    -------
    AnnData of ``n_cells`` cells ordered by slice; ``X`` float32 ``(n_cells, n_genes)``,
    ``obsm["spatial"]`` float64 ``(n_cells, 2)``, ``obs`` columns ``cell_type``, ``domain``
    and ``slice`` (categorical); ``uns["simulated_tissue"]``: the parameters, the domain
    mixtures (``mixtures``, ``n_domains x n_cell_types``) and each slice's band edges
    (``edges``, ``n_slices x (n_domains + 1)``), as plain types.

    Examples
    --------
    >>> adata = mfm.datasets.simulated_tissue()
    >>> mfm.pp.niches(adata, n_neighbors=8, library_key="slice")
    """
    for name, value in [("n_cells", n_cells), ("n_genes", n_genes), ("n_slices", n_slices)]:
        check_positive_int(name, value)
    check_positive_int("n_cell_types", n_cell_types)
    check_positive_int("n_domains", n_domains)
    rng = as_numpy_rng(random_state)
    mixtures = _domain_mixtures(n_domains, n_cell_types)
    type_means = rng.uniform(1.0, 4.0, size=(n_cell_types, n_genes))
    domain_offsets = rng.normal(0.0, DOMAIN_SD, size=(n_domains, n_genes))
    edges = np.stack([_band_edges(n_domains, rng) for _ in range(n_slices)])
    slices = np.arange(n_cells) * n_slices // n_cells  # even split, ordered by slice
    spatial, cell_types = _clumps(slices, edges, mixtures, rng)
    domains = _domains(spatial[:, 0], slices, edges)
    noise = rng.normal(0.0, CELL_SD, size=(n_cells, n_genes))
    values = np.maximum(type_means[cell_types] + domain_offsets[domains] + noise, 0.0)
    adata = AnnData(
        X=values.astype(np.float32),
        obs=_tissue_obs(cell_types, domains, slices, n_cell_types, n_domains, n_slices),
        var=pd.DataFrame(index=[f"gene_{j}" for j in range(n_genes)]),
        obsm={"spatial": spatial},
    )
    adata.uns["simulated_tissue"] = {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "n_slices": n_slices,
        "n_cell_types": n_cell_types,
        "n_domains": n_domains,
        **seed_param(random_state),
        "mixtures": mixtures.tolist(),
        "edges": edges.tolist(),
    }
    logger.info("simulated tissue: %d cells in %d slices", n_cells, n_slices)
    return adata


def _domain_mixtures(n_domains: int, n_cell_types: int) -> np.ndarray:
    """Cell-type mixture of each domain, ``(n_domains, n_cell_types)``, rows summing to 1."""
    domain_centres = (np.arange(n_domains) + 0.5) / n_domains
    type_centres = (np.arange(n_cell_types) + 0.5) / n_cell_types
    distance = domain_centres[:, None] - type_centres[None, :]
    weights = np.exp(-(distance**2) / (2 * MIXTURE_WIDTH**2)) + MIXTURE_FLOOR
    return weights / weights.sum(axis=1, keepdims=True)


def _clumps(
    slices: np.ndarray, edges: np.ndarray, mixtures: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Place the cells of every slice in homotypic clumps: positions ``(n, 2)``, types ``(n,)``."""
    spatial = np.empty((len(slices), 2))
    cell_types = np.empty(len(slices), dtype=np.int64)
    for s in range(len(edges)):
        in_slice = np.flatnonzero(slices == s)
        n_clumps = -(-len(in_slice) // CLUMP_SIZE)
        centres = rng.uniform(0.0, SIDE, size=(n_clumps, 2))
        clump_domains = np.searchsorted(edges[s, 1:-1], centres[:, 0], side="right")
        clump_types = _draw_types(mixtures[clump_domains], rng)
        clump = rng.integers(n_clumps, size=len(in_slice))
        offsets = rng.normal(0.0, CLUMP_SD, size=(len(in_slice), 2))
        spatial[in_slice] = np.clip(centres[clump] + offsets, 0.0, SIDE)
        cell_types[in_slice] = clump_types[clump]
    return spatial, cell_types


def _band_edges(n_domains: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted x positions ``(n_domains + 1,)`` from 0 to SIDE; bands >= half their even share."""
    shares = 0.5 / n_domains + 0.5 * rng.dirichlet(np.full(n_domains, BAND_CONCENTRATION))
    return np.concatenate([[0.0], SIDE * np.cumsum(shares)[:-1], [SIDE]])


def _domains(x: np.ndarray, slices: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Domain code ``(n,)`` of each cell from its x position and its slice's band edges."""
    domains = np.empty(len(x), dtype=np.int64)
    for s, slice_edges in enumerate(edges):
        in_slice = slices == s
        domains[in_slice] = np.searchsorted(slice_edges[1:-1], x[in_slice], side="right")
    return domains


def _draw_types(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``probs`` ``(n, K)``; returns codes ``(n,)``."""
    cumulative = np.cumsum(probs, axis=1)
    draws = rng.random(len(probs)) * cumulative[:, -1]
    return (draws[:, None] >= cumulative[:, :-1]).sum(axis=1)


def _tissue_obs(
    cell_types: np.ndarray,
    domains: np.ndarray,
    slices: np.ndarray,
    n_cell_types: int,
    n_domains: int,
    n_slices: int,
) -> pd.DataFrame:
    """Categorical ``cell_type``, ``domain`` and ``slice`` columns, cells named by slice."""
    slice_names = [f"s{s}" for s in range(n_slices)]
    within = np.arange(len(slices)) - np.searchsorted(slices, slices)
    return pd.DataFrame(
        {
            "cell_type": categorical(cell_types, [f"type_{k}" for k in range(n_cell_types)]),
            "domain": categorical(domains, [f"d{d}" for d in range(n_domains)]),
            "slice": categorical(slices, slice_names),
        },
        index=[f"{slice_names[s]}_{i}" for s, i in zip(slices, within, strict=True)],
    )
