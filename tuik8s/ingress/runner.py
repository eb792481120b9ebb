"""`tuik8s ingress`: the controller in this process, the proxy in worker processes.

This process lists and watches the cluster, builds routing tables and writes Ingress
status (`IngressController`); `--workers N` processes run mitmproxy and route
(`worker.py`), each on its own SO_REUSEPORT socket of the same port. Workers run
under `python -O` (it drops mitmproxy's per-message debug type checks, ~7% of its time)
and get every table through a pipe, so the API server sees one watcher however many
workers there are, and Ingress status has a single writer.

Before anything starts, the ports are tried without SO_REUSEPORT: another program on
the port (including another `tuik8s ingress`, which would otherwise silently share
it) is reported in one line. A worker that dies is restarted with the current table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ClientError
from tuik8s.client.kubeconfig import KubeconfigError, access_for
from tuik8s.client.transport import HttpTransport
from tuik8s.ingress.controller import IngressController
from tuik8s.ingress.table import DEFAULT_CLASS, RoutingTable
from tuik8s.ingress.worker import READY, encode_table, parse_address

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "0.0.0.0:8080"
DEFAULT_HTTPS_LISTEN = "0.0.0.0:8443"
START_TIMEOUT = 30.0
RESTART_DELAY = 1.0


class IngressError(Exception):
    """Why `tuik8s ingress` cannot run, in one line."""


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def claim_port(host: str, port: int, flag: str) -> int:
    """Check nobody listens on host:port (0: pick a free port); return the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise IngressError(
                    f"port {port} on {host} is in use: stop what listens there, or choose another with {flag} HOST:PORT"
                ) from None
            raise IngressError(f"cannot listen on {host}:{port} ({flag}): {e.strerror}") from None
        return int(s.getsockname()[1])


def client_for(kubeconfig: str | None, context: str | None) -> ApiClient:
    """A client for `context` of `kubeconfig` (only that file, as kubectl --kubeconfig)."""
    if kubeconfig and not os.path.isfile(kubeconfig):
        raise IngressError(f"--kubeconfig {kubeconfig}: no such file")
    try:
        access = access_for(context, kubeconfig)
    except KubeconfigError as e:
        raise IngressError(str(e)) from None
    return ApiClient(HttpTransport(access), default_namespace=access.namespace)


