"""scanpy conventions for every public plot (the package-wide test is the lead's)."""

import inspect

import pytest
from anndata import AnnData

import mfm

PLOTS = [getattr(mfm.pl, name) for name in mfm.pl.__all__]


def test_all_lists_the_plots():
    expected = [
        "effects",
        "joint_embedding",
        "loss",
        "marker_densities",
        "metrics",
        "niche_composition",
        "niches",
        "population_embedding",
        "predictions",
        "spatial_niches",
        "trajectories",
    ]
    assert sorted(mfm.pl.__all__) == expected


@pytest.mark.parametrize("plot", PLOTS, ids=mfm.pl.__all__)
def test_plot_signature(plot):
    params = inspect.signature(plot, eval_str=True).parameters
    first = next(iter(params.values()))
    assert first.name == "adata"
    assert first.annotation is AnnData
    positional = [p for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 2
    niche_plots = (mfm.pl.niches, mfm.pl.niche_composition, mfm.pl.spatial_niches)
    key = "niche" if plot in niche_plots else "mfm"
    for name, default in [("key", key), ("ax", None), ("show", None), ("return_fig", False)]:
        assert params[name].kind is params[name].KEYWORD_ONLY
        assert params[name].default == default
    assert "Returns" in plot.__doc__
    assert "\n    Examples\n    --------\n    >>> import mfm\n" in plot.__doc__
