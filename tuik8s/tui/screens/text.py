"""A read-only page of text fetched from the cluster: `d` describe and `y` YAML."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from tuik8s.tui.ops import one_line
from tuik8s.tui.widgets.status_bar import StatusBar


class TextScreen(Screen[None]):
    """Shows what `loader` returns; esc goes back."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("home", "top", "Top", show=False),
        Binding("end", "bottom", "Bottom", show=False),
    ]

    def __init__(self, title: str, loader: Callable[[], Awaitable[str]], *, language: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.loader = loader
        self.language = language
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title_text, no_wrap=True), id="crumbs")
        with VerticalScroll(id="page"):
            yield Static(Text("loading…", style="italic"), id="body")
        yield StatusBar("esc back  ↑↓ pgup pgdn scroll  q quit", id="status")

    def on_mount(self) -> None:
        self.query_one("#page").focus()
        self.load()

    @work(exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        body = self.query_one("#body", Static)
        try:
            self.text = await self.loader()
        except Exception as e:  # noqa: BLE001 - any failure is one line, never a crash
            line = one_line(e)
            body.update(Text(line, style="bold red"))
            self.query_one(StatusBar).show(line, error=True)
            return
        if self.language:
            body.update(Syntax(self.text, self.language, theme="ansi_dark", word_wrap=False, background_color="default"))
        else:
            body.update(Text(self.text))

    def action_back(self) -> None:
        self.dismiss(None)

    def action_top(self) -> None:
        self.query_one("#page", VerticalScroll).scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.query_one("#page", VerticalScroll).scroll_end(animate=False)
