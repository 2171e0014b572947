"""The documentation lists the whole public API and every tutorial."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Sub-packages whose every public name (``__all__``) must have an API page.
PACKAGES = ("pp", "tl", "pl", "datasets", "metrics")


def listed_in_api_page() -> set[str]:
    """Names (relative to ``mfm``) in the autosummary lists of ``docs/api.md``."""
    text = (DOCS / "api.md").read_text()
    return set(re.findall(r"^ {3}~?((?:\w+\.)+\w+)\s*$", text, re.MULTILINE))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_in_the_api_page(package):
    module = importlib.import_module(f"mfm.{package}")
    public = {f"{package}.{name}" for name in module.__all__}
    missing = sorted(public - listed_in_api_page())
    assert not missing, f"docs/api.md lacks {missing}: add them to its autosummary lists"


def test_the_api_page_lists_no_name_that_is_gone():
    gone = []
    for name in listed_in_api_page():
        package, _, attribute = name.rpartition(".")
        module = importlib.import_module(f"mfm.{package}")
        if not hasattr(module, attribute):
            gone.append(name)
    assert not gone, f"docs/api.md lists {gone}, which mfm does not have"


def test_every_tutorial_is_in_the_docs():
    notebooks = sorted(path.stem for path in (ROOT / "tutorials").glob("*.ipynb"))
    assert notebooks
    page = (DOCS / "tutorials.md").read_text()
    toctree = re.search(r"```\{toctree\}(.*?)```", page, re.S)
    assert toctree is not None
    for notebook in notebooks:
        assert f"notebooks/{notebook}" in toctree.group(1), notebook
        assert f"{{doc}}`notebooks/{notebook}`" in page, f"{notebook} missing from the table"


@pytest.mark.parametrize("package", ["pp", "tl", "datasets", "metrics"])
def test_every_public_function_has_an_examples_section(package):
    module = importlib.import_module(f"mfm.{package}")
    missing = [
        name
        for name in module.__all__
        if callable(getattr(module, name))
        and "Examples\n" not in (getattr(module, name).__doc__ or "")
    ]
    assert not missing, f"no Examples section in the docstring of mfm.{package}: {missing}"


def test_the_metrics_examples_run():
    """The Examples of `mfm.metrics` are self-contained: run them as doctests."""
    module = importlib.import_module("mfm.metrics")
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    n_examples = 0
    for name in module.__all__:
        member = getattr(module, name)
        if callable(member):
            for test in finder.find(member, f"mfm.metrics.{name}", globs={}):
                n_examples += len(test.examples)
                runner.run(test)
    assert n_examples > 0
    assert runner.failures == 0, f"{runner.failures} metrics examples fail (printed above)"
