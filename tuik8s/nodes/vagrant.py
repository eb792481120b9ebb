"""The Vagrant lab: nodes as Vagrant machines (Docker-in-Docker containers or real VMs).

The top-level `Vagrantfile` describes nodes node1..N on the cluster's lab network, with the
same addresses as the Docker lab (`LabNetwork`): node N at 172.30.K.(10+N), its pods on
10.(244+K).N.0/24, the API server at the gateway 172.30.K.1. Under Vagrant's `docker`
provider a node is the lab's own node image run with the Docker-in-Docker flags; under
`libvirt` or `virtualbox` it is a Debian VM that `lab/vagrant-provision.sh` turns into a node.

**Joining needs an address and a token.** `tuik8s lab join-config` hands out what nodes need
(the API server's URL and CA, one token per node for user `system:node:<name>` in group
`system:nodes`, pod CIDRs, DNS) and writes each node's credentials where the docker nodes
bind-mount them; the Vagrantfile reads that JSON, so a plain `vagrant up` joins the cluster.

**The host's side lives in one place.** Vagrant triggers in the Vagrantfile call this
module's `hook` (`python -m tuik8s.nodes.vagrant hook ...`) before and after each machine's
up and destroy, and the hook reuses the Docker lab's code for the lab network, its firewall
rule, the routes file, the host routes to pod CIDRs and the image preload. So `vagrant up`
alone and `tuik8s lab up --provider vagrant` do the same things, and `vagrant destroy -f`
leaves no network or route behind. Hooks of machines brought up in parallel serialise on a
file lock.

`VagrantNodeProvider` is the `NodeProvider` over `vagrant` commands (asyncio subprocesses),
so `tuik8s lab node stop|start` and the TUI's node keys work on these nodes as on the others.
Each cluster keeps its Vagrant state in its data dir (`VAGRANT_DOTFILE_PATH`), not in the
checkout, so clusters do not collide.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from tuik8s.nodes.docker import (
    NODE_IMAGE,
    NODE_PRELOADED,
    REPO_ROOT,
    DockerNodeProvider,
    LabError,
    LabNetwork,
    _del_host_route,
    _host_route,
    _write_atomic,
    check_engine,
    host_routes,
    image_id,
    node_name,
    node_number,
    run,
)
from tuik8s.nodes.provider import LabStatus, LoadResult, NodeMachine

VAGRANTFILE = REPO_ROOT / "Vagrantfile"
VAGRANT_PROVIDERS = ("docker", "libvirt", "virtualbox")
DEFAULT_VAGRANT_PROVIDER = "docker"
NODE_USER_PREFIX = "system:node:"
UP_WITHIN = 1800.0  # VMs download a box and install packages on first up
MAX_ERROR_CHARS = 400
# Vagrant 2.3's docker provider inspects every container on the host before it creates one
# (its port-collision check: `docker ps -a`, then `docker inspect` each); a container that
# anything else removes in between fails that machine's `up`, though nothing is wrong with it.
# `vagrant up` again carries on from where it stopped.
UP_ATTEMPTS = 3


def vagrant_docker_race(stderr: str) -> bool:
    """Did `vagrant up` fail only on a container that vanished while Vagrant listed them?"""
    return '"docker", "inspect"' in stderr and "No such object" in stderr


def vagrant_dir(data_dir: Path) -> Path:
    """The cluster's Vagrant state (VAGRANT_DOTFILE_PATH) and what `lab up` remembers."""
    return Path(data_dir) / "lab" / "vagrant"


def join_file(data_dir: Path) -> Path:
    return Path(data_dir) / "lab" / "join.json"


def credentials_dir(data_dir: Path, node: str) -> Path:
    """Where a node's token and CA live: the same place the Docker lab writes them."""
    return Path(data_dir) / "lab" / "nodes" / node


def has_vagrant_lab(data_dir: Path) -> bool:
    return (vagrant_dir(data_dir) / "state.json").exists()


