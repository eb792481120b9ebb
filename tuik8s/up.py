"""`tuik8s up` and `tuik8s down`: the whole cluster with one command.

`up` starts what is missing and reattaches to what runs: the control plane (a
`tuik8s server` in the background, its log in DATA/server.log), the nodes (the
Docker-in-Docker lab, or hollow nodes with `--hollow N`), optionally the demo apps, and
then the terminal UI. Quitting the UI leaves the cluster running; `up` again reattaches;
`down` stops it all. `--cluster NAME` keeps clusters side by side: each has its own data
dir, port, lab network and kubeconfig context.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tuik8s.api import registry
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ClientError
from tuik8s.client.kubeconfig import access_for
from tuik8s.client.transport import HttpTransport

DEFAULT_PORT = 6443
MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"


class UpError(Exception):
    """Why `up` or `down` stopped, in one line."""


def _say(line: str) -> None:
    print(f"==> {line}", file=sys.stderr, flush=True)


def _running(data_dir: Path) -> bool:
    """Whether a server holds the data dir's lock (the lock dies with its process)."""
    lock = data_dir / "lock"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _port_for(data_dir: Path, cluster: str) -> int:
    remembered = data_dir / "port"
    if remembered.exists():
        with contextlib.suppress(ValueError):
            return int(remembered.read_text().strip())
    port = DEFAULT_PORT if cluster == "default" else DEFAULT_PORT + 1
    while True:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
                break
            except OSError:
                port += 1
    data_dir.mkdir(parents=True, exist_ok=True)
    remembered.write_text(f"{port}\n")
    return port


