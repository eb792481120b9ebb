"""Issue 5's acceptance, tried as a new user tries it: `tuik8s up --demo` on a 3-node lab,
then curl, kubectl and a load generator against the ingress on a host port.

- `curl -H 'Host: blog.local'` is answered by the blog pods in turn, on several nodes;
  shop.local by the shop pods;
- voice is not reachable from outside (the ingress has no rule for it: 404; its Service
  has no NodePort) and is reachable by name from a blog pod (`kubectl exec ... wget`);
- while 20 concurrent clients load the blog through the ingress, `kubectl scale` up and
  down and `kubectl rollout restart` fail no request (readiness, preStop and the order
  in which Endpoints, kube-proxy and the ingress drop a pod, together);
- stopping a node: traffic through the ingress recovers within the lab's timings (node
  grace ~20 s + toleration 10 s + rescheduling), then served by pods on the other nodes.

Every step prints what it measured (requests sent and failed, recovery time): run with
`-s` to see them. The cluster is torn down with `tuik8s down --purge` and the test checks
that no container, network or host route is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import sh, wait_for

pytestmark = pytest.mark.lab

CLUSTER = "ingacc"
CONTEXT = f"tuik8s-{CLUSTER}"
CLI = [sys.executable, "-m", "tuik8s.cli"]
RECOVERY_LIMIT = 60.0  # node grace ~20 s + toleration 10 s + a new pod's start, with margin
CLEAN_WINDOW = 5.0
# a deleted pod gets no new request this long after its deletion: Endpoints, then the
# ingress's table within ~1 s, plus the deletionTimestamp's whole seconds and a loaded host
DRAIN_LIMIT = 3.0


@dataclass
class Cluster:
    """A cluster started by `tuik8s up`, and the user's shell around it."""

    home: Path
    data_dir: Path
    ingress_port: int
    subnet: str
    pod_cidr: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.home / ".kube" / "config")}

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh("kubectl", "--context", CONTEXT, *args, check=check, env=self.env(), timeout=timeout)

    def tuik8s(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return sh(*CLI, *args, check=check, env=self.env(), timeout=timeout)

    def curl(self, host: str, path: str = "/") -> tuple[int, str]:
        out = sh("curl", "-sS", "--max-time", "10", "-H", f"Host: {host}", "-w", "\n%{http_code}",
                 f"http://127.0.0.1:{self.ingress_port}{path}", timeout=20)
        body, _, code = out.stdout.rpartition("\n")
        return int(code), body

    def pods(self, app: str) -> list[dict]:
        return json.loads(self.kubectl("get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]

    def pod_nodes(self, app: str) -> dict[str, str]:
        return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in self.pods(app)}

    def ready_pods(self, app: str) -> dict[str, str]:
        """Ready, not terminating pods of `app`, and their nodes."""
        ready = {}
        for p in self.pods(app):
            conditions = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions") or []}
            if conditions.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
                ready[p["metadata"]["name"]] = p["spec"].get("nodeName", "")
        return ready

    def settled(self, app: str, replicas: int) -> bool:
        """Exactly `replicas` pods, all ready, none terminating."""
        pods = self.pods(app)
        return len(pods) == replicas and len(self.ready_pods(app)) == replicas


def pod_of(body: str) -> str:
    found = re.search(r"^pod: (\S+)$", body, re.MULTILINE)
    return found.group(1) if found else ""


def leftovers(subnet: str, pod_cidr: str) -> list[str]:
    """Containers, networks and host routes of the cluster still there."""
    left = []
    containers = sh("docker", "ps", "-aq", "--filter", f"label=tuik8s.cluster={CLUSTER}").stdout.split()
    if containers:
        left.append(f"containers {containers}")
    if sh("docker", "network", "inspect", f"tuik8s-{CLUSTER}", check=False).returncode == 0:
        left.append(f"network tuik8s-{CLUSTER}")
    prefix = pod_cidr.split(".0.0/")[0] + "."  # 10.(244+K).
    gateway_prefix = subnet.rsplit(".", 1)[0] + "."  # 172.30.K.
    routes = [r for r in sh("ip", "route").stdout.splitlines() if r.startswith(prefix) or gateway_prefix in r]
    if routes:
        left.append(f"routes {routes}")
    return left


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("ingacc") / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / ".kube" / "config")}
    data_dir = home / ".local" / "share" / "tuik8s" / CLUSTER
    started = time.monotonic()
    up = subprocess.run([*CLI, "up", "--cluster", CLUSTER, "--nodes", "3", "--demo", "--no-tui"],
                        capture_output=True, text=True, env=env, timeout=600)
    subnet = pod_cidr = ""
    try:
        assert up.returncode == 0, up.stderr
        assert f"cluster {CLUSTER} is up" in up.stdout
        http = re.search(r"the ingress runs at http://localhost:(\d+)", up.stderr)
        assert http, up.stderr
        ingress_port = int(http.group(1))
        assert ingress_port == int((data_dir / "ingress-ports").read_text().split()[0])
        inspect = json.loads(sh("docker", "network", "inspect", f"tuik8s-{CLUSTER}").stdout)
        subnet = inspect[0]["IPAM"]["Config"][0]["Subnet"]
        index = int(subnet.split(".")[2])
        pod_cidr = f"10.{244 + index}.0.0/16"
        c = Cluster(home, data_dir, ingress_port, subnet, pod_cidr)
        for app in ("blog", "shop", "voice"):
            c.kubectl("rollout", "status", f"deploy/{app}", "--timeout=180s", timeout=200)
        print(f"\n[ingress-acceptance] tuik8s up + demo rolled out in {time.monotonic() - started:.0f} s; "
              f"ingress on port {ingress_port}", flush=True)
        yield c
    finally:
        down = subprocess.run([*CLI, "down", "--cluster", CLUSTER, "--purge"], capture_output=True, text=True,
                              env=env, timeout=300)
        assert down.returncode == 0, down.stderr
        assert not data_dir.exists()
        if subnet:
            assert leftovers(subnet, pod_cidr) == []


