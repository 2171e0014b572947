"""`mfm.datasets.organoid_screen`: a simulated patient-derived organoid drug screen."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .._checks import check_positive_int
from .._utils import RandomState, as_numpy_rng
from ._common import categorical, cell_names, check_unique_subset, seed_param

logger = logging.getLogger(__name__)

CONTROL = "control"
CULTURES = ("PDO", "fibroblasts", "co-culture")
TREATMENTS = ("drug_A", "drug_B", "drug_C")
CELL_TYPES = ("tumour_stem", "tumour_differentiated", "fibroblast")
#: Marker programmes: each marker belongs to one, and drugs shift whole programmes.
PROGRAMS: dict[str, tuple[str, ...]] = {
    "epithelial": ("EpCAM", "E-cadherin", "Pan-CK", "CK8-18", "CEACAM5"),
    "mesenchymal": ("Vimentin", "PDGFRa", "PDGFRb", "FAP", "alpha-SMA", "CD90"),
    "stem": ("CD44", "LGR5", "CD133", "SOX2", "ALDH1A1"),
    "proliferation": ("Ki67", "pRB", "CyclinB1", "pHH3", "IdU"),
    "apoptosis": ("cleaved-Caspase3", "cleaved-Caspase7", "cleaved-PARP", "pH2AX"),
    "mapk": ("pERK", "pMEK", "pP90RSK", "pS6"),
    "pi3k": ("pAKT", "p4EBP1", "pGSK3b"),
}
#: Markers outside the programmes: a cell-type mean and noise only.
OTHER_MARKERS = ("pSTAT3", "pSMAD2-3", "pNFkB", "pP38", "pJNK", "pCREB", "beta-catenin", "MHC-I")
#: Programme level (arcsinh scale) of each cell type, rows in the order of CELL_TYPES.
LEVELS: dict[str, tuple[float, float, float]] = {
    "epithelial": (2.5, 3.5, 0.3),
    "mesenchymal": (0.3, 0.3, 3.5),
    "stem": (3.2, 1.5, 1.0),
    "proliferation": (3.0, 2.2, 1.2),
    "apoptosis": (0.8, 0.8, 0.8),
    "mapk": (2.0, 2.0, 1.8),
    "pi3k": (2.5, 2.0, 1.5),
}
#: Rise of the MAPK markers in MAPK-active cells.
MAPK_ACTIVE = 1.5
#: Noise: cell-level marker noise, replicate offsets, marker offsets.
CELL_SD, REPLICATE_SD, MARKER_SD = 0.35, 0.05, 0.25
#: Drug effect coefficients (see the Notes of organoid_screen).
A_SIZE, A_SLOPE, A_MIDPOINT, A_COCULTURE, A_FIBROBLAST = 2.5, 8.0, 0.45, 1.4, 0.4
B_SIZE, B_MIDPOINT, B_PROLIFERATION = 3.0, 0.5, 0.5
C_SIZE = 3.0


def organoid_screen(
    *,
    n_patients: int = 8,
    cultures: Sequence[str] = CULTURES,
    n_replicates: int = 2,
    treatments: Sequence[str] = TREATMENTS,
    n_cells: int = 300,
    n_markers: int = 40,
    random_state: RandomState = 0,
) -> AnnData:
    r"""Simulate a mass-cytometry drug screen of patient-derived organoids and fibroblasts.

    The design of Zapatero et al. 2023 (Cell): for each patient, culture (organoids alone,
    cancer-associated fibroblasts alone, co-culture) and replicate, one control population
    and one population per treatment, measured on ~40 arcsinh-transformed markers. Each
    drug's effect on *every* cell depends on traits of the patient that show only in the
    composition of its control population, never in a single cell, so that the effect is
    predictable from the control population (as Meta Flow Matching does) but not from a
    cell and the treatment.

    Parameters
    ----------
    n_patients
        Number of patients, named ``"P01"``, ``"P02"``, ...
    cultures
        Culture conditions, a subset of ``("PDO", "fibroblasts", "co-culture")``.
    n_replicates
        Replicates per patient and culture, named ``"r1"``, ``"r2"``, ...
    treatments
        Drugs, a subset of ``("drug_A", "drug_B", "drug_C")``; each has its own mechanism.
    n_cells
        Cells per population.
    n_markers
        Number of markers: the 32 programme markers, then ``pSTAT3``, ``pSMAD2-3``, ...
        (8 more), then ``"marker_40"``, ``"marker_41"``, ... Must be >= 32.
    random_state
        Seed or generator of the patient traits, the marker offsets and the cells.

    Returns
    -------
    AnnData of ``n_patients * len(cultures) * n_replicates * (1 + len(treatments)) * n_cells``
    cells ordered by patient, culture, replicate, treatment; ``X`` float32 ``>= 0`` (arcsinh
    scale); ``obs`` columns ``patient``, ``culture``, ``replicate``, ``treatment``
    (``"control"`` first) and ``cell_type``, all categorical, and ``mapk_active`` (bool,
    the cell's MAPK state); ``var['program']`` the programme of each marker (``"other"``
    outside the programmes); ``uns["organoid_screen"]``: ``params`` (the arguments) and
    ``traits`` (a column dict: ``patient``, ``stem_fraction``, ``mapk_fraction``,
    ``fibroblast_fraction``).

    Notes
    -----
    Patient :math:`p` has three latent traits, drawn independently: the stem-like fraction
    of its tumour cells :math:`s_p \sim U(0.1, 0.8)`, its baseline MAPK signalling as the
    fraction of MAPK-active cells :math:`q_p \sim U(0.1, 0.9)`, and its fibroblast fraction
    in co-culture :math:`\phi_p \sim U(0.1, 0.7)`. The fibroblast fraction of culture
    :math:`c` is :math:`f_{pc} = 0` (PDO), 1 (fibroblasts) or :math:`\phi_p` (co-culture).

    Every population of :math:`(p, c, r)`, control or treated, holds exactly the
    proportions :math:`(1 - f_{pc})\,s_p` tumour_stem, :math:`(1 - f_{pc})(1 - s_p)`
    tumour_differentiated and :math:`f_{pc}` fibroblast cells, and independently of type a
    proportion :math:`q_p` of MAPK-active cells (:math:`a = 1`); counts are rounded by
    largest remainder and cells shuffled, so composition adds no sampling noise to a
    treatment's effect on the mean. A cell of type :math:`k` under treatment :math:`t` has
    markers

    .. math::

        x = \max\bigl(0,\; \mu_k + 1.5\,a\,u_{mapk} + \rho_{pcr} + \Delta_t(p, c, k)
        + \varepsilon\bigr),

    where :math:`u_g` is the 0/1 indicator of programme :math:`g`'s markers (``PROGRAMS``),
    :math:`\mu_k` the programme levels of type :math:`k` (``LEVELS``) plus a marker offset
    :math:`N(0, 0.25^2)` shared by the types (the 8 other markers and the padding get
    :math:`U(1, 3)` plus a per-type :math:`N(0, 0.25^2)`), :math:`\rho_{pcr} \sim
    N(0, 0.05^2 I)` a replicate offset shared by the replicate's control and treated
    populations, and :math:`\varepsilon \sim N(0, 0.35^2 I)`. The shift :math:`\Delta_t`
    (zero for the control) is the same for all cells of a type in a population:

    - drug_A (pro-apoptotic; populations rich in stem-like cells resist it): tumour cells
      :math:`\Delta = a_{pc}\,(u_{apoptosis} - 0.5\,u_{proliferation})` with
      :math:`a_{pc} = 2.5\,\kappa_c\,(1 - \operatorname{sigmoid}(8 (s_p - 0.45)))`,
      :math:`\kappa_c = 1.4` in co-culture and 1 otherwise; fibroblasts
      :math:`\Delta = 0.4\,u_{apoptosis}`.
    - drug_B (MAPK inhibitor with paradoxical activation): every cell, active or not,
      :math:`\Delta = -3\,(q_p - 0.5)\,(u_{mapk} + 0.5\,u_{proliferation})`: inhibition in
      populations with high baseline signalling, activation in those with low.
    - drug_C (blocks a signal secreted by fibroblasts, so its effect scales with their
      fraction): tumour cells :math:`\Delta = 3 f_{pc}\,(u_{epithelial} - 0.5\,u_{stem})`,
      fibroblasts :math:`\Delta = -3 f_{pc}\,u_{mesenchymal}`; no effect in PDO alone.

    The distribution of a cell given its type and MAPK state is the same for every patient;
    the traits show only in the control population's composition: :math:`s_p` in the share
    of stem-like cells (stem and epithelial markers), :math:`q_p` in the share of
    MAPK-high cells, :math:`f_{pc}` in the mesenchymal markers.

    Examples
    --------
    >>> adata = mfm.datasets.organoid_screen()
    >>> mfm.pp.populations(adata, sample_key=["patient", "culture", "replicate"],
    ...                    condition_key="treatment", control="control")
    """
    cultures, treatments = _check_screen_args(
        n_patients, cultures, n_replicates, treatments, n_cells, n_markers
    )
    rng = as_numpy_rng(random_state)
    traits = _patient_traits(n_patients, rng)
    markers, programs = _markers(n_markers)
    means = _type_means(programs, rng)
    design = _design(n_patients, cultures, n_replicates, [CONTROL, *treatments])
    context = _context(traits, design, programs)
    shifts = _treatment_shifts(context, design["treatment"].astype(str).to_numpy())
    replicate = design.groupby(["patient", "culture", "replicate"], observed=True).ngroup()
    cell_types, mapk_active, values = _sample_cells(
        context, replicate.to_numpy(), means, shifts, n_cells, rng
    )
    obs = design.loc[design.index.repeat(n_cells)].reset_index(drop=True)
    obs["cell_type"] = categorical(cell_types, CELL_TYPES)
    obs["mapk_active"] = mapk_active.astype(bool)
    obs.index = cell_names(design["name"], n_cells)
    adata = AnnData(
        X=values.astype(np.float32),
        obs=obs.drop(columns="name"),
        var=pd.DataFrame({"program": pd.Categorical(programs)}, index=markers),
    )
    adata.uns["organoid_screen"] = {
        "params": {
            "n_patients": n_patients,
            "cultures": cultures,
            "n_replicates": n_replicates,
            "treatments": treatments,
            "n_cells": n_cells,
            "n_markers": n_markers,
            **seed_param(random_state),
        },
        "traits": {"patient": list(map(str, traits.index)), **traits.to_dict(orient="list")},
    }
    logger.info("simulated organoid screen: %d cells x %d markers", *adata.shape)
    return adata


def _patient_names(n_patients: int) -> list[str]:
    """Patient labels ``"P01"``, ``"P02"``, ... (zero-padded to at least two digits)."""
    width = max(2, len(str(n_patients)))
    return [f"P{i + 1:0{width}d}" for i in range(n_patients)]


def _patient_traits(n_patients: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw the latent traits of each patient (rows ``"P01"``, ...)."""
    return pd.DataFrame(
        {
            "stem_fraction": rng.uniform(0.1, 0.8, n_patients),
            "mapk_fraction": rng.uniform(0.1, 0.9, n_patients),
            "fibroblast_fraction": rng.uniform(0.1, 0.7, n_patients),
        },
        index=_patient_names(n_patients),
    )


