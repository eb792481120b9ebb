"""A node's credential ends with its lab: `lab down` revokes the tokens of the nodes it
removes (Docker lab: the provider's `down`; Vagrant lab: each machine's after-destroy hook
and the provider's `down`), a later `lab up` mints fresh ones, and `lab node kill|stop`
revoke nothing. Also: a container the engine is still removing is waited for, or named.

The token file is real (the `tuik8s token` command edits it); Docker is replaced by fakes
here. tests/e2e/test_lab_tokens.py runs the Docker lab against a running API server."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tuik8s.apiserver.tokens import TokenAuthenticator, add_token, ensure_admin_token, ensure_token
from tuik8s.nodes import docker as docker_mod
from tuik8s.nodes import vagrant as vagrant_mod
from tuik8s.nodes.docker import (
    ApiEndpoint,
    DockerNodeProvider,
    LabError,
    LabNetwork,
    revoke_node_tokens,
)
from tuik8s.nodes.provider import NodeMachine
from tuik8s.nodes.vagrant import VagrantNodeProvider, _after_destroy, save_state

NODES = "system:nodes"


def node_token(data: Path, name: str) -> str:
    """What `lab up` gives a node: its own reused token."""
    return ensure_token(data, f"system:node:{name}", [NODES])


def valid(data: Path, token: str) -> bool:
    return TokenAuthenticator(data).authenticate(token) is not None


class FakeLab:
    """The Docker side of a DockerNodeProvider: containers that `docker rm` removes, or
    leaves to the engine (`lingering`)."""

    def __init__(self, provider: DockerNodeProvider, names: list[str], lingering: set[str] | None = None) -> None:
        self.containers = {provider.container_name(n): n for n in names}
        self.lingering = lingering or set()
        provider.nodes = self.nodes  # type: ignore[method-assign]
        provider._remove_container = self.remove  # type: ignore[method-assign]
        provider.network = self.network  # type: ignore[method-assign]
        self.network_asked = 0

    async def nodes(self) -> list[NodeMachine]:
        return [NodeMachine(n, "running", machine_id=c) for c, n in self.containers.items()]

    async def remove(self, container: str) -> bool:
        if container in self.lingering:
            return False
        self.containers.pop(container, None)
        return True

    async def network(self, *, allocate: bool = False) -> LabNetwork | None:
        self.network_asked += 1
        return None


def provider_in(tmp_path: Path, said: list[str]) -> DockerNodeProvider:
    provider = DockerNodeProvider("c", tmp_path / "data", say=said.append)
    provider.registry = tmp_path / "registry"
    return provider


def credentials(provider: DockerNodeProvider, name: str) -> None:
    """What `lab up` wrote for a node (its credentials dir)."""
    (provider.lab_dir / "nodes" / name).mkdir(parents=True)


def test_down_revokes_the_tokens_of_the_nodes_it_removes(tmp_path: Path) -> None:
    said: list[str] = []
    provider = provider_in(tmp_path, said)
    data = provider.data_dir
    admin = ensure_admin_token(data)
    reader = add_token(data, "bob", ["tuik8s:readers"])
    other_lab = add_token(data, "system:node:hollow-1", [NODES])
    tokens = {n: node_token(data, n) for n in ("node1", "node2", "node3")}
    for n in tokens:
        credentials(provider, n)
    # node3's container was removed by hand: its credentials dir still says the lab made it
    FakeLab(provider, ["node1", "node2"])

    asyncio.run(provider.down())

    assert said == ["removing 2 nodes",
                    "revoked the API tokens of node1, node2, node3 (refused from the next request on)"]
    assert not any(valid(data, t) for t in tokens.values())
    assert all(valid(data, t) for t in (admin, reader, other_lab))
    assert not (provider.lab_dir / "nodes").exists()


def test_a_second_down_has_nothing_to_revoke_and_says_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    provider = provider_in(tmp_path, said)
    ensure_admin_token(provider.data_dir)
    node_token(provider.data_dir, "node1")
    credentials(provider, "node1")
    FakeLab(provider, ["node1"])
    asyncio.run(provider.down())
    said.clear()
    asyncio.run(provider.down())
    assert said == []


def test_a_later_up_mints_a_fresh_token(tmp_path: Path) -> None:
    said: list[str] = []
    provider = provider_in(tmp_path, said)
    data = provider.data_dir
    admin = ensure_admin_token(data)
    provider.api = ApiEndpoint(port=6443, token=admin, ca_pem=b"PEM\n")
    old = asyncio.run(provider._node_token("node1"))
    assert asyncio.run(provider._node_token("node1")) == old  # reused while the lab stands
    FakeLab(provider, ["node1"])
    asyncio.run(provider.down())
    new = asyncio.run(provider._node_token("node1"))
    assert new != old and valid(data, new) and not valid(data, old)


def test_down_without_a_control_plane_data_dir_revokes_nothing_and_writes_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    provider = provider_in(tmp_path, said)
    FakeLab(provider, ["node1"])
    asyncio.run(provider.down())
    assert said == ["removing 1 node"]
    assert not (provider.data_dir / "tokens.json").exists()
    assert asyncio.run(revoke_node_tokens(provider.data_dir, ["node1"])) == 0


def test_a_broken_token_file_does_not_stop_down_and_says_what_to_do(tmp_path: Path) -> None:
    said: list[str] = []
    provider = provider_in(tmp_path, said)
    provider.data_dir.mkdir(parents=True)
    (provider.data_dir / "tokens.json").write_text("{not json")
    lab = FakeLab(provider, ["node1"])
    asyncio.run(provider.down())
    assert not lab.containers and lab.network_asked == 1
    assert len(said) == 2 and "\n" not in said[1]
    assert said[1].startswith("the nodes' tokens stay valid (revoking the nodes' tokens failed: tuik8s: error: ")
    assert said[1].endswith(f"revoke them with `tuik8s token revoke --data-dir {provider.data_dir} system:node:NAME`")


def test_a_container_still_being_removed_ends_down_with_one_line_after_revoking(tmp_path: Path) -> None:
    said: list[str] = []
    provider = provider_in(tmp_path, said)
    ensure_admin_token(provider.data_dir)
    token = node_token(provider.data_dir, "node1")
    credentials(provider, "node1")
    lab = FakeLab(provider, ["node1", "node2"], lingering={"tuik8s-c-node2"})
    with pytest.raises(LabError) as err:
        asyncio.run(provider.down())
    assert str(err.value) == ("tuik8s-c-node2 is still being removed by the Docker engine: run "
                              "`tuik8s lab down --cluster c` again once `docker ps -a` no longer lists it")
    assert not valid(provider.data_dir, token)
    assert lab.network_asked == 0  # the network keeps the lingering container's endpoint
    # the engine finishes; down again removes the rest
    lab.lingering.clear()
    asyncio.run(provider.down())
    assert not lab.containers and lab.network_asked == 1


def test_node_kill_and_stop_keep_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = provider_in(tmp_path, [])
    ensure_admin_token(provider.data_dir)
    token = node_token(provider.data_dir, "node1")

    async def running(name: str) -> str:
        return "running"

    async def whales(call: Callable[..., Any], *args: Any, what: str = "docker", **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(provider, "_state", running)
    monkeypatch.setattr(docker_mod, "whales", whales)
    monkeypatch.setattr(docker_mod, "_whales", lambda: type("W", (), {"container": type("C", (), {
        "kill": None, "stop": None})})())
    asyncio.run(provider.kill("node1"))
    asyncio.run(provider.stop("node1"))
    assert valid(provider.data_dir, token)


# ---- waiting for `docker rm` ---------------------------------------------------------------


class FakeDocker:
    """`run` for `docker rm` and `docker inspect`: rm fails with `rm_error`; inspect finds
    the container `present` more times."""

    def __init__(self, rm_error: str | None, present: int) -> None:
        self.rm_error, self.present, self.calls = rm_error, present, []  # type: ignore[var-annotated]

    async def __call__(self, *cmd: Any, **kwargs: Any) -> str:
        self.calls.append(cmd[1])
        if cmd[1] == "rm":
            if self.rm_error:
                raise LabError(self.rm_error)
            return ""
        if self.present > 0:
            self.present -= 1
            return "abc123\n"
        raise LabError(f"docker inspect {cmd[-1]} failed: Error: No such object: {cmd[-1]}")


@pytest.mark.parametrize(("rm_error", "present", "gone", "inspects"), [
    (None, 0, True, 0),
    ("docker rm x: no answer within 120s", 2, True, 3),
    ("docker rm x failed: Error response from daemon: removal of container x is already in progress", 0, True, 1),
    ("docker rm x failed: Error response from daemon: No such container: x", 0, True, 0),
    ("docker rm x: no answer within 120s", 10_000, False, None),
], ids=["removed", "timed-out-then-gone", "already-in-progress", "already-gone", "still-there"])
def test_remove_container_waits_until_the_engine_has_removed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rm_error: str | None, present: int, gone: bool,
    inspects: int | None,
) -> None:
    fake = FakeDocker(rm_error, present)
    monkeypatch.setattr(docker_mod, "run", fake)
    provider = provider_in(tmp_path, [])
    provider.removal_wait = 0.3
    real_gone = docker_mod.container_gone
    monkeypatch.setattr(docker_mod, "container_gone",
                        lambda c, within: real_gone(c, within=within, interval=0.01))
    assert asyncio.run(provider._remove_container("x")) is gone
    assert fake.calls[0] == "rm"
    if inspects is not None:
        assert fake.calls[1:] == ["inspect"] * inspects


# ---- the Vagrant lab -------------------------------------------------------------------------


def _fake_vagrant(bin_dir: Path) -> None:
    bin_dir.mkdir()
    script = bin_dir / "vagrant"
    script.write_text("#!/bin/sh\necho destroyed\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_a_destroyed_vagrant_machine_takes_its_token_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_routes(net: LabNetwork) -> dict[str, str]:
        return {}

    monkeypatch.setattr(vagrant_mod, "host_routes", no_routes)  # the host's routes are not this test's
    data = tmp_path / "data"
    ensure_admin_token(data)
    gone, kept = node_token(data, "node1"), node_token(data, "node2")
    docker = DockerNodeProvider("c", data)
    line = asyncio.run(_after_destroy(docker, LabNetwork("c", 11), data, "node1", "libvirt"))
    assert line == "node1: removed, its API token"
    assert not valid(data, gone) and valid(data, kept)
    # the hook again (vagrant destroy run twice) has nothing to revoke
    assert asyncio.run(_after_destroy(docker, LabNetwork("c", 11), data, "node1", "libvirt")) == "node1: removed"


def test_vagrant_lab_down_revokes_every_node_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vagrant(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    data = tmp_path / "data"
    admin = ensure_admin_token(data)
    tokens = [node_token(data, f"node{i}") for i in (1, 2)]
    save_state(data, "c", "libvirt", 2, tmp_path / "dot")
    said: list[str] = []
    asyncio.run(VagrantNodeProvider("c", data, say=said.append).down())
    assert said == ["the API tokens of node1, node2 are revoked (a later `lab up` mints fresh ones)"]
    assert not any(valid(data, t) for t in tokens) and valid(data, admin)
