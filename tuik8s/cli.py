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
from pathlib import Path

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
    plane = ControlPlane(ControlPlaneConfig(
        config, scheduler=not args.no_scheduler, controllers=not args.no_controllers, timings=timings,
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
    return 0


def build_parser() -> argparse.ArgumentParser:
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
    server.set_defaults(func=cmd_server)

    from tuik8s.kubelet.cli import add_kubelet_parser
    from tuik8s.nodes.hollow import add_hollow_parser
    from tuik8s.nodes.lab import add_lab_parser
    from tuik8s.up import add_up_parsers

    add_up_parsers(sub)
    add_hollow_parser(sub)
    add_lab_parser(sub)
    add_kubelet_parser(sub)

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
    parser = build_parser()
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
