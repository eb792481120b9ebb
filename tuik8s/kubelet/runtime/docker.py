"""`DockerRuntime`: pods on a Docker engine, through its API and python-on-whales.

A pod is laid out as dockershim laid it out:

- the **sandbox** is an infra container (`k8s_POD_<pod>_<ns>_<uid>_<attempt>`) running a
  tiny image (`sleep infinity` in busybox by default) on the node's bridge network; it
  owns the pod's network and IPC namespaces, its hostname and its resolv.conf, and its IP
  is the pod IP;
- every init and app container (`k8s_<container>_<pod>_<ns>_<uid>_<attempt>`) joins it
  with `--network container:<sandbox>` (so containers of a pod share localhost) and
  `--ipc container:<sandbox>`.

Names are deterministic, so a repeated create of the same attempt is refused by the
engine instead of giving two containers. Everything is labelled (see `runtime`) so the
kubelet can rebuild its view from `docker ps` alone.

What a pod start needs (list, inspect, image check, create, start), stop, kill, remove
and exec (probes run it every period) go to the engine's API on its socket
(`runtime.engine`): a docker CLI process per call cost more CPU than the engine's own
work, and a pod start waited for ten of them in a row. The create bodies are what the
CLI sends for the same flags (`sandbox_create_body`, `container_create_body`), so
containers look as they did. Listing re-inspects only the containers whose state changed since the last look (the
engine's list lacks start and exit details), as upstream's PLEG compares states.

Pulls (the CLI brings the user's registry credentials) stay with the docker CLI through
python-on-whales, in `asyncio.to_thread`, and logs run the CLI as an asyncio subprocess
so a client that goes away can end a `--follow` at once: neither is on a hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from tuik8s.kubelet.runtime import (
    APP,
    CREATED,
    EXITED,
    LABEL_ATTEMPT,
    LABEL_CONTAINER_HASH,
    LABEL_CONTAINER_NAME,
    LABEL_KIND,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_SANDBOX_ID,
    RUNNING,
    SANDBOX,
    SANDBOX_CONTAINER_NAME,
    UNKNOWN,
    ContainerConfig,
    ContainerInfo,
    ContainerRuntimeError,
    ExecResult,
    ImagePullError,
    NoSuchContainer,
    SandboxConfig,
)
from tuik8s.kubelet.runtime.engine import EngineClient, EngineError

log = logging.getLogger(__name__)

DEFAULT_INFRA_IMAGE = "tuik8s/busybox:latest"
DEFAULT_INFRA_COMMAND: tuple[str, ...] = ("sleep", "infinity")
LOG_OPTIONS = ("max-size=10m", "max-file=3")  # upstream containerLogMaxSize 10Mi
_STATES = {
    "created": CREATED,
    "running": RUNNING,
    "paused": RUNNING,
    "restarting": RUNNING,
    "exited": EXITED,
    "dead": EXITED,
}


# --- pure helpers --------------------------------------------------------------------------


def container_name(pod_name: str, namespace: str, uid: str, name: str, attempt: int) -> str:
    """`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`, as dockershim named them."""
    return f"k8s_{name}_{pod_name}_{namespace}_{uid}_{attempt}"


def docker_command(command: Sequence[str] | None, args: Sequence[str] | None) -> tuple[str | None, list[str]]:
    """(`--entrypoint` override or None, the CMD) for Kubernetes' command and args.

    Kubernetes: `command` replaces the image's ENTRYPOINT and `args` its CMD; command
    alone drops the image's CMD; args alone run under the image's ENTRYPOINT. Docker's
    `--entrypoint` takes one word and clears the image's CMD, so a command becomes
    `--entrypoint command[0]` with the rest of it, then args, as the CMD. Empty lists
    count as unset, as in the API.
    """
    if command:
        return command[0], [*command[1:], *(args or [])]
    return None, list(args or [])


def parse_docker_time(text: str | None) -> float | None:
    """Seconds since the epoch from Docker's RFC 3339 times (UTC, nanoseconds); the zero
    time (`0001-01-01T00:00:00Z`: never happened) is None."""
    if not text or text.startswith("0001-01-01"):
        return None
    head, _, frac = text.removesuffix("Z").partition(".")
    try:
        when = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError:
        return None
    digits = frac[:9] if frac[:9].isdigit() else ""
    return when.timestamp() + (float("0." + digits) if digits else 0.0)


def container_info(obj: Mapping[str, Any]) -> ContainerInfo | None:
    """A `ContainerInfo` from `docker container inspect` JSON; None if not a pod's."""
    config = obj.get("Config") or {}
    labels = config.get("Labels") or {}
    uid = labels.get(LABEL_POD_UID)
    if not uid:
        return None
    state = obj.get("State") or {}
    status = _STATES.get(str(state.get("Status") or ""), UNKNOWN)
    started = parse_docker_time(state.get("StartedAt"))
    error = str(state.get("Error") or "")
    if status == CREATED and error:
        status = EXITED  # a start that failed: the container will never run
    try:
        attempt = int(labels.get(LABEL_ATTEMPT) or 0)
    except ValueError:
        attempt = 0
    settings = obj.get("NetworkSettings") or {}
    ip = str(settings.get("IPAddress") or "")
    if not ip:
        for net in (settings.get("Networks") or {}).values():
            if isinstance(net, Mapping) and net.get("IPAddress"):
                ip = str(net["IPAddress"])
                break
    exit_code = state.get("ExitCode")
    return ContainerInfo(
        id=str(obj.get("Id") or ""),
        pod_uid=str(uid),
        pod_namespace=str(labels.get(LABEL_POD_NAMESPACE) or ""),
        pod_name=str(labels.get(LABEL_POD_NAME) or ""),
        container_name=str(labels.get(LABEL_CONTAINER_NAME) or ""),
        kind=str(labels.get(LABEL_KIND) or APP),
        attempt=attempt,
        state=status,
        sandbox_id=str(labels.get(LABEL_SANDBOX_ID) or ""),
        spec_hash=str(labels.get(LABEL_CONTAINER_HASH) or ""),
        exit_code=int(exit_code) if isinstance(exit_code, int) and status == EXITED else None,
        oom_killed=bool(state.get("OOMKilled")),
        error=error,
        created_at=parse_docker_time(obj.get("Created")),
        started_at=started,
        finished_at=parse_docker_time(state.get("FinishedAt")) if status == EXITED else None,
        image=str(config.get("Image") or ""),
        image_id=str(obj.get("Image") or ""),
        ip=ip,
        labels=dict(labels),
    )