def _markers(n_markers: int) -> tuple[list[str], list[str]]:
    """Marker names and the programme of each (``"other"`` outside the programmes)."""
    named = [(marker, program) for program, markers in PROGRAMS.items() for marker in markers]
    named += [(marker, "other") for marker in OTHER_MARKERS]
    named += [(f"marker_{k}", "other") for k in range(len(named), n_markers)]
    markers, programs = zip(*named[:n_markers], strict=True)
    return list(markers), list(programs)


def _type_means(programs: list[str], rng: np.random.Generator) -> np.ndarray:
    """Mean marker vector of each cell type, ``(n_cell_types, n_markers)``."""
    other = np.array(programs) == "other"
    levels = np.array([LEVELS.get(program, (0.0,) * len(CELL_TYPES)) for program in programs]).T
    # programme markers: a marker offset shared by the types; others: own level per type
    levels[:, ~other] += rng.normal(0.0, MARKER_SD, size=(~other).sum())
    levels[:, other] = rng.uniform(1.0, 3.0, size=other.sum())
    levels[:, other] += rng.normal(0.0, MARKER_SD, size=(len(CELL_TYPES), other.sum()))
    return levels


def _design(
    n_patients: int, cultures: list[str], n_replicates: int, treatments: list[str]
) -> pd.DataFrame:
    """One row per population: patient, culture, replicate, treatment codes and labels."""
    patients = _patient_names(n_patients)
    replicates = [f"r{i + 1}" for i in range(n_replicates)]
    shape = (n_patients, len(cultures), n_replicates, len(treatments))
    codes = np.indices(shape).reshape(len(shape), -1)
    design = pd.DataFrame(
        {
            "patient": categorical(codes[0], patients),
            "culture": categorical(codes[1], cultures),
            "replicate": categorical(codes[2], replicates),
            "treatment": categorical(codes[3], treatments),
        }
    )
    design["name"] = [
        f"{p}_{c}_{r}_{t}"
        for p, c, r, t in zip(*(design[col].astype(str) for col in design.columns), strict=True)
    ]
    return design


