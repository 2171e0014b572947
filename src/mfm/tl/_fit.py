"""`mfm.tl.fit`: train Meta Flow Matching (or FM / CGFM) on the populations of an AnnData."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys as K
from .._anndata import make_actual
from .._checks import check_choice, check_number, check_positive_int, check_positive_ints
from .._utils import Device, as_torch_generator, check_training_options
from ..data import PopulationPairs, PopulationSampler, feature_statistics
from ..flows import MetaFlowObjective
from ..train import TrainSettings, rank_and_world
from ._io import embedding_frame, population_pairs, trained_treatments
from ._model import COUPLINGS, METHODS, SOURCES, STANDARDIZE, MetaFlowConfig, MetaFlowModel
from ._trainer import check_checkpoint_options, fit_params, train_model

logger = logging.getLogger(__name__)


def fit(
    adata: AnnData,
    *,
    method: str = "mfm",
    source: str = "control",
    coupling: str = "independent",
    knn: int = 10,
    embedding_dim: int = 32,
    gcn_hidden: int = 64,
    gcn_layers: int = 3,
    hidden: int = 256,
    n_layers: int = 4,
    batch_populations: int = 8,
    cells_per_population: int = 256,
    max_steps: int = 2000,
    lr: float | Literal["auto"] = "auto",
    weight_decay: float = 0.0,
    standardize: str = "global",
    population_dropout: float | Literal["auto"] = "auto",
    population_weight: float | Literal["auto"] = "auto",
    interpolant_sigma: float = 0.0,
    val_fraction: float = 0.15,
    restore_best: bool = True,
    early_stopping: int | None = None,
    val_every: int = 100,
    checkpoint_every: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    device: Device = "auto",
    random_state: int = 0,
    progress: bool = True,
    key_added: str = "mfm",
) -> MetaFlowModel:
    r"""Train a population-conditioned flow from control to treated populations.

    Each step draws ``batch_populations`` training pairs (control population, treated
    population of the same sample) and ``cells_per_population`` cells of each, embeds the
    control cells, and regresses the velocity of the straight path between coupled
    control and treated cells (see :class:`mfm.flows.MetaFlowObjective`), or of the
    stochastic interpolant when ``interpolant_sigma > 0``.

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`mfm.pp.populations` (and :func:`mfm.pp.split`;
        pairs in the ``"train"`` split are trained on, ``"val"`` pairs give the
        validation loss).
    method
        ``"mfm"``: Meta Flow Matching, conditioned on a kNN-GCN embedding of the control
        population, trained jointly; ``"cgfm"``: conditioned on a one-hot code of the
        training population; ``"fm"``: conditioned on the treatment only.
    source
        ``"control"``: transport control cells; ``"noise"``: start from N(0, I) (the
        paper's "w/N" variants; MFM still embeds the control population).
    coupling
        How the drawn control and treated cells are matched: ``"independent"``,
        ``"ot"`` (exact minibatch OT within each population) or ``"paired"`` (for data
        whose control and treated populations have equal sizes and correspond cell by cell,
        in order, e.g. simulated or the letters data: the same positions of both are drawn,
        so each control cell travels to its own treated cell).
    knn
        Neighbours per cell in the GCN's kNN graph (MFM); 0 means no edges.
    embedding_dim
        Dimension of the population embedding h (MFM).
    gcn_hidden
        Width of the GCN layers (MFM).
    gcn_layers
        Number of GCN layers (MFM).
    hidden
        Width of the velocity MLP.
    n_layers
        Number of hidden layers of the velocity MLP.
    batch_populations
        Population pairs per step.
    cells_per_population
        Cells drawn per population per step (with replacement for smaller populations).
    max_steps
        Training steps.
    lr
        Peak learning rate (AdamW, warm-up then cosine decay). ``"auto"``: ``1e-2`` with at
        least 64 training pairs, ``1e-3`` with fewer, where a larger step fits the noise of
        the few populations (measured on BCR-XL held-out patients, the letters and the
        organoid simulator; see ``docs/methods.md``).
    weight_decay
        AdamW weight decay.
    standardize
        Scale the features before the networks see them, with statistics of the training
        control cells stored in the model and undone at prediction: ``"global"`` centres
        each feature and divides all by one scale (the root mean feature variance), so the
        geometry is kept and results do not depend on the units of the data;
        ``"feature"`` divides each feature by its own standard deviation; ``"none"``.
    population_dropout
        Probability of training a pair without its population embedding (MFM, CGFM), so that
        the network also learns the velocity without population information. ``"auto"``:
        0.5 with fewer than 20 training control populations, where the embedding has too few
        examples to generalise from, else 0 (on the letters, 240 populations, a dropout of 0.5
        slowed training: W1 of the training letters 0.257 instead of 0.199 after 2000 steps).
    population_weight
        Weight :math:`\lambda` of the population embedding in the predicted velocity,
        :math:`v(x, t \mid 0, c) + \lambda (v(x, t \mid h, c) - v(x, t \mid 0, c))`: 1
        uses the population-conditioned velocity alone, 0 ignores the population. ``"auto"``:
        with validation populations, the :math:`\lambda` in [0, 1] of the lowest validation
        loss (a least-squares fit, in closed form); without (fewer than 20 training control
        populations), 0.25, which beat 0 (FM), 0.5, 0.75 and 1 on BCR-XL patients held out
        from two training donors (``docs/methods.md``). Needs ``population_dropout > 0`` unless 1.
    interpolant_sigma
        Noise :math:`\sigma \ge 0` of the stochastic interpolant
        :math:`x_t = (1 - t) x_0 + t x_1 + \sigma \sqrt{t (1 - t)}\, z`,
        :math:`z \sim N(0, I)` (Albergo & Vanden-Eijnden; :mod:`mfm.flows.interpolants`).
        Above 0, the velocity network also learns a denoiser, hence the score, and
        :func:`mfm.tl.predict` can sample with an SDE (``sde_eps``). 0 (the default): the
        straight path, trained exactly as without the option.
    val_fraction
        When the data has no ``"val"`` pairs (see :func:`mfm.pp.split`) and ``restore_best``
        or ``early_stopping`` is set, this fraction of the training control populations is
        held out, with their treated pairs, for the validation loss, provided there are at
        least 20 of them. With fewer, nothing is held out and the last weights are kept:
        on few-donor BCR-XL folds a held-out share of populations or of cells chose early,
        under-trained weights and lost to training on everything (``docs/methods.md``).
        0 holds nothing out.
    restore_best
        Keep the weights of the lowest validation loss (checked every ``val_every`` steps)
        instead of the last ones; the history marks the kept row (``kept``).
    early_stopping
        Stop after this many validation checks without improvement (``None``: never).
    val_every
        Steps between history rows and validation losses.
    checkpoint_every
        Save the whole training state (weights, optimiser, schedule, history, random
        states) to ``checkpoint_dir`` every this many steps (``None``: never).
    checkpoint_dir
        Folder of the checkpoints.
    resume
        Continue an interrupted run from the checkpoint in ``checkpoint_dir`` (called with
        the same data and options): the same total steps, a continuous history and, on the
        CPU, the same model as an uninterrupted run. Without a checkpoint there, training
        starts from the beginning, with a warning.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    random_state
        Seed of the initialisation and of every draw; same seed, same model on CPU.
    progress
        Show a progress bar with the loss.
    key_added
        Key of the populations written by :func:`mfm.pp.populations`.

    Returns
    -------
    The trained :class:`~mfm.tl.MetaFlowModel`. Also sets

    - ``adata.uns[key_added]['history']``: DataFrame of method, step, train/val loss, lr,
      kept (the row whose weights the model holds) (rows of earlier fits of other methods
      are kept, so ``mfm.pl.loss`` compares them);
    - ``adata.uns[key_added]['params']['fit']``: the fit parameters, with ``kept_step``,
      ``validation`` (``"split"``, ``"populations"`` or ``"none"``), the resolved
      ``population_dropout`` and ``population_weight``, and ``population_weight_rule``
      (``"validation"``, ``"few populations"``, ``"given"`` or ``"fixed"``);
    - ``adata.uns[key_added]['population_embedding']``: DataFrame (control population x
      embedding dimension) of h (MFM and CGFM).

    Raises
    ------
    ~mfm.train.NonFiniteLossError
        When the training loss becomes NaN or infinite: training stops at that step, and
        the error's ``model`` holds the weights of the step before.

    Examples
    --------
    >>> model = mfm.tl.fit(adata, method="mfm", knn=10, max_steps=2000)
    """
    _check_options(
        method, source, coupling, knn, batch_populations, cells_per_population, max_steps
    )
    sizes = {"embedding_dim": embedding_dim, "gcn_hidden": gcn_hidden, "gcn_layers": gcn_layers}
    check_positive_ints(**sizes, hidden=hidden, n_layers=n_layers)
    check_training_options(
        lr=1e-3 if lr == "auto" else lr,  # "auto" is resolved once the pairs are known
        val_every=val_every,
        random_state=random_state,
        device=device,
    )
    _check_training_extras(
        standardize, val_fraction, early_stopping, checkpoint_every, checkpoint_dir, resume
    )
    _check_population_options(population_dropout, population_weight)
    check_number("interpolant_sigma", interpolant_sigma, closed="left")
    keys = K.Keys(key_added)
    make_actual(adata)
    pairs, table, features = population_pairs(adata, keys, trained_treatments(adata, keys))
    split = table[K.SPLIT].astype(str).to_numpy()
    train_pairs = pairs.treated(np.flatnonzero(split == K.TRAIN))
    val_pairs = pairs.treated(np.flatnonzero(split == K.VAL))
    if len(train_pairs) == 0:
        msg = "No treated population in the 'train' split; check `mfm.pp.split`."
        raise ValueError(msg)
    if coupling == "paired":
        pairs.check_paired(np.concatenate([train_pairs, val_pairs]))
    n_controls = len(np.unique(pairs.control[train_pairs]))  # training control populations
    wants_val = restore_best or early_stopping is not None
    holdout = _holdout(
        pairs, train_pairs, val_pairs, val_fraction if wants_val else 0.0, random_state
    )

    params = adata.uns[keys.uns][keys.params]
    mean, scale = feature_statistics(pairs, holdout.train_pairs, standardize)
    config = MetaFlowConfig(
        method=method,
        source=source,
        coupling=coupling,
        treatments=pairs.treatments,
        train_sources=sorted({pairs.names[i] for i in pairs.control[holdout.train_pairs]}),
        knn=knn,
        gcn_hidden=gcn_hidden,
        gcn_layers=gcn_layers,
        embedding_dim=embedding_dim,
        hidden=hidden,
        n_layers=n_layers,
        cells_per_population=cells_per_population,
        use_rep=params[K.USE_REP],
        sample_key=list(params[K.SAMPLE_KEY]),
        condition_key=params[K.CONDITION_KEY],
        control=params[K.CONTROL],
        standardize=standardize,
        feature_mean=mean,
        feature_scale=scale,
        population_dropout=resolve_population_dropout(population_dropout, method, n_controls),
        interpolant_sigma=float(interpolant_sigma),
    )
    if method != "fm":
        _check_weight_needs_dropout(population_weight, config.population_dropout)
    model = MetaFlowModel(config, features, device=device, seed=random_state)
    logger.info(
        "training %s on %d population pairs on %s (validation: %s)",
        model.label,
        len(holdout.train_pairs),
        model.device,
        holdout.kind,
    )
    _warn_if_few_populations(method, n_controls)
    sampler = PopulationSampler(
        pairs,
        np.array([model.population_code(name) for name in pairs.names]),
        batch_populations=batch_populations,
        cells_per_population=cells_per_population,
        paired=coupling == "paired",
        to_model_space=model.to_model_space,
        device=model.device,
        seed=random_state,
        rank=rank_and_world()[0],
    )
    settings = TrainSettings(
        max_steps=max_steps,
        lr=resolve_lr(lr, len(holdout.train_pairs)),
        weight_decay=weight_decay,
        val_every=val_every,
        progress=progress,
        restore_best=restore_best,
        early_stopping=early_stopping,
    )
    validate = None
    if len(holdout.val_pairs):
        validate = sampler.validation(holdout.val_pairs)  # own fixed draws: no training state
    history = train_model(
        model,
        sampler,
        lambda: sampler.batch(holdout.train_pairs),
        settings,
        validate=validate,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
    kept_step = int(history.loc[history[K.KEPT], K.STEP].iloc[0])
    weight_rule = _set_population_weight(model, population_weight, sampler, holdout.val_pairs)

    embedding = population_embedding(model, pairs, np.unique(pairs.control), random_state)
    adata.uns[keys.uns][keys.history] = _merge_history(adata, keys, history, model.label)
    adata.uns[keys.uns][keys.params][K.FIT_PARAMS] = fit_params(
        model.config,
        settings,
        FIT_PARAMS_SKIP,
        batch_populations=batch_populations,
        random_state=random_state,
        kept_step=kept_step,
        validation=holdout.kind,
        val_fraction=val_fraction,
        population_weight_rule=weight_rule,
    )
    added = [keys.history, keys.params]
    if embedding is not None:
        adata.uns[keys.uns][keys.population_embedding] = embedding
        added.append(keys.population_embedding)
    logger.info("finished; added uns[%r]%s", keys.uns, added)
    return model


#: Training pairs from which ``lr="auto"`` takes the larger learning rate.
MIN_PAIRS_FOR_LARGE_LR = 64


def resolve_lr(lr: float | str, n_train_pairs: int) -> float:
    """The peak learning rate: ``lr`` itself, or the ``"auto"`` rule of :func:`fit`."""
    if lr == "auto":
        return 1e-2 if n_train_pairs >= MIN_PAIRS_FOR_LARGE_LR else 1e-3
    return float(lr)


def resolve_population_dropout(dropout: float | str, method: str, n_controls: int) -> float:
    """The population dropout: ``dropout`` itself, or the ``"auto"`` rule of :func:`fit`."""
    if method == "fm":
        return 0.0  # no population embedding to drop
    if dropout == "auto":
        return FEW_POPULATIONS_DROPOUT if n_controls < MIN_CONTROLS_FOR_HOLDOUT else 0.0
    return float(dropout)


#: Config entries left out of ``params['fit']`` (data, not options).
FIT_PARAMS_SKIP = {
    "treatments",
    "train_sources",
    K.SAMPLE_KEY,
    K.USE_REP,
    K.CONDITION_KEY,
    K.CONTROL,
    "feature_mean",
    "feature_scale",
}
#: Population dropout of ``population_dropout="auto"`` below ``MIN_CONTROLS_FOR_HOLDOUT``.
FEW_POPULATIONS_DROPOUT = 0.5
#: Population weight of ``population_weight="auto"`` without validation populations.
FEW_POPULATIONS_WEIGHT = 0.25


def _set_population_weight(
    model: MetaFlowModel,
    population_weight: float | str,
    sampler: PopulationSampler,
    val_pairs: np.ndarray,
) -> str:
    """Set the model's population weight; return how it was chosen (for ``params``)."""
    if model.config.method == "fm" or model.config.population_dropout == 0:
        return "fixed"  # no population-free velocity was trained: the weight stays 1
    if population_weight != "auto":
        model.set_population_weight(float(population_weight))
        return "given"
    if len(val_pairs) == 0:
        model.set_population_weight(FEW_POPULATIONS_WEIGHT)
        return "few populations"
    weight = fitted_population_weight(model.objective(), sampler.validation_draws(val_pairs))
    model.set_population_weight(weight)
    logger.info("population weight %.3g (least squares on the validation populations)", weight)
    return "validation"


def fitted_population_weight(
    objective: MetaFlowObjective, draws: list[tuple], repeats: int = 8
) -> float:
    """The population weight in [0, 1] of the lowest loss on ``draws`` (closed form).

    ``repeats`` draws of the times (and pairings) per batch of cells, seeded, so the same
    weights give the same result.
    """
    objective.eval()
    device = draws[0][0].device
    dot = norm = 0.0
    for repeat in range(repeats):
        generator = as_torch_generator(repeat, device)
        for args in draws:
            a, b = objective.population_weight_terms(*args, generator)
            dot, norm = dot + a, norm + b
    return float(np.clip(dot / norm, 0.0, 1.0)) if norm > 0 else 1.0


#: Training control populations needed before some are held out for validation.
MIN_CONTROLS_FOR_HOLDOUT = 20


def _warn_if_few_populations(method: str, n_controls: int) -> None:
    """Say when MFM's embedding has few populations to learn from (and what fit does then)."""
    if method == "mfm" and n_controls < MIN_CONTROLS_FOR_HOLDOUT:
        logger.warning(
            "MFM learns its population embedding from %d training control populations; with "
            "fewer than %d nothing is held out for validation and, at the defaults, the "
            "embedding is dropped for half the pairs in training and weighted 0.25 in "
            "prediction (docs/methods.md, 'Few populations'): compare with method='fm' and "
            "mfm.tl.baseline",
            n_controls,
            MIN_CONTROLS_FOR_HOLDOUT,
        )


@dataclass(frozen=True)
class _Holdout:
    """Training and validation pairs."""

    train_pairs: np.ndarray
    val_pairs: np.ndarray
    kind: str  # "split", "populations" or "none"


def _holdout(
    pairs: PopulationPairs,
    train_pairs: np.ndarray,
    val_pairs: np.ndarray,
    fraction: float,
    random_state: int,
) -> _Holdout:
    """The user's ``"val"`` pairs, else a held-out fraction of the training populations.

    Only with enough training control populations: with few, the validation loss of a
    held-out few (or of held-out cells) picked early, under-trained weights on real data,
    and the data held out were missed by training.
    """
    if len(val_pairs):
        return _Holdout(train_pairs, val_pairs, "split")
    controls = np.unique(pairs.control[train_pairs])
    if fraction == 0 or len(controls) < MIN_CONTROLS_FOR_HOLDOUT:
        if fraction > 0:
            logger.info(
                "no validation: %d training control populations, fewer than the %d needed to "
                "hold some out; the last weights are kept",
                len(controls),
                MIN_CONTROLS_FOR_HOLDOUT,
            )
        return _Holdout(train_pairs, val_pairs, "none")
    rng = np.random.default_rng([random_state, 1])
    held = rng.choice(controls, max(1, round(fraction * len(controls))), replace=False)
    is_val = np.isin(pairs.control[train_pairs], held)
    return _Holdout(train_pairs[~is_val], train_pairs[is_val], "populations")


def population_embedding(
    model: MetaFlowModel,
    pairs: PopulationPairs,
    controls: np.ndarray,
    random_state: int,
) -> pd.DataFrame | None:
    """DataFrame (control population x embedding dim) of h, or None for FM."""
    if model.config.method == "fm":
        return None
    rows = [model.embed(pairs.population_cells(i), pairs.names[i], random_state) for i in controls]
    return embedding_frame([pairs.names[i] for i in controls], rows)


def _merge_history(adata: AnnData, keys: K.Keys, history: pd.DataFrame, label: str) -> pd.DataFrame:
    """Return the history with a ``method`` column, after earlier rows of other methods."""
    history.insert(0, K.METHOD, label)
    previous = adata.uns[keys.uns].get(keys.history)
    if previous is None or K.METHOD not in previous:
        return history
    others = previous[previous[K.METHOD] != label]
    return pd.concat([others, history], ignore_index=True)


def _check_options(
    method: str,
    source: str,
    coupling: str,
    knn: int,
    batch_populations: int,
    cells_per_population: int,
    max_steps: int,
) -> None:
    check_choice("method", method, METHODS)
    check_choice("source", source, SOURCES)
    check_choice("coupling", coupling, COUPLINGS)
    if coupling == "paired" and source == "noise":
        msg = "coupling='paired' matches control to treated cells; it needs source='control'."
        raise ValueError(msg)
    check_positive_int("knn", knn, minimum=0)
    check_positive_int("batch_populations", batch_populations)
    check_positive_int("cells_per_population", cells_per_population, minimum=2)
    check_positive_int("max_steps", max_steps)
    if method == "mfm" and knn >= cells_per_population:
        msg = f"`knn={knn}` must be smaller than `cells_per_population={cells_per_population}`."
        raise ValueError(msg)


def _check_population_options(dropout: float | str, weight: float | str) -> None:
    """Check ``population_dropout`` and ``population_weight`` of :func:`fit`."""
    if dropout != "auto":
        check_number("population_dropout", dropout, low=0.0, high=1.0, closed="left")
    if weight != "auto":
        check_number("population_weight", weight, low=0.0, high=1.0, closed="both")
        if dropout == 0:  # before reading the data; "auto" is checked once it is resolved
            _check_weight_needs_dropout(weight, dropout)


def _check_weight_needs_dropout(weight: float | str, dropout: float) -> None:
    """A population weight below 1 needs the population-free velocity, i.e. a dropout."""
    if weight in ("auto", 1) or dropout > 0:
        return
    msg = (
        f"`population_weight={weight!r}` mixes in the population-free velocity, which only "
        "`population_dropout > 0` trains (`'auto'` gives 0 with 20 or more training control "
        "populations); pass a `population_dropout` or `population_weight=1`."
    )
    raise ValueError(msg)


def _check_training_extras(
    standardize: str,
    val_fraction: float,
    early_stopping: int | None,
    checkpoint_every: int | None,
    checkpoint_dir: str | Path | None,
    resume: bool,
) -> None:
    """Check the scaling, model-selection and checkpoint options of :func:`fit`."""
    check_choice("standardize", standardize, STANDARDIZE)
    check_number("val_fraction", val_fraction, closed="left", high=1.0)
    if early_stopping is not None:
        check_positive_int("early_stopping", early_stopping)
    check_checkpoint_options(checkpoint_every, checkpoint_dir, resume)
