"""Aligned plain-text tables for the ``hyperdial`` command."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table", "format_value"]

#: What an empty cell shows.
EMPTY = "-"


def format_value(value: object) -> str:
    """A cell: floats to 6 significant digits, ``None`` as ``-``."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, numeric: Sequence[int] = ()
) -> str:
    """Columns separated by two spaces, each as wide as its widest cell.

    Args:
        headers: Column titles.
        rows: The cells (formatted with :func:`format_value`).
        numeric: Indexes of the columns aligned to the right.

    Returns:
        The table, one line per row after the header, without a trailing newline.
    """
    cells = [[format_value(c).replace("\n", " ") for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    right = set(numeric)

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)])