@dataclass(frozen=True)
class _Context:
    """Population-level quantities the cells depend on, one entry per population."""

    stem: np.ndarray
    mapk_fraction: np.ndarray
    fibroblast: np.ndarray
    coculture: np.ndarray
    #: 0/1 indicator ``(n_markers,)`` of each programme's markers
    u: dict[str, np.ndarray]


def _context(traits: pd.DataFrame, design: pd.DataFrame, programs: list[str]) -> _Context:
    """Patient traits per population, and the fibroblast fraction :math:`f_{pc}` of each."""
    patient = design["patient"].cat.codes.to_numpy()
    culture = design["culture"].astype(str).to_numpy()
    phi = traits["fibroblast_fraction"].to_numpy()[patient]
    return _Context(
        stem=traits["stem_fraction"].to_numpy()[patient],
        mapk_fraction=traits["mapk_fraction"].to_numpy()[patient],
        fibroblast=np.select([culture == "PDO", culture == "fibroblasts"], [0.0, 1.0], phi),
        coculture=culture == "co-culture",
        u={program: (np.array(programs) == program).astype(float) for program in PROGRAMS},
    )


def _treatment_shifts(context: _Context, treatment: np.ndarray) -> np.ndarray:
    """Shift of each population and cell type, ``(n_populations, n_cell_types, n_markers)``."""
    n_markers = len(next(iter(context.u.values())))
    shifts = np.zeros((len(treatment), len(CELL_TYPES), n_markers))
    for name, drug in _DRUGS.items():
        rows = treatment == name
        shifts[rows] = drug(context)[rows]
    return shifts


