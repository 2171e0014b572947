"""The documentation lists the whole public API and every tutorial."""

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
