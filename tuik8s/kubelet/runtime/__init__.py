"""The container runtime as the kubelet sees it: one protocol, in the spirit of the CRI.

The kubelet keeps no record of its own of what runs: everything it needs to rebuild its
view after a restart is on the containers, as labels (`LABEL_*`). A pod is a *sandbox*
(an infra container owning the pod's network namespace, so its IP is the pod IP) plus
its init and app containers, which join that namespace. Each container carries its pod's
uid, namespace and name, its container name, its kind, the sandbox it belongs to and its
attempt (the restart count), so listing the runtime by label gives back the whole state.

Two further labels scope a kubelet's containers: `LABEL_NODE` (the node name) and
`LABEL_CLUSTER` (derived from the API server it serves). A kubelet only lists, stops and
removes containers carrying both of its own values, so two kubelets sharing one Docker
engine (on the host, or two test clusters) never touch each other's pods.

Implementations: `runtime.docker.DockerRuntime` (real nodes). Hollow nodes simulate
their runtime in memory and do not need this protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_CONTAINER_HASH = "io.kubernetes.container.hash"
LABEL_SANDBOX_ID = "io.kubernetes.sandbox.id"
LABEL_ATTEMPT = "tuik8s.attempt"
LABEL_KIND = "tuik8s.kind"
LABEL_NODE = "tuik8s.node"
LABEL_CLUSTER = "tuik8s.cluster"

# LABEL_KIND values
SANDBOX = "sandbox"
INIT = "init"
APP = "app"

# The container name upstream's runtimes give the sandbox.
SANDBOX_CONTAINER_NAME = "POD"

# ContainerInfo.state values (the runtime's, not the API's)
CREATED, RUNNING, EXITED, UNKNOWN = "created", "running", "exited", "unknown"


class ContainerRuntimeError(Exception):
    """The runtime refused or failed an operation; the message is one line for the user."""


class ImagePullError(ContainerRuntimeError):
    """An image could not be pulled (no registry, no such image, no access)."""


class NoSuchContainer(ContainerRuntimeError):
    """The container is gone (removed meanwhile)."""


@dataclass(frozen=True)
class ContainerInfo:
    """One container (or sandbox) as the runtime reports it."""

    id: str
    pod_uid: str
    pod_namespace: str
    pod_name: str
    container_name: str
    kind: str
    attempt: int
    state: str
    sandbox_id: str = ""
    spec_hash: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    image: str = ""
    image_id: str = ""
    ip: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def never_started(self) -> bool:
        return self.started_at is None


@dataclass(frozen=True)
class Mount:
    """A host path bind-mounted into a container."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass
class SandboxConfig:
    """What the runtime needs to create a pod's sandbox."""

    pod_uid: str
    namespace: str
    name: str
    attempt: int
    hostname: str
    host_network: bool = False
    dns_servers: Sequence[str] = ()
    dns_searches: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ContainerConfig:
    """One container to create in a sandbox, already resolved by the kubelet.

    `command` and `args` keep their Kubernetes meaning (command replaces the image's
    ENTRYPOINT, args its CMD; `None` keeps the image's), with `$(VAR)` already expanded;
    the runtime maps them onto its own notion.
    """

    name: str
    kind: str
    attempt: int
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[tuple[str, str]] = field(default_factory=list)
    working_dir: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    memory_limit: int | None = None
    cpu_limit: float | None = None
    cpu_shares: int | None = None
    tty: bool = False
    stdin: bool = False
    user: str | None = None
    privileged: bool = False
    spec_hash: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


@runtime_checkable
class ContainerRuntime(Protocol):
    """Containers and sandboxes of one node, as the kubelet drives them.

    Every method is async (a blocking client runs in a thread). Listing returns only the
    containers of this kubelet (see the module docstring); ids are the runtime's own.
    """

    async def version(self) -> str:
        """`docker://20.10.24`: what the Node reports as its containerRuntimeVersion."""
        ...

    async def list_containers(self, pod_uid: str | None = None) -> list[ContainerInfo]:
        """Every container and sandbox of this kubelet (of one pod), in any state."""
        ...

    async def image_present(self, image: str) -> bool: ...

    async def pull_image(self, image: str) -> None:
        """Pull `image`; `ImagePullError` with the runtime's message on failure."""
        ...

    async def run_sandbox(self, config: SandboxConfig) -> ContainerInfo:
        """Create and start a pod sandbox (pulling its image if need be); returns it
        running, with its IP."""
        ...

    async def create_container(self, sandbox: ContainerInfo, config: ContainerConfig) -> str:
        """Create (not start) a container in `sandbox`'s namespaces; returns its id."""
        ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace: float) -> None:
        """The stop signal, up to `grace` seconds to exit, then SIGKILL."""
        ...

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None: ...

    async def remove_container(self, container_id: str) -> None:
        """Remove a container (forcibly); a container already gone is not an error."""
        ...

    async def exec(self, container_id: str, argv: Sequence[str], time_limit: float | None = None) -> ExecResult:
        """Run `argv` in the container; the exit code and the combined output."""
        ...

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[bytes]:
        """The container's output (stdout and stderr) in chunks; ends with the container
        when following. Closing the iterator stops the stream."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "APP",
    "CREATED",
    "EXITED",
    "INIT",
    "LABEL_ATTEMPT",
    "LABEL_CLUSTER",
    "LABEL_CONTAINER_HASH",
    "LABEL_CONTAINER_NAME",
    "LABEL_KIND",
    "LABEL_NODE",
    "LABEL_POD_NAME",
    "LABEL_POD_NAMESPACE",
    "LABEL_POD_UID",
    "LABEL_SANDBOX_ID",
    "RUNNING",
    "SANDBOX",
    "SANDBOX_CONTAINER_NAME",
    "UNKNOWN",
    "ContainerConfig",
    "ContainerInfo",
    "ContainerRuntime",
    "ContainerRuntimeError",
    "ExecResult",
    "ImagePullError",
    "Mount",
    "NoSuchContainer",
    "SandboxConfig",
]