def save_state(data_dir: Path, cluster: str, vagrant_provider: str, nodes: int, dotfile: Path) -> None:
    """What `tuik8s lab` needs to find a Vagrant lab again, however it was brought up."""
    d = vagrant_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    _write_atomic(d / "state.json", json.dumps({
        "cluster": cluster, "vagrantProvider": vagrant_provider, "nodes": nodes, "dotfile": str(dotfile),
    }) + "\n", 0o644)


# --- tokens --------------------------------------------------------------------------------

# `tuik8s token create --reuse` for every node at once: the node providers may not import
# the API server's package (import-linter), and the full CLI imports everything (the ingress,
# the kubelet) before it gets to the token file, seconds per node on a busy machine.
_ENSURE_NODE_TOKENS = """
import json, sys
from pathlib import Path
from tuik8s.apiserver.tokens import TokenFileError, ensure_token
try:
    out = {name: ensure_token(Path(sys.argv[1]), "system:node:" + name, ["system:nodes"]) for name in sys.argv[2:]}
except TokenFileError as e:
    sys.exit(str(e))
print(json.dumps(out))
"""


async def node_tokens(data_dir: Path, names: Sequence[str]) -> dict[str, str]:
    """{node: token} for user `system:node:<node>` in group `system:nodes`, the identity the
    Docker lab gives its nodes too; the same token every time (no pile of tokens)."""
    if not (Path(data_dir) / "tokens.json").exists():
        raise LabError(f"no control plane data in {data_dir} (no tokens.json): start it with `tuik8s server` first")
    out = await run(sys.executable, "-c", _ENSURE_NODE_TOKENS, data_dir, *names, within=120,
                    what="minting the nodes' tokens")
    return dict(json.loads(out))


# --- the join config ----------------------------------------------------------------------


async def lab_network(cluster: str, data_dir: Path) -> LabNetwork:
    """The cluster's lab addresses, allocated as the Docker lab allocates them; a host with
    no Docker (VMs only) takes them from the lab's state file, or index 0 for `default`."""
    provider = DockerNodeProvider(cluster, data_dir)
    try:
        net = await provider.network(allocate=True)
    except LabError:
        if shutil.which("docker") is not None:
            raise
        state = provider.lab_dir / "lab.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return LabNetwork(cluster, int(json.loads(state.read_text())["index"]))
        taken = set()
        for other in Path(data_dir).parent.glob("*/lab/lab.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                taken.add(int(json.loads(other.read_text())["index"]))
        free = sorted(set(range(1, 12)) - taken)
        if cluster != "default" and not free:
            raise LabError(f"no free lab subnet left in 172.30.0.0/20 for cluster {cluster}; remove a lab with `tuik8s lab down`") from None
        index = 0 if cluster == "default" else free[0]
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"cluster": cluster, "index": index}) + "\n")
        return LabNetwork(cluster, index)
    assert net is not None
    return net


async def build_join_config(
    cluster: str, data_dir: Path, net: LabNetwork, port: int, ca_pem: bytes, n: int,
) -> dict[str, Any]:
    """What nodes 1..n need to join, with their tokens; writes each node's credentials dir
    (token, ca.crt, log-token, kubeconfig) and the whole config to `join_file` (mode 0600)."""
    import yaml

    from tuik8s.client.kubeconfig import build_kubeconfig

    names = [node_name(i) for i in range(1, n + 1)]
    tokens = await node_tokens(data_dir, names)
    server = f"https://{net.gateway}:{port}"
    log_token_file = Path(data_dir) / "kubelet-client-token"
    log_token = log_token_file.read_text().strip() if log_token_file.exists() else None
    nodes = []
    for i, name in enumerate(names, start=1):
        d = credentials_dir(data_dir, name)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(d / "token", tokens[name] + "\n", 0o600)
        _write_atomic(d / "ca.crt", ca_pem.decode(), 0o644)
        if log_token:
            _write_atomic(d / "log-token", log_token + "\n", 0o600)
        kubeconfig = build_kubeconfig(f"tuik8s-{cluster}", server, ca_pem, tokens[name])
        _write_atomic(d / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False), 0o600)
        nodes.append({
            "name": name, "ip": net.node_ip(i), "podCIDR": net.pod_cidr(i), "token": tokens[name],
            "user": NODE_USER_PREFIX + name, "credentials": str(d),
        })
    config: dict[str, Any] = {
        "cluster": cluster,
        "dataDir": str(data_dir),
        "server": server,
        "caData": base64.b64encode(ca_pem).decode(),
        "network": {"name": net.name, "index": net.index, "subnet": net.subnet, "gateway": net.gateway},
        "dns": net.dns,
        "clusterCIDR": net.cluster_cidr,
        "nodeImage": NODE_IMAGE,
        "routesFile": str(Path(data_dir) / "lab" / "shared" / "routes"),
        "nodes": nodes,
    }
    if log_token:
        config["logToken"] = log_token
    path = join_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(config, indent=2) + "\n", 0o600)
    return config


