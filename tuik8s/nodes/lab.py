"""`tuik8s lab ...`: a cluster's Docker-in-Docker lab, as kind makes one.

    tuik8s lab build [--rebuild] [IMAGE ...]     build the lab's images here (no registry)
    tuik8s lab up --nodes N [--cluster NAME]     network, nodes, routes, images; wait for Ready
    tuik8s lab status | down                     what runs; remove all of it
    tuik8s lab load IMAGE ...                    put a local image on every node
    tuik8s lab node stop|start|kill NAME         failure drills
    tuik8s lab join-config [--format env]        what a node needs to join (address, CA, token)

`--provider vagrant [--vagrant-provider docker|libvirt|virtualbox]` makes the nodes with the
checkout's Vagrantfile instead (tuik8s/nodes/vagrant.py, lab/VAGRANT.md); a lab remembers
which provider made it, so later commands need no --provider.

The control plane runs on the host (`tuik8s server`); `lab up` reads the cluster's
kubeconfig in its data dir for the port, token and CA, and gives them to the nodes, which
reach the API server at the lab network's gateway. That needs the server to listen beyond
loopback and to name the gateway in its certificate: `lab up` checks both and says in one
line how to restart the server when either is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tuik8s.nodes.docker import (
    ALL_IMAGES,
    ApiEndpoint,
    DockerNodeProvider,
    ImageBuilder,
    LabError,
    LabNetwork,
    check_engine,
    node_name,
)
from tuik8s.nodes.provider import LabStatus, ProviderError

DEFAULT_CLUSTER = "default"
DEFAULT_WAIT = 120.0


def default_data_dir(cluster: str) -> Path:
    # the same rule as `tuik8s server` (tuik8s.cli.default_data_dir), without importing the
    # CLI that will import this module
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tuik8s" / cluster


def _say(line: str) -> None:
    print(f"==> {line}", file=sys.stderr, flush=True)


# --- the control plane, as the lab sees it ---------------------------------------------------


class ControlPlane:
    """The cluster's API server, from the kubeconfig `tuik8s server` writes in its data dir."""

    def __init__(self, cluster: str, data_dir: Path) -> None:
        self.cluster = cluster
        self.data_dir = data_dir
        self.kubeconfig = data_dir / "kubeconfig"
        self.port: int | None = None

    def server_hint(self, net: LabNetwork | None) -> str:
        """The `tuik8s server` command line nodes can use."""
        hint = "tuik8s server"
        if self.cluster != DEFAULT_CLUSTER:
            hint += f" --cluster {self.cluster}"
        if self.data_dir != default_data_dir(self.cluster):
            hint += f" --data-dir {self.data_dir}"
        if self.port not in (None, 6443):
            hint += f" --port {self.port}"
        hint += " --host 0.0.0.0"
        if net is not None:
            hint += f" --advertise {net.gateway}"
        return hint

    def endpoint(self, net: LabNetwork | None) -> tuple[str, ApiEndpoint]:
        """(the URL the host uses, what nodes need); `LabError` when there is no control plane."""
        import yaml

        try:
            config = yaml.safe_load(self.kubeconfig.read_text())
            cluster = config["clusters"][0]["cluster"]
            server = str(cluster["server"])
            ca_pem = base64.b64decode(cluster["certificate-authority-data"])
            token = str(config["users"][0]["user"]["token"])
            port = int(server.rsplit(":", 1)[1].strip("/"))
            self.port = port
        except FileNotFoundError:
            raise LabError(
                f"no control plane for cluster {self.cluster} ({self.kubeconfig} is missing): "
                f"start it first with `{self.server_hint(net)}`"
            ) from None
        except (OSError, ValueError, KeyError, IndexError, TypeError, yaml.YAMLError) as e:
            raise LabError(f"cannot read {self.kubeconfig}: {e}") from None
        return server, ApiEndpoint(port=port, token=token, ca_pem=ca_pem)

    def client(self, server: str, endpoint: ApiEndpoint, timeout: float = 10.0) -> Any:
        from tuik8s.client.client import ApiClient
        from tuik8s.client.kubeconfig import ClusterAccess
        from tuik8s.client.transport import HttpTransport

        access = ClusterAccess(
            context=f"tuik8s-{self.cluster}", server=server, namespace="default", ca_data=endpoint.ca_pem,
            insecure=False, token=endpoint.token, client_cert=None, client_key=None,
        )
        return ApiClient(HttpTransport(access, timeout=timeout))

    async def check_running(self, net: LabNetwork | None) -> tuple[str, ApiEndpoint]:
        from tuik8s.client.errors import ClientError

        server, endpoint = self.endpoint(net)
        async with self.client(server, endpoint, timeout=5) as client:
            try:
                await client.request("GET", "/version")
            except ClientError:
                raise LabError(
                    f"the control plane of cluster {self.cluster} is not running at {server}: "
                    f"start it with `{self.server_hint(net)}`"
                ) from None
        return server, endpoint

    async def check_reachable_from_lab(self, net: LabNetwork, endpoint: ApiEndpoint) -> None:
        """Nodes must reach https://GATEWAY:PORT and trust what they find there."""
        from tuik8s.client.errors import ClientError

        url = f"https://{net.gateway}:{endpoint.port}"
        async with self.client(url, endpoint, timeout=5) as client:
            try:
                await client.request("GET", "/version")
            except ClientError as e:
                text = str(e)
                if "certificate" in text or "TLS" in text:
                    why = f"its certificate does not name {net.gateway}"
                else:
                    why = "it listens on loopback only"
                raise LabError(
                    f"nodes cannot use the API server at {url} ({why}): restart it with `{self.server_hint(net)}`"
                ) from None

    async def node_conditions(self, server: str, endpoint: ApiEndpoint) -> dict[str, str] | None:
        """{node: "Ready" | "NotReady (reason)" | ...}; None when the API does not answer."""
        from tuik8s.client.errors import ClientError

        async with self.client(server, endpoint, timeout=5) as client:
            try:
                nodes = await client.list("nodes")
            except ClientError:
                return None
        return {str(n["metadata"]["name"]): _readiness(n) for n in nodes}

    async def delete_nodes(self, server: str, endpoint: ApiEndpoint, names: Iterable[str]) -> list[str]:
        from tuik8s.client.errors import ClientError, is_not_found

        deleted = []
        async with self.client(server, endpoint, timeout=5) as client:
            for name in names:
                try:
                    await client.delete("nodes", name)
                    deleted.append(name)
                except ClientError as e:
                    if not is_not_found(e):  # type: ignore[arg-type]
                        break
        return deleted


