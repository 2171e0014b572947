"""Bad input, as a new user would give it: one row per case of issue 9.

Each row: an optional set-up, the call, the exception it must raise, a word its message must
contain. Every AnnData of the case is compared before and after the call: a refused call changes
nothing.
"""

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData
from scipy import sparse

import mfm

#: Tiny niche-generator settings.
NICHE_FIT = {
    "condition_key": "cell_type",
    "hidden": 16,
    "n_layers": 1,
    "n_heads": 2,
    "time_features": 8,
    "batch_size": 8,
    "max_steps": 4,
    "ot_iter": 10,
    "device": "cpu",
    "progress": False,
}
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")


def tissue() -> AnnData:
    adata = mfm.datasets.simulated_tissue(
        n_cells=120, n_genes=4, n_cell_types=3, n_domains=2, random_state=0
    )
    mfm.pp.niches(adata, n_neighbors=5, library_key="slice")
    return adata


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory) -> dict:
    """A population model trained on drugA only (drugB held out), a niche model, one saved."""
    adata = tiny.make()
    mfm.pp.populations(adata, **tiny.populations)
    mfm.pp.split(adata, by="treatment", test=["drugB"])
    model = mfm.tl.fit(adata, **tiny.fit)
    niches = tissue()
    niche_model = mfm.tl.fit_niches(niches, **NICHE_FIT)
    root = tmp_path_factory.mktemp("models")
    model.save(root / "model")
    return {
        "adata": adata,
        "model": model,
        "niches": niches,
        "niche_model": niche_model,
        "generated": mfm.tl.generate_niches(niche_model, n_per_condition=2, n_steps=2),
        "saved": root / "model",
    }


@dataclass
class Context:
    """What a case works on: fresh copies of the trained objects and a scratch directory."""

    adata: AnnData
    model: mfm.tl.MetaFlowModel
    niches: AnnData
    niche_model: mfm.tl.NicheModel
    generated: AnnData
    saved: Path
    tmp: Path
    tiny: SimpleNamespace

    def anndatas(self) -> list[AnnData]:
        return [self.adata, self.niches, self.generated]


@pytest.fixture
def context(trained, tiny, tmp_path) -> Context:
    return Context(
        adata=trained["adata"].copy(),
        model=trained["model"],
        niches=trained["niches"].copy(),
        niche_model=trained["niche_model"],
        generated=trained["generated"].copy(),
        saved=trained["saved"],
        tmp=tmp_path,
        tiny=tiny,
    )


# --- set-ups ---------------------------------------------------------------------------------


def joined_samples(c: Context) -> None:
    """Samples ("A|B", "C") and ("A", "B|C"): one population id each before the fix."""
    adata = c.tiny.make()
    first = adata.obs["patient"] == "P0"
    adata.obs["s1"] = np.where(first, "A|B", "A")
    adata.obs["s2"] = np.where(first, "C", "B|C")
    c.adata = adata


def column_named(name: str) -> Callable[[Context], None]:
    def setup(c: Context) -> None:
        c.adata = c.tiny.make()
        c.adata.obs[name] = c.adata.obs["patient"]

    return setup


def two_column_groups(c: Context) -> None:
    c.adata.obs["site"] = np.where(c.adata.obs["patient"] == "P0", "x|y", "x")


def layer_populations(c: Context) -> None:
    """Populations re-built on a layer holding the same values under the same names."""
    c.adata.layers["counts"] = c.adata.X.copy()
    mfm.pp.populations(c.adata, **c.tiny.populations, use_rep="counts")


def niches_on_pca(c: Context) -> None:
    c.niches.obsm["X_pca"] = np.asarray(c.niches.X)[:, :4].copy()
    c.niches.obsm["X_pca"] = pd.DataFrame(c.niches.obsm["X_pca"], index=c.niches.obs_names)
    c.niches.obsm["X_pca"].columns = list(c.niches.var_names[:4])
    mfm.pp.niches(c.niches, n_neighbors=5, library_key="slice", use_rep="X_pca")


def huge_values(c: Context) -> None:
    c.adata = c.tiny.make()
    x = np.asarray(c.adata.X, dtype=np.float64)
    x[3, 1] = 1e39  # finite in float64, infinite in float32
    c.adata.X = x


def sparse_nan(c: Context) -> None:
    c.adata = c.tiny.make()
    x = sparse.csr_matrix(c.adata.X)
    x.data[5] = np.nan
    c.adata.X = x


# --- model directories -------------------------------------------------------------------------


