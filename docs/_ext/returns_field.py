"""Sphinx extension: a numpy "Returns" section of prose rendered as one ``:returns:`` field.

mfm writes "Returns" as prose and bullet lists ("The trained model. Also sets" + the keys
written), not as numpy ``name : type`` entries. Napoleon reads it as a custom (generic) section
(``napoleon_custom_sections = ["Returns"]`` in ``conf.py``) and emits ``.. rubric:: Returns``
followed by the text; this hook, registered after napoleon and before sphinx-autodoc-typehints
(list it between them in ``extensions``), turns that block into one ``:returns:`` field, to
which sphinx-autodoc-typehints then prefixes the return type: one "Returns" block,
"MetaFlowModel – The trained model ...", without a separate "Return type" block.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx

_HEADER = ".. rubric:: Returns"
#: What ends the block: the next field of napoleon's output or the next directive.
_NEXT = re.compile(r"^(:(param|type|raises|returns|rtype|keyword|kwtype|ivar|vartype|var)\b|\.\. )")


def returns_field(app: Sphinx, what: str, name: str, obj, options, lines: list[str]) -> None:
    """Replace napoleon's ``.. rubric:: Returns`` block by a ``:returns:`` field, in place."""
    try:
        start = lines.index(_HEADER)
    except ValueError:
        return
    end = start + 1
    while end < len(lines) and not _NEXT.match(lines[end]):
        end += 1
    body = lines[start + 1 : end]
    # sphinx-autodoc-typehints' numpy patch puts a lone ":" under the header (so that napoleon
    # would not read the first line as a type): drop it with the blank lines
    while body and body[0].strip() in ("", ":"):
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    if not body:
        del lines[start:end]
        return
    field = [f":returns: {body[0]}"] + [f"   {line}" if line.strip() else "" for line in body[1:]]
    lines[start:end] = [*field, ""]


def setup(app: Sphinx) -> dict:
    """Register the hook (at napoleon's and sphinx-autodoc-typehints' priority, between them)."""
    app.connect("autodoc-process-docstring", returns_field)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