def _message(e: DockerException) -> str:
    """The engine's own words, one line."""
    text = (e.stderr or e.stdout or "").strip() or f"docker exited with code {e.return_code}"
    return " ".join(text.split())


def log_config() -> dict[str, Any]:
    """`--log-opt` for every container: the engine's default driver, bounded files."""
    return {"Type": "", "Config": dict(opt.split("=", 1) for opt in LOG_OPTIONS)}


def sandbox_create_body(
    image: str, command: Sequence[str], labels: Mapping[str, str], config: SandboxConfig, network: str
) -> dict[str, Any]:
    """The engine's create body for a pod sandbox, as `docker run -d --ipc shareable
    --network NET --hostname H --dns ...` sends it."""
    host: dict[str, Any] = {"IpcMode": "shareable", "LogConfig": log_config()}
    body: dict[str, Any] = {"Image": image, "Cmd": list(command), "Labels": dict(labels), "HostConfig": host}
    if config.host_network:
        host["NetworkMode"] = "host"
        return body
    host["NetworkMode"] = network
    body["Hostname"] = config.hostname[:63]
    if config.dns_servers:
        host["Dns"] = list(config.dns_servers)
    if config.dns_searches:
        host["DnsSearch"] = list(config.dns_searches)
    if config.dns_options:
        host["DnsOptions"] = list(config.dns_options)
    return body


