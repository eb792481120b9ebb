"""The routing table: which backend a host and path reach, as the Ingress spec says."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tuik8s.ingress.table import build_table, load_balancer_entry, tls_cert_from_secret


def svc(name: str, *ports: tuple[str, int], ns: str = "default") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports]},
    }


def eps(name: str, ips: list[str], port: int, port_name: str = "http", ns: str = "default",
        not_ready: list[str] | None = None) -> dict[str, Any]:
    subset: dict[str, Any] = {"addresses": [{"ip": ip} for ip in ips], "ports": [{"name": port_name, "port": port}]}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return {"metadata": {"name": name, "namespace": ns}, "subsets": [subset]}


def backend(service: str, port: int | str = "http") -> dict[str, Any]:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": service, "port": ref}}


def ingress(name: str, rules: list[dict[str, Any]], *, cls: str | None = "tuik8s", default: str | None = None,
            created: str = "2026-01-01T00:00:00Z", tls: list[dict[str, Any]] | None = None,
            ns: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": rules}
    if cls:
        spec["ingressClassName"] = cls
    if default:
        spec["defaultBackend"] = backend(default)
    if tls:
        spec["tls"] = tls
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec}


def rule(host: str | None, *paths: tuple[str, str, str]) -> dict[str, Any]:
    r: dict[str, Any] = {"http": {"paths": [
        {"path": p, "pathType": t, "backend": backend(s)} for p, t, s in paths
    ]}}
    if host:
        r["host"] = host
    return r


NAMES = ["blog", "shop", "api", "apiv2", "exact", "wild", "any", "fallback"]
SERVICES = {f"default/{n}": svc(n, ("http", 80)) for n in NAMES}
ENDPOINTS = {f"default/{n}": eps(n, [f"10.0.0.{i + 1}"], 8080) for i, n in enumerate(NAMES)}


def table_of(*ings: dict[str, Any], services=SERVICES, endpoints=ENDPOINTS, **kw: Any):
    return build_table(list(ings), services, endpoints, **kw)


def served_by(table, host: str, path: str) -> str | None:
    b = table.route(host, path)
    return None if b is None else b.service


ROUTES = table_of(
    ingress("web", [
        rule("blog.local", ("/", "Prefix", "blog")),
        rule("shop.local", ("/", "Prefix", "shop"), ("/api", "Prefix", "api"), ("/api/v2/", "Prefix", "apiv2"),
             ("/api/exact", "Exact", "exact")),
        rule("*.apps.local", ("/", "Prefix", "wild")),
        rule(None, ("/catchall", "ImplementationSpecific", "any")),
    ], default="fallback"),
)


@pytest.mark.parametrize(
    ("host", "path", "service"),
    [
        ("blog.local", "/", "blog"),
        ("blog.local", "/posts/1", "blog"),
        ("shop.local", "/cart", "shop"),
        ("shop.local", "/api", "api"),
        ("shop.local", "/api/", "api"),
        ("shop.local", "/api/items", "api"),
        ("shop.local", "/apis", "shop"),  # by path element, not by string prefix
        ("shop.local", "/api/v2", "apiv2"),  # a rule's trailing slash is ignored
        ("shop.local", "/api/v2/x", "apiv2"),
        ("shop.local", "/api/exact", "exact"),
        ("shop.local", "/api/exact/more", "api"),  # Exact is exact
        ("x.apps.local", "/", "wild"),
        ("y.x.apps.local", "/catchall", "any"),  # a wildcard covers one label only
        ("apps.local", "/catchall", "any"),
        ("other.local", "/catchall/deeper", "any"),
        ("other.local", "/nothing", "fallback"),
    ],
    ids=lambda v: str(v),
)
def test_route(host: str, path: str, service: str) -> None:
    assert served_by(ROUTES, host, path) == service


def test_no_rule_and_no_default_is_none() -> None:
    table = table_of(ingress("web", [rule("blog.local", ("/", "Prefix", "blog"))]))
    assert table.route("shop.local", "/") is None
    assert table.route("blog.local", "/x").service == "blog"


def test_exact_host_without_matching_path_does_not_fall_to_wildcard() -> None:
    table = table_of(ingress("web", [
        rule("a.apps.local", ("/only", "Exact", "exact")),
        rule("*.apps.local", ("/", "Prefix", "wild")),
    ]))
    assert table.route("a.apps.local", "/other") is None
    assert table.route("b.apps.local", "/other").service == "wild"


def test_exact_beats_prefix_of_same_path() -> None:
    table = table_of(ingress("web", [rule("h", ("/p", "Prefix", "api"), ("/p", "Exact", "exact"))]))
    assert served_by(table, "h", "/p") == "exact"
    assert served_by(table, "h", "/p/q") == "api"


def test_older_ingress_wins_a_conflict_and_paths_merge_across_ingresses() -> None:
    newer = ingress("newer", [rule("h", ("/", "Prefix", "shop"), ("/n", "Prefix", "api"))], created="2026-02-01T00:00:00Z")
    older = ingress("older", [rule("h", ("/", "Prefix", "blog"))], created="2026-01-01T00:00:00Z")
    table = table_of(newer, older)
    assert served_by(table, "h", "/") == "blog"
    assert served_by(table, "h", "/n/1") == "api"


def test_class_selection() -> None:
    ours = ingress("ours", [rule("a", ("/", "Prefix", "blog"))])
    theirs = ingress("theirs", [rule("b", ("/", "Prefix", "blog"))], cls="nginx")
    classless = ingress("classless", [rule("c", ("/", "Prefix", "blog"))], cls=None)
    renamed = ingress("renamed", [rule("d", ("/", "Prefix", "blog"))], cls="custom")
    custom = {"metadata": {"name": "custom"}, "spec": {"controller": "tuik8s.io/ingress"}}
    default_ours = {"metadata": {"name": "tuik8s", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                    "spec": {"controller": "tuik8s.io/ingress"}}
    default_theirs = {"metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                      "spec": {"controller": "k8s.io/ingress-nginx"}}

    t = table_of(ours, theirs, classless, renamed)
    assert t.ingresses == ("default/ours",)
    t = table_of(ours, theirs, classless, renamed, classes=[custom, default_ours])
    assert set(t.ingresses) == {"default/ours", "default/classless", "default/renamed"}
    t = table_of(ours, theirs, classless, classes=[default_theirs])
    assert t.ingresses == ("default/ours",)


def test_service_port_by_number_and_name_and_endpoint_port_by_name() -> None:
    services = {"default/multi": svc("multi", ("http", 80), ("admin", 9000))}
    endpoints = {"default/multi": {"metadata": {"name": "multi", "namespace": "default"}, "subsets": [{
        "addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}],
        "notReadyAddresses": [{"ip": "10.1.0.3"}],
        "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
    }]}}
    ing = ingress("m", [{"host": "m", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend("multi", 9000)},
        {"path": "/web", "pathType": "Prefix", "backend": backend("multi", "http")},
    ]}}])
    t = build_table([ing], services, endpoints)
    assert t.route("m", "/").endpoints == (("10.1.0.1", 9090), ("10.1.0.2", 9090))
    assert t.route("m", "/web").endpoints == (("10.1.0.1", 8080), ("10.1.0.2", 8080))


@pytest.mark.parametrize(
    ("services", "endpoints", "port", "problem"),
    [
        ({}, {}, "http", "service default/blog does not exist"),
        ({"default/blog": svc("blog", ("http", 80))}, {}, "web", "service default/blog has no port web"),
        ({"default/blog": svc("blog", ("http", 80))}, {}, "http", "service default/blog has no ready endpoints for port http"),
        ({"default/blog": svc("blog", ("http", 80))}, {"default/blog": eps("blog", [], 8080, not_ready=["10.0.0.9"])},
         80, "service default/blog has no ready endpoints for port 80"),
    ],
    ids=["no-service", "no-port", "no-endpoints", "only-not-ready"],
)
def test_backend_problems_name_the_service(services, endpoints, port, problem) -> None:
    ing = ingress("w", [{"host": "h", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("blog", port)}]}}])
    b = build_table([ing], services, endpoints).route("h", "/")
    assert b is not None and b.endpoints == () and b.problem == problem


def _tls_secret(name: str, cert: bytes, key: bytes, type_: str = "kubernetes.io/tls") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "type": type_,
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}}


def test_tls_certs_by_sni() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
    key = b"-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n"
    secrets = {
        "default/blog-tls": _tls_secret("blog-tls", pem, key),
        "default/wild-tls": _tls_secret("wild-tls", pem + b"w", key),
        "default/opaque": _tls_secret("opaque", pem, key, "Opaque"),
    }
    ing = ingress("w", [rule("blog.local", ("/", "Prefix", "blog"))], tls=[
        {"hosts": ["blog.local"], "secretName": "blog-tls"},
        {"hosts": ["*.apps.local"], "secretName": "wild-tls"},
        {"hosts": ["shop.local"], "secretName": "opaque"},
        {"hosts": ["gone.local"], "secretName": "missing"},
    ])
    t = table_of(ing, secrets=secrets)
    assert t.cert_for("blog.local").source == "default/blog-tls"
    assert t.cert_for("BLOG.local").source == "default/blog-tls"
    assert t.cert_for("x.apps.local").source == "default/wild-tls"
    assert t.cert_for("shop.local") is None  # not a kubernetes.io/tls secret
    assert t.cert_for(None) is None
    assert tls_cert_from_secret(secrets["default/opaque"]) is None


def test_tables_compare_equal_when_nothing_changed() -> None:
    assert table_of(ingress("web", [rule("blog.local", ("/", "Prefix", "blog"))])) == table_of(
        ingress("web", [rule("blog.local", ("/", "Prefix", "blog"))])
    )


@pytest.mark.parametrize(("address", "entry"), [("127.0.0.1", {"ip": "127.0.0.1"}), ("::1", {"ip": "::1"}),
                                                 ("ingress.local", {"hostname": "ingress.local"})])
def test_load_balancer_entry(address: str, entry: dict[str, str]) -> None:
    assert load_balancer_entry(address) == entry
