"""The row under a DataTable's cursor, by its key."""

from __future__ import annotations

from textual.widgets import DataTable


def cursor_row_key(table: DataTable) -> str | None:
    """The key of the row under `table`'s cursor; None when the table is empty (or the
    cursor is off its rows while it is being refilled)."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # noqa: BLE001 - a table mid-refill: no row yet
        return None
