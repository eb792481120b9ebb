"""Dialogs: confirm, scale, pick one of a list, pick a manifest file to apply."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, OptionList
from textual.widgets.option_list import Option


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no; `y`/enter confirms, `n`/esc declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n", "answer(False)", "No", show=False),
        Binding("escape", "answer(False)", "Cancel", show=False),
    ]

    def __init__(self, question: str, confirm: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-title", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm, variant="error", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ScaleDialog(ModalScreen[int | None]):
    """The number of replicas; enter scales, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, what: str, replicas: int) -> None:
        super().__init__()
        self.what = what
        self.replicas = replicas

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Scale {self.what}", classes="dialog-title", markup=False)
            yield Input(str(self.replicas), type="integer", id="replicas", placeholder="replicas")
            yield Label("enter: scale   esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        field = self.query_one("#replicas", Input)
        field.focus()
        field.select_all()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        try:
            value = int(event.value)
        except ValueError:
            self.notify("replicas must be a whole number", severity="error")
            return
        if value < 0:
            self.notify("replicas must be 0 or more", severity="error")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceDialog(ModalScreen[str | None]):
    """Pick one of a list (contexts, containers); enter picks, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, title: str, choices: list[str], current: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            options = [
                Option(f"{'* ' if c == self.current else '  '}{c}", id=str(i)) for i, c in enumerate(self.choices)
            ]
            yield OptionList(*options, id="choices")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self.current in self.choices:
            options.highlighted = self.choices.index(self.current)
        elif self.choices:
            options.highlighted = 0

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ManifestTree(DirectoryTree):
    """Directories and the files `a` can apply (YAML and JSON)."""

    def filter_paths(self, paths):  # type: ignore[no-untyped-def]
        return [
            p for p in paths
            if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in (".yaml", ".yml", ".json"))
        ]


class ApplyDialog(ModalScreen[Path | None]):
    """Choose a manifest to apply: pick it in the tree, or type its path and press enter."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-tall"):
            yield Label("Apply a manifest (server-side apply)", classes="dialog-title")
            yield Input(placeholder="path to a YAML file, or pick one below", id="path")
            yield ManifestTree(self.root, id="tree")
            yield Label("enter: apply   tab: switch   esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(Path(event.path))

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.root / path
        if not path.is_file():
            self.notify(f"{path} is not a file", severity="error")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
