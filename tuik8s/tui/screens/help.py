"""`?`: every key, and the sort letters of the current view."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tuik8s.tui.views import ViewSpec

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("General", (
        (":", "command: :po :dp :rs :svc :ep :no :ing :ev :ns :ds :jobs :cm :hpa"),
        ("", ":secrets (full names too), :map, :ctx [NAME], :q"),
        (":po NS", "a view in namespace NS; :po all for every namespace"),
        ("/", "filter rows as you type (substring); esc clears"),
        ("0", "all namespaces"),
        ("m", "cluster map: nodes with their pods"),
        (":pf", "port-forwards: ctrl+d stops one"),
        ("?", "this help"),
        ("esc", "back: prompt, filter, then the previous view"),
        ("q, ctrl+c", "quit"),
    )),
    ("Moving", (
        ("↑ ↓", "move the cursor"),
        ("pgup pgdn", "a page up or down"),
        ("home end", "first or last row"),
        ("← →", "scroll sideways"),
        ("enter", "namespace: use it; node: its pods; else describe"),
        ("shift+letter", "sort by a column (again: reverse); or click it"),
        ("mouse", "click selects, double click opens, wheel scrolls"),
    )),
    ("On the selected object", (
        ("d", "describe, with its events"),
        ("y", "YAML"),
        ("e", "edit in $EDITOR (KUBE_EDITOR first), merge patch"),
        ("ctrl+d", "delete (asks first)"),
        ("s", "pod: a shell in it (kubectl exec -it); else scale"),
        ("F", "port-forward a pod or service to 127.0.0.1"),
        ("+ -", "scale up or down by one"),
        ("r", "restart: rollout restart; a Pod is deleted"),
        ("l", "logs, followed (asks which container)"),
        ("p", "logs of the previous run"),
        ("a", "apply a manifest file (server-side apply)"),
    )),
    ("Nodes (list or map)", (
        ("c", "cordon"),
        ("u", "uncordon"),
        ("n", "drain: cordon, evict all but DaemonSet pods"),
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
        # two columns, so every key fits on one 160x45 screen without scrolling
        left, right = KEYS[:2], KEYS[2:]
        with VerticalScroll(classes="dialog dialog-tall", id="help"):
            yield Static(Text("Keys   (esc to close)", style="bold"))
            with Horizontal(id="help-columns"):
                yield Static(self._table(left, []), classes="help-column")
                yield Static(self._table(right, self._sorting()), classes="help-column")

    def _sorting(self) -> list[tuple[str, str]]:
        if self.spec is None:
            return []
        keys = [f"shift+{c.sort_key} {c.name}" for c in self.spec.columns if c.sort_key]
        return [("", "   ".join(keys[i:i + 3])) for i in range(0, len(keys), 3)]

    @staticmethod
    def _table(sections: tuple[tuple[str, tuple[tuple[str, str], ...]], ...], sorting: list[tuple[str, str]]) -> Group:
        tables: list[Table | Text] = []
        for section, keys in (*sections, *((("Sorting", tuple(sorting)),) if sorting else ())):
            table = Table(box=None, show_header=False, padding=(0, 1), expand=True, title=section,
                          title_justify="left", title_style="bold underline")
            table.add_column("key", style="bold", no_wrap=True, width=13)
            table.add_column("what", ratio=1)
            for key, what in keys:
                table.add_row(Text(key), Text(what))
            tables.append(table)
            tables.append(Text(""))
        return Group(*tables)

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)