def _nodes(n: int) -> str:
    return f"{n} node{'s' if n != 1 else ''}"


def _readiness(node: Mapping[str, Any]) -> str:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return "Ready"
            reason = cond.get("reason") or cond.get("status")
            return f"NotReady ({reason})"
    return "NotReady (no status yet)"


# --- the commands -----------------------------------------------------------------------------


def _provider(args: argparse.Namespace, endpoint: ApiEndpoint | None = None) -> DockerNodeProvider:
    return DockerNodeProvider(args.cluster, _data_dir(args), api=endpoint, say=_say)


def _vagrant(args: argparse.Namespace) -> bool:
    """`--provider vagrant` (or only `--vagrant-provider`), or no --provider and the
    cluster's lab was made by Vagrant."""
    from tuik8s.nodes.vagrant import has_vagrant_lab

    chosen = getattr(args, "provider", None)
    if chosen is None and getattr(args, "vagrant_provider", None):
        return True
    return chosen == "vagrant" or (chosen is None and has_vagrant_lab(_data_dir(args)))


def lab_provider(cluster: str, data_dir: Path, say: Any = None) -> Any:
    """The provider of the cluster's lab as it was made (Docker or Vagrant), for the TUI's
    node keys and anyone else who acts on a lab without knowing how it was made."""
    from tuik8s.nodes.vagrant import VagrantNodeProvider, has_vagrant_lab

    if has_vagrant_lab(data_dir):
        return VagrantNodeProvider(cluster, data_dir, say=say)
    return DockerNodeProvider(cluster, data_dir, say=say or (lambda _line: None))


