"""One pod on a node: its sandbox, init and app containers, restarts, probes and status.

A `PodWorker` owns one pod (by uid) from the moment the kubelet sees it until its
containers are gone and the API object is deleted. Its loop is level-triggered: it
wakes on a pod change, on a container event (the agent's relist of the runtime), when a
probe result flips, when a back-off it waits for ends, and every `resync` seconds, and
each time it re-reads the pod and the runtime and converges (`sync`). Nothing it needs
is kept only in memory except what upstream also keeps only in memory: back-off timers,
probe results, the last pull or config error of a container.

What a sync does, in upstream's order (kuberuntime computePodActions / SyncPod):

1. a dead or missing sandbox is (re)created; containers of an old sandbox are killed
   (SandboxChanged) and, as upstream, a restartPolicy Never pod that has run gets no
   new sandbox;
2. init containers run one at a time, each to completion, before any app container
   (a failed one is retried with back-off, or fails the pod under Never); sidecars
   (init containers with restartPolicy Always) are started and kept running;
3. each app container: started if it never ran; restarted per restartPolicy when it
   exited, subject to the CrashLoopBackOff back-off (10 s doubling to 5 min, reset
   after 10 min without a crash); killed and restarted when its liveness or startup
   probe fails or its spec changed;
4. dead instances beyond the latest two of each container are removed (one dead one
   is kept for `kubectl logs --previous`);
5. the status is computed (tuik8s.kubelet.status) and written only if it changed.

Deletion (a deletionTimestamp): preStop hooks, the stop signal, up to the grace period,
SIGKILL; then the terminal status, the containers and the sandbox removed, the pod's
directory removed, and the final DELETE with grace 0 and a uid precondition, as
upstream's status manager does.

The pure decisions (restart policy, back-off, `$(VAR)` expansion, environment, DNS,
resources) are module functions, tested without a runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import orjson

from tuik8s.api.quantity import cpu_millis, to_bytes
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError, ClientError, is_conflict, is_not_found
from tuik8s.kubelet.probes import (
    EVENT_NAMES,
    LIVENESS,
    PROBE_FIELDS,
    PROBE_KINDS,
    READINESS,
    STARTUP,
    ProbeWorker,
    run_handler,
)
from tuik8s.kubelet.runtime import (
    APP,
    EXITED,
    INIT,
    SANDBOX,
    ContainerConfig,
    ContainerInfo,
    ContainerRuntime,
    ContainerRuntimeError,
    ImagePullError,
    Mount,
    SandboxConfig,
)
from tuik8s.kubelet.status import (
    RUNNING_STATE,
    TERMINAL_PHASES,
    TERMINATED,
    WAITING,
    ContainerState,
    PodRuntimeStatus,
    Termination,
    build_pod_status,
    rfc3339,
    status_changed,
)
from tuik8s.kubelet.volumes import (
    FieldRefError,
    VolumeError,
    VolumeManager,
    configmap_data,
    field_ref_value,
    resource_field_value,
    secret_data,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CRASH_LOOP_BASE = 10.0
CRASH_LOOP_MAX = 300.0
IMAGE_PULL_BASE = 10.0
IMAGE_PULL_MAX = 300.0
RESYNC = 10.0
DEFAULT_GRACE = 30
MIN_GRACE_AFTER_HOOK = 2.0  # upstream minimumGracePeriodInSeconds
ORPHAN_GRACE = 2.0
KEEP_INSTANCES = 2  # the latest instance and one before it, for `logs --previous`

# waiting reasons (upstream kuberuntime / images)
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"
CONTAINER_CREATING = "ContainerCreating"


# --- pure decisions ------------------------------------------------------------------------------


def should_restart(restart_policy: str | None, exit_code: int | None) -> bool:
    """Whether an exited container is started again under the pod's restartPolicy."""
    policy = restart_policy or "Always"
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def should_restart_init(restart_policy: str | None, container: Mapping[str, Any], exit_code: int | None) -> bool:
    """An init container: a sidecar always restarts; others retry a failure unless Never."""
    if container.get("restartPolicy") == "Always":
        return True
    return exit_code != 0 and (restart_policy or "Always") != "Never"


def go_duration(seconds: float) -> str:
    """A duration as Go prints it: `10s`, `1m20s`, `5m0s`."""
    total = round(seconds)
    if total < 60:
        return f"{seconds:g}s" if seconds != total else f"{total}s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


@dataclass
class _BackoffEntry:
    delay: float
    last_update: float


