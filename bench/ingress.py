"""Ingress benchmark: `tuik8s ingress` against stock mitmdump in front of the same backend.

    .venv/bin/python bench/ingress.py [--rounds 3] [--duration 8] [--connections 20] [--levers]

Needs root (it puts one address of 198.18.0.0/15 on the loopback interface: Endpoints may
not hold loopback addresses, so the backend listens there; traffic never leaves the
machine) and wrk. Everything it starts is removed at the end, also on Ctrl-C.

In each round, in rotating order, `wrk -t1 -cC -dDs --latency` against:
- `direct`: an aiohttp "hello" backend (the ceiling);
- `stock`: `mitmdump -q --mode reverse:http://BACKEND` (the baseline of issue 5);
- `ingress`: `tuik8s ingress` (default workers) routing Host `bench.local` by an Ingress
  through a real `tuik8s server` to the same backend as the only endpoint of a Service;
- with `--levers`, also the ingress with one worker, with mitmproxy's own hook dispatch
  (`TUIK8S_INGRESS_DISPATCH=stock`), without write coalescing (`TUIK8S_INGRESS_CORK=off`)
  and without passing failed requests to another endpoint (`TUIK8S_INGRESS_RETRY=off`:
  what the retry costs the requests that do not fail).

With `--lab`, the backend is instead one busybox httpd pod (tuik8s/blog) on a 2-node
Docker-in-Docker lab (cluster `bench-ingress`, torn down at the end): `direct` is its pod
IP, stock mitmdump and the ingress (whose Endpoints now come from the real endpoints
controller) are in front of it. Needs a Docker engine; builds the lab images if missing.

Figures: req/s, p50, p99 (wrk's), non-2xx responses and connect/write/timeout errors
(wrk's read errors are servers closing connections, which busybox httpd does after every
response, so they are not failures), and the CPU time the proxy
processes spent per request (all workers together): on a shared machine req/s moves with
the neighbours' load, CPU per request much less. Summary: medians over rounds, and the
median of the per-round ratios to stock. Target (issue 5): >= 3x stock req/s with
p99 <= 50 ms at 20 connections. `BENCH_INGRESS_RAW=1` prints wrk's own output too.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from _harness import (
    PYTHON,
    REAPER,
    REPO,
    BenchError,
    DockerLab,
    MachineCpu,
    ServerStartError,
    TuikServer,
    median,
    proc_cpu_seconds,
    uptime_line,
    web_deployment_yaml,
)

HELLO = textwrap.dedent('''
    import sys
    from aiohttp import web
    async def hello(request):
        return web.Response(text="hello\\n")
    async def started(app):
        print("ready", flush=True)
    app = web.Application()
    app.on_startup.append(started)
    app.router.add_get("/{tail:.*}", hello)
    web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None, access_log=None)
''')

LAB_CLUSTER = "bench-ingress"
INGRESS_CLASS = """
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: tuik8s}
spec: {controller: tuik8s.io/ingress}
---
"""

INGRESS = """---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: hello}
spec:
  ingressClassName: tuik8s
  rules:
  - host: bench.local
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: hello, port: {name: http}}}}
"""

LAB_APP = INGRESS_CLASS + web_deployment_yaml("hello") + """---
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: http}]
""" + INGRESS


def manifest(ip: str, port: int) -> str:
    """The Ingress in front of a Service whose only endpoint is the hello backend."""
    return INGRESS_CLASS + f"""apiVersion: v1
kind: Service
metadata: {{name: hello}}
spec:
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: hello}}
subsets:
- addresses: [{{ip: {ip}}}]
  ports: [{{name: http, port: {port}}}]
