"""One small table type: rows under named columns, rendered as Markdown."""

from __future__ import annotations

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


def _line(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
