"""The `tuik8s` command.

Every failure a user can cause or meet (a busy port, an unusable data dir, a missing
Docker engine) ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_CLUSTER = "default"


def data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tuik8s"


def default_data_dir(cluster: str) -> Path:
    return data_home() / cluster


class CliError(Exception):
    """A failure to report as one line."""


def _fail(message: str) -> int:
    print(f"tuik8s: error: {message}", file=sys.stderr)
    return 1


def cmd_server(args: argparse.Namespace) -> int:
    from tuik8s.apiserver.server import ControlPlaneServer, ServerConfig, StartupError
    from tuik8s.client.kubeconfig import (
        KubeconfigError,
        build_kubeconfig,
        merge_into_user_kubeconfig,
        write_kubeconfig,
    )
    from tuik8s.controllers.runner import Timings
    from tuik8s.controlplane import ControlPlane, ControlPlaneConfig, serve_forever

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir(args.cluster)
    config = ServerConfig(data_dir=data_dir, host=args.host, port=args.port, advertise=args.advertise or [])
    timings = Timings.upstream() if args.upstream_timings else Timings()
    if args.node_monitor_grace is not None:
        timings.node_monitor_grace = args.node_monitor_grace
    if args.default_toleration_seconds is not None:
        timings.default_toleration_seconds = args.default_toleration_seconds
    for flag, value in (("--hpa-downscale-stabilization", args.hpa_downscale_stabilization),
                        ("--hpa-sync-period", args.hpa_sync_period), ("--metric-resolution", args.metric_resolution)):
        if value is not None and (value < 0 or (value == 0 and flag == "--hpa-sync-period")):
            return _fail(f"{flag} {value:g}: must be more than 0" if flag == "--hpa-sync-period" else f"{flag} {value:g}: must not be negative")
    if args.hpa_downscale_stabilization is not None:
        timings.hpa_downscale_stabilization = args.hpa_downscale_stabilization
    if args.hpa_sync_period is not None:
        timings.hpa_sync_period = args.hpa_sync_period
    if args.metric_resolution is not None:
        config.metric_resolution = args.metric_resolution
    elif args.upstream_timings:
        config.metric_resolution = 15.0
    if args.cluster_dns_listen:
        from tuik8s.dns.server import parse_listen

        try:
            parse_listen(args.cluster_dns_listen)
        except ValueError as e:
            return _fail(f"--cluster-dns-listen {e}")
    plane = ControlPlane(ControlPlaneConfig(
        config, scheduler=not args.no_scheduler, controllers=not args.no_controllers, timings=timings,
        cluster_dns_listen=args.cluster_dns_listen,
    ))
    context = f"tuik8s-{args.cluster}"

    def ready(srv: ControlPlaneServer) -> None:
        kubeconfig = build_kubeconfig(context, srv.url, srv.ca_pem, srv.admin_token)
        write_kubeconfig(data_dir / "kubeconfig", kubeconfig)
        merged = ""
        if not args.no_user_kubeconfig:
            try:
                merged = f", context {context} in {merge_into_user_kubeconfig(kubeconfig)}"
            except KubeconfigError as e:
                print(f"tuik8s: warning: {e}; use {data_dir / 'kubeconfig'}", file=sys.stderr)
        print(f"tuik8s control plane ready at {srv.url} (kubeconfig {data_dir / 'kubeconfig'}{merged})", flush=True)

    try:
        asyncio.run(serve_forever(plane, ready))
    except StartupError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001 - a bug must still end the process, in one line
        logging.getLogger("tuik8s").debug("the control plane failed", exc_info=True)
        return _fail(f"the control plane stopped: {type(e).__name__}: {e} (run with -v for the traceback)")
    return 0


def _add_up(sub: Any) -> None:
    from tuik8s.up import add_up_parsers

    add_up_parsers(sub)


def _add_hollow(sub: Any) -> None:
    from tuik8s.nodes.hollow import add_hollow_parser

    add_hollow_parser(sub)


def _add_lab(sub: Any) -> None:
    from tuik8s.nodes.lab import add_lab_parser

    add_lab_parser(sub)


def _add_kubelet(sub: Any) -> None:
    from tuik8s.kubelet.cli import add_kubelet_parser

    add_kubelet_parser(sub)


def _add_proxy(sub: Any) -> None:
    from tuik8s.proxy.cli import add_proxy_parser

    add_proxy_parser(sub)


def _add_ingress(sub: Any) -> None:
    from tuik8s.ingress.runner import add_ingress_parser

    add_ingress_parser(sub)


def _add_token(sub: Any) -> None:
    from tuik8s.apiserver.tokencli import add_token_parser

    add_token_parser(sub, default_data_dir)


# ({name: help}, adder): each command's real parser is built only when it is the one run
_SUBCOMMANDS: list[tuple[dict[str, str], Callable[[Any], None]]] = [
    ({"up": "start (or reattach to) a cluster: control plane, lab, ingress, UI",
      "down": "stop a cluster started by `tuik8s up`"}, _add_up),
    ({"hollow": "run simulated nodes"}, _add_hollow),
    ({"lab": "the Docker-in-Docker or Vagrant lab of nodes"}, _add_lab),
    ({"kubelet": "run a node's kubelet"}, _add_kubelet),
    ({"proxy": "run a node's kube-proxy"}, _add_proxy),
    ({"ingress": "run the ingress controller (mitmproxy)"}, _add_ingress),
    ({"token": "create, list and revoke API tokens"}, _add_token),
]


def _command_in(argv: list[str] | None) -> str | None:
    """The subcommand named on the command line: the first word that is not an option."""
    for word in argv or ():
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuik8s", description="A small, real Kubernetes on one machine.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    server = sub.add_parser("server", help="run the control plane in the foreground")
    server.add_argument("--cluster", default=DEFAULT_CLUSTER, help="cluster name (default: %(default)s)")
    server.add_argument("--data-dir", help="where the cluster's state lives (default: ~/.local/share/tuik8s/CLUSTER)")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    server.add_argument("--port", type=int, default=6443, help="HTTPS port (default: %(default)s)")
    server.add_argument("--advertise", action="append", metavar="NAME_OR_IP", help="extra name or IP for the serving certificate")
    server.add_argument("--no-user-kubeconfig", action="store_true", help="do not merge a context into the user's kubeconfig")
    server.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler")
    server.add_argument("--no-controllers", action="store_true", help="do not run the controller manager")
    server.add_argument("--upstream-timings", action="store_true",
                        help="node grace 40 s and eviction after 300 s, as upstream (default: the lab's 20 s / 10 s)")
    server.add_argument("--node-monitor-grace", type=float, metavar="SECONDS",
                        help="how long a node may miss heartbeats before it is NotReady")
    server.add_argument("--default-toleration-seconds", type=int, metavar="SECONDS",
                        help="how long pods stay on a NotReady node before eviction")
    server.add_argument("--hpa-downscale-stabilization", type=float, metavar="SECONDS",
                        help="how long an HPA waits before scaling down (default: 30; upstream 300)")
    server.add_argument("--hpa-sync-period", type=float, metavar="SECONDS",
                        help="how often each HPA is evaluated (default: 5; upstream 15)")
    server.add_argument("--metric-resolution", type=float, metavar="SECONDS",
                        help="how often the kubelets' resource metrics are scraped (default: 5; upstream 15)")
    server.add_argument("--cluster-dns-listen", metavar="ADDRESS[:PORT]",
                        help="serve the cluster DNS there, UDP and TCP (port 53 by default; `tuik8s up` "
                             "gives the lab gateway); waits for the address to exist (default: no cluster DNS)")
    server.set_defaults(func=cmd_server)

    chosen = _command_in(argv)
    for helps, add in _SUBCOMMANDS:
        if chosen in helps:
            add(sub)
        else:
            # listed in `tuik8s --help` without importing it: some pull in mitmproxy or
            # python-on-whales, seconds of start-up for every other command
            for name, help_text in helps.items():
                sub.add_parser(name, help=help_text)

    tui = sub.add_parser("tui", help="the terminal UI, over any kubeconfig context")
    tui.add_argument("--context", help="kubeconfig context (default: the current one)")
    scope = tui.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="start in this namespace")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="start in all namespaces")
    tui.set_defaults(func=cmd_tui)
    return parser


def cmd_tui(args: argparse.Namespace) -> int:
    from tuik8s.tui.app import run_tui

    return run_tui(args.context, "" if args.all_namespaces else args.namespace)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from tuik8s.up import UpError

    try:
        return int(args.func(args))
    except (CliError, UpError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