def _per_type(tumour: np.ndarray, fibroblast: np.ndarray) -> np.ndarray:
    """Stack ``(n_populations, n_markers)`` shifts of tumour cells (both kinds) and fibroblasts."""
    return np.stack([tumour, tumour, fibroblast], axis=1)


def _drug_a(ctx: _Context) -> np.ndarray:
    """Apoptosis up, proliferation down in tumour cells; weaker with more stem-like cells."""
    kappa = np.where(ctx.coculture, A_COCULTURE, 1.0)
    size = A_SIZE * kappa * (1.0 - 1.0 / (1.0 + np.exp(-A_SLOPE * (ctx.stem - A_MIDPOINT))))
    tumour = size[:, None] * (ctx.u["apoptosis"] - 0.5 * ctx.u["proliferation"])
    return _per_type(tumour, np.broadcast_to(A_FIBROBLAST * ctx.u["apoptosis"], tumour.shape))


def _drug_b(ctx: _Context) -> np.ndarray:
    """MAPK and proliferation shift whose sign flips with the population's MAPK-active share."""
    size = -B_SIZE * (ctx.mapk_fraction - B_MIDPOINT)
    shift = size[:, None] * (ctx.u["mapk"] + B_PROLIFERATION * ctx.u["proliferation"])
    return _per_type(shift, shift)


