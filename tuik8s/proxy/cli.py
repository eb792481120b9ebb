"""`tuik8s proxy`: run a node's kube-proxy (iptables mode) against the API server.

    tuik8s proxy --kubeconfig F [--context C] --node-name N [--node-ip IP] [--cluster-cidr CIDR]
    tuik8s proxy --server URL --token-file F --ca-file F --node-name N ...

It must run as root in the node's network namespace (it programs that namespace's
iptables). Failures a user can cause (no credentials, no iptables, not root) end as one
line on stderr and exit status 1; the node's entrypoint restarts it.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from tuik8s.client.client import ApiClient
from tuik8s.client.kubeconfig import ClusterAccess, KubeconfigError, access_for
from tuik8s.client.transport import HttpTransport
from tuik8s.proxy.proxier import MIN_SYNC_PERIOD, SYNC_PERIOD, KubeProxy, ProxyConfig, ProxyError


def add_proxy_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("proxy", help="run a node's kube-proxy (iptables rules for Services)",
                              description="Program this node's iptables so Service ClusterIPs and NodePorts "
                                          "reach their ready endpoints, as kube-proxy's iptables mode.")
    p.add_argument("--kubeconfig", help="kubeconfig file with the node's credentials")
    p.add_argument("--context", help="context of --kubeconfig (default: its current one)")
    p.add_argument("--server", help="the API server's URL (https://HOST:PORT), instead of --kubeconfig")
    p.add_argument("--token-file", help="file holding the bearer token (with --server)")
    p.add_argument("--ca-file", help="CA bundle to verify the API server with (with --server)")
    p.add_argument("--insecure-skip-tls-verify", action="store_true", help="do not verify the API server's certificate")
    p.add_argument("--node-name", default=None, help="this node's name (default: the hostname)")
    p.add_argument("--node-ip", help="this node's address (informational; NodePorts answer on every local address)")
    p.add_argument("--cluster-cidr", help="the pods' CIDR: traffic to a ClusterIP from outside it is masqueraded")
    p.add_argument("--masquerade-all", action="store_true", help="masquerade all traffic to ClusterIPs")
    p.add_argument("--hairpin-bridge", default="docker0", metavar="BRIDGE",
                   help="put this pod bridge's ports in hairpin mode, so pods reach themselves "
                        "through their Services; '' leaves them (default: %(default)s)")
    p.add_argument("--min-sync-period", type=float, default=MIN_SYNC_PERIOD, metavar="SECONDS",
                   help="shortest time between two syncs (default: %(default)s)")
    p.add_argument("--sync-period", type=float, default=SYNC_PERIOD, metavar="SECONDS",
                   help="how often all rules are rewritten and the jumps checked (default: %(default)s)")
    p.set_defaults(func=cmd_proxy)
    return p


def _access(args: argparse.Namespace) -> ClusterAccess:
    if args.server:
        if args.kubeconfig:
            raise ProxyError("give --kubeconfig or --server, not both")
        if not args.server.startswith(("https://", "http://")):
            raise ProxyError(f"--server {args.server!r}: give a URL such as https://10.0.0.1:6443")
        if not args.token_file:
            raise ProxyError("--server needs --token-file")
        token = _read(args.token_file, "token file").decode().strip()
        if not token:
            raise ProxyError(f"the token file {args.token_file} is empty")
        return ClusterAccess(
            context="kube-proxy", server=args.server, namespace="default",
            ca_data=_read(args.ca_file, "CA file") if args.ca_file else None,
            insecure=bool(args.insecure_skip_tls_verify), token=token, client_cert=None, client_key=None,
        )
    if not args.kubeconfig:
        raise ProxyError("give --kubeconfig FILE, or --server URL --token-file FILE [--ca-file FILE]")
    if not Path(args.kubeconfig).is_file():
        raise ProxyError(f"no kubeconfig at {args.kubeconfig}")
    try:
        return access_for(args.context, args.kubeconfig)  # this process reads no other kubeconfig
    except KubeconfigError as e:
        raise ProxyError(str(e)) from None


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ProxyError(f"cannot read the {what} {path}: {e.strerror or e}") from None


def build_config(args: argparse.Namespace) -> ProxyConfig:
    if args.cluster_cidr:
        try:
            ipaddress.ip_network(args.cluster_cidr, strict=False)
        except ValueError:
            raise ProxyError(f"--cluster-cidr {args.cluster_cidr!r} is not a CIDR such as 10.244.0.0/16") from None
    if args.min_sync_period < 0 or args.sync_period <= 0:
        raise ProxyError("--min-sync-period must be >= 0 and --sync-period > 0")
    return ProxyConfig(
        node_name=args.node_name or socket.gethostname(), node_ip=args.node_ip, cluster_cidr=args.cluster_cidr,
        masquerade_all=args.masquerade_all, min_sync_period=args.min_sync_period, sync_period=args.sync_period,
        hairpin_bridge=args.hairpin_bridge or None,
    )


async def run_proxy(args: argparse.Namespace) -> int:
    config = build_config(args)
    access = _access(args)
    client = ApiClient(HttpTransport(access, timeout=30.0))
    proxy = KubeProxy(client, config)
    task = asyncio.create_task(proxy.run(), name="kube-proxy")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    logging.getLogger(__name__).info("kube-proxy for node %s (%s) against %s", config.node_name,
                                     config.node_ip or "any address", access.server)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await client.close()
    return 0


def cmd_proxy(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        logging.getLogger("tuik8s.proxy").setLevel(logging.INFO)
    try:
        return asyncio.run(run_proxy(args))
    except ProxyError as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
