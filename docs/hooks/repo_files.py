"""MkDocs hook: repository files shown inside the docs, read at build time.

- ``<!-- physgrad-examples -->`` (in ``examples.md``) becomes one section per script in
  ``examples/``: its docstring, then its source. A new example appears without editing the docs.
- Links to ``../examples/NAME.py`` (which work when a page is read on a git host) are rewritten
  to that script's section of ``examples.md``, since the built site has no ``examples/`` folder.
- ``benchmarks.md`` is generated from the repository's ``BENCHMARKS.md`` (links into ``docs/``
  made relative to the docs), so the measured numbers live in one file only.

Importing this module does not import mkdocs (the tests use it without); mkdocs calls the
``on_*`` functions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PLACEHOLDER = "<!-- physgrad-examples -->"
DOCS_LINK = re.compile(r"\]\(docs/([^)\s]*)\)")
EXAMPLE_LINK = re.compile(r"\]\(\.\./examples/([A-Za-z0-9_]+)\.py\)")


def example_anchor(stem: str) -> str:
    """The id of an example's section (``observations_on_disk`` -> ``observations-on-disk``)."""
    return stem.replace("_", "-")


def examples_markdown(root: Path) -> str:
    """One section per ``root/examples/*.py``: heading, the script's docstring, its source."""
    parts = []
    for path in sorted((root / "examples").glob("*.py")):
        source = path.read_text(encoding="utf-8").rstrip()
        doc = ast.get_docstring(ast.parse(source)) or ""
        parts.append(
            f"## {path.name} {{ #{example_anchor(path.stem)} }}\n\n{doc}\n\n"
            f'```python title="examples/{path.name}"\n{source}\n```\n'
        )
    return "\n".join(parts)


def benchmarks_markdown(root: Path) -> str:
    """``root/BENCHMARKS.md`` with its ``docs/...`` links made relative to the docs folder."""
    text = (root / "BENCHMARKS.md").read_text(encoding="utf-8")

    def relink(match: re.Match[str]) -> str:
        target = match.group(1)
        if target.endswith("/"):  # a folder: link its page (the built site lists no folders)
            for name in ("README.md", "index.md", "results.md"):
                if (root / "docs" / target / name).exists():
                    return f"]({target}{name})"
        return f"]({target})"

    return DOCS_LINK.sub(relink, text)


def relink_examples(markdown: str, src_uri: str) -> str:
    """Point ``../examples/NAME.py`` links of the page ``src_uri`` at ``examples.md#name``."""
    target = "../" * src_uri.count("/") + "examples.md"
    return EXAMPLE_LINK.sub(lambda m: f"]({target}#{example_anchor(m.group(1))})", markdown)


def on_files(files, config):
    """MkDocs event: add the generated ``benchmarks.md``."""
    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).parent
    files.append(File.generated(config, "benchmarks.md", content=benchmarks_markdown(root)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs event: fill the examples page and point example links at it."""
    if PLACEHOLDER in markdown:
        root = Path(config["config_file_path"]).parent
        markdown = markdown.replace(PLACEHOLDER, examples_markdown(root))
    return relink_examples(markdown, page.file.src_uri)