class WorkerPool:
    """N proxy worker processes fed the same tables; restarted when one dies."""

    def __init__(self, count: int, listeners: list[tuple[str, int]], *, verbose: bool = False) -> None:
        self.count = count
        self.listeners = listeners
        self.verbose = verbose
        self.table: RoutingTable | None = None
        self.procs: list[asyncio.subprocess.Process | None] = [None] * count
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-O", "-m", "tuik8s.ingress.worker"]
        for host, port in self.listeners:
            cmd += ["--listen", f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        if self.verbose:
            cmd.append("--verbose")
        return cmd

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        assert self.table is not None
        proc = await asyncio.create_subprocess_exec(
            *self._command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(encode_table(self.table))
        try:
            async with asyncio.timeout(START_TIMEOUT):
                line = (await proc.stdout.readline()).decode().strip()
        except TimeoutError:
            line = ""
        if line != READY:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await proc.wait()
            raise IngressError(f"a proxy worker did not start (exit code {code}); run with -v for its log")
        self.procs[index] = proc
        return proc

    async def start(self, table: RoutingTable) -> None:
        self.table = table
        for i in range(self.count):
            await self._spawn(i)
        self._watchers = [asyncio.create_task(self._watch(i)) for i in range(self.count)]

    async def _watch(self, index: int) -> None:
        while not self._stopping:
            proc = self.procs[index]
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            log.warning("proxy worker %d (pid %d) exited with %s; restarting", index, proc.pid, code)
            await asyncio.sleep(RESTART_DELAY)
            try:
                await self._spawn(index)
            except IngressError as e:
                log.error("%s", e)

    def publish(self, table: RoutingTable) -> None:
        self.table = table
        frame = encode_table(table)
        for proc in self.procs:
            if proc is not None and proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    proc.stdin.write(frame)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        live = [p for p in self.procs if p is not None and p.returncode is None]
        for proc in live:
            if proc.stdin is not None:
                proc.stdin.close()  # end of tables: the worker shuts down
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in live:
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


def advertised(args: argparse.Namespace, host: str) -> str:
    if args.advertise:
        return str(args.advertise)
    return host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"


async def run_ingress(args: argparse.Namespace, ready: Callable[[str], Any] | None = None) -> int:
    try:
        http_host, http_port = parse_address(args.listen)
        listeners = [(http_host, claim_port(http_host, http_port, "--listen"))]
        if args.https_listen.lower() != "off":
            https_host, https_port = parse_address(args.https_listen)
            listeners.append((https_host, claim_port(https_host, https_port, "--https-listen")))
    except ValueError as e:
        raise IngressError(str(e)) from None
    if args.workers < 1:
        raise IngressError("--workers must be at least 1")
    client = client_for(args.kubeconfig, args.context)
    controller: IngressController | None = None
    pool = WorkerPool(args.workers, listeners, verbose=bool(getattr(args, "verbose", False)))
    try:
        where = getattr(client.transport, "access", None)
        server = getattr(where, "server", "the API server")
        try:
            async with asyncio.timeout(15):
                await client.request("GET", "/version")
        except (ClientError, TimeoutError) as e:
            raise IngressError(f"cannot reach the cluster at {server}: {e or 'timed out'}") from None
        controller = IngressController(
            client, pool.publish, address=advertised(args, http_host), class_name=args.ingress_class,
        )
        try:
            async with asyncio.timeout(START_TIMEOUT):
                table = await controller.start()
        except TimeoutError:
            raise IngressError(f"the cluster at {server} did not answer the first lists within {START_TIMEOUT:.0f} s") from None
        await pool.start(table)
        urls = ", ".join(
            f"{'https' if i else 'http'}://{h}:{p}" for i, (h, p) in enumerate(listeners)
        )
        line = f"tuik8s ingress ready at {urls} ({args.workers} worker{'s' * (args.workers != 1)})"
        (ready or (lambda s: print(s, flush=True)))(line)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(controller.run())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (runner, stopper):
            task.cancel()
        if runner.done() and not runner.cancelled() and (e := runner.exception()) is not None:
            log.error("the ingress controller stopped", exc_info=e)
            raise IngressError(f"the ingress controller stopped: {e}")
        return 0
    finally:
        await pool.stop()
        if controller is not None:
            await controller.stop()
        await client.close()


def cmd_ingress(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_ingress(args))
    except (IngressError, ClientError, OSError) as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def add_ingress_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `ingress` to the `tuik8s` command's subparsers."""
    p = subparsers.add_parser("ingress", help="run the Ingress controller (mitmproxy) against a cluster")
    p.add_argument("--kubeconfig", help="the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="the kubeconfig context (default: the current one)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help="HTTP address (default: %(default)s)")
    p.add_argument("--https-listen", default=DEFAULT_HTTPS_LISTEN, metavar="HOST:PORT",
                   help="HTTPS address, TLS from the Ingresses' secrets; 'off' for none (default: %(default)s)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="proxy processes sharing the ports (default: %(default)s, the CPUs up to 4)")
    p.add_argument("--advertise", metavar="IP_OR_NAME",
                   help="address written to Ingress status.loadBalancer (default: the listen host, or 127.0.0.1)")
    p.add_argument("--ingress-class", default=DEFAULT_CLASS,
                   help="IngressClass name served besides any class of controller tuik8s.io/ingress (default: %(default)s)")
    p.set_defaults(func=cmd_ingress)
    return p


# ---- in the background, for `tuik8s up` ----------------------------------------------------


def _free_port(start: int, avoid: set[int]) -> int:
    for port in range(start, start + 200):
        if port in avoid:
            continue
        try:
            claim_port("0.0.0.0", port, "--listen")
        except IngressError:
            continue
        return port
    raise IngressError(f"no free port in {start}-{start + 199} for the ingress")


def _ports_for(data_dir: Path) -> tuple[int, int]:
    """The ports this cluster's ingress used before, else free ones from 8080 and 8443."""
    remembered = data_dir / "ingress-ports"
    with contextlib.suppress(OSError, ValueError):
        http, https = (int(p) for p in remembered.read_text().split())
        return http, https
    http = _free_port(8080, set())
    https = _free_port(8443, {http})
    remembered.write_text(f"{http} {https}\n")
    return http, https


def start_in_background(data_dir: Path, timeout: float = 60.0) -> str:
    """Start `tuik8s ingress` for the cluster of `data_dir` (unless it runs); say where.

    Its pid goes to DATA/ingress.pid and its output to DATA/ingress.log, as the server's.
    Raises `IngressError` with the reason when it does not get ready.
    """
    import subprocess
    import time

    pid_file, log_file = data_dir / "ingress.pid", data_dir / "ingress.log"
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text().strip()), 0)
        http, https = _ports_for(data_dir)
        return f"the ingress runs at http://localhost:{http} and https://localhost:{https}"
    http, https = _ports_for(data_dir)
    for port, flag in ((http, "--listen"), (https, "--https-listen")):
        claim_port("0.0.0.0", port, flag)
    start = log_file.stat().st_size if log_file.exists() else 0
    with open(log_file, "ab") as log_out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuik8s.cli", "ingress", "--kubeconfig", str(data_dir / "kubeconfig"),
             "--listen", f"0.0.0.0:{http}", "--https-listen", f"0.0.0.0:{https}"],
            stdout=log_out, stderr=log_out, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_file, "rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").splitlines()
        if any("tuik8s ingress ready" in line for line in lines):
            return f"the ingress runs at http://localhost:{http} and https://localhost:{https} (log: {log_file})"
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            reason = lines[-1].removeprefix("tuik8s: error: ") if lines else "no output"
            raise IngressError(f"the ingress did not start: {reason}")
        time.sleep(0.2)
    raise IngressError(f"the ingress did not get ready in {timeout:.0f} s; see {log_file}")
