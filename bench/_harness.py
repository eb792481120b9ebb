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
- Worker processes (`role_parser`, `run_worker`, `spawn_role`, `wait_role`, `api_session`):
  a benchmark's load runs as the same script with `--role ROLE` and hands back one JSON file.
- `sh`/`BenchError` and `DockerLab`: a benchmark's own server and `tuik8s lab` cluster.
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
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
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


def run_bench(fn: Any) -> int:
    """Run a benchmark's main part with REAPER installed: Ctrl-C prints "interrupted" and
    exits 130; every process and temp dir is cleaned up on any exit."""
    REAPER.install()
    try:
        return int(fn())
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        REAPER.cleanup()


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


# ---- commands and the Docker lab -------------------------------------------------------------


class BenchError(Exception):
    """A step of a benchmark failed; the message is one line."""


def sh(*cmd: str, check: bool = True, timeout: float = 600, input: str | None = None,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command from the repo; with `check`, a failure is a BenchError with its last line."""
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd=REPO, input=input, env=env)
    if check and r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or [f"exit {r.returncode}"]
        raise BenchError(f"{' '.join(cmd[:6])} failed: {last[0]}")
    return r


class DockerLab:
    """A Docker lab cluster of a benchmark: its data dir, its own `tuik8s server` (listening on
    all addresses, advertised on the lab network's gateway so the nodes reach it) and the
    `tuik8s lab` commands, all with HOME and KUBECONFIG inside `base`."""

    def __init__(self, cluster: str, base: Path) -> None:
        self.cluster = cluster
        self.base = base
        self.data = base / "data"
        self.server: subprocess.Popen[bytes] | None = None
        self.net: Any = None
        self.url = ""
        self.token = ""

    @property
    def kubeconfig(self) -> Path:
        return self.data / "kubeconfig"

    @property
    def ca(self) -> Path:
        return self.data / "pki" / "ca.crt"

    @property
    def gateway(self) -> str:
        return str(self.net.gateway) if self.net is not None else ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.base / "home"), "KUBECONFIG": str(self.kubeconfig)}

    def lab(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return sh(PYTHON, "-m", "tuik8s.cli", "lab", *args, "--cluster", self.cluster, "--data-dir", str(self.data),
                  check=check, timeout=timeout, env=self.env())

    def container(self, node: str) -> str:
        return f"tuik8s-{self.cluster}-{node}"

    def start_server(self, timeout: float = 60.0) -> float:
        """Allocate the lab network, start the server on it; the seconds until it was ready."""
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from tuik8s.nodes.docker import DockerNodeProvider

        self.net = asyncio.run(DockerNodeProvider(self.cluster, self.data).network(allocate=True))
        if self.net is None:
            raise BenchError("cannot allocate the lab network")
        (self.base / "home").mkdir(parents=True, exist_ok=True)
        log = self.base / "server.log"
        t0 = time.monotonic()
        with open(log, "wb") as out:
            self.server = REAPER.spawn(
                [PYTHON, "-m", "tuik8s.cli", "server", "--cluster", self.cluster, "--data-dir", str(self.data),
                 "--port", "0", "--host", "0.0.0.0", "--advertise", self.net.gateway, "--no-user-kubeconfig"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO), env=self.env(),
            )
        deadline = time.monotonic() + timeout
        while "control plane ready" not in log.read_text(errors="replace") or not self.kubeconfig.exists():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"tuik8s server did not start: {log.read_text(errors='replace')[-300:]}")
            time.sleep(0.05)
        import yaml

        self.url = str(yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
        self.token = read_token(self.kubeconfig)
        return time.monotonic() - t0

    def server_log_tail(self, lines: int = 15) -> list[str]:
        log = self.base / "server.log"
        return log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []

    def teardown(self, timeout: float = 600) -> None:
        """`lab down`, then the server: every exit path comes here."""
        if self.server is not None:
            down = self.lab("down", check=False, timeout=timeout)
            if down.returncode != 0:
                print(f"lab down failed: {down.stderr.strip().splitlines()[-1:]}", flush=True)
            REAPER.stop(self.server, timeout=10)
            self.server = None


def web_deployment_yaml(name: str, node: str | None = None) -> str:
    """A Deployment of one `tuik8s/blog` pod (busybox httpd on port `http` 8080, Ready on
    /healthz every second), labelled app=NAME, on `node` if given: the backend the lab
    benchmarks put behind a Service."""
    on_node = f"      nodeSelector: {{kubernetes.io/hostname: {node}}}\n" if node else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
{on_node}      containers:
        - name: web
          image: tuik8s/blog:latest
          imagePullPolicy: IfNotPresent
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
"""


# ---- worker processes ----------------------------------------------------------------------
# A benchmark runs its load in separate processes (the same script with `--role ROLE`), so
# that the client's CPU is not the server's and is measured apart: each writes one JSON
# result file, which the main process reads back.


def api_session(token: str, ca: str | Path, limit: int) -> Any:
    """An aiohttp session to the API server: bearer token, its CA, at most `limit` connections
    (kept alive), no total timeout (watches and long load runs)."""
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=client_ssl(Path(ca))),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
    )


