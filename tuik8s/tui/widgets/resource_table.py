"""`ResourceTable`: a virtual list of resources that stays fast at 10,000 rows.

Textual's `DataTable` measures every cell of every row when rows are added and throws its
render caches away on any cell update, which costs seconds at this size (TEXTUAL.md). This
widget instead renders only the lines on screen (`render_line`) from a `RowModel`:

- The header is line 0 and never scrolls; data line `y` shows row `scroll_y + y - 1`.
- The cursor is a row position; moving it redraws the old and the new line only.
- A live update redraws its line only if the row is visible; a structural change (rows
  added, removed, re-sorted) rebuilds the model's order, coalesced to a few per second so a
  burst of watch events costs one rebuild.
- The cursor follows the selected object across rebuilds, as k9s keeps it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuik8s.tui.model import RowModel
from tuik8s.tui.views import age

GAP = 2
STRUCTURAL_INTERVAL = 0.25  # at most four rebuilds a second under a stream of events
FLUSH_DELAY = 0.03
AGE_TICK = 2.0


def _fit(text: str, width: int) -> str:
    if text.isascii():
        return text[:width].ljust(width) if len(text) != width else text
    return set_cell_size(text, width)


class ResourceTable(ScrollView, can_focus=True):
    """A list of rows from a `RowModel`, with a cursor, sorting and mouse selection."""

    DEFAULT_CSS = """
    ResourceTable {
        background: $surface;
        color: $foreground;
    }
    ResourceTable > .resource-table--header {
        text-style: bold;
        color: $text-accent;
        background: $panel;
    }
    ResourceTable > .resource-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    ResourceTable:blur > .resource-table--cursor {
        background: $block-cursor-blurred-background;
        text-style: none;
    }
    ResourceTable > .resource-table--warn { color: $warning; }
    ResourceTable > .resource-table--error { color: $error; }
    ResourceTable > .resource-table--done { color: $text-muted; }
    ResourceTable > .resource-table--term { color: $secondary; }
    ResourceTable > .resource-table--empty { color: $text-muted; text-style: italic; }
    """

    COMPONENT_CLASSES = {
        "resource-table--header",
        "resource-table--cursor",
        "resource-table--warn",
        "resource-table--error",
        "resource-table--done",
        "resource-table--term",
        "resource-table--empty",
    }

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "top", "Top", show=False),
        Binding("end", "bottom", "Bottom", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    class Selected(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, table: ResourceTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    class Rebuilt(Message):
        """The rows were re-filtered or re-sorted (counts may have changed)."""

        def __init__(self, table: ResourceTable) -> None:
            super().__init__()
            self.table = table

    class SortChanged(Message):
        def __init__(self, table: ResourceTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model: RowModel | None = None
        self.cursor = 0
        self.placeholder = ""
        self.hide_namespace = False
        self._cols: list[int] = []
        self._flush_pending = False
        self._last_rebuild = 0.0
        self._selected: str | None = None
        self.rebuilds = 0  # for tests and the benchmark
        self.clock: Callable[[], float] = time.time  # ages are drawn against this

    # ---- the model -----------------------------------------------------------------------

    def set_model(self, model: RowModel | None, *, hide_namespace: bool = False) -> None:
        if self.model is not None and self.model is not model:
            self.model.listener = None
        self.model = model
        self.hide_namespace = hide_namespace
        self.cursor = 0
        self._selected = None
        self.scroll_to(0, 0, animate=False)
        if model is not None:
            model.listener = self._model_changed
            model.structural = True
            self._rebuild()
        else:
            self._update_virtual_size()
        self.refresh()

    def on_mount(self) -> None:
        self.set_interval(AGE_TICK, self._tick)

    def _tick(self) -> None:
        model = self.model
        if model is not None and model.order and any(model.spec.columns[c].age for c in self._cols):
            self.refresh()

    def _model_changed(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            if self.model is not None and not self.model.order:
                self.call_later(self._flush)  # the first rows: show them at once
            else:
                self.set_timer(FLUSH_DELAY, self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        model = self.model
        if model is None:
            return
        if model.structural:
            wait = STRUCTURAL_INTERVAL - (time.monotonic() - self._last_rebuild)
            if wait > 0 and model.order:
                self._flush_pending = True
                self.set_timer(wait, self._flush)
                self._refresh_changed()
                return
            self._rebuild()
            self.refresh()
        else:
            self._refresh_changed()

    def _refresh_changed(self) -> None:
        model = self.model
        if model is None or not model.changed:
            return
        changed, model.changed = model.changed, set()
        top = round(self.scroll_y)
        height = self.scrollable_content_region.height
        width = self.scrollable_content_region.width
        index = model.index
        for key in changed:
            pos = index.get(key)
            if pos is not None:
                y = pos - top + 1
                if 1 <= y < height:
                    self.refresh(Region(0, y, width, 1))

    def rebuild_now(self) -> None:
        """Apply a filter or sort change at once (a user action, not a watch event)."""
        self._rebuild()
        self.refresh()

    def _rebuild(self) -> None:
        model = self.model
        if model is None:
            return
        selected = self.selected_key
        model.rebuild()
        self._last_rebuild = time.monotonic()
        self.rebuilds += 1
        spec = model.spec
        self._cols = [i for i in range(len(spec.columns)) if not (i == 0 and self.hide_namespace and spec.namespaced)]
        if selected is not None and selected in model.index:
            self.cursor = model.index[selected]
        else:
            self.cursor = max(0, min(self.cursor, len(model.order) - 1))
        self._selected = model.key_at(self.cursor)
        self._update_virtual_size()
        self._scroll_cursor_visible()
        self.post_message(self.Rebuilt(self))

    def _line_width(self) -> int:
        model = self.model
        if model is None:
            return 0
        return 1 + sum(model.widths[c] + GAP for c in self._cols)

    def _update_virtual_size(self) -> None:
        rows = len(self.model.order) if self.model is not None else 0
        size = Size(self._line_width(), rows + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    # ---- selection -------------------------------------------------------------------------

    @property
    def selected_key(self) -> str | None:
        model = self.model
        if model is None:
            return None
        return model.key_at(self.cursor)

    @property
    def row_count(self) -> int:
        return len(self.model.order) if self.model is not None else 0

    @property
    def visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, position: int) -> None:
        count = self.row_count
        if count == 0:
            return
        position = max(0, min(position, count - 1))
        old = self.cursor
        if position == old:
            return
        self.cursor = position
        self._selected = self.selected_key
        self._refresh_position(old)
        self._refresh_position(position)
        self._scroll_cursor_visible()

    def select_key(self, key: str) -> bool:
        model = self.model
        if model is None or key not in model.index:
            return False
        self.move_cursor(model.index[key])
        return True

    def _refresh_position(self, position: int) -> None:
        y = position - round(self.scroll_y) + 1
        region = self.scrollable_content_region
        if 1 <= y < region.height:
            self.refresh(Region(0, y, region.width, 1))

    def _scroll_cursor_visible(self) -> None:
        top = round(self.scroll_y)
        visible = self.visible_rows
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.visible_rows)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.visible_rows)

    def action_top(self) -> None:
        self.move_cursor(0)

    def action_bottom(self) -> None:
        self.move_cursor(self.row_count - 1)

    def action_select(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.Selected(self, key))

    # ---- sorting ---------------------------------------------------------------------------

    def sort_by(self, column: int) -> None:
        """Sort by `column`; the same column again reverses the order."""
        model = self.model
        if model is None:
            return
        reverse = not model.sort_reverse if model.sort_col == column else False
        model.set_sort(column, reverse)
        self.rebuild_now()
        self.post_message(self.SortChanged(self))

    def sort_by_letter(self, letter: str) -> bool:
        model = self.model
        if model is None:
            return False
        for i, column in enumerate(model.spec.columns):
            if column.sort_key == letter and i in self._cols:
                self.sort_by(i)
                return True
        return False

    # ---- mouse -----------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or self.model is None:
            return
        if offset.y == 0:
            x = offset.x + round(self.scroll_x) - 1
            for c in self._cols:
                width = self.model.widths[c] + GAP
                if x < width:
                    self.sort_by(c)
                    break
                x -= width
            return
        position = round(self.scroll_y) + offset.y - 1
        if position < self.row_count:
            self.move_cursor(position)
            if event.chain >= 2:
                self.action_select()

    # ---- rendering -------------------------------------------------------------------------

    def _header_text(self) -> str:
        model = self.model
        assert model is not None
        parts = [" "]
        for c in self._cols:
            name = model.spec.columns[c].name
            if model.sort_col == c:
                name += "↓" if model.sort_reverse else "↑"
            parts.append(_fit(name, model.widths[c] + GAP))
        return "".join(parts)

    def _row_text(self, row: tuple[str, ...], now: float) -> str:
        model = self.model
        assert model is not None
        columns = model.spec.columns
        widths = model.widths
        parts = [" "]
        for c in self._cols:
            cell = row[c]
            if columns[c].age:
                cell = age(cell, now)
            parts.append(_fit(cell, widths[c]))
            parts.append("  ")
        return "".join(parts)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        model = self.model
        if model is None:
            return Strip.blank(width, base)
        scroll_x = round(self.scroll_x)
        if y == 0:
            style = base + self.get_component_rich_style("resource-table--header")
            return self._strip(self._header_text(), style, scroll_x, width)
        position = round(self.scroll_y) + y - 1
        key = model.key_at(position)
        if key is None:
            if y == 1 and not model.order and self.placeholder:
                style = base + self.get_component_rich_style("resource-table--empty")
                return self._strip(f" {self.placeholder}", style, 0, width)
            return Strip.blank(width, base)
        row = model.rows.get(key)
        if row is None:
            return Strip.blank(width, base)
        style = base
        status = model.spec.status
        if status is not None:
            kind = status(row)
            if kind:
                style = base + self.get_component_rich_style(f"resource-table--{kind}")
        if position == self.cursor:
            style = style + self.get_component_rich_style("resource-table--cursor")
        return self._strip(self._row_text(row, self.clock()), style, scroll_x, width)

    @staticmethod
    def _strip(text: str, style: Style, scroll_x: int, width: int) -> Strip:
        strip = Strip([Segment(text, style)], cell_len(text))
        return strip.crop_extend(scroll_x, scroll_x + width, style)
