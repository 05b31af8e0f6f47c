"""A griffe extension for the API site: Sphinx roles in docstrings (``:func:`x```, ``:class:`~a.B```) as code.

jaxkit's docstrings name other objects with Sphinx roles; Markdown would print the role itself. Each role becomes
a code span of its target (``~`` dropped, as Sphinx shows it).
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):`~?([^`]+)`")


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(lambda m: f"``{m.group(1)}``", obj.docstring.value)
