"""The status bar: one line saying what the last action did, or why it failed.

An error stays until the next message (it is what the user needs to read); a plain
message gives way to the key hints after a few seconds.
"""

from __future__ import annotations

from rich.text import Text
from textual.timer import Timer
from textual.widgets import Static

INFO_SECONDS = 6.0


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    StatusBar.-error { color: $text-error; background: $error-muted; }
    StatusBar.-info { color: $text-success; }
    """

    def __init__(self, hints: str = "", **kwargs: object) -> None:
        super().__init__("", markup=False, **kwargs)  # type: ignore[arg-type]
        self.hints = hints
        self.message = ""
        self.is_error = False
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self._show_hints()

    def show(self, text: str, *, error: bool = False) -> None:
        text = " ".join(text.split())
        self.message = text
        self.is_error = error
        self.set_class(error, "-error")
        self.set_class(not error, "-info")
        self.update(Text(text, no_wrap=True, overflow="ellipsis"))
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if not error:
            self._timer = self.set_timer(INFO_SECONDS, self._show_hints)

    def clear(self) -> None:
        self.message = ""
        self.is_error = False
        self._show_hints()

    def set_hints(self, hints: str) -> None:
        self.hints = hints
        if not self.message:
            self._show_hints()

    def _show_hints(self) -> None:
        self._timer = None
        if self.is_error:
            return
        self.message = ""
        self.remove_class("-error", "-info")
        self.update(Text(self.hints, no_wrap=True, overflow="ellipsis"))