def node_env(config: dict[str, Any], node: str) -> dict[str, str]:
    """One node's part of the join config as the environment the node's scripts read."""
    for entry in config["nodes"]:
        if entry["name"] == node:
            break
    else:
        raise LabError(f"no node {node} in the join config of cluster {config['cluster']} (try --nodes)")
    env = {
        "TUIK8S_CLUSTER": config["cluster"],
        "TUIK8S_NODE_NAME": node,
        "TUIK8S_NODE_IP": entry["ip"],
        "TUIK8S_POD_CIDR": entry["podCIDR"],
        "TUIK8S_CLUSTER_CIDR": config["clusterCIDR"],
        "TUIK8S_API_SERVER": config["server"],
        "TUIK8S_DNS": config["dns"],
        "TUIK8S_TOKEN": entry["token"],
        "TUIK8S_CA_DATA": config["caData"],
        "TUIK8S_ROUTES_LINES": ";".join(f"{e['podCIDR']} {e['ip']} {e['name']}" for e in config["nodes"]),
    }
    if config.get("logToken"):
        env["TUIK8S_LOG_TOKEN"] = config["logToken"]
    return env


# --- vagrant itself -------------------------------------------------------------------------


class _VagrantRace(Exception):
    """`vagrant up` met the docker provider's listing race (see `vagrant_docker_race`)."""


def check_vagrant() -> None:
    if shutil.which("vagrant") is None:
        raise LabError("vagrant is not installed: `apt-get install --no-install-recommends vagrant` "
                       "(see lab/VAGRANT.md)")


def vagrant_error_line(stdout: str, stderr: str, what: str) -> str:
    """Vagrant's error (a paragraph) as one line; the hook's own one-line error first."""
    for line in (stderr + "\n" + stdout).splitlines():
        if "tuik8s: error:" in line:
            return line.split("tuik8s: error:", 1)[1].strip()
    paragraph: list[str] = []
    for line in stderr.splitlines():
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    text = " ".join(paragraph) or (stdout.strip().splitlines() or [""])[-1].strip()
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return f"{what} failed: {text}" if text else f"{what} failed"


def parse_machine_readable_status(out: str) -> dict[str, str]:
    """`vagrant status --machine-readable` → {machine: state}."""
    states: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split(",", 3)
        if len(parts) == 4 and parts[2] == "state" and parts[1]:
            states[parts[1]] = parts[3].strip()
    return states


_DOCKER_STATES = {"exited": "stopped", "created": "stopped", "dead": "stopped"}
_STOPPED = frozenset({"stopped", "poweroff", "shutoff", "aborted", "saved", "paused", "shutdown"})


def machine_state(vagrant_state: str) -> str:
    """A Vagrant provider's state as the lab's: running, stopped, missing, or its own word."""
    if vagrant_state == "running":
        return "running"
    if vagrant_state == "not_created":
        return "missing"
    if vagrant_state in _STOPPED:
        return "stopped"
    return vagrant_state


