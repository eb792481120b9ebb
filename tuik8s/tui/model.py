"""The slim display model of a list view: one tuple of strings per object.

The informer's cache owns the objects; the table only needs the strings it draws. The
model keeps them by key (`namespace/name`), the displayed order (filtered, sorted) and a
key -> position map, so a live update to one object finds its line in O(1) and redraws
only that line when it is on screen.

Changes are split in two kinds, because they cost very differently at 10,000 rows:
- in place: the row's text changed but its position and visibility did not (the usual
  status update). The table redraws that one line if it is visible.
- structural: a row was added or removed, or changed in the sort column or in whether it
  matches the filter. The order must be rebuilt (filter + sort + index, ~30 ms for 10,000
  rows), so the table coalesces these and rebuilds a few times a second at most.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.cells import cell_len

from tuik8s.tui.views import Row, ViewSpec

_DIGITS = re.compile(r"-?\d+")


def _numeric(cell: str) -> float:
    match = _DIGITS.match(cell)
    return float(match.group()) if match else float("-inf")


class RowModel:
    """Rows of one view by key, and the order the table shows them in.

    What a rebuild needs is cached between rebuilds, so typing a filter over 10,000 rows
    costs a substring test per row: the keys in key order (changed only by adds and
    removes), each row's lower-cased text (made on the first filter, dropped when the row
    changes) and the column widths (over all rows, so columns do not jump as the filter
    narrows; recomputed only when rows come or go or a cell outgrows its column).
    """

    def __init__(self, spec: ViewSpec) -> None:
        self.spec = spec
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.index: dict[str, int] = {}
        self.sort_col: int | None = spec.default_sort
        self.sort_reverse = spec.default_reverse
        self.filter = ""
        self.widths: list[int] = [len(c.name) for c in spec.columns]
        self.structural = True  # the order needs a rebuild
        self.changed: set[str] = set()  # keys changed in place since the last flush
        self.listener: Callable[[], None] | None = None
        self._keys: list[str] | None = None  # all keys, sorted
        self._text: dict[str, str] = {}  # key -> lower-cased row text, for the filter
        self._widths_valid = False

    # ---- writes (from informer handlers) -------------------------------------------------

    def upsert(self, key: str, row: Row) -> None:
        old = self.rows.get(key)
        self.rows[key] = row
        if old == row:
            return
        if self._text:
            self._text.pop(key, None)
        if old is None:
            self.structural = True
            self._keys = None
            self._widths_valid = False
        elif self.structural:
            self._check_widths(row)
        elif key in self.index:
            col = self.sort_col
            if (col is not None and old[col] != row[col]) or (self.filter and not self._matches(key, row)):
                self.structural = True
            else:
                self.changed.add(key)
            self._check_widths(row)
        elif self.filter and self._matches(key, row):
            self.structural = True
        self._notify()

    def _check_widths(self, row: Row) -> None:
        widths, columns = self.widths, self.spec.columns
        for i, cell in enumerate(row):
            if len(cell) > widths[i] and widths[i] < columns[i].max_width and not columns[i].age:
                self.structural = True  # a wider cell: recompute widths
                self._widths_valid = False
                return

    def remove(self, key: str) -> None:
        if self.rows.pop(key, None) is not None:
            self._text.pop(key, None)
            self._keys = None
            self._widths_valid = False
            if key in self.index or not self.filter:
                self.structural = True
            self._notify()

    def replace_all(self, rows: dict[str, Row]) -> None:
        self.rows = rows
        self._keys = None
        self._text = {}
        self._widths_valid = False
        self.structural = True
        self._notify()

    def _notify(self) -> None:
        if self.listener is not None:
            self.listener()

    # ---- the view ------------------------------------------------------------------------

    def _matches(self, key: str, row: Row) -> bool:
        text = self._text.get(key)
        if text is None:
            text = self._text[key] = " ".join(row).lower()
        return self.filter in text

    def set_filter(self, text: str) -> None:
        text = text.strip().lower()
        if text != self.filter:
            self.filter = text
            self.structural = True

    def set_sort(self, col: int | None, reverse: bool = False) -> None:
        self.sort_col, self.sort_reverse = col, reverse
        self.structural = True

    def rebuild(self) -> None:
        """Filter, sort and index the rows; recompute the column widths if needed."""
        rows = self.rows
        if self._keys is None:
            self._keys = sorted(rows)
        keys = self._keys
        if self.filter:
            needle, texts, join = self.filter, self._text, " ".join
            if len(texts) < len(rows):
                for k in keys:
                    if k not in texts:
                        texts[k] = join(rows[k]).lower()
            keys = [k for k in keys if needle in texts[k]]
        else:
            keys = list(keys)
        col = self.sort_col
        if col is not None:
            column = self.spec.columns[col]
            if column.numeric:
                keys.sort(key=lambda k: _numeric(rows[k][col]), reverse=self.sort_reverse)
            elif column.age:
                # youngest first, as "ascending age"; timestamps sort as text
                keys.sort(key=lambda k: rows[k][col], reverse=not self.sort_reverse)
            else:
                keys.sort(key=lambda k: rows[k][col], reverse=self.sort_reverse)
        self.order = keys
        self.index = {k: i for i, k in enumerate(keys)}
        if not self._widths_valid:
            self.widths = self._widths(self._keys)
            self._widths_valid = True
        self.structural = False
        self.changed.clear()

    def _widths(self, keys: list[str]) -> list[int]:
        columns = self.spec.columns
        widths = [len(c.name) for c in columns]
        if not keys:
            return widths
        rows = self.rows
        for i, column in enumerate(columns):
            if column.age:
                widths[i] = max(widths[i], 6)
                continue
            cells = {rows[k][i] for k in keys}
            longest = max(map(len, cells))
            if longest > widths[i]:
                if any(not c.isascii() for c in cells):
                    longest = max(map(cell_len, cells))
                widths[i] = min(max(widths[i], longest), column.max_width)
        return widths

    def key_at(self, position: int) -> str | None:
        if 0 <= position < len(self.order):
            return self.order[position]
        return None

    def __len__(self) -> int:
        return len(self.order)
