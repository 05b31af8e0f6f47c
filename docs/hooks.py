"""MkDocs hooks: generate the pages that are not files in ``docs/`` (see mkdocs.yml).

* ``index.md``: the README (its links to repository files rewritten to the generated pages);
* ``api/<module>.md``: one page per public module -- every name in ``jaxkit.__all__`` and every submodule a face
  exports (``jaxkit.prune.blend_search``, ``jaxkit.rl.envs``, ...) -- rendered by mkdocstrings from ``__all__``;
* ``colabs/<name>/``: the notebooks in ``colabs/`` (rendered as stored; mkdocs-jupyter does not run them);
* ``changelog.md``, ``contributing.md``, ``benchmarks.md``: the repository's files of those names.
"""

from __future__ import annotations

import importlib
import inspect
import posixpath
import re
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
# site page -> the repository file it shows; links between these files are rewritten to links between the pages
SOURCES = {
    "index.md": "README.md",
    "changelog.md": "CHANGELOG.md",
    "contributing.md": "CONTRIBUTING.md",
    "benchmarks.md": "benchmarks/README.md",
    "design-notes.md": "docs/design-notes.md",
    "scaling.md": "docs/scaling.md",
}
GENERATED = ("index.md", "changelog.md", "contributing.md", "benchmarks.md")


def api_modules() -> list[str]:
    """Every public module: the package's ``__all__`` and the submodules each face re-exports, sorted."""
    import jaxkit  # noqa: PLC0415 (the docs build imports the library it documents)

    names = []
    for sub in sorted(jaxkit._SUBMODULES):
        mod = importlib.import_module(f"jaxkit.{sub}")
        names.append(mod.__name__)
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if inspect.ismodule(obj) and obj.__name__.startswith("jaxkit."):
                names.append(obj.__name__)
    return sorted(set(names))


def public_names(module: str) -> list[str]:
    """The names a module's ``__all__`` lists, less the submodules (they have pages of their own)."""
    mod = importlib.import_module(module)
    return [n for n in getattr(mod, "__all__", ()) if not inspect.ismodule(getattr(mod, n))]


def shadowed(module: str, name: str) -> str | None:
    """The defining path of ``module.name`` when a submodule has the same name (``jaxkit.evolution.evaluate`` is
    a module and the function it defines): mkdocstrings resolves such a name to the module, so the page renders
    the function from where it is defined."""
    obj = getattr(importlib.import_module(module), name)
    if f"{module}.{name}" in sys.modules and not inspect.ismodule(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    return None


def api_page(module: str) -> str:
    """A module's API page: its docstring, then exactly the names of its ``__all__`` (mkdocstrings ``members``)."""
    names = public_names(module)
    plain = [n for n in names if shadowed(module, n) is None]
    members = "".join(f"        - {n}\n" for n in plain)
    page = f"::: {module}\n    options:\n      members:\n{members}" if members else f"::: {module}\n"
    for n in names:
        if (path := shadowed(module, n)) is not None:
            page += f"\n::: {path}\n    options:\n      show_root_full_path: false\n      heading_level: 3\n"
    return page


def rewrite_links(text: str, page: str) -> str:
    """Relative links in the repository file behind ``page``: to the page of their target when the site has one,
    else the target's repository path as plain code (the site holds no source files)."""
    pages = {src: uri for uri, src in SOURCES.items()}
    here = posixpath.dirname(SOURCES[page])
    up = "../" * page.count("/")

    def link(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        path, _, anchor = target.partition("#")
        path = posixpath.normpath(posixpath.join(here, path))
        if path in pages:
            return f"[{label}]({up}{pages[path]}{'#' + anchor if anchor else ''})"
        return f"{label} (`{path}`)"

    return re.sub(r"\[([^\]]+)\]\((?!https?://|#|mailto:)([^)\s]+)\)", link, text)


@event_priority(100)  # before the plugins: mkdocs-jupyter must see the notebooks to render them
def on_files(files: Files, config) -> Files:
    for uri in GENERATED:
        files.append(File.generated(config, uri, content=(ROOT / SOURCES[uri]).read_text()))
    for name in api_modules():
        files.append(File.generated(config, f"api/{name.removeprefix('jaxkit.')}.md", content=api_page(name)))
    for nb in sorted((ROOT / "colabs").glob("*.ipynb")):
        # a file of its own (not generated): mkdocs-jupyter converts it from its path
        files.append(File(f"colabs/{nb.name}", str(ROOT), config.site_dir, config.use_directory_urls))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    return rewrite_links(markdown, page.file.src_uri) if page.file.src_uri in SOURCES else markdown
