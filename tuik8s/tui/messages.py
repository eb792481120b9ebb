"""Messages the screens and widgets post upwards ("attributes down, messages up")."""

from __future__ import annotations

from textual.message import Message


class Status(Message):
    """One line for the status bar: what an action did, or why it failed."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error


class SwitchView(Message):
    """Show another list view (`:po`, `:svc` ...), optionally in another namespace scope.

    `scope`: a namespace; None keeps the current scope; "" means all namespaces.
    """

    def __init__(self, view: str, scope: str | None = None, filter: str = "") -> None:
        super().__init__()
        self.view = view
        self.scope = scope
        self.filter = filter


class SwitchContext(Message):
    """Reconnect to another kubeconfig context."""

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context
