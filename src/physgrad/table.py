"""One small table type: rows under named columns, rendered as Markdown or HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """Rows of cells under ``columns``; cells are shown with ``str`` (format numbers before)."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> Table:
        """Append one row (one cell per column); returns the table."""
        if len(cells) != len(self.columns):
            raise ValueError(f"a row needs {len(self.columns)} cells, got {len(cells)}")
        self.rows.append(list(cells))
        return self

    def markdown(self) -> str:
        """A Markdown (GitHub) table: header, ``|---|`` separator, one line per row."""
        lines = [_line(self.columns), "|" + "---|" * len(self.columns)]
        return "\n".join(lines + [_line(row) for row in self.rows])

    def html(self) -> str:
        """An HTML ``<table>`` (header cells ``<th>``; Markdown code spans become ``<code>``)."""
        cells = [("th", self.columns)] + [("td", row) for row in self.rows]
        body = ["<tr>" + "".join(f"<{tag}>{inline_html(str(c))}</{tag}>" for c in row) + "</tr>"
                for tag, row in cells]
        return "\n".join(["<table>", *body, "</table>"])

    @classmethod
    def from_markdown(cls, lines: list[str]) -> Table:
        """The table of Markdown table ``lines`` (the separator line is dropped)."""
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines
                if not re.fullmatch(r"\|(\s*-+\s*\|)+", line.replace(":", "-"))]
        return cls(rows[0], rows[1:]) if rows else cls([])


def inline_html(text: str) -> str:
    """``text`` HTML-escaped, with Markdown code spans as ``<code>``."""
    return re.sub(r"`(.*?)`", r"<code>\1</code>", html.escape(text))


def _line(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
