"""`mfm.settings.verbosity` follows scanpy's until set; `fit` names its device; short reprs."""

import logging

import pytest
import scanpy as sc

import mfm


@pytest.fixture
def verbosity():
    """Restore scanpy's and mfm's verbosity after the test."""
    saved = sc.settings.verbosity
    yield
    sc.settings.verbosity = saved
    mfm.settings.verbosity = None


def _emit(capsys, level: int, text: str) -> str:
    logging.getLogger("mfm.tl._fit").log(level, text)
    return capsys.readouterr().err


def test_verbosity_follows_scanpy_until_set(verbosity, capsys):
    sc.settings.verbosity = "warning"
    assert mfm.settings.verbosity == sc.Verbosity.warning
    assert _emit(capsys, logging.INFO, "hidden info") == ""
    assert _emit(capsys, logging.WARNING, "a warning") == "a warning\n"
    sc.settings.verbosity = 2  # scanpy's "info": mfm follows at once
    assert _emit(capsys, logging.INFO, "shown info") == "shown info\n"
    mfm.settings.verbosity = "error"  # mfm's own choice wins over scanpy's
    assert sc.settings.verbosity == sc.Verbosity.info
    assert _emit(capsys, logging.WARNING, "hidden warning") == ""
    assert repr(mfm.settings) == "mfm.settings(verbosity='error')"
    mfm.settings.verbosity = None
    assert mfm.settings.verbosity == sc.Verbosity.info
    assert repr(mfm.settings) == "mfm.settings(verbosity='info' (scanpy's))"


@pytest.mark.parametrize("value", ["loud", 7, True])
def test_bad_verbosity_names_the_choices(verbosity, value):
    with pytest.raises(ValueError, match=r"0/'error'.*4/'debug' or None"):
        mfm.settings.verbosity = value


def test_records_still_reach_the_root_logger(verbosity, caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("mfm.pp._split").info("for the user's handlers")
    assert "for the user's handlers" in caplog.text


def test_fit_says_which_device_and_repr_is_one_short_line(verbosity, capsys):
    adata = mfm.datasets.organoid_screen(
        n_patients=2, cultures=["PDO"], n_replicates=1, treatments=["drug_A"], n_cells=60,
        n_markers=32, random_state=0,
    )  # fmt: skip
    mfm.pp.populations(adata, sample_key="patient", condition_key="treatment", control="control")
    mfm.settings.verbosity = "info"
    model = mfm.tl.fit(adata, max_steps=2, knn=3, progress=False, device="cpu")
    assert "on cpu (validation:" in capsys.readouterr().err
    n_params = sum(p.numel() for p in model.module.parameters())
    assert (
        repr(model)
        == f"MetaFlowModel(MFM, 1 treatment, 32 features, {n_params:,} parameters, device=cpu)"
    )
