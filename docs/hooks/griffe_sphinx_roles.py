"""Griffe extension: render the Sphinx roles of physgrad's docstrings as code.

The docstrings use ``:func:`name```, ``:class:`~pkg.Name``` etc. (readable in ``help()`` and
in editors); mkdocstrings does not interpret Sphinx roles, so without this they would show up
literally. ``~`` keeps only the last dotted component, as in Sphinx.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")


def strip_roles(text: str) -> str:
    """``:func:`~a.b``` -> ```b```, ``:class:`a.B``` -> ```a.B```."""
    return ROLE.sub(
        lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text
    )


def _rewrite(obj: griffe.Object, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if obj.docstring is not None:
        obj.docstring.value = strip_roles(obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:  # aliases show their target's (rewritten) docstring
            _rewrite(member, seen)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        _rewrite(pkg, set())
