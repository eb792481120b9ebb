"""Metrics benchmark: what resource metrics cost the control plane, with hollow nodes.

    .venv/bin/python bench/metrics.py [--nodes 200] [--pods 1000] [--window 30] [--rounds 1]

Each round runs three servers one after the other, each with the same hollow nodes
(`tuik8s hollow`, synthetic usage served on loopback) and the same Deployment of N pods
spread over them, and measures the server's CPU over an idle window:

- baseline: `--metric-resolution 0` (no scraping at all);
- lab: scrapes every 5 s (the default);
- upstream: every 15 s (metrics-server's default).

In the lab server it also times the API: `GET /apis/metrics.k8s.io/v1beta1/pods` (what
`kubectl top pods -A` asks) beside `GET /api/v1/pods` of the same pods (the baseline:
the store's own list), medians of 20 requests each. Everything stays on 127.0.0.1; the
processes and temp dirs are removed at exit (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _harness import (
    PYTHON,
    REAPER,
    REPO,
    TuikServer,
    client_ssl,
    median,
    proc_cpu_seconds,
    uptime_line,
)

VARIANTS = (("baseline (no scraping)", "0"), ("lab (5 s)", "5"), ("upstream (15 s)", "15"))


def say(msg: str = "") -> None:
    print(msg, flush=True)


def kubectl(server: TuikServer, *args: str, input: str | None = None) -> str:
    r = subprocess.run(["kubectl", "--kubeconfig", str(server.data_dir / "kubeconfig"), *args],
                       capture_output=True, text=True, input=input, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def get(server: TuikServer, ctx: ssl.SSLContext, path: str) -> tuple[float, int]:
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server.token}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
        body = resp.read()
    return time.perf_counter() - t0, len(json.loads(body).get("items") or [])


def deployment(pods: int) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "load"},
        "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "load"}}, "template": {
            "metadata": {"labels": {"app": "load"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m"}}}]}}},
    })


def run_variant(base: Path, name: str, resolution: str, args: argparse.Namespace) -> dict[str, float]:
    server = TuikServer(base / f"data-{resolution}", flags=("--metric-resolution", resolution)).start()
    kubeconfig = server.data_dir / "kubeconfig"
    log = open(base / f"hollow-{resolution}.log", "wb")  # noqa: SIM115 - closed by the reaper's exit
    hollow = REAPER.spawn([PYTHON, "-m", "tuik8s.nodes.hollow", "--kubeconfig", str(kubeconfig),
                           "--nodes", str(args.nodes), "--no-events"], stdout=log, stderr=subprocess.STDOUT,
                          cwd=str(REPO))
    try:
        deadline = time.monotonic() + 120
        while "registered" not in (base / f"hollow-{resolution}.log").read_text(errors="replace"):
            if hollow.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("tuik8s hollow did not start")
            time.sleep(0.2)
        kubectl(server, "apply", "-f", "-", input=deployment(args.pods))
        kubectl(server, "rollout", "status", "deployment/load", "--timeout=300s")
        time.sleep(args.settle)
        s0, h0, t0 = server.cpu_seconds(), proc_cpu_seconds(hollow.pid), time.monotonic()
        time.sleep(args.window)
        wall = time.monotonic() - t0
        out = {"server": (server.cpu_seconds() - s0) / wall, "hollow": (proc_cpu_seconds(hollow.pid) - h0) / wall}
        if resolution == "5":
            ctx = client_ssl(server.ca_file)
            metrics = [get(server, ctx, "/apis/metrics.k8s.io/v1beta1/pods") for _ in range(args.requests)]
            plain = [get(server, ctx, "/api/v1/pods") for _ in range(args.requests)]
            out["metrics_ms"] = median([m[0] for m in metrics]) * 1000
            out["list_ms"] = median([p[0] for p in plain]) * 1000
            out["metrics_items"] = metrics[-1][1]
            out["list_items"] = plain[-1][1]
        say(f"  {name:<24} server {out['server'] * 100:5.1f}% of a core, hollow {out['hollow'] * 100:5.1f}%")
        return out
    finally:
        REAPER.stop(hollow)
        server.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--pods", type=int, default=1000)
    p.add_argument("--window", type=float, default=30.0, help="seconds of idle CPU measured")
    p.add_argument("--settle", type=float, default=20.0, help="seconds after the rollout before measuring")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--requests", type=int, default=20)
    args = p.parse_args()
    REAPER.install()
    base = REAPER.mkdtemp("bench-metrics-")
    say(f"metrics bench: {args.nodes} hollow nodes, {args.pods} pods, {args.window:.0f} s windows; {uptime_line()}")
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in VARIANTS}
    for r in range(args.rounds):
        say(f"round {r + 1}")
        for name, resolution in VARIANTS:
            results[name].append(run_variant(base / f"r{r}", name, resolution, args))
    say()
    say("| variant | server CPU (median) | x baseline | hollow CPU |")
    say("| --- | --- | --- | --- |")
    base_cpu = median([x["server"] for x in results[VARIANTS[0][0]]])
    for name, _ in VARIANTS:
        cpu = median([x["server"] for x in results[name]])
        hollow = median([x["hollow"] for x in results[name]])
        say(f"| {name} | {cpu * 100:.1f}% | {cpu / base_cpu if base_cpu else float('nan'):.2f} | {hollow * 100:.1f}% |")
    lab = results[VARIANTS[1][0]]
    m, lst = median([x["metrics_ms"] for x in lab]), median([x["list_ms"] for x in lab])
    say()
    say(f"GET metrics.k8s.io pods ({int(lab[-1]['metrics_items'])} items): {m:.0f} ms median; "
        f"GET /api/v1/pods ({int(lab[-1]['list_items'])} items): {lst:.0f} ms; ratio {m / lst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
