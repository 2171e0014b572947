"""Every AnnData key name is spelled once, in `mfm._keys` (STYLE.md, rule 4).

The test reads the source of `mfm` with `ast` and fails where a string literal equal to a key
name defined in `mfm._keys` is used as a key: a subscript (``uns["fit"]``), a dict key
(``{"control": ...}``), the left side of ``in`` or the first argument of ``.get()`` /
``.pop()`` / ``.setdefault()``; and where a verb name of `mfm._keys` (``"mfm.pp.populations"``)
is written as a literal. Docstrings, messages and keyword arguments (``control=...``) are not
keys, and a value equal to a key name (``source="control"``) is not either.
"""

import ast
import dataclasses
from pathlib import Path

import pytest

import mfm
from mfm import _keys

SRC = Path(mfm.__file__).parent
#: Modules that may use a literal equal to a key name, and why.
NOT_ADATA_KEYS = {
    "train/_loop.py": {"step", "history"},  # entries of the checkpoint file, not of an AnnData
}
#: Packages whose strings are not mfm's keys: the simulated data sets name their own columns.
NOT_SCANNED = ("datasets",)


def _key_names() -> set[str]:
    names = {v for k, v in vars(_keys).items() if k.isupper() and isinstance(v, str)}
    for cls in (_keys.Keys, _keys.NicheKeys):
        names |= {f.default for f in dataclasses.fields(cls) if isinstance(f.default, str)}
    return names - {_keys.ID_SEPARATOR} - _verbs()


def _verbs() -> set[str]:
    return {v for k, v in vars(_keys).items() if k.endswith("_VERB")}


def _used_as_key(node: ast.AST) -> list[ast.Constant]:
    """String constants that ``node`` uses as a key."""
    if isinstance(node, ast.Subscript):
        candidates = [node.slice]
    elif isinstance(node, ast.Dict):
        candidates = list(node.keys)
    elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
        candidates = [node.left]
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "pop", "setdefault")
        and node.args
    ):
        candidates = [node.args[0]]
    else:
        candidates = []
    return [c for c in candidates if isinstance(c, ast.Constant) and isinstance(c.value, str)]


def _literal_keys(source: str, names: set[str], verbs: set[str]) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        found += [(c.lineno, c.value) for c in _used_as_key(node) if c.value in names]
        if isinstance(node, ast.Constant) and node.value in verbs:
            found.append((node.lineno, node.value))
    return found


def _modules() -> list[str]:
    paths = sorted(SRC.rglob("*.py"))
    relative = [p.relative_to(SRC).as_posix() for p in paths]
    return [r for r in relative if r != "_keys.py" and not r.startswith(NOT_SCANNED)]


@pytest.mark.parametrize("module", _modules())
def test_no_key_literal_outside_keys(module):
    found = _literal_keys((SRC / module).read_text(), _key_names(), _verbs())
    allowed = NOT_ADATA_KEYS.get(module, set())
    assert [f"{module}:{line}: {value!r}" for line, value in found if value not in allowed] == []


def test_the_scan_finds_key_literals_and_ignores_the_rest():
    source = '''
def f(adata, params, control="control", **kw):
    """Reads uns["fit"] and params["control"]."""
    msg = f"no {params['sample_key']!r}"  # a key inside a message is still a key
    a = params["fit"]
    b = {"condition_key": 1, "other": 2}
    c = "n_obs" in params
    d = params.get("use_rep")
    g(control="control", source="control")
    h("see mfm.tl.fit", "mfm.tl.fit")
    return adata.uns["other"]["unrelated"]
'''
    found = _literal_keys(source, _key_names(), _verbs())
    expected = [(4, "sample_key"), (5, "fit"), (6, "condition_key"), (7, "n_obs")]
    assert sorted(found) == [*expected, (8, "use_rep"), (10, "mfm.tl.fit")]


def test_the_key_names_are_read_from_keys():
    names = _key_names()
    assert {"sample_key", "condition_key", "control", "fit", "n_obs", "use_rep"} <= names
    assert {"params", "populations", "history", "metrics"} <= names  # `Keys` fields
    assert "mfm.pp.niches" in _verbs() and "mfm.pp.niches" not in names