def damaged(c: Context, change: Callable[[Path], None]) -> Path:
    """A copy of the saved model directory after ``change(directory)``."""
    directory = c.tmp / "damaged"
    directory.mkdir()
    for file in c.saved.iterdir():
        (directory / file.name).write_bytes(file.read_bytes())
    change(directory)
    return directory


def edit_config(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def change(directory: Path) -> None:
        saved = json.loads((directory / "config.json").read_text())
        edit(saved)
        (directory / "config.json").write_text(json.dumps(saved))

    return change


def write(name: str, content: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def change(directory: Path) -> None:
        old = (directory / name).read_bytes()
        (directory / name).write_bytes(content(old) if callable(content) else content)

    return change


def load_damaged(change: Callable[[Path], None]) -> Callable[[Context], object]:
    return lambda c: mfm.tl.load(damaged(c, change), device="cpu")


def with_nan_weights(model: mfm.tl.MetaFlowModel) -> mfm.tl.MetaFlowModel:
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.module.velocity.output.bias.fill_(float("nan"))
    return broken


def fit(**options) -> Callable[[Context], object]:
    return lambda c: mfm.tl.fit(c.adata, **{**c.tiny.fit, **options})


def fit_niches(**options) -> Callable[[Context], object]:
    return lambda c: mfm.tl.fit_niches(c.niches, **{**NICHE_FIT, **options})


def populations(**options) -> Callable[[Context], object]:
    return lambda c: mfm.pp.populations(c.adata, **{**c.tiny.populations, **options})


def label(value: object) -> str:
    return (
        repr(value) if isinstance(value, str | int | float | type(None)) else type(value).__name__
    )


CASES = [
    # 2. a treatment never trained on
    pytest.param(
        None,
        lambda c: mfm.tl.predict(c.adata, c.model, populations=["P0|drugB"], **c.tiny.predict),
        ValueError,
        "drugB",
        id="predict-untrained-treatment",
    ),
    pytest.param(
        None,
        lambda c: mfm.tl.predict(c.adata, c.model, **c.tiny.predict),
        ValueError,
        "not trained",
        id="predict-all-with-untrained-treatment",
    ),
    # 3. population ids and reserved columns
    pytest.param(
        joined_samples,
        populations(sample_key=["s1", "s2"]),
        ValueError,
        "'|'",
        id="populations-separator-in-sample",
    ),
    *[
        pytest.param(
            column_named(name),
            populations(sample_key=["patient", name]),
            ValueError,
            repr(name),
            id=f"populations-reserved-{name}",
        )
        for name in ["source", "split", "n_cells", "condition", "population", "method"]
    ],
    pytest.param(
        two_column_groups,
        lambda c: mfm.pp.split(c.adata, by=["site", "patient"], test=[("x", "P2")]),
        ValueError,
        "'|'",
        id="split-separator-in-group",
    ),
    # 4. another representation
    pytest.param(
        layer_populations,
        lambda c: mfm.tl.predict(c.adata, c.model, populations=["P0|drugA"], **c.tiny.predict),
        ValueError,
        "use_rep",
        id="predict-other-use_rep",
    ),
    pytest.param(
        niches_on_pca,
        lambda c: mfm.tl.evaluate_niches(c.niches, c.generated),
        ValueError,
        "use_rep",
        id="evaluate_niches-other-use_rep",
    ),
    # 5. strict loading
    pytest.param(
        None,
        load_damaged(edit_config(lambda s: s["config"].pop("knn"))),
        ValueError,
        "knn",
        id="load-missing-field",
    ),
    pytest.param(
        None,
        load_damaged(edit_config(lambda s: s["config"].update(dropout=0.1))),
        ValueError,
        "dropout",
        id="load-unknown-field",
    ),
    pytest.param(
        None,
        load_damaged(edit_config(lambda s: s.update(format_version=2))),
        ValueError,
        "version",
        id="load-unknown-version",
    ),
    pytest.param(
        None,
        load_damaged(edit_config(lambda s: s.pop("format_version"))),
        ValueError,
        "format_version",
        id="load-no-version",
    ),
    pytest.param(
        None,
        load_damaged(edit_config(lambda s: s.update(saved_by="me"))),
        ValueError,
        "saved_by",
        id="load-unknown-entry",
    ),
    pytest.param(
        None,
        load_damaged(write("config.json", b'{"format_version": 1, "model": ')),
        ValueError,
        "config.json",
        id="load-invalid-json",
    ),
    pytest.param(
        None,
        load_damaged(write("features.json", b"g0 g1")),
        ValueError,
        "features.json",
        id="load-invalid-features",
    ),
    pytest.param(
        None,
        load_damaged(write("weights.pt", b"")),
        ValueError,
        "weights.pt",
        id="load-empty-weights",
    ),
    pytest.param(
        None,
        load_damaged(write("weights.pt", lambda old: old[: len(old) // 2])),
        ValueError,
        "weights.pt",
        id="load-truncated-weights",
    ),
    pytest.param(
        None,
        load_damaged(lambda d: (d / "weights.pt").unlink()),
        FileNotFoundError,
        "weights.pt",
        id="load-missing-weights",
    ),
    pytest.param(
        None,
        load_damaged(edit_config(lambda s: s["config"].update(knn="ten"))),
        ValueError,
        "config.json",
        id="load-wrong-type",
    ),
    # 6. options that train nothing or fail deep inside
    *[
        pytest.param(None, fit(**{name: value}), error, word, id=f"fit-{name}={label(value)}")
        for name, value, error, word in [
            ("lr", 0.0, ValueError, "lr"),
            ("lr", -1e-3, ValueError, "lr"),
            ("lr", float("nan"), ValueError, "lr"),
            ("lr", "0.01", ValueError, "lr"),
            ("val_every", 0, ValueError, "val_every"),
            ("random_state", None, ValueError, "random_state"),
            ("random_state", np.random.default_rng(0), ValueError, "random_state"),
            ("embedding_dim", 0, ValueError, "embedding_dim"),
            ("gcn_layers", 0, ValueError, "gcn_layers"),
            ("gcn_hidden", 0, ValueError, "gcn_hidden"),
            ("hidden", 0, ValueError, "hidden"),
            ("n_layers", 0, ValueError, "n_layers"),
            ("device", "gpu", ValueError, "device"),
        ]
    ],
    pytest.param(None, fit(device="cuda"), RuntimeError, "GPU", id="fit-cuda", marks=NO_GPU),
    *[
        pytest.param(
            None, fit_niches(**{name: value}), error, word, id=f"fit_niches-{name}={label(value)}"
        )
        for name, value, error, word in [
            ("lr", 0.0, ValueError, "lr"),
            ("lr", float("nan"), ValueError, "lr"),
            ("val_every", 0, ValueError, "val_every"),
            ("random_state", None, ValueError, "random_state"),
            ("hidden", 0, ValueError, "hidden"),
            ("n_layers", 0, ValueError, "n_layers"),
            ("n_heads", 3, ValueError, "n_heads"),
            ("time_features", 0, ValueError, "time_features"),
            ("cfg_dropout", 1.5, ValueError, "cfg_dropout"),
            ("ot_reg", 0.0, ValueError, "ot_reg"),
            ("ot_iter", 0, ValueError, "ot_iter"),
        ]
    ],
    pytest.param(
        None, fit_niches(device="cuda"), RuntimeError, "GPU", id="fit_niches-cuda", marks=NO_GPU
    ),
    pytest.param(
        None,
        lambda c: mfm.tl.load(c.saved, device="cuda"),
        RuntimeError,
        "GPU",
        id="load-cuda",
        marks=NO_GPU,
    ),
    # 7. lesser
    pytest.param(huge_values, populations(), ValueError, "float32", id="populations-1e39"),
    pytest.param(sparse_nan, populations(), ValueError, "NaN", id="populations-sparse-nan"),
    pytest.param(
        None,
        lambda c: mfm.tl.predict(
            c.adata, with_nan_weights(c.model), populations=["P1|drugA"], **c.tiny.predict
        ),
        ValueError,
        "P1|drugA",
        id="predict-nan-names-population",
    ),
    pytest.param(
        None, lambda c: mfm.pl.loss(c.adata, ax="left", show=False), TypeError, "Axes", id="pl-ax"
    ),
    pytest.param(
        None,
        lambda c: mfm.pl.niches(c.niches, c.generated, condition="type_0", ax=1, show=False),
        TypeError,
        "Axes",
        id="pl-niches-ax",
    ),
]


@pytest.mark.parametrize(("setup", "call", "error", "word"), CASES)
def test_bad_input_is_refused_and_changes_nothing(
    context, setup, call, error, word, assert_unchanged
):
    if setup is not None:
        setup(context)
    before = [adata.copy() for adata in context.anndatas()]
    with pytest.raises(error) as raised:
        call(context)
    assert word in str(raised.value)
    for adata, copy_before in zip(context.anndatas(), before, strict=True):
        assert_unchanged(adata, copy_before)
