"""`MetaFlowModel`: a trained MFM / CGFM / FM model with its config, embedding and transport."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Literal

import numpy as np
import torch
from torch import nn

from .._checks import check_number
from .._utils import RandomState, as_numpy_rng, as_torch_generator
from ..flows import InterpolantDrift, MetaFlowObjective, integrate, integrate_path, integrate_sde
from ..flows.interpolants import diffusion
from ..models import GCNConditioner, MetaFlowNet, NullConditioner, OneHotConditioner
from ._base import BaseModel, register

Method = Literal["mfm", "fm", "cgfm"]
METHODS = ("mfm", "fm", "cgfm")
SOURCES = ("control", "noise")
COUPLINGS = ("independent", "ot", "paired")
STANDARDIZE = ("global", "feature", "none")


@dataclass(frozen=True)
class MetaFlowConfig:
    r"""Everything needed to rebuild a :class:`MetaFlowModel` (plain types, JSON-ready).

    Parameters
    ----------
    method
        ``"mfm"`` (kNN-GCN population embedding), ``"cgfm"`` (one-hot population) or
        ``"fm"`` (no population information).
    source
        ``"control"`` or ``"noise"`` (the "w/N" variants).
    coupling
        ``"independent"``, ``"ot"`` (exact minibatch OT) or ``"paired"`` (control and
        treated cells correspond in order).
    treatments
        Treatment names, in one-hot order.
    train_sources
        Control populations seen in training (CGFM one-hot order).
    knn
        Neighbours per cell of the GCN's kNN graph.
    gcn_hidden
        Width of the GCN layers.
    gcn_layers
        Number of GCN layers.
    embedding_dim
        Dimension of the population embedding h.
    normalize_embedding
        L2-normalise h.
    hidden
        Width of the velocity MLP.
    n_layers
        Depth of the velocity MLP.
    time_features
        Size of the time embedding.
    residual
        Residual velocity MLP.
    activation
        Activation of the velocity MLP.
    cells_per_population
        Cells drawn per population in training, and the embedding's sample size.
    use_rep
        Feature representation (``"X"``, a layer or an obsm key).
    sample_key
        Sample columns of the training data.
    condition_key
        Condition column of the training data.
    control
        Control label.
    standardize
        How features were scaled before training (see :func:`mfm.tl.fit`): ``"global"``,
        ``"feature"`` or ``"none"``.
    feature_mean
        Per-feature mean subtracted before the network (empty: none).
    feature_scale
        Per-feature divisor applied after centring (empty: none).
    population_dropout
        Probability of training a pair without its population embedding (see
        :class:`mfm.flows.MetaFlowObjective`).
    population_weight
        Weight :math:`\lambda` of the population embedding in the predicted velocity (see
        :class:`mfm.models.MetaFlowNet`): 1 uses the population-conditioned velocity, 0 the
        population-free one.
    interpolant_sigma
        Noise scale :math:`\sigma` of the stochastic interpolant the model was trained on
        (:mod:`mfm.flows.interpolants`); 0: the straight path. Above 0 the network has a
        denoiser head, so it can also sample with an SDE.

    Examples
    --------
    >>> model = mfm.tl.fit(adata, method="mfm", knn=10, max_steps=2000)
    >>> model.config.method, model.config.knn
    ('mfm', 10)
    """

    method: Method = "mfm"
    source: Literal["control", "noise"] = "control"
    coupling: Literal["independent", "ot", "paired"] = "independent"
    treatments: list[str] = field(default_factory=list)
    train_sources: list[str] = field(default_factory=list)
    knn: int = 10
    gcn_hidden: int = 64
    gcn_layers: int = 3
    embedding_dim: int = 32
    normalize_embedding: bool = True
    hidden: int = 256
    n_layers: int = 4
    time_features: int = 32
    residual: bool = True
    activation: str = "silu"
    cells_per_population: int = 256
    use_rep: str = "X"
    sample_key: list[str] = field(default_factory=list)
    condition_key: str = "condition"
    control: str = "control"
    standardize: Literal["global", "feature", "none"] = "none"
    feature_mean: list[float] = field(default_factory=list)
    feature_scale: list[float] = field(default_factory=list)
    population_dropout: float = 0.0
    population_weight: float = 1.0
    interpolant_sigma: float = 0.0


@register
class MetaFlowModel(BaseModel):
    """A trained population-conditioned flow (returned by :func:`mfm.tl.fit`).

    Parameters
    ----------
    config
        The model's :class:`MetaFlowConfig`.
    features
        Feature names of the training data.
    device
        Where the module lives.
    seed
        Seed of the weight initialisation.

    Examples
    --------
    Made by :func:`mfm.tl.fit`, reloaded by :func:`mfm.tl.load`:

    >>> model = mfm.tl.fit(adata, method="mfm", max_steps=2000)
    >>> model.label, model.features[:3]
    >>> h = model.embed(control_cells, population="P07|PDO|r1|control")
    >>> treated = model.transport(control_cells, h, "drug_A")
    """

    config_class = MetaFlowConfig
    legacy_defaults = {"interpolant_sigma": 0.0}
    config: MetaFlowConfig
    module: MetaFlowNet

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        self._mean = self._scale = None
        if c.feature_mean:
            self._mean = torch.tensor(c.feature_mean, dtype=torch.float32, device=self.device)
            self._scale = torch.tensor(c.feature_scale, dtype=torch.float32, device=self.device)

    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise cells ``(..., d)`` as in training (identity without standardisation)."""
        return x if self._mean is None else (x - self._mean) / self._scale

    def to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`to_model_space`."""
        return x if self._mean is None else x * self._scale + self._mean

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, d)`` N(0, I) draws in the model's space, returned in data space ("w/N")."""
        z = torch.as_tensor(rng.standard_normal((n, len(self.features))), dtype=torch.float32)
        return self.to_data_space(z.to(self.device)).cpu().numpy()

    @property
    def label(self) -> str:
        """Method name as in the MFM paper's tables, e.g. ``"MFM"`` or ``"CGFM w/N"``."""
        name = self.config.method.upper()
        return f"{name} w/N" if self.config.source == "noise" else name

    def summary(self) -> str:
        """Method and number of treatments, e.g. ``"MFM, 2 treatments"``."""
        n = len(self.config.treatments)
        return f"{self.label}, {n} treatment{'s' * (n != 1)}"

    def build_module(self) -> nn.Module:
        """Build the conditioner and velocity network from the config."""
        c, d = self.config, len(self.features)
        if c.method == "mfm":
            conditioner = GCNConditioner(
                d,
                hidden=c.gcn_hidden,
                n_layers=c.gcn_layers,
                out_features=c.embedding_dim,
                knn=c.knn,
                normalize=c.normalize_embedding,
            )
        elif c.method == "cgfm":
            conditioner = OneHotConditioner(len(c.train_sources))
        else:
            conditioner = NullConditioner()
        return MetaFlowNet(
            conditioner,
            d,
            len(c.treatments),
            hidden=c.hidden,
            n_layers=c.n_layers,
            time_features=c.time_features,
            residual=c.residual,
            activation=c.activation,
            population_weight=c.population_weight,
            denoiser=c.interpolant_sigma > 0,
        )

    def objective(self) -> MetaFlowObjective:
        """The training loss module around ``self.module`` (shares its parameters)."""
        c = self.config
        return MetaFlowObjective(
            self.module,
            source=c.source,
            coupling=c.coupling,
            population_dropout=c.population_dropout,
            interpolant_sigma=c.interpolant_sigma,
        )

    def set_population_weight(self, weight: float) -> None:
        """Use ``weight`` as the population weight (lambda) from now on (config and network)."""
        self.config = replace(self.config, population_weight=float(weight))
        self.module.population_weight = float(weight)

    def population_code(self, population: str) -> int:
        """CGFM code of a control population (``-1`` when unseen in training)."""
        sources = self.config.train_sources
        return sources.index(population) if population in sources else -1

    def treatment_code(self, treatment: str) -> int:
        """One-hot index of ``treatment``; `ValueError` for treatments unseen in training."""
        if treatment not in self.config.treatments:
            known = self.config.treatments
            msg = f"Treatment {treatment!r} was not seen in training; known: {known}."
            raise ValueError(msg)
        return self.config.treatments.index(treatment)

    @torch.no_grad()
    def embed(
        self, cells: np.ndarray, population: str, random_state: RandomState = 0
    ) -> np.ndarray:
        """Embedding h of a control population.

        Parameters
        ----------
        cells
            ``(n, d)`` control cells; ``cells_per_population`` of them are drawn (with
            ``random_state``) exactly as in training: without replacement from larger
            populations, with replacement from smaller ones.
        population
            Population id (used by CGFM only).
        random_state
            Seed of the subsample.

        Returns
        -------
        ``(e,)`` embedding (empty for FM).

        See Also
        --------
        embed_populations : many populations in one batched pass.
        """
        return self.embed_populations([cells], [population], random_state)[0]

    @torch.no_grad()
    def embed_populations(
        self,
        cells: Sequence[np.ndarray],
        populations: Sequence[str],
        random_state: RandomState = 0,
        *,
        batch_size: int = 64,
    ) -> np.ndarray:
        """Embeddings h of many control populations, ``batch_size`` populations per GCN pass.

        Each population's subsample is drawn as by :meth:`embed` (the same draw for the
        same ``random_state``), so the result equals one :meth:`embed` call per population.

        Parameters
        ----------
        cells
            ``B`` arrays ``(n_i, d)`` of control cells.
        populations
            The ``B`` population ids (used by CGFM only).
        random_state
            Seed of every population's subsample.
        batch_size
            Populations embedded together.

        Returns
        -------
        ``(B, e)`` embeddings (``e = 0`` for FM).
        """
        n = self.config.cells_per_population
        drawn = []
        for x in cells:
            if len(x) != n:
                x = x[as_numpy_rng(random_state).choice(len(x), n, replace=len(x) < n)]
            drawn.append(np.asarray(x, dtype=np.float32))
        codes = [self.population_code(p) for p in populations]
        self.module.eval()
        out = []
        for start in range(0, len(drawn), batch_size):
            block = torch.as_tensor(np.stack(drawn[start : start + batch_size]), device=self.device)
            code = torch.tensor(codes[start : start + batch_size], device=self.device)
            out.append(self.module.embed(self.to_model_space(block), code).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    @torch.no_grad()
    def transport(
        self,
        x0: np.ndarray,
        embedding: np.ndarray,
        treatment: str,
        *,
        solver: str = "dopri5",
        n_steps: int | None = None,
        atol: float = 1e-5,
        rtol: float = 1e-5,
        chunk_size: int = 8192,
    ) -> np.ndarray:
        """Integrate cells ``x0 (n, d)`` from t=0 to 1 under ``(embedding, treatment)``.

        Parameters
        ----------
        x0
            ``(n, d)`` starting cells (control cells, or noise for "w/N" models).
        embedding
            ``(e,)`` population embedding from :meth:`embed`.
        treatment
            Treatment name.
        solver
            torchdiffeq method: ``"dopri5"`` (adaptive), ``"euler"``, ``"midpoint"``, ``"rk4"``.
        n_steps
            Steps of the fixed-step solvers.
        atol
            Absolute tolerance of dopri5.
        rtol
            Relative tolerance of dopri5.
        chunk_size
            Cells integrated at once.

        Returns
        -------
        ``(n, d)`` predicted cells.

        See Also
        --------
        transport_populations : many populations in one batched solve.
        """
        return self.transport_populations(
            [x0], np.asarray(embedding)[None], [treatment], solver=solver, n_steps=n_steps,
            atol=atol, rtol=rtol, chunk_size=chunk_size,
        )[0]  # fmt: skip

    @torch.no_grad()
    def transport_populations(
        self,
        x0: Sequence[np.ndarray],
        embeddings: np.ndarray,
        treatments: Sequence[str],
        *,
        solver: str = "dopri5",
        n_steps: int | None = None,
        atol: float = 1e-5,
        rtol: float = 1e-5,
        chunk_size: int = 8192,
        sde_eps: float = 0.0,
        sde_steps: int = 100,
        generator: torch.Generator | None = None,
    ) -> list[np.ndarray]:
        r"""Integrate the cells of many populations together, each under its own condition.

        Populations are grouped, in order, into solves of about ``chunk_size`` cells: the
        cells of a group go through the network together, each row with its population's
        condition (embedding + treatment), so small populations no longer cost one solve
        each. Rows are independent, so fixed-step results do not depend on the grouping;
        dopri5 adapts one step size to a whole group (results agree to the tolerances).

        With ``sde_eps`` :math:`\epsilon > 0` (models fitted with ``interpolant_sigma > 0``),
        the cells follow the SDE :math:`dX = (b + \epsilon(t) s)\,dt + \sqrt{2 \epsilon(t)}
        \,dW`, :math:`\epsilon(t) = 4 \epsilon t (1 - t)`, by ``sde_steps`` Euler-Maruyama
        steps (:func:`mfm.flows.integrate_sde`, :mod:`mfm.flows.interpolants`) instead of the
        ODE; ``solver``, ``n_steps``, ``atol`` and ``rtol`` are the ODE's.

        Parameters
        ----------
        x0
            ``B`` arrays ``(n_i, d)`` of starting cells.
        embeddings
            ``(B, e)`` population embeddings (from :meth:`embed_populations`).
        treatments
            The ``B`` treatment names.
        solver
            ``"dopri5"`` (adaptive), ``"euler"``, ``"midpoint"`` or ``"rk4"``.
        n_steps
            Steps of the fixed-step solvers.
        atol
            Absolute tolerance of dopri5.
        rtol
            Relative tolerance of dopri5.
        chunk_size
            Cells integrated at once.
        sde_eps
            :math:`\epsilon \ge 0` of the SDE; 0: the ODE.
        sde_steps
            Euler-Maruyama steps of the SDE.
        generator
            Source of the SDE's noise (on the model's device); ``None``: seeded with 0.

        Returns
        -------
        ``B`` arrays ``(n_i, d)`` of predicted cells.
        """
        self.check_sde(sde_eps)
        if sde_eps == 0:
            solve = partial(
                integrate, self.module, method=solver, n_steps=n_steps, atol=atol, rtol=rtol,
                chunk_size=chunk_size,
            )  # fmt: skip
        else:
            solve = self._sde_solver(sde_eps, sde_steps, generator, chunk_size)
        codes = torch.tensor([self.treatment_code(t) for t in treatments], device=self.device)
        h = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32, device=self.device)
        conditions = self.module.condition(h.reshape(len(codes), -1), codes)
        self.module.eval()
        sizes = [len(x) for x in x0]
        out: list[np.ndarray] = []
        for group in groups_of_rows(sizes, chunk_size):
            x = torch.as_tensor(
                np.concatenate([x0[i] for i in group]), dtype=torch.float32, device=self.device
            )
            rows = torch.tensor([sizes[i] for i in group], device=self.device)
            condition = conditions[group[0] : group[-1] + 1].repeat_interleave(rows, dim=0)
            y = solve(self.to_model_space(x), condition)
            y = self.to_data_space(y).cpu().numpy()
            out += np.split(y, np.cumsum([sizes[i] for i in group])[:-1])
        return out

    def check_sde(self, sde_eps: float) -> None:
        r"""Raise a `ValueError` unless the model can sample the SDE of ``sde_eps``.

        Parameters
        ----------
        sde_eps
            :math:`\epsilon \ge 0`; above 0 the model needs the score, i.e. a fit with
            ``interpolant_sigma > 0``.
        """
        check_number("sde_eps", sde_eps, closed="left")
        if sde_eps > 0 and self.config.interpolant_sigma == 0:
            msg = (
                f"`sde_eps={sde_eps}` samples with the score, which only a model fitted with "
                "`interpolant_sigma > 0` learns, and this model was fitted with "
                "`interpolant_sigma=0`: refit with `mfm.tl.fit(..., interpolant_sigma=0.1)` "
                "(for example), or predict with `sde_eps=0` (the ODE)."
            )
            raise ValueError(msg)

    def _sde_solver(
        self, eps: float, n_steps: int, generator: torch.Generator | None, chunk_size: int
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``solve(x (n, d), condition (n, c))``: the SDE of ``eps`` from t = 0 to 1."""
        if generator is None:
            generator = as_torch_generator(0, self.device)
        drift = InterpolantDrift(self.module.heads, sigma=self.config.interpolant_sigma, eps=eps)
        return partial(
            integrate_sde, drift, diffusion=partial(diffusion, eps=eps), n_steps=n_steps,
            generator=generator, chunk_size=chunk_size,
        )  # fmt: skip

    @torch.no_grad()
    def transport_path(
        self,
        x0: np.ndarray,
        embedding: np.ndarray,
        treatment: str,
        *,
        times: np.ndarray,
        solver: str = "dopri5",
        n_steps: int | None = None,
        atol: float = 1e-5,
        rtol: float = 1e-5,
    ) -> np.ndarray:
        """The states of cells ``x0 (n, d)`` along the flow, at each of ``times`` (from 0).

        Same flow as :meth:`transport`, integrated by `mfm.flows.integrate_path`.

        Parameters
        ----------
        x0
            ``(n, d)`` starting cells at ``times[0]``.
        embedding
            ``(e,)`` population embedding from :meth:`embed`.
        treatment
            Treatment name.
        times
            Increasing times in [0, 1], e.g. ``np.linspace(0, 1, 20)``.
        solver
            torchdiffeq method, as in :meth:`transport`.
        n_steps
            Steps of the fixed-step solvers.
        atol
            Absolute tolerance of dopri5.
        rtol
            Relative tolerance of dopri5.

        Returns
        -------
        ``(len(times), n, d)`` states in data space; ``out[0]`` is ``x0``.
        """
        h = torch.as_tensor(embedding, dtype=torch.float32, device=self.device)[None]
        code = torch.tensor([self.treatment_code(treatment)], device=self.device)
        condition = self.module.condition(h, code).expand(len(x0), -1)
        x = self.to_model_space(torch.as_tensor(x0, dtype=torch.float32, device=self.device))
        self.module.eval()
        out = integrate_path(
            self.module,
            x,
            condition,
            times=[float(t) for t in times],
            method=solver,
            n_steps=n_steps,
            atol=atol,
            rtol=rtol,
        )
        return self.to_data_space(out).cpu().numpy()


def groups_of_rows(sizes: Sequence[int], chunk_size: int) -> list[list[int]]:
    """Consecutive indices grouped so each group has about ``chunk_size`` rows (at least one)."""
    groups: list[list[int]] = [[]]
    total = 0
    for i, n in enumerate(sizes):
        if groups[-1] and total + n > chunk_size:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += n
    return groups if groups[0] else []