""" + INGRESS


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


@dataclass
class Target:
    name: str
    url: str
    host: str | None = None
    pids: list[int] = field(default_factory=list)


@dataclass
class Result:
    rps: float
    p50: float
    p99: float
    bad: int
    cpu_us: float


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(target: Target, connections: int, duration: float) -> Result:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s"]
    if target.host:
        cmd += ["-H", f"Host: {target.host}"]
    cpu0 = [proc_cpu_seconds(p) for p in target.pids]
    t0 = time.monotonic()
    out = subprocess.run([*cmd, target.url], capture_output=True, text=True, timeout=duration + 30).stdout
    wall = time.monotonic() - t0
    each = [proc_cpu_seconds(p) - c for p, c in zip(target.pids, cpu0, strict=True)]
    if os.environ.get("BENCH_INGRESS_RAW"):
        print(f"--- {target.name} CPU per process: {', '.join(f'{c / wall:.0%}' for c in each)}", flush=True)
    if os.environ.get("BENCH_INGRESS_RAW"):
        print(f"--- {target.name}\n{out}", flush=True)
    cpu = sum(each)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) if "Requests/sec" in out else 0.0
    total = int(re.search(r"(\d+) requests in", out).group(1)) if "requests in" in out else 0
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:  # read errors are servers closing keep-alive connections (busybox httpd always does)
        bad += int(sock.group(1)) + int(sock.group(3)) + int(sock.group(4))
    return Result(rps, _ms(p50.group(1)) if p50 else float("nan"), _ms(p99.group(1)) if p99 else float("nan"),
                  bad, cpu / total * 1e6 if total and target.pids else float("nan"))


def wait_line(proc: subprocess.Popen[bytes], word: str, what: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
            if word.encode() in buf:
                return buf.decode(errors="replace")
        if proc.poll() is not None:
            raise ServerStartError(f"{what} exited before it was ready: {buf.decode(errors='replace').strip()}")
        time.sleep(0.05)
    raise ServerStartError(f"{what} was not ready within {timeout:.0f} s")


def start_ingress(kubeconfig: Path, name: str, workers: int | None, env: dict[str, str]) -> Target:
    log = kubeconfig.parent.parent / f"{name}.log"
    port = free_port()
    cmd = [PYTHON, "-m", "tuik8s.cli", "ingress", "--kubeconfig", str(kubeconfig),
           "--listen", f"127.0.0.1:{port}", "--https-listen", "off"]
    if workers:
        cmd += ["--workers", str(workers)]
    with open(log, "wb") as err:
        proc = REAPER.spawn(cmd, stdout=subprocess.PIPE, stderr=err, cwd=str(REPO), env={**os.environ, **env})
    try:
        wait_line(proc, "ready", f"tuik8s ingress ({name})")
    except ServerStartError as e:
        raise ServerStartError(f"{e} {log.read_text(errors='replace').strip()[-300:]}") from None
    return Target(name, f"http://127.0.0.1:{port}/", "bench.local", children(proc.pid))


def add_address() -> str:
    for _ in range(20):
        ip = f"198.18.{random.randrange(256)}.{random.randrange(2, 250)}"
        if subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"], capture_output=True).returncode == 0:
            atexit.register(subprocess.run, ["ip", "addr", "del", f"{ip}/32", "dev", "lo"], capture_output=True)
            return ip
    raise SystemExit("bench/ingress.py: cannot add an address to the loopback interface (needs root and iproute2)")


class LabBackend(DockerLab):
    """A 2-node lab with one web pod; `start` returns its kubeconfig and the pod's address."""

    def __init__(self, base: Path) -> None:
        super().__init__(LAB_CLUSTER, base)

    def start(self) -> tuple[Path, str, int]:
        import asyncio
        import json

        sys.path.insert(0, str(REPO))
        from tuik8s.nodes.docker import ImageBuilder

        asyncio.run(ImageBuilder(say=lambda line: print(f"  {line}", flush=True)).build())
        self.start_server(timeout=90)
        up = self.lab("up", "--nodes", "2", check=False, timeout=900)
        if up.returncode != 0:
            raise ServerStartError(f"lab up failed: {(up.stderr.strip().splitlines() or ['?'])[-1]}")
        subprocess.run(["kubectl", "apply", "-f", "-"], input=LAB_APP, text=True, check=True,
                       capture_output=True, env=self.env())
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            out = subprocess.run(["kubectl", "get", "endpoints", "hello", "-o", "json"], capture_output=True,
                                 text=True, env=self.env())
            subsets = (json.loads(out.stdout).get("subsets") or []) if out.returncode == 0 else []
            for subset in subsets:
                for addr in subset.get("addresses") or []:
                    return self.kubeconfig, addr["ip"], int(subset["ports"][0]["port"])
            time.sleep(0.5)
        raise ServerStartError("the web pod did not get Ready in 180 s")

    def stop(self) -> None:
        self.teardown(timeout=900)


