"""`DockerRuntime`: pods on a Docker engine, through python-on-whales.

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

python-on-whales runs the docker CLI and blocks, so every call goes through
`asyncio.to_thread`. Two things are done with the CLI more directly: inspecting many
containers in one `docker container inspect` call (python-on-whales would run one CLI
per container), and streaming logs, which runs the CLI as an asyncio subprocess so a
client that goes away can end a `--follow` at once instead of leaving a thread behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.client_config import ClientNotFoundError
from python_on_whales.exceptions import DockerException
from python_on_whales.exceptions import NoSuchContainer as WhalesNoSuchContainer
from python_on_whales.utils import run as run_docker

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


def _is_missing(e: DockerException) -> bool:
    text = (e.stderr or "").lower()
    return isinstance(e, WhalesNoSuchContainer) or "no such container" in text or "no such object" in text


# --- the runtime ---------------------------------------------------------------------------


class DockerRuntime:
    """`ContainerRuntime` on the Docker engine at `host` (default: the CLI's default).

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
        self.scope = dict(scope or {})
        self.infra_image = infra_image
        self.infra_command = list(infra_command)
        self.network = network

    def _cmd(self) -> list[str]:
        return [str(part) for part in self.docker.client_config.docker_cmd]

    # ---- reads ------------------------------------------------------------------

    async def version(self) -> str:
        def call() -> str:
            return str(self.docker.version().server.version or "unknown")  # type: ignore[union-attr]

        try:
            return f"docker://{await asyncio.to_thread(call)}"
        except DockerException as e:
            raise ContainerRuntimeError(f"the Docker engine does not answer: {_message(e)}") from None
        except ClientNotFoundError:
            raise ContainerRuntimeError("the docker CLI is not installed (python-on-whales runs it)") from None

    async def list_containers(self, pod_uid: str | None = None) -> list[ContainerInfo]:
        filters: list[Any] = [("label", f"{k}={v}") for k, v in self.scope.items()]
        filters.append(("label", f"{LABEL_POD_UID}={pod_uid}") if pod_uid else ("label", LABEL_POD_UID))

        def call() -> list[dict[str, Any]]:
            ids = [c.id for c in self.docker.container.list(all=True, filters=filters)]
            return self._inspect_many(ids)

        try:
            objs = await asyncio.to_thread(call)
        except DockerException as e:
            raise ContainerRuntimeError(f"listing containers failed: {_message(e)}") from None
        out = [info for info in (container_info(o) for o in objs) if info is not None]
        return out

    def _inspect_many(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        try:
            return list(json.loads(str(run_docker([*self._cmd(), "container", "inspect", *ids]))))
        except DockerException:
            # one of them went away between the list and the inspect: ask one by one
            out = []
            for cid in ids:
                try:
                    out.extend(json.loads(str(run_docker([*self._cmd(), "container", "inspect", cid]))))
                except DockerException as e:
                    if not _is_missing(e):
                        raise
            return out

    async def inspect(self, container_id: str) -> ContainerInfo:
        def call() -> list[dict[str, Any]]:
            return self._inspect_many([container_id])

        objs = await asyncio.to_thread(call)
        info = container_info(objs[0]) if objs else None
        if info is None:
            raise NoSuchContainer(f"no such container: {container_id}")
        return info

    async def image_present(self, image: str) -> bool:
        return await asyncio.to_thread(self.docker.image.exists, image)

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

    async def run_sandbox(self, config: SandboxConfig) -> ContainerInfo:
        name = container_name(config.name, config.namespace, config.pod_uid, SANDBOX_CONTAINER_NAME, config.attempt)
        labels = {
            **config.labels,
            **self._labels(config.pod_uid, config.namespace, config.name, SANDBOX_CONTAINER_NAME, SANDBOX, config.attempt),
        }
        options: dict[str, Any] = {
            "name": name,
            "labels": labels,
            "detach": True,
            "pull": "never",
            "ipc": "shareable",
            "log_options": list(LOG_OPTIONS),
        }
        if config.host_network:
            options["networks"] = ["host"]
        else:
            options["networks"] = [self.network]
            options["hostname"] = config.hostname[:63]
            options["dns"] = list(config.dns_servers)
            options["dns_search"] = list(config.dns_searches)
            options["dns_options"] = list(config.dns_options)

        def call() -> str:
            if not self.docker.image.exists(self.infra_image):
                self.docker.image.pull(self.infra_image, quiet=True)
            with contextlib.suppress(DockerException):
                # a sandbox of this attempt left half made by an earlier run
                self.docker.container.remove(name, force=True)
            return str(self.docker.container.run(self.infra_image, self.infra_command, **options).id)

        try:
            cid = await asyncio.to_thread(call)
        except DockerException as e:
            raise ContainerRuntimeError(f"failed to create pod sandbox: {_message(e)}") from None
        return await self.inspect(cid)

    async def create_container(self, sandbox: ContainerInfo, config: ContainerConfig) -> str:
        name = container_name(sandbox.pod_name, sandbox.pod_namespace, sandbox.pod_uid, config.name, config.attempt)
        labels = {
            **config.labels,
            **self._labels(sandbox.pod_uid, sandbox.pod_namespace, sandbox.pod_name, config.name, config.kind, config.attempt),
            LABEL_SANDBOX_ID: sandbox.id,
            LABEL_CONTAINER_HASH: config.spec_hash,
        }
        entrypoint, cmd = docker_command(config.command, config.args)
        envs: dict[str, str] = {}
        for key, value in config.env:
            envs.pop(key, None)
            envs[key] = value
        options: dict[str, Any] = {
            "name": name,
            "labels": labels,
            "pull": "never",
            "networks": [f"container:{sandbox.id}"],
            "ipc": f"container:{sandbox.id}",
            "envs": envs,
            "log_options": list(LOG_OPTIONS),
            "tty": config.tty,
            "interactive": config.stdin,
            "privileged": config.privileged,
            "mounts": [
                [
                    "type=bind",
                    f"source={m.host_path}",
                    f"target={m.container_path}",
                    *(["readonly"] if m.read_only else []),
                ]
                for m in config.mounts
            ],
        }
        if entrypoint is not None:
            options["entrypoint"] = entrypoint
        if config.working_dir:
            options["workdir"] = config.working_dir
        if config.memory_limit:
            options["memory"] = config.memory_limit
            options["memory_swap"] = config.memory_limit  # no swap beyond the limit, as upstream
        if config.cpu_limit:
            options["cpus"] = config.cpu_limit
        if config.cpu_shares:
            options["cpu_shares"] = config.cpu_shares
        if config.user:
            options["user"] = config.user

        def call() -> str:
            try:
                return str(self.docker.container.create(config.image, cmd, **options).id)
            except DockerException as e:
                if "is already in use" not in (e.stderr or ""):
                    raise
                # this attempt exists from a run that died before it listed it: replace it
                self.docker.container.remove(name, force=True)
                return str(self.docker.container.create(config.image, cmd, **options).id)

        try:
            return await asyncio.to_thread(call)
        except DockerException as e:
            raise ContainerRuntimeError(_message(e)) from None

    async def start_container(self, container_id: str) -> None:
        try:
            await asyncio.to_thread(self.docker.container.start, container_id)
        except DockerException as e:
            raise ContainerRuntimeError(_message(e)) from None

    async def stop_container(self, container_id: str, grace: float) -> None:
        seconds = max(0, int(-(-grace // 1)))

        def call() -> None:
            # python-on-whales drops an int `time` (it formats only timedeltas), so the
            # engine's default 10 s would apply: pass --time ourselves
            run_docker([*self._cmd(), "container", "stop", "--time", str(seconds), container_id])

        try:
            await asyncio.to_thread(call)
        except DockerException as e:
            if not _is_missing(e):
                raise ContainerRuntimeError(_message(e)) from None

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        def call() -> None:
            self.docker.container.kill(container_id, signal=signal)

        try:
            await asyncio.to_thread(call)
        except DockerException as e:
            text = (e.stderr or "").lower()
            if not (_is_missing(e) or "is not running" in text):
                raise ContainerRuntimeError(_message(e)) from None

    async def remove_container(self, container_id: str) -> None:
        def call() -> None:
            self.docker.container.remove(container_id, force=True, volumes=True)

        try:
            await asyncio.to_thread(call)
        except DockerException as e:
            text = (e.stderr or "").lower()
            if not (_is_missing(e) or "already in progress" in text):
                raise ContainerRuntimeError(_message(e)) from None

    async def exec(self, container_id: str, argv: Sequence[str], time_limit: float | None = None) -> ExecResult:
        def call() -> ExecResult:
            try:
                out = self.docker.container.execute(container_id, list(argv))
                return ExecResult(0, str(out or ""))
            except DockerException as e:
                if _is_missing(e) or "is not running" in (e.stderr or ""):
                    raise
                output = (e.stdout or "") + (e.stderr or "")
                return ExecResult(e.return_code, output)

        task = asyncio.ensure_future(asyncio.to_thread(call))
        try:
            return await asyncio.wait_for(asyncio.shield(task), time_limit)
        except TimeoutError:
            # the command keeps running in the container, as with upstream's exec probes
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise
        except DockerException as e:
            raise ContainerRuntimeError(_message(e)) from None

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
        return None


def image_ref_id(info: ContainerInfo) -> str:
    """The imageID a ContainerStatus shows for a container's image."""
    return f"docker://{info.image_id}" if info.image_id else ""


__all__ = [
    "DEFAULT_INFRA_COMMAND",
    "DEFAULT_INFRA_IMAGE",
    "DockerRuntime",
    "container_info",
    "container_name",
    "docker_command",
    "image_ref_id",
    "parse_docker_time",
]
