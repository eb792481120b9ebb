"""Automatic scaling on the real lab, as issue 8's acceptance says: a load generator on the
host sends `Host: blog.local` requests to `tuik8s ingress`, the blog's CPU goes past the
HPA's target, replicas rise; the load stops, replicas fall back after the window.

One Docker-in-Docker node runs the real kubelet; its `/metrics/resource` comes from the
node's Docker engine and cgroups, the API server's scraper reads it, and `kubectl top`
and the HPA see it. The blog is manifests/blog.yaml (busybox httpd forking a CGI shell
script per request, so every request costs the pod real CPU) started at one replica, and
manifests/ingress.yaml routes blog.local to it through `tuik8s ingress` on a loopback port.

The load is paced (a fixed request rate, not as fast as possible). The HPA measures the
pod's usage against its requests, blog 50m + log-collector 10m = 60m; 40 requests a second
make one pod use ~90-115m (`kubectl top`), 150-195% of its request, so the manifest's
request and the usual 50% target need no tuning even on two shared cores, while the
ingress and the load generator (Python, on the host) stay near a tenth of one core. The
test prints what it measured: the most each pod used under load, what `kubectl get hpa`
showed, the time from the load's start to the first scale-up and from its stop back to
one replica.

The server runs with the lab's timings: scrapes every 5 s, HPA syncs every 5 s,
scale-down stabilization 30 s.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.e2e.conftest import LabServer, free_port, start_lab_server, stop_lab_server, wait_for

pytestmark = pytest.mark.lab

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
STABILIZATION = 30.0  # the server's --hpa-downscale-stabilization default (the lab's)
# its --hpa-sync-period default: the window runs from the last high recommendation, which
# may have been made up to one sync before the load stopped
HPA_SYNC = 5.0
TARGET = 50  # percent of the pods' cpu request
MAX_REPLICAS = 4
RATE = 40.0  # requests per second through the ingress while loading
HOLD = 20.0  # seconds the load goes on after the first scale-up


@dataclass
class Blog:
    """The lab with the blog behind `tuik8s ingress` on a loopback port."""

    lab: LabServer
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def blog_manifests() -> str:
    """manifests/blog.yaml at one replica (the HPA's minimum), and the blog's Ingress rule."""
    docs = [d for d in yaml.safe_load_all((MANIFESTS / "blog.yaml").read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["spec"]["replicas"] = 1
    for doc in yaml.safe_load_all((MANIFESTS / "ingress.yaml").read_text()):
        if doc and doc["kind"] == "Ingress":
            doc["spec"]["rules"] = [r for r in doc["spec"]["rules"] if r["host"] == "blog.local"]
        if doc:
            docs.append(doc)
    return yaml.safe_dump_all(docs)


def start_ingress(lab: LabServer, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`tuik8s ingress` on 127.0.0.1:port (one worker: the load is small), output to `log`."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuik8s.cli", "ingress", "--kubeconfig", str(lab.kubeconfig),
             "--listen", f"127.0.0.1:{port}", "--https-listen", "off", "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def ready() -> bool:
        assert proc.poll() is None, f"the ingress exited: {log.read_text()}"
        return "tuik8s ingress ready" in log.read_text()

    try:
        wait_for(ready, timeout=60)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


@pytest.fixture(scope="module")
def blog(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[Blog]:
    base = tmp_path_factory.mktemp("autoscale")
    server = start_lab_server(base, "autoscale")
    ingress: subprocess.Popen[bytes] | None = None
    try:
        server.lab("up", "--nodes", "1")
        server.kubectl("apply", "-f", "-", input=blog_manifests())
        server.kubectl("rollout", "status", "deployment/blog", "--timeout=120s")
        port = free_port()
        ingress = start_ingress(server, port, base / "ingress.log")
        b = Blog(server, port)
        wait_for(lambda: get(b) == 200, timeout=30, interval=0.5)
        yield b
    finally:
        if ingress is not None:
            ingress.terminate()
            try:
                ingress.wait(timeout=15)
            except subprocess.TimeoutExpired:
                ingress.kill()
                ingress.wait()
        server.lab("down", check=False)
        stop_lab_server(server)


def get(blog: Blog) -> int:
    result = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                             "-H", "Host: blog.local", blog.url], capture_output=True, text=True, timeout=15)
    return int(result.stdout or 0)


# ---- the load generator -----------------------------------------------------------------


@dataclass
class Load:
    """`rate` requests a second to `url` with `Host: host`, at most `concurrency` in flight,
    from a thread of its own; counts answers by status (0: no answer)."""

    url: str
    host: str
    rate: float = RATE
    concurrency: int = 16
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # the first few, with when and why
    started: float = 0.0
    stopped: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=20)
        self.stopped = time.monotonic()

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        in_flight = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            sent = 0
            while not self._stop.is_set():
                due = self.started + sent / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await in_flight.acquire()  # an overloaded backend slows the load, never piles it up
                task = asyncio.create_task(self._one(session, in_flight))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.gather(*tasks)

    async def _one(self, session: aiohttp.ClientSession, in_flight: asyncio.Semaphore) -> None:
        try:
            async with session.get(self.url, headers={"Host": self.host}) as r:
                body = await r.read()
                status = r.status
                why = " ".join(re.sub(r"<[^>]+>", " ", body.decode(errors="replace")).split())[:200]
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            status, why = 0, f"{type(e).__name__}: {e}"
        finally:
            in_flight.release()
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 200 and len(self.failures) < 10:
            self.failures.append(f"+{time.monotonic() - self.started:.1f}s {status} {why}")

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())


# ---- what a user looks at -----------------------------------------------------------------


def top(lab: LabServer, *args: str) -> list[list[str]]:
    result = lab.kubectl("top", *args, check=False)
    return [line.split() for line in result.stdout.splitlines()[1:]] if result.returncode == 0 else []


def replicas(lab: LabServer) -> int:
    return int(json.loads(lab.kubectl("get", "deployment", "blog", "-o", "json").stdout)["spec"]["replicas"])


def millicores(text: str) -> int:
    return int(text.removesuffix("m")) if text.endswith("m") else int(text) * 1000


def hpa_targets(lab: LabServer) -> tuple[int, int] | None:
    """`kubectl get hpa blog`'s TARGETS column, `cpu: 180%/50%`, as (current, target)."""
    found = re.search(r"cpu: (\d+)%/(\d+)%", lab.kubectl("get", "hpa", "blog").stdout)
    return (int(found.group(1)), int(found.group(2))) if found else None


def rescale_messages(lab: LabServer) -> list[str]:
    events = json.loads(lab.kubectl("get", "events", "--field-selector", "reason=SuccessfulRescale",
                                    "-o", "json").stdout)
    return [e["message"] for e in events["items"]]


# ---- the tests ----------------------------------------------------------------------------


def test_kubectl_top_shows_what_the_node_really_uses(blog: Blog) -> None:
    rows = wait_for(lambda: top(blog.lab, "nodes"), timeout=60)
    assert rows[0][0] == "node1" and rows[0][1].endswith("m") and rows[0][3].endswith("Mi")
    assert rows[0][2].endswith("%") and rows[0][4].endswith("%")  # allocatable is known
    pods = wait_for(lambda: top(blog.lab, "pods", "-l", "app=blog"), timeout=60)
    assert pods[0][0].startswith("blog-") and millicores(pods[0][1]) < 25  # idle: probes only
    containers = wait_for(lambda: top(blog.lab, "pods", "-l", "app=blog", "--containers"), timeout=30)
    assert sorted(row[1] for row in containers) == ["blog", "log-collector"]


def test_load_through_the_ingress_scales_up_within_a_minute_and_back_after_the_window(blog: Blog) -> None:
    lab = blog.lab
    lab.kubectl("autoscale", "deployment", "blog", f"--cpu-percent={TARGET}", "--min=1", f"--max={MAX_REPLICAS}")
    # the HPA has a current value (idle, under the target) before the load starts
    idle = wait_for(lambda: hpa_targets(lab), timeout=60, interval=1)
    assert idle[0] < TARGET and idle[1] == TARGET, idle

    seen_above: list[tuple[int, int]] = []
    usage: dict[str, int] = {}  # the most each pod used under load, millicores

    def sample() -> int:
        if (targets := hpa_targets(lab)) and targets[0] > TARGET:
            seen_above.append(targets)
        for row in top(lab, "pods", "-l", "app=blog"):
            usage[row[0]] = max(usage.get(row[0], 0), millicores(row[1]))
        return replicas(lab)

    with Load(blog.url, "blog.local") as load:
        wait_for(lambda: sample() > 1, timeout=60, interval=1)
        rose = time.monotonic() - load.started
        peak = peak_at_rise = replicas(lab)
        # the load goes on a while: the new pods serve and the HPA sees them
        hold = time.monotonic() + HOLD
        while time.monotonic() < hold:
            peak = max(peak_at_rise, sample())
            time.sleep(1)
    assert seen_above, "kubectl get hpa never showed the cpu above its target"
    # A few 502s ("no endpoint ... accepts connections") can come while the node starts the
    # new pods: busybox httpd listens with a backlog of 9, the ingress opens a probe
    # connection besides each request's, and gives up a connect after 2 s, less than the
    # kernel's second SYN retransmit (1 s + 2 s). Reported as an ingress issue; printed below.
    failed = load.sent - load.statuses.get(200, 0)
    assert load.sent > 0 and failed <= load.sent * 0.01, f"answers by status: {load.statuses}: {load.failures}"

    wait_for(lambda: replicas(lab) == 1, timeout=STABILIZATION + 60, interval=1)
    fell = time.monotonic() - load.stopped
    assert fell >= STABILIZATION - HPA_SYNC, f"scaled down {fell:.0f}s after the load stopped: inside the window"
    messages = rescale_messages(lab)
    assert any(re.match(r"New size: [2-4]; reason: cpu resource utilization \(percentage of request\) above target",
                        m) for m in messages), messages
    assert "New size: 1; reason: All metrics below target" in messages
    achieved = load.sent / (load.stopped - load.started)
    print(f"\n[autoscale] load {achieved:.0f} req/s through the ingress: {load.sent} requests, "
          f"statuses {load.statuses}; most cpu per pod under load (kubectl top): {usage}; kubectl get hpa: {seen_above}; failures: {load.failures}")
    print(f"[autoscale] replicas 1 -> {peak_at_rise} {rose:.0f} s after the load started (peak {peak}); "
          f"back to 1 {fell:.0f} s after it stopped (window {STABILIZATION:.0f} s)")