def fmt(r: Result) -> str:
    cpu = f"{r.cpu_us:7.0f} us/req" if r.cpu_us == r.cpu_us else " " * 14
    return f"{r.rps:8.0f} req/s  p50 {r.p50:7.2f} ms  p99 {r.p99:7.2f} ms  bad {r.bad:<4d} {cpu}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--workers", type=int, help="ingress workers (default: tuik8s ingress's default)")
    parser.add_argument("--levers", action="store_true", help="also measure the ingress without each lever")
    parser.add_argument("--lab", action="store_true", help="a busybox httpd pod on a 2-node lab as the backend")
    args = parser.parse_args()
    for tool in ("wrk", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench/ingress.py: {tool} is missing (apt-get install {'wrk' if tool == 'wrk' else 'iproute2'})")
    if os.geteuid() != 0:
        raise SystemExit("bench/ingress.py: run as root (it adds a loopback address for the backend)")
    REAPER.install()
    tmp = REAPER.mkdtemp("bench-ingress-")
    lab = LabBackend(tmp) if args.lab else None
    try:
        return measure(args, tmp, lab)
    finally:
        for proc in reversed(REAPER.procs[:]):  # the proxies first, while their API server answers
            if lab is None or proc is not lab.server:
                REAPER.stop(proc)
        if lab is not None:
            lab.stop()


def measure(args: argparse.Namespace, tmp: Path, lab: LabBackend | None) -> int:
    backend_pids: list[int] = []
    if lab is not None:
        print("# starting a 2-node lab with one web pod", flush=True)
        kubeconfig, ip, port = lab.start()
    else:
        ip = add_address()
        hello_py = tmp / "hello.py"
        hello_py.write_text(HELLO)
        port = free_port()
        hello = REAPER.spawn([PYTHON, str(hello_py), ip, str(port)], stdout=subprocess.PIPE)
        wait_line(hello, "ready", "the hello backend")
        backend_pids = [hello.pid]

    mitm_port = free_port()
    mitmdump = str(Path(PYTHON).parent / "mitmdump")
    stock = REAPER.spawn([mitmdump, "-q", "--mode", f"reverse:http://{ip}:{port}", "--listen-host", "127.0.0.1",
                          "--listen-port", str(mitm_port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env={**os.environ, "HOME": str(tmp)})
    deadline = time.monotonic() + 60
    while subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{mitm_port}/"]).returncode != 0:
        if stock.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("bench/ingress.py: stock mitmdump did not start")
        time.sleep(0.2)

    if lab is None:
        server = TuikServer(tmp / "data", flags=("--no-scheduler", "--no-controllers")).start()
        kubeconfig = server.data_dir / "kubeconfig"
        subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "apply", "-f", "-"],
                       input=manifest(ip, port), text=True, check=True, capture_output=True,
                       env={**os.environ, "HOME": str(tmp)})

    targets = [
        Target("direct", f"http://{ip}:{port}/", None, backend_pids),
        Target("stock", f"http://127.0.0.1:{mitm_port}/", None, [stock.pid]),
        start_ingress(kubeconfig, "ingress", args.workers, {}),
    ]
    if args.levers:
        targets += [
            start_ingress(kubeconfig, "ingress-1-worker", 1, {}),
            start_ingress(kubeconfig, "ingress-stock-dispatch", args.workers, {"TUIK8S_INGRESS_DISPATCH": "stock"}),
            start_ingress(kubeconfig, "ingress-no-cork", args.workers, {"TUIK8S_INGRESS_CORK": "off"}),
            start_ingress(kubeconfig, "ingress-no-retry", args.workers, {"TUIK8S_INGRESS_RETRY": "off"}),
        ]
    workers = len(targets[2].pids)
    backend = f"busybox httpd pod {ip}:{port} on the lab" if lab else f"aiohttp hello on {ip}:{port}"
    print(f"# ingress benchmark ({backend}): wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds, "
          f"{workers} ingress workers; {uptime_line()}")
    for t in targets:  # warm-up: connections, caches, the routing path
        run_wrk(t, args.connections, 1.0)
    results: dict[str, list[Result]] = {t.name: [] for t in targets}
    ratios: dict[str, list[float]] = {t.name: [] for t in targets}
    width = max(len(t.name) for t in targets)
    for r in range(args.rounds):
        order = targets[r % len(targets):] + targets[: r % len(targets)]
        machine = MachineCpu()
        got = {}
        for t in order:
            got[t.name] = run_wrk(t, args.connections, args.duration)
            results[t.name].append(got[t.name])
        base = got["stock"].rps
        print(f"round {r + 1} (machine busy {machine.busy():.0%})")
        for t in targets:
            ratio = got[t.name].rps / base if base else float("nan")
            ratios[t.name].append(ratio)
            print(f"  {t.name:<{width}} {fmt(got[t.name])}  {ratio:5.2f}x stock")
    print("summary (medians over rounds; ratio = median of per-round ratios to stock)")
    for t in targets:
        rs = results[t.name]
        m = Result(median([x.rps for x in rs]), median([x.p50 for x in rs]), median([x.p99 for x in rs]),
                   sum(x.bad for x in rs), median([x.cpu_us for x in rs]))
        print(f"  {t.name:<{width}} {fmt(m)}  {median(ratios[t.name]):5.2f}x stock")
    ing = results["ingress"]
    ok = median(ratios["ingress"]) >= 3.0 and median([x.p99 for x in ing]) <= 50.0
    print(f"target >= 3x stock with p99 <= 50 ms: {'met' if ok else 'not met'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ServerStartError, BenchError) as e:
        print(f"bench/ingress.py: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        REAPER.cleanup()
