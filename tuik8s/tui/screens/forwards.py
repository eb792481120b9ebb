"""`:pf` — the port-forwards started with `F`, and the dialog that asks for the ports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Label, Static

from tuik8s.tui.portforward import PortForwardError, parse_ports
from tuik8s.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tuik8s.tui.app import TuiApp

COLUMNS = ("NAMESPACE", "TARGET", "LOCAL", "REMOTE", "STATE", "MESSAGE")


class PortDialog(ModalScreen[tuple[int, int] | None]):
    """LOCAL:REMOTE for a new forward; enter starts it, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, target: str, ports: str) -> None:
        super().__init__()
        self.target = target
        self.ports = ports

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Port-forward {self.target}", classes="dialog-title", markup=False)
            yield Input(self.ports, id="ports", placeholder="LOCAL:REMOTE")
            yield Label("LOCAL:REMOTE on 127.0.0.1   enter: start   esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        field = self.query_one("#ports", Input)
        field.focus()
        field.select_all()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        try:
            self.dismiss(parse_ports(event.value))
        except PortForwardError as e:
            self.notify(str(e), severity="error", markup=False)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ForwardsScreen(Screen[None]):
    """The active forwards; ctrl+d stops the selected one, esc goes back."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+d", "stop", "Stop", show=False),
        Binding("x", "stop", "Stop", show=False),
        Binding("c", "clear", "Clear ended", show=False),
    ]

    @property
    def tui(self) -> TuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("Port-forwards   (esc back)", id="crumbs")
        yield DataTable(id="forwards", cursor_type="row", zebra_stripes=False)
        yield StatusBar("esc back  ctrl+d/x stop  c clear ended  F on a pod or service starts one", id="status")

    def on_mount(self) -> None:
        table = self.query_one("#forwards", DataTable)
        table.add_columns(*COLUMNS)
        self.tui.port_forwards.changed.append(self.refresh_rows)
        self.refresh_rows()
        table.focus()

    def on_unmount(self) -> None:
        callbacks = self.tui.port_forwards.changed
        if self.refresh_rows in callbacks:
            callbacks.remove(self.refresh_rows)

    def refresh_rows(self) -> None:
        try:
            table = self.query_one("#forwards", DataTable)
        except NoMatches:  # called back after the screen went away
            return
        cursor = table.cursor_row
        table.clear()
        for f in self.tui.port_forwards.active():
            table.add_row(f.namespace, f.target, f"127.0.0.1:{f.local}", str(f.remote), f.state, f.message, key=f.key)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        else:
            self.query_one(StatusBar).show("no port-forwards: press F on a pod or service to start one")

    def _selected_key(self) -> str | None:
        table = self.query_one("#forwards", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value) if row_key.value is not None else None

    def action_stop(self) -> None:
        key = self._selected_key()
        if key is None:
            self.query_one(StatusBar).show("no port-forward selected", error=True)
            return

        async def stop() -> None:
            forward = await self.tui.port_forwards.stop(key)
            if forward is not None:
                self.tui.show_status(f"stopped forwarding 127.0.0.1:{forward.local} -> {forward.target}:{forward.remote}")

        self.app.run_worker(stop(), group="port-forward", exit_on_error=False)

    def action_clear(self) -> None:
        self.tui.port_forwards.forget_ended()

    def action_back(self) -> None:
        self.dismiss(None)


__all__ = ["ForwardsScreen", "PortDialog"]
