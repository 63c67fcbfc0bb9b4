"""MkDocs hook: show the repository's example scripts inside the docs.

- ``<!-- physgrad-example: NAME.py -->`` in a page becomes the source of ``examples/NAME.py``
  (read at build time, so the page always shows the current script).
- ``benchmarks.md`` is generated from the repository's ``BENCHMARKS.md`` (links into ``docs/``
  made relative to the docs), so the measured numbers live in one file only.
- Links to ``../examples/NAME.py`` (which work when a page is read on a git host) are rewritten
  to the ``examples.md`` section holding that script, since the built site has no ``examples/``.

No mkdocs import: mkdocs only calls the ``on_*`` functions.
"""

from __future__ import annotations

import re
from pathlib import Path

EXAMPLE = re.compile(r"<!-- physgrad-example: ([A-Za-z0-9_]+)\.py -->")
DOCS_LINK = re.compile(r"\]\(docs/([^)\s]*)\)")
LINK = re.compile(r"\]\(\.\./examples/([A-Za-z0-9_]+)\.py\)")


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


def example_anchor(stem: str) -> str:
    """The id of an example's section in ``examples.md`` (``observations_on_disk`` ->
    ``observations-on-disk``)."""
    return stem.replace("_", "-")


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs event: inline example sources and point example links at ``examples.md``."""
    root = Path(config["config_file_path"]).parent

    def source(match: re.Match[str]) -> str:
        path = root / "examples" / f"{match.group(1)}.py"
        code = path.read_text(encoding="utf-8").rstrip()
        return f'```python title="examples/{path.name}"\n{code}\n```'

    markdown = EXAMPLE.sub(source, markdown)
    depth = page.file.src_uri.count("/")
    target = "../" * depth + "examples.md"
    return LINK.sub(lambda m: f"]({target}#{example_anchor(m.group(1))})", markdown)


def on_files(files, config):
    """MkDocs event: add the generated ``benchmarks.md``."""
    from mkdocs.structure.files import File

    root = Path(config["config_file_path"]).parent
    files.append(File.generated(config, "benchmarks.md", content=benchmarks_markdown(root)))
    return files