def container_create_body(sandbox_id: str, labels: Mapping[str, str], config: ContainerConfig) -> dict[str, Any]:
    """The engine's create body for a container joining `sandbox_id`'s network and IPC
    namespaces, as `docker create --network container:ID --ipc container:ID ...` sends it."""
    entrypoint, cmd = docker_command(config.command, config.args)
    envs: dict[str, str] = {}
    for key, value in config.env:
        envs.pop(key, None)
        envs[key] = value
    host: dict[str, Any] = {
        "NetworkMode": f"container:{sandbox_id}",
        "IpcMode": f"container:{sandbox_id}",
        "LogConfig": log_config(),
        "Privileged": config.privileged,
        "Mounts": [
            {"Type": "bind", "Source": m.host_path, "Target": m.container_path, "ReadOnly": m.read_only}
            for m in config.mounts
        ],
    }
    if config.memory_limit:
        host["Memory"] = config.memory_limit
        host["MemorySwap"] = config.memory_limit  # no swap beyond the limit, as upstream
    if config.cpu_limit:
        host["NanoCpus"] = int(round(config.cpu_limit * 1e9))
    if config.cpu_shares:
        host["CpuShares"] = config.cpu_shares
    body: dict[str, Any] = {
        "Image": config.image,
        "Labels": dict(labels),
        "Env": [f"{k}={v}" for k, v in envs.items()],
        "Tty": config.tty,
        "OpenStdin": config.stdin,
        "AttachStdin": config.stdin,
        "AttachStdout": True,
        "AttachStderr": True,
        "HostConfig": host,
    }
    if cmd:
        body["Cmd"] = cmd
    if entrypoint is not None:
        body["Entrypoint"] = [entrypoint]
    if config.working_dir:
        body["WorkingDir"] = config.working_dir
    if config.user:
        body["User"] = config.user
    return body


def _daemon(e: EngineError) -> str:
    """An engine error in the words the docker CLI prints for it."""
    return f"Error response from daemon: {e.message}" if e.status else e.message


def _not_running(e: EngineError) -> bool:
    return e.status == 409 and "is not running" in e.message


# --- the runtime ---------------------------------------------------------------------------


