"""kube-proxy benchmark: request rate through Services vs straight to the pod, and how fast
rules follow an Endpoints change, on a 2-node lab.

    .venv/bin/python bench/proxy.py [--rounds 3] [--duration 5] [--connections 20] [--changes 20]

Needs root, a Docker engine (scripts/docker-engine) and wrk (apt-get install wrk); builds
the lab images if missing. It starts its own control plane and `tuik8s lab up --nodes 2`
as the cluster `bench-proxy`, and removes both at the end (also on Ctrl-C or SIGTERM),
with the one host route it adds.

1. **Request rate.** One pod of the web app (busybox httpd, tuik8s/blog) on node1, a
   NodePort Service in front of it; wrk asks for its static /healthz (the pages are CGI,
   a fork per request, which would measure the fork instead of the network path). `wrk -t2 -cC -dDs` from the host, in each round
   against, in turn:
   - `direct`: the pod IP (the baseline: the host's route to node1's pod CIDR);
   - `nodeport-local`: node1's IP and the NodePort (DNAT to the pod on the same node);
   - `nodeport-remote`: node2's IP and the NodePort (DNAT and masquerade on node2, then
     forwarded to node1: the extra hop a NodePort costs when the pod is elsewhere);
   - `clusterip`: the ClusterIP, through a host route of that one /32 to node2 (as a pod
     on node2 would reach it; the host is outside the cluster CIDR, so it is masqueraded).
   Figures: median req/s over rounds and p50/p99 latency; the ratio to direct is taken
   within each round (rounds drift with the machine's load), then its median.
2. **Rule-sync latency.** A Service without a selector and its Endpoints, which the bench
   writes itself: each change sets a new address. Per change: the time from sending the
   write (t0) until the API answers, until (a) a watch on Endpoints from the host sees it
   (the baseline: what any API client can do at best), and (b) the DNAT rule for the new
   address is in `iptables-save -t nat` on node1 and node2 (a poller inside each node,
   every 10 ms), and (c) the node's proxy logs the end of the sync that applied it (its
   own clock, no poller in the way). Target: all within 1 s. Changes are 0.5-0.8 s apart, beyond the
   proxy's 0.1 s rate limit, so each is its own sync.

Every time is taken on this machine's clock (the nodes share its kernel clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _harness import (
    REAPER,
    REPO,
    BenchError,
    DockerLab,
    median,
    percentile,
    sh,
    uptime_line,
    web_deployment_yaml,
)

sys.path.insert(0, str(REPO))
from tuik8s.client.client import ApiClient  # noqa: E402
from tuik8s.client.errors import ApiError  # noqa: E402
from tuik8s.nodes.docker import ImageBuilder  # noqa: E402

CLUSTER = "bench-proxy"
TARGETS = ("direct", "nodeport-local", "nodeport-remote", "clusterip")

APP = "\n" + web_deployment_yaml("web", node="node1") + """---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: lat}
spec:
  ports: [{name: p, port: 9, targetPort: 9}]
