"""Real-nodes benchmark: pod startup latency and node-failure recovery on a 3-node lab.

    .venv/bin/python bench/nodes.py [--rounds 3] [--pods 30] [--failover-rounds 3]
                                    [--only startup|failover]

Needs root and a Docker engine (scripts/docker-engine); builds the lab images if missing.
It starts its own control plane (`tuik8s server --host 0.0.0.0 --advertise GATEWAY`, lab
timings) and `tuik8s lab up --nodes 3` under the cluster name `bench-nodes`, and removes
both at the end (`lab down`, then the server), also on Ctrl-C or SIGTERM.

1. **Pod startup latency.** Each round creates N bare pods (tuik8s/blog:latest,
   IfNotPresent, the image already on every node, a readiness probe on /healthz every 1 s)
   at once from one client (10 keep-alive HTTPS connections, warmed up first). Per pod:
   the client's send time of its POST, and the receipt time of the first watch event
   showing phase Running, and then Ready=True (creationTimestamp has 1 s resolution, so it
   is not used). Baseline in the same round: `docker run -d` of the same image straight on
   the nodes' inner dockerds, N/3 per node, all at once; per container, the time from
   before its `docker run` until `docker inspect` first shows State.Running, timed inside
   the node (one `docker exec` per node runs the 10, so the outer exec is not counted).
   A pod is two containers (an infra "sandbox" and the app, sharing its network), so the
   same is also measured for pairs (`docker run` of the infra container, then of the app
   with `--network container:`): the pod-shaped floor.
   Target: p99 create -> Running <= 3 s (the Kubernetes SLO is 5 s).
2. **A node stopped.** Each round: a fresh Deployment of 9 replicas (spread 3 per node by
   the scheduler's SelectorSpread); `tuik8s lab node stop node2` (a clean stop); the time
   until 9 replicas are Running and Ready again, none on node2, with the breakdown seen
   through watches on Nodes, Leases and Pods: the victim's last heartbeat, NotReady
   detected, its pods marked not Ready, the NoExecute taint, evictions, replacements
   created, scheduled, Running, Ready. Then `lab node start node2`, until node2 is Ready
   and untainted again, and the Deployment is deleted. The baseline is the floor the
   design sets: node monitor grace + default toleration (20 s + 10 s with the lab's
   timings). Target: <= 45 s.

Figures are medians over rounds; every latency is measured on this machine's monotonic
clock (the nodes share its kernel clock, so times taken inside a node are comparable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from _harness import (
    PYTHON,
    REAPER,
    REPO,
    BenchError,
    DockerLab,
    MachineCpu,
    client_ssl,
    median,
    percentile,
    sh,
    uptime_line,
    watch_lines,
)

sys.path.insert(0, str(REPO))
from tuik8s.controllers.runner import Timings  # noqa: E402
from tuik8s.kubelet.node import LAB_LEASE_DURATION  # noqa: E402
from tuik8s.nodes.docker import ImageBuilder  # noqa: E402

CLUSTER = "bench-nodes"
NODES = 3
IMAGE = "tuik8s/blog:latest"
INFRA_IMAGE = "tuik8s/busybox:latest"  # the kubelet's sandbox image (DEFAULT_INFRA_IMAGE)
NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
NODES_PATH = "/api/v1/nodes"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
VICTIM = "node2"
REPLICAS = 9
BASELINE_LABEL = "tuik8s.bench-nodes"

TARGET_STARTUP_P99 = 3.0
SLO_STARTUP_P99 = 5.0
TARGET_FAILOVER = 45.0


def say(msg: str = "") -> None:
    print(msg, flush=True)


def progress(msg: str) -> None:
    print(f"  .. {msg}", flush=True)


# ---- the lab and the control plane -----------------------------------------------------------


class Lab(DockerLab):
    """The cluster `bench-nodes`: its data dir, server process and `tuik8s lab` commands."""

    def __init__(self, base: Path) -> None:
        super().__init__(CLUSTER, base)

    def teardown(self, timeout: float = 300) -> None:
        super().teardown(timeout)


# ---- the API client ------------------------------------------------------------------------


def parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def condition(obj: dict[str, Any], ctype: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return str(c.get("status"))
    return None


def pod_up(obj: dict[str, Any]) -> bool:
    return ((obj.get("status") or {}).get("phase") == "Running" and condition(obj, "Ready") == "True"
            and not obj["metadata"].get("deletionTimestamp"))


class Api:
    def __init__(self, url: str, token: str, ca: Path) -> None:
        self.url = url
        self.token = token
        self.ca = ca
        self.s: Any = None
        self.ws: Any = None

    async def __aenter__(self) -> Api:
        import aiohttp

        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        # creates: at most 10 connections, kept alive; watches: their own connections
        self.s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=10, ssl=client_ssl(self.ca)),
                                       headers=headers, timeout=timeout)
        self.ws = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=client_ssl(self.ca)),
                                        headers=headers, timeout=timeout)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.s.close()
        await self.ws.close()

    async def request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202),
                      params: dict[str, str] | None = None) -> dict[str, Any]:
        async with self.s.request(method, self.url + path, json=body, params=params) as r:
            data = await r.read()
            if r.status not in ok:
                raise BenchError(f"{method} {path} answered {r.status}: {data[:200]!r}")
            return json.loads(data) if data else {}

    async def warm(self, n: int = 10) -> None:
        await asyncio.gather(*(self.request("GET", "/version") for _ in range(n)))

    async def get_list(self, path: str, **params: str) -> tuple[list[dict[str, Any]], str]:
        doc = await self.request("GET", path, params=params)
        return doc.get("items") or [], str((doc.get("metadata") or {}).get("resourceVersion") or "0")

    async def watch(self, path: str, rv: str, handle: Callable[[str, dict[str, Any], float], None],
                    started: asyncio.Event, errors: list[str], **params: str) -> None:
        """Watch from `rv`, calling handle(type, object, receipt time) per event; reconnects
        from the last resourceVersion seen if the server ends the watch."""
        while True:
            q = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1800", **params}
            async with self.ws.get(self.url + path, params=q) as r:
                if r.status != 200:
                    errors.append(f"watch {path} answered {r.status}: {(await r.read())[:200]!r}")
                    started.set()
                    return
                started.set()
                async for now, line in watch_lines(r, time.monotonic):
                    ev = json.loads(line)
                    if ev.get("type") == "ERROR":
                        errors.append(f"watch {path}: {line[:200]!r}")
                        return
                    obj = ev.get("object") or {}
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    handle(str(ev.get("type")), obj, now)
            errors.append(f"watch {path} ended by the server; resumed from {rv}")


async def start_watch(api: Api, path: str, rv: str, handle: Callable[[str, dict[str, Any], float], None],
                      errors: list[str], **params: str) -> asyncio.Task[None]:
    started = asyncio.Event()
    task = asyncio.create_task(api.watch(path, rv, handle, started, errors, **params))
    await asyncio.wait_for(started.wait(), 30)
    return task


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def wait_until(pred: Callable[[], Any], within: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + within
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def poll_until(fn: Callable[[], Any], within: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + within
    while True:
        v = await fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


def pod_spec() -> dict[str, Any]:
    return {
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "blog",
            "image": IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        }],
    }


async def delete_and_wait(api: Api, names: list[str], selector: str, within: float = 180) -> float:
    t0 = time.monotonic()
    await asyncio.gather(*(api.request("DELETE", f"{PODS}/{n}", ok=(200, 202, 404)) for n in names))

    async def gone() -> bool:
        items, _ = await api.get_list(PODS, labelSelector=selector)
        return not items

    await poll_until(gone, within, f"the pods of {selector} to be deleted")
    return time.monotonic() - t0


# ---- 1. pod startup ---------------------------------------------------------------------------


# Run inside a node: N `docker run -d` at once; per container "RUN t_send t_returned t_running
# startedAt" (times from `date +%s.%N`: the host's clock, the nodes share its kernel).
# With PAIR=1, each is a pod-shaped pair: the infra container, then the app in its network.
FLOOR_SCRIPT = r"""
n=$1; img=$2; infra=$3; tag=$4; pair=$5
for i in $(seq 1 "$n"); do
  (
    t0=$(date +%s.%N)
    if [ "$pair" = 1 ]; then
      sb=$(docker run -d --label "$tag" --ipc shareable "$infra" sleep infinity 2>"/tmp/floor.$i") \
        || { echo "FAIL $(cat "/tmp/floor.$i")"; exit 0; }
      id=$(docker run -d --label "$tag" --network "container:$sb" --ipc "container:$sb" "$img" 2>"/tmp/floor.$i") \
        || { echo "FAIL $(cat "/tmp/floor.$i")"; exit 0; }
    else
      id=$(docker run -d --label "$tag" "$img" 2>"/tmp/floor.$i") || { echo "FAIL $(cat "/tmp/floor.$i")"; exit 0; }
    fi
    t1=$(date +%s.%N)
    k=0
    while :; do
      st=$(docker inspect -f '{{.State.Running}} {{.State.StartedAt}}' "$id" 2>/dev/null)
      case "$st" in true*) break;; esac
      k=$((k+1)); [ $k -gt 600 ] && { echo "FAIL not running: $st"; exit 0; }
      sleep 0.05
    done
    t2=$(date +%s.%N)
    echo "RUN $t0 $t1 $t2 ${st#true }"
  ) &
