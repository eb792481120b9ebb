"""The main screen: one list view at a time, a `:` command bar and a `/` filter.

The screen owns the `Feed` of the view on show (an informer-backed row model) and hands
its model to the `ResourceTable`; switching view or namespace swaps the feed. `esc` walks
back through the views visited, k9s-style.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Key
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from tuik8s.tui import ops
from tuik8s.tui.cluster import Feed
from tuik8s.tui.messages import SwitchContext, SwitchView
from tuik8s.tui.screens.object_actions import ObjectActions, Selection
from tuik8s.tui.views import BY_ALIAS, BY_NAME, VIEWS, ViewSpec, view_for
from tuik8s.tui.widgets.resource_table import ResourceTable
from tuik8s.tui.widgets.status_bar import StatusBar

HINTS = ":cmd  /filter  ?help  0 all-ns  d describe  y yaml  e edit  l logs  s scale  r restart  ctrl+d delete  m map  q quit"
ALL = {"all", "-a", "-A", "*", "--all-namespaces"}
COMMANDS = sorted({f"{alias}" for alias in BY_ALIAS} | {"map", "ctx", "quit", "q", "help", "pf"})


@dataclass
class Place:
    view: str
    namespace: str | None  # None: all namespaces
    filter: str


class BrowserScreen(ObjectActions):
    BINDINGS = [
        # priority: the prompt takes focus before the keys typed right after ":" arrive
        Binding("colon", "prompt(':')", "Command", priority=True),
        Binding("slash", "prompt('/')", "Filter", priority=True),
        Binding("escape", "back", "Back", show=False),
        Binding("0", "all_namespaces", "All namespaces", show=False),
        Binding("m", "map", "Map", show=False),
        Binding("d", "describe", "Describe", show=False),
        Binding("y", "yaml", "YAML", show=False),
        Binding("e", "edit", "Edit", show=False),
        Binding("l", "logs", "Logs", show=False),
        Binding("p", "logs(True)", "Previous logs", show=False),
        Binding("s", "shell_or_scale", "Shell (pods) / Scale", show=False),
        Binding("F", "port_forward", "Port-forward", show=False),
        Binding("plus", "scale_by(1)", "Scale +1", show=False),
        Binding("minus", "scale_by(-1)", "Scale -1", show=False),
        Binding("r", "restart", "Restart", show=False),
        Binding("ctrl+d", "delete", "Delete", show=False),
        Binding("a", "apply", "Apply", show=False),
        Binding("c", "cordon(True)", "Cordon", show=False),
        Binding("u", "cordon(False)", "Uncordon", show=False),
        Binding("n", "drain", "Drain", show=False),
        Binding("k", "stop_node", "Stop node", show=False),
        Binding("b", "start_node", "Bring node back", show=False),
    ]

    def __init__(self, view: str = "pods", namespace: str | None = None) -> None:
        super().__init__()
        self.spec: ViewSpec = BY_NAME.get(view, BY_NAME["pods"])
        self.namespace = namespace
        self.feed: Feed | None = None
        self.history: list[Place] = []
        self.prompt_kind = ""
        self._filter_before = ""

    def compose(self) -> ComposeResult:
        yield Static(id="crumbs")
        yield ResourceTable(id="table")
        yield Input(id="prompt", suggester=SuggestFromList(COMMANDS, case_sensitive=False))
        yield StatusBar(HINTS, id="status")

    @property
    def table(self) -> ResourceTable:
        return self.query_one("#table", ResourceTable)

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    def on_mount(self) -> None:
        self.prompt.display = False
        self.table.focus()
        self.show_view(self.spec, self.namespace, "", remember=False)
        self.set_interval(0.5, self.update_crumbs)

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()
            self.feed = None

    # ---- views ---------------------------------------------------------------------------

    def show_view(self, spec: ViewSpec, namespace: str | None, filter: str = "", *, remember: bool = True) -> None:
        if remember and self.feed is not None:
            self.history.append(Place(self.spec.name, self.namespace, self.feed.model.filter))
            del self.history[:-20]
        old = self.feed
        self.spec, self.namespace = spec, namespace
        session = self.tui.session
        table = self.table
        if session is None:
            self.feed = None
            table.set_model(None)
            table.placeholder = "not connected: pick a context with :ctx"
        else:
            feed = Feed(session, spec, namespace)
            feed.model.set_filter(filter)
            feed.on_synced = self._synced
            self.feed = feed
            table.placeholder = f"loading {spec.title.lower()}…"
            table.set_model(feed.model, hide_namespace=spec.namespaced and namespace is not None)
            feed.start()
        if old is not None:
            old.stop()
        self.update_crumbs()

    def restart_feed(self) -> None:
        """After a context switch: the same view, on the new session."""
        if self.feed is not None:
            self.feed.stop()
            self.feed = None
        self.show_view(self.spec, self.namespace, "", remember=False)

    def _synced(self) -> None:
        table = self.table
        if table.row_count == 0 and self.feed is not None and not self.feed.model.rows:
            table.placeholder = f"no {self.spec.title.lower()}" + (
                f" in namespace {self.namespace}" if self.namespace and self.spec.namespaced else "")
            table.refresh()
        self.update_crumbs()

    def update_crumbs(self) -> None:
        session = self.tui.session
        feed = self.feed
        ctx = session.context if session is not None else "(no context)"
        scope = ("all" if self.namespace is None else self.namespace) if self.spec.namespaced else "-"
        parts = [f" {ctx}", f"ns: {scope}"]
        table = self.table
        if feed is not None:
            model = feed.model
            error = f"cannot list {self.spec.resource}: {feed.error}" if feed.error and not feed.synced else None
            count = f"{table.row_count}" if not model.filter else f"{table.row_count}/{len(model.rows)}"
            state = "" if feed.synced else (" unavailable (retrying)" if error else " loading…")
            parts.append(f"{self.spec.title} [{count}]{state}")
            if model.filter:
                parts.append(f"/{model.filter}")
            if error:
                if table.placeholder != error:
                    table.placeholder = error
                    table.refresh()
                status = self.query_one(StatusBar)
                if status.message != error:
                    status.show(error, error=True)
        self.query_one("#crumbs", Static).update(Text("  │  ".join(parts), no_wrap=True, overflow="ellipsis"))

    @on(ResourceTable.Rebuilt)
    def _rebuilt(self) -> None:
        self.update_crumbs()

    @on(SwitchView)
    def _switch(self, message: SwitchView) -> None:
        spec = BY_NAME.get(message.view) or view_for(message.view)
        if spec is None:
            return
        namespace = self.namespace if message.scope is None else (message.scope or None)
        self.show_view(spec, namespace, message.filter)

    # ---- selection -----------------------------------------------------------------------

    def selection(self) -> Selection | None:
        key = self.table.selected_key
        if key is None or self.feed is None:
            return None
        ns, name = ops.split_key(key)
        return Selection(self.spec, key, ns, name, self.feed.get(key))

    @on(ResourceTable.Selected)
    def _enter(self, event: ResourceTable.Selected) -> None:
        ns, name = ops.split_key(event.key)
        if self.spec.name == "namespaces":
            self.show_view(BY_NAME["pods"], name)
        elif self.spec.name == "nodes":
            self.show_view(BY_NAME["pods"], None, name)
        else:
            self.action_describe()

    # ---- keys ----------------------------------------------------------------------------

    def on_key(self, event: Key) -> None:
        char = event.character
        if (char and len(char) == 1 and "A" <= char <= "Z" and self.focused is self.table
                and self.table.sort_by_letter(char)):
            event.stop()
            event.prevent_default()
            model = self.table.model
            if model is not None and model.sort_col is not None:
                col = model.spec.columns[model.sort_col]
                self.status(f"sorted by {col.name}{' (reversed)' if model.sort_reverse else ''}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "prompt" and self.prompt_kind:
            return False  # ":" and "/" typed into the open prompt are text
        return True

    def action_prompt(self, kind: str) -> None:
        prompt = self.prompt
        self.prompt_kind = kind
        prompt.display = True
        if kind == "/":
            self._filter_before = self.feed.model.filter if self.feed else ""
            prompt.placeholder = "filter: type to narrow the rows, enter to keep, esc to clear"
            prompt.value = self._filter_before
        else:
            prompt.placeholder = "command: po dp rs svc no ing ev ns ds jobs cm secrets map ctx q  (tab completes)"
            prompt.value = ""
        self.set_focus(prompt)  # at once, not after the keys already queued

    def _close_prompt(self) -> None:
        self.prompt.display = False
        self.prompt_kind = ""
        self.set_focus(self.table)

    @on(Input.Changed, "#prompt")
    def _typed(self, event: Input.Changed) -> None:
        if self.prompt_kind == "/":
            self.apply_filter(event.value)

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        kind = self.prompt_kind
        self._close_prompt()
        if kind == "/":
            self.apply_filter(event.value)
        elif kind == ":":
            self.run_command(event.value)

    def apply_filter(self, text: str) -> None:
        if self.feed is None:
            return
        self.feed.model.set_filter(text)
        self.table.rebuild_now()
        self.update_crumbs()

    def action_back(self) -> None:
        if self.prompt_kind:
            kind = self.prompt_kind
            self._close_prompt()
            if kind == "/":
                self.apply_filter("")
            return
        if self.feed is not None and self.feed.model.filter:
            self.apply_filter("")
            return
        if self.history:
            place = self.history.pop()
            spec = BY_NAME.get(place.view, BY_NAME["pods"])
            self.show_view(spec, place.namespace, place.filter, remember=False)

    def action_all_namespaces(self) -> None:
        if self.namespace is not None:
            self.show_view(self.spec, None, self.feed.model.filter if self.feed else "")
        self.status("all namespaces")

    def action_map(self) -> None:
        if not self._connected():
            return
        from tuik8s.tui.screens.map import MapScreen

        self.app.push_screen(MapScreen())

    def run_command(self, line: str) -> None:
        words = line.strip().lstrip(":").split()
        if not words:
            return
        command, args = words[0].lower(), words[1:]
        if command in ("q", "q!", "quit", "exit"):
            self.app.exit()
        elif command in ("help", "h"):
            self.app.action_help()  # type: ignore[attr-defined]
        elif command == "map":
            self.action_map()
        elif command in ("pf", "portforward", "port-forward", "portforwards"):
            self.action_forwards()
        elif command in ("ctx", "context", "contexts"):
            if args:
                self.post_message(SwitchContext(args[0]))
            else:
                self.tui.choose_context()
        elif command in ("ns", "namespace", "namespaces") and args:
            namespace = None if args[0] in ALL else args[0]
            back = self.spec if self.spec.namespaced else BY_NAME["pods"]
            self.show_view(back, namespace)
            self.status(f"namespace {args[0] if namespace else 'all'}")
        else:
            spec = view_for(command)
            if spec is None:
                self.status(f'unknown command "{command}": try :po :dp :svc :no :ns :map :ctx (? for help)', error=True)
                return
            namespace = self.namespace
            if args:
                namespace = None if args[0] in ALL else args[0]
            self.show_view(spec, namespace)


__all__ = ["BrowserScreen", "VIEWS"]