class VagrantNodeProvider:
    """Nodes of one cluster as Vagrant machines, driven by the checkout's Vagrantfile."""

    name = "vagrant"

    def __init__(
        self, cluster: str, data_dir: Path, *, vagrant_provider: str | None = None, say: Any = None,
    ) -> None:
        self.cluster = cluster
        self.data_dir = Path(data_dir)
        saved = self._state()
        self.vagrant_provider = vagrant_provider or saved.get("vagrantProvider") or DEFAULT_VAGRANT_PROVIDER
        if self.vagrant_provider not in VAGRANT_PROVIDERS:
            raise LabError(f"--vagrant-provider must be one of {', '.join(VAGRANT_PROVIDERS)}")
        self.say = say or (lambda _line: None)
        self.docker = DockerNodeProvider(cluster, data_dir, say=self.say)

    # ---- state ------------------------------------------------------------------------------

    @property
    def dotfile_dir(self) -> Path:
        """Vagrant's state: the one a plain `vagrant up` recorded, else in the data dir."""
        return Path(self._state().get("dotfile") or vagrant_dir(self.data_dir))

    def _state(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads((vagrant_dir(self.data_dir) / "state.json").read_text()))
        return {}

    def _save_state(self, n: int) -> None:
        save_state(self.data_dir, self.cluster, self.vagrant_provider, n, self.dotfile_dir)

    @property
    def node_count(self) -> int:
        return int(self._state().get("nodes") or 0)

    def env(self, n: int | None = None) -> dict[str, str]:
        """What the Vagrantfile reads: this cluster, its join config, its Vagrant state dir."""
        env = {
            **os.environ,
            "VAGRANT_CWD": str(REPO_ROOT),
            "VAGRANT_DOTFILE_PATH": str(self.dotfile_dir),
            "VAGRANT_DEFAULT_PROVIDER": self.vagrant_provider,
            "VAGRANT_NO_COLOR": "1",
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "TUIK8S_CLUSTER": self.cluster,
            "TUIK8S_DATA_DIR": str(self.data_dir),
            "TUIK8S_JOIN_CONFIG": str(join_file(self.data_dir)),
            "TUIK8S_PYTHON": sys.executable,
        }
        count = n if n is not None else self.node_count
        if count:
            env["TUIK8S_NODES"] = str(count)
        return env

    def _node_of(self, name: str) -> str:
        prefix = f"tuik8s-{self.cluster}-"
        return name[len(prefix):] if name.startswith(prefix) else name

    async def vagrant(self, *args: str, within: float = 600.0, n: int | None = None) -> str:
        """Run `vagrant ARGS` for this cluster; its stdout, or `LabError` in one line."""
        for attempt in range(1, UP_ATTEMPTS + 1):
            try:
                return await self._vagrant_once(*args, within=within, n=n)
            except _VagrantRace:
                if attempt == UP_ATTEMPTS:
                    raise LabError(f"vagrant {' '.join(args)} failed {UP_ATTEMPTS} times: a container on this "
                                   "host vanished while Vagrant listed them; run it again") from None
                self.say(f"vagrant {args[0]}: a container elsewhere on this host vanished while Vagrant "
                         "listed them; running it again")
        raise AssertionError("unreachable")

    async def _vagrant_once(self, *args: str, within: float, n: int | None) -> str:
        check_vagrant()
        what = "vagrant " + " ".join(a for a in args if not a.startswith("--machine"))
        proc = await asyncio.create_subprocess_exec(
            "vagrant", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env(n), cwd=str(REPO_ROOT),
        )
        try:
            async with asyncio.timeout(within):
                out, err = await proc.communicate()
        except BaseException as e:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await asyncio.shield(proc.wait())
            if isinstance(e, TimeoutError):
                raise LabError(f"{what}: no answer within {within:g}s") from None
            raise
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if proc.returncode != 0:
            if args[0] == "up" and vagrant_docker_race(stderr):
                raise _VagrantRace
            raise LabError(vagrant_error_line(stdout, stderr, what.strip()))
        return stdout

    # ---- reading --------------------------------------------------------------------------

    def _net(self) -> LabNetwork | None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return LabNetwork(self.cluster, int(json.loads((self.docker.lab_dir / "lab.json").read_text())["index"]))
        return None

    async def nodes(self) -> list[NodeMachine]:
        if not has_vagrant_lab(self.data_dir):
            return []
        if self.vagrant_provider == "docker":
            # the containers are the machines, and docker answers in a fraction of the time
            # `vagrant status` takes (Vagrant asks docker too)
            return [NodeMachine(m.name, _DOCKER_STATES.get(m.state, m.state), m.address, m.pod_cidr, m.machine_id)
                    for m in await self.docker.nodes()]
        states = parse_machine_readable_status(await self.vagrant("status", "--machine-readable", within=120))
        net = self._net()
        machines = []
        for name, vstate in states.items():
            state = machine_state(vstate)
            num = node_number(name)
            if state == "missing" or num is None:
                continue
            machines.append(NodeMachine(
                name=name, state=state, address=net.node_ip(num) if net else None,
                pod_cidr=net.pod_cidr(num) if net else None, machine_id=name,
            ))
        return sorted(machines, key=lambda m: node_number(m.name) or 0)

    async def status(self) -> LabStatus:
        st = LabStatus(cluster=self.cluster, provider=f"vagrant/{self.vagrant_provider}")
        net = self._net()
        machines = await self.nodes()
        if net is not None and (machines or await self.docker.network_exists()):
            st.network, st.subnet = net.name, net.subnet
            with contextlib.suppress(OSError, ValueError):
                st.api_server = json.loads(join_file(self.data_dir).read_text())["server"]
        if self.vagrant_provider == "docker":
            ready = await asyncio.gather(*(self.docker.runtime_ready(m.name) for m in machines))
            machines = [NodeMachine(m.name, m.state, m.address, m.pod_cidr, m.machine_id,
                                    r if m.state == "running" else False)
                        for m, r in zip(machines, ready, strict=True)]
        st.nodes = machines
        if net is not None and machines:
            routes = await host_routes(net)
            for m in machines:
                if m.pod_cidr and m.address and routes.get(m.pod_cidr) != m.address:
                    st.problems.append(f"the host has no route to {m.name}'s pods ({m.pod_cidr} via {m.address})")
        return st

    # ---- up and down ------------------------------------------------------------------------

    async def up(self, n: int) -> list[NodeMachine]:
        """`vagrant up` nodes 1..n (the Vagrantfile's triggers do the host's side); on
        failure, destroy the machines this call created."""
        if n < 1:
            raise LabError("--nodes must be at least 1")
        count = max(n, self.node_count)
        before = {m.name for m in await self.nodes()}
        self._save_state(count)
        names = [node_name(i) for i in range(1, n + 1)]
        try:
            await self.vagrant("up", f"--provider={self.vagrant_provider}", *names, within=UP_WITHIN, n=count)
        except BaseException:
            made = [name for name in names if name not in before]
            if made:
                with contextlib.suppress(LabError):
                    await asyncio.shield(self.vagrant("destroy", "-f", *made, within=600, n=count))
            if not before:
                self._forget()
            raise
        return await self.nodes()

    async def down(self) -> None:
        """`vagrant destroy -f` every machine; the triggers remove routes and the network,
        and revoke each machine's token. The lab's every node is revoked once more after
        the destroy: a machine Vagrant lost track of runs no trigger."""
        if not has_vagrant_lab(self.data_dir):
            return
        nodes = [node_name(i) for i in range(1, self.node_count + 1)]
        await self.vagrant("destroy", "-f", "--parallel", within=900)
        if self.vagrant_provider == "docker":
            # a machine Vagrant lost track of (its state dir deleted) would keep the network
            net = self._net()
            if net is not None and await self.docker.network_exists() and not await self.docker.nodes():
                await self.docker._remove_network(net)
        await self._revoke_tokens(nodes)
        self._forget()

    async def _revoke_tokens(self, nodes: Sequence[str]) -> None:
        """Revoke what the triggers left (usually nothing) and say in one line that the
        nodes' tokens are revoked; `vagrant destroy`'s own output is not shown."""
        from tuik8s.nodes.docker import revoke_node_tokens

        known = {p.name for p in credentials_dir(self.data_dir, "x").parent.glob("*") if p.is_dir()}
        nodes = sorted({*nodes, *known}, key=lambda n: (node_number(n) or 0, n))
        if not nodes or not (self.data_dir / "tokens.json").exists():
            return
        try:
            await revoke_node_tokens(self.data_dir, nodes)
        except LabError as e:
            self.say(f"the nodes' tokens stay valid ({e}): revoke them with "
                     f"`tuik8s token revoke --data-dir {self.data_dir} system:node:NAME`")
            return
        self.say(f"the API tokens of {', '.join(nodes)} are revoked (a later `lab up` mints fresh ones)")

    def _forget(self) -> None:
        if self.dotfile_dir == vagrant_dir(self.data_dir):
            shutil.rmtree(self.dotfile_dir, ignore_errors=True)
        (vagrant_dir(self.data_dir) / "state.json").unlink(missing_ok=True)
        shutil.rmtree(self.docker.lab_dir / "shared", ignore_errors=True)

    async def _existing(self, node: str) -> str:
        name = self._node_of(node)
        if name not in {m.name for m in await self.nodes()}:
            raise LabError(f"no node {name} in cluster {self.cluster} (see `tuik8s lab status`)")
        return name

    async def stop(self, node: str) -> None:
        name = await self._existing(node)
        await self.vagrant("halt", name, within=300)

    async def start(self, node: str) -> None:
        name = await self._existing(node)
        await self.vagrant("up", f"--provider={self.vagrant_provider}", name, within=UP_WITHIN)

    async def kill(self, node: str) -> None:
        name = await self._existing(node)
        if self.vagrant_provider == "docker":
            await self.docker.kill(name)
        else:
            await self.vagrant("halt", "--force", name, within=300)

    async def load_image(self, image: str, nodes: Sequence[str] | None = None) -> LoadResult:
        return (await self.load_images([image], nodes))[0]

    async def load_images(self, images: Sequence[str], nodes: Sequence[str] | None = None) -> list[LoadResult]:
        if self.vagrant_provider != "docker":
            raise LabError(f"`lab load` puts images on docker-provider nodes; {self.vagrant_provider} VMs "
                           "pull images from a registry")
        return await self.docker.load_images(images, nodes)


