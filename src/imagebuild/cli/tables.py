"""Plain text tables that stay one row per item at any width.

On a narrow terminal the least useful columns give way first, in the order each
column names (an id shortens before a name ever does; the full id is in --json);
piped, every value is printed whole on one line, for grep and awk. The width is
``COLUMNS`` when set, else the terminal's, else unlimited.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

GAP = "  "
ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    title: str
    right: bool = False
    # Order in which columns give way when the table is too wide: 1 first; 0 never.
    squeeze: int = 0
    # Narrowest it may be cut to (with …) before it is dropped; 0: dropped whole.
    keep: int = 0


def output_width() -> int | None:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout is not None and sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], limit: int | None) -> list[int]:
    """Each column's width (0: dropped) so the table fits ``limit``."""
    sizes = [max([len(c.title), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]

    def total() -> int:
        shown = [size for size in sizes if size]
        return sum(shown) + len(GAP) * (len(shown) - 1)

    if limit is None:
        return sizes
    for index in sorted((i for i, c in enumerate(columns) if c.squeeze), key=lambda i: columns[i].squeeze):
        excess = total() - limit
        if excess <= 0:
            break
        column = columns[index]
        if column.keep:  # cut, as far as it goes; the next column gives way for the rest
            sizes[index] = max(max(column.keep, len(column.title)), sizes[index] - excess)
        else:
            sizes[index] = 0
    return sizes


def _cell(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: max(width - 1, 0)] + ELLIPSIS
    return text.rjust(width) if right else text.ljust(width)


def render(columns: Sequence[Column], rows: Sequence[Sequence[str]], limit: int | None = None) -> list[str]:
    sizes = widths(columns, rows, limit)
    lines = []
    for cells in [[c.title for c in columns], *rows]:
        parts = [_cell(text, size, column.right) for text, size, column in
                 zip(cells, sizes, columns, strict=True) if size]
        lines.append(GAP.join(parts).rstrip())
    return lines


def echo(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    import typer

    for line in render(columns, rows, output_width()):
        typer.echo(line)
