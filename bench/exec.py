"""Exec benchmark: round trip of `kubectl exec POD -- true` on the lab, beside `docker exec`.

    .venv/bin/python bench/exec.py [--runs 50] [--keep-lab]

Needs root, a Docker engine and the lab images (`tuik8s lab build`). It starts its own
`tuik8s server` and a one-node lab (cluster "benchexec"), runs a busybox pod, then
alternates, `--runs` times each:

- **kubectl exec**: `kubectl exec POD -- true` with a warm discovery cache: kubectl ->
  API server (HTTPS, WebSocket) -> the node's kubelet (HTTPS, WebSocket) -> the node's
  dockerd (Engine API) -> the container, and the exit status back;
- **baseline**: `docker exec NODE docker exec CONTAINER true`: the same container through
  its node's dockerd, driven by the docker CLI from the host (as a user without Kubernetes
  would reach it).

Prints p50 and p99 of both, and the ratios; the issue's goal is within 2x. The lab and the
server are removed at the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

from _harness import PYTHON, REAPER, REPO, median, percentile

sys.path.insert(0, str(REPO))
from tuik8s.nodes.docker import DockerNodeProvider  # noqa: E402

CLUSTER = "benchexec"
POD = """
apiVersion: v1
kind: Pod
metadata: {name: bench}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: "tuik8s/busybox:latest", imagePullPolicy: IfNotPresent, command: [sleep, "86400"]}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(argv: list[str], env: dict[str, str], timeout: float = 600, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, input=input)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    return result


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    code = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab and server running (for poking)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/exec.py needs root (the lab sets host routes)")
    REAPER.install()
    base = REAPER.mkdtemp("tuik8s-bench-exec-")
    data, home = base / "data", base / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(data / "kubeconfig")}
    net = asyncio.run(DockerNodeProvider(CLUSTER, data).network(allocate=True))
    assert net is not None
    port = free_port()
    log = open(base / "server.log", "wb")  # noqa: SIM115 - the process owns it
    server = REAPER.spawn([PYTHON, "-m", "tuik8s.cli", "server", "--cluster", CLUSTER, "--data-dir", str(data),
                           "--port", str(port), "--host", "0.0.0.0", "--advertise", net.gateway, "--no-user-kubeconfig"],
                          stdout=subprocess.PIPE, stderr=log, cwd=str(REPO), env=env)
    assert server.stdout is not None
    if b"ready" not in server.stdout.readline():
        raise SystemExit(f"tuik8s server did not start; see {base / 'server.log'}")
    lab = [PYTHON, "-m", "tuik8s.nodes.lab"]
    where = ["--cluster", CLUSTER, "--data-dir", str(data)]
    kubectl = ["kubectl", "--kubeconfig", str(data / "kubeconfig"), "--cache-dir", str(home / "kcache")]
    try:
        print("starting a one-node lab ...", flush=True)
        run([*lab, "up", "--nodes", "1", *where], env)
        run([*kubectl, "apply", "-f", "-"], env, input=POD)
        run([*kubectl, "wait", "--for=condition=Ready", "pod/bench", "--timeout=120s"], env)
        pod = json.loads(run([*kubectl, "get", "pod", "bench", "-o", "json"], env).stdout)
        container = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[-1]
        node = f"tuik8s-{CLUSTER}-{pod['spec']['nodeName']}"
        ours = [*kubectl, "exec", "bench", "--", "true"]
        baseline = ["docker", "exec", node, "docker", "exec", container, "true"]
        for _ in range(3):  # warm: kubectl's discovery cache, page cache, connections
            timed(ours, env)
            timed(baseline, env)
        t_ours: list[float] = []
        t_base: list[float] = []
        for _ in range(args.runs):
            t_ours.append(timed(ours, env))
            t_base.append(timed(baseline, env))
        p50o, p99o = median(t_ours) * 1000, percentile(t_ours, 99) * 1000
        p50b, p99b = median(t_base) * 1000, percentile(t_base, 99) * 1000
        print(f"\n{args.runs} runs each, alternating, on a one-node lab\n")
        print(f"{'':44} {'p50 ms':>8} {'p99 ms':>8}")
        print(f"{'kubectl exec bench -- true':44} {p50o:8.1f} {p99o:8.1f}")
        print(f"{'docker exec NODE docker exec CONTAINER true':44} {p50b:8.1f} {p99b:8.1f}")
        print(f"{'ratio (goal <= 2.0)':44} {p50o / p50b:8.2f} {p99o / p99b:8.2f}")
        if args.keep_lab:
            print(f"\nkept: KUBECONFIG={data / 'kubeconfig'}; stop with: {' '.join(lab)} down {' '.join(where)}")
            REAPER.procs.remove(server)
            REAPER.dirs.remove(base)
            return 0
    finally:
        if not args.keep_lab:
            subprocess.run([*lab, "down", *where], env=env, capture_output=True, timeout=300)
            REAPER.stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