def _start_server(cluster: str, data_dir: Path, port: int, advertise: list[str], dns_listen: str | None = None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-m", "tuik8s.cli", "server", "--cluster", cluster, "--data-dir", str(data_dir),
           "--port", str(port), "--host", "0.0.0.0"]
    for a in advertise:
        cmd += ["--advertise", a]
    if dns_listen:
        # the lab's gateway: it exists once the lab's network does, which comes next; the
        # server binds its DNS when the address appears
        cmd += ["--cluster-dns-listen", dns_listen]
    before = (data_dir / "kubeconfig").stat().st_mtime if (data_dir / "kubeconfig").exists() else 0.0
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    (data_dir / "server.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (data_dir / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise UpError(f"the control plane did not start: {tail[0] if tail else 'no output'}")
        kc = data_dir / "kubeconfig"
        if kc.exists() and kc.stat().st_mtime > before and _running(data_dir):
            return
        time.sleep(0.2)
    raise UpError(f"the control plane did not get ready in 60 s; see {data_dir / 'server.log'}")


def _stop_pid(pid_file: Path, what: str) -> bool:
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        pid_file.unlink(missing_ok=True)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    for _ in range(150):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    _say(f"stopped {what}")
    return True


def _start_hollow(cluster: str, data_dir: Path, nodes: int) -> None:
    pid_file = data_dir / "hollow.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), 0)
            return
    log = open(data_dir / "hollow.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuik8s.cli", "hollow", "--nodes", str(nodes), "--kubeconfig", str(data_dir / "kubeconfig"),
         "--name-prefix", f"{cluster}-hollow-" if cluster != "default" else "hollow-"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    pid_file.write_text(f"{proc.pid}\n")
    _say(f"started {nodes} hollow nodes (log: {data_dir / 'hollow.log'})")


def _docker_available() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


async def _apply_demo(data_dir: Path) -> None:
    """Server-side apply of manifests/, so a second `up --demo` changes nothing."""
    api = ApiClient(HttpTransport(access_for(None, data_dir / "kubeconfig")))
    try:
        for path in sorted(MANIFESTS.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc:
                    continue
                info = registry.by_kind(doc["apiVersion"], doc["kind"])
                if info is None:
                    continue
                await api.patch(info, doc["metadata"]["name"], doc, namespace="default" if info.namespaced else None,
                                patch_type="apply", field_manager="tuik8s-up", force=True)
        _say(f"applied {MANIFESTS}")
    finally:
        await api.close()


def cmd_up(args: argparse.Namespace) -> int:
    from tuik8s.cli import default_data_dir

    cluster = args.cluster
    data_dir = default_data_dir(cluster)
    docker = args.hollow is None and _docker_available()
    if args.hollow is None and not docker:
        raise UpError(
            "no Docker engine answers here, so the lab cannot start real nodes: "
            "install and start one (scripts/docker-engine as root), or run `tuik8s up --hollow 3` for simulated nodes"
        )
    net = None
    if docker:
        from tuik8s.nodes.docker import DockerNodeProvider

        provider = DockerNodeProvider(cluster, data_dir, say=_say)
        net = asyncio.run(provider.network(allocate=True))
    if _running(data_dir):
        _say(f"the control plane of {cluster} is running; reattaching")
    else:
        port = _port_for(data_dir, cluster)
        _say(f"starting the control plane of {cluster} on port {port} (log: {data_dir / 'server.log'})")
        _start_server(cluster, data_dir, port, [net.gateway] if net is not None else [],
                      f"{net.dns}:53" if net is not None else None)
    if docker:
        from tuik8s.nodes.lab import lab_up

        lab_args = argparse.Namespace(cluster=cluster, data_dir=str(data_dir), nodes=args.nodes, wait=180.0, no_wait=False)
        from tuik8s.nodes.provider import ProviderError

        try:
            ok = asyncio.run(lab_up(lab_args)) == 0
        except ProviderError as e:
            raise UpError(str(e)) from None
        if not ok:
            raise UpError(f"the lab's nodes did not all get Ready; see `tuik8s lab status --cluster {cluster}`")
    else:
        _start_hollow(cluster, data_dir, args.hollow)
    from tuik8s.ingress.runner import IngressError, start_in_background

    try:
        _say(start_in_background(data_dir))
    except IngressError as e:
        _say(f"warning: {e}; the cluster runs without its ingress")
    if args.demo:
        try:
            asyncio.run(_apply_demo(data_dir))
        except (ClientError, OSError, KeyError) as e:
            raise UpError(f"applying the demo apps failed: {e}") from None
    context = f"tuik8s-{cluster}"
    if args.no_tui:
        print(f"cluster {cluster} is up: kubectl --context {context} get nodes; `tuik8s up` opens the UI; `tuik8s down` stops it")
        return 0
    from tuik8s.tui.app import run_tui

    env_kubeconfig = os.environ.get("KUBECONFIG")
    if env_kubeconfig is None and not (Path.home() / ".kube" / "config").exists():
        os.environ["KUBECONFIG"] = str(data_dir / "kubeconfig")
    return run_tui(context, None, **_node_actions(cluster, data_dir, docker))


def _node_actions(cluster: str, data_dir: Path, docker: bool) -> dict[str, Any]:
    if not docker:
        return {}
    try:
        from tuik8s.nodes.lab import lab_provider
        from tuik8s.tui.actions import ProviderNodeActions  # type: ignore[attr-defined]
    except ImportError:
        return {}
    # the lab as it was made: Docker-in-Docker nodes, or Vagrant machines
    return {"node_actions": ProviderNodeActions(lab_provider(cluster, data_dir, say=lambda _l: None))}


def cmd_down(args: argparse.Namespace) -> int:
    from tuik8s.cli import default_data_dir

    cluster = args.cluster
    data_dir = default_data_dir(cluster)
    if _docker_available():
        from tuik8s.nodes.lab import lab_down

        asyncio.run(lab_down(argparse.Namespace(cluster=cluster, data_dir=str(data_dir))))
    _stop_pid(data_dir / "ingress.pid", "the ingress")
    _stop_pid(data_dir / "hollow.pid", "the hollow nodes")
    stopped = _stop_pid(data_dir / "server.pid", "the control plane")
    if not stopped and _running(data_dir):
        raise UpError(f"a control plane runs on {data_dir} that `tuik8s up` did not start; stop it where it runs")
    if args.purge:
        from tuik8s.client.kubeconfig import remove_from_user_kubeconfig

        remove_from_user_kubeconfig(f"tuik8s-{cluster}")
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
        _say(f"removed {data_dir} and the context tuik8s-{cluster}")
    print(f"cluster {cluster} is down")
    return 0


def add_up_parsers(subparsers: Any) -> None:
    up = subparsers.add_parser("up", help="start (or reattach to) a whole cluster and open the UI")
    up.add_argument("--cluster", default="default", help="cluster name (default: %(default)s)")
    up.add_argument("--nodes", type=int, default=3, help="lab nodes (default: %(default)s)")
    up.add_argument("--hollow", type=int, metavar="N", help="N simulated nodes instead of the Docker lab")
    up.add_argument("--demo", action="store_true", help="also apply manifests/ (blog, shop, voice, ingress)")
    up.add_argument("--no-tui", action="store_true", help="start the cluster, do not open the UI")
    up.set_defaults(func=cmd_up)
    down = subparsers.add_parser("down", help="stop a cluster started by `tuik8s up` (its state stays)")
    down.add_argument("--cluster", default="default", help="cluster name (default: %(default)s)")
    down.add_argument("--purge", action="store_true", help="also delete its data dir and kubeconfig context")
    down.set_defaults(func=cmd_down)
