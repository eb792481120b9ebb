"""Container probes and lifecycle handlers: liveness, readiness, startup; postStart, preStop.

One `ProbeWorker` per (container instance, probe kind), as upstream's prober workers:
it waits `initialDelaySeconds` after the container started, then probes every
`periodSeconds`, each attempt bounded by `timeoutSeconds`. A result only changes after
`failureThreshold` failures or `successThreshold` successes in a row (`Thresholds`).

- A startup probe gates the others: until it has succeeded, liveness and readiness are
  not run (and the container is not `started`); after it succeeds it stops.
- Readiness starts as failure (not ready until a probe passes); liveness and startup
  start as success for liveness, failure for startup, as upstream.
- A liveness or startup probe that reaches failure puts its worker on hold: the pod
  worker kills and restarts the container, whose new instance gets new workers.

Handlers run from the node: httpGet and tcpSocket against the pod IP (or `host`),
exec through the runtime inside the container. The failure messages are upstream's
(`HTTP probe failed with statuscode: 503`, `dial tcp 10.244.1.5:80: connect: connection
refused`), because users read them in `kubectl describe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from tuik8s.kubelet.runtime import ContainerRuntime, ContainerRuntimeError

log = logging.getLogger(__name__)

LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
PROBE_KINDS = (STARTUP, LIVENESS, READINESS)
PROBE_FIELDS = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}
EVENT_NAMES = {LIVENESS: "Liveness", READINESS: "Readiness", STARTUP: "Startup"}
USER_AGENT = "kube-probe/1.32"
MAX_OUTPUT = 10 * 1024


@dataclass(frozen=True)
class ProbeSpec:
    """A probe's timing and thresholds, defaulted as upstream."""

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_api(cls, probe: Mapping[str, Any], kind: str) -> ProbeSpec:
        def num(key: str, default: float, least: float) -> float:
            value = probe.get(key)
            return max(least, float(value)) if isinstance(value, int | float) and not isinstance(value, bool) else default

        success = int(num("successThreshold", 1, 1))
        if kind in (LIVENESS, STARTUP):
            success = 1  # validation insists; be safe with what the API gives
        return cls(
            initial_delay=num("initialDelaySeconds", 0, 0),
            period=num("periodSeconds", 10, 1),
            timeout=num("timeoutSeconds", 1, 1),
            success_threshold=success,
            failure_threshold=int(num("failureThreshold", 3, 1)),
        )


def initial_result(kind: str) -> bool:
    """A probe's result before it has run: only liveness assumes the best."""
    return kind == LIVENESS


class Thresholds:
    """Consecutive results turned into a probe result (upstream worker.doProbe).

    `observe` returns the result to publish when a run of equal results reaches its
    threshold (failure_threshold failures, success_threshold successes), else None.
    """

    def __init__(self, spec: ProbeSpec, initial: bool) -> None:
        self.spec = spec
        self.result = initial
        self._last: bool | None = None
        self._run = 0

    def observe(self, ok: bool) -> bool | None:
        if ok == self._last:
            self._run += 1
        else:
            self._last, self._run = ok, 1
        needed = self.spec.success_threshold if ok else self.spec.failure_threshold
        if self._run < needed:
            return None
        self.result = ok
        return ok

    def reset(self) -> None:
        self._last, self._run = None, 0


# --- handlers ------------------------------------------------------------------------------


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) and not isinstance(port, bool):
        return port
    text = str(port or "")
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if p.get("name") == text and p.get("containerPort"):
            return int(p["containerPort"])
    raise ValueError(f"unknown port name {text!r} in container {container.get('name')!r}")


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _dial_error(host: str, port: int, e: BaseException) -> str:
    """Go's net.Dial error text, which is what a user knows from real clusters."""
    target = f"dial tcp {_join_host_port(host, port)}"
    if isinstance(e, TimeoutError | asyncio.TimeoutError):
        return f"{target}: i/o timeout"
    err = getattr(e, "errno", None)
    if err is None and isinstance(getattr(e, "os_error", None), OSError):
        err = e.os_error.errno  # type: ignore[attr-defined]
    words = {
        errno.ECONNREFUSED: "connect: connection refused",
        errno.EHOSTUNREACH: "connect: no route to host",
        errno.ENETUNREACH: "connect: network is unreachable",
        errno.ECONNRESET: "read: connection reset by peer",
    }
    return f"{target}: {words.get(err or 0, str(e) or type(e).__name__)}"


_insecure_tls: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _insecure_tls
    if _insecure_tls is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # upstream's HTTPS probes skip verification too
        _insecure_tls = ctx
    return _insecure_tls


