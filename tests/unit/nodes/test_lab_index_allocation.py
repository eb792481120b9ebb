"""The lab's subnet allocation (172.30.K.0/24), against a fake docker that behaves as the
real one does: it refuses a network whose pool overlaps another ("Pool overlaps with other
one on this address space"), and knows nothing of reservations.

What a user sees: two labs started together from unrelated data dirs (two clusters, two
pytest temp dirs) get different subnets, so the second `docker network create` does not
fail; `default` is always 172.30.0.0/24; a lab keeps the subnet it had."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from pathlib import Path

import pytest

from tuik8s.nodes import docker as lab
from tuik8s.nodes.docker import DockerNodeProvider, LabError

SUBNETS = "{{range .IPAM.Config}}{{.Subnet}} {{end}}"


class FakeDocker:
    """Docker networks by name, and the few commands allocation and ensure_network run."""

    def __init__(self) -> None:
        self.networks: dict[str, str] = {"bridge": "172.17.0.0/16"}
        self.creates: list[str] = []
        self.rules: list[str] = []

    async def run(self, *cmd: object, **_: object) -> str:
        argv = [str(c) for c in cmd]
        await asyncio.sleep(0)  # let another allocation run in between, as a real CLI call does
        if argv[:2] == ["iptables", "-w"]:
            rule = " ".join(argv[argv.index("DOCKER-USER") + 1:]).removeprefix("1 ")
            if argv[2] == "-C" and rule not in self.rules:
                raise LabError("iptables -C DOCKER-USER failed: Bad rule")
            if argv[2] == "-I":
                self.rules.append(rule)
            if argv[2] == "-D":
                self.rules.remove(rule)
            return ""
        if argv[:2] in (["ip", "-4"], ["docker", "ps"]):
            return ""  # no host routes, no node containers
        if argv[:3] == ["docker", "network", "rm"]:
            del self.networks[argv[3]]
            return ""
        if argv[:4] == ["docker", "network", "ls", "-q"]:
            return "\n".join(self.networks) + "\n"
        if argv[:4] == ["docker", "network", "inspect", "--format"] and argv[4] in (SUBNETS, "{{.Name}} " + SUBNETS):
            missing = [n for n in argv[5:] if n not in self.networks]
            if missing:
                raise LabError(f"docker network inspect failed: Error: No such network: {missing[0]}")
            named = argv[4] != SUBNETS
            return "".join(f"{n + ' ' if named else ''}{self.networks[n]} \n" for n in argv[5:])
        if argv[:5] == ["docker", "network", "inspect", "--format", "{{.Id}}"]:
            return "0123456789abcdef\n"
        if argv[:3] == ["docker", "network", "create"]:
            name, subnet = argv[-1], argv[argv.index("--subnet") + 1]
            self.creates.append(name)
            new = ipaddress.ip_network(subnet)
            if any(new.overlaps(ipaddress.ip_network(s)) for s in self.networks.values()):
                raise LabError(f"docker network create {name} failed: Error response from daemon: "
                               "Pool overlaps with other one on this address space")
            self.networks[name] = subnet
            return "id\n"
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def docker(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake = FakeDocker()
    monkeypatch.setattr(lab, "run", fake.run)
    return fake


def provider(tmp_path: Path, where: str, cluster: str) -> DockerNodeProvider:
    p = DockerNodeProvider(cluster, tmp_path / where / cluster)
    p.registry = tmp_path / "registry"
    return p


async def test_labs_allocated_together_from_unrelated_dirs_get_different_subnets(
    tmp_path: Path, docker: FakeDocker
) -> None:
    a, b, c = (provider(tmp_path, f"pytest-{i}", f"c{i}") for i in range(3))
    nets = await asyncio.gather(*(p.network(allocate=True) for p in (a, b, c)))
    assert sorted(n.index for n in nets if n) == [1, 2, 3]
    # the networks come later (after the API server started on the gateway): none overlaps
    made = await asyncio.gather(*(p.ensure_network() for p in (a, b, c)))
    assert [m.subnet for m in made] == [n.subnet for n in nets if n]
    assert sorted(docker.creates) == ["tuik8s-c0", "tuik8s-c1", "tuik8s-c2"]
    assert list((tmp_path / "registry").glob("*.json")) == []  # docker holds them now


async def test_default_is_always_index_0_and_a_lab_keeps_its_index(tmp_path: Path, docker: FakeDocker) -> None:
    default = provider(tmp_path, "home", "default")
    assert (await default.network(allocate=True)) == lab.LabNetwork("default", 0)
    other = provider(tmp_path, "elsewhere", "blue")
    await other.ensure_network()
    assert (await other.network()) == lab.LabNetwork("blue", 1)
    await other.down()
    assert "tuik8s-blue" not in docker.networks
    assert (await other.network()) == lab.LabNetwork("blue", 1)  # remembered in DATA/lab/lab.json
    assert (await other.network(allocate=True)).index == 1  # and preferred when it comes up again
    # a cluster in a data dir beside it leaves it alone even while it is down
    assert (await provider(tmp_path, "elsewhere", "red").network(allocate=True)).index == 2
    await other.down()
    # one far away takes it once it is down; blue, up again, moves on
    assert (await provider(tmp_path, "far/away", "green").network(allocate=True)).index == 1
    assert (await other.network(allocate=True)).index == 3


async def test_a_reservation_of_a_lab_that_is_gone_or_too_old_is_reclaimed(tmp_path: Path, docker: FakeDocker) -> None:
    gone = provider(tmp_path, "old-tmp", "old")
    assert (await gone.network(allocate=True)).index == 1
    (gone.lab_dir / "lab.json").unlink()  # `tuik8s down --purge`, or pytest removed its temp dir
    assert (await provider(tmp_path, "new", "new").network(allocate=True)).index == 1
    entry = tmp_path / "registry" / "1.json"
    record = json.loads(entry.read_text())
    entry.write_text(json.dumps({**record, "at": time.time() - lab.RESERVATION_GRACE - 1}))
    assert (await provider(tmp_path, "later", "later").network(allocate=True)).index == 1


async def test_a_foreign_network_in_the_way_moves_the_lab_on(tmp_path: Path, docker: FakeDocker) -> None:
    docker.networks["someone"] = "172.30.0.0/23"  # 172.30.0 and 172.30.1
    p = provider(tmp_path, "x", "x")
    assert (await p.network(allocate=True)).index == 2
    docker.networks["late"] = "172.30.2.0/24"  # made between the reservation and the network
    assert (await p.ensure_network()).index == 3
    assert docker.networks["tuik8s-x"] == "172.30.3.0/24"
    assert json.loads((p.lab_dir / "lab.json").read_text())["index"] == 3


async def test_a_network_made_meanwhile_by_the_same_cluster_is_its_address(
    tmp_path: Path, docker: FakeDocker
) -> None:
    p = provider(tmp_path, "x", "x")
    assert (await p.network(allocate=True)).index == 1
    docker.networks["tuik8s-x"] = "172.30.1.0/24"  # another `lab up` of x made it
    assert (await p._reserve(1)) == 1


async def test_no_free_subnet_is_one_clear_line(tmp_path: Path, docker: FakeDocker) -> None:
    docker.networks["wide"] = "172.30.0.0/20"
    with pytest.raises(LabError, match="^no free lab subnet left in 172.30.0.0/20 for cluster x: "):
        await provider(tmp_path, "x", "x").network(allocate=True)