# --- the hooks the Vagrantfile's triggers run ------------------------------------------------


@contextlib.asynccontextmanager
async def _host_lock(data_dir: Path) -> AsyncIterator[None]:
    """Machines come up in parallel; their hooks change the host one at a time."""
    path = Path(data_dir) / "lab" / ".vagrant-hook.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


async def hook(
    action: str, cluster: str, data_dir: Path, node: str, vagrant_provider: str, nodes: int, dotfile: Path | None = None,
) -> str:
    """The host's side of one machine's `vagrant up` / `destroy`; what it did, in one line."""
    num = node_number(node)
    if num is None:
        raise LabError(f"the Vagrant lab's machines are node1..nodeN, not {node}")
    docker = DockerNodeProvider(cluster, data_dir)
    if action == "before-up":
        async with _host_lock(data_dir):
            known = VagrantNodeProvider(cluster, data_dir, vagrant_provider=vagrant_provider)
            save_state(data_dir, cluster, vagrant_provider, max(nodes, known.node_count),
                       dotfile or known.dotfile_dir)
        return await _before_up(docker, data_dir, node, vagrant_provider, nodes)
    net = await docker.network() or await lab_network(cluster, data_dir)
    if action == "after-up":
        return await _after_up(docker, net, node, vagrant_provider)
    if action == "after-destroy":
        return await _after_destroy(docker, net, data_dir, node, vagrant_provider)
    raise LabError(f"no hook {action} (before-up, after-up, after-destroy)")


