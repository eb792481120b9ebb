"""The kube-dns Service and Endpoints the DNS component keeps, and the address kept for it."""

from __future__ import annotations

import pytest

from tuik8s.apiserver.allocators import ClusterIPAllocator
from tuik8s.dns import DNS_SERVICE_IP
from tuik8s.dns.kubedns import (
    _port_set,
    _subset_set,
    desired_endpoints,
    desired_service,
    endpoints_ip,
)


def test_the_service_is_kubeadms_with_the_listen_port_as_target() -> None:
    svc = desired_service(DNS_SERVICE_IP, 5353)
    assert svc["metadata"] == {"name": "kube-dns", "namespace": "kube-system", "labels": svc["metadata"]["labels"]}
    assert svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert "selector" not in svc["spec"]  # its Endpoints are ours, not the endpoints controller's
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["name"], p["port"], p["protocol"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP", 5353), ("dns-tcp", 53, "TCP", 5353)]


def test_the_endpoints_point_at_the_listen_address() -> None:
    ep = desired_endpoints("172.30.0.1", 53)
    assert ep["subsets"] == [{"addresses": [{"ip": "172.30.0.1"}], "ports": [
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}]


@pytest.mark.parametrize(("host", "ip"), [
    ("172.30.0.1", "172.30.0.1"), ("127.0.0.1", None), ("0.0.0.0", None), ("::1", None), ("::", None),
])
def test_endpoints_hold_only_a_routable_address(host: str, ip: str | None) -> None:
    got, why = endpoints_ip(host)
    assert got == ip and (why == "") == (ip is not None)


def test_comparisons_ignore_order_and_defaulted_fields() -> None:
    want = desired_endpoints("172.30.0.1", 53)["subsets"]
    have = [{"addresses": [{"ip": "172.30.0.1"}], "ports": list(reversed(want[0]["ports"]))}]
    assert _subset_set(have) == _subset_set(want)
    assert _subset_set([{"addresses": [{"ip": "172.30.0.2"}], "ports": want[0]["ports"]}]) != _subset_set(want)
    ports = desired_service(DNS_SERVICE_IP, 53)["spec"]["ports"]
    assert _port_set(list(reversed(ports))) == _port_set(ports)


def test_the_allocator_never_hands_out_the_dns_address() -> None:
    alloc = ClusterIPAllocator("10.96.0.0/28")  # 13 addresses to hand out, .10 among them
    assert alloc.dns == DNS_SERVICE_IP
    given = set()
    for _ in range(12):
        given.add(alloc.allocate())
    assert DNS_SERVICE_IP not in given
    with pytest.raises(Exception, match="range is full"):
        alloc.allocate()
    alloc.reserve(DNS_SERVICE_IP)  # asked for by name, it is given
