"""MkDocs hook: the CLI reference, generated at build time from physgrad's argparse parser.

``docs/cli.md`` holds the placeholder ``<!-- physgrad-cli-reference -->``; on every build it is
replaced by the ``--help`` text of ``physgrad`` and of each subcommand, taken from
:func:`physgrad.cli.build_parser`. A new option or subcommand therefore appears in the docs
without anyone editing them.

This module does not import mkdocs: :func:`cli_reference_markdown` is usable (and tested) on its
own, and mkdocs only calls :func:`on_page_markdown`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

PLACEHOLDER = "<!-- physgrad-cli-reference -->"
HELP_WIDTH = 100
"""Column width of the rendered ``--help`` text (independent of the terminal that builds)."""


@contextmanager
def _columns(width: int) -> Iterator[None]:
    # argparse wraps help text to shutil.get_terminal_size(), which reads $COLUMNS first.
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands, ``{name: subparser}``, in the order they were added."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def cli_reference_markdown(width: int = HELP_WIDTH) -> str:
    """Markdown with the ``--help`` of ``physgrad`` and of every subcommand, one section each."""
    from physgrad.cli import build_parser

    parser = build_parser()
    with _columns(width):
        sections = [("physgrad", parser.format_help())]
        sections += [
            (f"physgrad {name}", sub.format_help()) for name, sub in subcommands(parser).items()
        ]
    parts = []
    for title, text in sections:
        parts.append(f"## `{title}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs event: replace the placeholder in ``cli.md`` with the generated reference."""
    if PLACEHOLDER not in markdown:
        return markdown
    return markdown.replace(PLACEHOLDER, cli_reference_markdown())
