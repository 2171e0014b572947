"""Every `.obs` / `.obsm` / `.uns` name that mfm reads or writes, derived from ``key_added``.

No key string appears anywhere else in the package (checked by ``tests/test_keys.py``): verbs
build a :class:`Keys` (or :class:`NicheKeys`) from their ``key_added`` and use its attributes
and the constants below, which also name the verbs that write each key (for error messages).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Column names of the populations table (``uns[key]['populations']``).
POPULATION = "population"
CONDITION = "condition"
N_CELLS = "n_cells"
SOURCE = "source"
SPLIT = "split"
#: Separator joining sample values and the condition into a population id (``"P1|drugA"``).
ID_SEPARATOR = "|"
#: Columns of the history (``uns[key]['history']``) and metrics (``uns[key]['metrics']``) tables.
STEP, TRAIN_LOSS, VAL_LOSS, LR, KEPT = "step", "train_loss", "val_loss", "lr", "kept"
METHOD = "method"
#: Columns of the populations and metrics tables, which no sample column may be named.
RESERVED_COLUMNS = (POPULATION, CONDITION, N_CELLS, SOURCE, SPLIT, METHOD)
#: Entry of ``uns[key]['params']`` naming the feature representation.
USE_REP = "use_rep"
#: Entries of ``uns[key]['params']`` written by ``pp.populations`` and read by the later verbs.
SAMPLE_KEY, CONDITION_KEY = "sample_key", "condition_key"
CONTROL, MIN_CELLS = "control", "min_cells"
#: Entries of ``uns[key]['params']`` holding the parameters of ``pp.split`` and of the fits.
SPLIT_PARAMS, FIT_PARAMS = "split", "fit"
#: Entries of ``uns[key]['params']`` written by ``pp.niches`` (with ``USE_REP``).
N_NEIGHBORS, SPATIAL_KEY, LIBRARY_KEY = "n_neighbors", "spatial_key", "library_key"
INCLUDE_CENTER, N_OBS = "include_center", "n_obs"
#: Split labels.
TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)


@dataclass(frozen=True)
class Keys:
    """AnnData keys of the population workflow (``pp.populations`` ... ``tl.evaluate``).

    Parameters
    ----------
    key_added
        Prefix chosen by the user (default ``"mfm"``).
    """

    key_added: str = "mfm"

    @property
    def uns(self) -> str:
        """``uns[key]``: dict holding everything below."""
        return self.key_added

    @property
    def obs_population(self) -> str:
        """``obs['{key}_population']``: categorical population id of each cell."""
        return f"{self.key_added}_population"

    @property
    def obs_source(self) -> str:
        """``pred.obs['{key}_source']``: id of the control population a prediction started from."""
        return f"{self.key_added}_source"

    @property
    def obsm_prediction(self) -> str:
        """``obsm['X_{key}']``: predicted state of each control cell."""
        return f"X_{self.key_added}"

    def obsm_treatment(self, treatment: str) -> str:
        """``obsm['X_{key}_{treatment}']``: predicted state of each control cell under a treatment.

        A ``"/"`` in the treatment name (which h5ad cannot store in a key) becomes ``"_"``.
        """
        return f"X_{self.key_added}_{treatment.replace('/', '_')}"

    # entries of uns[key]
    populations: str = "populations"
    params: str = "params"
    history: str = "history"
    population_embedding: str = "population_embedding"
    metrics: str = "metrics"
    predicted_treatments: str = "predicted_treatments"


@dataclass(frozen=True)
class NicheKeys:
    """AnnData keys of the niche workflow (``pp.niches`` ... ``tl.evaluate_niches``).

    Parameters
    ----------
    key_added
        Prefix chosen by the user (default ``"niche"``).
    """

    key_added: str = "niche"

    @property
    def uns(self) -> str:
        """``uns[key]``: params, history, metrics."""
        return self.key_added

    @property
    def obsm_indices(self) -> str:
        """``obsm['{key}_indices']``: the k spatial neighbours of each cell (ints into obs)."""
        return f"{self.key_added}_indices"

    params: str = "params"
    history: str = "history"
    metrics: str = "metrics"


#: ``pred.uns`` entry describing how a prediction was made (method name, key, params).
PREDICTION_UNS = "mfm_prediction"
#: Column of ``pred.obs`` naming the control cell a predicted cell was transported from.
SOURCE_CELL = "source_cell"
#: The verbs that write the keys above, named in error messages ("run `mfm.pp.populations` first").
POPULATIONS_VERB = "mfm.pp.populations"
FIT_VERB = "mfm.tl.fit"
PREDICT_VERB = "mfm.tl.predict"
EVALUATE_VERB = "mfm.tl.evaluate"
NICHES_VERB = "mfm.pp.niches"
GENERATE_VERB = "mfm.tl.generate_niches"
