"""`l` logs: a container's log, followed as it grows; `p` switches to the previous run.

The stream runs in an exclusive worker, so switching container or previous/current
cancels the old stream (closing its connection) before the new one starts.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Log, Static

from tuik8s.client.client import ApiClient
from tuik8s.tui.ops import log_lines, one_line
from tuik8s.tui.widgets.status_bar import StatusBar

MAX_LINES = 10_000


class LogsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("p", "toggle_previous", "Previous"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("c", "choose_container", "Container"),
        Binding("home", "top", "Top", show=False),
        Binding("end", "bottom", "Bottom", show=False),
    ]

    def __init__(self, client: ApiClient, namespace: str, pod: str, container: str | None,
                 containers: list[str], *, previous: bool = False) -> None:
        super().__init__()
        self.client = client
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.containers = containers
        self.previous = previous
        self.follow = True
        self.error: str | None = None
        self._pending: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="crumbs")
        yield Log(max_lines=MAX_LINES, auto_scroll=True, id="log")
        yield StatusBar("esc back  p previous/current  f follow  c container  q quit", id="status")

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self.set_interval(0.05, self._flush)
        self.restart_stream()

    def _crumbs(self, state: str) -> None:
        which = "previous" if self.previous else "current"
        text = f" Logs  {self.namespace}/{self.pod}  container {self.container or '-'}  ({which}{', following' if self.follow and not self.previous else ''})  {state}"
        self.query_one("#crumbs", Static).update(Text(text, no_wrap=True))

    def restart_stream(self) -> None:
        self.query_one(Log).clear()
        self.error = None
        self._crumbs("connecting…")
        self.stream()

    @work(exclusive=True, exit_on_error=False, group="logs")
    async def stream(self) -> None:
        self._pending.clear()
        try:
            first = True
            async for line in log_lines(self.client, self.namespace, self.pod, self.container,
                                        follow=self.follow and not self.previous, previous=self.previous):
                if first:
                    self._crumbs("streaming")
                    first = False
                self._pending.append(line)
            self._flush()
            self._crumbs("ended")
        except Exception as e:  # noqa: BLE001 - a failed stream is one line, never a crash
            self._flush()
            self.error = one_line(e)
            self.query_one(Log).write_line(self.error)
            self.query_one(StatusBar).show(self.error, error=True)
            self._crumbs("failed")

    def _flush(self) -> None:
        # lines arrive one by one; writing them in batches keeps a burst to one repaint
        if self._pending:
            lines, self._pending = self._pending, []
            self.query_one(Log).write_lines(lines)

    def action_back(self) -> None:
        self.workers.cancel_group(self, "logs")
        self.dismiss(None)

    def action_toggle_previous(self) -> None:
        self.previous = not self.previous
        self.restart_stream()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.restart_stream()

    def action_choose_container(self) -> None:
        from tuik8s.tui.screens.dialogs import ChoiceDialog

        if len(self.containers) < 2:
            self.query_one(StatusBar).show(f"pod {self.pod} has one container")
            return

        def chosen(name: str | None) -> None:
            if name:
                self.container = name
                self.restart_stream()

        self.app.push_screen(ChoiceDialog("Container", self.containers, self.container), chosen)

    def action_top(self) -> None:
        self.query_one(Log).scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.query_one(Log).scroll_end(animate=False)