def _any_provider(args: argparse.Namespace) -> Any:
    if _vagrant(args):
        from tuik8s.nodes.vagrant import VagrantNodeProvider

        return VagrantNodeProvider(args.cluster, _data_dir(args), vagrant_provider=getattr(args, "vagrant_provider", None),
                                   say=_say)
    return _provider(args)


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir) if getattr(args, "data_dir", None) else default_data_dir(args.cluster)


async def lab_build(args: argparse.Namespace) -> int:
    images = args.images or list(ALL_IMAGES)
    unknown = [i for i in images if i not in ALL_IMAGES]
    if unknown:
        raise LabError(f"no recipe for {', '.join(unknown)}; the lab builds {', '.join(ALL_IMAGES)}")
    started = time.monotonic()
    records = await ImageBuilder(say=_say).build(images, rebuild=args.rebuild)
    for r in records:
        if r.built:
            cold = " (cold)" if r.cold_seconds is not None else ""
            print(f"{r.image:<22} built in {r.seconds:.1f}s{cold}")
        else:
            cold = f" (cold build took {r.cold_seconds:.1f}s)" if r.cold_seconds is not None else ""
            print(f"{r.image:<22} present{cold}")
    print(f"lab images ready in {time.monotonic() - started:.1f}s")
    return 0


async def lab_up(args: argparse.Namespace) -> int:
    if _vagrant(args):
        from tuik8s.nodes.vagrant import lab_up_vagrant

        return await lab_up_vagrant(args)
    from tuik8s.nodes.vagrant import has_vagrant_lab

    if has_vagrant_lab(_data_dir(args)):
        raise LabError(f"cluster {args.cluster} has a Vagrant lab: `tuik8s lab down --cluster {args.cluster}` first")
    if args.nodes < 1:
        raise LabError("--nodes must be at least 1")
    started = time.monotonic()
    await check_engine()
    plane = ControlPlane(args.cluster, _data_dir(args))
    provider = _provider(args)
    net = await provider.network(allocate=True)
    server, endpoint = await plane.check_running(net)
    provider.api = endpoint
    provider.api_check = lambda lab_net: plane.check_reachable_from_lab(lab_net, endpoint)
    machines = await provider.up(args.nodes)
    wanted = [node_name(i) for i in range(1, args.nodes + 1)]
    summary = ", ".join(f"{m.name} {m.address} {m.pod_cidr}" for m in machines if m.name in wanted)
    return await report_ready(plane, server, endpoint, args, wanted, summary, started,
                              f"docker logs tuik8s-{args.cluster}-NODE")


async def report_ready(
    plane: Any, server: Any, endpoint: Any, args: argparse.Namespace, wanted: list[str], summary: str,
    started: float, where_logs: str, label: str = "",
) -> int:
    """The end of every `lab up`: unless --no-wait, wait for the nodes' Ready and say so in one
    line (or say which are not, and where to look)."""
    if args.no_wait:
        print(f"lab {args.cluster}: {_nodes(len(wanted))} running in {time.monotonic() - started:.1f}s ({summary})")
        return 0
    not_ready = await wait_ready(plane, server, endpoint, wanted, args.wait)
    took = time.monotonic() - started
    if not_ready:
        which = ", ".join(f"{name} {why}" for name, why in not_ready.items())
        print(f"tuik8s: error: nodes not Ready after {took:.0f}s: {which} "
              f"(the machines run; see `{where_logs}`)", file=sys.stderr)
        return 1
    print(f"lab {args.cluster}{label}: {_nodes(len(wanted))} Ready in {took:.1f}s ({summary})")
    return 0