async def _before_up(docker: DockerNodeProvider, data_dir: Path, node: str, vagrant_provider: str, nodes: int) -> str:
    if not (credentials_dir(data_dir, node) / "token").exists():
        raise LabError(f"{node} has no credentials: run `tuik8s lab join-config --cluster {docker.cluster}` "
                       "(the Vagrantfile runs it on `vagrant up`)")
    if vagrant_provider != "docker":
        return f"{node}: nothing to prepare on the host for {vagrant_provider}"
    if os.geteuid() != 0:
        raise LabError("the lab sets host routes and a firewall rule: run vagrant as root")
    await check_engine()
    from tuik8s.nodes.lab import ControlPlane

    async with _host_lock(data_dir):
        missing = [image for image in (NODE_IMAGE, *NODE_PRELOADED) if await image_id(image) is None]
        if missing:
            await docker.builder.build(missing)
        net = await docker.ensure_network()
        docker._write_routes(net, [node_name(i) for i in range(1, max(nodes, node_number(node) or 1) + 1)])
    plane = ControlPlane(docker.cluster, data_dir)
    _, endpoint = await plane.check_running(net)
    await plane.check_reachable_from_lab(net, endpoint)
    return f"{node}: network {net.name} ready"


async def _after_up(docker: DockerNodeProvider, net: LabNetwork, node: str, vagrant_provider: str) -> str:
    num = node_number(node)
    assert num is not None
    if os.geteuid() == 0:
        async with _host_lock(docker.data_dir):
            await _host_route(net.pod_cidr(num), net.node_ip(num), net)
    if vagrant_provider != "docker":
        if os.geteuid() != 0:
            return (f"{node}: add the host route to its pods as root: "
                    f"ip route replace {net.pod_cidr(num)} via {net.node_ip(num)}")
        return f"{node}: host route {net.pod_cidr(num)} via {net.node_ip(num)}"
    await docker._wait_runtime(node)
    await docker.load_images(list(NODE_PRELOADED), [node])
    # peers that run already learn the route to this node's pods
    await docker._apply_routes([m.name for m in await docker.nodes() if m.name != node])
    return f"{node}: host route {net.pod_cidr(num)} via {net.node_ip(num)}, images loaded"


