"""Control-plane scale benchmark: 10,000 pods of Deployments on 1,000 hollow nodes.

    .venv/bin/python bench/scale.py [--quick] [--rounds 3] [--nodes 1000] [--deployments 50]
                                    [--replicas 200] [--profile DIR] [--no-baseline]

The issue's target, KWOK's CI bar: 10,000 pods Running within 60 s of creating their
Deployments, and all gone within 60 s of deleting them; server memory at the peak.

Each round starts a fresh `tuik8s server` (temp data dir) and `tuik8s hollow --nodes N
--no-events` in a process of its own, and waits until all N Nodes are Ready. Then:

- **deployments** (the figure; full control plane: scheduler and controllers): a separate
  process creates the Deployments (50 x 200 replicas; a small pod template with requests)
  as fast as the API takes them. Timed from the first create until every pod is Running
  with Ready=True (this process watches the pods). Then the same process deletes the
  Deployments (`propagationPolicy=Background`, as kubectl does), timed from the first
  DELETE until no pod of the namespace is left: the garbage collector deletes the
  ReplicaSets, then their pods, and the hollow kubelets finish the pods off.
- **bare pods** (the baseline, the API + hollow floor; `--no-controllers --no-scheduler`):
  the same number of pods created directly with `spec.nodeName` already set (round-robin
  over the nodes), no controller and no scheduler work, until Running; then deleted one
  DELETE per pod (default grace, as `kubectl delete pod`), until none is left.

Per round: the progress curve (pods created / bound / Running+Ready, and pods left while
deleting), the server's and the hollow process's CPU per phase, the whole machine's busy
share, the server's VmRSS sampled every 0.5 s and its VmHWM at the peak (all pods
Running), and the lowest count of Ready Nodes seen (a node that missed its Lease under
load would show here, and its pods would be evicted). The summary gives medians over
rounds, the ratio figure / baseline, and whether the target is met.

`--profile DIR` runs one more deployments round with py-spy attached to the server and to
the hollow process, one profile per phase, and prints the functions with the most own and
inclusive samples; the raw stacks stay in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from _harness import (
    PYTHON,
    REAPER,
    REPO,
    MachineCpu,
    PySpy,
    ServerStartError,
    TuikServer,
    aggregate_profile,
    api_session,
    find_py_spy,
    median,
    proc_cpu_seconds,
    proc_memory_kb,
    profile_lines,
    role_parser,
    run_bench,
    run_worker,
    spawn_role,
    uptime_line,
    wait_role,
    watch_lines,
)

NS = "scale"
TARGET_S = 60.0
CURVE_EVERY = 5.0  # seconds between printed points of the progress curve


def say(msg: str = "") -> None:
    print(msg, flush=True)


# =====================================================================================
# objects
# =====================================================================================

CONTAINER = {
    "name": "app", "image": "registry.local/app:1.0",
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
}


def deployment_body(i: int, replicas: int) -> dict[str, Any]:
    labels = {"app": f"scale-{i:03d}"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"scale-{i:03d}", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [CONTAINER]}},
        },
    }


def pod_body(i: int, nodes: int, prefix: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"bare-{i:05d}", "namespace": NS, "labels": {"app": "bare"}},
        "spec": {"nodeName": f"{prefix}{i % nodes}", "containers": [CONTAINER]},
    }


BACKGROUND = orjson.dumps({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})


# =====================================================================================
# the load process: creates or deletes as fast as the API answers
# =====================================================================================


async def role_load(a: argparse.Namespace) -> dict[str, Any]:
    codes: Counter[int] = Counter()
    headers = {"Content-Type": "application/json"}
    if a.kind == "deployments":
        base = f"{a.url}/apis/apps/v1/namespaces/{NS}/deployments"
        count = a.deployments
    else:
        base = f"{a.url}/api/v1/namespaces/{NS}/pods"
        count = a.pods
    work = iter(range(count))
    first: list[float] = []

    async with api_session(a.token, a.ca, a.conc) as s:

        async def one(i: int) -> None:
            if a.action == "create":
                if a.kind == "deployments":
                    body = orjson.dumps(deployment_body(i, a.replicas))
                else:
                    body = orjson.dumps(pod_body(i, a.nodes, a.prefix))
                req = s.post(base, data=body, headers=headers)
            elif a.kind == "deployments":
                req = s.delete(f"{base}/scale-{i:03d}", data=BACKGROUND, headers=headers)
            else:
                req = s.delete(f"{base}/bare-{i:05d}")
            if not first:
                first.append(time.time())
            async with req as r:
                await r.read()
                codes[r.status] += 1

        async def worker() -> None:
            for i in work:
                await one(i)

        await asyncio.gather(*(worker() for _ in range(min(a.conc, count))))
        t1 = time.time()
    return {"t_start": first[0] if first else t1, "t_end": t1, "codes": dict(codes)}


def run_role(argv: list[str]) -> int:
    ap = role_parser("scale.py --role load", ["load"])
    ap.add_argument("--action", required=True, choices=["create", "delete"])
    ap.add_argument("--kind", required=True, choices=["deployments", "pods"])
    ap.add_argument("--deployments", type=int, default=50)
    ap.add_argument("--replicas", type=int, default=200)
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--prefix", default="hollow-")
    ap.add_argument("--conc", type=int, default=32)
    return run_worker(role_load, ap.parse_args(argv))


# =====================================================================================
# watching: pods by state, Ready nodes
# =====================================================================================


def _ready(obj: dict[str, Any]) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


class PodCounts:
    """Every pod of the namespace seen over one watch: created, bound, Running+Ready, left."""

    def __init__(self) -> None:
        self.live: dict[str, str] = {}  # uid -> name
        self.created = 0
        self.bound: set[str] = set()
        self.running: set[str] = set()  # Running and Ready, now
        self.running_ever: set[str] = set()
        self.terminating: set[str] = set()
        self.changed = asyncio.Event()

    def apply(self, etype: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if etype == "DELETED":
            self.live.pop(uid, None)
            self.running.discard(uid)
            self.terminating.discard(uid)
        else:
            if uid not in self.live:
                self.created += 1
                self.live[uid] = str(meta.get("name"))
            if (obj.get("spec") or {}).get("nodeName"):
                self.bound.add(uid)
            if meta.get("deletionTimestamp"):
                self.terminating.add(uid)
            if (obj.get("status") or {}).get("phase") == "Running" and _ready(obj):
                self.running.add(uid)
                self.running_ever.add(uid)
            else:
                self.running.discard(uid)
        self.changed.set()

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.created, len(self.bound), len(self.running), len(self.live)


async def watch_forever(s: Any, url: str, path: str, apply: Any, ready: asyncio.Event) -> None:
    """List, then watch from the list's resourceVersion; resume if the server ends it."""
    async with s.get(url + path) as r:
        body = orjson.loads(await r.read())
    for item in body.get("items") or []:
        apply("ADDED", item)
    rv = body["metadata"]["resourceVersion"]
    ready.set()
    while True:
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "3600"}
        async with s.get(url + path, params=params) as r:
            async for _, line in watch_lines(r):
                ev = orjson.loads(line)
                if ev["type"] == "ERROR":
                    raise RuntimeError(f"watch {path}: {ev['object'].get('message')}")
                rv = ev["object"]["metadata"].get("resourceVersion") or rv
                if ev["type"] != "BOOKMARK":
                    apply(ev["type"], ev["object"])


