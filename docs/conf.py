"""Sphinx configuration of the mfm documentation.

Build with::

    pip install -e ".[doc]"
    sphinx-build -W -b html docs docs/_build/html

CI (``.ci/run``) builds it the same way, warnings as errors, without network: MathJax is served
from the ``sphinx-mathjax-offline`` package, and intersphinx mappings whose server cannot be
reached are dropped (with a note, not a warning); ``MFM_DOCS_OFFLINE=1`` drops them all.

The tutorials live in ``tutorials/`` at the repository root; they are copied into
``docs/notebooks/`` (ignored by git) at every build and rendered with their stored outputs,
never executed here.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import socket
import sys
from urllib.parse import urlsplit
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))  # document the source tree, installed or not
sys.path.insert(0, str(HERE / "_ext"))  # this documentation's own extensions

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
    "returns_field",  # docs/_ext: napoleon's "Returns" section as one field; between the two
    "sphinx_autodoc_typehints",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 files copied into _static: formulas render offline
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
napoleon_use_rtype = False
# mfm writes "Returns" as prose and bullet lists ("The trained model. Also sets" + the keys
# written), not as numpy "name : type" entries: napoleon reads it as a generic section, the
# `returns_field` extension (docs/_ext) turns it into one ``:returns:`` field, and
# sphinx-autodoc-typehints puts the return type in front: one "Returns" block.
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
intersphinx_timeout = 10


def _reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether the host of ``url`` accepts a connection within ``timeout`` seconds."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


# Offline (CI, a laptop on a train) an unreachable inventory is a warning, hence an error with
# -W: drop those mappings instead; references to them then render as plain code.
_offline = os.environ.get("MFM_DOCS_OFFLINE", "") not in ("", "0")
_dropped = [
    name
    for name, (url, _) in intersphinx_mapping.items()
    if _offline or not _reachable(url)
]
for _name in _dropped:
    del intersphinx_mapping[_name]

# -- HTML ----------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = "mfm"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # an "on this page" column on the long reference pages only: API pages (one function each)
    # and the tutorials give its width to signatures, tables and figures
    "secondary_sidebar_items": {
        page: ["page-toc"] for page in ("api", "keys", "methods", "design", "index")
    },
}
html_static_path = ["_static"]
html_css_files = ["mfm.css"]  # a wider content column; wide tables and code scroll, never cut

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
    if _dropped:
        logger.info("intersphinx: offline, skipped %s", ", ".join(_dropped))