# ---- the load generator -----------------------------------------------------------------


@dataclass
class Outcome:
    at: float  # time.monotonic() when the request ended
    ok: bool
    what: str  # the pod that answered, or why it failed
    latency: float
    sent: float  # time.time() when the request was sent


@dataclass
class Load:
    """`concurrency` clients requesting `url` with a Host header, each pausing `pause`
    between requests; every failure (non-2xx, socket error, timeout) is recorded."""

    url: str
    host: str
    concurrency: int = 20
    pause: float = 0.05
    timeout: float = 10.0
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self._thread.start()
        wait_for(lambda: len(self.outcomes) >= self.concurrency, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 10)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=self.concurrency)) as s:
            await asyncio.gather(*(self._client(s) for _ in range(self.concurrency)))

    async def _client(self, session: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            begun, sent = time.monotonic(), time.time()
            try:
                async with session.get(self.url, headers={"Host": self.host}) as r:
                    body = await r.text()
                    ok = 200 <= r.status < 300
                    what = pod_of(body) if ok else f"HTTP {r.status}: {' '.join(re.sub('<[^>]+>', ' ', body).split())[:160]}"
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                ok, what = False, f"{type(e).__name__}: {e}"
            now = time.monotonic()
            self.outcomes.append(Outcome(now, ok, what, now - begun, sent))
            await asyncio.sleep(self.pause)

    def since(self, start: float) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.at >= start]

    def report(self, step: str, outcomes: list[Outcome] | None = None) -> list[Outcome]:
        """Print the step's figures; return its failures."""
        outcomes = list(self.outcomes) if outcomes is None else outcomes
        failed = [o for o in outcomes if not o.ok]
        span = (outcomes[-1].at - outcomes[0].at) if outcomes else 0.0
        latencies = sorted(o.latency for o in outcomes)
        p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
        print(f"[ingress-acceptance] {step}: {len(outcomes)} requests in {span:.1f} s "
              f"({len(outcomes) / max(span, 0.001):.0f} req/s), {len(failed)} failed, "
              f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000 if latencies else 0:.0f} ms", flush=True)
        slow = sorted((o for o in outcomes if o.ok and o.latency > 1.0), key=lambda o: -o.latency)
        if slow:
            print(f"    {len(slow)} answered after more than 1 s, the slowest: "
                  + ", ".join(f"{o.latency:.1f} s at +{o.at - self.started:.1f} s from {o.what}" for o in slow[:5]),
                  flush=True)
        for o in failed[:20]:
            print(f"    failed at +{o.at - self.started:.2f} s after {o.latency * 1000:.0f} ms: {o.what}", flush=True)
        return failed


