"""The Vagrant lab's own logic: join config, Vagrant's output, the provider's bookkeeping.

What needs `vagrant` and a Docker engine is in tests/e2e/test_vagrant.py."""

from __future__ import annotations

import argparse
import asyncio
import stat
from pathlib import Path

import pytest

from tuik8s.apiserver.tokens import TokenAuthenticator, ensure_admin_token
from tuik8s.nodes.docker import REPO_ROOT, DockerNodeProvider, LabError, LabNetwork
from tuik8s.nodes.lab import add_lab_parser, lab_provider
from tuik8s.nodes.vagrant import (
    VagrantNodeProvider,
    build_join_config,
    check_vagrant,
    has_vagrant_lab,
    machine_state,
    node_env,
    parse_machine_readable_status,
    save_state,
    vagrant_dir,
    vagrant_error_line,
)

STATUS = """\
1795779511,node1,metadata,provider,docker
1795779511,node1,provider-name,docker
1795779511,node1,state,running
1795779511,node1,state-human-short,running
1795779511,node2,state,stopped
1795779511,node3,state,not_created
1795779511,,ui,info,Current machine states:
"""


def test_machine_readable_status_is_parsed() -> None:
    assert parse_machine_readable_status(STATUS) == {"node1": "running", "node2": "stopped", "node3": "not_created"}


@pytest.mark.parametrize(("vagrant", "lab"), [
    ("running", "running"), ("not_created", "missing"), ("stopped", "stopped"), ("poweroff", "stopped"),
    ("shutoff", "stopped"), ("aborted", "stopped"), ("preparing", "preparing"),
], ids=lambda v: v)
def test_vagrant_states_become_lab_states(vagrant: str, lab: str) -> None:
    assert machine_state(vagrant) == lab


def test_the_hooks_own_error_line_wins() -> None:
    stderr = ("tuik8s: error: docker network create tuik8s-x failed: Pool overlaps\n"
              "An error occurred while executing multiple actions in parallel.\n")
    assert vagrant_error_line("", stderr, "vagrant up") == "docker network create tuik8s-x failed: Pool overlaps"


def test_a_vagrant_error_paragraph_becomes_one_line() -> None:
    stderr = ("The provider 'libvirt' could not be found, but was requested to\n"
              "back the machine 'node1'. Please use a provider that exists.\n\n"
              "Vagrant knows about the following providers: docker, hyperv\n")
    line = vagrant_error_line("", stderr, "vagrant up")
    assert line == ("vagrant up failed: The provider 'libvirt' could not be found, but was requested to "
                    "back the machine 'node1'. Please use a provider that exists.")
    assert "\n" not in vagrant_error_line("", "x" * 2000, "vagrant up")
    assert len(vagrant_error_line("", "x" * 2000, "vagrant up")) < 450


def _config() -> dict:
    net = LabNetwork("c", 2)
    return {
        "cluster": "c", "server": "https://172.30.2.1:6443", "caData": "Q0E=", "dns": net.dns,
        "clusterCIDR": net.cluster_cidr, "logToken": "lt",
        "nodes": [{"name": f"node{i}", "ip": net.node_ip(i), "podCIDR": net.pod_cidr(i), "token": f"t{i}"}
                  for i in (1, 2)],
    }


def test_node_env_is_what_the_provisioning_script_reads() -> None:
    env = node_env(_config(), "node2")
    assert env["TUIK8S_NODE_IP"] == "172.30.2.12"
    assert env["TUIK8S_POD_CIDR"] == "10.246.2.0/24"
    assert env["TUIK8S_TOKEN"] == "t2" and env["TUIK8S_CA_DATA"] == "Q0E=" and env["TUIK8S_LOG_TOKEN"] == "lt"
    assert env["TUIK8S_ROUTES_LINES"] == "10.246.1.0/24 172.30.2.11 node1;10.246.2.0/24 172.30.2.12 node2"
    with pytest.raises(LabError, match="no node node7 in the join config of cluster c"):
        node_env(_config(), "node7")


