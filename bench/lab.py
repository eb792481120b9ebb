"""Lab benchmark: how long `tuik8s lab up --nodes 3` takes until every Node is Ready.

    .venv/bin/python bench/lab.py [--rounds 3] [--nodes 3] [--cold-build]

Needs root and a Docker engine (scripts/docker-engine). Each round, on the same machine:

- **baseline**: `docker run -d` of N plain node containers (image tuik8s/node, the same
  Docker-in-Docker flags, volumes and entrypoint, `--network none`, no kubelet), started in
  parallel; timed until the last `docker run` returns ("run"), and until every node's inner
  dockerd answers ("engines"): the floor Docker itself sets for N DinD nodes;
- **lab up**: `tuik8s lab up --nodes N` run as a user runs it (network, nodes, routes, image
  preload, then waiting for the Nodes to be Ready in the API) against a real
  `tuik8s server --host 0.0.0.0 --advertise GATEWAY`, images already built; then
  `lab down` (timed too).

The figure is the median of `lab up` over rounds beside the median baseline, and their
ratio; the issue's target is <= 30 s. Until `tuik8s kubelet` is wired into the CLI, the
nodes run the real kubelet (its module's entry point until the CLI has it); in a checkout
without it, the stand-in lab/node-agent.py (the kubelet's NodeAgent: register, Lease), and
the report says which.

Cold image build: `--cold-build` removes the lab images and the build caches
(~/.cache/tuik8s: the debootstrap tarball, wheels, apt archives) and builds everything from
nothing, timing each image; without it, the cold times `tuik8s lab build` last recorded
(~/.cache/tuik8s/build-times.json) are shown with their dates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import PYTHON, REAPER, REPO

sys.path.insert(0, str(REPO))
from tuik8s.nodes.docker import (  # noqa: E402
    ALL_IMAGES,
    DIND_CAP_ADD,
    DIND_CAP_DROP,
    DIND_DEVICE_RULES,
    DIND_SECURITY,
    ENTRYPOINT,
    NODE_ENTRYPOINT,
    NODE_IMAGE,
    NODE_SRC,
    DockerNodeProvider,
    ImageBuilder,
    cache_dir,
)

CLUSTER = "bench"
STAND_IN = "exec python /opt/tuik8s/lab/node-agent.py"


def sh(*cmd: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    if check and result.returncode != 0:
        raise SystemExit(f"bench/lab.py: {' '.join(cmd[:4])} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result


def kubelet_runnable() -> bool:
    """What the node entrypoint runs: `tuik8s kubelet`, or its module until the CLI has it."""
    return any(sh(PYTHON, "-m", *cmd, "--help", check=False).returncode == 0
               for cmd in (["tuik8s.cli", "kubelet"], ["tuik8s.kubelet.cli"]))


# ---- the baseline: plain node containers --------------------------------------------------


def baseline_argv(name: str, n: int) -> list[str]:
    argv = ["docker", "run", "-d", "--name", name, "--hostname", f"node{n}", "--network", "none", "--init",
            "--label", "tuik8s.bench=baseline", "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--mount", "type=volume,target=/var/lib/docker",
            "-v", f"{REPO / 'tuik8s'}:{NODE_SRC}/tuik8s:ro", "-v", f"{ENTRYPOINT}:{NODE_ENTRYPOINT}:ro",
            "-e", f"TUIK8S_POD_CIDR=10.250.{n}.0/24", "-e", "TUIK8S_KUBELET_COMMAND=exec sleep infinity"]
    for cap in DIND_CAP_ADD:
        argv += ["--cap-add", cap]
    for cap in DIND_CAP_DROP:
        argv += ["--cap-drop", cap]
    for opt in DIND_SECURITY:
        argv += ["--security-opt", opt]
    for rule in DIND_DEVICE_RULES:
        argv += ["--device-cgroup-rule", rule]
    return [*argv, NODE_IMAGE]


async def baseline(nodes: int) -> tuple[float, float]:
    """(seconds until every `docker run` returned, until every inner dockerd answered)."""
    names = [f"tuik8s-bench-baseline-{n}" for n in range(1, nodes + 1)]

    async def one(n: int, name: str) -> tuple[float, float]:
        proc = await asyncio.create_subprocess_exec(*baseline_argv(name, n), stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"bench/lab.py: baseline docker run failed: {err.decode().strip()}")
        ran = time.monotonic()
        while True:
            probe = await asyncio.create_subprocess_exec(
                "docker", "exec", name, "docker", "version", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if await probe.wait() == 0:
                return ran, time.monotonic()
            await asyncio.sleep(0.1)

    t0 = time.monotonic()
    try:
        marks = await asyncio.gather(*(one(n, name) for n, name in enumerate(names, 1)))
    finally:
        sh("docker", "rm", "-f", "-v", *names, check=False)
    return max(m[0] for m in marks) - t0, max(m[1] for m in marks) - t0


# ---- the control plane ------------------------------------------------------------------


def start_server(base: Path, gateway: str) -> None:
    data = base / "data"
    log = base / "server.log"
    with open(log, "wb") as out:
        proc = REAPER.spawn(
            [PYTHON, "-m", "tuik8s.cli", "server", "--cluster", CLUSTER, "--data-dir", str(data), "--port", "0",
             "--host", "0.0.0.0", "--advertise", gateway, "--no-user-kubeconfig"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO),
        )
    deadline = time.monotonic() + 60
    while "ready" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench/lab.py: tuik8s server did not start: {log.read_text()[-300:]}")
        time.sleep(0.05)


# ---- cold build ----------------------------------------------------------------------------


def cold_build() -> dict[str, float]:
    print("cold build: removing the lab images and ~/.cache/tuik8s build caches", flush=True)
    sh("docker", "rmi", "-f", *ALL_IMAGES, check=False)
    for d in ("rootfs", "wheels", "apt-archives", "busybox-static"):
        shutil.rmtree(cache_dir() / d, ignore_errors=True)
    t0 = time.monotonic()
    records = asyncio.run(ImageBuilder(say=lambda line: print(f"  {line}", flush=True)).build(rebuild=True))
    total = time.monotonic() - t0
    times = {r.image: r.seconds or 0.0 for r in records}
    times["total"] = total
    return times


def recorded_cold_times() -> dict[str, tuple[float, str]]:
    recorded = ImageBuilder().recorded_times()
    return {image: (entry["cold_seconds"], entry.get("cold_at") or entry.get("built_at", "?")) for image, entry in recorded.items()
            if entry.get("cold_seconds") is not None}


# ---- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--cold-build", action="store_true", help="build every image from nothing first (minutes)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/lab.py: needs root (the lab sets host routes)", file=sys.stderr)
        return 1
    if sh("docker", "info", check=False).returncode != 0:
        print("bench/lab.py: no Docker engine answers: start one with scripts/docker-engine", file=sys.stderr)
        return 1
    REAPER.install()

    cold = cold_build() if args.cold_build else None
    asyncio.run(ImageBuilder(say=lambda line: print(f"  {line}", flush=True)).build())

    base = REAPER.mkdtemp("tuik8s-bench-lab-")
    provider = DockerNodeProvider(CLUSTER, base / "data")
    net = asyncio.run(provider.network(allocate=True))
    assert net is not None
    start_server(base, net.gateway)
    stand_in = not kubelet_runnable()
    env = {**os.environ}
    if stand_in:
        env["TUIK8S_KUBELET_COMMAND"] = STAND_IN
    lab = [PYTHON, "-m", "tuik8s.nodes.lab"]
    where = ["--cluster", CLUSTER, "--data-dir", str(base / "data")]

    rows = []
    try:
        for r in range(1, args.rounds + 1):
            run_s, engines_s = asyncio.run(baseline(args.nodes))
            t0 = time.monotonic()
            up = sh(*lab, "up", "--nodes", str(args.nodes), *where, env=env, check=False)
            up_s = time.monotonic() - t0
            if up.returncode != 0:
                raise SystemExit(f"bench/lab.py: lab up failed: {up.stderr.strip().splitlines()[-1:]}")
            t0 = time.monotonic()
            sh(*lab, "down", *where, env=env)
            down_s = time.monotonic() - t0
            rows.append((run_s, engines_s, up_s, down_s))
            print(f"round {r}: baseline run {run_s:.1f}s, engines {engines_s:.1f}s; "
                  f"lab up (Ready) {up_s:.1f}s; lab down {down_s:.1f}s", flush=True)
    finally:
        sh(*lab, "down", *where, env=env, check=False)

    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    kubelet = "stand-in lab/node-agent.py (no tuik8s kubelet here)" if stand_in else "tuik8s kubelet"
    print()
    print(f"lab up --nodes {args.nodes} until every Node is Ready, median of {len(rows)} rounds (kubelet: {kubelet})")
    print(f"  {'baseline: docker run of the plain node containers':<55} {med[0]:6.1f} s")
    print(f"  {'baseline: ... until their inner dockerds answer':<55} {med[1]:6.1f} s")
    print(f"  {'tuik8s lab up (network, nodes, routes, images, Ready)':<55} {med[2]:6.1f} s"
          f"   ({med[2] / med[1]:.1f}x the engines baseline; target <= 30 s: {'met' if med[2] <= 30 else 'MISSED'})")
    print(f"  {'tuik8s lab down':<55} {med[3]:6.1f} s")
    print()
    if cold is not None:
        print("cold image build, measured now (no images, no caches):")
        for image, seconds in cold.items():
            print(f"  {image:<22} {seconds:6.1f} s")
    else:
        recorded = recorded_cold_times()
        if recorded:
            print("cold image build, as `tuik8s lab build` last recorded it (--cold-build measures it now):")
            for image in ALL_IMAGES:
                if image in recorded:
                    seconds, when = recorded[image]
                    print(f"  {image:<22} {seconds:6.1f} s   ({when})")
        else:
            print("no cold build recorded yet: run with --cold-build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