async def http_get(
    session: aiohttp.ClientSession, action: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, time_limit: float
) -> tuple[bool, str]:
    """An httpGet handler: success for a 2xx or 3xx answer."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = str(action.get("host") or pod_ip)
    port = resolve_port(action.get("port"), container)
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{_join_host_port(host, port)}{path}"
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in action.get("httpHeaders") or []:
        if h.get("name"):
            headers[str(h["name"])] = str(h.get("value") or "")
    try:
        async with asyncio.timeout(time_limit):
            async with session.get(
                url, headers=headers, allow_redirects=False, ssl=_tls() if scheme == "https" else False
            ) as resp:
                body = await resp.content.read(MAX_OUTPUT)
                if 200 <= resp.status < 400:
                    return True, ""
                text = body.decode(errors="replace").strip()
                message = f"HTTP probe failed with statuscode: {resp.status}"
                return False, message if not text else message
    except TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except aiohttp.ClientConnectorError as e:
        return False, f'Get "{url}": {_dial_error(host, port, e)}'
    except (aiohttp.ClientError, OSError) as e:
        return False, f'Get "{url}": {e or type(e).__name__}'


async def tcp_socket(action: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, time_limit: float) -> tuple[bool, str]:
    """A tcpSocket handler: success if a connection opens."""
    host = str(action.get("host") or pod_ip)
    port = resolve_port(action.get("port"), container)
    try:
        async with asyncio.timeout(time_limit):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as e:
        return False, _dial_error(host, port, e)
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1):
            await writer.wait_closed()
    return True, ""


async def exec_action(
    runtime: ContainerRuntime, container_id: str, action: Mapping[str, Any], time_limit: float
) -> tuple[bool, str]:
    """An exec handler: success if the command exits 0; the output is the message."""
    argv = [str(a) for a in action.get("command") or []]
    if not argv:
        return False, "exec handler has no command"
    try:
        result = await runtime.exec(container_id, argv, time_limit)
    except TimeoutError:
        return False, f"command {' '.join(argv)!r} timed out"
    except ContainerRuntimeError as e:
        return False, str(e)
    output = result.output[-MAX_OUTPUT:]
    if result.exit_code == 0:
        return True, output
    return False, output or f"command {' '.join(argv)!r} exited with {result.exit_code}"


async def run_handler(
    handler: Mapping[str, Any],
    *,
    runtime: ContainerRuntime,
    session: aiohttp.ClientSession,
    container: Mapping[str, Any],
    container_id: str,
    pod_ip: str,
    time_limit: float,
) -> tuple[bool, str]:
    """Run a probe's or lifecycle hook's handler: (success, message)."""
    try:
        if handler.get("exec") is not None:
            return await exec_action(runtime, container_id, handler["exec"], time_limit)
        if handler.get("httpGet") is not None:
            return await http_get(session, handler["httpGet"], container, pod_ip, time_limit)
        if handler.get("tcpSocket") is not None:
            return await tcp_socket(handler["tcpSocket"], container, pod_ip, time_limit)
        if handler.get("sleep") is not None:
            seconds = float((handler["sleep"] or {}).get("seconds") or 0)
            await asyncio.sleep(min(seconds, time_limit))
            return True, ""
    except ValueError as e:
        return False, str(e)
    if handler.get("grpc") is not None:
        # not served by this kubelet: count it a success rather than kill healthy pods
        return True, ""
    return False, "handler has no action (exec, httpGet, tcpSocket)"


# --- the worker --------------------------------------------------------------------------------

ResultCallback = Callable[[str, str, str, bool, str, bool], None]
"""`(kind, container name, container id, ok, message, changed)`, after every attempt."""


class ProbeWorker:
    """Probes one container instance with one probe until cancelled or put on hold."""

    def __init__(
        self,
        kind: str,
        probe: Mapping[str, Any],
        *,
        container: Mapping[str, Any],
        container_id: str,
        started_at: float | None,
        pod_ip: str,
        runtime: ContainerRuntime,
        session: aiohttp.ClientSession,
        on_result: ResultCallback,
        gate: Callable[[], bool] = lambda: True,
        initial: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.spec = ProbeSpec.from_api(probe, kind)
        self.container = container
        self.container_name = str(container.get("name") or "")
        self.container_id = container_id
        self.started_at = started_at
        self.pod_ip = pod_ip
        self.runtime = runtime
        self.session = session
        self.on_result = on_result
        self.gate = gate
        self.clock = clock
        self.thresholds = Thresholds(self.spec, initial_result(kind) if initial is None else initial)
        self.on_hold = False
        self.task: asyncio.Task[None] | None = None

    @property
    def result(self) -> bool:
        return self.thresholds.result

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self.run(), name=f"probe {self.kind} {self.container_name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def run(self) -> None:
        since_start = self.clock() - (self.started_at or self.clock())
        await asyncio.sleep(max(0.0, self.spec.initial_delay - since_start))
        while not self.on_hold:
            started = time.monotonic()
            if self.kind == STARTUP and self.thresholds.result:
                return  # a startup probe's job ends with its first success
            if self.gate():
                await self.probe_once()
            await asyncio.sleep(max(0.0, self.spec.period - (time.monotonic() - started)))

    async def probe_once(self) -> None:
        ok, message = await run_handler(
            self.probe,
            runtime=self.runtime,
            session=self.session,
            container=self.container,
            container_id=self.container_id,
            pod_ip=self.pod_ip,
            time_limit=self.spec.timeout,
        )
        before = self.thresholds.result
        published = self.thresholds.observe(ok)
        changed = published is not None and published != before
        if published is False and self.kind in (LIVENESS, STARTUP):
            self.on_hold = True
            self.thresholds.reset()
            changed = True
        try:
            self.on_result(self.kind, self.container_name, self.container_id, ok, message.strip(), changed)
        except Exception:  # noqa: BLE001 - a probe must keep probing
            log.exception("probe callback failed")


__all__ = [
    "LIVENESS",
    "PROBE_FIELDS",
    "PROBE_KINDS",
    "READINESS",
    "STARTUP",
    "ProbeSpec",
    "ProbeWorker",
    "Thresholds",
    "exec_action",
    "http_get",
    "initial_result",
    "resolve_port",
    "run_handler",
    "tcp_socket",
]