def _drug_c(ctx: _Context) -> np.ndarray:
    """Tumour cells differentiate and fibroblasts deactivate, both more with more fibroblasts."""
    f = ctx.fibroblast[:, None]
    tumour = C_SIZE * f * (ctx.u["epithelial"] - 0.5 * ctx.u["stem"])
    return _per_type(tumour, -C_SIZE * f * ctx.u["mesenchymal"])


_DRUGS: dict[str, Callable[[_Context], np.ndarray]] = {
    "drug_A": _drug_a,
    "drug_B": _drug_b,
    "drug_C": _drug_c,
}


def _sample_cells(
    context: _Context,
    replicate: np.ndarray,
    means: np.ndarray,
    shifts: np.ndarray,
    n_cells: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw cell types ``(n,)``, MAPK states ``(n,)`` and markers ``(n, n_markers)``.

    ``replicate`` ``(n_populations,)`` numbers the (patient, culture, replicate) of each
    population, whose offset its control and treated populations share.
    """
    n_populations, n_markers = len(replicate), means.shape[1]
    tumour, stem, active = 1.0 - context.fibroblast, context.stem, context.mapk_fraction
    types = np.column_stack([tumour * stem, tumour * (1.0 - stem), context.fibroblast])
    # joint (type, MAPK state) proportions; code = 2 * type + state
    probs = (types[:, :, None] * np.column_stack([1.0 - active, active])[:, None, :]).reshape(
        n_populations, -1
    )
    codes = rng.permuted(_composition(probs, n_cells), axis=1)
    cell_types, mapk_active = np.divmod(codes, 2)
    offsets = rng.normal(0.0, REPLICATE_SD, size=(replicate.max() + 1, n_markers))
    values = (
        means[cell_types]
        + MAPK_ACTIVE * mapk_active[:, :, None] * context.u["mapk"]
        + offsets[replicate][:, None, :]
        + shifts[np.arange(n_populations)[:, None], cell_types]
        + rng.normal(0.0, CELL_SD, size=(n_populations, n_cells, n_markers))
    )
    values = np.maximum(values, 0.0).reshape(-1, n_markers)
    return cell_types.ravel(), mapk_active.ravel(), values


def _composition(probs: np.ndarray, n_cells: int) -> np.ndarray:
    """Cell types ``(n_populations, n_cells)`` in exact proportions ``probs`` (sorted).

    Counts are ``n_cells * probs`` rounded by largest remainder, so that a population's
    composition (and the treatment effect on its mean) carries no sampling noise.
    """
    raw = n_cells * probs
    counts = np.floor(raw).astype(np.int64)
    deficit = n_cells - counts.sum(axis=1, keepdims=True)
    rank = np.argsort(np.argsort(counts - raw, axis=1, kind="stable"), axis=1)
    counts += rank < deficit
    bounds = np.cumsum(counts, axis=1)[:, :-1]
    return (np.arange(n_cells)[None, :, None] >= bounds[:, None, :]).sum(axis=2)


def _check_screen_args(
    n_patients: int,
    cultures: Sequence[str],
    n_replicates: int,
    treatments: Sequence[str],
    n_cells: int,
    n_markers: int,
) -> tuple[list[str], list[str]]:
    """Validate the arguments of :func:`organoid_screen`; return cultures and treatments."""
    check_positive_int("n_patients", n_patients)
    check_positive_int("n_replicates", n_replicates)
    check_positive_int("n_cells", n_cells)
    n_program_markers = sum(map(len, PROGRAMS.values()))
    check_positive_int("n_markers", n_markers, minimum=n_program_markers)
    cultures = check_unique_subset("cultures", cultures, CULTURES)
    treatments = check_unique_subset("treatments", treatments, TREATMENTS)
    return cultures, treatments
