"""scanpy conventions for every public plot (the package-wide test is the lead's)."""

import inspect

import pytest
from anndata import AnnData

import mfm

PLOTS = [getattr(mfm.pl, name) for name in mfm.pl.__all__]


def test_all_lists_the_plots():
    expected = ["loss", "metrics", "niches", "population_embedding", "predictions"]
    assert sorted(mfm.pl.__all__) == expected


@pytest.mark.parametrize("plot", PLOTS, ids=mfm.pl.__all__)
def test_plot_signature(plot):
    params = inspect.signature(plot, eval_str=True).parameters
    first = next(iter(params.values()))
    assert first.name == "adata"
    assert first.annotation is AnnData
    positional = [p for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 2
    key = "niche" if plot is mfm.pl.niches else "mfm"
    for name, default in [("key", key), ("ax", None), ("show", None), ("return_fig", False)]:
        assert params[name].kind is params[name].KEYWORD_ONLY
        assert params[name].default == default
    assert "Returns" in plot.__doc__