async def _after_destroy(
    docker: DockerNodeProvider, net: LabNetwork, data_dir: Path, node: str, vagrant_provider: str,
) -> str:
    num = node_number(node)
    assert num is not None
    done = [f"{node}: removed"]
    async with _host_lock(data_dir):
        if (await host_routes(net)).get(net.pod_cidr(num)):
            await _del_host_route(net.pod_cidr(num))
            done.append("its host route")
        if vagrant_provider == "docker" and not await docker.nodes():
            if await docker.network_exists():
                await docker._remove_network(net)
                done.append(f"network {net.name} (the last node)")
            # nothing of the lab is left: `tuik8s lab` forgets it was a Vagrant lab
            (vagrant_dir(data_dir) / "state.json").unlink(missing_ok=True)
    # as a cloud's node lifecycle does: a machine that is gone takes its Node with it
    from tuik8s.nodes.lab import ControlPlane

    plane = ControlPlane(docker.cluster, data_dir)
    with contextlib.suppress(LabError):
        server, endpoint = plane.endpoint(None)
        if await plane.delete_nodes(server, endpoint, [node]):
            done.append(f"Node {node}")
    # the machine's credential ends with it; the next `vagrant up` runs `lab join-config`,
    # which mints a fresh one
    from tuik8s.nodes.docker import revoke_node_tokens

    try:
        if await revoke_node_tokens(data_dir, [node]):
            done.append("its API token")
    except LabError as e:
        done.append(f"its API token stays valid ({e}): `tuik8s token revoke system:node:{node}`")
    return ", ".join(done)


# --- `tuik8s lab ... --provider vagrant` ----------------------------------------------------------


async def lab_join_config(args: argparse.Namespace) -> int:
    from tuik8s.nodes.lab import ControlPlane, _data_dir

    data_dir = _data_dir(args)
    plane = ControlPlane(args.cluster, data_dir)
    n = args.nodes or VagrantNodeProvider(args.cluster, data_dir).node_count or 3
    net = await lab_network(args.cluster, data_dir)
    _, endpoint = plane.endpoint(net)
    config = await build_join_config(args.cluster, data_dir, net, endpoint.port, endpoint.ca_pem, n)
    if args.format == "env":
        if not args.node:
            raise LabError("--format env is one node's: add --node NAME")
        for key, value in node_env(config, args.node).items():
            print(f"{key}={value}")
    else:
        print(json.dumps(config, indent=2))
    return 0