class Backoff:
    """Per-key exponential back-off, as upstream's flowcontrol.Backoff.

    `next(key, event_time)` is called when acting (a restart, a pull): the first time
    (or when `event_time` is more than twice the cap after the last update: the thing
    ran healthily that long) the delay is `base`, after that it doubles up to `cap`.
    `in_backoff_since(key, t)` asks whether an event at `t` is still inside the delay.
    """

    def __init__(self, base: float, cap: float, clock: Callable[[], float] = time.time) -> None:
        self.base = base
        self.cap = cap
        self.clock = clock
        self._entries: dict[str, _BackoffEntry] = {}

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def _expired(self, event_time: float, entry: _BackoffEntry) -> bool:
        return event_time - entry.last_update > 2 * self.cap

    def next(self, key: str, event_time: float) -> float:
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            entry = self._entries[key] = _BackoffEntry(self.base, 0.0)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
        entry.last_update = self.clock()
        return entry.delay

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            return False
        return self.clock() - event_time < entry.delay

    def in_backoff_since_update(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and self.clock() - entry.last_update < entry.delay

    def until(self, key: str, event_time: float) -> float:
        """When the back-off that started at `event_time` ends (absolute time)."""
        return event_time + self.get(key)

    def update_ends(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.last_update + entry.delay if entry else self.clock()

    def forget(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: a defined VAR is replaced, an undefined one is
    left as written, `$$` is a literal `$`, anything else is left alone."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2:close]
            value = lookup(name)
            out.append(value if value is not None else f"$({name})")
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def env_lookup(*maps: Mapping[str, str]) -> Callable[[str], str | None]:
    def lookup(name: str) -> str | None:
        for m in maps:
            if name in m:
                return m[name]
        return None

    return lookup


def container_command(container: Mapping[str, Any], env: Mapping[str, str]) -> tuple[list[str] | None, list[str] | None]:
    """(command, args) with `$(VAR)` expanded from the container's environment; an
    empty or absent list stays None (the image's own)."""
    lookup = env_lookup(env)
    command = [expand(str(x), lookup) for x in container.get("command") or []] or None
    args = [expand(str(x), lookup) for x in container.get("args") or []] or None
    return command, args


class ConfigError(Exception):
    """The container cannot be configured (CreateContainerConfigError)."""


def _valid_env_name(name: str) -> bool:
    return bool(name) and "=" not in name and all(32 <= ord(c) < 127 for c in name)


def referenced_objects(container: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (resource, name) of every ConfigMap and Secret the container's env uses."""
    refs: set[tuple[str, str]] = set()
    for src in container.get("envFrom") or []:
        if src.get("configMapRef"):
            refs.add(("configmaps", str(src["configMapRef"].get("name") or "")))
        if src.get("secretRef"):
            refs.add(("secrets", str(src["secretRef"].get("name") or "")))
    for env in container.get("env") or []:
        vf = env.get("valueFrom") or {}
        if vf.get("configMapKeyRef"):
            refs.add(("configmaps", str(vf["configMapKeyRef"].get("name") or "")))
        if vf.get("secretKeyRef"):
            refs.add(("secrets", str(vf["secretKeyRef"].get("name") or "")))
    return refs


def _env_key_from(
    objects: Mapping[tuple[str, str], Obj | None], namespace: str, ref: Mapping[str, Any], resource: str
) -> str | None:
    name = str(ref.get("name") or "")
    key = str(ref.get("key") or "")
    optional = bool(ref.get("optional"))
    obj = objects.get((resource, name))
    kind = "ConfigMap" if resource == "configmaps" else "Secret"
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    data = configmap_data(obj) if resource == "configmaps" else secret_data(obj)
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key].decode(errors="replace")


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    objects: Mapping[tuple[str, str], Obj | None],
    *,
    pod_ip: str = "",
    host_ip: str = "",
    service_env: Mapping[str, str] | None = None,
    allocatable: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The container's environment, as upstream's makeEnvironmentVariables builds it.

    envFrom first (prefixed keys; invalid names skipped), then `env` in order, each
    `value` expanded against what is defined so far and the service variables, each
    `valueFrom` resolved; the service variables last, where not overridden. `objects`
    holds the referenced ConfigMaps and Secrets (None: not found). Raises `ConfigError`
    with upstream's message for a missing object or key that is not optional.
    """
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    services = dict(service_env or {})
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = str(src.get("prefix") or "")
        for resource, ref_key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = src.get(ref_key)
            if not ref:
                continue
            name = str(ref.get("name") or "")
            obj = objects.get((resource, name))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{"configmap" if resource == "configmaps" else "secret"} "{name}" not found')
            data = configmap_data(obj) if resource == "configmaps" else secret_data(obj)
            for key, raw in data.items():
                if _valid_env_name(prefix + key):
                    env[prefix + key] = raw.decode(errors="replace")
    for item in container.get("env") or []:
        name = str(item.get("name") or "")
        vf = item.get("valueFrom")
        if not vf:
            env[name] = expand(str(item.get("value") or ""), env_lookup(env, services))
            continue
        value: str | None
        try:
            if vf.get("fieldRef"):
                value = field_ref_value(pod, str(vf["fieldRef"].get("fieldPath") or ""), pod_ip=pod_ip, host_ip=host_ip)
            elif vf.get("resourceFieldRef"):
                value = resource_field_value(pod, vf["resourceFieldRef"], str(container.get("name")), allocatable or {})
            elif vf.get("configMapKeyRef"):
                value = _env_key_from(objects, namespace, vf["configMapKeyRef"], "configmaps")
            elif vf.get("secretKeyRef"):
                value = _env_key_from(objects, namespace, vf["secretKeyRef"], "secrets")
            else:
                value = ""
        except FieldRefError as e:
            raise ConfigError(str(e)) from None
        if value is not None:
            env[name] = value
    for key, service_value in services.items():
        env.setdefault(key, service_value)
    return list(env.items())


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: Iterable[Mapping[str, Any]], namespace: str, enable_service_links: bool = True) -> dict[str, str]:
    """The `{SVC}_SERVICE_HOST`-style variables of upstream's envvars.FromServices:
    the pod's namespace's Services (with enableServiceLinks) and `kubernetes` of
    `default`, those with a cluster IP only."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        ns, name = meta.get("namespace"), str(meta.get("name") or "")
        ip = (svc.get("spec") or {}).get("clusterIP")
        if not ip or ip == "None":
            continue
        if ns == "default" and name == "kubernetes":
            chosen.setdefault(name, svc)
        if ns == namespace and enable_service_links:
            chosen[name] = svc
    out: dict[str, str] = {}
    for name, svc in sorted(chosen.items()):
        spec = svc.get("spec") or {}
        ip = str(spec.get("clusterIP"))
        prefix = _env_name(name)
        ports = [p for p in spec.get("ports") or [] if p.get("port")]
        if not ports:
            continue
        out[f"{prefix}_SERVICE_HOST"] = ip
        out[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                out[f"{prefix}_SERVICE_PORT_{_env_name(str(p['name']))}"] = str(p["port"])
        for i, p in enumerate(ports):
            proto = str(p.get("protocol") or "TCP")
            url = f"{proto.lower()}://{ip}:{p['port']}"
            if i == 0:
                out[f"{prefix}_PORT"] = url
            port_prefix = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
            out[port_prefix] = url
            out[f"{port_prefix}_PROTO"] = proto.lower()
            out[f"{port_prefix}_PORT"] = str(p["port"])
            out[f"{port_prefix}_ADDR"] = ip
    return out


def resource_options(container: Mapping[str, Any]) -> tuple[int | None, float | None, int | None]:
    """(memory limit in bytes, CPU limit in cores, CPU shares) from `resources`, as
    upstream maps them onto the runtime (shares = request millicores * 1024 / 1000)."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    memory = to_bytes(limits["memory"]) if limits.get("memory") else None
    cpus = cpu_millis(limits["cpu"]) / 1000 if limits.get("cpu") else None
    request = requests.get("cpu") or limits.get("cpu")
    shares = max(2, cpu_millis(request) * 1024 // 1000) if request else None
    return memory, cpus, shares


def dns_settings(
    pod: Mapping[str, Any], cluster_dns: Sequence[str], cluster_domain: str, node_dns: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search domains, options) for the pod sandbox, per dnsPolicy.

    ClusterFirst (the default) uses the cluster DNS with upstream's search path and
    `ndots:5`; Default uses the node's resolvers (`node_dns`); None only dnsConfig.
    A hostNetwork pod with ClusterFirst gets Default, as upstream. Without a cluster
    DNS, ClusterFirst falls back to Default. `dnsConfig` is merged in last.
    """
    spec = pod.get("spec") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        servers = list(cluster_dns)
        searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        options = ["ndots:5"]
    elif policy != "None":
        servers = list(node_dns)
    config = spec.get("dnsConfig") or {}
    for ns in config.get("nameservers") or []:
        if ns not in servers:
            servers.append(str(ns))
    for s in config.get("searches") or []:
        if s not in searches:
            searches.append(str(s))
    by_name = {o.split(":", 1)[0]: o for o in options}
    for opt in config.get("options") or []:
        name = str(opt.get("name") or "")
        if name:
            by_name[name] = f"{name}:{opt['value']}" if opt.get("value") is not None else name
    return servers[:3], searches[:32], list(by_name.values())


def container_hash(container: Mapping[str, Any]) -> str:
    """A stable hash of a container's spec: a change (a new image) restarts it."""
    return hashlib.sha256(orjson.dumps(container, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def pod_full_name(pod: Mapping[str, Any]) -> str:
    """`name_namespace(uid)`, how upstream names a pod in messages."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def termination_of(info: ContainerInfo, message: str = "") -> Termination:
    """The API's ContainerStateTerminated for an exited container."""
    if info.never_started and info.error:
        reason, message = "StartError", info.error
        code = info.exit_code if info.exit_code else 128
    else:
        code = info.exit_code if info.exit_code is not None else 0
        reason = "OOMKilled" if info.oom_killed else ("Completed" if code == 0 else "Error")
    finished = info.finished_at or info.created_at
    return Termination(
        exit_code=code,
        reason=reason,
        message=message,
        started_at=rfc3339(info.started_at) if info.started_at else rfc3339(finished),
        finished_at=rfc3339(finished),
        container_id=f"docker://{info.id}",
    )


def exited_at(info: ContainerInfo) -> float:
    return info.finished_at or info.started_at or info.created_at or 0.0


@dataclass
class PodView:
    """A pod's containers as the runtime has them, newest attempt first."""

    sandboxes: list[ContainerInfo] = field(default_factory=list)
    containers: dict[str, list[ContainerInfo]] = field(default_factory=dict)

    @classmethod
    def of(cls, infos: Iterable[ContainerInfo]) -> PodView:
        view = cls()
        for info in infos:
            if info.kind == SANDBOX:
                view.sandboxes.append(info)
            else:
                view.containers.setdefault(info.container_name, []).append(info)
        key = lambda i: (i.attempt, i.created_at or 0.0)  # noqa: E731
        view.sandboxes.sort(key=key, reverse=True)
        for items in view.containers.values():
            items.sort(key=key, reverse=True)
        return view

    @property
    def sandbox(self) -> ContainerInfo | None:
        return self.sandboxes[0] if self.sandboxes else None

    def latest(self, name: str) -> ContainerInfo | None:
        items = self.containers.get(name)
        return items[0] if items else None

    def all(self) -> list[ContainerInfo]:
        return [*self.sandboxes, *(c for items in self.containers.values() for c in items)]


def pod_done(pod: Mapping[str, Any], view: PodView) -> bool:
    """No container of the pod will run again (only under OnFailure or Never)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    if policy == "Always":
        return False
    for c in spec.get("initContainers") or []:
        latest = view.latest(str(c.get("name")))
        if (
            policy == "Never"
            and c.get("restartPolicy") != "Always"
            and latest is not None
            and latest.state == EXITED
            and latest.exit_code != 0
        ):
            return True
    mains = spec.get("containers") or []
    for c in mains:
        latest = view.latest(str(c.get("name")))
        if latest is None or latest.state != EXITED or should_restart(policy, latest.exit_code):
            return False
    return bool(mains)


# --- the worker ----------------------------------------------------------------------------------


@dataclass
class WorkerConfig:
    """The node-wide settings a pod worker needs."""

    node_name: str
    node_ip: str
    cluster_dns: Sequence[str] = ()
    cluster_domain: str = "cluster.local"
    node_dns: Sequence[str] = ("127.0.0.1",)
    allocatable: Mapping[str, str] = field(default_factory=dict)
    resync: float = RESYNC


EventFn = Callable[[Mapping[str, Any], str | None, str, str, str], None]
"""`(pod, container name or None, type, reason, message)`: queue an Event."""


@dataclass
class WorkerContext:
    """What the kubelet shares with its pod workers."""

    client: ApiClient
    runtime: ContainerRuntime
    volumes: VolumeManager
    config: WorkerConfig
    session: aiohttp.ClientSession
    crash_backoff: Backoff
    pull_backoff: Backoff
    event: EventFn
    current_pod: Callable[[str, str], Obj | None]
    """`(key, uid)` -> the freshest copy of the pod with that uid, or None."""
    pod_written: Callable[[str, Obj], None]
    get_object: Callable[[str, str, str], Awaitable[Obj | None]]
    services: Callable[[], list[Obj]] = list


def _ref_field_path(pod: Mapping[str, Any], name: str) -> str:
    inits = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []}
    return f"spec.initContainers{{{name}}}" if name in inits else f"spec.containers{{{name}}}"


class PodWorker:
    """Converges one pod (by uid) until it is gone; see the module docstring."""

    def __init__(self, ctx: WorkerContext, key: str, uid: str, pod: Obj | None = None) -> None:
        self.ctx = ctx
        self.key = key
        self.uid = uid
        self.last_pod = pod
        self.finished = False
        self.terminating = False
        self.waiting: dict[str, tuple[str, str]] = {}
        self.probes: dict[tuple[str, str], ProbeWorker] = {}
        self.hook_failed: set[str] = set()
        self.writing: Obj | None = None
        """The status being written: its watch echo is no news (see `is_echo`)."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    # ---- the loop ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"pod worker {self.key}")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop working on the pod without touching it (the kubelet is shutting down)."""
        await self._stop_probes()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        try:
            while not self.finished:
                self._wake.clear()
                try:
                    delay = await self.sync()
                    self._failures = 0
                except asyncio.CancelledError:
                    raise
                except (ClientError, ContainerRuntimeError, OSError) as e:
                    delay = self._retry_delay()
                    log.info("pod %s: sync failed: %s (retrying in %.1fs)", self.key, e, delay)
                except Exception:  # noqa: BLE001 - one pod must not take the kubelet down
                    delay = self._retry_delay()
                    log.exception("pod %s: sync failed (retrying in %.1fs)", self.key, delay)
                if self.finished:
                    break
                wait = self.ctx.config.resync if delay is None else max(0.05, min(delay, self.ctx.config.resync))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
        finally:
            await self._stop_probes()

    def is_echo(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Whether a pod update is only the watch bringing back our own status write.

        The watch event can arrive before the write's own answer, so it is recognised by
        content: nothing but the status changed, and to what this worker wrote.
        """
        if self.writing is None or new.get("status") != self.writing:
            return False
        if old.get("spec") != new.get("spec"):
            return False
        ignored = ("resourceVersion", "managedFields")
        before = {k: v for k, v in (old.get("metadata") or {}).items() if k not in ignored}
        after = {k: v for k, v in (new.get("metadata") or {}).items() if k not in ignored}
        return before == after

    def _retry_delay(self) -> float:
        self._failures += 1
        return min(30.0, 0.5 * 2 ** min(self._failures, 6)) * random.uniform(0.8, 1.0)

    # ---- sync -------------------------------------------------------------------

    async def sync(self) -> float | None:
        """One pass; returns seconds until a time-driven look is due (None: none)."""
        pod = self.ctx.current_pod(self.key, self.uid)
        if pod is None:
            await self.terminate(self.last_pod, api_gone=True)
            return None
        self.last_pod = pod
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.terminating = True
            await self.terminate(pod)
            return None
        view = PodView.of(await self.ctx.runtime.list_containers(self.uid))
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            # a terminal pod runs nothing (whoever made it terminal: us, or an eviction)
            await self._kill_all(pod, view, reason_changed=False)
            await self._stop_sandbox(view)
            return None
        due: list[float] = []
        if await self.converge(pod, view, due):
            view = PodView.of(await self.ctx.runtime.list_containers(self.uid))
        if await self._remove_dead(view):
            view = PodView.of(await self.ctx.runtime.list_containers(self.uid))
        done = pod_done(pod, view)
        if done:
            await self._stop_probes()
            if await self._stop_sandbox(view):
                view = PodView.of(await self.ctx.runtime.list_containers(self.uid))
        else:
            self._sync_probes(pod, view)
        await self.write_status(pod, view, terminal=done)
        if not due:
            return None
        return max(0.0, min(due) - time.time())

    async def converge(self, pod: Obj, view: PodView, due: list[float]) -> bool:
        """Start, restart and kill containers toward the spec; True if anything was done."""
        spec = pod.get("spec") or {}
        policy = str(spec.get("restartPolicy") or "Always")
        if pod_done(pod, view):
            return False
        acted = False
        sandbox = view.sandbox
        if sandbox is None or not sandbox.running:
            ran = any(view.containers.values())
            if sandbox is not None:
                acted |= await self._kill_all(pod, view, reason_changed=True)
            if sandbox is not None and policy == "Never" and ran:
                return acted  # upstream: a Never pod that has run gets no new sandbox
            sandbox = await self._create_sandbox(pod, view, due)
            if sandbox is None:
                return acted
            acted = True
        try:
            paths = await self.ctx.volumes.setup(pod, pod_ip=sandbox.ip, host_ip=self.ctx.config.node_ip)
        except (VolumeError, OSError) as e:
            self.ctx.event(pod, None, "Warning", "FailedMount", str(e))
            due.append(time.time() + min(self.ctx.config.resync, 10.0))
            return acted
        except ClientError as e:
            log.info("pod %s: reading volume sources failed: %s", self.key, e)
            due.append(time.time() + 2.0)
            return acted

        # init containers, one at a time
        for c in spec.get("initContainers") or []:
            name = str(c.get("name"))
            current = [i for i in view.containers.get(name, []) if i.sandbox_id == sandbox.id]
            latest = current[0] if current else None
            sidecar = c.get("restartPolicy") == "Always"
            if latest is not None and latest.running:
                if sidecar:
                    acted |= await self._check_running(pod, c, latest, INIT, view, sandbox, paths, due)
                    continue
                return acted
            if latest is not None and latest.state == EXITED and latest.exit_code == 0 and not sidecar:
                continue
            if latest is not None and latest.state == EXITED:
                if not should_restart_init(policy, c, latest.exit_code):
                    return acted  # the pod has failed
                acted |= await self._restart(pod, c, INIT, latest, view, sandbox, paths, due)
                return acted
            if latest is not None:
                return acted  # created, about to run
            previous = view.latest(name)
            attempt = previous.attempt + 1 if previous else 0
            acted |= await self._start(pod, c, INIT, attempt, sandbox, paths, due)
            if not sidecar:
                return acted
        # app containers
        for c in spec.get("containers") or []:
            name = str(c.get("name"))
            latest = view.latest(name)
            if latest is None:
                acted |= await self._start(pod, c, APP, 0, sandbox, paths, due)
            elif latest.running:
                acted |= await self._check_running(pod, c, latest, APP, view, sandbox, paths, due)
            elif latest.state == EXITED:
                if should_restart(policy, latest.exit_code):
                    acted |= await self._restart(pod, c, APP, latest, view, sandbox, paths, due)
                else:
                    self.waiting.pop(name, None)
        return acted

    async def _check_running(
        self,
        pod: Obj,
        c: Mapping[str, Any],
        latest: ContainerInfo,
        kind: str,
        view: PodView,
        sandbox: ContainerInfo,
        paths: Mapping[str, str],
        due: list[float],
    ) -> bool:
        """A running container: kill it if its sandbox, probe or spec says so."""
        name = str(c.get("name"))
        policy = str((pod.get("spec") or {}).get("restartPolicy") or "Always")
        restart = kind == INIT or policy != "Never"
        grace = self._grace(pod)
        message: str | None = None
        if latest.sandbox_id and latest.sandbox_id != sandbox.id:
            pass  # left over from the sandbox before: SandboxChanged said it
        elif self._probe_failed(name, latest.id, LIVENESS):
            message = f"Container {name} failed liveness probe, will be restarted"
            grace = self._probe_grace(pod, c, LIVENESS)
        elif self._probe_failed(name, latest.id, STARTUP):
            message = f"Container {name} failed startup probe, will be restarted"
            grace = self._probe_grace(pod, c, STARTUP)
        elif latest.spec_hash and latest.spec_hash != container_hash(c):
            message = f"Container {name} definition changed, will be restarted"
            restart = True
        elif name not in self.hook_failed:  # a failed postStart hook was reported already
            return False
        if message:
            self.ctx.event(pod, name, "Normal", "Killing", message)
        await self._stop_probes_of(name)
        await self._stop_one(pod, c, latest, grace, run_pre_stop=False)
        self.hook_failed.discard(name)
        if restart:
            killed = await self._reinspect(latest)
            await self._restart(pod, c, kind, killed, view, sandbox, paths, due)
        return True

    async def _reinspect(self, info: ContainerInfo) -> ContainerInfo:
        for item in await self.ctx.runtime.list_containers(self.uid):
            if item.id == info.id:
                return item
        return info

    async def _restart(
        self,
        pod: Obj,
        c: Mapping[str, Any],
        kind: str,
        latest: ContainerInfo,
        view: PodView,
        sandbox: ContainerInfo,
        paths: Mapping[str, str],
        due: list[float],
    ) -> bool:
        """Start the next attempt of an exited container, unless it is backing off."""
        name = str(c.get("name"))
        key = f"{self.uid}/{name}"
        backoff = self.ctx.crash_backoff
        finished = exited_at(latest)
        if backoff.in_backoff_since(key, finished):
            delay = backoff.get(key)
            message = f"back-off {go_duration(delay)} restarting failed container={name} pod={pod_full_name(pod)}"
            self.waiting[name] = (CRASH_LOOP_BACK_OFF, message)
            self.ctx.event(
                pod, name, "Warning", "BackOff", f"Back-off restarting failed container {name} in pod {pod_full_name(pod)}"
            )
            due.append(backoff.until(key, finished))
            return False
        backoff.next(key, finished)
        newest = view.latest(name) or latest
        return await self._start(pod, c, kind, newest.attempt + 1, sandbox, paths, due)

    # ---- starting ---------------------------------------------------------------

    async def _create_sandbox(self, pod: Obj, view: PodView, due: list[float]) -> ContainerInfo | None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        cfg = self.ctx.config
        servers, searches, options = dns_settings(pod, cfg.cluster_dns, cfg.cluster_domain, cfg.node_dns)
        previous = view.sandbox
        try:
            sandbox = await self.ctx.runtime.run_sandbox(SandboxConfig(
                pod_uid=self.uid,
                namespace=str(meta.get("namespace") or "default"),
                name=str(meta.get("name") or ""),
                attempt=previous.attempt + 1 if previous else 0,
                hostname=str(spec.get("hostname") or meta.get("name") or ""),
                host_network=bool(spec.get("hostNetwork")),
                dns_servers=servers,
                dns_searches=searches,
                dns_options=options,
            ))
        except ContainerRuntimeError as e:
            self.ctx.event(pod, None, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            due.append(time.time() + 5.0)
            return None
        if previous is not None:
            await self._remove(previous)
        return sandbox

    async def _ensure_image(self, pod: Obj, c: Mapping[str, Any], due: list[float]) -> bool:
        """The image is there per imagePullPolicy, or the container waits with why."""
        name = str(c.get("name"))
        image = str(c.get("image") or "")
        policy = c.get("imagePullPolicy") or "IfNotPresent"  # the API defaults it
        runtime = self.ctx.runtime
        present = await runtime.image_present(image)
        if policy == "Never":
            if present:
                return True
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.waiting[name] = (ERR_IMAGE_NEVER_PULL, message)
            self.ctx.event(pod, name, "Warning", ERR_IMAGE_NEVER_PULL, message)
            due.append(time.time() + self.ctx.config.resync)
            return False
        if present and policy == "IfNotPresent":
            self.ctx.event(pod, name, "Normal", "Pulled", f'Container image "{image}" already present on machine')
            return True
        key = f"{self.uid}_{image}"
        backoff = self.ctx.pull_backoff
        if backoff.in_backoff_since_update(key):
            message = f'Back-off pulling image "{image}"'
            self.waiting[name] = (IMAGE_PULL_BACK_OFF, message)
            self.ctx.event(pod, name, "Normal", "BackOff", message)
            self.ctx.event(pod, name, "Warning", "Failed", f"Error: {IMAGE_PULL_BACK_OFF}")
            due.append(backoff.update_ends(key))
            return False
        self.ctx.event(pod, name, "Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        try:
            await runtime.pull_image(image)
        except ImagePullError as e:
            backoff.next(key, time.time())
            message = f'Failed to pull image "{image}": {e}'
            self.waiting[name] = (ERR_IMAGE_PULL, message)
            self.ctx.event(pod, name, "Warning", "Failed", message)
            self.ctx.event(pod, name, "Warning", "Failed", f"Error: {ERR_IMAGE_PULL}")
            # look again halfway: ErrImagePull is shown for a while, then ImagePullBackOff
            # until the back-off ends, as a user of a real cluster sees them
            due.append(time.time() + backoff.get(key) / 2)
            return False
        took = time.monotonic() - started
        self.ctx.event(
            pod, name, "Normal", "Pulled",
            f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including waiting)',
        )
        return True

    async def _container_config(
        self, pod: Obj, c: Mapping[str, Any], kind: str, attempt: int, sandbox: ContainerInfo, paths: Mapping[str, str]
    ) -> ContainerConfig:
        namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        objects: dict[tuple[str, str], Obj | None] = {}
        for resource, name in sorted(referenced_objects(c)):
            objects[(resource, name)] = await self.ctx.get_object(resource, namespace, name)
        links = (pod.get("spec") or {}).get("enableServiceLinks")
        services = service_env(self.ctx.services(), namespace, links is not False)
        env = container_env(
            pod, c, objects, pod_ip=sandbox.ip, host_ip=self.ctx.config.node_ip,
            service_env=services, allocatable=self.ctx.config.allocatable,
        )
        command, args = container_command(c, dict(env))
        try:
            mounts = self.ctx.volumes.mounts(pod, c, paths)
        except VolumeError as e:
            raise ConfigError(str(e)) from None
        message_path = c.get("terminationMessagePath") or "/dev/termination-log"
        log_file = await asyncio.to_thread(self.ctx.volumes.termination_log, self.uid, str(c.get("name")), attempt)
        mounts.append(Mount(str(log_file), str(message_path)))
        memory, cpus, shares = resource_options(c)
        security = c.get("securityContext") or {}
        user = None
        if security.get("runAsUser") is not None:
            user = str(security["runAsUser"])
            if security.get("runAsGroup") is not None:
                user += f":{security['runAsGroup']}"
        return ContainerConfig(
            name=str(c.get("name")),
            kind=kind,
            attempt=attempt,
            image=str(c.get("image") or ""),
            command=command,
            args=args,
            env=env,
            working_dir=c.get("workingDir") or None,
            mounts=mounts,
            memory_limit=memory,
            cpu_limit=cpus,
            cpu_shares=shares,
            tty=bool(c.get("tty")),
            stdin=bool(c.get("stdin")),
            user=user,
            privileged=bool(security.get("privileged")),
            spec_hash=container_hash(c),
        )

    async def _start(
        self,
        pod: Obj,
        c: Mapping[str, Any],
        kind: str,
        attempt: int,
        sandbox: ContainerInfo,
        paths: Mapping[str, str],
        due: list[float],
    ) -> bool:
        """Pull, configure, create and start one container attempt; True if created."""
        name = str(c.get("name"))
        if not await self._ensure_image(pod, c, due):
            return False
        try:
            config = await self._container_config(pod, c, kind, attempt, sandbox, paths)
        except ConfigError as e:
            self.waiting[name] = (CREATE_CONTAINER_CONFIG_ERROR, str(e))
            self.ctx.event(pod, name, "Warning", "Failed", f"Error: {e}")
            due.append(time.time() + min(self.ctx.config.resync, 5.0))
            return False
        runtime = self.ctx.runtime
        try:
            cid = await runtime.create_container(sandbox, config)
        except ContainerRuntimeError as e:
            self.waiting[name] = (CREATE_CONTAINER_ERROR, str(e))
            self.ctx.event(pod, name, "Warning", "Failed", f"Error: {e}")
            due.append(time.time() + min(self.ctx.config.resync, 5.0))
            return False
        self.ctx.event(pod, name, "Normal", "Created", f"Created container: {name}")
        self.waiting.pop(name, None)
        try:
            await runtime.start_container(cid)
        except ContainerRuntimeError as e:
            self.ctx.event(pod, name, "Warning", "Failed", f"Error: failed to start container {name!r}: {e}")
            due.append(time.time() + 0.5)
            return True
        self.ctx.event(pod, name, "Normal", "Started", f"Started container {name}")
        hook = ((c.get("lifecycle") or {}).get("postStart")) or None
        if hook:
            ok, message = await run_handler(
                hook, runtime=runtime, session=self.ctx.session, container=c, container_id=cid,
                pod_ip=sandbox.ip, time_limit=float(self._grace(pod)),
            )
            if not ok:
                self.ctx.event(pod, name, "Warning", "FailedPostStartHook", message or "PostStartHook failed")
                self.hook_failed.add(name)
                due.append(time.time())
        return True

    # ---- stopping ---------------------------------------------------------------

    def _grace(self, pod: Mapping[str, Any] | None) -> int:
        if pod is None:
            return int(ORPHAN_GRACE)
        meta = pod.get("metadata") or {}
        if meta.get("deletionGracePeriodSeconds") is not None:
            return max(0, int(meta["deletionGracePeriodSeconds"]))
        value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return DEFAULT_GRACE if value is None else max(0, int(value))

    def _probe_grace(self, pod: Mapping[str, Any], c: Mapping[str, Any], kind: str) -> int:
        probe = c.get(PROBE_FIELDS[kind]) or {}
        if probe.get("terminationGracePeriodSeconds") is not None:
            return max(1, int(probe["terminationGracePeriodSeconds"]))
        return self._grace(pod)

    async def _stop_one(
        self, pod: Mapping[str, Any] | None, c: Mapping[str, Any] | None, info: ContainerInfo, grace: float, *, run_pre_stop: bool
    ) -> None:
        deadline = time.monotonic() + grace
        hook = ((c or {}).get("lifecycle") or {}).get("preStop") if run_pre_stop else None
        if hook and c is not None and pod is not None and grace > 0:
            ip = self._pod_ip()
            try:
                async with asyncio.timeout(grace):
                    ok, message = await run_handler(
                        hook, runtime=self.ctx.runtime, session=self.ctx.session, container=c,
                        container_id=info.id, pod_ip=ip, time_limit=grace,
                    )
            except TimeoutError:
                ok, message = False, f"PreStopHook did not finish within {grace:g}s"
            if not ok:
                self.ctx.event(pod, info.container_name, "Warning", "FailedPreStopHook", message or "PreStopHook failed")
            remaining = max(MIN_GRACE_AFTER_HOOK, deadline - time.monotonic())
        else:
            remaining = grace
        await self.ctx.runtime.stop_container(info.id, remaining)

    def _pod_ip(self) -> str:
        status = (self.last_pod or {}).get("status") or {}
        return str(status.get("podIP") or "")

    async def _kill_all(self, pod: Obj, view: PodView, *, reason_changed: bool) -> bool:
        running = [i for items in view.containers.values() for i in items if i.running]
        if reason_changed:
            self.ctx.event(pod, None, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
        await self._stop_probes()
        specs = self._specs(pod)
        await asyncio.gather(*(
            self._stop_one(pod, specs.get(i.container_name), i, self._grace(pod), run_pre_stop=False) for i in running
        ))
        return bool(running)

    async def _stop_sandbox(self, view: PodView) -> bool:
        stopped = False
        for sb in view.sandboxes:
            if sb.running:
                await self.ctx.runtime.kill_container(sb.id)
                stopped = True
        return stopped

    async def _remove(self, info: ContainerInfo) -> None:
        await self.ctx.runtime.remove_container(info.id)

    async def _remove_dead(self, view: PodView) -> bool:
        """Keep the latest two instances of each container and the latest sandbox."""
        removed = False
        for name, items in view.containers.items():
            dead = [i for i in items[KEEP_INSTANCES:] if not i.running]
            for info in dead:
                await self._remove(info)
            if dead:
                removed = True
                keep = {i.attempt for i in items[:KEEP_INSTANCES]}
                await asyncio.to_thread(self.ctx.volumes.prune_termination_logs, self.uid, name, keep)
        for sb in view.sandboxes[1:]:
            if not sb.running:
                await self._remove(sb)
                removed = True
        return removed

    @staticmethod
    def _specs(pod: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
        spec = (pod or {}).get("spec") or {}
        return {str(c.get("name")): c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}

    async def terminate(self, pod: Obj | None, *, api_gone: bool = False) -> None:
        """Stop everything of the pod, report it terminal, remove it, delete the pod."""
        self.terminating = True
        await self._stop_probes()
        runtime = self.ctx.runtime
        view = PodView.of(await runtime.list_containers(self.uid))
        running = [i for items in view.containers.values() for i in items if i.running]
        grace = float(self._grace(pod)) if not (api_gone and pod is None) else ORPHAN_GRACE
        specs = self._specs(pod)
        if running and pod is not None:
            for info in running:
                self.ctx.event(pod, info.container_name, "Normal", "Killing", f"Stopping container {info.container_name}")
        await asyncio.gather(*(self._stop_one(pod, specs.get(i.container_name), i, grace, run_pre_stop=True) for i in running))
        await self._stop_sandbox(view)
        if pod is not None and not api_gone:
            view = PodView.of(await runtime.list_containers(self.uid))
            await self.write_status(pod, view, terminal=True)
        for info in view.all():
            await runtime.remove_container(info.id)
        await self.ctx.volumes.teardown(self.uid)
        self.ctx.crash_backoff.forget(f"{self.uid}/")
        self.ctx.pull_backoff.forget(f"{self.uid}_")
        if pod is not None and not api_gone:
            meta = pod.get("metadata") or {}
            try:
                await self.ctx.client.delete(
                    "pods", str(meta.get("name")), str(meta.get("namespace")),
                    grace_period_seconds=0, preconditions={"uid": self.uid},
                )
            except ApiError as e:
                if not (is_not_found(e) or is_conflict(e)):
                    raise
        self.finished = True

    # ---- probes -----------------------------------------------------------------

    def _sync_probes(self, pod: Obj, view: PodView) -> None:
        """One worker per probe of each running app container (and sidecar)."""
        specs = self._specs(pod)
        running = {
            name: items[0]
            for name, items in view.containers.items()
            if items and items[0].running and (items[0].kind == APP or specs.get(name, {}).get("restartPolicy") == "Always")
        }
        for (name, kind), worker in list(self.probes.items()):
            info = running.get(name)
            if info is None or info.id != worker.container_id:
                asyncio.ensure_future(worker.stop())
                del self.probes[(name, kind)]
        sandbox = view.sandbox
        pod_ip = sandbox.ip if sandbox is not None and sandbox.ip else self.ctx.config.node_ip
        reported = {
            str(s.get("name")): s
            for s in [*((pod.get("status") or {}).get("containerStatuses") or []),
                      *((pod.get("status") or {}).get("initContainerStatuses") or [])]
        }
        for name, info in running.items():
            c = specs.get(name)
            if c is None:
                continue
            for kind in PROBE_KINDS:
                probe = c.get(PROBE_FIELDS[kind])
                if not probe or (name, kind) in self.probes:
                    continue
                initial = None
                before = reported.get(name) or {}
                if before.get("containerID") == f"docker://{info.id}":
                    # the kubelet restarted: carry on from what it reported, no flapping
                    if kind == READINESS:
                        initial = bool(before.get("ready"))
                    elif kind == STARTUP:
                        initial = bool(before.get("started"))
                worker = ProbeWorker(
                    kind, probe, container=c, container_id=info.id, started_at=info.started_at, pod_ip=pod_ip,
                    runtime=self.ctx.runtime, session=self.ctx.session, on_result=self._probe_result,
                    gate=self._gate(name, info.id) if kind != STARTUP else (lambda: True),
                    initial=initial,
                )
                self.probes[(name, kind)] = worker
                worker.start()

    def _gate(self, name: str, cid: str) -> Callable[[], bool]:
        """Liveness and readiness wait for the startup probe, as upstream."""
        return lambda: self._started(name, cid)

    def _probe_result(self, kind: str, name: str, cid: str, ok: bool, message: str, changed: bool) -> None:
        pod = self.last_pod
        if not ok and pod is not None and not self.terminating:
            self.ctx.event(pod, name, "Warning", "Unhealthy", f"{EVENT_NAMES[kind]} probe failed: {message}".rstrip())
        if changed:
            self.wake()

    def _probe_failed(self, name: str, cid: str, kind: str) -> bool:
        worker = self.probes.get((name, kind))
        return worker is not None and worker.container_id == cid and worker.on_hold

    def _started(self, name: str, cid: str) -> bool:
        worker = self.probes.get((name, STARTUP))
        if worker is None or worker.container_id != cid:
            return True
        return worker.result

    def _ready(self, name: str, cid: str) -> bool:
        if not self._started(name, cid):
            return False
        worker = self.probes.get((name, READINESS))
        if worker is None or worker.container_id != cid:
            return (name, READINESS) not in self.probes
        return worker.result

    async def _stop_probes_of(self, name: str) -> None:
        for key in [k for k in self.probes if k[0] == name]:
            await self.probes.pop(key).stop()

    async def _stop_probes(self) -> None:
        workers = list(self.probes.values())
        self.probes.clear()
        for worker in workers:
            await worker.stop()

    # ---- status -----------------------------------------------------------------

    def runtime_status(self, pod: Mapping[str, Any], view: PodView) -> PodRuntimeStatus:
        """What the runtime and this worker know about the pod, for status.py."""
        sandbox = view.sandbox
        specs = (pod.get("spec") or {})
        probed = self._has_readiness(pod)

        def state_of(c: Mapping[str, Any]) -> ContainerState | None:
            name = str(c.get("name"))
            items = view.containers.get(name) or []
            waiting = self.waiting.get(name)
            if not items:
                if waiting is None:
                    return None
                return ContainerState(name=name, image=str(c.get("image") or ""), reason=waiting[0], message=waiting[1])
            latest = items[0]
            previous = next((i for i in items[1:] if i.state == EXITED), None)
            last = self._termination(previous) if previous else None
            base = ContainerState(
                name=name,
                image=str(c.get("image") or ""),
                image_id=f"docker://{latest.image_id}" if latest.image_id else "",
                container_id=f"docker://{latest.id}",
                restart_count=latest.attempt,
                last_termination=last,
            )
            if latest.running:
                ready = self._ready(name, latest.id) if name in probed else True
                return replace(
                    base, state=RUNNING_STATE, started_at=rfc3339(latest.started_at or time.time()),
                    ready=ready, started=self._started(name, latest.id),
                )
            if latest.state == EXITED:
                if waiting is not None:
                    return replace(
                        base, state=WAITING, reason=waiting[0], message=waiting[1],
                        last_termination=self._termination(latest),
                    )
                return replace(base, state=TERMINATED, termination=self._termination(latest))
            return replace(base, state=WAITING, reason=CONTAINER_CREATING)

        return PodRuntimeStatus(
            pod_ips=[sandbox.ip] if sandbox is not None and sandbox.running and sandbox.ip else [],
            sandbox_ready=sandbox is not None and sandbox.running,
            containers={str(c.get("name")): s for c in specs.get("containers") or [] if (s := state_of(c)) is not None},
            init_containers={
                str(c.get("name")): s for c in specs.get("initContainers") or [] if (s := state_of(c)) is not None
            },
        )

    def _has_readiness(self, pod: Mapping[str, Any]) -> set[str]:
        spec = pod.get("spec") or {}
        return {
            str(c.get("name"))
            for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
            if c.get("readinessProbe") or c.get("startupProbe")
        }

    def _termination(self, info: ContainerInfo) -> Termination:
        message = ""
        if not (info.never_started and info.error):
            message = self.ctx.volumes.read_termination_message(self.uid, info.container_name, info.attempt)
        return termination_of(info, message)

    async def write_status(self, pod: Obj, view: PodView, *, terminal: bool = False) -> Obj:
        status = build_pod_status(
            pod, self.runtime_status(pod, view), host_ips=[self.ctx.config.node_ip], pod_is_terminal=terminal
        )
        if not status_changed(pod.get("status"), status):
            return pod
        for _ in range(3):
            self.writing = status
            try:
                written = await self.ctx.client.update_status("pods", {**pod, "status": status})
            except ApiError as e:
                if is_not_found(e):
                    return pod
                if not is_conflict(e):
                    raise
                meta = pod.get("metadata") or {}
                fresh = await self.ctx.client.get("pods", str(meta.get("name")), str(meta.get("namespace")))
                if (fresh.get("metadata") or {}).get("uid") != self.uid:
                    return pod
                pod = fresh
                status = build_pod_status(
                    pod, self.runtime_status(pod, view), host_ips=[self.ctx.config.node_ip], pod_is_terminal=terminal
                )
                if not status_changed(pod.get("status"), status):
                    return pod
                continue
            self.ctx.pod_written(self.key, written)
            self.last_pod = written
            return written
        return pod


__all__ = [
    "Backoff",
    "ConfigError",
    "PodView",
    "PodWorker",
    "WorkerConfig",
    "WorkerContext",
    "container_command",
    "container_env",
    "container_hash",
    "dns_settings",
    "expand",
    "go_duration",
    "pod_done",
    "referenced_objects",
    "resource_options",
    "service_env",
    "should_restart",
    "should_restart_init",
    "termination_of",
]
