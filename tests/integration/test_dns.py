"""The cluster DNS of a real `tuik8s server`, asked over UDP and TCP as a pod's resolver asks.

The server runs with `--cluster-dns-listen 127.0.0.1:PORT`: loopback only, so nothing
leaves the machine. Services are made with the real kubectl; the test plays the kubelet's
part for pods (their IPs and readiness through pods/NAME/status), as test_endpoints does.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml
from dnslib import QTYPE, RCODE, DNSRecord

from tests.integration.conftest import (
    RunningServer,
    ready_node,
    start_server,
    stop_server,
    wait_for,
)

NODE = "dns-node"
ZONE = "cluster.local"


def free_dual_port() -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


DNS_PORT = free_dual_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("tuik8s-dns")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home, extra=(
        "--cluster-dns-listen", f"127.0.0.1:{DNS_PORT}", "--node-monitor-grace", "3600",
    ))
    try:
        apply(srv, ready_node(NODE))
        wait_for(lambda: dig_or_none(f"kubernetes.default.svc.{ZONE}"), timeout=20)
        yield srv
    finally:
        stop_server(srv)


def apply(server: RunningServer, *objects: dict) -> None:
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=True)


def dig(name: str, qtype: str = "A", *, tcp: bool = False) -> DNSRecord:
    raw = DNSRecord.question(name, qtype).send("127.0.0.1", DNS_PORT, tcp=tcp, timeout=3)
    return DNSRecord.parse(raw)


def dig_or_none(name: str) -> DNSRecord | None:
    try:
        return dig(name)
    except OSError:
        return None


def addresses(name: str, qtype: str = "A", *, tcp: bool = False) -> list[str]:
    return sorted(str(rr.rdata) for rr in dig(name, qtype, tcp=tcp).rr if rr.rtype == getattr(QTYPE, qtype))


def within(seconds: float, predicate) -> float:
    """How long `predicate` took to hold; fails past `seconds`."""
    started = time.monotonic()
    wait_for(predicate, timeout=seconds, interval=0.02)
    return time.monotonic() - started



def run_pod(server: RunningServer, ns: str, name: str, ip: str, ready: bool = True) -> None:
    """What a kubelet reports: the pod runs, has an IP, and is (not) ready."""
    status = "True" if ready else "False"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
        {"type": "Ready", "status": status, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ]}}
    server.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p",
                   yaml.safe_dump(patch), check=True)


# ---- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_the_built_in_services_resolve(server: RunningServer, tcp: bool) -> None:
    assert addresses(f"kubernetes.default.svc.{ZONE}", tcp=tcp) == ["10.96.0.1"]
    assert addresses(f"kube-dns.kube-system.svc.{ZONE}", tcp=tcp) == ["10.96.0.10"]
    srv = server.kubectl_json("get", "service", "kube-dns", "-n", "kube-system")
    assert srv["spec"]["clusterIP"] == "10.96.0.10" and "selector" not in srv["spec"]
    assert [(p["name"], p["port"], p["protocol"]) for p in srv["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_outside_names_are_refused_and_unknown_ones_do_not_exist(server: RunningServer, tcp: bool) -> None:
    refused = dig("example.com", tcp=tcp)
    assert refused.header.rcode == RCODE.REFUSED and refused.rr == []
    missing = dig(f"nothing.default.svc.{ZONE}", tcp=tcp)
    assert missing.header.rcode == RCODE.NXDOMAIN and QTYPE[missing.auth[0].rtype] == "SOA"
    # the search path's misses, as a pod's resolver walks it for "example.com" (ndots:5)
    assert dig(f"example.com.default.svc.{ZONE}", tcp=tcp).header.rcode == RCODE.NXDOMAIN


def test_a_new_service_resolves_within_a_second_and_goes_with_it(server: RunningServer, ns: str) -> None:
    name = f"web.{ns}.svc.{ZONE}"
    assert dig(name).header.rcode == RCODE.NXDOMAIN
    server.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns, check=True)
    ip = server.kubectl_json("get", "service", "web", "-n", ns)["spec"]["clusterIP"]
    assert ip != "10.96.0.10"
    within(1.0, lambda: addresses(name) == [ip])
    assert addresses(name, tcp=True) == [ip]
    srv = dig(f"_80-8080._tcp.{name}", "SRV")  # kubectl names the port "80-8080"
    assert [str(rr.rdata) for rr in srv.rr] == [f"0 100 80 {name}."]
    assert [str(rr.rdata) for rr in srv.ar] == [ip]
    ptr = dig(".".join(reversed(ip.split("."))) + ".in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in ptr.rr] == [f"{name}."]
    aaaa = dig(name, "AAAA")
    assert aaaa.header.rcode == RCODE.NOERROR and aaaa.rr == []  # exists, no IPv6: not NXDOMAIN
    server.kubectl("delete", "service", "web", "-n", ns, check=True)
    within(1.0, lambda: dig(name).header.rcode == RCODE.NXDOMAIN)


def test_a_headless_service_is_its_ready_endpoints(server: RunningServer, ns: str) -> None:
    """A selector-less headless Service whose Endpoints the user writes, as kubectl shows it."""
    apply(server,
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": ns},
           "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
          {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db", "namespace": ns},
           "subsets": [{"addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.2.7"}],
                        "ports": [{"name": "pg", "port": 5432}]}]})
    name = f"db.{ns}.svc.{ZONE}"
    within(1.0, lambda: addresses(name) == ["10.244.1.5", "10.244.2.7"])
    assert addresses(f"db-0.{name}") == ["10.244.1.5"]
    srv = dig(f"_pg._tcp.{name}", "SRV", tcp=True)
    assert sorted(str(rr.rdata) for rr in srv.rr) == [f"0 100 5432 10-244-2-7.{name}.", f"0 100 5432 db-0.{name}."]
    # one endpoint goes not ready: gone from the answer within a second
    apply(server, {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db", "namespace": ns},
                   "subsets": [{"addresses": [{"ip": "10.244.2.7"}],
                                "notReadyAddresses": [{"ip": "10.244.1.5", "hostname": "db-0"}],
                                "ports": [{"name": "pg", "port": 5432}]}]})
    within(1.0, lambda: addresses(name) == ["10.244.2.7"])
    assert dig(f"db-0.{name}").header.rcode == RCODE.NXDOMAIN


def test_statefulset_style_pods_by_hostname_follow_readiness(server: RunningServer, ns: str) -> None:
    """Pods naming the headless Service as their subdomain get a name each (the endpoints
    controller copies their hostname), and leave the answers when they stop being ready."""
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"kv-{i}", "namespace": ns, "labels": {"app": "kv"}},
             "spec": {"nodeName": NODE, "hostname": f"kv-{i}", "subdomain": "kv",
                      "containers": [{"name": "kv", "image": "kv", "ports": [{"name": "client", "containerPort": 2379}]}]}}
            for i in range(2)]
    apply(server, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kv", "namespace": ns},
                   "spec": {"clusterIP": "None", "selector": {"app": "kv"}, "ports": [{"name": "client", "port": 2379}]}},
          *pods)
    run_pod(server, ns, "kv-0", "10.244.3.10")
    run_pod(server, ns, "kv-1", "10.244.3.11")
    name = f"kv.{ns}.svc.{ZONE}"
    within(5.0, lambda: addresses(name) == ["10.244.3.10", "10.244.3.11"])
    assert addresses(f"kv-1.{name}") == ["10.244.3.11"]
    run_pod(server, ns, "kv-1", "10.244.3.11", ready=False)
    took = within(1.0, lambda: addresses(name) == ["10.244.3.10"])
    assert took < 1.0
    assert dig(f"kv-1.{name}").header.rcode == RCODE.NXDOMAIN


def test_the_kube_dns_service_comes_back(server: RunningServer) -> None:
    server.kubectl("delete", "service", "kube-dns", "-n", "kube-system", check=True)
    wait_for(lambda: server.kubectl("get", "service", "kube-dns", "-n", "kube-system").returncode == 0, timeout=10)
    assert addresses(f"kube-dns.kube-system.svc.{ZONE}") == ["10.96.0.10"]


def test_a_bad_listen_address_is_one_clear_line(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuik8s.cli", "server", "--data-dir", str(tmp_path / "data"),
         "--cluster-dns-listen", "dns.local:53"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "tuik8s: error: --cluster-dns-listen 'dns.local:53': dns.local is not an IP address "
        "(give ADDRESS:PORT, such as 172.30.0.1:53)"]