class NodeCounts:
    def __init__(self) -> None:
        self.ready: set[str] = set()
        self.min_ready_armed = False
        self.min_ready = 0
        self.changed = asyncio.Event()

    def apply(self, etype: str, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        if etype != "DELETED" and _ready(obj):
            self.ready.add(name)
        else:
            self.ready.discard(name)
        if self.min_ready_armed:
            self.min_ready = min(self.min_ready, len(self.ready))
        self.changed.set()


# =====================================================================================
# py-spy
# =====================================================================================


class Profiler:
    """py-spy on one process for one phase; `stop()` returns own and inclusive top functions."""

    def __init__(self, pid: int, out: Path) -> None:
        spy = find_py_spy()
        if spy is None:
            raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
        self.spy = PySpy(spy, pid, out, 100)

    def stop(self) -> dict[str, Any]:
        return aggregate_profile(self.spy.stop(60), _frame)


def _frame(f: str) -> str:
    """`name (file)`, the file relative to the repo, site-packages or the stdlib."""
    name, _, where = f.partition(" (")
    file = where.split(":")[0].replace(str(REPO) + "/", "")
    if "/site-packages/" in file:
        file = file.split("/site-packages/")[1]
    elif "/lib/python3" in file:
        file = "stdlib/" + file.split("/lib/python3")[1].split("/", 1)[-1]
    return f"{name} ({file})"


def print_profile(title: str, prof: dict[str, Any]) -> None:
    total = prof.get("total") or 0
    if not total:
        say(f"{title}: no samples")
        return
    say(f"{title} ({total} samples at 100 Hz); most own time:")
    for line in profile_lines(prof, "own"):
        say(line)
    say("  most inclusive time:")
    for line in profile_lines(prof, "inclusive"):
        say(line)


# =====================================================================================
# one round
# =====================================================================================


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = REAPER.mkdtemp("tuik8s-scale-bench-")
        self.problems: list[str] = []

    @property
    def pods(self) -> int:
        return self.args.deployments * self.args.replicas

    def spawn_load(self, srv: TuikServer, action: str, kind: str, out: Path) -> subprocess.Popen[bytes]:
        a = self.args
        return spawn_role(__file__, "load", srv.url, srv.token, srv.ca_file, out,
                          "--action", action, "--kind", kind,
                          "--deployments", str(a.deployments), "--replicas", str(a.replicas), "--pods", str(self.pods),
                          "--nodes", str(a.nodes), "--conc", str(a.conc))

    def wait_load(self, p: subprocess.Popen[bytes], out: Path, timeout: float) -> dict[str, Any]:
        return wait_role(p, out, timeout, "load process")

    def start_hollow(self, srv: TuikServer, tag: str) -> subprocess.Popen[bytes]:
        a = self.args
        out, err = self.root / f"{tag}.hollow.out", self.root / f"{tag}.hollow.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            return REAPER.spawn(
                [PYTHON, "-m", "tuik8s.cli", "hollow", "--nodes", str(a.nodes),
                 "--kubeconfig", str(srv.data_dir / "kubeconfig"), "--no-events", *a.hollow_args.split()],
                stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, cwd=str(REPO),
            )

    def round(self, r: int, kind: str, profile_dir: Path | None = None) -> dict[str, Any]:
        tag = f"{kind}-{r}"
        flags = () if kind == "deployments" else ("--no-controllers", "--no-scheduler")
        srv = TuikServer(self.root / tag, flags=flags).start()
        hollow: subprocess.Popen[bytes] | None = None
        res: dict[str, Any] = {"kind": kind}
        try:
            hollow = self.start_hollow(srv, tag)
            res.update(asyncio.run(self._round(tag, kind, srv, hollow, profile_dir)))
        finally:
            if hollow is not None:
                REAPER.stop(hollow)
            srv.stop()
            for what, text in (("server", srv.stderr_all()),
                               ("hollow", (self.root / f"{tag}.hollow.err").read_text(errors="replace"))):
                errs = [ln for ln in text.splitlines() if "Traceback" in ln or " ERROR " in ln or "WARNING" in ln]
                if errs:
                    self.problems.append(f"{tag}: {what} stderr: {errs[0][:240]} ({len(errs)} such lines)")
        return res

    async def _round(
        self, tag: str, kind: str, srv: TuikServer, hollow: subprocess.Popen[bytes], profile_dir: Path | None
    ) -> dict[str, Any]:
        a = self.args
        n = self.pods
        res: dict[str, Any] = {}
        async with api_session(srv.token, str(srv.ca_file), 8) as s:
            async with s.post(srv.url + "/api/v1/namespaces", data=orjson.dumps(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
                    headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"creating namespace {NS}: HTTP {resp.status}")
            nodes, pods = NodeCounts(), PodCounts()
            node_ready, pod_ready = asyncio.Event(), asyncio.Event()
            t_nodes = time.monotonic()
            tasks = [asyncio.create_task(watch_forever(s, srv.url, "/api/v1/nodes", nodes.apply, node_ready)),
                     asyncio.create_task(watch_forever(s, srv.url, f"/api/v1/namespaces/{NS}/pods", pods.apply, pod_ready))]
            try:
                await self._until(lambda: len(nodes.ready) >= a.nodes, nodes.changed, 300, tasks, hollow)
                res["nodes_ready_s"] = time.monotonic() - t_nodes
                await pod_ready.wait()
                await asyncio.sleep(2.0)  # the hollow's first burst of Lease renewals settles
                nodes.min_ready_armed, nodes.min_ready = True, len(nodes.ready)
                res["rss_before_kb"] = srv.memory_kb().get("VmRSS", 0)
                res.update(await self._phase(tag, kind, "create", srv, hollow, pods, tasks, profile_dir, s))
                res["nodes_min_ready_create"] = nodes.min_ready
                nodes.min_ready = len(nodes.ready)
                mem = srv.memory_kb()
                res["rss_peak_kb"], res["hwm_peak_kb"] = max(res.pop("rss_max_kb"), mem.get("VmRSS", 0)), mem.get("VmHWM", 0)
                res["hollow_rss_kb"] = proc_memory_kb(hollow.pid).get("VmRSS", 0)
                if len(pods.running) < n:
                    return res  # nothing more to learn: the round timed out creating
                res.update(await self._phase(tag, kind, "delete", srv, hollow, pods, tasks, profile_dir, s))
                res["nodes_min_ready_delete"] = nodes.min_ready
                res["hwm_end_kb"] = srv.memory_kb().get("VmHWM", 0)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return res

    async def _until(self, done: Any, changed: asyncio.Event, limit: float, tasks: list[asyncio.Task[None]],
                     hollow: subprocess.Popen[bytes], loader: subprocess.Popen[bytes] | None = None) -> bool:
        deadline = time.monotonic() + limit
        while not done():
            if loader is not None and loader.poll() not in (None, 0):
                raise RuntimeError(f"the load process exited with code {loader.returncode}")
            for t in tasks:
                if t.done():
                    t.result()  # a watch that failed: say why
                    raise RuntimeError("a watch ended")
            if hollow.poll() is not None:
                raise RuntimeError(f"tuik8s hollow exited with code {hollow.returncode}")
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), min(left, 1.0))
            except TimeoutError:
                pass
        return True

    async def _revision(self, s: Any, srv: TuikServer) -> int:
        """The store's revision: every write (pods, binds, Events, Leases...) moves it by one."""
        async with s.get(srv.url + f"/api/v1/namespaces/{NS}/configmaps", params={"limit": "1"}) as r:
            return int(orjson.loads(await r.read())["metadata"]["resourceVersion"])

    async def _phase(self, tag: str, kind: str, action: str, srv: TuikServer, hollow: subprocess.Popen[bytes],
                     pods: PodCounts, tasks: list[asyncio.Task[None]], profile_dir: Path | None, s: Any) -> dict[str, Any]:
        """One timed phase: start the load process, sample until the pods are all Running
        (create) or all gone (delete)."""
        a = self.args
        n = self.pods
        out = self.root / f"{tag}-{action}.json"
        spies: dict[str, Profiler] = {}
        if profile_dir is not None:
            spies = {who: Profiler(pid, profile_dir / f"{tag}-{action}-{who}.txt")
                     for who, pid in (("server", srv.pid), ("hollow", hollow.pid))}
            await asyncio.sleep(0.5)
        rv0 = await self._revision(s, srv)
        cpu0 = {"server": proc_cpu_seconds(srv.pid), "hollow": proc_cpu_seconds(hollow.pid), "bench": time.process_time()}
        machine = MachineCpu()
        rss_max = 0
        curve: list[tuple[float, int, int, int, int]] = []
        wall0 = time.time()
        loader = self.spawn_load(srv, action, "deployments" if kind == "deployments" else "pods", out)

        if action == "create":
            def done() -> bool:
                return len(pods.running) >= n
        else:
            def done() -> bool:
                return not pods.live

        async def sample() -> None:
            nonlocal rss_max
            while True:
                rss_max = max(rss_max, srv.memory_kb().get("VmRSS", 0))
                curve.append((time.time(), *pods.snapshot()))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        try:
            finished = await self._until(done, pods.changed, a.timeout, tasks, hollow, loader)
        finally:
            sampler.cancel()
        t_done = time.time()
        cpu = {"server": proc_cpu_seconds(srv.pid) - cpu0["server"], "hollow": proc_cpu_seconds(hollow.pid) - cpu0["hollow"],
               "bench": time.process_time() - cpu0["bench"]}
        busy = machine.busy()
        writes = await self._revision(s, srv) - rv0
        curve.append((t_done, *pods.snapshot()))
        load = await asyncio.to_thread(self.wait_load, loader, out, 120)
        for who, spy in spies.items():
            self.profiles[f"{action} {who}"] = spy.stop()
        t0 = load["t_start"]
        res: dict[str, Any] = {
            f"{action}_s": (t_done - t0) if finished else float("nan"),
            f"{action}_requests_s": load["t_end"] - load["t_start"],
            f"{action}_codes": load["codes"],
            f"{action}_load_cpu_s": load["cpu_s"],
            f"{action}_server_cpu_s": cpu["server"],
            f"{action}_hollow_cpu_s": cpu["hollow"],
            f"{action}_machine_busy": busy,
            f"{action}_watcher_cpu_s": cpu["bench"],
            f"{action}_writes": writes,
            f"{action}_curve": [(round(t - t0, 2), c, b, r, live) for t, c, b, r, live in curve if t >= wall0],
        }
        if action == "create":
            res["rss_max_kb"] = rss_max
            res["created"], res["running"] = pods.created, len(pods.running)
        else:
            res["left"] = len(pods.live)
        if not finished:
            state = f"{len(pods.running)}/{n} Running" if action == "create" else f"{len(pods.live)} pods left"
            self.problems.append(f"{tag}: {action} did not finish within {a.timeout:.0f} s ({state})")
        return res

    # ---- the whole run ---------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        self.profiles: dict[str, dict[str, Any]] = {}
        say(f"tuik8s scale benchmark: {a.nodes} hollow nodes, {a.deployments} Deployments x {a.replicas} replicas "
            f"= {self.pods} pods, {a.rounds} round(s); {os.cpu_count()} CPUs")
        say(f"  machine at start: {uptime_line()}")
        results: dict[str, list[dict[str, Any]]] = {"deployments": [], "bare": []}
        kinds = ["deployments"] if a.no_baseline else ["bare", "deployments"]
        for r in range(a.rounds):
            order = kinds if r % 2 == 0 else kinds[::-1]  # drift on a noisy machine hits both
            for kind in order:
                say(f"  .. round {r + 1}/{a.rounds}: {kind}  ({uptime_line().split('load average:')[-1].strip()})")
                try:
                    res = self.round(r, kind)
                except (RuntimeError, ServerStartError) as e:
                    self.problems.append(f"{kind} round {r + 1}: {e}")
                    continue
                results[kind].append(res)
                self.print_round(res)
        if a.profile:
            pdir = Path(a.profile)
            pdir.mkdir(parents=True, exist_ok=True)
            say(f"  .. profiling one more deployments round with py-spy (raw stacks in {pdir})")
            try:
                res = self.round(a.rounds, "deployments", profile_dir=pdir)
                self.print_round(res)
            except (RuntimeError, ServerStartError, OSError) as e:
                self.problems.append(f"profile round: {e}")
        say(f"  machine at end: {uptime_line()}")
        self.report(results)
        return 0 if not self.problems else 1

    def print_round(self, res: dict[str, Any]) -> None:
        n = self.pods
        for action in ("create", "delete"):
            if f"{action}_s" not in res:
                continue
            say(f"     {action}: {res[f'{action}_s']:.1f} s (requests took {res[f'{action}_requests_s']:.1f} s, "
                f"codes {res[f'{action}_codes']}); CPU s: server {res[f'{action}_server_cpu_s']:.1f}, "
                f"hollow {res[f'{action}_hollow_cpu_s']:.1f}, load {res[f'{action}_load_cpu_s']:.1f}, "
                f"watcher {res[f'{action}_watcher_cpu_s']:.1f}; machine busy {100 * res[f'{action}_machine_busy']:.0f}%; "
                f"{res[f'{action}_writes']} store writes")
            points, nxt = [], 0.0
            curve = res[f"{action}_curve"]
            for t, c, b, r, live in curve:
                if t >= nxt or (t, c, b, r, live) == tuple(curve[-1]):
                    if action == "create":
                        points.append(f"{t:.0f}s {c}/{b}/{r}")
                    else:
                        points.append(f"{t:.0f}s {live}")
                    nxt = (t // CURVE_EVERY + 1) * CURVE_EVERY
            what = "created/bound/running" if action == "create" else "pods left"
            say(f"       curve ({what}): " + ", ".join(points))
        if "hwm_peak_kb" in res:
            say(f"     nodes Ready after {res['nodes_ready_s']:.1f} s; fewest Ready while creating "
                f"{res.get('nodes_min_ready_create', '-')}, deleting {res.get('nodes_min_ready_delete', '-')}; "
                f"server RSS {res['rss_before_kb'] / 1024:.0f} MB before, {res['rss_peak_kb'] / 1024:.0f} MB with "
                f"{n} pods Running (VmHWM {res['hwm_peak_kb'] / 1024:.0f} MB); hollow RSS {res['hollow_rss_kb'] / 1024:.0f} MB")

    def report(self, results: dict[str, list[dict[str, Any]]]) -> None:
        def med(kind: str, key: str) -> float:
            return median([r[key] for r in results[kind] if key in r])

        n = self.pods
        say()
        say("| figure (median of rounds) | Deployments (full control plane) | bare pods (API + hollow floor) | ratio | target |")
        say("| --- | --- | --- | --- | --- |")
        for action, label in (("create", f"first create to {n} pods Running+Ready"),
                              ("delete", "first DELETE to 0 pods left")):
            fig, base = med("deployments", f"{action}_s"), med("bare", f"{action}_s")
            say(f"| {label} | {fig:.1f} s | {base:.1f} s | {fig / base:.2f} | <= {TARGET_S:.0f} s |")
        for action in ("create", "delete"):
            for who in ("server", "hollow"):
                fig, base = med("deployments", f"{action}_{who}_cpu_s"), med("bare", f"{action}_{who}_cpu_s")
                say(f"| {who} CPU s, {action} phase | {fig:.1f} | {base:.1f} | {fig / base:.2f} | |")
            fig, base = med("deployments", f"{action}_writes"), med("bare", f"{action}_writes")
            say(f"| store writes (revisions), {action} phase | {fig:.0f} | {base:.0f} | {fig / base:.2f} | |")
            fig, base = med("deployments", f"{action}_machine_busy"), med("bare", f"{action}_machine_busy")
            say(f"| machine busy (2 cores = 100%), {action} phase | {100 * fig:.0f}% | {100 * base:.0f}% | | |")
        for key, label in (("rss_before_kb", "server VmRSS, nodes registered, no pods"),
                           ("rss_peak_kb", f"server VmRSS, max sampled with {n} pods"),
                           ("hwm_peak_kb", f"server VmHWM, {n} pods Running"),
                           ("hwm_end_kb", "server VmHWM at the end of the round"),
                           ("hollow_rss_kb", f"hollow VmRSS, {n} pods Running")):
            fig, base = med("deployments", key), med("bare", key)
            say(f"| {label} | {fig / 1024:.0f} MB | {base / 1024:.0f} MB | {fig / base:.2f} | |")
        say(f"| nodes registered and Ready | {med('deployments', 'nodes_ready_s'):.1f} s | {med('bare', 'nodes_ready_s'):.1f} s | | |")
        say()
        for key, label in (("create_s", f"{n} pods Running within {TARGET_S:.0f} s of creating their Deployments"),
                           ("delete_s", f"all gone within {TARGET_S:.0f} s of deleting them")):
            v = med("deployments", key)
            met = "met" if v <= TARGET_S else "NOT met"
            per = ", ".join(f"{r.get(key, float('nan')):.1f}" for r in results["deployments"])
            say(f"target: {label}: {met} ({v:.1f} s, median of {len(results['deployments'])} rounds: {per})")
        for title, prof in self.profiles.items():
            say()
            print_profile(f"py-spy, {title} phase", prof)
        for p in self.problems:
            say(f"problem: {p}")


def main() -> int:
    if "--role" in sys.argv:
        return run_role(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--deployments", type=int, default=50)
    ap.add_argument("--replicas", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conc", type=int, default=32, help="connections of the load process")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds a phase may take before the round gives up")
    ap.add_argument("--hollow-args", default="", metavar="FLAGS", help="extra flags for `tuik8s hollow`, e.g. \"--max-in-flight 64\"")
    ap.add_argument("--no-baseline", action="store_true", help="only the Deployments rounds")
    ap.add_argument("--profile", metavar="DIR", help="profile one more Deployments round with py-spy; stacks in DIR")
    ap.add_argument("--quick", action="store_true", help="100 nodes, 10 x 100 = 1,000 pods, 1 round")
    args = ap.parse_args()
    if args.quick:
        args.nodes, args.deployments, args.replicas, args.rounds = 100, 10, 100, 1
    return run_bench(Bench(args).run)


if __name__ == "__main__":
    sys.exit(main())
