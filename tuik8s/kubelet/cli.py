"""`tuik8s kubelet`: run the kubelet of one node against a Docker engine.

    tuik8s kubelet --node-name N --server URL --token-file F --ca-file F
                   [--pod-cidr CIDR] [--docker-host unix://...] [--log-port 10250] ...

`add_kubelet_parser(subparsers)` adds the command to the `tuik8s` CLI; until it is wired
there, `python -m tuik8s.kubelet.cli ...` runs it alone. Failures a user can cause (an
unreadable token file, no Docker engine) end as one line on stderr, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tuik8s.client.client import ApiClient
from tuik8s.client.kubeconfig import ClusterAccess
from tuik8s.client.transport import HttpTransport
from tuik8s.kubelet.agent import (
    DEFAULT_ROOT_DIR,
    Kubelet,
    KubeletConfig,
    cluster_id,
    detect_node_ip,
    machine_capacity,
)
from tuik8s.kubelet.node import LAB_LEASE_DURATION
from tuik8s.kubelet.pod_worker import CRASH_LOOP_BASE, CRASH_LOOP_MAX, IMAGE_PULL_BASE, RESYNC
from tuik8s.kubelet.runtime import LABEL_CLUSTER, LABEL_NODE
from tuik8s.kubelet.runtime.docker import DEFAULT_INFRA_COMMAND, DEFAULT_INFRA_IMAGE, DockerRuntime

log = logging.getLogger(__name__)

RUNTIME_THREADS = 64  # what still runs the docker CLI in a thread: image pulls (one each, minutes at worst) and logs


class KubeletCliError(Exception):
    """A bad flag or file: one line for the user."""


def _labels(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise KubeletCliError(f"--node-labels: {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _taints(text: str | None) -> list[dict[str, str]]:
    out = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        head, _, effect = part.partition(":")
        key, _, value = head.partition("=")
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise KubeletCliError(f"--register-with-taints: {part!r} needs key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        out.append(taint)
    return out


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise KubeletCliError(f"cannot read the {what} {path}: {e.strerror or e}") from None


def add_kubelet_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("kubelet", help="run a node's kubelet against a Docker engine",
                              description="Run the kubelet of one node: register it, run its pods on Docker.")
    p.add_argument("--node-name", required=True, help="the Node's name")
    p.add_argument("--server", required=True, help="the API server's URL (https://HOST:PORT)")
    p.add_argument("--token-file", required=True, help="file holding the kubelet's bearer token")
    p.add_argument("--ca-file", help="CA bundle to verify the API server with")
    p.add_argument("--insecure-skip-tls-verify", action="store_true", help="do not verify the API server's certificate")
    p.add_argument("--pod-cidr", help="the node's pod CIDR (its dockerd's --bip network)")
    p.add_argument("--node-ip", help="the node's InternalIP (default: the address toward the API server)")
    p.add_argument("--docker-host", help="the Docker engine (default: the docker CLI's default)")
    p.add_argument("--root-dir", default=DEFAULT_ROOT_DIR, help="where pod volumes live (default: %(default)s)")
    p.add_argument("--pod-infra-image", default=DEFAULT_INFRA_IMAGE, help="the sandbox image (default: %(default)s)")
    p.add_argument("--pod-infra-command", default=" ".join(DEFAULT_INFRA_COMMAND),
                   help="the sandbox's command, split on spaces; '' for the image's own (default: %(default)s)")
    p.add_argument("--network", default="bridge", help="the Docker network pods join (default: %(default)s)")
    p.add_argument("--cluster-dns", action="append", default=[], metavar="IP",
                   help="the cluster DNS server for ClusterFirst pods (repeatable; default: none)")
    p.add_argument("--cluster-domain", default="cluster.local", help="(default: %(default)s)")
    p.add_argument("--node-dns", action="append", default=None, metavar="IP",
                   help="resolvers for dnsPolicy Default (repeatable; default: 127.0.0.1, i.e. none)")
    p.add_argument("--log-port", type=int, default=10250, help="port of the log endpoint; 0 disables it (default: %(default)s)")
    p.add_argument("--log-address", default="0.0.0.0", help="address of the log endpoint (default: %(default)s)")
    p.add_argument("--log-token-file", help="bearer tokens the log endpoint accepts, one per line")
    p.add_argument("--log-http", action="store_true", help="serve logs over plain HTTP instead of HTTPS")
    p.add_argument("--tls-cert-file", help="serving certificate of the log endpoint (default: self-signed)")
    p.add_argument("--tls-private-key-file", help="its key")
    p.add_argument("--crash-loop-base", type=float, default=CRASH_LOOP_BASE, metavar="SECONDS",
                   help="first CrashLoopBackOff delay (default: %(default)s, as upstream)")
    p.add_argument("--crash-loop-max", type=float, default=CRASH_LOOP_MAX, metavar="SECONDS",
                   help="longest CrashLoopBackOff delay (default: %(default)s)")
    p.add_argument("--image-pull-backoff-base", type=float, default=IMAGE_PULL_BASE, metavar="SECONDS",
                   help="first ImagePullBackOff delay (default: %(default)s)")
    p.add_argument("--sync-frequency", type=float, default=RESYNC, metavar="SECONDS",
                   help="how often each pod is looked at without a reason (default: %(default)s)")
    p.add_argument("--lease-duration", type=int, default=LAB_LEASE_DURATION, metavar="SECONDS",
                   help="node Lease duration; renewed every quarter of it (default: %(default)s)")
    p.add_argument("--node-labels", help="extra Node labels, k=v,k2=v2")
    p.add_argument("--register-with-taints", help="taints to register with, key=value:Effect,...")
    p.add_argument("--cpu", help="CPU capacity to report (default: this machine's)")
    p.add_argument("--memory", help="memory capacity to report (default: this machine's)")
    p.add_argument("--max-pods", type=int, default=110, help="(default: %(default)s)")
    p.set_defaults(func=cmd_kubelet)
    return p


def build(args: argparse.Namespace) -> tuple[Kubelet, ApiClient, DockerRuntime]:
    """The kubelet, its API client and its runtime, from the parsed flags."""
    token = _read(args.token_file, "token file").decode().strip()
    if not token:
        raise KubeletCliError(f"the token file {args.token_file} is empty")
    ca = _read(args.ca_file, "CA file") if args.ca_file else None
    if not args.server.startswith(("https://", "http://")):
        raise KubeletCliError(f"--server {args.server!r}: give a URL such as https://10.0.0.1:6443")
    access = ClusterAccess(
        context="kubelet", server=args.server, namespace="default", ca_data=ca,
        insecure=bool(args.insecure_skip_tls_verify), token=token, client_cert=None, client_key=None,
    )
    client = ApiClient(HttpTransport(access, timeout=30.0))
    scope = {LABEL_NODE: args.node_name, LABEL_CLUSTER: cluster_id(args.server, ca)}
    runtime = DockerRuntime(
        host=args.docker_host, scope=scope, infra_image=args.pod_infra_image,
        infra_command=args.pod_infra_command.split(), network=args.network,
    )
    cpu, memory = machine_capacity()
    config = KubeletConfig(
        node_name=args.node_name,
        node_ip=args.node_ip or detect_node_ip(args.server),
        root_dir=Path(args.root_dir),
        pod_cidr=args.pod_cidr,
        cpu=args.cpu or cpu,
        memory=args.memory or memory,
        max_pods=args.max_pods,
        node_labels=_labels(args.node_labels),
        register_taints=_taints(args.register_with_taints),
        cluster_dns=list(args.cluster_dns),
        cluster_domain=args.cluster_domain,
        node_dns=list(args.node_dns) if args.node_dns else ["127.0.0.1"],
        crash_loop_base=args.crash_loop_base,
        crash_loop_max=max(args.crash_loop_max, args.crash_loop_base),
        image_pull_base=args.image_pull_backoff_base,
        resync=args.sync_frequency,
        lease_duration=args.lease_duration,
        log_port=args.log_port,
        log_address=args.log_address,
        log_token_file=Path(args.log_token_file) if args.log_token_file else None,
        log_tls=not args.log_http,
        tls_cert_file=Path(args.tls_cert_file) if args.tls_cert_file else None,
        tls_key_file=Path(args.tls_private_key_file) if args.tls_private_key_file else None,
    )
    return Kubelet(client, runtime, config), client, runtime


async def run_kubelet(args: argparse.Namespace) -> int:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(RUNTIME_THREADS, thread_name_prefix="runtime"))
    kubelet, client, runtime = build(args)
    task = asyncio.create_task(kubelet.run(), name="kubelet")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await client.close()
        await runtime.close()
    return 0


def cmd_kubelet(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        # what a kubelet does (pods adopted, runtime trouble) belongs in its log
        logging.getLogger("tuik8s.kubelet").setLevel(logging.INFO)
    try:
        return asyncio.run(run_kubelet(args))
    except KubeletCliError as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"tuik8s: error: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuik8s")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_kubelet_parser(sub)
    given = list(argv if argv is not None else sys.argv[1:])
    verbose = [a for a in given if a in ("-v", "--verbose")]
    args = parser.parse_args([*verbose, "kubelet", *(a for a in given if a not in verbose)])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
