"""The rules kube-proxy writes: Services + Endpoints + this node -> iptables-restore text."""

from __future__ import annotations

from typing import Any

import pytest

from tuik8s.proxy.rules import (
    Endpoint,
    ProxyOptions,
    ProxyState,
    ServicePort,
    build_state,
    hashed_chains,
    render,
    service_ports,
    stale_udp_flows,
)

Obj = dict[str, Any]
OPTIONS = ProxyOptions(node_name="node1", cluster_cidr="10.244.0.0/16")


def svc(name: str = "web", ns: str = "default", *, ports: list[Obj] | None = None, **spec: Any) -> Obj:
    spec.setdefault("clusterIP", "10.96.0.20")
    spec["ports"] = ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def eps(name: str = "web", ns: str = "default", *, ready: list[tuple[str, str]] = (), not_ready: list[str] = (),
        ports: list[Obj] | None = None) -> Obj:
    subset: Obj = {"ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [{"ip": ip, "nodeName": node} for ip, node in ready]
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip, "nodeName": "node2"} for ip in not_ready]
    return {"metadata": {"name": name, "namespace": ns}, "subsets": [subset]}


def rules_of(services: list[Obj], endpoints: list[Obj], options: ProxyOptions = OPTIONS, existing=()) -> str:
    by_key = {f"{e['metadata']['namespace']}/{e['metadata']['name']}": e for e in endpoints}
    return render(build_state(services, by_key), options, existing).text


def lines(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(start)]