async def wait_ready(
    plane: ControlPlane, server: str, endpoint: ApiEndpoint, names: list[str], within: float,
) -> dict[str, str]:
    """Poll until every named Node is Ready; what is not, when time is up."""
    deadline = time.monotonic() + within
    while True:
        conditions = await plane.node_conditions(server, endpoint)
        if conditions is None:
            pending = {name: "(the API server does not answer)" for name in names}
        else:
            pending = {name: conditions.get(name, "(not registered)") for name in names}
            pending = {name: why for name, why in pending.items() if why != "Ready"}
        if not pending or time.monotonic() >= deadline:
            return pending
        await asyncio.sleep(0.25)


async def lab_down(args: argparse.Namespace) -> int:
    if _vagrant(args):
        from tuik8s.nodes.vagrant import lab_down_vagrant

        return await lab_down_vagrant(args)
    await check_engine()
    provider = _provider(args)
    machines = await provider.nodes()
    had_network = await provider.network_exists()
    await provider.down()
    deleted: list[str] = []
    plane = ControlPlane(args.cluster, _data_dir(args))
    if machines:
        try:
            server, endpoint = plane.endpoint(None)
            deleted = await plane.delete_nodes(server, endpoint, [m.name for m in machines])
        except LabError:
            pass
    if not machines and not had_network:
        print(f"lab {args.cluster}: nothing to remove")
        return 0
    extra = f"; deleted Node{'s' if len(deleted) != 1 else ''} {', '.join(deleted)}" if deleted else ""
    print(f"lab {args.cluster} removed: {_nodes(len(machines))}, "
          f"network {provider.network_name}, host routes{extra}")
    return 0


async def lab_status(args: argparse.Namespace) -> int:
    if not _vagrant(args):
        await check_engine()
    plane = ControlPlane(args.cluster, _data_dir(args))
    provider = _any_provider(args)
    conditions: dict[str, str] | None = None
    try:
        server, endpoint = plane.endpoint(None)
        provider.api = endpoint
        conditions = await plane.node_conditions(server, endpoint)
    except LabError:
        pass
    st = await provider.status()
    print(format_status(st, conditions))
    return 0


def format_status(st: LabStatus, conditions: dict[str, str] | None) -> str:
    if st.network is None and not st.nodes:
        return f"no lab for cluster {st.cluster} (tuik8s lab up --nodes N)"
    api = f", API server for nodes {st.api_server}" if st.api_server else ""
    lines = [f"cluster {st.cluster} ({st.provider}): network {st.network or '(missing)'} {st.subnet or ''}{api}"]
    rows = [("NAME", "CONTAINER", "STATE", "IP", "POD CIDR", "DOCKERD", "NODE")]
    for m in st.nodes:
        node = "?" if conditions is None else conditions.get(m.name, "(not registered)")
        rows.append((m.name, m.machine_id, m.state, m.address or "-", m.pod_cidr or "-",
                     "yes" if m.runtime_ready else "no", node))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if conditions is None:
        lines.append("(the API server does not answer: NODE is unknown)")
    lines += [f"problem: {p}" for p in st.problems]
    return "\n".join(lines)


async def lab_load(args: argparse.Namespace) -> int:
    await check_engine()
    provider = _any_provider(args)
    results = await provider.load_images(args.images, args.node or None)
    for r in results:
        parts = []
        if r.loaded:
            parts.append(f"loaded on {', '.join(r.loaded)}")
        if r.present:
            parts.append(f"already on {', '.join(r.present)}")
        print(f"{r.image}: {'; '.join(parts)}")
    return 0


async def lab_node(args: argparse.Namespace) -> int:
    if not _vagrant(args):
        await check_engine()
    provider = _any_provider(args)
    action = {"stop": provider.stop, "start": provider.start, "kill": provider.kill}[args.action]
    await action(args.name)
    done = {"stop": "stopped", "start": "started", "kill": "killed"}[args.action]
    print(f"{provider._node_of(args.name)} {done}")
    return 0


