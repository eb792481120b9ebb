"""`:map` / `m`: the cluster map, nodes as boxes with their pods, live.

The node keys work on the selected box (cordon, uncordon, drain, stop and bring back a lab
node, describe, YAML); enter lists the pods of the node.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from tuik8s.tui.cluster import Session
from tuik8s.tui.messages import SwitchView
from tuik8s.tui.screens.object_actions import ObjectActions, Selection
from tuik8s.tui.views import BY_NAME
from tuik8s.tui.widgets.cluster_map import ClusterMap, MapFeed
from tuik8s.tui.widgets.status_bar import StatusBar

HINTS = "←↑↓→ select node  enter its pods  c cordon  u uncordon  n drain  k stop  b bring back  d describe  esc back"


class MapScreen(ObjectActions):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("m", "back", "Back", show=False),
        Binding("d", "describe", "Describe", show=False),
        Binding("y", "yaml", "YAML", show=False),
        Binding("e", "edit", "Edit", show=False),
        Binding("c", "cordon(True)", "Cordon", show=False),
        Binding("u", "cordon(False)", "Uncordon", show=False),
        Binding("n", "drain", "Drain", show=False),
        Binding("k", "stop_node", "Stop node", show=False),
        Binding("b", "start_node", "Bring node back", show=False),
        Binding("ctrl+d", "delete", "Delete", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._feeds: list[tuple[str, MapFeed]] = []
        self._session: Session | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="crumbs")
        yield ClusterMap(id="map")
        yield StatusBar(HINTS, id="status")

    @property
    def map(self) -> ClusterMap:
        return self.query_one("#map", ClusterMap)

    def on_mount(self) -> None:
        cluster_map = self.map
        cluster_map.focus()
        session = self._session = self.tui.session
        if session is not None:
            for resource in ("nodes", "pods"):
                feed = MapFeed(cluster_map, resource)
                session.subscribe(resource, None, feed)
                self._feeds.append((resource, feed))
        self.update_crumbs()
        self.set_interval(0.5, self.update_crumbs)

    def on_unmount(self) -> None:
        if self._session is not None:
            for resource, feed in self._feeds:
                self._session.unsubscribe(resource, None, feed)
        self._feeds.clear()

    def update_crumbs(self) -> None:
        session = self.tui.session
        ctx = session.context if session is not None else "(no context)"
        errors = []
        if session is not None:
            for resource in ("nodes", "pods"):
                informer = session.informer(resource)
                if informer is not None and informer.last_error and not informer.has_synced:
                    errors.append(informer.last_error)
        text = f" {ctx}  │  Map  │  {self.map.summary()}"
        self.query_one("#crumbs", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))
        if errors:
            status = self.query_one(StatusBar)
            if status.message != errors[0]:
                status.show(errors[0], error=True)

    def selection(self) -> Selection | None:
        node = self.map.selected_node
        if node is None:
            return None
        session = self.tui.session
        informer = session.informer("nodes") if session is not None else None
        obj = informer.get(node) if informer is not None else None
        return Selection(BY_NAME["nodes"], node, None, node, obj)

    @on(ClusterMap.Changed)
    def _changed(self) -> None:
        self.update_crumbs()

    @on(ClusterMap.Opened)
    def _opened(self, event: ClusterMap.Opened) -> None:
        self.dismiss(None)
        self.tui.browser.post_message(SwitchView("pods", "", event.node))

    def action_back(self) -> None:
        self.dismiss(None)