"""

# inside a node: for each "IP:PORT" line on stdin, poll iptables-save until the DNAT to it
# is there and print the time; "ready" acknowledges each request before polling starts
POLLER = r"""
import subprocess, sys, time
for line in sys.stdin:
    want = "--to-destination " + line.strip()
    print("ready", flush=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        out = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
        if want in out:
            print(time.time(), flush=True)
            break
        time.sleep(0.01)
    else:
        print("timeout", flush=True)
"""


def say(msg: str = "") -> None:
    print(msg, flush=True)


class Lab(DockerLab):
    """The cluster `bench-proxy`, and the host routes the bench adds (removed at teardown)."""

    def __init__(self, base: Path) -> None:
        super().__init__(CLUSTER, base)
        self.routes: list[str] = []

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh("kubectl", *args, input=input, env=self.env(), timeout=60)

    def get(self, *what: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", *what, "-o", "json").stdout))

    def start(self) -> None:
        self.start_server()
        self.lab("up", "--nodes", "2")

    def route(self, ip: str, via: str) -> None:
        sh("ip", "route", "replace", f"{ip}/32", "via", via)
        self.routes.append(ip)

    def teardown(self, timeout: float = 600) -> None:
        for ip in self.routes:
            sh("ip", "route", "del", f"{ip}/32", check=False)
        super().teardown(timeout)


def wait_for(fn: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:g}s waiting for {what}")
        time.sleep(0.3)


# ---- 1. request rate ----------------------------------------------------------------------------


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def wrk(url: str, duration: float, connections: int) -> dict[str, float]:
    out = sh("wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--latency", url, timeout=duration + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": _ms(p50.group(1)) if p50 else float("nan"),
        "p99": _ms(p99.group(1)) if p99 else float("nan"),
        "errors": float(sum(int(x) for x in errors.groups()) if errors else 0) + float(non2xx.group(1) if non2xx else 0),
    }


def throughput(lab: Lab, rounds: int, duration: float, connections: int) -> dict[str, list[dict[str, float]]]:
    pod = wait_for(lambda: next((p for p in lab.get("pods", "-l", "app=web")["items"]
                                 if p["status"].get("podIP") and p["status"].get("phase") == "Running"), None),
                   120, "the web pod")
    svc = lab.get("service", "web")
    node_port = svc["spec"]["ports"][0]["nodePort"]
    cluster_ip = svc["spec"]["clusterIP"]
    lab.route(cluster_ip, lab.net.node_ip(2))
    urls = {
        "direct": f"http://{pod['status']['podIP']}:8080/healthz",
        "nodeport-local": f"http://{lab.net.node_ip(1)}:{node_port}/healthz",
        "nodeport-remote": f"http://{lab.net.node_ip(2)}:{node_port}/healthz",
        "clusterip": f"http://{cluster_ip}/healthz",
    }
    for name, url in urls.items():  # every path answers before anything is timed
        wait_for(lambda url=url: sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", url,
                                    check=False).stdout == "200", 30, f"{name} ({url})")
    say(f"  pod {pod['metadata']['name']} on {pod['spec']['nodeName']}; " + ", ".join(f"{k} {v}" for k, v in urls.items()))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
    for r in range(rounds):
        order = TARGETS[r % len(TARGETS):] + TARGETS[:r % len(TARGETS)]
        for name in order:
            results[name].append(wrk(urls[name], duration, connections))
        say(f"  round {r + 1}: " + ", ".join(f"{n} {results[n][-1]['rps']:.0f}/s" for n in TARGETS))
    return results


# ---- 2. rule-sync latency ------------------------------------------------------------------------


async def sync_latency(lab: Lab, changes: int) -> dict[str, list[float]]:
    from tuik8s.client.kubeconfig import access_for
    from tuik8s.client.transport import HttpTransport

    os.environ["KUBECONFIG"] = str(lab.kubeconfig)
    client = ApiClient(HttpTransport(access_for(), timeout=30))
    pollers = {
        node: await asyncio.create_subprocess_exec(
            "docker", "exec", "-i", lab.container(node), "python3", "-c", POLLER,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        for node in ("node1", "node2")
    }
    seen: dict[str, float] = {}
    arrived: dict[str, asyncio.Event] = {}
    prefix = lab.net.pod_cidr(1).rsplit(".", 1)[0]

    async def watch(rv: str) -> None:
        async for event in client.watch("endpoints", "default", resource_version=rv,
                                        field_selector="metadata.name=lat", timeout_seconds=600):
            for subset in event.object.get("subsets") or []:
                for address in subset.get("addresses") or []:
                    seen.setdefault(address["ip"], time.time())
                    arrived.setdefault(address["ip"], asyncio.Event()).set()

    out: dict[str, list[float]] = {"answer": [], "watch": [], "node1": [], "node2": [], "log-node1": [],
                                   "log-node2": []}
    starts: list[float] = []
    try:
        try:
            current = await client.get("endpoints", "lat", "default")
        except ApiError:
            current = await client.create("endpoints", {"metadata": {"name": "lat", "namespace": "default"}},
                                          "default")
        watcher = asyncio.create_task(watch(current["metadata"]["resourceVersion"]))
        await asyncio.sleep(0.5)
        for i in range(changes):
            ip = f"{prefix}.{200 + i % 50}"
            target = f"{ip}:9"
            for p in pollers.values():
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write(f"{target}\n".encode())
                await p.stdin.drain()
                if (await p.stdout.readline()).strip() != b"ready":
                    raise BenchError("a rule poller in a node stopped")
            current["subsets"] = [{"addresses": [{"ip": ip}], "ports": [{"name": "p", "port": 9, "protocol": "TCP"}]}]
            seen.pop(ip, None)
            arrived[ip] = asyncio.Event()
            t0 = time.time()
            starts.append(t0)
            current = await client.update("endpoints", current)
            out["answer"].append(time.time() - t0)
            for node, p in pollers.items():
                assert p.stdout is not None
                line = (await asyncio.wait_for(p.stdout.readline(), 15)).decode().strip()
                if line == "timeout":
                    raise BenchError(f"the rule for {target} never appeared on {node}")
                out[node].append(float(line) - t0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived[ip].wait(), 5)
            out["watch"].append(seen.get(ip, float("nan")) - t0)
            await asyncio.sleep(random.uniform(0.5, 0.8))
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        for node in ("node1", "node2"):
            synced = proxy_sync_times(lab, node, starts[0])
            for t0 in starts:
                after = [t for t in synced if t > t0]
                out[f"log-{node}"].append(after[0] - t0 if after else float("nan"))
    finally:
        for p in pollers.values():
            if p.stdin is not None:
                p.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            await p.wait()
        await client.close()
    return out


def proxy_sync_times(lab: Lab, node: str, since: float) -> list[float]:
    """When the node's proxy finished each sync, from its own log lines (UTC, ms)."""
    from datetime import UTC, datetime

    done = sh("docker", "logs", lab.container(node), check=False)
    logs = done.stdout + done.stderr
    times = []
    for line in logs.splitlines():
        if "tuik8s.proxy.proxier: synced" not in line:
            continue
        with contextlib.suppress(ValueError):
            t = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp()
            if t >= since - 1:
                times.append(t)
    return sorted(times)


# ---- report ---------------------------------------------------------------------------------------


def report(rates: dict[str, list[dict[str, float]]], lat: dict[str, list[float]]) -> None:
    say()
    say("== request rate, wrk from the host (median over rounds) ==")
    say(f"  {'path':<16} {'req/s':>8} {'x direct':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name in TARGETS:
        rps = median([r["rps"] for r in rates[name]])
        # the ratio within each round, then the median: rounds drift with the machine's load
        ratio = median([r["rps"] / d["rps"] for r, d in zip(rates[name], rates["direct"], strict=True) if d["rps"]])
        say(f"  {name:<16} {rps:>8.0f} {ratio:>9.2f} "
            f"{median([r['p50'] for r in rates[name]]):>8.2f} {median([r['p99'] for r in rates[name]]):>8.2f} "
            f"{sum(r['errors'] for r in rates[name]):>7.0f}")
    say()
    say("== rule-sync latency: Endpoints write sent -> ... (ms) ==")
    say(f"  {'seen by':<28} {'p50':>7} {'p90':>7} {'max':>7}")
    rows = {"the API answers the write": lat["answer"], "a watch on the host (baseline)": lat["watch"],
            "node1's proxy logs its sync": lat["log-node1"], "node2's proxy logs its sync": lat["log-node2"], "DNAT rule on node1": lat["node1"],
            "DNAT rule on node2": lat["node2"]}
    for name, values in rows.items():
        ms = [v * 1000 for v in values if v == v]
        say(f"  {name:<28} {median(ms):>7.0f} {percentile(ms, 90):>7.0f} {max(ms):>7.0f}")
    worst = max(lat["node1"] + lat["node2"])
    say(f"  target: every rule within 1000 ms -> {'met' if worst < 1.0 else 'NOT met'} (worst {worst * 1000:.0f} ms)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--changes", type=int, default=20, help="Endpoints changes timed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        say("bench/proxy.py needs root (the lab adds host routes)")
        return 2
    if shutil.which("wrk") is None:
        say("wrk is missing: apt-get install -y wrk")
        return 2
    REAPER.install()
    say(f"bench/proxy.py: {uptime_line()}")
    asyncio.run(ImageBuilder(say=lambda line: say(f"  {line}")).build())
    lab = Lab(REAPER.mkdtemp("tuik8s-bench-proxy-"))
    try:
        say("starting the control plane and a 2-node lab")
        lab.start()
        lab.kubectl("apply", "-f", "-", input=APP)
        say("1. request rate")
        rates = throughput(lab, args.rounds, args.duration, args.connections)
        say("2. rule-sync latency")
        lat = asyncio.run(sync_latency(lab, args.changes))
        report(rates, lat)
    except BenchError as e:
        say(f"bench/proxy.py: {e}")
        return 1
    finally:
        lab.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