async def watch_lines(resp: Any, clock: Callable[[], float] = time.time) -> AsyncIterator[tuple[float, bytes]]:
    """The non-empty lines of a watch response as they arrive, each with `clock()` read when
    the chunk that completed it arrived (the receipt time a watcher's figures use)."""
    buf = b""
    async for chunk in resp.content.iter_any():
        now = clock()
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield now, line


def role_parser(prog: str, roles: Sequence[str]) -> argparse.ArgumentParser:
    """The arguments every worker role takes; the script adds its own."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--role", required=True, choices=list(roles))
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--out", required=True)
    return ap


def run_worker(fn: Any, a: argparse.Namespace) -> int:
    """Run the worker coroutine `fn(a)`; write its result dict, with the process's CPU
    seconds as `cpu_s`, to `a.out` (atomically: the main process reads it once it exists)."""
    import orjson

    t0 = time.process_time()
    try:
        result = asyncio.run(fn(a))
    except KeyboardInterrupt:
        return 1
    result["cpu_s"] = time.process_time() - t0
    tmp = a.out + ".tmp"
    Path(tmp).write_bytes(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS))
    os.replace(tmp, a.out)
    return 0


def spawn_role(script: str, role: str, url: str, token: str, ca: str | Path, out: Path,
               *extra: str) -> subprocess.Popen[bytes]:
    """Start `script --role ROLE ...` writing its result to `out`, its output to out.log."""
    log = open(out.with_suffix(".log"), "wb")  # noqa: SIM115 - closed below, the child keeps its copy
    p = REAPER.spawn(
        # --token=...: a token may begin with "-", which argparse would take for an option
        [PYTHON, str(Path(script).resolve()), "--role", role, "--url", url, f"--token={token}",
         "--ca", str(ca), "--out", str(out), *extra],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    log.close()
    return p


def wait_role(p: subprocess.Popen[bytes], out: Path, timeout: float, what: str = "worker") -> dict[str, Any]:
    """Wait for a worker and return its result; one-line RuntimeError if it hung or failed."""
    import orjson

    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        REAPER.stop(p)
        raise RuntimeError(f"{out.name}: {what} did not finish within {timeout:.0f} s") from None
    if p in REAPER.procs:
        REAPER.procs.remove(p)
    if not out.exists():
        log = out.with_suffix(".log")
        raise RuntimeError(f"{out.name}: {what} failed: {log.read_text(errors='replace')[-400:]}")
    return dict(orjson.loads(out.read_bytes()))


# ---- py-spy ----------------------------------------------------------------------------------


def find_py_spy() -> str | None:
    candidates = (REPO / ".venv" / "bin" / "py-spy", Path(sys.executable).parent / "py-spy")
    return next((str(c) for c in candidates if c.exists()), None) or shutil.which("py-spy")


class PySpy:
    """`py-spy record` of raw stacks from one process, from now until `stop()`."""

    def __init__(self, spy: str, pid: int, out: Path, rate: int) -> None:
        self.out = out
        self.proc = REAPER.spawn(
            [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), "--output", str(out),
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self, timeout: float) -> Path:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C, not on SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        REAPER.stop(self.proc)
        return self.out


def aggregate_profile(path: Path, frame: Callable[[str], str]) -> dict[str, Any]:
    """Samples per function from py-spy's raw stacks: where they were (own: the innermost
    frame) and under which functions (inclusive); `frame` names a raw frame for the report."""
    if not path.exists():
        return {}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [frame(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
    return {"total": total, "own": own.most_common(25), "inclusive": inclusive.most_common(40)}


def profile_lines(prof: dict[str, Any], key: str) -> list[str]:
    """The `own` or `inclusive` top list of `aggregate_profile` as report lines."""
    total = prof.get("total") or 1
    return [f"  {100 * n / total:5.1f}%  {name}" for name, n in prof[key]]


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
