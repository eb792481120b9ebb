"""Port-forwards started from the UI (`F` on a pod or service), and the shell key's command.

Both hand the work to the real `kubectl` (as k9s does for shells): it speaks every
cluster's streaming protocol, so the UI keeps working against any Kubernetes a kubeconfig
points to. A forward is a `kubectl port-forward` child process of the UI, listening on
127.0.0.1 only; the registry watches its output for "Forwarding from" (active) or an
error (failed, with kubectl's line), and stops every forward when the UI exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STARTING, ACTIVE, FAILED, STOPPED = "Starting", "Active", "Failed", "Stopped"
SHELL_COMMAND = ("sh", "-c", "command -v bash >/dev/null 2>&1 && exec bash || exec sh")


class PortForwardError(Exception):
    """A forward that cannot start; the message is one line for the status bar."""


def kubectl_path() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise PortForwardError("kubectl is not on PATH: shells and port-forwards run it")
    return found


def kubectl_base(context: str | None) -> list[str]:
    return [kubectl_path(), *(["--context", context] if context else [])]


def shell_command(context: str | None, namespace: str, pod: str, container: str) -> list[str]:
    """`kubectl exec -it` of a shell (bash if the image has it, else sh)."""
    return [*kubectl_base(context), "exec", "-it", "-n", namespace, pod, "-c", container, "--", *SHELL_COMMAND]


def parse_ports(text: str) -> tuple[int, int]:
    """`LOCAL:REMOTE` or `PORT` (the same on both sides) -> (local, remote)."""
    local, _, remote = text.strip().partition(":")
    remote = remote or local
    try:
        pair = int(local), int(remote)
    except ValueError:
        raise PortForwardError(f"{text.strip()!r}: give ports as LOCAL:REMOTE, e.g. 8080:80") from None
    if not all(0 < p < 65536 for p in pair):
        raise PortForwardError(f"{text.strip()!r}: ports go from 1 to 65535")
    return pair


def default_ports(obj: dict[str, Any] | None) -> str:
    """The first port the pod's containers (or the service) declare, as `P:P`."""
    spec = (obj or {}).get("spec") or {}
    for port in spec.get("ports") or []:  # a Service
        if port.get("port"):
            return f"{port['port']}:{port['port']}"
    for c in spec.get("containers") or []:
        for port in c.get("ports") or []:
            if port.get("containerPort"):
                return f"{port['containerPort']}:{port['containerPort']}"
    return "8080:8080"


@dataclass
class Forward:
    """One running (or ended) `kubectl port-forward`."""

    namespace: str
    target: str  # pod/NAME or svc/NAME
    local: int
    remote: int
    context: str | None = None
    state: str = STARTING
    message: str = ""
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.target}:{self.local}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local}"


class PortForwards:
    """The UI's forwards; `changed` is called on every state change (to refresh a view)."""

    def __init__(self) -> None:
        self.forwards: dict[str, Forward] = {}
        self.changed: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _notify(self) -> None:
        for callback in list(self.changed):
            with contextlib.suppress(Exception):
                callback()

    def active(self) -> list[Forward]:
        return sorted(self.forwards.values(), key=lambda f: (f.state != ACTIVE, f.key))

    async def start(self, context: str | None, namespace: str, target: str, local: int, remote: int,
                    ready_timeout: float = 15.0) -> Forward:
        """Start a forward; returns once kubectl listens, or raises with its error line."""
        existing = next((f for f in self.forwards.values() if f.local == local and f.state in (STARTING, ACTIVE)), None)
        if existing is not None:
            raise PortForwardError(f"local port {local} already forwards to {existing.target} (:pf to see or stop it)")
        forward = Forward(namespace, target, local, remote, context)
        command = [*kubectl_base(context), "port-forward", "-n", namespace, "--address", "127.0.0.1",
                   target, f"{local}:{remote}"]
        try:
            forward.proc = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        except OSError as e:
            raise PortForwardError(f"cannot run kubectl: {e.strerror or e}") from None
        self.forwards[forward.key] = forward
        ready = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._watch(forward, ready))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._notify()
        try:
            await asyncio.wait_for(asyncio.shield(ready), ready_timeout)
        except TimeoutError:
            pass
        if forward.state == FAILED:
            del self.forwards[forward.key]
            self._notify()
            raise PortForwardError(forward.message)
        return forward

    async def _watch(self, forward: Forward, ready: asyncio.Future[None]) -> None:
        proc = forward.proc
        assert proc is not None and proc.stdout is not None
        last = ""
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if line.startswith("Forwarding from") and forward.state == STARTING:
                forward.state = ACTIVE
                self._notify()
                if not ready.done():
                    ready.set_result(None)
            elif not line.startswith("Handling connection"):
                last = line.split("err=", 1)[-1].strip('"') if "err=" in line else line
                forward.message = last
                self._notify()
        code = await proc.wait()
        if forward.state != STOPPED:
            forward.state = FAILED
            forward.message = last or f"kubectl port-forward exited with code {code}"
        self._notify()
        if not ready.done():
            ready.set_result(None)

    async def stop(self, key: str) -> Forward | None:
        forward = self.forwards.pop(key, None)
        if forward is None:
            return None
        forward.state = STOPPED
        await _terminate(forward.proc)
        self._notify()
        return forward

    async def stop_all(self) -> None:
        for key in list(self.forwards):
            await self.stop(key)

    def forget_ended(self) -> None:
        for key in [k for k, f in self.forwards.items() if f.state in (FAILED, STOPPED)]:
            del self.forwards[key]
        self._notify()


async def _terminate(proc: asyncio.subprocess.Process | None) -> None:
    """Ctrl-C, as a user would stop kubectl port-forward; a kill if it lingers."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


__all__ = ["Forward", "PortForwardError", "PortForwards", "default_ports", "parse_ports", "shell_command"]