# --- argparse ------------------------------------------------------------------------------


def add_lab_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `lab` to the `tuik8s` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cluster", default=DEFAULT_CLUSTER, help="cluster name (default: %(default)s)")
    common.add_argument("--data-dir", help="the cluster's data dir (default: ~/.local/share/tuik8s/CLUSTER)")
    from tuik8s.nodes.vagrant import VAGRANT_PROVIDERS

    common.add_argument("--provider", choices=("docker", "vagrant"),
                        help="what makes the nodes (default: docker, or the provider that made the lab)")
    common.add_argument("--vagrant-provider", choices=VAGRANT_PROVIDERS,
                        help="Vagrant's provider with --provider vagrant (default: docker; lab/VAGRANT.md)")

    lab = subparsers.add_parser("lab", help="the Docker-in-Docker lab: images, nodes, routes",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)

    p = sub.add_parser("build", help="build the lab's images (skips those that exist)")
    p.add_argument("--rebuild", action="store_true", help="build again even if the images exist")
    p.add_argument("images", nargs="*", metavar="IMAGE", help=f"only these (default: all of {', '.join(ALL_IMAGES)})")
    p.set_defaults(func=_sync(lab_build))

    p = sub.add_parser("up", parents=[common], help="create or complete the lab and wait for its Nodes to be Ready")
    p.add_argument("--nodes", type=int, default=3, help="how many nodes (default: %(default)s)")
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT, metavar="SECONDS",
                   help="how long to wait for the Nodes to be Ready (default: %(default)s)")
    p.add_argument("--no-wait", action="store_true", help="return once the machines run")
    p.set_defaults(func=_sync(lab_up))

    p = sub.add_parser("down", parents=[common], help="remove the nodes, the network and the host routes")
    p.set_defaults(func=_sync(lab_down))

    p = sub.add_parser("status", parents=[common], help="the nodes, their engines and their Nodes")
    p.set_defaults(func=_sync(lab_status))

    p = sub.add_parser("load", parents=[common], help="put local images on the nodes (as `kind load`)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--node", action="append", metavar="NAME", help="only this node (repeatable)")
    p.set_defaults(func=_sync(lab_load))

    p = sub.add_parser("join-config", parents=[common],
                       help="what a node needs to join: API server, CA, its token, pod CIDR, DNS (JSON or env lines)")
    p.add_argument("--nodes", type=int, help="for nodes 1..N (default: the Vagrant lab's count, else 3)")
    p.add_argument("--format", choices=("json", "env"), default="json", help="(default: %(default)s)")
    p.add_argument("--node", metavar="NAME", help="with --format env: this node's lines")
    p.set_defaults(func=_sync(_join_config))

    p = sub.add_parser("node", parents=[common], help="stop, start or kill one node")
    p.add_argument("action", choices=("stop", "start", "kill"))
    p.add_argument("name", metavar="NAME", help="node1, node2, ... (or the container name)")
    p.set_defaults(func=_sync(lab_node))
    return lab


async def _join_config(args: argparse.Namespace) -> int:
    from tuik8s.nodes.vagrant import lab_join_config

    return await lab_join_config(args)


def _sync(coro_fn: Any) -> Any:
    def command(args: argparse.Namespace) -> int:
        try:
            return int(asyncio.run(coro_fn(args)))
        except ProviderError as e:
            print(f"tuik8s: error: {e}", file=sys.stderr)
        except KeyboardInterrupt:
            print("tuik8s: interrupted", file=sys.stderr)
            return 130
        return 1

    return command


def main(argv: Iterable[str] | None = None) -> int:
    import logging

    parser = argparse.ArgumentParser(prog="tuik8s")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True)
    add_lab_parser(sub)
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main(["lab", *sys.argv[1:]]))
