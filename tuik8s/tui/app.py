"""The Textual app: thin. It holds the session (client + informers of one kubeconfig
context) and the state that outlives a screen (kept edits, pending scales), shows status
lines, and switches contexts; the screens do the rest.

Namespace arguments: `None` means the context's namespace (as kubectl), `""` (or "all")
all namespaces (kubectl's `-A`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import App
from textual.binding import Binding

from tuik8s.client.kubeconfig import KubeconfigError
from tuik8s.tui import gcpolicy
from tuik8s.tui.actions import NodeActions, NoLabNodes
from tuik8s.tui.cluster import Session
from tuik8s.tui.messages import Status, SwitchContext
from tuik8s.tui.portforward import PortForwards
from tuik8s.tui.screens.browser import BrowserScreen
from tuik8s.tui.widgets.status_bar import StatusBar

ALL_NAMESPACES = ("", "all", "*", "-A")


class TuiApp(App[int]):
    """k9s-style browsing and operating of a Kubernetes cluster."""

    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute: subclasses live elsewhere
    TITLE = "tuik8s"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+c", "quit", "Quit", priority=True, show=False),
        Binding("q", "quit", "Quit", show=False),
        Binding("question_mark", "help", "Help", show=False),
    ]

    def __init__(
        self,
        context: str | None = None,
        namespace: str | None = None,
        *,
        view: str = "pods",
        node_actions: NodeActions | None = None,
        session: Session | None = None,
    ) -> None:
        super().__init__()
        self.node_actions: NodeActions = node_actions or NoLabNodes()
        self.pending_scale: dict[tuple[str, str], int] = {}
        self.kept_edits: dict[tuple[str, str], Any] = {}
        self.port_forwards = PortForwards()  # `F`; listed by `:pf`; stopped when the UI exits
        self.startup_error: str | None = None
        self.session: Session | None = session
        if session is None:
            try:
                self.session = Session.from_kubeconfig(context)
            except KubeconfigError as e:
                self.startup_error = str(e)
        if namespace in ALL_NAMESPACES:
            scope: str | None = None
        elif namespace:
            scope = namespace
        else:
            scope = self.session.default_namespace if self.session is not None else None
        self.browser = BrowserScreen(view, scope)

    def on_mount(self) -> None:
        self.push_screen(self.browser)
        if self.startup_error:
            self.show_status(self.startup_error, error=True)
        gcpolicy.freeze()  # what start-up made (modules, classes, the screen) stays
        self.set_interval(5.0, gcpolicy.maybe_collect_when_idle)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)):
            gcpolicy.note_input()
        await super().on_event(event)

    async def on_unmount(self) -> None:
        await self.port_forwards.stop_all()
        if self.session is not None:
            await self.session.close()

    # ---- status --------------------------------------------------------------------------

    def show_status(self, text: str, *, error: bool = False) -> None:
        """One line on the status bar of the screen on top (a dialog shows it as a toast)."""
        bar: StatusBar | None
        try:
            bar = self.screen.query_one("#status", StatusBar)
        except Exception:  # noqa: BLE001 - a dialog has no status bar
            self.notify(text, severity="error" if error else "information", markup=False)
            bar = self.browser.query_one("#status", StatusBar) if self.browser.is_mounted else None
        if bar is not None:
            bar.show(text, error=error)

    @on(Status)
    def _status(self, message: Status) -> None:
        self.show_status(message.text, error=message.error)

    # ---- help, contexts ------------------------------------------------------------------

    def action_help(self) -> None:
        from tuik8s.tui.screens.help import HelpScreen

        spec = self.browser.spec if self.screen is self.browser else None
        self.push_screen(HelpScreen(spec))

    def choose_context(self) -> None:
        from tuik8s.client.kubeconfig import contexts
        from tuik8s.tui.screens.dialogs import ChoiceDialog

        try:
            names = contexts()
        except KubeconfigError as e:
            self.show_status(str(e), error=True)
            return
        if not names:
            self.show_status("the kubeconfig has no contexts", error=True)
            return
        current = self.session.context if self.session is not None else None

        def chosen(name: str | None) -> None:
            if name:
                self.switch_context(name)

        self.push_screen(ChoiceDialog("Context", names, current), chosen)

    @on(SwitchContext)
    def _switch_context(self, message: SwitchContext) -> None:
        self.switch_context(message.context)

    def switch_context(self, name: str) -> None:
        try:
            session = Session.from_kubeconfig(name)
        except KubeconfigError as e:
            self.show_status(str(e), error=True)
            return
        old, self.session = self.session, session
        self.pending_scale.clear()
        self.kept_edits.clear()
        while self.screen is not self.browser and len(self.screen_stack) > 1:
            self.pop_screen()
        self.browser.restart_feed()
        if old is not None:
            asyncio.ensure_future(old.close())
        self.show_status(f"context {session.context} ({session.server})")

    def apply_namespace(self) -> str:
        if self.browser.namespace:
            return self.browser.namespace
        return self.session.default_namespace if self.session is not None else "default"


def run_tui(context: str | None = None, namespace: str | None = None, *,
            node_actions: NodeActions | None = None) -> int:
    """Run the UI on this terminal until the user quits; returns the exit code.

    `context`: a kubeconfig context (default: the current one). `namespace`: None for the
    context's namespace, "" for all namespaces (`-A`). `node_actions`: the lab's stop and
    start of nodes (`k`, `b`); without it every node says it is not a lab node.
    """
    app = TuiApp(context, namespace, node_actions=node_actions)
    result = app.run()
    if app.startup_error and app.session is None:
        print(f"tuik8s: error: {app.startup_error}")
    return int(result or 0)
