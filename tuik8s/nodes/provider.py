"""The node provider protocol: what makes and breaks the machines a lab's kubelets run on.

A provider owns machines, not Kubernetes objects: it creates a cluster's nodes (Docker-in-
Docker containers, Vagrant VMs, hollow kubelets), stops, starts and kills them for failure
drills, and puts container images on them. Whether a node is Ready is the API server's word,
read through the client by whoever drives the provider (`tuik8s lab`), so every provider is
judged the same way (DESIGN rule 7).

Every method is a coroutine: providers shell out (docker, vagrant), and that runs in threads
or subprocesses, never on the event loop (DESIGN rule 8). Failures a user can act on raise
`ProviderError` with one readable line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class ProviderError(Exception):
    """A provider failure, stated in one line a user can act on."""


@dataclass(frozen=True)
class NodeMachine:
    """One machine of a lab, as its provider sees it."""

    name: str  # the Node's name in the API, and the machine's hostname
    state: str  # "running", "stopped", "created", "restarting", ... ("missing": gone)
    address: str | None = None  # the node's IP on the lab network (its InternalIP)
    pod_cidr: str | None = None
    machine_id: str = ""  # the container name, the VM name, ...
    runtime_ready: bool | None = None  # its container runtime answers (None: not asked)


@dataclass
class LabStatus:
    """What `lab status` shows before it asks the API about the Nodes."""

    cluster: str
    provider: str
    network: str | None = None  # None: no network (no lab) yet
    subnet: str | None = None
    api_server: str | None = None  # the URL nodes use
    nodes: list[NodeMachine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line each: missing routes, ...


@dataclass(frozen=True)
class LoadResult:
    """What `load_image` did on each node."""

    image: str
    loaded: tuple[str, ...]  # nodes that got the image
    present: tuple[str, ...]  # nodes that had the same image ID already


@runtime_checkable
class NodeProvider(Protocol):
    """Makes the machines of one cluster's lab."""

    name: str  # "docker", "vagrant", "hollow"

    async def up(self, n: int) -> list[NodeMachine]:
        """Make sure nodes 1..n exist and run (adding the missing ones, never duplicating);
        on failure, undo what this call made and raise `ProviderError`."""
        ...

    async def down(self) -> None:
        """Remove every node and everything the provider made for the lab."""
        ...

    async def status(self) -> LabStatus: ...

    async def nodes(self) -> list[NodeMachine]: ...

    async def stop(self, node: str) -> None:
        """Stop the node as a shutdown does (its kubelet and runtime stop cleanly)."""
        ...

    async def start(self, node: str) -> None: ...

    async def kill(self, node: str) -> None:
        """Stop the node at once, as a power cut does."""
        ...

    async def load_image(self, image: str, nodes: Sequence[str] | None = None) -> LoadResult:
        """Put a locally built image on the nodes (all running ones by default)."""
        ...
