"""scanpy conventions for every public verb of `mfm.pp`, `mfm.tl` and `mfm.pl`.

After scanpy's ``tests/test_package_structure.py``: ``adata`` first (annotated `AnnData`), at most
three positional parameters, everything else keyword-only, type hints everywhere, and a numpy
docstring documenting every parameter and what is returned.
"""

import inspect
import re

import pytest
from anndata import AnnData

import mfm

#: Public functions whose first parameter is not ``adata``, and why.
NOT_ADATA_FIRST = {
    "tl.load": "reads a model directory: the path comes first",
    "tl.generate_niches": "samples from a trained niche model: the model comes first",
}
MAX_POSITIONAL = 3


def _functions():
    for name in ["pp", "tl", "pl"]:
        module = getattr(mfm, name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isfunction(obj):  # tl also exports the model classes
                yield f"{name}.{attr}", obj


FUNCTIONS = dict(_functions())
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _documented_parameters(doc: str) -> list[str]:
    """Names in the numpy "Parameters" section (lines at the section's own indentation)."""
    match = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    if match is None:
        return []
    names = re.findall(r"^([*\w][\w, *]*?)(?:\s*:.*)?$", match.group(1), re.M)
    return [n.strip().lstrip("*") for line in names for n in line.split(",")]


def test_every_all_entry_exists():
    for name in ["pp", "tl", "pl"]:
        module = getattr(mfm, name)
        assert len(module.__all__) == len(set(module.__all__))
        for attr in module.__all__:
            assert not attr.startswith("_")
            assert hasattr(module, attr), f"mfm.{name}.{attr}"
    assert {"pp.populations", "pp.split", "tl.fit", "tl.predict", "tl.load"} <= set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_signature_conventions(name):
    func = FUNCTIONS[name]
    params = list(inspect.signature(func, eval_str=True).parameters.values())
    if name not in NOT_ADATA_FIRST:
        assert params[0].name == "adata"
        assert params[0].annotation is AnnData
    positional = [p for p in params if p.kind in POSITIONAL]
    assert len(positional) <= MAX_POSITIONAL, "use keyword-only options after `*`"
    assert params[len(positional) :] == [p for p in params if p.kind is p.KEYWORD_ONLY]
    for p in params:
        assert p.annotation is not p.empty, f"parameter {p.name!r} has no type hint"
    assert inspect.signature(func).return_annotation is not inspect.Signature.empty


@pytest.mark.parametrize("name", FUNCTIONS)
def test_docstring_documents_every_parameter(name):
    func = FUNCTIONS[name]
    doc = inspect.getdoc(func)
    assert doc, "missing docstring"
    params = list(inspect.signature(func).parameters)
    assert _documented_parameters(doc) == params
    assert re.search(r"^Returns\n-+\n\S", doc, re.M), "missing numpy 'Returns' section"


@pytest.mark.parametrize(
    "name", [n for n in FUNCTIONS if n.split(".")[0] in ("pp", "tl") and n not in NOT_ADATA_FIRST]
)
def test_verbs_take_key_added(name):
    param = inspect.signature(FUNCTIONS[name]).parameters["key_added"]
    assert param.kind is param.KEYWORD_ONLY
    assert isinstance(param.default, str)  # "mfm" for populations, "niche" for niches


@pytest.mark.parametrize("name", [n for n in FUNCTIONS if n.startswith("pp.")])
def test_in_place_verbs_return_none(name):
    assert inspect.signature(FUNCTIONS[name], eval_str=True).return_annotation is None


def test_parameter_parser():
    doc = (
        "Summary.\n\nParameters\n----------\nx\n    The x.\ny, z : int\n    Two.\n"
        "**kwargs\n    More.\n\nReturns\n-------\nNothing.\n"
    )
    assert _documented_parameters(doc) == ["x", "y", "z", "kwargs"]