done
wait
"""

CLEAN_SCRIPT = r"""
ids=$(docker ps -aq --filter "label=$1")
[ -z "$ids" ] || docker rm -f $ids >/dev/null
"""


@dataclass
class Lat:
    """Latencies in seconds, and their percentiles."""

    values: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        return percentile(self.values, q)

    def row(self) -> str:
        return f"p50 {self.p(50):5.2f}  p90 {self.p(90):5.2f}  p99 {self.p(99):5.2f}  max {max(self.values, default=float('nan')):5.2f} s"


async def runtime_floor(lab: Lab, per_node: int, pair: bool) -> tuple[Lat, Lat, list[str]]:
    """(client-observed Running via inspect, dockerd's StartedAt), both from before `docker run`."""
    tag = BASELINE_LABEL

    async def one(node: str) -> list[str]:
        proc = await asyncio.create_subprocess_exec(
            "docker", "exec", lab.container(node), "sh", "-c", FLOOR_SCRIPT, "floor", str(per_node), IMAGE, INFRA_IMAGE,
            tag, "1" if pair else "0", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            return [f"FAIL {node}: {err.decode().strip()[-200:]}"]
        return out.decode().splitlines()

    outs = await asyncio.gather(*(one(f"node{i}") for i in range(1, NODES + 1)))
    seen, started, fails = Lat(), Lat(), []
    for line in (x for out in outs for x in out):
        parts = line.split()
        if parts[:1] == ["RUN"] and len(parts) >= 4:
            t0, t2 = float(parts[1]), float(parts[3])
            seen.values.append(t2 - t0)
            at = parse_time(parts[4]) if len(parts) > 4 else None
            if at is not None:
                started.values.append(at - t0)
        elif line.strip():
            fails.append(line.strip()[:200])
    # remove them, and wait: the next measurement must not share the engines with the removals
    await asyncio.gather(*(asyncio.to_thread(sh, "docker", "exec", lab.container(f"node{i}"), "sh", "-c", CLEAN_SCRIPT,
                                             "clean", tag, check=False) for i in range(1, NODES + 1)))
    return seen, started, fails


@dataclass
class StartupRound:
    sent: dict[str, float] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    scheduled: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    node: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def lat(self, marks: dict[str, float]) -> Lat:
        return Lat([marks[n] - self.sent[n] for n in marks if n in self.sent])


async def startup_round(api: Api, r: int, n: int) -> StartupRound:
    label = f"startup-r{r}"
    selector = f"bench={label}"
    names = [f"{label}-{i:02d}" for i in range(n)]
    res = StartupRound()
    want = set(names)

    def on_event(etype: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        if name not in want or etype == "DELETED":
            return
        st = obj.get("status") or {}
        node = (obj.get("spec") or {}).get("nodeName")
        if node and name not in res.scheduled:
            res.scheduled[name] = now
            res.node[name] = node
        if st.get("phase") == "Running" and name not in res.running:
            res.running[name] = now
        if st.get("phase") == "Running" and condition(obj, "Ready") == "True" and name not in res.ready:
            res.ready[name] = now
        if st.get("phase") in ("Failed", "Succeeded") and len(res.errors) < 5:
            res.errors.append(f"{name}: phase {st.get('phase')}")

    _, rv = await api.get_list(PODS, labelSelector=selector)
    await api.warm()
    watch = await start_watch(api, PODS, rv, on_event, res.errors, labelSelector=selector)
    try:
        async def create(name: str) -> None:
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": label}},
                    "spec": pod_spec()}
            res.sent[name] = time.monotonic()
            await api.request("POST", PODS, body, ok=(201,))
            res.created[name] = time.monotonic()

        await asyncio.gather(*(create(x) for x in names))
        await wait_until(lambda: len(res.ready) == n, 180, f"{n} pods Running and Ready")
    finally:
        await stop_task(watch)
    took = await delete_and_wait(api, names, selector)
    progress(f"round {r}: {n} pods deleted in {took:.1f} s")
    return res


async def startup(lab: Lab, rounds: int, n: int) -> dict[str, Any]:
    say(f"\n== 1. Pod startup latency: {n} pods on {NODES} nodes, image present, {rounds} rounds ==")
    per_node = max(1, round(n / NODES))
    rows: list[dict[str, Any]] = []
    async with Api(lab.url, lab.token, lab.ca) as api:
        for r in range(1, rounds + 1):
            row: dict[str, Any] = {}
            # alternate which goes first, so drift on a shared machine hits both
            order = ("floor", "pair", "pods") if r % 2 else ("pods", "pair", "floor")
            for what in order:
                cpu = MachineCpu()
                if what == "pods":
                    res = await startup_round(api, r, n)
                    row.update(running=res.lat(res.running), ready=res.lat(res.ready), created=res.lat(res.created),
                               scheduled=res.lat(res.scheduled), nodes=Counter(res.node.values()), errors=res.errors,
                               pods_busy=cpu.busy())
                else:
                    seen, started, fails = await runtime_floor(lab, per_node, pair=(what == "pair"))
                    row[what] = seen
                    row[what + "_started"] = started
                    row[what + "_fails"] = fails
                    row[what + "_busy"] = cpu.busy()
                await asyncio.sleep(1.0)
            rows.append(row)
            say(f"round {r}:")
            say(f"  pods   create->201      {row['created'].row()}")
            say(f"  pods   create->bound    {row['scheduled'].row()}")
            say(f"  pods   create->Running  {row['running'].row()}   (machine busy {row['pods_busy'] * 100:.0f}%)")
            say(f"  pods   create->Ready    {row['ready'].row()}")
            say(f"         per node: {', '.join(f'{k} {v}' for k, v in sorted(row['nodes'].items()))}"
                + (f"; errors: {row['errors']}" if row["errors"] else ""))
            for what, text in (("floor", "docker run -> running"), ("pair", "pod-shaped pair")):
                x = row[what]
                say(f"  floor  {text:<17} {x.row()}   ({len(x.values)} containers, StartedAt p99 "
                    f"{row[what + '_started'].p(99):.2f} s, machine busy {row[what + '_busy'] * 100:.0f}%)"
                    + (f"; FAILED: {row[what + '_fails'][:3]}" if row[what + "_fails"] else ""))
    return {"rows": rows, "n": n, "per_node": per_node}


# ---- 2. a node stopped ------------------------------------------------------------------------


@dataclass
class FailoverRound:
    t0: float = 0.0
    wall0: float = 0.0
    stop_returned: float = float("nan")
    stop_exit: str = "?"  # the node container's exit code: 0/143 a clean stop, 137 killed at docker stop's timeout
    last_heartbeat: float = float("nan")  # the victim Lease's renewTime, relative to t0 (its clock = ours)
    heartbeats_after_t0: int = 0
    not_ready: float = float("nan")
    not_ready_status: str = ""
    pods_not_ready: float = float("nan")
    tainted: float = float("nan")
    taint_key: str = ""
    evicted_first: float = float("nan")
    evicted_last: float = float("nan")
    created_first: float = float("nan")
    created_last: float = float("nan")
    scheduled_last: float = float("nan")
    running_last: float = float("nan")
    done: float = float("nan")
    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    stuck_terminating: int = 0
    restore: float = float("nan")
    stuck_gone: float = float("nan")
    errors: list[str] = field(default_factory=list)


async def node_state(api: Api, name: str) -> tuple[str | None, list[str]]:
    node = await api.request("GET", f"{NODES_PATH}/{name}", ok=(200, 404))
    if not node or node.get("kind") != "Node":
        return None, []
    return condition(node, "Ready"), [t.get("key", "") for t in (node.get("spec") or {}).get("taints") or []]


async def failover_round(api: Api, lab: Lab, r: int) -> FailoverRound:
    name = f"failover-r{r}"
    selector = f"app={name}"
    res = FailoverRound()
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec()}},
    }
    await api.request("POST", DEPLOYMENTS, deployment, ok=(201,))

    async def all_up() -> list[dict[str, Any]] | None:
        items, _ = await api.get_list(PODS, labelSelector=selector)
        up = [p for p in items if pod_up(p)]
        return up if len(up) == REPLICAS and len(items) == REPLICAS else None

    t_dep = time.monotonic()
    up = await poll_until(all_up, 180, f"{REPLICAS} replicas of {name} Running and Ready")
    res.before = Counter(p["spec"]["nodeName"] for p in up)
    progress(f"round {r}: {REPLICAS} replicas Running+Ready in {time.monotonic() - t_dep:.1f} s, "
             f"per node {dict(sorted(res.before.items()))}")
    if not res.before.get(VICTIM):
        raise BenchError(f"no replica of {name} landed on {VICTIM}: {dict(res.before)}")
    original = {p["metadata"]["name"] for p in up}
    on_victim = {p["metadata"]["name"] for p in up if p["spec"]["nodeName"] == VICTIM}
    pods: dict[str, dict[str, Any]] = {p["metadata"]["name"]: p for p in up}
    new_created: dict[str, float] = {}
    new_scheduled: dict[str, float] = {}
    new_running: dict[str, float] = {}
    evicted: dict[str, float] = {}
    lease = await api.request("GET", f"{LEASES}/{VICTIM}", ok=(200, 404))
    renew0 = parse_time((lease.get("spec") or {}).get("renewTime"))

    def rel(now: float) -> float:
        return now - res.t0

    def on_pod(etype: str, obj: dict[str, Any], now: float) -> None:
        pname = obj["metadata"]["name"]
        if etype == "DELETED":
            pods.pop(pname, None)
            return
        pods[pname] = obj
        node = (obj.get("spec") or {}).get("nodeName")
        if pname in on_victim:
            if obj["metadata"].get("deletionTimestamp") and pname not in evicted:
                evicted[pname] = now
            if condition(obj, "Ready") != "True" and math.isnan(res.pods_not_ready):
                res.pods_not_ready = rel(now)
        elif pname not in original:
            new_created.setdefault(pname, now)
            if node:
                new_scheduled.setdefault(pname, now)
            if pod_up(obj):
                new_running.setdefault(pname, now)
        if res.t0 and math.isnan(res.done):
            up_elsewhere = [p for p in pods.values() if pod_up(p) and p["spec"].get("nodeName") != VICTIM]
            if len(up_elsewhere) >= REPLICAS:
                res.done = rel(now)

    def on_node(etype: str, obj: dict[str, Any], now: float) -> None:
        if obj["metadata"]["name"] != VICTIM or etype == "DELETED" or not res.t0:
            return
        ready = condition(obj, "Ready")
        if ready != "True" and math.isnan(res.not_ready):
            res.not_ready, res.not_ready_status = rel(now), str(ready)
        for t in (obj.get("spec") or {}).get("taints") or []:
            if t.get("effect") == "NoExecute" and math.isnan(res.tainted):
                res.tainted, res.taint_key = rel(now), str(t.get("key"))

    renewals: list[float] = []

    def on_lease(etype: str, obj: dict[str, Any], now: float) -> None:
        if obj["metadata"]["name"] == VICTIM:
            at = parse_time((obj.get("spec") or {}).get("renewTime"))
            if at is not None:
                renewals.append(at)

    errors: list[str] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        _, prv = await api.get_list(PODS, labelSelector=selector)
        _, nrv = await api.get_list(NODES_PATH)
        _, lrv = await api.get_list(LEASES)
        tasks.append(await start_watch(api, PODS, prv, on_pod, errors, labelSelector=selector))
        tasks.append(await start_watch(api, NODES_PATH, nrv, on_node, errors))
        tasks.append(await start_watch(api, LEASES, lrv, on_lease, errors))
        await asyncio.sleep(0.5)
        res.t0, res.wall0 = time.monotonic(), time.time()
        stop = await asyncio.to_thread(lab.lab, "node", "stop", VICTIM, check=False)
        res.stop_returned = rel(time.monotonic())
        if stop.returncode != 0:
            raise BenchError(f"lab node stop {VICTIM} failed: {stop.stderr.strip().splitlines()[-1:]}")
        inspect = await asyncio.to_thread(sh, "docker", "inspect", "-f", "{{.State.ExitCode}}", lab.container(VICTIM),
                                          check=False)
        res.stop_exit = inspect.stdout.strip() or "?"
        progress(f"round {r}: `lab node stop {VICTIM}` returned after {res.stop_returned:.1f} s (node container exit "
                 f"code {res.stop_exit}); waiting for the replicas")
        await wait_until(lambda: not math.isnan(res.done), 180, f"{REPLICAS} replicas Running+Ready off {VICTIM}", 0.1)
    finally:
        for t in tasks:
            await stop_task(t)
        res.errors = errors
    last = max([x for x in [renew0, *renewals] if x is not None], default=None)
    if last is not None:
        res.last_heartbeat = last - res.wall0
        res.heartbeats_after_t0 = sum(1 for x in renewals if x > res.wall0)
    if evicted:
        res.evicted_first, res.evicted_last = rel(min(evicted.values())), rel(max(evicted.values()))
    if new_created:
        res.created_first, res.created_last = rel(min(new_created.values())), rel(max(new_created.values()))
    if new_scheduled:
        res.scheduled_last = rel(max(new_scheduled.values()))
    if new_running:
        res.running_last = rel(max(new_running.values()))
    items, _ = await api.get_list(PODS, labelSelector=selector)
    res.after = Counter(p["spec"].get("nodeName") for p in items if pod_up(p))
    res.stuck_terminating = sum(1 for p in items if p["metadata"].get("deletionTimestamp"))

    # restore the node, wait until it is Ready and untainted and its old pods are gone
    t1 = time.monotonic()
    start = await asyncio.to_thread(lab.lab, "node", "start", VICTIM, check=False)
    if start.returncode != 0:
        raise BenchError(f"lab node start {VICTIM} failed: {start.stderr.strip().splitlines()[-1:]}")

    async def restored() -> bool:
        ready, taints = await node_state(api, VICTIM)
        return ready == "True" and not [k for k in taints if k.startswith("node.kubernetes.io/")]

    await poll_until(restored, 180, f"{VICTIM} Ready and untainted again")
    res.restore = time.monotonic() - t1

    async def no_stuck() -> bool:
        items, _ = await api.get_list(PODS, labelSelector=selector)
        return not any(p["metadata"].get("deletionTimestamp") for p in items)

    try:
        await poll_until(no_stuck, 120, f"the evicted pods of {VICTIM} to be gone")
        res.stuck_gone = time.monotonic() - t1
    except BenchError as e:
        res.errors.append(str(e))
    await api.request("DELETE", f"{DEPLOYMENTS}/{name}", params={"propagationPolicy": "Background"})

    async def deleted() -> bool:
        items, _ = await api.get_list(PODS, labelSelector=selector)
        return not items

    await poll_until(deleted, 180, f"the pods of {name} to be deleted")
    return res