class Deletions:
    """`kubectl get pods -l app=APP -w -o json` in the background: when each pod was
    deleted (its deletionTimestamp less its deletionGracePeriodSeconds, epoch seconds)."""

    def __init__(self, cluster: Cluster, app: str) -> None:
        self.cmd = ["kubectl", "--context", CONTEXT, "get", "pods", "-l", f"app={app}", "-w", "-o", "json"]
        self.env = cluster.env()
        self.deleted: dict[str, float] = {}

    def __enter__(self) -> Deletions:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buffer += line
            while buffer.strip():
                try:
                    pod, end = decoder.raw_decode(buffer.lstrip())
                except ValueError:
                    break
                buffer = buffer.lstrip()[end:]
                meta = pod.get("metadata") or {}
                if meta.get("deletionTimestamp") and meta["name"] not in self.deleted:
                    at = datetime.fromisoformat(meta["deletionTimestamp"]).timestamp()
                    self.deleted[meta["name"]] = at - int(meta.get("deletionGracePeriodSeconds") or 0)

    def check_drained(self, load: Load, step: str) -> None:
        """No deleted pod got a request later than DRAIN_LIMIT after its deletion."""
        assert self.deleted, f"{step}: no pod was seen deleted"
        lags = {}
        for pod, at in self.deleted.items():
            sent = [o.sent for o in load.outcomes if o.ok and o.what == pod]
            lags[pod] = round(max(sent) - at, 2) if sent else None
        served = [lag for lag in lags.values() if lag is not None]
        print(f"[ingress-acceptance] {step}: {len(lags)} pods deleted; the last request each got was sent "
              f"{', '.join(f'{lag:+.1f}' for lag in sorted(served))} s from its deletion", flush=True)
        assert all(lag <= DRAIN_LIMIT for lag in served), f"deleted pods served too long after deletion: {lags}"


def failures_text(failed: list[Outcome], load: Load) -> str:
    return "; ".join(f"+{o.at - load.started:.2f}s {o.what}" for o in failed[:10])


# ---- the tests ----------------------------------------------------------------------------


def test_blog_and_shop_are_answered_by_their_pods_in_turn_across_nodes(cluster: Cluster) -> None:
    wait_for(lambda: len(cluster.ready_pods("blog")) == 3, timeout=60)
    blog = cluster.ready_pods("blog")
    seen: list[str] = []

    def all_answered() -> bool:
        code, body = cluster.curl("blog.local")
        assert code == 200, body
        seen.append(pod_of(body))
        return set(blog) <= set(seen)

    # the ingress balances round robin per worker process; a few dozen curls reach every pod
    wait_for(all_answered, timeout=60, interval=0)
    assert set(seen) == set(blog), f"answered by {set(seen)}, blog pods {blog}"
    assert len(set(seen)) > 1 and any(a != b for a, b in zip(seen, seen[1:], strict=False))
    nodes = {blog[p] for p in seen}
    assert len(nodes) >= 2, f"the blog pods all run on {nodes}: {blog}"
    print(f"[ingress-acceptance] blog.local: {len(seen)} curls answered by {len(set(seen))} pods on "
          f"{sorted(nodes)}", flush=True)

    shop = cluster.ready_pods("shop")
    shop_seen = set()
    for _ in range(12):
        code, body = cluster.curl("shop.local")
        assert code == 200 and "app: shop" in body, body
        shop_seen.add(pod_of(body))
    assert shop_seen <= set(shop) and len(shop_seen) >= 2, f"answered by {shop_seen}, shop pods {shop}"


def test_voice_is_unreachable_from_outside_and_reachable_by_name_from_a_blog_pod(cluster: Cluster) -> None:
    code, body = cluster.curl("voice.local")
    assert code == 404, body
    assert "voice.local" in body and "no ingress rule matches" in body.lower(), body
    service = json.loads(cluster.kubectl("get", "service", "voice", "-o", "json").stdout)
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert all("nodePort" not in p for p in service["spec"]["ports"])
    ingresses = cluster.kubectl("get", "ingress", "-o", "json").stdout
    assert '"voice"' not in ingresses

    blog_pod = next(iter(cluster.ready_pods("blog")))
    for url in ("http://voice/", "http://voice.default.svc.cluster.local/"):
        got = cluster.kubectl("exec", blog_pod, "-c", "blog", "--", "timeout", "10", "wget", "-qO-", url, check=False)
        assert got.returncode == 0, f"{url}: {got.stderr}"
        assert "app: voice" in got.stdout and pod_of(got.stdout) in cluster.ready_pods("voice"), got.stdout


def test_scaling_the_blog_up_and_down_under_load_fails_no_request(cluster: Cluster) -> None:
    with Deletions(cluster, "blog") as deletions, Load(f"http://127.0.0.1:{cluster.ingress_port}/", "blog.local") as load:
        cluster.kubectl("scale", "deploy/blog", "--replicas=5")
        cluster.kubectl("rollout", "status", "deploy/blog", "--timeout=120s", timeout=130)
        wait_for(lambda: cluster.settled("blog", 5), timeout=60)
        up_done = time.monotonic()
        # every new pod is served before scaling down
        wait_for(lambda: set(cluster.ready_pods("blog")) <= {o.what for o in load.since(up_done)}, timeout=30)
        cluster.kubectl("scale", "deploy/blog", "--replicas=3")
        wait_for(lambda: cluster.settled("blog", 3), timeout=60)
        time.sleep(2)  # traffic after the last pod is gone, to the remaining ones
    failed = load.report("scale blog 3 -> 5 -> 3")
    assert failed == [], failures_text(failed, load)
    deletions.check_drained(load, "scale down 5 -> 3")
    served_last = {o.what for o in load.outcomes[-40:]}
    assert served_last <= set(cluster.ready_pods("blog"))


