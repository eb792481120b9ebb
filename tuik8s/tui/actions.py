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


class ProviderNodeActions:
    """Node actions over a lab's node provider (anything with `nodes()`, `stop(name)` and
    `start(name)` coroutines, as `tuik8s.nodes.provider.NodeProvider`).

    A node the provider does not list is not a lab node (a hollow node beside a Docker
    lab, a node of another cluster); the provider's own failures become one line.
    """

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    async def _check(self, name: str) -> None:
        try:
            machines = await self.provider.nodes()
        except Exception as e:  # noqa: BLE001 - a provider failure is one line
            raise NodeActionError(_line(e)) from None
        if name not in {m.name for m in machines}:
            raise NodeActionError(f"node/{name} is not a lab node of this cluster")

    async def stop_node(self, name: str, node: dict[str, Any] | None = None) -> str:
        await self._check(name)
        try:
            await self.provider.stop(name)
        except Exception as e:  # noqa: BLE001
            raise NodeActionError(f"cannot stop node/{name}: {_line(e)}") from None
        return f"node/{name} stopped: it goes NotReady, then its pods move to other nodes"

    async def start_node(self, name: str, node: dict[str, Any] | None = None) -> str:
        await self._check(name)
        try:
            await self.provider.start(name)
        except Exception as e:  # noqa: BLE001
            raise NodeActionError(f"cannot start node/{name}: {_line(e)}") from None
        return f"node/{name} started: it turns Ready when its kubelet reports"


def _line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
