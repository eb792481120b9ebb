"""Sustained write load: 50 concurrent writers for 5 minutes against a full control plane.

    .venv/bin/python bench/load.py                     # 50 writers, 300 s (about 6 minutes)
    .venv/bin/python bench/load.py --duration 30       # a quick look

Each writer owns its objects (ConfigMaps in namespace `load`), so no write of it should
ever fail: it creates one, replaces it with the resourceVersion it got (a PUT), keeps the
last `--keep` alive and deletes the oldest, and records every acknowledged result (the
data and resourceVersion of each object it last wrote, and every name whose DELETE was
acknowledged). Writers run in `--procs` processes so the client side is not one core.

At the end every acknowledged write is read back with one LIST: an acknowledged object
that is missing, or holds older data than its last acknowledged write, is *lost*; an
acknowledged delete whose object is still there is *resurrected*. Both must be 0.

Printed: errors (non-2xx and socket errors) by kind, writes/s, latency p50/p99 per verb
beside issue 2's targets (create p99 <= 100 ms), the server's RSS every `--sample` seconds
(the curve must flatten: the live set is bounded), and the baseline measured in the same
run: the same writers for `--baseline` seconds against the hello server (a minimal aiohttp
HTTPS app with the same TLS material), which is the client's and TLS's share of the cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    PYTHON,
    REAPER,
    HelloServer,
    MachineCpu,
    TuikServer,
    client_ssl,
    median,
    percentile,
    uptime_line,
)

NAMESPACE = "load"
TARGET_P99_MS = 100.0  # issue 2: create p99 <= 100 ms


# ---- one writer process ---------------------------------------------------------------------


async def writer(i: int, args: argparse.Namespace, session: Any, out: dict[str, Any], deadline: float) -> None:
    base = f"{args.url}/api/v1/namespaces/{NAMESPACE}/configmaps"
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    live: deque[str] = deque()
    k = 0

    async def call(verb: str, method: str, url: str, body: Any = None) -> dict[str, Any] | None:
        if args.hello:
            method = "POST"  # the hello server answers POST only: same requests, same bodies
        t0 = time.monotonic()
        try:
            async with session.request(method, url, json=body, headers=headers) as resp:
                data = await resp.read()
                ms = (time.monotonic() - t0) * 1000
                if resp.status >= 300:
                    out["errors"][f"{verb} {resp.status}"] = out["errors"].get(f"{verb} {resp.status}", 0) + 1
                    return None
                out["lat"].setdefault(verb, []).append(round(ms, 2))
                return json.loads(data) if data else {}
        except Exception as e:  # noqa: BLE001 - counted, the writer goes on
            out["errors"][f"{verb} {type(e).__name__}"] = out["errors"].get(f"{verb} {type(e).__name__}", 0) + 1
            return None

    while time.monotonic() < deadline:
        k += 1
        name = f"w{args.proc_id}-{i}-{k}"
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "0", "pad": "x" * 512}}
        created = await call("create", "POST", base, obj)
        if created is None:
            continue
        created.setdefault("metadata", {}).setdefault("resourceVersion", "0")
        out["acked"][name] = ["0", created["metadata"]["resourceVersion"]]
        created["data"]["v"] = "1"
        updated = await call("update", "PUT", f"{base}/{name}", created)
        if updated is not None:
            out["acked"][name] = ["1", (updated.get("metadata") or {}).get("resourceVersion", "0")]
        live.append(name)
        if len(live) > args.keep:
            old = live.popleft()
            if await call("delete", "DELETE", f"{base}/{old}") is not None:
                out["acked"][old] = None


async def writer_main(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    out: dict[str, Any] = {"lat": {}, "errors": {}, "acked": {}}
    connector = aiohttp.TCPConnector(ssl=client_ssl(Path(args.ca)), limit=args.writers)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        deadline = time.monotonic() + args.duration
        await asyncio.gather(*(writer(i, args, session, out, deadline) for i in range(args.writers)))
    return out


# ---- the run ---------------------------------------------------------------------------------


def run_writers(url: str, token: str, ca: Path, args: argparse.Namespace, duration: float, tmp: Path, tag: str,
                sample: Any = None) -> dict[str, Any]:
    per = [args.writers // args.procs + (1 if p < args.writers % args.procs else 0) for p in range(args.procs)]
    procs = []
    for p, n in enumerate(per):
        out = tmp / f"{tag}-{p}.json"
        procs.append((REAPER.spawn([
            PYTHON, __file__, "--role", "writer", "--url", url, "--token", token, "--ca", str(ca),
            "--writers", str(n), "--duration", str(duration), "--proc-id", f"{tag}{p}", "--keep", str(args.keep),
            "--out", str(out), *(["--hello"] if tag == "hello" else []),
        ], stdin=subprocess.DEVNULL), out))
    t0 = time.monotonic()
    while any(p.poll() is None for p, _ in procs):
        if sample is not None:
            sample(time.monotonic() - t0)
        time.sleep(0.5)
    wall = time.monotonic() - t0
    merged: dict[str, Any] = {"lat": {}, "errors": {}, "acked": {}, "wall": wall}
    for p, out in procs:
        REAPER.procs.remove(p) if p in REAPER.procs else None
        if not out.exists():
            merged["errors"]["writer process died"] = merged["errors"].get("writer process died", 0) + 1
            continue
        part = json.loads(out.read_text())
        for verb, values in part["lat"].items():
            merged["lat"].setdefault(verb, []).extend(values)
        for kind, n in part["errors"].items():
            merged["errors"][kind] = merged["errors"].get(kind, 0) + n
        merged["acked"].update(part["acked"])
    return merged


def read_back(server: TuikServer, acked: dict[str, Any]) -> tuple[int, int, int]:
    """(lost, resurrected, checked) from one LIST of the namespace."""
    import urllib.request

    req = urllib.request.Request(f"{server.url}/api/v1/namespaces/{NAMESPACE}/configmaps",
                                 headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(req, context=client_ssl(server.ca_file), timeout=120) as resp:
        items = {o["metadata"]["name"]: o for o in json.loads(resp.read())["items"]}
    lost = resurrected = 0
    for name, state in acked.items():
        obj = items.get(name)
        if state is None:
            resurrected += obj is not None
        elif obj is None or int(obj["metadata"]["resourceVersion"]) < int(state[1]) or obj["data"]["v"] < state[0]:
            lost += 1
    return lost, resurrected, len(acked)


def create_namespace(server: TuikServer) -> None:
    import urllib.request

    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}).encode()
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces", data=body, method="POST", headers={
        "Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req, context=client_ssl(server.ca_file), timeout=30).read()


def summary(name: str, res: dict[str, Any]) -> dict[str, Any]:
    ops = sum(len(v) for v in res["lat"].values())
    row: dict[str, Any] = {"name": name, "ops": ops, "rate": ops / res["wall"], "errors": sum(res["errors"].values())}
    for verb in ("create", "update", "delete"):
        values = res["lat"].get(verb) or [0.0]
        row[verb] = (percentile(values, 50), percentile(values, 99))
    return row


def print_row(row: dict[str, Any]) -> None:
    cells = "  ".join(f"{v} p50 {row[v][0]:6.1f} p99 {row[v][1]:7.1f} ms" for v in ("create", "update", "delete"))
    print(f"{row['name']:8} {row['rate']:7.0f} writes/s  errors {row['errors']:<5} {cells}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of load (default: %(default)s)")
    ap.add_argument("--writers", type=int, default=50, help="concurrent writers (default: %(default)s)")
    ap.add_argument("--procs", type=int, default=5, help="writer processes (default: %(default)s)")
    ap.add_argument("--keep", type=int, default=10, help="live objects per writer (default: %(default)s)")
    ap.add_argument("--sample", type=float, default=5.0, help="RSS sample interval, s (default: %(default)s)")
    ap.add_argument("--baseline", type=float, default=30.0, help="seconds against the hello server (default: %(default)s)")
    # the writer processes
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--hello", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--url", "--token", "--ca", "--out", "--proc-id"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "writer":
        args.writers = int(args.writers)
        Path(args.out).write_text(json.dumps(asyncio.run(writer_main(args))))
        return 0

    REAPER.install()
    tmp = REAPER.mkdtemp("tuik8s-bench-load-")
    print(f"bench/load.py: {args.writers} writers in {args.procs} processes, {args.duration:g} s; {uptime_line()}", flush=True)
    server = TuikServer(tmp / "data").start()
    create_namespace(server)
    hello = HelloServer(server.cert_file, server.key_file, tmp / "hello").start()
    base = run_writers(hello.url, server.token, server.ca_file, args, args.baseline, tmp, "hello")
    hello.stop()

    curve: list[tuple[float, int]] = []
    next_at = [0.0]
    cpu = MachineCpu()

    def sample(t: float) -> None:
        if t >= next_at[0]:
            rss = server.memory_kb().get("VmRSS", 0)
            curve.append((t, rss))
            print(f"  t={t:6.1f} s  server RSS {rss / 1024:7.1f} MB  machine busy {cpu.busy() * 100:5.1f}%", flush=True)
            next_at[0] += args.sample

    cpu_before = server.cpu_seconds()
    res = run_writers(server.url, server.token, server.ca_file, args, args.duration, tmp, "tuik8s", sample)
    server_cpu = server.cpu_seconds() - cpu_before
    lost, resurrected, checked = read_back(server, res["acked"])
    rss_end = server.memory_kb()
    server.stop()

    print()
    print("RSS curve (MB):", " ".join(f"{rss / 1024:.0f}" for _, rss in curve), flush=True)
    third = max(1, len(curve) // 3)
    print(f"RSS median of first third {median([r for _, r in curve[:third]]) / 1024:.0f} MB, "
          f"of last third {median([r for _, r in curve[-third:]]) / 1024:.0f} MB, "
          f"peak (VmHWM) {rss_end.get('VmHWM', 0) / 1024:.0f} MB")
    print(f"server CPU {server_cpu:.0f} s over {res['wall']:.0f} s ({server_cpu / res['wall'] * 100:.0f}% of one core)")
    rows = [summary("hello", base), summary("tuik8s", res)]
    for row in rows:
        print_row(row)
    print(f"ratio tuik8s/hello: writes/s {rows[1]['rate'] / max(rows[0]['rate'], 1e-9):.2f}x, "
          f"create p99 {rows[1]['create'][1] / max(rows[0]['create'][1], 1e-9):.1f}x")
    p99 = rows[1]["create"][1]
    print(f"create p99 {p99:.1f} ms vs target {TARGET_P99_MS:.0f} ms: {'met' if p99 <= TARGET_P99_MS else 'NOT met'}")
    if res["errors"]:
        print("errors:", ", ".join(f"{k}: {v}" for k, v in sorted(res["errors"].items())))
    print(f"acknowledged objects checked {checked}: lost {lost}, resurrected {resurrected}")
    return 0 if lost == 0 and resurrected == 0 and not res["errors"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if os.environ.get("BENCH_KEEP") is None:
            REAPER.cleanup()