class DockerRuntime:
    """`ContainerRuntime` on the Docker engine at `host` (default: `DOCKER_HOST`, else
    the default socket).

    `scope` holds the labels every container of this kubelet carries (`LABEL_NODE`,
    `LABEL_CLUSTER`); listing filters by them, so other kubelets' containers on the same
    engine are never seen, let alone removed.
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        scope: Mapping[str, str] | None = None,
        infra_image: str = DEFAULT_INFRA_IMAGE,
        infra_command: Sequence[str] = DEFAULT_INFRA_COMMAND,
        network: str = "bridge",
    ) -> None:
        self.docker = DockerClient(host=host) if host else DockerClient()
        self.engine = EngineClient(host)
        self.scope = dict(scope or {})
        self.infra_image = infra_image
        self.infra_command = list(infra_command)
        self.network = network
        # container id -> (the engine's list state when inspected, the inspect answer)
        self._inspected: dict[str, tuple[str, dict[str, Any]]] = {}

    def _cmd(self) -> list[str]:
        return [str(part) for part in self.docker.client_config.docker_cmd]

    # ---- reads ------------------------------------------------------------------

    async def version(self) -> str:
        try:
            answer = await self.engine.version()
        except EngineError as e:
            raise ContainerRuntimeError(f"the Docker engine does not answer: {e.message}") from None
        return f"docker://{answer.get('Version') or 'unknown'}"

    async def list_containers(self, pod_uid: str | None = None) -> list[ContainerInfo]:
        labels = [f"{k}={v}" for k, v in self.scope.items()]
        labels.append(f"{LABEL_POD_UID}={pod_uid}" if pod_uid else LABEL_POD_UID)
        try:
            listed = await self.engine.list_containers(labels)
            objs = await self._inspect_changed(listed, whole=pod_uid is None)
        except EngineError as e:
            raise ContainerRuntimeError(f"listing containers failed: {e.message}") from None
        return [info for info in (container_info(o) for o in objs) if info is not None]

    async def _inspect_changed(self, listed: Sequence[Mapping[str, Any]], *, whole: bool) -> list[dict[str, Any]]:
        """The inspect answers of the `listed` containers: remembered ones while their
        state is the same, fresh ones (concurrently) for the rest; gone ones skipped."""
        states = {str(c.get("Id") or ""): str(c.get("State") or "") for c in listed if c.get("Id")}
        stale = [cid for cid, state in states.items() if self._inspected.get(cid, ("",))[0] != state or not state]

        async def one(cid: str) -> None:
            try:
                self._inspected[cid] = (states[cid], await self.engine.inspect_container(cid))
            except EngineError as e:
                if not e.missing:
                    raise
                self._inspected.pop(cid, None)

        await asyncio.gather(*(one(cid) for cid in stale))
        if whole:  # forget what is gone
            for cid in [c for c in self._inspected if c not in states]:
                del self._inspected[cid]
        return [self._inspected[cid][1] for cid in states if cid in self._inspected]

    async def inspect(self, container_id: str) -> ContainerInfo:
        try:
            obj = await self.engine.inspect_container(container_id)
        except EngineError as e:
            if e.missing:
                raise NoSuchContainer(f"no such container: {container_id}") from None
            raise ContainerRuntimeError(f"inspecting a container failed: {e.message}") from None
        info = container_info(obj)
        if info is None:
            raise NoSuchContainer(f"no such container: {container_id}")
        self._inspected[info.id] = (str((obj.get("State") or {}).get("Status") or ""), obj)
        return info

    async def image_present(self, image: str) -> bool:
        try:
            return await self.engine.image_exists(image)
        except EngineError as e:
            raise ContainerRuntimeError(f"inspecting image {image} failed: {e.message}") from None

    async def pull_image(self, image: str) -> None:
        def call() -> None:
            self.docker.image.pull(image, quiet=True)

        try:
            await asyncio.to_thread(call)
        except DockerException as e:
            raise ImagePullError(_message(e)) from None

    # ---- sandboxes and containers -----------------------------------------------

    def _labels(self, uid: str, namespace: str, pod: str, name: str, kind: str, attempt: int) -> dict[str, str]:
        return {
            **self.scope,
            LABEL_POD_UID: uid,
            LABEL_POD_NAMESPACE: namespace,
            LABEL_POD_NAME: pod,
            LABEL_CONTAINER_NAME: name,
            LABEL_KIND: kind,
            LABEL_ATTEMPT: str(attempt),
        }

    async def _create(self, name: str, body: Mapping[str, Any], *, pull: str | None = None) -> str:
        """Create `name`; a leftover of the same name (an earlier run died before it
        listed it) is replaced; with `pull`, a missing image is pulled first."""
        for _ in range(3):
            try:
                return await self.engine.create_container(name, body)
            except EngineError as e:
                if e.conflict and "already in use" in e.message:
                    with contextlib.suppress(EngineError):
                        await self.engine.remove_container(name)
                elif e.missing and pull is not None and "image" in e.message.lower():
                    await self.pull_image(pull)
                    pull = None
                else:
                    raise
        return await self.engine.create_container(name, body)

    async def run_sandbox(self, config: SandboxConfig) -> ContainerInfo:
        name = container_name(config.name, config.namespace, config.pod_uid, SANDBOX_CONTAINER_NAME, config.attempt)
        labels = {
            **config.labels,
            **self._labels(config.pod_uid, config.namespace, config.name, SANDBOX_CONTAINER_NAME, SANDBOX, config.attempt),
        }
        body = sandbox_create_body(self.infra_image, self.infra_command, labels, config, self.network)
        try:
            cid = await self._create(name, body, pull=self.infra_image)
            await self.engine.start_container(cid)
        except ImagePullError as e:
            raise ContainerRuntimeError(f"failed to create pod sandbox: {e}") from None
        except EngineError as e:
            raise ContainerRuntimeError(f"failed to create pod sandbox: {_daemon(e)}") from None
        return await self.inspect(cid)

    async def create_container(self, sandbox: ContainerInfo, config: ContainerConfig) -> str:
        name = container_name(sandbox.pod_name, sandbox.pod_namespace, sandbox.pod_uid, config.name, config.attempt)
        labels = {
            **config.labels,
            **self._labels(sandbox.pod_uid, sandbox.pod_namespace, sandbox.pod_name, config.name, config.kind, config.attempt),
            LABEL_SANDBOX_ID: sandbox.id,
            LABEL_CONTAINER_HASH: config.spec_hash,
        }
        try:
            return await self._create(name, container_create_body(sandbox.id, labels, config))
        except EngineError as e:
            raise ContainerRuntimeError(_daemon(e)) from None

    async def start_container(self, container_id: str) -> None:
        try:
            await self.engine.start_container(container_id)
        except EngineError as e:
            raise ContainerRuntimeError(_daemon(e)) from None

    async def stop_container(self, container_id: str, grace: float) -> None:
        seconds = max(0, int(-(-grace // 1)))
        try:
            await self.engine.stop_container(container_id, seconds)
        except EngineError as e:
            if not e.missing:
                raise ContainerRuntimeError(_daemon(e)) from None

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        try:
            await self.engine.kill_container(container_id, signal)
        except EngineError as e:
            if not (e.missing or _not_running(e)):
                raise ContainerRuntimeError(_daemon(e)) from None

    async def remove_container(self, container_id: str) -> None:
        try:
            await self.engine.remove_container(container_id)
        except EngineError as e:
            if not (e.missing or "already in progress" in e.message):
                raise ContainerRuntimeError(_daemon(e)) from None
        self._inspected.pop(container_id, None)

    async def exec(self, container_id: str, argv: Sequence[str], time_limit: float | None = None) -> ExecResult:
        """Through the engine's API (exec probes run every period: no CLI process each
        time); past `time_limit` a TimeoutError, and the command keeps running in the
        container, as with upstream's exec probes."""
        try:
            async with asyncio.timeout(time_limit):
                code, output = await self.engine.exec_run(container_id, argv)
        except EngineError as e:
            raise ContainerRuntimeError(_daemon(e)) from None
        return ExecResult(code, output.decode(errors="replace"))

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> AsyncIterator[bytes]:
        argv = [*self._cmd(), "container", "logs"]
        if follow:
            argv.append("--follow")
        if tail_lines is not None:
            argv += ["--tail", str(max(0, tail_lines))]
        if timestamps:
            argv.append("--timestamps")
        if since is not None:
            argv += ["--since", f"{since:.9f}"]
        argv.append(container_id)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
        )
        assert proc.stdout is not None
        try:
            while True:
                chunk = await proc.stdout.read(65536)
                if not chunk:
                    break
                yield chunk
            await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await proc.wait()

    async def close(self) -> None:
        await self.engine.close()


def image_ref_id(info: ContainerInfo) -> str:
    """The imageID a ContainerStatus shows for a container's image."""
    return f"docker://{info.image_id}" if info.image_id else ""


__all__ = [
    "DEFAULT_INFRA_COMMAND",
    "DEFAULT_INFRA_IMAGE",
    "DockerRuntime",
    "container_create_body",
    "container_info",
    "container_name",
    "docker_command",
    "image_ref_id",
    "parse_docker_time",
    "sandbox_create_body",
]
