"""What the lab can do to a node that the Kubernetes API cannot: stop it and bring it back.

`k` (stop) and `b` (bring back) on a node call a `NodeActions`. The lab provides one that
stops and starts its Docker-in-Docker container, Vagrant VM or hollow node; the UI only
knows this protocol. Without a lab, `NoLabNodes` answers every node with one line saying
it is not a lab node.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class NodeActionError(Exception):
    """A node action that could not be done; the message is one line for the status bar."""


@runtime_checkable
class NodeActions(Protocol):
    """Stop and start the machine behind a Node. Each returns one line saying what it did,
    or raises `NodeActionError` with one line saying why not."""

    async def stop_node(self, name: str, node: dict[str, Any] | None = None) -> str: ...

    async def start_node(self, name: str, node: dict[str, Any] | None = None) -> str: ...


class NoLabNodes:
    """The default: no node is a lab node."""

    async def stop_node(self, name: str, node: dict[str, Any] | None = None) -> str:
        raise NodeActionError(f"node/{name} is not a lab node: nothing to stop")

    async def start_node(self, name: str, node: dict[str, Any] | None = None) -> str:
        raise NodeActionError(f"node/{name} is not a lab node: nothing to bring back")
