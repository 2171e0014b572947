"""scanpy conventions for every public verb of `mfm.pp`, `mfm.tl` and `mfm.pl`.

After scanpy's ``tests/test_package_structure.py``: ``adata`` first (annotated `AnnData`), at most
three positional parameters, everything else keyword-only, type hints everywhere, and a numpy
docstring documenting every parameter and what is returned.
"""

import ast
import inspect
import re
from pathlib import Path

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
def test_pp_verbs_work_in_place_or_on_a_copy(name):
    """scanpy's convention: ``copy=False`` (keyword-only) writes into ``adata`` and returns None."""
    signature = inspect.signature(FUNCTIONS[name], eval_str=True)
    copy = signature.parameters["copy"]
    assert copy.kind is copy.KEYWORD_ONLY and copy.default is False
    assert signature.return_annotation == AnnData | None


def test_parameter_parser():
    doc = (
        "Summary.\n\nParameters\n----------\nx\n    The x.\ny, z : int\n    Two.\n"
        "**kwargs\n    More.\n\nReturns\n-------\nNothing.\n"
    )
    assert _documented_parameters(doc) == ["x", "y", "z", "kwargs"]


# --- layers (docs/design.md): tensor-side packages never reach the AnnData side --------------

SRC = Path(mfm.__file__).parent
#: Packages that take arrays and tensors, and the shared helpers they import.
TENSOR_SIDE = ("mfm.data", "mfm.metrics", "mfm.models", "mfm.flows")
TENSOR_HELPERS = ("mfm._utils", "mfm._checks", "mfm._masks", "mfm._keys")
#: What the tensor side must not import, directly or through another mfm module.
ANNDATA_SIDE = ("anndata", "pandas", "scanpy", "squidpy")
ANNDATA_MODULES = ("mfm._anndata", "mfm.pp", "mfm.tl", "mfm.pl", "mfm.datasets")


def _file(module: str) -> Path | None:
    """The source file of an ``mfm`` module, or None for a name that is not a module."""
    base = SRC.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(module: str) -> set[str]:
    """Absolute names of everything ``module`` imports (anywhere in the file, lazily too)."""
    path = _file(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            # `from pkg import submodule`
            found.update(f"{base}.{a.name}" for a in node.names if _file(f"{base}.{a.name}"))
    return found


def _reach(start: str) -> dict[str, str]:
    """Every name imported from ``start`` on, through mfm modules, with the module importing it.

    The top package ``mfm`` (which imports every subpackage for the user) is not followed.
    """
    importer, todo = {start: ""}, [start]
    while todo:
        module = todo.pop()
        for name in _imports(module):
            if name in importer:
                continue
            importer[name] = module
            if name.startswith("mfm.") and _file(name):
                todo.append(name)
    return importer


def _tensor_side_modules() -> list[str]:
    modules = list(TENSOR_HELPERS)
    for package in TENSOR_SIDE:
        directory = SRC.joinpath(*package.split(".")[1:])
        modules += [f"{package}.{p.stem}".removesuffix(".__init__") for p in directory.glob("*.py")]
    return sorted(modules)


def _violations(start: str, forbidden: tuple[str, ...]) -> list[str]:
    reached = _reach(start)
    bad = [n for n in reached if any(n == f or n.startswith(f"{f}.") for f in forbidden)]
    return [f"{start}: {name} (imported by {reached[name]})" for name in sorted(bad)]


@pytest.mark.parametrize("module", _tensor_side_modules())
def test_tensor_side_never_imports_anndata(module):
    assert not _violations(module, ANNDATA_SIDE + ANNDATA_MODULES)


def test_random_state_and_device_helpers_are_numpy_and_torch_only():
    reached = {name.split(".")[0] for name in _reach("mfm._utils")}
    assert reached <= {"mfm", "__future__", "typing", "numpy", "torch", "collections"}, reached


def test_the_layer_check_sees_a_violation():
    assert _violations("mfm._anndata", ANNDATA_SIDE)
    assert _violations("mfm.pp", ("mfm._anndata",))  # pp reaches it through its modules
    assert "mfm.data._rows" in _reach("mfm.data")  # followed through `from ._rows import`