async def lab_up_vagrant(args: argparse.Namespace) -> int:
    from tuik8s.nodes.lab import ControlPlane, _data_dir, _say, report_ready

    if args.nodes < 1:
        raise LabError("--nodes must be at least 1")
    started = time.monotonic()
    check_vagrant()
    data_dir = _data_dir(args)
    provider = VagrantNodeProvider(args.cluster, data_dir, vagrant_provider=getattr(args, "vagrant_provider", None), say=_say)
    if provider.vagrant_provider == "docker":
        await check_engine()
        if os.geteuid() != 0:
            raise LabError("the lab sets host routes and a firewall rule: run `tuik8s lab up` as root")
        if not has_vagrant_lab(data_dir) and await provider.docker.nodes():
            raise LabError(f"cluster {args.cluster} has a Docker lab: `tuik8s lab down --cluster {args.cluster}` first")
    plane = ControlPlane(args.cluster, data_dir)
    net = await lab_network(args.cluster, data_dir)
    server, endpoint = await plane.check_running(net)
    count = max(args.nodes, provider.node_count)
    await build_join_config(args.cluster, data_dir, net, endpoint.port, endpoint.ca_pem, count)
    _say(f"vagrant up --provider={provider.vagrant_provider} node1..node{args.nodes}")
    await provider.up(args.nodes)
    wanted = [node_name(i) for i in range(1, args.nodes + 1)]
    summary = ", ".join(f"{name} {net.node_ip(i)} {net.pod_cidr(i)}" for i, name in enumerate(wanted, start=1))
    return await report_ready(plane, server, endpoint, args, wanted, summary, started,
                              f"tuik8s lab status --cluster {args.cluster}", f" (vagrant/{provider.vagrant_provider})")


async def lab_down_vagrant(args: argparse.Namespace) -> int:
    from tuik8s.nodes.lab import ControlPlane, _data_dir, _nodes, _say

    data_dir = _data_dir(args)
    if not has_vagrant_lab(data_dir):
        print(f"lab {args.cluster}: no Vagrant lab to remove")
        return 0
    provider = VagrantNodeProvider(args.cluster, data_dir, vagrant_provider=getattr(args, "vagrant_provider", None), say=_say)
    machines = await provider.nodes()
    await provider.down()
    deleted: list[str] = []
    plane = ControlPlane(args.cluster, data_dir)
    with contextlib.suppress(LabError):
        server, endpoint = plane.endpoint(None)
        deleted = await plane.delete_nodes(server, endpoint, [m.name for m in machines])
    extra = f"; deleted Node{'s' if len(deleted) != 1 else ''} {', '.join(deleted)}" if deleted else ""
    print(f"lab {args.cluster} removed (vagrant destroy): {_nodes(len(machines))}, host routes{extra}")
    return 0


# --- `python -m tuik8s.nodes.vagrant hook ...` (the Vagrantfile's triggers) --------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuik8s.nodes.vagrant",
                                     description="the host's side of the Vagrant lab, run by the Vagrantfile")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hook", help="before-up, after-up or after-destroy of one machine")
    p.add_argument("action", choices=("before-up", "after-up", "after-destroy"))
    p.add_argument("node")
    p.add_argument("--cluster", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--vagrant-provider", default=DEFAULT_VAGRANT_PROVIDER, choices=VAGRANT_PROVIDERS)
    p.add_argument("--nodes", type=int, default=0)
    p.add_argument("--dotfile", help="Vagrant's state dir (VAGRANT_DOTFILE_PATH) for this lab")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        line = asyncio.run(hook(args.action, args.cluster, Path(args.data_dir), args.node,
                                args.vagrant_provider, args.nodes, Path(args.dotfile) if args.dotfile else None))
    except LabError as e:
        print(f"tuik8s: error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
