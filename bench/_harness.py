"""Shared plumbing for the benchmarks: processes, servers, TLS, tokens, statistics.

- `REAPER` owns every process and temp dir a benchmark starts; `REAPER.install()` makes
  Ctrl-C, SIGTERM, SIGHUP and normal exit stop them (by pid) and remove the dirs.
- `TuikServer` runs `tuik8s server` on a data dir (port 0; the URL comes from its
  "ready" line) and reads the admin token and CA from it.
- `HelloServer` is the baseline: a minimal aiohttp HTTPS app with the same certificate,
  key and TLS settings, run as `python bench/_harness.py hello ...`. It answers any POST
  with 201 and the body echoed, streams every POSTed body to `?watch=true` readers as a
  watch event line, and serves `?size=N` with an N-byte JSON body (the LIST baseline).
- `percentile`, `median`, CPU and memory readers from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import math
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- processes and temp dirs -------------------------------------------------------------


class Reaper:
    """Every child process and temp dir of this run, so that any exit cleans them up."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dirs: list[Path] = []
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        atexit.register(self.cleanup)

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, interrupt)

    def spawn(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        # Own session: a Ctrl-C on the terminal reaches only us, and we stop the children.
        p = subprocess.Popen(list(argv), start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def mkdtemp(self, prefix: str) -> Path:
        d = Path(tempfile.mkdtemp(prefix=prefix))
        self.dirs.append(d)
        return d

    def stop(self, p: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; True if it exited on SIGTERM in time."""
        clean = True
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                clean = False
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        return clean

    def cleanup(self) -> None:
        procs = [p for p in self.procs if p.poll() is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                with contextlib.suppress(Exception):
                    p.wait(5)
        self.procs.clear()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.dirs.clear()


REAPER = Reaper()


def wait_rusage(p: subprocess.Popen[bytes], timeout: float | None = None) -> float:
    """Wait for a child and return the CPU seconds (user + system, all threads) it used."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            if p in REAPER.procs:
                REAPER.procs.remove(p)
            return ru.ru_utime + ru.ru_stime
        if deadline is not None and time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(p.args, timeout or 0)
        time.sleep(0.02)


def proc_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a running process (all threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a running process, in KiB."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


class MachineCpu:
    """Busy share of the whole machine between two samples of /proc/stat."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values), idle

    def busy(self) -> float:
        total, idle = self._sample()
        dt = total - self.start[0]
        return 1.0 - (idle - self.start[1]) / dt if dt > 0 else float("nan")


def uptime_line() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        with open("/proc/loadavg") as f:
            return "load average: " + " ".join(f.read().split()[:3])


# ---- TLS, tokens ---------------------------------------------------------------------------


def client_ssl(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def server_ssl(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS settings as the API server's: TLS 1.2+, ALPN http/1.1, same key pair."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def read_token(kubeconfig: Path) -> str:
    import yaml

    with open(kubeconfig) as f:
        doc = yaml.safe_load(f)
    return str(doc["users"][0]["user"]["token"])


# ---- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); nan when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return percentile(vals, 50) if vals else float("nan")


# ---- servers -----------------------------------------------------------------------------------


class ServerStartError(Exception):
    """The server did not become ready; the message is one line."""


def _wait_ready(p: subprocess.Popen[bytes], out: Path, err: Path, what: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace") if out.exists() else ""
        for line in text.splitlines():
            if "ready" in line:
                return line
        if p.poll() is not None:
            tail = err.read_text(errors="replace").strip().splitlines() if err.exists() else []
            last = tail[-1] if tail else f"exit code {p.returncode}"
            hint = ""
            if any("ImportError" in t or "ModuleNotFoundError" in t for t in tail):
                hint = " (a module is missing: colleagues may still be landing it; retry in a few minutes)"
            raise ServerStartError(f"{what} exited before it was ready: {last}{hint}")
        time.sleep(0.05)
    raise ServerStartError(f"{what} was not ready within {timeout:.0f} s")


class TuikServer:
    """`tuik8s server` on a data dir, started and stopped by the benchmark."""

    def __init__(self, data_dir: Path, pki_from: Path | None = None, flags: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.pki_from = pki_from
        self.flags = tuple(flags)  # extra `tuik8s server` flags, e.g. --no-controllers
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""
        self.starts = 0
        self.ready_seconds = 0.0
        self._err_offset = 0

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    @property
    def cert_file(self) -> Path:
        return self.data_dir / "pki" / "apiserver.crt"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "pki" / "apiserver.key"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_dir(self) -> Path:
        return self.data_dir.parent / (self.data_dir.name + ".logs")

    def start(self, timeout: float = 60.0) -> TuikServer:
        if self.pki_from is not None and not (self.data_dir / "pki").exists():
            # the same TLS material for every server of a run (and for the baseline)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(self.pki_from, self.data_dir / "pki", ignore=shutil.ignore_patterns("lock", "*.lock"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        out = self.log_dir / f"stdout.{self.starts}"
        err = self.log_dir / f"stderr.{self.starts}"
        t0 = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = REAPER.spawn(
                [PYTHON, "-m", "tuik8s.cli", "server", "--data-dir", str(self.data_dir),
                 "--port", "0", "--no-user-kubeconfig", *self.flags],
                stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, cwd=str(REPO),
            )
        line = _wait_ready(self.proc, out, err, "tuik8s server", timeout)
        self.ready_seconds = time.monotonic() - t0
        url = next((w for w in line.split() if w.startswith("https://")), "")
        if not url:
            raise ServerStartError(f"cannot find the URL in the ready line: {line!r}")
        self.url = url.rstrip(",)")
        self.token = read_token(self.data_dir / "kubeconfig")
        return self

    def memory_kb(self) -> dict[str, int]:
        return proc_memory_kb(self.pid)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc in REAPER.procs:
            REAPER.procs.remove(self.proc)

    def stop(self, grace: float = 3.0) -> float | None:
        """SIGTERM; SIGKILL after `grace` s. Returns the seconds it took to exit on SIGTERM,
        or None when it had to be killed (it did not exit in time)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        clean = REAPER.stop(self.proc, timeout=grace)
        return time.monotonic() - t0 if clean else None

    def stderr_all(self) -> str:
        parts = []
        for i in range(1, self.starts + 1):
            f = self.log_dir / f"stderr.{i}"
            if f.exists():
                parts.append(f.read_text(errors="replace"))
        return "".join(parts)


class HelloServer:
    """The baseline HTTPS server (see the module docstring)."""

    def __init__(self, cert_file: Path, key_file: Path, log_dir: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> HelloServer:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out, err = self.log_dir / "hello.stdout", self.log_dir / "hello.stderr"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = REAPER.spawn(
                [PYTHON, str(Path(__file__).resolve()), "hello", "--cert", str(self.cert_file), "--key", str(self.key_file)],
                stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, cwd=str(REPO),
            )
        line = _wait_ready(self.proc, out, err, "hello server", timeout)
        self.url = line.split()[-1]
        return self

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def memory_kb(self) -> dict[str, int]:
        return proc_memory_kb(self.pid)

    def stop(self) -> None:
        if self.proc is not None:
            REAPER.stop(self.proc)


@dataclass
class Target:
    """What a load round is aimed at: the URL, its token and CA, and its pid for CPU."""

    name: str
    url: str
    token: str
    ca_file: Path
    pid: int


# ---- the hello server itself (runs in its own process) -------------------------------------


def hello_main(argv: list[str]) -> None:
    from aiohttp import web

    ap = argparse.ArgumentParser(prog="_harness.py hello")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)

    watchers: set[asyncio.Queue[bytes]] = set()
    blobs: dict[int, bytes] = {}

    def blob(size: int) -> bytes:
        if size not in blobs:
            head, tail = b'{"kind":"List","items":["', b'"]}'
            blobs[size] = head + b"x" * max(0, size - len(head) - len(tail)) + tail
        return blobs[size]

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        if watchers:
            line = b'{"type":"ADDED","object":' + body + b"}\n"
            for q in watchers:
                q.put_nowait(line)
        return web.Response(status=201, body=body, content_type="application/json")

    async def get(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") in ("true", "1"):
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            q: asyncio.Queue[bytes] = asyncio.Queue()
            watchers.add(q)
            try:
                while True:
                    lines = [await q.get()]
                    while not q.empty():
                        lines.append(q.get_nowait())
                    await resp.write(b"".join(lines))
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                watchers.discard(q)
            return resp
        if "size" in request.query:
            return web.Response(body=blob(int(request.query["size"])), content_type="application/json")
        return web.Response(body=b'{"kind":"List","metadata":{"resourceVersion":"1"},"items":[]}', content_type="application/json")

    async def run() -> None:
        app = web.Application(client_max_size=3 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", post)
        app.router.add_get("/{tail:.*}", get)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=server_ssl(Path(args.cert), Path(args.key)), backlog=1024, reuse_address=True)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"hello ready https://127.0.0.1:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "hello":
        hello_main(sys.argv[2:])
    else:
        print("usage: _harness.py hello --cert FILE --key FILE [--port N]", file=sys.stderr)
        sys.exit(2)