def fmt(x: float) -> str:
    return "    -" if x != x else f"{x:5.1f}"


async def failover(lab: Lab, rounds: int) -> dict[str, Any]:
    t = Timings()
    say(f"\n== 2. A node stopped -> its pods Running elsewhere: Deployment of {REPLICAS}, "
        f"`lab node stop {VICTIM}`, {rounds} rounds ==")
    say(f"   lab timings: node monitor grace {t.node_monitor_grace:.0f} s, default toleration "
        f"{t.default_toleration_seconds} s, node monitor period {t.node_monitor_period:.0f} s, "
        f"kubelet lease {LAB_LEASE_DURATION} s (renewed every {LAB_LEASE_DURATION / 4:.0f} s)")
    rows: list[FailoverRound] = []
    async with Api(lab.url, lab.token, lab.ca) as api:
        for r in range(1, rounds + 1):
            cpu = MachineCpu()
            res = await failover_round(api, lab, r)
            rows.append(res)
            say(f"round {r}: all {REPLICAS} Running+Ready off {VICTIM} at {res.done:.1f} s after `lab node stop` "
                f"(machine busy {cpu.busy() * 100:.0f}%)")
            say(f"  before {dict(sorted(res.before.items()))}; after {dict(sorted(res.after.items()))}; "
                f"{res.stuck_terminating} evicted pod(s) left Terminating on {VICTIM} while it was down")
            say(f"  t (s): stop returned {fmt(res.stop_returned)} (exit {res.stop_exit}) | last heartbeat {fmt(res.last_heartbeat)} "
                f"({res.heartbeats_after_t0} after the stop began) | NotReady ({res.not_ready_status}) {fmt(res.not_ready)} | "
                f"pods not Ready {fmt(res.pods_not_ready)} | NoExecute taint {fmt(res.tainted)} ({res.taint_key})")
            say(f"         evicted {fmt(res.evicted_first)}..{fmt(res.evicted_last).strip()} | replacements created "
                f"{fmt(res.created_first)}..{fmt(res.created_last).strip()} | bound {fmt(res.scheduled_last)} | "
                f"Running+Ready {fmt(res.running_last)} | done {fmt(res.done)}")
            say(f"  restore: `lab node start` until {VICTIM} Ready and untainted {res.restore:.1f} s; "
                f"its evicted pods gone after {fmt(res.stuck_gone).strip()} s"
                + (f"; notes: {res.errors}" if res.errors else ""))
    return {"rows": rows, "timings": t}


