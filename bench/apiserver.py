"""API server benchmark: pod creates, watch delivery, LIST of 10,000 pods, memory, kill -9.

    .venv/bin/python bench/apiserver.py [--quick]

Every figure is printed beside a baseline measured in the same run on the same machine:
a minimal aiohttp HTTPS server ("hello", bench/_harness.py) with the same certificate,
key and TLS settings, driven by the identical load generator.

1. Creates: `wrk -t2 -c50` (50 keep-alive HTTPS connections) POSTs a ~1.5 KB Pod with a
   unique name per request (bench/pods.lua), for a fixed time per round; only 201s count.
   Rounds alternate hello and tuik8s (a fresh data dir per tuik8s round, after a short
   warm-up); the summary gives medians over rounds and the median of per-round ratios.
   wrk's CPU time is reported so one can see the generator is not the limit.
2. Watch delivery, during the same load: a watcher process (one HTTPS watch from the
   list's resourceVersion) and a probe process that creates 20 pods/s carrying their send
   time in an annotation and records when their 201 arrived.
3. LIST of 10,000 pods (JSON; the paged Table form kubectl asks for; the real
   `kubectl get pods -A`), and the server's RSS with those pods.
4. Durability: 50 Python creators, SIGKILL of the server at a random moment, restart,
   and every acknowledged (201) name must be found.

The worker processes (watcher, probe, Python creators) are this same file run with a
hidden `--role`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from _harness import (
    BENCH,
    REAPER,
    HelloServer,
    MachineCpu,
    ServerStartError,
    Target,
    TuikServer,
    api_session,
    median,
    percentile,
    proc_cpu_seconds,
    role_parser,
    run_worker,
    spawn_role,
    uptime_line,
    wait_rusage,
)

PODS = "/api/v1/namespaces/default/pods"
ALL_PODS = "/api/v1/pods"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
SENT_AT = "bench.tuik8s.io/sent-at"
LUA = BENCH / "pods.lua"
CONNECTIONS = 50
WRK_THREADS = 2
PROBE_RATE = 20.0  # probe creates per second during a round

TARGETS = {
    "creates_per_s": 1000.0,
    "create_p99_ms": 100.0,
    "watch_p99_ms": 50.0,
    "list_s": 1.0,
    "rss_mb": 500.0,
}


def pod(name: str, sent_at: float | None = None) -> dict[str, Any]:
    """A realistic Pod: two containers, ports, env, requests/limits, probe, volume (~1.5 KB)."""
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "9102",
                   "kubernetes.io/change-cause": "bench: rollout of shop web 1.4.2"}
    if sent_at is not None:
        annotations[SENT_AT] = f"{sent_at:.6f}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "shop", "tier": "frontend", "pod-template-hash": "7d9f8c6b5", "bench": "apiserver"},
            "annotations": annotations,
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "registry.local/shop/web:1.4.2",
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9102, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "SHOP_MODE", "value": "production"},
                        {"name": "SHOP_DB_HOST", "value": "db.default.svc.cluster.local"},
                        {"name": "SHOP_DB_PORT", "value": "5432"},
                        {"name": "SHOP_CACHE_TTL", "value": "300"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/shop", "readOnly": True}],
                },
                {
                    "name": "log-shipper",
                    "image": "registry.local/tools/log-shipper:0.9.1",
                    "env": [{"name": "SHIP_TO", "value": "logs.monitoring.svc.cluster.local:5140"}],
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "32Mi"},
                        "limits": {"cpu": "100m", "memory": "64Mi"},
                    },
                },
            ],
            "volumes": [{"name": "config", "configMap": {"name": "shop-config"}}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
        },
    }


def say(msg: str = "") -> None:
    print(msg, flush=True)


def progress(msg: str) -> None:
    print(f"  .. {msg}", flush=True)


# =====================================================================================
# worker roles (separate processes)
# =====================================================================================


async def role_load(a: argparse.Namespace) -> dict[str, Any]:
    """Python creators: `conc` workers on `conc` keep-alive connections.

    A name is acknowledged the moment a 201 status line arrives. With --until-failure, the
    first broken connection stops every worker after its current request: a request that
    fails on an open connection was in flight (it may or may not have been committed); one
    whose connection could not even be opened was never sent.
    """
    import aiohttp

    acked: list[str] = []
    inflight: list[str] = []
    codes: Counter[int] = Counter()
    errs: Counter[str] = Counter()
    samples: dict[int, str] = {}
    lat: list[float] = []
    state: dict[str, Any] = {"remaining": a.count or None, "stop": False}
    deadline = time.monotonic() + a.duration
    headers = {"Content-Type": "application/json"}
    async with api_session(a.token, a.ca, a.conc) as s:
        url = a.url + PODS

        async def worker(wid: int) -> None:
            i = 0
            while not state["stop"] and time.monotonic() < deadline:
                if state["remaining"] is not None:
                    if state["remaining"] <= 0:
                        return
                    state["remaining"] -= 1
                i += 1
                name = f"{a.prefix}-{wid}-{i}"
                body = orjson.dumps(pod(name))
                t0 = time.monotonic()
                got_status = False
                try:
                    async with s.post(url, data=body, headers=headers) as r:
                        got_status = True
                        if r.status == 201:
                            acked.append(name)
                        codes[r.status] += 1
                        text = await r.read()
                        if r.status != 201 and r.status not in samples:
                            samples[r.status] = text[:300].decode(errors="replace")
                    lat.append(time.monotonic() - t0)
                except aiohttp.ClientConnectorError as e:
                    errs[type(e).__name__] += 1
                    if a.until_failure:
                        state["stop"] = True
                        return
                except (aiohttp.ClientError, OSError, TimeoutError) as e:
                    errs[type(e).__name__] += 1
                    if not got_status:
                        inflight.append(name)
                    if a.until_failure:
                        state["stop"] = True
                        return

        print("go", flush=True)
        await asyncio.gather(*(worker(w) for w in range(a.conc)))
    return {"acked": acked, "inflight": inflight, "codes": dict(codes), "errors": dict(errs),
            "samples": samples, "lat": lat}


async def role_probe(a: argparse.Namespace) -> dict[str, Any]:
    """Open-loop creates at a low rate; each pod carries its send time (time.time())."""
    out: dict[str, list[Any]] = {}
    errs: Counter[str] = Counter()
    headers = {"Content-Type": "application/json"}
    async with api_session(a.token, a.ca, 8) as s:
        url = a.url + PODS

        async def one(i: int) -> None:
            name = f"{a.prefix}-{i}"
            sent = time.time()
            body = orjson.dumps(pod(name, sent))
            try:
                async with s.post(url, data=body, headers=headers) as r:
                    acked = time.time()
                    out[name] = [sent, acked, r.status]
                    await r.read()
            except Exception as e:  # noqa: BLE001 - recorded, not raised
                errs[type(e).__name__] += 1

        n = int(a.duration * a.rate)
        start = time.monotonic()
        tasks = []
        for i in range(n):
            delay = start + i / a.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return {"probes": out, "errors": dict(errs)}


async def role_watch(a: argparse.Namespace) -> dict[str, Any]:
    """List, then watch from the list's resourceVersion; time the probe pods' arrival."""
    marker = a.marker.encode()
    seen: dict[str, list[Any]] = {}
    types: Counter[str] = Counter()
    errors: list[str] = []
    ended = "deadline"
    async with api_session(a.token, a.ca, 2) as s:
        async with s.get(a.url + PODS) as r:
            listed = orjson.loads(await r.read())
        rv = listed.get("metadata", {}).get("resourceVersion", "0")
        initial = len(listed.get("items") or [])
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": str(int(a.duration) + 60)}
        async with s.get(a.url + PODS, params=params) as r:
            if r.status != 200:
                return {"error": f"watch answered {r.status}: {(await r.read())[:200]!r}"}
            # SIGUSR1 from the benchmark: the load is over; drain for one more second
            stop_at = [time.monotonic() + a.duration]
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGUSR1, lambda: stop_at.__setitem__(0, min(stop_at[0], time.monotonic() + 1.0)))
            print("watching", flush=True)
            buf = b""
            while True:
                left = stop_at[0] - time.monotonic()
                if left <= 0:
                    break
                try:
                    chunk = await asyncio.wait_for(r.content.readany(), min(left, 0.2))
                except TimeoutError:
                    continue
                if not chunk:
                    ended = "server closed the watch"
                    break
                now = time.time()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line:
                        continue
                    head = line[:24]
                    etype = head[9:head.find(b'"', 9)].decode(errors="replace") if head.startswith(b'{"type":"') else "?"
                    types[etype] += 1
                    if etype == "ERROR" and len(errors) < 5:
                        errors.append(line[:300].decode(errors="replace"))
                    if marker in line:
                        obj = orjson.loads(line)["object"]
                        name = obj["metadata"]["name"]
                        if name.startswith(a.marker) and name not in seen:
                            sent = float(obj["metadata"].get("annotations", {}).get(SENT_AT, "nan"))
                            seen[name] = [now, sent, etype]
    return {"initial": initial, "rv": rv, "types": dict(types), "seen": seen, "errors": errors, "ended": ended}


def run_role(argv: list[str]) -> int:
    ap = role_parser("apiserver.py --role", ["load", "probe", "watch"])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--conc", type=int, default=CONNECTIONS)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--prefix", default="py")
    ap.add_argument("--rate", type=float, default=PROBE_RATE)
    ap.add_argument("--marker", default="probe")
    ap.add_argument("--until-failure", action="store_true")
    a = ap.parse_args(argv)
    fn = {"load": role_load, "probe": role_probe, "watch": role_watch}[a.role]
    return run_worker(fn, a)


# =====================================================================================
# orchestration helpers (main process)
# =====================================================================================


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = REAPER.mkdtemp("tuik8s-bench-")
        self.pki: Path | None = None
        self.template = self.root / "pod-template.json"
        self.template.write_bytes(orjson.dumps(pod("__NAME__")))
        self.wrk = shutil.which("wrk")
        self.hello: HelloServer | None = None
        self.server_problems: list[str] = []
        self.slow_stops: list[str] = []
        self.stops = 0
        self.rows: list[tuple[str, str, str, str, str, str]] = []

    # ---- processes ----------------------------------------------------------------

    def spawn_role(self, role: str, target: Target, out: Path, *extra: str) -> Any:
        return spawn_role(__file__, role, target.url, target.token, target.ca_file, out, *extra)

    @staticmethod
    def wait_line(p: Any, log: Path, word: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists() and word in log.read_text(errors="replace"):
                return
            if p.poll() is not None:
                raise RuntimeError(f"worker exited before '{word}': {log.read_text(errors='replace')[-500:]}")
            time.sleep(0.02)
        raise RuntimeError(f"worker did not say '{word}' within {timeout:.0f} s")

    def new_server(self, name: str) -> TuikServer:
        # the API server alone: no scheduler or controllers reacting to the pods it stores
        srv = TuikServer(self.root / name, pki_from=self.pki, flags=("--no-scheduler", "--no-controllers"))
        srv.start()
        if self.pki is None:
            self.pki = srv.data_dir / "pki"
        return srv

    def target_of(self, srv: TuikServer | HelloServer, name: str) -> Target:
        if isinstance(srv, TuikServer):
            return Target(name, srv.url, srv.token, srv.ca_file, srv.pid)
        assert self.pki is not None
        return Target(name, srv.url, "hello-needs-no-token", self.pki / "ca.crt", srv.pid)

    def stop_server(self, srv: TuikServer, phase: str) -> None:
        took = srv.stop()
        self.stops += 1
        if took is None:
            self.slow_stops.append(phase)

    def note_server_log(self, srv: TuikServer, phase: str) -> None:
        text = srv.stderr_all()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if lines:
            interesting = [ln for ln in lines if any(w in ln for w in ("ERROR", "WARNING", "Traceback", "Error", "CRITICAL"))]
            head = (interesting or lines)[:5]
            self.server_problems.append(f"{phase}: server stderr has {len(lines)} lines ({len(interesting)} warnings/errors); first: " + " | ".join(h[:200] for h in head))

    # ---- HTTP from the main process ----------------------------------------------------

    def http(self, coro_fn: Any, target: Target) -> Any:
        async def go() -> Any:
            async with api_session(target.token, str(target.ca_file), 4) as s:
                return await coro_fn(s, target.url)
        return asyncio.run(go())

    def watch_delivery(self, target: Target) -> dict[str, float]:
        """The server's own histogram of commit -> connection time for pod watch events."""
        async def fn(s: Any, url: str) -> str:
            async with s.get(url + "/metrics") as r:
                return (await r.read()).decode()
        text = self.http(fn, target)
        buckets: list[tuple[float, float]] = []
        count = 0.0
        for line in text.splitlines():
            if line.startswith('tuik8s_watch_delivery_seconds_bucket{resource="pods"'):
                le = line.split('le="')[1].split('"')[0]
                buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
            elif line.startswith('tuik8s_watch_delivery_seconds_count{resource="pods"}'):
                count = float(line.rsplit(" ", 1)[1])
        if not count:
            return {"events": 0.0, "within_50ms": float("nan"), "p99_bucket_ms": float("nan")}
        within = next((c for le, c in buckets if le == 0.05), 0.0)
        p99 = next((le for le, c in buckets if c >= 0.99 * count), float("inf"))
        return {"events": count, "within_50ms": within / count, "p99_bucket_ms": p99 * 1e3}

    def pod_names(self, target: Target) -> list[str]:
        async def fn(s: Any, url: str) -> list[str]:
            async with s.get(url + PODS) as r:
                doc = orjson.loads(await r.read())
            return [i["metadata"]["name"] for i in doc.get("items") or []]
        return list(self.http(fn, target))

    # ---- load generators -------------------------------------------------------------------

    def run_wrk(self, target: Target, seconds: float, prefix: str) -> dict[str, Any]:
        assert self.wrk is not None
        out = self.root / f"wrk-{prefix}.out"
        with open(out, "wb") as f:
            p = REAPER.spawn(
                [self.wrk, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency",
                 "--timeout", "10s", "-s", str(LUA), target.url + PODS, "--", target.token, str(self.template), prefix],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
            t0 = time.monotonic()
            cpu = wait_rusage(p, timeout=seconds + 60)
            wall = time.monotonic() - t0
        text = out.read_text(errors="replace")
        line = next((ln for ln in text.splitlines() if ln.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no result: {text[-500:]}")
        res = json.loads(line[6:])
        codes = {int(k): v for k, v in res["codes"].items()}
        dur = res["duration_us"] / 1e6
        return {
            "ok_per_s": codes.get(201, 0) / dur, "ok": codes.get(201, 0), "requests": res["requests"],
            "non201": {k: v for k, v in codes.items() if k != 201}, "sock_errors": {k: v for k, v in res["errors"].items() if v},
            "p50_ms": res["lat_us"]["p50"] / 1e3, "p90_ms": res["lat_us"]["p90"] / 1e3, "p99_ms": res["lat_us"]["p99"] / 1e3,
            "p999_ms": res["lat_us"]["p999"] / 1e3, "max_ms": res["lat_us"]["max"] / 1e3,
            "gen_cpu": cpu / wall, "wall": wall, "gen": f"wrk -t{WRK_THREADS}",
        }

    def run_pyload(self, target: Target, seconds: float, prefix: str, procs: int = 2) -> dict[str, Any]:
        """The fallback generator when wrk is absent: Python creators in `procs` processes."""
        ps = []
        for i in range(procs):
            out = self.root / f"load-{prefix}-{i}.json"
            ps.append((self.spawn_role("load", target, out, "--duration", str(seconds), "--conc",
                                       str(CONNECTIONS // procs), "--prefix", f"{prefix}{i}"), out))
        t0 = time.monotonic()
        cpu = sum(wait_rusage(p, timeout=seconds + 120) for p, _ in ps)
        wall = time.monotonic() - t0
        codes: Counter[int] = Counter()
        errs: Counter[str] = Counter()
        lat: list[float] = []
        for _, out in ps:
            r = orjson.loads(out.read_bytes())
            codes.update({int(k): v for k, v in r["codes"].items()})
            errs.update(r["errors"])
            lat += r["lat"]
        return {
            "ok_per_s": codes.get(201, 0) / seconds, "ok": codes.get(201, 0), "requests": sum(codes.values()),
            "non201": {k: v for k, v in codes.items() if k != 201}, "sock_errors": dict(errs),
            "p50_ms": percentile(lat, 50) * 1e3, "p90_ms": percentile(lat, 90) * 1e3, "p99_ms": percentile(lat, 99) * 1e3,
            "p999_ms": percentile(lat, 99.9) * 1e3, "max_ms": max(lat, default=float("nan")) * 1e3,
            "gen_cpu": cpu / wall, "wall": wall, "gen": f"python x{procs}",
        }

    def load(self, target: Target, seconds: float, prefix: str) -> dict[str, Any]:
        if self.wrk:
            return self.run_wrk(target, seconds, prefix)
        return self.run_pyload(target, seconds, prefix)

    def populate(self, target: Target, want: int) -> tuple[int, float]:
        """Create pods until exactly `want` exist in default; returns (count, seconds)."""
        t0 = time.monotonic()
        for attempt in range(5):
            have = len(self.pod_names(target))
            need = want - have
            if need <= 0:
                return have, time.monotonic() - t0
            procs = 2 if need >= 100 else 1
            ps = []
            for i in range(procs):
                n = need // procs + (1 if i < need % procs else 0)
                out = self.root / f"populate-{attempt}-{i}.json"
                ps.append(self.spawn_role("load", target, out, "--count", str(n), "--duration", "600",
                                          "--conc", str(CONNECTIONS // procs), "--prefix", f"fill{attempt}{i}"))
            for p in ps:
                wait_rusage(p, timeout=900)
        have = len(self.pod_names(target))
        return have, time.monotonic() - t0

    # =====================================================================================
    # 1 + 2: creates and watch delivery
    # =====================================================================================

    def round(self, r: int, kind: str) -> dict[str, Any]:
        a = self.args
        srv: TuikServer | None = None
        if kind == "tuik8s":
            srv = self.new_server(f"round{r}")
            target = self.target_of(srv, "tuik8s")
        else:
            assert self.hello is not None
            target = self.target_of(self.hello, "hello")
        tag = f"r{r}{kind[0]}"
        try:
            if a.warmup > 0:
                self.load(target, a.warmup, f"warm{tag}")
            wout = self.root / f"watch-{tag}.json"
            marker = f"probe{tag}x"
            watcher = self.spawn_role("watch", target, wout, "--duration", str(a.duration + 30), "--marker", marker)
            self.wait_line(watcher, wout.with_suffix(".log"), "watching")
            pout = self.root / f"probe-{tag}.json"
            probe = self.spawn_role("probe", target, pout, "--duration", str(max(1.0, a.duration - 1)),
                                    "--rate", str(PROBE_RATE), "--prefix", marker)
            cpu0 = proc_cpu_seconds(target.pid)
            mach = MachineCpu()
            res = self.load(target, a.duration, f"w{tag}")
            res["server_cpu"] = (proc_cpu_seconds(target.pid) - cpu0) / res["wall"]
            res["machine_busy"] = mach.busy()
            wait_rusage(probe, timeout=60)
            t_stop = time.monotonic()
            watcher.send_signal(signal.SIGUSR1)
            wcpu = wait_rusage(watcher, timeout=a.duration + 60)
            wwall = time.monotonic() - t_stop + res["wall"]
            pr = orjson.loads(pout.read_bytes())
            wr = orjson.loads(wout.read_bytes())
            res["watch_error"] = wr.get("error")
            seen = wr.get("seen", {})
            lower, upper, undelivered, probe_non201 = [], [], 0, 0
            probe_lat = []
            for name, (sent, acked, status) in pr["probes"].items():
                if status != 201:
                    probe_non201 += 1
                    continue
                probe_lat.append(acked - sent)
                if name not in seen:
                    undelivered += 1
                    continue
                w = seen[name][0]
                lower.append(max(0.0, w - acked))
                upper.append(w - sent)
            res.update({
                "w_lb_p50": percentile(lower, 50) * 1e3, "w_lb_p99": percentile(lower, 99) * 1e3,
                "w_ub_p50": percentile(upper, 50) * 1e3, "w_ub_p99": percentile(upper, 99) * 1e3,
                "w_ub_max": max(upper, default=float("nan")) * 1e3,
                "probe_n": len(pr["probes"]), "probe_non201": probe_non201, "probe_errors": pr["errors"],
                "probe_p99": percentile(probe_lat, 99) * 1e3, "undelivered": undelivered,
                "watch_types": wr.get("types", {}), "watch_ended": wr.get("ended"), "watch_cpu": wcpu / wwall,
                "watch_errors": wr.get("errors", []),
            })
            if srv is not None:
                res["server_watch"] = self.watch_delivery(target)
                # every create after the watch's resourceVersion must have reached the watch
                final = len(self.pod_names(target))
                res["expected_added"] = final - wr.get("initial", 0)
                res["pods_final"] = final
            return res
        finally:
            if srv is not None:
                self.stop_server(srv, f"create round {r} (its watch client had left)")
                self.note_server_log(srv, f"create round {r}")

    def creates(self) -> dict[str, list[dict[str, Any]]]:
        a = self.args
        gen = f"wrk -t{WRK_THREADS} -c{CONNECTIONS}" if self.wrk else f"Python creators (2 processes, {CONNECTIONS} connections)"
        say(f"\n[1+2] creates over HTTPS: {gen}, {a.rounds} rounds x {a.duration:.0f} s (+{a.warmup:.0f} s warm-up), "
            f"watch probe {PROBE_RATE:.0f} pods/s")
        results: dict[str, list[dict[str, Any]]] = {"hello": [], "tuik8s": []}
        for r in range(1, a.rounds + 1):
            order = ["hello", "tuik8s"] if r % 2 else ["tuik8s", "hello"]
            for kind in order:
                res = self.round(r, kind)
                results[kind].append(res)
                progress(f"round {r} {kind:6}: {res['ok_per_s']:8.0f} 201/s  p99 {res['p99_ms']:6.1f} ms  "
                         f"watch p99 {res['w_lb_p99']:.1f}..{res['w_ub_p99']:.1f} ms")
        return results

    # =====================================================================================
    # 3: LIST and memory
    # =====================================================================================

    def lists(self) -> dict[str, Any]:
        a = self.args
        say(f"\n[3] LIST of {a.pods:,} pods, memory")
        srv = self.new_server("list")
        target = self.target_of(srv, "tuik8s")
        assert self.hello is not None
        hello = self.target_of(self.hello, "hello")
        out: dict[str, Any] = {}
        try:
            time.sleep(0.5)
            out["rss_empty"] = srv.memory_kb()
            count, secs = self.populate(target, a.pods)
            out["count"] = count
            progress(f"populated {count:,} pods in {secs:.1f} s with Python creators")
            time.sleep(1.0)
            out["rss_populated"] = srv.memory_kb()

            cont_re = re.compile(rb'"continue":"([^"]+)"')

            async def timed_get(s: Any, url: str, **kw: Any) -> tuple[float, bytes, int]:
                t0 = time.perf_counter()
                async with s.get(url, **kw) as r:
                    body = await r.read()
                return time.perf_counter() - t0, body, r.status

            async def table_pass(s: Any, url: str) -> tuple[float, list[int], int]:
                """All pages the way kubectl asks for them; returns (seconds, page sizes, rows)."""
                sizes, rows, cont = [], 0, None
                t0 = time.perf_counter()
                while True:
                    params = {"limit": "500", **({"continue": cont} if cont else {})}
                    async with s.get(url + ALL_PODS, params=params, headers={"Accept": TABLE_ACCEPT}) as r:
                        body = await r.read()
                    sizes.append(len(body))
                    rows += body.count(b'"cells":')
                    m = cont_re.search(body)
                    if not m:
                        break
                    cont = m.group(1).decode()
                return time.perf_counter() - t0, sizes, rows

            async def blob_pass(s: Any, url: str, sizes: list[int]) -> float:
                t0 = time.perf_counter()
                for n in sizes:
                    async with s.get(url + "/blob", params={"size": str(n)}) as r:
                        await r.read()
                return time.perf_counter() - t0

            async def measure(restarted: bool = False) -> dict[str, Any]:
                """tuik8s and hello requests alternate, so machine noise hits both alike."""
                async with api_session(target.token, str(target.ca_file), 2) as ts, \
                        api_session(hello.token, str(hello.ca_file), 2) as hs:
                    res: dict[str, Any] = {}
                    # the first LIST after writes also sorts the keys again: timed apart as "cold"
                    res["cold"], body, status = await timed_get(ts, target.url + ALL_PODS)
                    res["size"] = len(body)
                    res["items"] = len(orjson.loads(body).get("items") or []) if status == 200 else -status
                    del body
                    await blob_pass(hs, hello.url, [res["size"]])  # hello makes its body once
                    res["json"], res["json_base"] = [], []
                    for _ in range(a.list_repeats):
                        res["json"].append((await timed_get(ts, target.url + ALL_PODS))[0])
                        res["json_base"].append(await blob_pass(hs, hello.url, [res["size"]]))
                    if restarted:
                        return res
                    res["table"], res["table_base"] = [], []
                    for i in range(a.list_repeats):
                        secs, sizes, rows = await table_pass(ts, target.url)
                        res["table"].append(secs)
                        if i == 0:
                            res["table_sizes"], res["rows"] = sizes, rows
                            await blob_pass(hs, hello.url, sizes)  # warm-up
                        res["table_base"].append(await blob_pass(hs, hello.url, sizes))
                    return res

            m = asyncio.run(measure())
            out["json"] = {"times": m["json"], "size": m["size"], "items": m["items"], "cold": m["cold"]}
            out["json_base"] = m["json_base"]
            out["table"] = {"times": m["table"], "sizes": m["table_sizes"], "rows": m["rows"]}
            out["table_base"] = m["table_base"]
            progress(f"JSON LIST: {out['json']['items']:,} items, {out['json']['size'] / 1e6:.1f} MB, "
                     f"median {median(out['json']['times']):.3f} s (hello, same bytes: {median(m['json_base']):.3f} s)")
            progress(f"Table LIST: {out['table']['rows']:,} rows in {len(out['table']['sizes'])} pages of 500, "
                     f"median {median(out['table']['times']):.3f} s (hello, same pages: {median(m['table_base']):.3f} s)")
            out["kubectl"] = self.kubectl(srv)
            out["rss_after_lists"] = srv.memory_kb()
            # the same pods loaded from disk by a restarted server
            self.stop_server(srv, "LIST, before the restart")
            srv.start()
            time.sleep(1.0)
            out["restart_s"] = srv.ready_seconds
            out["rss_restarted"] = srv.memory_kb()
            target = self.target_of(srv, "tuik8s")
            r2 = asyncio.run(measure(restarted=True))
            out["json_restarted"] = {"times": r2["json"], "cold": r2["cold"], "base": r2["json_base"]}
            out["rss_restarted_after_list"] = srv.memory_kb()
            return out
        finally:
            self.stop_server(srv, "LIST, at the end")
            self.note_server_log(srv, "LIST")

    def kubectl(self, srv: TuikServer) -> dict[str, Any]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            return {"error": "kubectl is not on PATH"}
        cache = self.root / "kubectl-cache"
        base = [kubectl, "--kubeconfig", str(srv.data_dir / "kubeconfig"), "--cache-dir", str(cache)]

        def run(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
            t0 = time.perf_counter()
            p = subprocess.run(base + argv, capture_output=True, timeout=120)
            return time.perf_counter() - t0, p

        _, warm = run(["get", "pods", "-A"])  # fills the discovery cache
        if warm.returncode != 0:
            return {"error": warm.stderr.decode(errors="replace").strip().splitlines()[-1:]}
        rows = len(warm.stdout.splitlines()) - 1
        pods = [run(["get", "pods", "-A"])[0] for _ in range(self.args.list_repeats)]
        floor = [run(["get", "namespaces"])[0] for _ in range(self.args.list_repeats)]
        # kubectl's own log of each round trip (time to the response headers)
        wall6, verbose = run(["get", "pods", "-A", "-v=6"])
        trips = [int(m.group(1)) / 1e3 for m in re.finditer(
            rb"GET \S+/pods\?\S* 200 OK in (\d+) milliseconds", verbose.stderr)]
        progress(f"kubectl get pods -A: {rows:,} rows, median {median(pods):.2f} s (kubectl get ns: {median(floor):.2f} s); "
                 f"with -v=6: {len(trips)} page round trips sum to {sum(trips):.2f} s of {wall6:.2f} s")
        return {"times": pods, "floor": floor, "rows": rows, "trips": trips, "wall6": wall6}

    # =====================================================================================
    # 4: kill -9
    # =====================================================================================

    def durability(self) -> list[dict[str, Any]]:
        a = self.args
        say(f"\n[4] kill -9 under load: {CONNECTIONS} Python creators, SIGKILL at a random 2-6 s, restart, list; "
            f"{a.kill_repeats} time(s)")
        rng = random.Random()
        out = []
        for i in range(1, a.kill_repeats + 1):
            srv = self.new_server(f"kill{i}")
            target = self.target_of(srv, "tuik8s")
            try:
                lout = self.root / f"kill-{i}.json"
                loader = self.spawn_role("load", target, lout, "--duration", "60", "--conc", str(CONNECTIONS),
                                         "--prefix", f"k{i}", "--until-failure")
                self.wait_line(loader, lout.with_suffix(".log"), "go")
                at = rng.uniform(2.0, 6.0)
                time.sleep(at)
                srv.kill9()
                wait_rusage(loader, timeout=120)
                res = orjson.loads(lout.read_bytes())
                srv.start()
                target = self.target_of(srv, "tuik8s")
                names = set(self.pod_names(target))
                acked, inflight = set(res["acked"]), set(res["inflight"])

                async def one_more(s: Any, url: str, i: int = i) -> int:
                    async with s.post(url + PODS, data=orjson.dumps(pod(f"after-restart-{i}")),
                                      headers={"Content-Type": "application/json"}) as r:
                        return int(r.status)

                row = {
                    "kill_at": at, "acked": len(acked), "found": len(acked & names), "missing": sorted(acked - names),
                    "inflight": len(inflight), "inflight_found": len(inflight & names),
                    "unexpected": sorted(names - acked - inflight), "restart_s": srv.ready_seconds,
                    "codes": res["codes"], "errors": res["errors"], "samples": res.get("samples", {}),
                    "post_after_restart": self.http(one_more, target),
                }
                out.append(row)
                progress(f"kill {i}: at {at:.2f} s, acknowledged {row['acked']:,}, found {row['found']:,}, "
                         f"missing {len(row['missing'])}, in flight {row['inflight']} ({row['inflight_found']} present), "
                         f"restart {row['restart_s']:.2f} s")
            finally:
                self.stop_server(srv, f"kill run {i}, after the restart")
                self.note_server_log(srv, f"kill run {i}")
        return out

    # =====================================================================================
    # report
    # =====================================================================================

    def row(self, figure: str, value: str, base: str, ratio: str, target: str, met: str) -> None:
        self.rows.append((figure, value, base, ratio, target, met))

    def report(self, creates: dict[str, list[dict[str, Any]]] | None, lists: dict[str, Any] | None,
               kills: list[dict[str, Any]] | None) -> None:
        def yn(ok: bool | None) -> str:
            return "-" if ok is None else ("yes" if ok else "NO")

        def ratio(x: float, y: float) -> str:
            return "-" if not y or math.isnan(x) or math.isnan(y) else f"{x / y:.2f}x"

        if creates and creates["tuik8s"]:
            t, h = creates["tuik8s"], creates["hello"]
            say("\nPer round (creates; watch = probe pods, lower..upper bound of commit->client, ms):")
            say(f"  {'round':5} {'server':6} {'201/s':>7} {'p50ms':>6} {'p99ms':>6} {'p99.9':>6} {'max':>6} "
                f"{'non-201':>8} {'sockerr':>8} {'gen CPU':>7} {'srv CPU':>7} {'busy':>5} {'watch p50':>11} {'watch p99':>11} "
                f"{'undeliv':>7} {'ADDED/expected':>15}")
            for kind, rs in (("hello", h), ("tuik8s", t)):
                for r, x in enumerate(rs, 1):
                    exp = x.get("expected_added")
                    added = x["watch_types"].get("ADDED", 0)
                    ae = f"{added}/{exp}" if exp is not None else f"{added}/-"
                    say(f"  {r:5} {kind:6} {x['ok_per_s']:7.0f} {x['p50_ms']:6.1f} {x['p99_ms']:6.1f} {x['p999_ms']:6.1f} "
                        f"{x['max_ms']:6.0f} {sum(x['non201'].values()):8} {sum(x['sock_errors'].values()):8} "
                        f"{x['gen_cpu'] * 100:6.0f}% {x['server_cpu'] * 100:6.0f}% {x['machine_busy'] * 100:4.0f}% "
                        f"{x['w_lb_p50']:5.1f}..{x['w_ub_p50']:<5.1f} {x['w_lb_p99']:5.1f}..{x['w_ub_p99']:<5.1f} "
                        f"{x['undelivered']:7} {ae:>15}")
            say("  gen CPU = the load generator's CPU time / wall time (100% = one core; it has "
                f"{WRK_THREADS if self.wrk else 2} {'threads' if self.wrk else 'processes'}); srv CPU = the server process "
                "(all threads); busy = whole machine (2 cores).")
            gmax = max(x["gen_cpu"] for x in t)
            smed = median([x["server_cpu"] for x in t])
            say(f"  Generator check: during tuik8s rounds the generator used at most {gmax * 100:.0f}% of one core "
                f"({'it is not the limit' if gmax < 0.5 else 'CHECK: it may be part of the limit'}); the server process "
                f"used a median {smed * 100:.0f}% of one core{' (its event loop is saturated: the server is the limit)' if smed > 0.85 else ''}; "
                f"against hello, the same generator reached {median([x['ok_per_s'] for x in h]):,.0f} 201/s.")
            say(f"  Watch probe: {sum(x['probe_n'] for x in t)} probe creates on tuik8s; their own create latency "
                f"(send -> 201) had p99 {median([x['probe_p99'] for x in t]):.1f} ms (hello {median([x['probe_p99'] for x in h]):.1f} ms), "
                "which is what separates the two bounds below.")
            for kind, rs in (("hello", h), ("tuik8s", t)):
                for r, x in enumerate(rs, 1):
                    if x["non201"] or x["sock_errors"] or x["probe_non201"] or x["probe_errors"] or x["watch_error"] or x["watch_errors"]:
                        say(f"  ! round {r} {kind}: non-201 {x['non201']} socket errors {x['sock_errors']} "
                            f"probe non-201 {x['probe_non201']} probe errors {x['probe_errors']} "
                            f"watch {x['watch_error'] or ''}{x['watch_errors'] or ''}")
                    if x["watch_ended"] != "deadline":
                        say(f"  ! round {r} {kind}: watch ended early: {x['watch_ended']}")

            def med(rs: list[dict[str, Any]], k: str) -> float:
                return median([x[k] for x in rs])

            def rmed(k: str) -> float:
                return median([a[k] / b[k] for a, b in zip(t, h, strict=False) if b[k]])

            thr = med(t, "ok_per_s")
            self.row("creates/s (201 only), 50 conns", f"{thr:,.0f}", f"{med(h, 'ok_per_s'):,.0f}",
                     f"{rmed('ok_per_s'):.3f}x", f">= {TARGETS['creates_per_s']:,.0f}", yn(thr >= TARGETS["creates_per_s"]))
            p99 = med(t, "p99_ms")
            self.row("create latency p99", f"{p99:.1f} ms", f"{med(h, 'p99_ms'):.1f} ms", f"{rmed('p99_ms'):.1f}x",
                     f"<= {TARGETS['create_p99_ms']:.0f} ms", yn(p99 <= TARGETS["create_p99_ms"]))
            self.row("create latency p50", f"{med(t, 'p50_ms'):.1f} ms", f"{med(h, 'p50_ms'):.1f} ms", f"{rmed('p50_ms'):.1f}x", "-", "-")
            bad = sum(sum(x["non201"].values()) + sum(x["sock_errors"].values()) for x in t)
            self.row("non-201 + socket errors (all rounds)", f"{bad}",
                     f"{sum(sum(x['non201'].values()) + sum(x['sock_errors'].values()) for x in h)}", "-", "0", yn(bad == 0))
            lb, ub = med(t, "w_lb_p99"), med(t, "w_ub_p99")
            self.row("watch p99, lower bound (watch - 201)", f"{lb:.1f} ms", f"{med(h, 'w_lb_p99'):.1f} ms",
                     ratio(lb, med(h, "w_lb_p99")), f"<= {TARGETS['watch_p99_ms']:.0f} ms", yn(lb <= TARGETS["watch_p99_ms"]) + " (bound)")
            self.row("watch p99, upper bound (watch - send)", f"{ub:.1f} ms", f"{med(h, 'w_ub_p99'):.1f} ms",
                     ratio(ub, med(h, "w_ub_p99")), f"<= {TARGETS['watch_p99_ms']:.0f} ms", yn(ub <= TARGETS["watch_p99_ms"]) + " (bound)")
            verdict = "yes" if ub <= TARGETS["watch_p99_ms"] else ("NO" if lb > TARGETS["watch_p99_ms"] else "undecided")
            self.row("watch p99 commit->client lies in", f"[{lb:.1f}, {ub:.1f}] ms", "-", "-",
                     f"<= {TARGETS['watch_p99_ms']:.0f} ms", verdict)
            sw = [x["server_watch"] for x in t if x.get("server_watch", {}).get("events")]
            if sw:
                within = statistics.median(x["within_50ms"] for x in sw)
                p99b = statistics.median(x["p99_bucket_ms"] for x in sw)
                self.row("watch commit->connection, server histogram", f"{100 * within:.2f}% <= 50 ms",
                         "-", "-", "p99 <= 50 ms", yn(within >= 0.99))
                self.row("  its p99 bucket (upper edge)", f"<= {p99b:g} ms", "-", "-", "-", "-")
            self.row("watch p50 lower..upper", f"{med(t, 'w_lb_p50'):.1f}..{med(t, 'w_ub_p50'):.1f} ms",
                     f"{med(h, 'w_lb_p50'):.1f}..{med(h, 'w_ub_p50'):.1f} ms", "-", "-", "-")
            missed = sum(x["undelivered"] for x in t)
            gaps = sum(1 for x in t if x.get("expected_added") is not None and x["watch_types"].get("ADDED", 0) != x["expected_added"])
            self.row("watch: probe pods not delivered / rounds ADDED != created", f"{missed} / {gaps}", "-", "-", "0 / 0",
                     yn(missed == 0 and gaps == 0))
        if lists:
            n = lists.get("count", 0)
            j, jb = median(lists["json"]["times"]), median(lists["json_base"])
            self.row(f"LIST {n:,} pods, JSON ({lists['json']['size'] / 1e6:.1f} MB)", f"{j:.3f} s", f"{jb:.3f} s",
                     ratio(j, jb), f"<= {TARGETS['list_s']:.0f} s", yn(j <= TARGETS["list_s"]))
            tt, tb = median(lists["table"]["times"]), median(lists["table_base"])
            self.row(f"LIST as Table, limit=500 x{len(lists['table']['sizes'])} pages", f"{tt:.3f} s", f"{tb:.3f} s",
                     ratio(tt, tb), f"<= {TARGETS['list_s']:.0f} s", yn(tt <= TARGETS["list_s"]))
            k = lists.get("kubectl", {})
            if "times" in k:
                kt, kf = median(k["times"]), median(k["floor"])
                self.row(f"kubectl get pods -A ({k['rows']:,} rows) vs get ns", f"{kt:.2f} s", f"{kf:.2f} s", ratio(kt, kf),
                         f"<= {TARGETS['list_s']:.0f} s", yn(kt <= TARGETS["list_s"]))
            else:
                self.row("kubectl get pods -A", "failed", "-", "-", "-", f"{k.get('error')}")
            rss = lists["rss_after_lists"].get("VmRSS", 0) / 1024
            empty = lists["rss_empty"].get("VmRSS", 0) / 1024
            self.row(f"server RSS, {n:,} pods (after LISTs)", f"{rss:.0f} MB", f"{empty:.0f} MB (empty)", ratio(rss, empty),
                     f"<= {TARGETS['rss_mb']:.0f} MB", yn(rss <= TARGETS["rss_mb"]))
            hwm = lists["rss_after_lists"].get("VmHWM", 0) / 1024
            self.row("server VmHWM (peak RSS)", f"{hwm:.0f} MB", "-", "-", f"<= {TARGETS['rss_mb']:.0f} MB", yn(hwm <= TARGETS["rss_mb"]))
            rr = lists["rss_restarted_after_list"]
            self.row("RSS after restart + LIST (from disk)", f"{rr.get('VmRSS', 0) / 1024:.0f} MB (HWM {rr.get('VmHWM', 0) / 1024:.0f})",
                     "-", "-", f"<= {TARGETS['rss_mb']:.0f} MB", yn(rr.get("VmHWM", 0) / 1024 <= TARGETS["rss_mb"]))
        if kills:
            missing = sum(len(k["missing"]) for k in kills)
            acked = sum(k["acked"] for k in kills)
            self.row(f"kill -9: acknowledged creates missing ({len(kills)} runs)", f"{missing} of {acked:,}", "-", "-", "0",
                     yn(missing == 0))
            unexpected = sum(len(k["unexpected"]) for k in kills)
            self.row("kill -9: pods present never sent", f"{unexpected}", "-", "-", "0", yn(unexpected == 0))

        if lists:
            say("\nLIST details:")
            say(f"  first JSON LIST after the creates (cold): {lists['json']['cold']:.3f} s")
            say(f"  pods: {lists['count']:,}; JSON LIST times {', '.join(f'{x:.3f}' for x in lists['json']['times'])} s "
                f"(hello, same bytes: {', '.join(f'{x:.3f}' for x in lists['json_base'])} s)")
            k = lists.get("kubectl", {})
            if "trips" in k:
                say(f"  kubectl get pods -A: {', '.join(f'{x:.2f}' for x in k['times'])} s; with -v=6 kubectl logged "
                    f"{len(k['trips'])} page round trips summing to {sum(k['trips']):.2f} s (server time to headers) "
                    f"of {k['wall6']:.2f} s wall: the rest is kubectl decoding and printing {k['rows']:,} rows")
            say(f"  Table pages: {len(lists['table']['sizes'])} x ~{median(lists['table']['sizes']) / 1e3:.0f} KB, {lists['table']['rows']:,} rows; "
                f"times {', '.join(f'{x:.3f}' for x in lists['table']['times'])} s")
            for key, label in (("rss_empty", "empty server"), ("rss_populated", "after populating"),
                               ("rss_after_lists", "after the LISTs"), ("rss_restarted", "restarted (loaded from disk)"),
                               ("rss_restarted_after_list", "restarted + JSON LIST")):
                m = lists[key]
                say(f"  RSS {label:30}: VmRSS {m.get('VmRSS', 0) / 1024:6.0f} MB, VmHWM {m.get('VmHWM', 0) / 1024:6.0f} MB")
            say(f"  restart with {lists['count']:,} pods: ready in {lists['restart_s']:.2f} s; JSON LIST after restart "
                f"first {lists['json_restarted']['cold']:.3f} s, then median {median(lists['json_restarted']['times']):.3f} s "
                f"(hello {median(lists['json_restarted']['base']):.3f} s)")
        if kills:
            say("\nkill -9 details:")
            for i, k in enumerate(kills, 1):
                say(f"  run {i}: killed at {k['kill_at']:.2f} s; acknowledged {k['acked']:,}, found {k['found']:,}, missing "
                    f"{len(k['missing'])}{' ' + str(k['missing'][:5]) if k['missing'] else ''}; in flight (unacknowledged) "
                    f"{k['inflight']}, of which present {k['inflight_found']}; present but never sent {len(k['unexpected'])}; "
                    f"restart {k['restart_s']:.2f} s; POST after restart -> {k['post_after_restart']}; "
                    f"codes {k['codes']}; client errors {k['errors']}")
                for code, sample in k["samples"].items():
                    say(f"    ! {code}: {sample[:200]}")

        say("\nSummary (medians over rounds; ratio = tuik8s / baseline, for creates the median of per-round ratios)")
        head = ("figure", "tuik8s", "baseline", "ratio", "target", "met?")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(6)]
        say("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        say("  " + "  ".join("-" * w for w in widths))
        for r in self.rows:
            say("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        say("\nHow to read the watch figures: the commit happens after the request is sent and before its 201 "
            "arrives, so (watch receipt - 201 receipt, clamped at 0) is a LOWER bound and (watch receipt - send) "
            "an UPPER bound of commit->client delivery. Baselines: creates and watch = the hello server "
            "(201 + echo, and the same body streamed to a watcher); LIST = hello serving the same bytes "
            "(for Table, the same page sizes); kubectl = `kubectl get ns` against the same server (kubectl's floor); "
            "RSS = the same server, empty.")
        if self.slow_stops:
            say(f"\n! The server did not exit within 3 s of SIGTERM in {len(self.slow_stops)} of {self.stops} stops "
                "(it was then killed with SIGKILL): " + "; ".join(self.slow_stops))
        if self.server_problems:
            say("\nServer logs:")
            for p in self.server_problems:
                say(f"  ! {p}")
        else:
            say("\nServer logs: nothing on stderr in any phase.")


def main() -> int:
    if "--role" in sys.argv:
        return run_role(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run in about a minute (short rounds, one kill)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float, help="seconds per create round")
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--pods", type=int, default=10_000, help="pods for the LIST and memory figures")
    ap.add_argument("--list-repeats", type=int)
    ap.add_argument("--kill-repeats", type=int)
    ap.add_argument("--only", choices=["creates", "list", "kill"], action="append", help="run only these sections")
    a = ap.parse_args()
    q = a.quick
    a.rounds = a.rounds or (2 if q else 3)
    a.duration = a.duration or (3.0 if q else 10.0)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if q else 2.0)
    a.list_repeats = a.list_repeats or (3 if q else 5)
    a.kill_repeats = a.kill_repeats or (1 if q else 3)
    only = set(a.only or ["creates", "list", "kill"])

    REAPER.install()
    bench = Bench(a)
    say(f"tuik8s API server benchmark ({'quick' if q else 'full'}): {os.cpu_count()} CPUs; before: {uptime_line()}")
    if bench.wrk is None:
        say("wrk is not installed (apt-get install -y wrk): using Python creators in 2 processes as the load generator")
    creates = lists = kills = None
    try:
        try:
            first = bench.new_server("pki")  # makes the TLS material every server of this run shares
            first.stop()
        except ServerStartError as e:
            say(f"cannot start the server: {e}")
            return 2
        assert bench.pki is not None
        bench.hello = HelloServer(bench.pki / "apiserver.crt", bench.pki / "apiserver.key", bench.root / "hello").start()
        t0 = time.monotonic()
        if "creates" in only:
            creates = bench.creates()
            progress(f"section took {time.monotonic() - t0:.0f} s; {uptime_line()}")
        if "list" in only:
            t1 = time.monotonic()
            lists = bench.lists()
            progress(f"section took {time.monotonic() - t1:.0f} s; {uptime_line()}")
        if "kill" in only:
            t1 = time.monotonic()
            kills = bench.durability()
            progress(f"section took {time.monotonic() - t1:.0f} s; {uptime_line()}")
        say(f"\ntotal {time.monotonic() - t0:.0f} s")
        bench.report(creates, lists, kills)
    except KeyboardInterrupt:
        say("\ninterrupted: stopping every process this run started and removing its temp dirs")
        return 130
    except ServerStartError as e:
        say(f"server failed: {e}")
        return 2
    finally:
        say(f"after: {uptime_line()}")
        REAPER.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
