"""The cluster DNS's answers, record by record, as kubernetes/dns specification.md sets them."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, RCODE

from tests.unit.dns.fakes import endpoints, headless, records, service
from tuik8s.dns.records import TOLERATE_UNREADY, Answer

ZONE = "cluster.local"


def rows(section: list) -> list[tuple[str, str, str]]:
    return [(str(rr.rname), QTYPE[rr.rtype], str(rr.rdata)) for rr in section]


def ask(recs, name: str, qtype: str = "A") -> Answer:
    return recs.resolve(name, getattr(QTYPE, qtype))


WEB = service("web", ip="10.96.5.5", ports=[
    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
    {"name": "dns", "port": 53, "protocol": "UDP"},
    {"port": 9000, "protocol": "TCP"},
])
DB = headless("db", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])
DB_EP = endpoints("db", ready=[{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.2.7"}],
                  not_ready=[{"ip": "10.244.3.9", "hostname": "db-2"}],
                  ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])
OUT = service("out", ip=None, type="ExternalName", externalName="example.com")
ALIAS = service("alias", ip=None, type="ExternalName", externalName=f"web.default.svc.{ZONE}")


@pytest.fixture
def recs():
    return records([WEB, DB, OUT, ALIAS, service("api", ns="shop", ip="10.96.7.7")], [DB_EP])


def test_service_name_is_its_cluster_ip(recs) -> None:
    a = ask(recs, f"web.default.svc.{ZONE}")
    assert a.rcode == RCODE.NOERROR
    assert rows(a.answer) == [(f"web.default.svc.{ZONE}.", "A", "10.96.5.5")]


@pytest.mark.parametrize("name", [f"WEB.Default.SVC.{ZONE.upper()}", f"web.default.svc.{ZONE}."], ids=["case", "dot"])
def test_names_are_case_insensitive_and_keep_the_asked_spelling(recs, name: str) -> None:
    a = ask(recs, name)
    assert [r[2] for r in rows(a.answer)] == ["10.96.5.5"]
    assert rows(a.answer)[0][0].rstrip(".") == name.rstrip(".")


def test_another_namespace(recs) -> None:
    assert rows(ask(recs, f"api.shop.svc.{ZONE}").answer) == [(f"api.shop.svc.{ZONE}.", "A", "10.96.7.7")]


def test_aaaa_of_an_ipv4_service_is_empty_not_nxdomain(recs) -> None:
    a = ask(recs, f"web.default.svc.{ZONE}", "AAAA")
    assert a.rcode == RCODE.NOERROR and a.answer == []
    assert [QTYPE[r.rtype] for r in a.authority] == ["SOA"]


@pytest.mark.parametrize("name", [
    f"nope.default.svc.{ZONE}", f"web.nowhere.svc.{ZONE}", f"nowhere.svc.{ZONE}", f"web.default.{ZONE}",
    f"web.default.svc.{ZONE}.default.svc.{ZONE}", f"x.web.default.svc.{ZONE}", f"_nope._tcp.web.default.svc.{ZONE}",
    f"_http._udp.web.default.svc.{ZONE}",
], ids=["service", "namespace", "bare-namespace", "no-svc", "search-path", "host-of-clusterip", "srv-port", "srv-proto"])
def test_unknown_cluster_names_are_nxdomain_with_the_zone_soa(recs, name: str) -> None:
    a = ask(recs, name)
    assert a.rcode == RCODE.NXDOMAIN and a.answer == []
    assert rows(a.authority)[0][:2] == (f"{ZONE}.", "SOA")


@pytest.mark.parametrize("name", ["example.com", "kubernetes.io.", "local", "cluster.local.example.com"])
def test_names_outside_the_cluster_are_refused(recs, name: str) -> None:
    a = ask(recs, name)
    assert a.rcode == RCODE.REFUSED and a.answer == [] and a.authority == []


@pytest.mark.parametrize("name", [ZONE, f"svc.{ZONE}", f"default.svc.{ZONE}", f"pod.{ZONE}", f"_tcp.web.default.svc.{ZONE}"])
def test_names_above_existing_ones_exist_with_no_address(recs, name: str) -> None:
    a = ask(recs, name)
    assert a.rcode == RCODE.NOERROR and a.answer == []


def test_headless_service_is_its_ready_endpoints(recs) -> None:
    a = ask(recs, f"db.default.svc.{ZONE}")
    assert sorted(r[2] for r in rows(a.answer)) == ["10.244.1.5", "10.244.2.7"]


def test_headless_with_no_ready_endpoint_is_empty_not_nxdomain() -> None:
    recs = records([DB], [endpoints("db", not_ready=[{"ip": "10.244.3.9"}])])
    a = ask(recs, f"db.default.svc.{ZONE}")
    assert a.rcode == RCODE.NOERROR and a.answer == []
    assert ask(records([DB]), f"db.default.svc.{ZONE}").rcode == RCODE.NOERROR


def test_tolerate_unready_annotation_counts_not_ready_endpoints() -> None:
    svc = headless("db", annotations={TOLERATE_UNREADY: "true"})
    recs = records([svc], [endpoints("db", ready=[{"ip": "10.244.1.5"}], not_ready=[{"ip": "10.244.3.9"}])])
    assert sorted(r[2] for r in rows(ask(recs, f"db.default.svc.{ZONE}").answer)) == ["10.244.1.5", "10.244.3.9"]


def test_an_address_in_two_subsets_is_answered_once() -> None:
    ep = endpoints("db", ready=[{"ip": "10.244.1.5"}])
    ep["subsets"].append({"addresses": [{"ip": "10.244.1.5"}], "ports": [{"name": "metrics", "port": 9090}]})
    assert rows(ask(records([DB], [ep]), f"db.default.svc.{ZONE}").answer) == [(f"db.default.svc.{ZONE}.", "A", "10.244.1.5")]


def test_endpoint_hostname_names_one_pod(recs) -> None:
    assert rows(ask(recs, f"db-0.db.default.svc.{ZONE}").answer) == [(f"db-0.db.default.svc.{ZONE}.", "A", "10.244.1.5")]
    # without a hostname, the dashed IP names it (CoreDNS's choice)
    assert [r[2] for r in rows(ask(recs, f"10-244-2-7.db.default.svc.{ZONE}").answer)] == ["10.244.2.7"]
    # a not-ready endpoint has no name
    assert ask(recs, f"db-2.db.default.svc.{ZONE}").rcode == RCODE.NXDOMAIN


def test_srv_of_a_cluster_ip_service_names_the_service_and_its_port(recs) -> None:
    a = ask(recs, f"_http._tcp.web.default.svc.{ZONE}", "SRV")
    assert rows(a.answer) == [(f"_http._tcp.web.default.svc.{ZONE}.", "SRV", f"0 100 80 web.default.svc.{ZONE}.")]
    assert rows(a.additional) == [(f"web.default.svc.{ZONE}.", "A", "10.96.5.5")]
    udp = ask(recs, f"_dns._udp.web.default.svc.{ZONE}", "SRV")
    assert [r[2] for r in rows(udp.answer)] == [f"0 100 53 web.default.svc.{ZONE}."]


def test_srv_of_a_headless_service_names_each_ready_endpoint(recs) -> None:
    a = ask(recs, f"_pg._tcp.db.default.svc.{ZONE}", "SRV")
    assert sorted(r[2] for r in rows(a.answer)) == [
        f"0 100 5432 10-244-2-7.db.default.svc.{ZONE}.", f"0 100 5432 db-0.db.default.svc.{ZONE}.",
    ]
    assert sorted(r[2] for r in rows(a.additional)) == ["10.244.1.5", "10.244.2.7"]


def test_an_srv_name_asked_for_a_is_empty(recs) -> None:
    a = ask(recs, f"_http._tcp.web.default.svc.{ZONE}", "A")
    assert a.rcode == RCODE.NOERROR and a.answer == []


def test_external_name_is_a_cname_not_followed_outside(recs) -> None:
    a = ask(recs, f"out.default.svc.{ZONE}")
    assert rows(a.answer) == [(f"out.default.svc.{ZONE}.", "CNAME", "example.com.")]


def test_a_cname_into_the_cluster_is_followed(recs) -> None:
    a = ask(recs, f"alias.default.svc.{ZONE}")
    assert rows(a.answer) == [
        (f"alias.default.svc.{ZONE}.", "CNAME", f"web.default.svc.{ZONE}."),
        (f"web.default.svc.{ZONE}.", "A", "10.96.5.5"),
    ]


def test_ptr_of_a_cluster_ip_and_of_a_headless_endpoint(recs) -> None:
    assert rows(ask(recs, "5.5.96.10.in-addr.arpa", "PTR").answer) == [
        ("5.5.96.10.in-addr.arpa.", "PTR", f"web.default.svc.{ZONE}.")]
    assert [r[2] for r in rows(ask(recs, "5.1.244.10.in-addr.arpa", "PTR").answer)] == [f"db-0.db.default.svc.{ZONE}."]
    assert ask(recs, "9.3.244.10.in-addr.arpa", "PTR").rcode == RCODE.NXDOMAIN  # not ready
    assert ask(recs, "8.8.8.8.in-addr.arpa", "PTR").rcode == RCODE.NXDOMAIN
    assert ask(recs, "96.10.in-addr.arpa", "PTR").rcode == RCODE.NOERROR


def test_ipv6_service_is_aaaa_and_has_a_ptr() -> None:
    recs = records([service("six", ip="fd00::a")])
    assert rows(ask(recs, f"six.default.svc.{ZONE}", "AAAA").answer) == [(f"six.default.svc.{ZONE}.", "AAAA", "fd00::a")]
    assert ask(recs, f"six.default.svc.{ZONE}", "A").answer == []
    name = ".".join(reversed("fd00" + "0" * 27 + "a")) + ".ip6.arpa"
    assert [r[2] for r in rows(ask(recs, name, "PTR").answer)] == [f"six.default.svc.{ZONE}."]


def test_zone_records(recs) -> None:
    assert rows(ask(recs, f"dns-version.{ZONE}", "TXT").answer) == [(f"dns-version.{ZONE}.", "TXT", '"1.1.0"')]
    ns = ask(recs, ZONE, "NS")
    assert rows(ns.answer) == [(f"{ZONE}.", "NS", f"ns.dns.{ZONE}.")]
    assert rows(ns.additional) == [(f"ns.dns.{ZONE}.", "A", "10.96.0.10")]
    assert rows(ask(recs, ZONE, "SOA").answer)[0][:2] == (f"{ZONE}.", "SOA")


def test_any_returns_every_record_of_the_name(recs) -> None:
    assert [r[1] for r in rows(ask(recs, ZONE, "ANY").answer)] == ["SOA", "NS"]


def test_pod_names_spell_their_address(recs) -> None:
    assert rows(ask(recs, f"10-244-1-5.default.pod.{ZONE}").answer) == [(f"10-244-1-5.default.pod.{ZONE}.", "A", "10.244.1.5")]
    assert ask(recs, f"10-244-1.default.pod.{ZONE}").rcode == RCODE.NXDOMAIN


def test_another_cluster_domain() -> None:
    recs = records([WEB], domain="lab.example")
    assert [r[2] for r in rows(ask(recs, "web.default.svc.lab.example").answer)] == ["10.96.5.5"]
    assert ask(recs, f"web.default.svc.{ZONE}").rcode == RCODE.REFUSED