# ---- report -------------------------------------------------------------------------------------


def report(st: dict[str, Any] | None, fo: dict[str, Any] | None) -> None:
    def ratio(x: float, y: float) -> str:
        return "-" if not y or x != x or y != y else f"{x / y:.1f}x"

    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    say("\n== Summary (medians over rounds) ==")
    say(f"  {'figure':<46} {'value':>8} {'baseline':>9} {'ratio':>7} {'target':>9} {'met':>4}")
    if st and st["rows"]:
        rows = st["rows"]
        for q in (50, 90, 99):
            run = median([x["running"].p(q) for x in rows])
            rdy = median([x["ready"].p(q) for x in rows])
            flo = median([x["floor"].p(q) for x in rows])
            pair = median([x["pair"].p(q) for x in rows])
            tgt = f"<= {TARGET_STARTUP_P99:.0f} s" if q == 99 else "-"
            ok = met(run <= TARGET_STARTUP_P99) if q == 99 else "-"
            label = f"pod create->Running p{q} ({st['n']} pods)"
            say(f"  {label:<46} {run:7.2f}s {flo:8.2f}s {ratio(run, flo):>7} {tgt:>9} {ok:>4}")
            say(f"  {f'pod create->Ready p{q}':<46} {rdy:7.2f}s {flo:8.2f}s {ratio(rdy, flo):>7} {'-':>9} {'-':>4}")
            say(f"  {f'  vs the pod-shaped pair floor p{q}':<46} {run:7.2f}s {pair:8.2f}s {ratio(run, pair):>7}")
        mx = median([max(x["running"].values) for x in rows])
        say(f"  {'pod create->Running max':<46} {mx:7.2f}s {median([max(x['floor'].values) for x in rows]):8.2f}s")
        p99 = median([x["running"].p(99) for x in rows])
        say(f"  baseline = `docker run -d {IMAGE}` on the nodes' dockerds, {st['per_node']} per node at once, until "
            f"`docker inspect` shows Running; the Kubernetes SLO (p99 <= {SLO_STARTUP_P99:.0f} s): {met(p99 <= SLO_STARTUP_P99)}")
    if fo and fo["rows"]:
        rows, t = fo["rows"], fo["timings"]
        floor = t.node_monitor_grace + t.default_toleration_seconds
        done = median([x.done for x in rows])
        say(f"  {f'node stopped -> {REPLICAS} replicas Running+Ready elsewhere':<46} {done:7.1f}s {floor:8.1f}s "
            f"{ratio(done, floor):>7} {f'<= {TARGET_FAILOVER:.0f} s':>9} {met(done <= TARGET_FAILOVER):>4}")
        for label, attr in (("  NotReady detected", "not_ready"), ("  NoExecute taint", "tainted"),
                            ("  first eviction", "evicted_first"), ("  replacements created (last)", "created_last"),
                            ("  replacements Running+Ready (last)", "running_last")):
            say(f"  {label:<46} {median([getattr(x, attr) for x in rows]):7.1f}s")
        say(f"  baseline = the floor the design sets: node monitor grace {t.node_monitor_grace:.0f} s + default "
            f"toleration {t.default_toleration_seconds} s (from the victim's last heartbeat, which comes up to "
            f"{LAB_LEASE_DURATION / 4:.0f} s before the stop; detection adds up to one monitor period, "
            f"{t.node_monitor_period:.0f} s). Upstream's defaults would make it 40 s + 300 s.")