def test_join_config_mints_one_reused_token_per_node(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_admin_token(data)
    net = LabNetwork("c", 2)
    first = asyncio.run(build_join_config("c", data, net, 6443, b"PEM\n", 2))
    auth = TokenAuthenticator(data)
    for entry in first["nodes"]:
        user = auth.authenticate(entry["token"])
        assert user is not None and user.name == f"system:node:{entry['name']}" and "system:nodes" in user.groups
        d = Path(entry["credentials"])
        assert (d / "token").read_text().strip() == entry["token"]
        assert stat.S_IMODE((d / "token").stat().st_mode) == 0o600
        assert (d / "ca.crt").read_text() == "PEM\n"
    again = asyncio.run(build_join_config("c", data, net, 6443, b"PEM\n", 3))
    assert [n["token"] for n in again["nodes"][:2]] == [n["token"] for n in first["nodes"]]
    assert again["server"] == "https://172.30.2.1:6443" and again["nodes"][2]["podCIDR"] == "10.246.3.0/24"
    assert stat.S_IMODE((data / "lab" / "join.json").stat().st_mode) == 0o600


def test_join_config_without_a_control_plane_says_so(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no control plane data in .*start it with `tuik8s server` first"):
        asyncio.run(build_join_config("c", tmp_path, LabNetwork("c", 2), 6443, b"PEM\n", 1))


def test_the_provider_runs_vagrant_on_the_checkout_with_the_clusters_state(tmp_path: Path) -> None:
    provider = VagrantNodeProvider("c", tmp_path, vagrant_provider="libvirt")
    env = provider.env(3)
    assert env["VAGRANT_CWD"] == str(REPO_ROOT) and (REPO_ROOT / "Vagrantfile").is_file()
    assert env["VAGRANT_DOTFILE_PATH"] == str(vagrant_dir(tmp_path))
    assert env["VAGRANT_DEFAULT_PROVIDER"] == "libvirt"
    assert env["TUIK8S_CLUSTER"] == "c" and env["TUIK8S_NODES"] == "3"
    assert env["TUIK8S_JOIN_CONFIG"] == str(tmp_path / "lab" / "join.json")
    assert provider._node_of("tuik8s-c-node2") == "node2"
    with pytest.raises(LabError, match="--vagrant-provider must be one of docker, libvirt, virtualbox"):
        VagrantNodeProvider("c", tmp_path, vagrant_provider="hyperv")


def test_a_lab_remembers_it_was_made_by_vagrant(tmp_path: Path) -> None:
    assert not has_vagrant_lab(tmp_path)
    assert isinstance(lab_provider("c", tmp_path), DockerNodeProvider)
    save_state(tmp_path, "c", "virtualbox", 4, tmp_path / "dot")
    assert has_vagrant_lab(tmp_path)
    provider = lab_provider("c", tmp_path)
    assert isinstance(provider, VagrantNodeProvider)
    assert provider.vagrant_provider == "virtualbox" and provider.node_count == 4
    assert provider.dotfile_dir == tmp_path / "dot"


def test_no_vagrant_is_one_line_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LabError, match=r"vagrant is not installed: `apt-get install --no-install-recommends vagrant`"):
        check_vagrant()


RACE = """\
An error occurred while executing the action on the 'node3'
machine. Please handle this error then try again:

A Docker command executed by Vagrant didn't complete successfully!
Command: ["docker", "inspect", "44d0fb2c8c46", {:notify=>[:stdout, :stderr]}]

Stderr: Error: No such object: 44d0fb2c8c46
"""


def _fake_vagrant(bin_dir: Path, failures: int, stderr: str) -> Path:
    """A `vagrant` that fails its first FAILURES calls with STDERR; the calls are counted."""
    bin_dir.mkdir()
    calls = bin_dir / "calls"
    (bin_dir / "stderr").write_text(stderr)
    script = bin_dir / "vagrant"
    script.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
if [ "$(wc -l < {calls})" -le {failures} ]; then cat {bin_dir / "stderr"} >&2; exit 1; fi
echo "machines up"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return calls


def test_up_runs_again_when_a_container_elsewhere_vanished_while_vagrant_listed_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_vagrant(tmp_path / "bin", 1, RACE)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    said: list[str] = []
    provider = VagrantNodeProvider("c", tmp_path / "data", vagrant_provider="docker", say=said.append)
    assert asyncio.run(provider.vagrant("up", "--provider=docker", "node1")).strip() == "machines up"
    assert calls.read_text().splitlines() == ["up --provider=docker node1"] * 2
    assert said == ["vagrant up: a container elsewhere on this host vanished while Vagrant listed them; running it again"]


def test_up_gives_up_on_the_race_after_three_runs_and_other_failures_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_vagrant(tmp_path / "race", 9, RACE)
    monkeypatch.setenv("PATH", f"{tmp_path / 'race'}:/usr/bin:/bin")
    provider = VagrantNodeProvider("c", tmp_path / "data", vagrant_provider="docker")
    with pytest.raises(LabError, match=r"^vagrant up --provider=docker failed 3 times: a container on this host "
                                       r"vanished while Vagrant listed them; run it again$"):
        asyncio.run(provider.vagrant("up", "--provider=docker"))
    assert len(calls.read_text().splitlines()) == 3
    calls = _fake_vagrant(tmp_path / "other", 9, "The provider 'libvirt' could not be found.\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'other'}:/usr/bin:/bin")
    with pytest.raises(LabError, match=r"^vagrant up failed: The provider 'libvirt' could not be found\.$"):
        asyncio.run(provider.vagrant("up"))
    assert len(calls.read_text().splitlines()) == 1


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tuik8s")
    add_lab_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["lab", *argv])


