"""`?`: every key, and the sort letters of the current view."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tuik8s.tui.views import VIEWS, ViewSpec

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("General", (
        (":", "command bar: a view (:po :dp :rs :svc :no :ing :ev :ns :ds :jobs :cm :secrets), :map, :ctx [NAME], :q"),
        (":po NS", "a view in namespace NS (:po all / :po -A for every namespace)"),
        ("/", "filter the rows (substring, as you type); esc clears it"),
        ("0", "all namespaces"),
        ("m", "cluster map: nodes with their pods"),
        ("?", "this help"),
        ("esc", "back: close the prompt, clear the filter, or return to the previous view"),
        ("q, ctrl+c", "quit"),
    )),
    ("Moving", (
        ("↑ ↓", "move the cursor"),
        ("pgup pgdn", "a page up or down"),
        ("home end", "first or last row"),
        ("← →", "scroll sideways"),
        ("enter", "namespaces: switch to it; nodes: pods on it; others: describe"),
        ("shift+letter", "sort by the column (again: reverse); clicking a header sorts too"),
        ("mouse", "click selects, double click opens, wheel scrolls"),
    )),
    ("On the selected object", (
        ("d", "describe, with its events"),
        ("y", "YAML"),
        ("e", "edit in $EDITOR (KUBE_EDITOR first); saved as a merge patch"),
        ("ctrl+d", "delete (asks first)"),
        ("s", "scale (Deployment, ReplicaSet)"),
        ("+ -", "scale up or down by one"),
        ("r", "restart: Deployment/DaemonSet rollout restart; Pod: delete so it is re-created"),
        ("l", "logs of a pod, followed (asks for the container when there are several)"),
        ("p", "logs of the previous run of the container"),
        ("a", "apply a manifest file (server-side apply)"),
    )),
    ("Nodes (list or map)", (
        ("c", "cordon"),
        ("u", "uncordon"),
        ("n", "drain: cordon, then evict every pod but DaemonSet ones (asks first)"),
        ("k", "stop a lab node"),
        ("b", "bring a lab node back"),
    )),
    ("Logs", (
        ("p", "previous / current run"),
        ("f", "follow on / off"),
        ("c", "choose the container"),
    )),
)


def sort_keys(spec: ViewSpec) -> str:
    return "  ".join(f"shift+{c.sort_key} {c.name}" for c in spec.columns if c.sort_key)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def __init__(self, spec: ViewSpec | None = None) -> None:
        super().__init__()
        self.spec = spec

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2), expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what")
        for section, keys in KEYS:
            table.add_row(Text(section, style="bold underline"), "")
            for key, what in keys:
                table.add_row(Text(key), Text(what))
            table.add_row("", "")
        if self.spec is not None:
            table.add_row(Text(f"Sorting {self.spec.title}", style="bold underline"), "")
            table.add_row("", Text(sort_keys(self.spec)))
        else:
            table.add_row(Text("Views", style="bold underline"), "")
            for v in VIEWS:
                table.add_row(Text(v.title), Text(" ".join(":" + a for a in v.aliases)))
        with VerticalScroll(classes="dialog dialog-tall", id="help"):
            yield Static(Text("Keys   (esc to close)", style="bold"))
            yield Static(table)

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)
