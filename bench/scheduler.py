"""Scheduler benchmark: how fast pending pods get bound on a 1,000-node cluster.

    .venv/bin/python bench/scheduler.py [--quick] [--nodes 1000] [--pods 5000] [--rounds 3]
                                        [--profile]

Each round starts a fresh `tuik8s server --no-controllers` (the scheduler runs in it; no
controller may garbage-collect the bench pods, whose owners do not exist), creates the
Node objects directly through the API (Ready, allocatable 4 cpu / 16Gi / 110 pods), then
a separate process creates N pods as fast as it can over `--conc` HTTPS connections
while this process watches the pods and notes when each one first shows `spec.nodeName`.

Figures per round (the summary gives medians over rounds):
- **scheduled/s**: pods bound per second from the first create to the last bind, and the
  steady rate between the 10th and 90th percentile bind;
- **creates/s** of the creator meanwhile, to see whether creating, not scheduling, was
  the limit; the bind lag after the last create.

Baselines, measured in the same run on servers started the same way but `--no-scheduler`:
- **bind-only**: the same N pods created first, then POST pods/NAME/binding for each (to
  nodes round-robin, no decision at all) from as many concurrent connections as the
  scheduler has binds in flight: what the API allows at most;
- **create+bind pipeline**: the creator as above while a "dumb binder" process watches
  and binds each new pod round-robin at once: the same work as the scheduler's minus the
  decisions (but over HTTPS, where the scheduler binds in-process).

Spread: pods per node after the scheduler rounds (min / median / max, and the histogram).
`--profile` attaches py-spy to the server during one more scheduler round and prints the
functions with the most samples (install: `.venv/bin/pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from _harness import (
    REAPER,
    REPO,
    PySpy,
    ServerStartError,
    TuikServer,
    aggregate_profile,
    api_session,
    find_py_spy,
    median,
    percentile,
    proc_cpu_seconds,
    profile_lines,
    role_parser,
    run_bench,
    run_worker,
    spawn_role,
    uptime_line,
    wait_role,
    watch_lines,
)

sys.path.insert(0, str(REPO))
from tuik8s.scheduler.scheduler import DEFAULT_BINDS_IN_FLIGHT  # noqa: E402

NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
NODES = "/api/v1/nodes"
TARGET = 300.0
OWNERS = 50  # the pods belong to this many fake ReplicaSets (SelectorSpread has work to do)


def say(msg: str = "") -> None:
    print(msg, flush=True)


def node_body(i: int) -> dict[str, Any]:
    name = f"node-{i:04d}"
    res = {"cpu": "4", "memory": "16Gi", "pods": "110"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "status": {
            "capacity": res, "allocatable": res,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
        },
    }


def pod_body(name: str, owner: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": NS,
            "labels": {"app": f"web-{owner}", "pod-template-hash": "5d8f7c9b6"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"web-{owner}-5d8f7c9b6",
                "uid": f"00000000-0000-4000-8000-{owner:012d}", "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": {
            "containers": [{
                "name": "web", "image": "registry.local/web:1.0",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}},
            }],
        },
    }


# =====================================================================================
# worker roles (separate processes)
# =====================================================================================


async def role_create(a: argparse.Namespace) -> dict[str, Any]:
    """Create `count` pods over `conc` connections as fast as the server answers."""
    codes: Counter[int] = Counter()
    names = iter(range(a.count))
    headers = {"Content-Type": "application/json"}
    async with api_session(a.token, a.ca, a.conc) as s:
        url = a.url + PODS

        async def worker() -> None:
            for i in names:
                body = orjson.dumps(pod_body(f"{a.prefix}-{i:05d}", i % OWNERS))
                async with s.post(url, data=body, headers=headers) as r:
                    await r.read()
                    codes[r.status] += 1

        print("go", flush=True)
        t0 = time.time()
        await asyncio.gather(*(worker() for _ in range(a.conc)))
        t1 = time.time()
    return {"t_start": t0, "t_end": t1, "codes": dict(codes)}


async def _bind(s: Any, url: str, name: str, node: str, codes: Counter[int]) -> None:
    body = orjson.dumps({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": NS},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
    async with s.post(f"{url}{PODS}/{name}/binding", data=body, headers={"Content-Type": "application/json"}) as r:
        await r.read()
        codes[r.status] += 1


async def role_bind(a: argparse.Namespace) -> dict[str, Any]:
    """Bind the given pods round-robin over the nodes, `conc` requests at a time."""
    names = orjson.loads(await asyncio.to_thread(Path(a.names).read_bytes))
    codes: Counter[int] = Counter()
    work = iter(enumerate(names))
    async with api_session(a.token, a.ca, a.conc) as s:

        async def worker() -> None:
            for i, name in work:
                await _bind(s, a.url, name, f"node-{i % a.nodes:04d}", codes)

        print("go", flush=True)
        t0 = time.time()
        await asyncio.gather(*(worker() for _ in range(a.conc)))
        t1 = time.time()
    return {"t_start": t0, "t_end": t1, "codes": dict(codes)}


async def role_dumb_binder(a: argparse.Namespace) -> dict[str, Any]:
    """Watch pods; bind every unbound one round-robin at once (`conc` binds in flight)."""
    codes: Counter[int] = Counter()
    queue: asyncio.Queue[str] = asyncio.Queue()
    seen: set[str] = set()
    done = asyncio.Event()
    async with api_session(a.token, a.ca, a.conc + 1) as s:
        async with s.get(a.url + PODS) as r:
            rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]

        async def watch() -> None:
            async with s.get(a.url + PODS, params={"watch": "true", "resourceVersion": rv}) as r:
                async for _, line in watch_lines(r):
                    ev = orjson.loads(line)
                    obj = ev["object"]
                    name = obj["metadata"]["name"]
                    if ev["type"] == "ADDED" and not obj["spec"].get("nodeName") and name not in seen:
                        seen.add(name)
                        queue.put_nowait(name)

        counter = iter(range(10**9))

        async def worker() -> None:
            while True:
                name = await queue.get()
                await _bind(s, a.url, name, f"node-{next(counter) % a.nodes:04d}", codes)
                if sum(codes.values()) >= a.count:
                    done.set()

        print("go", flush=True)
        tasks = [asyncio.create_task(watch())] + [asyncio.create_task(worker()) for _ in range(a.conc)]
        await done.wait()
        for t in tasks:
            t.cancel()
    return {"codes": dict(codes)}


def run_role(argv: list[str]) -> int:
    ap = role_parser("scheduler.py --role", ["create", "bind", "dumb-binder"])
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--conc", type=int, default=32)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--names", default="")
    ap.add_argument("--prefix", default="pod")
    a = ap.parse_args(argv)
    fn = {"create": role_create, "bind": role_bind, "dumb-binder": role_dumb_binder}[a.role]
    return run_worker(fn, a)


# =====================================================================================
# the main process
# =====================================================================================


def _frame(f: str) -> str:
    """`name (file)`, the file relative to the repo (a py-spy raw frame is `name (file:line)`)."""
    return f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].replace(str(REPO) + "/", "") + ")"


class Watcher:
    """Notes the wall time at which each pod first shows spec.nodeName."""

    def __init__(self) -> None:
        self.bound: dict[str, float] = {}
        self.node_of: dict[str, str] = {}
        self.want = 0
        self.complete = asyncio.Event()

    async def run(self, s: Any, url: str, rv: str, prefix: str) -> None:
        async with s.get(url + PODS, params={"watch": "true", "resourceVersion": rv}) as r:
            async for now, line in watch_lines(r):
                obj = orjson.loads(line)["object"]
                name = obj["metadata"]["name"]
                node = (obj.get("spec") or {}).get("nodeName")
                if node and name.startswith(prefix) and name not in self.bound:
                    self.bound[name] = now
                    self.node_of[name] = node
                    if len(self.bound) >= self.want:
                        self.complete.set()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = REAPER.mkdtemp("tuik8s-sched-bench-")
        self.problems: list[str] = []

    def spawn_role(self, role: str, srv: TuikServer, out: Path, *extra: str) -> subprocess.Popen[bytes]:
        return spawn_role(__file__, role, srv.url, srv.token, srv.ca_file, out, *extra)

    def wait_proc(self, p: subprocess.Popen[bytes], out: Path, timeout: float) -> dict[str, Any]:
        return wait_role(p, out, timeout)

    async def create_nodes(self, s: Any, url: str) -> float:
        t0 = time.monotonic()
        it = iter(range(self.args.nodes))

        async def worker() -> None:
            for i in it:
                async with s.post(url + NODES, data=orjson.dumps(node_body(i)),
                                  headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status != 201:
                        raise RuntimeError(f"creating node {i}: HTTP {r.status}")

        await asyncio.gather(*(worker() for _ in range(16)))
        return time.monotonic() - t0

    async def wait_scheduler_ready(self, s: Any, url: str) -> None:
        """A probe pod bound means the scheduler's informers have synced and see the nodes."""
        body = pod_body("probe", 0)
        body["metadata"]["ownerReferences"] = []
        async with s.post(url + PODS, data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
            await r.read()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with s.get(url + PODS + "/probe") as r:
                if (orjson.loads(await r.read()).get("spec") or {}).get("nodeName"):
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError("the scheduler did not bind a probe pod within 60 s")

    async def settled_cpu(self, pid: int, limit: float = 60.0) -> float:
        """The server's CPU seconds once it has gone quiet (its background writes done)."""
        deadline = time.monotonic() + limit
        last = proc_cpu_seconds(pid)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            now = proc_cpu_seconds(pid)
            if now - last < 0.03:
                return now
            last = now
        return last

    async def spread(self, s: Any, url: str) -> list[int]:
        async with s.get(url + PODS) as r:
            items = orjson.loads(await r.read())["items"]
        per_node = Counter(i["spec"].get("nodeName") for i in items if i["metadata"]["name"].startswith("pod-"))
        return [per_node.get(f"node-{i:04d}", 0) for i in range(self.args.nodes)]

    def round(self, r: int, kind: str, profile: bool = False) -> dict[str, Any]:
        flags = ("--no-controllers",) if kind == "scheduler" else ("--no-controllers", "--no-scheduler")
        srv = TuikServer(self.root / f"{kind}-{r}", flags=flags).start()
        out: dict[str, Any] = {"kind": kind}
        try:
            out.update(asyncio.run(self._round(r, kind, srv, profile)))
        finally:
            srv.stop()
            errs = [ln for ln in srv.stderr_all().splitlines() if "Traceback" in ln or "ERROR" in ln]
            if errs:
                self.problems.append(f"{kind} round {r}: server stderr: {errs[0][:200]} ({len(errs)} such lines)")
        return out

    async def _round(self, r: int, kind: str, srv: TuikServer, profile: bool) -> dict[str, Any]:
        a = self.args
        res: dict[str, Any] = {}
        async with api_session(srv.token, srv.ca_file, 32) as s:
            res["nodes_s"] = await self.create_nodes(s, srv.url)
            if kind == "scheduler":
                await self.wait_scheduler_ready(s, srv.url)
            async with s.get(srv.url + PODS) as resp:
                rv = orjson.loads(await resp.read())["metadata"]["resourceVersion"]
            w = Watcher()
            w.want = a.pods
            wtask = asyncio.create_task(w.run(s, srv.url, rv, "pod-"))
            cpu0 = proc_cpu_seconds(srv.pid)
            t0 = time.time()
            spy = self.start_profiler(srv.pid) if profile else None
            outc = self.root / f"{kind}-{r}-create.json"
            binder = None
            if kind == "pipeline":
                outb = self.root / f"{kind}-{r}-binder.json"
                binder = self.spawn_role("dumb-binder", srv, outb, "--count", str(a.pods),
                                         "--conc", str(DEFAULT_BINDS_IN_FLIGHT), "--nodes", str(a.nodes))
                await asyncio.sleep(1.0)  # let it open its watch
            creator = self.spawn_role("create", srv, outc, "--count", str(a.pods), "--conc", str(a.conc))
            created = await asyncio.to_thread(self.wait_proc, creator, outc, 600)
            res["create_codes"] = created["codes"]
            res["creates_per_s"] = a.pods / (created["t_end"] - created["t_start"])
            if kind == "bind-only":
                names = self.root / f"{kind}-{r}-names.json"
                names.write_bytes(orjson.dumps([f"pod-{i:05d}" for i in range(a.pods)]))
                outb = self.root / f"{kind}-{r}-bind.json"
                t_b = time.time()
                binder = self.spawn_role("bind", srv, outb, "--names", str(names), "--nodes", str(a.nodes),
                                         "--conc", str(DEFAULT_BINDS_IN_FLIGHT))
                bound = await asyncio.to_thread(self.wait_proc, binder, outb, 600)
                res["bind_codes"] = bound["codes"]
                res["binds_per_s"] = a.pods / (bound["t_end"] - bound["t_start"])
                t0 = t_b
            try:
                await asyncio.wait_for(w.complete.wait(), 300)
            except TimeoutError:
                self.problems.append(f"{kind} round {r}: only {len(w.bound)}/{a.pods} pods bound within 300 s")
            if binder is not None and kind == "pipeline":
                await asyncio.to_thread(self.wait_proc, binder, self.root / f"{kind}-{r}-binder.json", 60)
            if spy is not None:
                res["profile"] = self.stop_profiler(spy)
            res["server_cpu_s"] = proc_cpu_seconds(srv.pid) - cpu0
            wtask.cancel()
            if kind == "scheduler":
                # the Scheduled events the scheduler deferred during the burst, written now
                res["server_cpu_settled_s"] = await self.settled_cpu(srv.pid) - cpu0
            times = sorted(w.bound.values())
            if times:
                res["bound"] = len(times)
                res["bound_per_s"] = len(times) / max(1e-9, times[-1] - t0)
                lo, hi = percentile(times, 10), percentile(times, 90)
                res["steady_per_s"] = 0.8 * len(times) / max(1e-9, hi - lo)
                res["lag_s"] = times[-1] - (created["t_end"] if kind != "bind-only" else t0)
                res["wall_s"] = times[-1] - t0
            if kind == "scheduler":
                res["spread"] = await self.spread(s, srv.url)
        return res

    # ---- py-spy ------------------------------------------------------------------------------

    def start_profiler(self, pid: int) -> PySpy | None:
        spy = find_py_spy()
        if spy is None:
            self.problems.append("--profile: py-spy is not installed (.venv/bin/pip install py-spy)")
            return None
        p = PySpy(spy, pid, self.root / "profile.txt", 250)
        time.sleep(0.5)
        return p

    def stop_profiler(self, spy: PySpy) -> dict[str, Any]:
        return aggregate_profile(spy.stop(30), _frame)

    # ---- the whole run ---------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        say(f"tuik8s scheduler benchmark: {a.nodes} nodes, {a.pods} pods, {a.rounds} round(s); "
            f"{os.cpu_count()} CPUs; {uptime_line()}")
        say(f"  creator: {a.conc} connections; scheduler and baselines: {DEFAULT_BINDS_IN_FLIGHT} binds in flight")
        results: dict[str, list[dict[str, Any]]] = {"scheduler": [], "bind-only": [], "pipeline": []}
        for r in range(a.rounds):
            for kind in ("bind-only", "pipeline", "scheduler"):
                say(f"  .. round {r + 1}/{a.rounds}: {kind}")
                try:
                    res = self.round(r, kind)
                except (RuntimeError, ServerStartError) as e:
                    self.problems.append(f"{kind} round {r}: {e}")
                    continue
                results[kind].append(res)
                say("     " + ", ".join(f"{k}={v:.1f}" for k, v in res.items() if isinstance(v, float)))
        profile = None
        if a.profile:
            say("  .. profiling one more scheduler round with py-spy")
            try:
                profile = self.round(a.rounds, "scheduler", profile=True).get("profile")
            except (RuntimeError, ServerStartError) as e:
                self.problems.append(f"profile round: {e}")
        self.report(results, profile)
        return 0 if not self.problems else 1

    def report(self, results: dict[str, list[dict[str, Any]]], profile: dict[str, Any] | None) -> None:
        def med(kind: str, key: str) -> float:
            return median([r[key] for r in results[kind] if key in r])

        say()
        say("| figure | tuik8s scheduler | baseline | ratio |")
        say("| --- | --- | --- | --- |")
        sched = med("scheduler", "bound_per_s")
        steady = med("scheduler", "steady_per_s")
        pipe = med("pipeline", "bound_per_s")
        binds = med("bind-only", "binds_per_s")
        say(f"| pods bound/s, first create to last bind (the figure) | {sched:.0f} | {pipe:.0f} (create + dumb binder) | {sched / pipe:.2f} |")
        say(f"| pods bound/s, steady (p10..p90 binds) | {steady:.0f} | {med('pipeline', 'steady_per_s'):.0f} (create + dumb binder) | {steady / med('pipeline', 'steady_per_s'):.2f} |")
        say(f"| raw API bind rate (binds only, pods pre-created) | — | {binds:.0f} binds/s | {sched / binds:.2f} |")
        say(f"| creates/s during the round | {med('scheduler', 'creates_per_s'):.0f} | {med('pipeline', 'creates_per_s'):.0f} | |")
        say(f"| last bind after last create | {med('scheduler', 'lag_s'):.2f} s | {med('pipeline', 'lag_s'):.2f} s | |")
        n = self.args.pods
        cpu_s, cpu_p = med("scheduler", "server_cpu_s"), med("pipeline", "server_cpu_s")
        say(f"| server CPU s, first create to last bind | {cpu_s:.1f} | {cpu_p:.1f} | |")
        settled = med("scheduler", "server_cpu_settled_s")
        say(f"| server CPU s, including the Scheduled events written after the burst | {settled:.1f} | {cpu_p:.1f} | |")
        say(f"| server CPU per pod, events included (less sensitive to a busy machine) | {1000 * settled / n:.2f} ms | {1000 * cpu_p / n:.2f} ms | {cpu_p / settled:.2f} |")
        say(f"| pods per server CPU second, events included | {n / settled:.0f} | {n / cpu_p:.0f} | {cpu_p / settled:.2f} |")
        say()
        met = "met" if sched >= TARGET else "NOT met"
        say(f"target >= {TARGET:.0f} pods/s scheduled with {self.args.nodes} nodes: {met} ({sched:.0f}/s median of "
            f"{len(results['scheduler'])} rounds; per round: "
            + ", ".join(f"{r.get('bound_per_s', 0):.0f}" for r in results["scheduler"]) + ")")
        spreads = [r["spread"] for r in results["scheduler"] if "spread" in r]
        if spreads:
            last = spreads[-1]
            hist = sorted(Counter(last).items())
            say(f"spread (last round): pods per node min {min(last)}, median {statistics.median(last):g}, "
                f"max {max(last)}, stdev {statistics.pstdev(last):.2f}; nodes by pod count: "
                + ", ".join(f"{n} pods: {c}" for n, c in hist))
        if profile:
            total = profile["total"] or 1
            say()
            say(f"py-spy, server process during a scheduler round ({total} samples); most own time:")
            for line in profile_lines(profile, "own"):
                say(line)
            say("most inclusive time:")
            for line in profile_lines(profile, "inclusive"):
                say(line)
        for p in self.problems:
            say(f"problem: {p}")


def main() -> int:
    if "--role" in sys.argv:
        return run_role(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conc", type=int, default=32, help="creator connections")
    ap.add_argument("--profile", action="store_true", help="profile one more scheduler round with py-spy")
    ap.add_argument("--quick", action="store_true", help="1 round of 2,000 pods")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.pods = 1, 2000
    return run_bench(Bench(args).run)


if __name__ == "__main__":
    sys.exit(main())