def test_lab_commands_take_the_vagrant_provider() -> None:
    args = _parse("up", "--provider", "vagrant", "--vagrant-provider", "libvirt", "--nodes", "2")
    assert (args.provider, args.vagrant_provider, args.nodes) == ("vagrant", "libvirt", 2)
    args = _parse("join-config", "--format", "env", "--node", "node1", "--cluster", "x")
    assert (args.format, args.node, args.cluster) == ("env", "node1", "x")
    assert _parse("node", "stop", "node2").provider is None  # found from the lab's state
    with pytest.raises(SystemExit):
        _parse("up", "--provider", "vagrant", "--vagrant-provider", "hyperv")


def test_the_provisioning_script_is_valid_bash() -> None:
    import subprocess

    script = REPO_ROOT / "lab" / "vagrant-provision.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert script.stat().st_mode & stat.S_IXUSR


@pytest.mark.parametrize(("unit", "command"), [("tuik8s-kubelet", "kubelet"), ("tuik8s-proxy", "proxy")])
def test_the_vm_units_run_commands_the_cli_accepts(unit: str, command: str) -> None:
    """The systemd units' flags against the real parsers, so a renamed flag fails here and
    not in a user's VM."""
    import re
    import shlex

    text = (REPO_ROOT / "lab" / "systemd" / f"{unit}.service").read_text().replace("\\\n", " ")
    [exec_start] = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart=")]
    values = {"TUIK8S_KUBELET_EXTRA_ARGS": "--log-token-file /etc/tuik8s/node/log-token"}
    exec_start = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), "x"), exec_start)
    argv = shlex.split(exec_start)
    assert argv[0] == "/opt/tuik8s/venv/bin/tuik8s" and argv[1] == command
    if command == "kubelet":
        from tuik8s.kubelet.cli import add_kubelet_parser as add_parser
    else:
        from tuik8s.proxy.cli import add_proxy_parser as add_parser
    parser = argparse.ArgumentParser(prog="tuik8s")
    add_parser(parser.add_subparsers(dest="command"))
    parser.parse_args(argv[1:])  # exits (SystemExit) on an unknown or missing flag


def test_the_lab_commands_pick_vagrant_when_asked_or_when_it_made_the_lab(tmp_path: Path) -> None:
    from tuik8s.nodes.lab import _vagrant

    def chosen(*argv: str) -> bool:
        return _vagrant(_parse(*argv, "--data-dir", str(tmp_path)))

    assert not chosen("status")
    assert chosen("status", "--provider", "vagrant")
    assert chosen("up", "--vagrant-provider", "libvirt")  # a Vagrant provider means Vagrant
    save_state(tmp_path, "default", "docker", 2, tmp_path / "dot")
    assert chosen("node", "stop", "node1") and chosen("down")
    assert not chosen("down", "--provider", "docker")