def test_a_rollout_restart_under_load_fails_no_request(cluster: Cluster) -> None:
    before = set(cluster.ready_pods("blog"))
    with Deletions(cluster, "blog") as deletions, Load(f"http://127.0.0.1:{cluster.ingress_port}/", "blog.local") as load:
        cluster.kubectl("rollout", "restart", "deploy/blog")
        cluster.kubectl("rollout", "status", "deploy/blog", "--timeout=180s", timeout=190)
        wait_for(lambda: cluster.settled("blog", 3), timeout=60)
        time.sleep(2)
    failed = load.report("rollout restart blog")
    assert failed == [], failures_text(failed, load)
    deletions.check_drained(load, "rollout restart")
    after = set(cluster.ready_pods("blog"))
    assert not before & after
    assert {o.what for o in load.outcomes[-40:]} <= after


def test_stopping_a_node_traffic_recovers_on_the_other_nodes(cluster: Cluster) -> None:
    blog = cluster.ready_pods("blog")
    # stop a node that runs a blog pod (node2 if it does)
    victim = "node2" if "node2" in blog.values() else sorted(set(blog.values()))[0]
    with Load(f"http://127.0.0.1:{cluster.ingress_port}/", "blog.local") as load:
        stopped = time.monotonic()
        out = cluster.tuik8s("lab", "node", "stop", victim, "--cluster", CLUSTER)
        assert "stopped" in out.stdout
        down = time.monotonic()  # `docker stop` returned: the node and its pods are gone
        stop_took = down - stopped

        def recovered() -> float | None:
            """Seconds from the stop to the last failure, once CLEAN_WINDOW s of requests
            without one followed both it and the node's end."""
            outcomes = load.since(stopped)
            failed = [o for o in outcomes if not o.ok]
            since = max(failed[-1].at, down) if failed else down
            clean = [o for o in outcomes if o.at > since]
            if time.monotonic() - since >= CLEAN_WINDOW and clean:
                return failed[-1].at - stopped if failed else 0.0
            return None

        wait_for(lambda: recovered() is not None, timeout=RECOVERY_LIMIT + CLEAN_WINDOW + 5, interval=0.5)
        recovery = recovered()
        assert recovery is not None and recovery <= RECOVERY_LIMIT
        # the blog is rescheduled on the remaining nodes and serves from there
        victim_ips = {p["status"].get("podIP") for p in cluster.pods("blog") if p["spec"].get("nodeName") == victim}
        dropped: list[float] = []

        def rescheduled() -> bool:
            """The victim's pods out of the blog's Endpoints, and 3 ready pods elsewhere."""
            if not dropped:
                subsets = json.loads(cluster.kubectl("get", "endpoints", "blog", "-o", "json").stdout).get("subsets") or []
                if not victim_ips & {a["ip"] for s in subsets for a in s.get("addresses") or []}:
                    dropped.append(time.monotonic() - stopped)
            ready = cluster.ready_pods("blog")
            return bool(dropped) and len(ready) == 3 and victim not in ready.values()

        wait_for(rescheduled, timeout=90, interval=0.5)
        placed = time.monotonic()
        remaining = cluster.ready_pods("blog")
        wait_for(lambda: set(remaining) <= {o.what for o in load.since(placed)}, timeout=30)
    during = load.since(stopped)
    load.report(f"{victim} stopped (docker stop took {stop_took:.1f} s)", during)
    print(f"[ingress-acceptance] traffic recovered {recovery:.1f} s after stopping {victim}; its pods left the "
          f"blog Endpoints after {dropped[0]:.1f} s; 3 blog pods ready on {sorted(set(remaining.values()))} after "
          f"{placed - stopped:.1f} s", flush=True)
    assert victim not in remaining.values()
    nodes = cluster.pod_nodes("blog")
    # Requests sent while the node was dying may fail (one sent on a kept-alive connection to
    # a pod whose node vanishes hangs until the client gives up, as it would behind any
    # proxy); every request sent once the node was gone and traffic had recovered must not.
    assert all(o.ok for o in during if o.at - o.latency > max(down, stopped + recovery))
    gone = [o for o in during if o.at > down]
    assert all(nodes.get(o.what) != victim for o in gone), "a pod on the stopped node answered after it stopped"
    assert len({nodes.get(o.what) for o in load.since(placed)}) >= 2 or len(set(remaining.values())) == 1