# ---- main -----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="pod startup rounds (default 3)")
    ap.add_argument("--pods", type=int, default=30, help="pods per startup round (default 30)")
    ap.add_argument("--failover-rounds", type=int, default=3, help="node-stop rounds (default 3)")
    ap.add_argument("--only", action="append", choices=["startup", "failover"], help="run only this part (repeatable)")
    args = ap.parse_args()
    only = set(args.only or ["startup", "failover"])
    if os.geteuid() != 0:
        print("bench/nodes.py: needs root (the lab sets host routes)", file=sys.stderr)
        return 1
    if sh("docker", "info", check=False, timeout=60).returncode != 0:
        print("bench/nodes.py: no Docker engine answers: start one with scripts/docker-engine", file=sys.stderr)
        return 1
    if sh(PYTHON, "-m", "tuik8s.cli", "kubelet", "--help", check=False).returncode != 0:
        print("bench/nodes.py: `tuik8s kubelet` does not run here; the nodes could not run pods", file=sys.stderr)
        return 1
    REAPER.install()
    say(f"bench/nodes.py  {time.strftime('%Y-%m-%d %H:%M:%S')}  cluster {CLUSTER}, {NODES} nodes")
    say(f"load before: {uptime_line()}")
    asyncio.run(ImageBuilder(say=lambda line: progress(line)).build())

    base = REAPER.mkdtemp("tuik8s-bench-nodes-")
    lab = Lab(base)
    st = fo = None
    rc = 0
    try:
        took = lab.start_server()
        progress(f"server ready in {took:.1f} s at {lab.url} (lab gateway {lab.gateway})")
        t0 = time.monotonic()
        lab.lab("up", "--nodes", str(NODES), timeout=900)
        progress(f"lab up --nodes {NODES}: every Node Ready in {time.monotonic() - t0:.1f} s")
        try:
            if "startup" in only:
                st = asyncio.run(startup(lab, args.rounds, args.pods))
            if "failover" in only:
                fo = asyncio.run(failover(lab, args.failover_rounds))
        except BenchError as e:
            say(f"\nbench/nodes.py: {e}")
            for line in lab.server_log_tail():
                say(f"  server: {line}")
            rc = 1
        report(st, fo)
    except KeyboardInterrupt:
        say("\ninterrupted: cleaning up")
        rc = 130
    except BenchError as e:
        say(f"\nbench/nodes.py: {e}")
        rc = 1
    finally:
        t0 = time.monotonic()
        lab.teardown()
        say(f"\ncleanup: lab down and server stopped in {time.monotonic() - t0:.1f} s")
        say(f"load after: {uptime_line()}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
