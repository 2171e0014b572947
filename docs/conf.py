"""Sphinx configuration of the mfm documentation.

Build locally (not part of CI) with::

    pip install -e ".[doc]"
    sphinx-build -b html docs docs/_build/html

The tutorials live in ``tutorials/`` at the repository root; they are copied into
``docs/notebooks/`` (ignored by git) at every build and rendered with their stored outputs,
never executed here.
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))  # document the source tree, installed or not

logger = logging.getLogger(__name__)

# -- Project -------------------------------------------------------------------------------------

project = "mfm"
author = "mfm developers"
copyright = "mfm developers"
try:
    from mfm import __version__ as release
except ImportError:  # the API pages then stay empty, the rest still builds
    release = "0.0.0"
version = release

# -- Extensions ----------------------------------------------------------------------------------

extensions = [
    "myst_nb",  # Markdown pages (MyST) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # numpy-style docstrings; must come before sphinx_autodoc_typehints
    "sphinx_autodoc_typehints",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# .rst first: autosummary writes its stub pages with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# Docstrings write `mfm.tl.fit` or `~matplotlib.axes.Axes` in single backticks: cross-references.
default_role = "py:obj"

# -- MyST / notebooks ----------------------------------------------------------------------------

myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath", "substitution"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks are stored executed; the docs build never trains
nb_merge_streams = True

# -- autodoc / autosummary / napoleon ------------------------------------------------------------

autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = True
napoleon_use_rtype = False  # "Returns" sections are prose ("The trained model. Also sets ...")
# mfm writes "Returns" as prose and bullet lists ("Nothing; sets" + the keys written), not as
# numpy "name : type" entries: render the section as written (the type comes from the hints).
napoleon_custom_sections = ["Returns"]
typehints_defaults = "comma"
typehints_use_rtype = False
always_document_param_types = False

# -- intersphinx ---------------------------------------------------------------------------------

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "pandas": ("https://pandas.pydata.org/pandas-docs/stable/", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
    "squidpy": ("https://squidpy.readthedocs.io/en/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "ot": ("https://pythonot.github.io/", None),
}
intersphinx_timeout = 10  # offline builds: give up quickly (a warning, not an error)

# -- HTML ----------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = "mfm"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []

# -- Build hooks ---------------------------------------------------------------------------------

#: Sub-packages whose ``__all__`` the API page must cover.
API_PACKAGES = ("pp", "tl", "pl", "datasets", "metrics", "models", "flows", "data")
NOTEBOOKS_DIR = HERE / "notebooks"


def copy_tutorials(app: Sphinx) -> None:
    """Copy ``tutorials/*.ipynb`` into ``docs/notebooks/`` (Sphinx only reads its source dir)."""
    NOTEBOOKS_DIR.mkdir(exist_ok=True)
    for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
        target = NOTEBOOKS_DIR / notebook.name
        if not target.exists() or target.read_bytes() != notebook.read_bytes():
            shutil.copyfile(notebook, target)


def public_names(package: str) -> list[str]:
    """Dotted names (relative to ``mfm``) of ``mfm.<package>.__all__``, submodules expanded."""
    module = importlib.import_module(f"mfm.{package}")
    names = []
    for name in getattr(module, "__all__", []):
        member = getattr(module, name)
        if hasattr(member, "__all__") and getattr(member, "__file__", None):
            names += [f"{package}.{name}.{sub}" for sub in member.__all__]
        else:
            names.append(f"{package}.{name}")
    return names


def check_api_page(app: Sphinx) -> None:
    """Warn about public names (``__all__``) missing from ``api.md`` and listed names gone."""
    try:
        expected = {name for package in API_PACKAGES for name in public_names(package)}
    except ImportError as error:
        logger.warning("cannot import mfm to check api.md: %s", error)
        return
    text = (HERE / "api.md").read_text()
    packages = "|".join(API_PACKAGES)
    listed = set(re.findall(rf"^\s+~?((?:{packages})\.[\w.]+)\s*$", text, re.MULTILINE))
    for name in sorted(expected - listed):
        logger.warning("api.md does not list mfm.%s (in __all__)", name)
    for name in sorted(listed - expected):
        logger.warning("api.md lists mfm.%s, which is not in __all__", name)


def setup(app: Sphinx) -> None:
    """Register the build hooks."""
    app.connect("builder-inited", copy_tutorials)
    app.connect("builder-inited", check_api_page)