@pytest.mark.parametrize(("key", "protocol", "chain"), [
    ("kube-system/kube-dns:dns", "UDP", "KUBE-SVC-TCOU7JCQXEZGVUNU"),
    ("kube-system/kube-dns:dns-tcp", "TCP", "KUBE-SVC-ERIFXISQEP7F7OF4"),
    ("default/kubernetes:https", "TCP", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
], ids=["kube-dns-udp", "kube-dns-tcp", "kubernetes"])
def test_chain_names_are_upstreams(key: str, protocol: str, chain: str) -> None:
    ns, rest = key.split("/")
    name, port_name = rest.split(":")
    sp = ServicePort(ns, name, port_name, protocol, "10.96.0.10", 53)
    assert sp.svc_chain == chain
    assert sp.ext_chain == "KUBE-EXT-" + chain.removeprefix("KUBE-SVC-")


def test_ready_endpoints_are_balanced_with_upstreams_probabilities() -> None:
    text = rules_of([svc()], [eps(ready=[("10.244.2.5", "node2"), ("10.244.1.3", "node1"), ("10.244.1.4", "node1")],
                                  not_ready=["10.244.2.9"])])
    sp = service_ports(svc())[0]
    assert f'-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -p tcp -m tcp -d 10.96.0.20/32 ' \
           f"--dport 80 -j {sp.svc_chain}" in text
    jumps = lines(text, f"-A {sp.svc_chain} ")
    assert "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ" in jumps[0]
    assert [j.split("--comment ")[1].split('"')[1] for j in jumps[1:]] == [
        "default/web:http -> 10.244.1.3:8080", "default/web:http -> 10.244.1.4:8080",
        "default/web:http -> 10.244.2.5:8080"]
    assert "--probability 0.3333333333 " in jumps[1]
    assert "--probability 0.5000000000 " in jumps[2]
    assert "statistic" not in jumps[3]
    assert "10.244.2.9" not in text  # not ready: no new connections
    sep = sp.sep_chain(Endpoint("10.244.1.3", 8080))
    assert lines(text, f"-A {sep} ") == [
        f"-A {sep} -m comment --comment default/web:http -s 10.244.1.3/32 -j KUBE-MARK-MASQ",  # hairpin
        f"-A {sep} -m comment --comment default/web:http -p tcp -m tcp -j DNAT --to-destination 10.244.1.3:8080",
    ]


def test_no_ready_endpoints_is_a_reject_in_filter_and_nothing_in_nat() -> None:
    text = rules_of([svc(type="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])],
                    [eps(not_ready=["10.244.2.9"])])
    nat, filt = text.split("*filter")
    assert '-A KUBE-SERVICES -m comment --comment "default/web:http has no endpoints" -p tcp -m tcp ' \
           "-d 10.96.0.20/32 --dport 80 -j REJECT --reject-with icmp-port-unreachable" in filt
    assert '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints" -m addrtype ' \
           "--dst-type LOCAL -p tcp -m tcp --dport 30080 -j REJECT --reject-with icmp-port-unreachable" in filt
    assert "KUBE-SVC-" not in nat and "KUBE-SEP-" not in nat


def test_nat_commits_before_filter_which_refuses_what_missed_the_dnat() -> None:
    service = svc(type="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])
    text = rules_of([service], [eps(ready=[("10.244.2.5", "node2")])])
    assert text.index("*nat") < text.index("*filter")
    _, filt = text.split("*filter")
    assert '-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP not DNATed" -p tcp -m tcp ' \
           "-d 10.96.0.20/32 --dport 80 -j REJECT --reject-with icmp-port-unreachable" in filt
    assert '--comment "default/web:http node port not DNATed" -m addrtype --dst-type LOCAL -p tcp -m tcp ' \
           "--dport 30080 -j REJECT" in filt


def test_node_port_goes_through_the_external_chain_which_masquerades() -> None:
    service = svc(type="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])
    text = rules_of([service], [eps(ready=[("10.244.2.5", "node2")])])
    sp = service_ports(service)[0]
    assert f"-A KUBE-NODEPORTS -m comment --comment default/web:http -p tcp -m tcp --dport 30080 -j {sp.ext_chain}" in text
    assert lines(text, f"-A {sp.ext_chain} ") == [
        f'-A {sp.ext_chain} -m comment --comment "masquerade traffic for default/web:http external destinations" '
        "-j KUBE-MARK-MASQ",
        f"-A {sp.ext_chain} -j {sp.svc_chain}",
    ]
    services = lines(text.split("*filter")[0], "-A KUBE-SERVICES ")
    assert services[-1].endswith("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS")


def test_masquerade_marks_and_the_postrouting_chain() -> None:
    text = rules_of([], [])
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000" in text
    assert "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN" in text
    assert "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT" in text
    assert text.count("COMMIT") == 2


def test_chains_of_services_that_went_are_flushed_and_deleted() -> None:
    text = rules_of([svc()], [eps(ready=[("10.244.1.3", "node1")])],
                    existing={"KUBE-SVC-GONEGONEGONEGONE", "KUBE-SEP-OLDOLDOLDOLDOLDO", "DOCKER"})
    assert ":KUBE-SVC-GONEGONEGONEGONE - [0:0]" in text and "-X KUBE-SVC-GONEGONEGONEGONE" in text
    assert "-X KUBE-SEP-OLDOLDOLDOLDOLDO" in text
    assert "DOCKER" not in text
    sp = service_ports(svc())[0]
    assert f"-X {sp.svc_chain}" not in text


@pytest.mark.parametrize("service", [
    svc(clusterIP="None"),
    svc(type="ExternalName", externalName="example.invalid", clusterIP=""),
    svc(clusterIP="fd00::10"),
    {**svc(), "metadata": {"name": "web", "namespace": "default",
                           "labels": {"service.kubernetes.io/service-proxy-name": "other"}}},
], ids=["headless", "external-name", "ipv6", "another-proxy"])
def test_services_without_a_virtual_ip_for_us_get_no_rules(service: Obj) -> None:
    assert service_ports(service) == []


def test_endpoint_ports_are_matched_by_name_and_protocol() -> None:
    service = svc(ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}])
    endpoints = eps(ready=[("10.244.1.3", "node1")], ports=[
        {"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"},
        {"name": "http", "port": 9999, "protocol": "UDP"},
    ])
    state = build_state([service], {"default/web": endpoints})
    got = {sp.key + "/" + sp.protocol: [e.address for e in state.ready(sp)] for sp in state.ports}
    assert got == {"default/web:dns/UDP": ["10.244.1.3:5353"], "default/web:http/TCP": ["10.244.1.3:8080"]}


def test_client_ip_affinity_sends_a_known_client_back_to_its_endpoint() -> None:
    service = svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    text = rules_of([service], [eps(ready=[("10.244.1.3", "node1"), ("10.244.2.5", "node2")])])
    sp = service_ports(service)[0]
    sep = sp.sep_chain(Endpoint("10.244.1.3", 8080))
    assert f"-m recent --name {sep} --mask 255.255.255.255 --rcheck --seconds 60 --reap -j {sep}" in text
    assert f"-m recent --name {sep} --set -j DNAT --to-destination 10.244.1.3:8080" in text


def test_external_traffic_policy_local_serves_external_traffic_from_local_endpoints_only() -> None:
    service = svc(type="NodePort", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])
    text = rules_of([service], [eps(ready=[("10.244.1.3", "node1"), ("10.244.2.5", "node2")])])
    sp = service_ports(service)[0]
    ext = lines(text, f"-A {sp.ext_chain} ")
    assert ext[0].endswith(f"-s 10.244.0.0/16 -j {sp.svc_chain}")  # pods still reach every endpoint
    assert ext[-1] == f"-A {sp.ext_chain} -j {sp.local_chain}"
    local = lines(text, f"-A {sp.local_chain} ")
    assert len(local) == 1 and "10.244.1.3:8080" in local[0]
    # on a node without a local endpoint, external traffic is dropped, as upstream
    other = rules_of([service], [eps(ready=[("10.244.2.5", "node2")])])
    assert "has no local endpoints\" -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -j DROP" in other


def test_internal_traffic_policy_local_uses_local_endpoints_for_the_cluster_ip() -> None:
    service = svc(internalTrafficPolicy="Local")
    text = rules_of([service], [eps(ready=[("10.244.1.3", "node1"), ("10.244.2.5", "node2")])])
    sp = service_ports(service)[0]
    assert f"--dport 80 -j {sp.local_chain}" in text
    assert "10.244.2.5" not in text


def test_external_ips_are_served_like_node_ports() -> None:
    service = svc(externalIPs=["172.30.1.100"])
    text = rules_of([service], [eps(ready=[("10.244.1.3", "node1")])])
    sp = service_ports(service)[0]
    assert f'-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -p tcp -m tcp ' \
           f"-d 172.30.1.100/32 --dport 80 -j {sp.ext_chain}" in text


def test_the_same_input_renders_the_same_text() -> None:
    a = rules_of([svc("b"), svc("a")], [eps("a", ready=[("10.244.1.4", "n"), ("10.244.1.3", "n")])])
    b = rules_of([svc("a"), svc("b")], [eps("a", ready=[("10.244.1.3", "n"), ("10.244.1.4", "n")])])
    assert a == b


def test_hashed_chains_are_read_from_iptables_save() -> None:
    save = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAA - [0:0]\n:KUBE-SEP-BBBB - [0:0]\n"
    assert hashed_chains(save) == {"KUBE-SVC-AAAA", "KUBE-SEP-BBBB"}


def test_udp_flows_to_removed_endpoints_and_to_ports_that_got_endpoints_are_cleared() -> None:
    dns = svc("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}], clusterIP="10.96.0.10")

    def state(*ips: str) -> ProxyState:
        e = eps("dns", ready=[(ip, "node1") for ip in ips], ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
        return build_state([dns], {"default/dns": e})

    assert stale_udp_flows(state("10.244.1.3", "10.244.1.4"), state("10.244.1.4")) == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.1.3"]]
    assert stale_udp_flows(state(), state("10.244.1.4")) == [["-D", "-p", "udp", "--orig-dst", "10.96.0.10"]]
    assert stale_udp_flows(state("10.244.1.4"), state("10.244.1.4")) == []
