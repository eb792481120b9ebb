"""The routing table: Ingresses, Services and Endpoints folded into one immutable lookup.

The controller rebuilds the whole table whenever any input changes and hands the new
one to the proxy workers, which swap a single reference. A request therefore always
sees one consistent snapshot (never an Ingress whose Service was half-updated), and the
hot path is plain dict and tuple lookups with no locks.

Matching follows the Ingress spec and what ingress-nginx does where the spec is silent:

- hosts: an exact host beats a wildcard (`*.example.com` matches exactly one more
  label), which beats rules without a host; the most specific host that has rules is
  the one used, and a request none of its paths match goes to the defaultBackend;
- paths: the longest path wins; `Exact` beats `Prefix` at the same length; `Prefix`
  matches by path element (`/foo` matches `/foo` and `/foo/bar`, never `/foobar`), a
  trailing slash of the rule is ignored; `ImplementationSpecific` is treated as Prefix;
- the same host and path in two Ingresses: the older Ingress wins (creationTimestamp,
  then namespace/name), as in ingress-nginx; so does the older defaultBackend.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Obj = Mapping[str, Any]


class Lookup(Protocol):
    """Objects by `namespace/name`: a dict, or an informer's cache."""

    def get(self, key: str, /) -> Any: ...


CONTROLLER_NAME = "tuik8s.io/ingress"
DEFAULT_CLASS = "tuik8s"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
TLS_SECRET_TYPE = "kubernetes.io/tls"


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service port and its ready endpoints; `problem` says why there are none."""

    namespace: str
    service: str
    port: str
    endpoints: tuple[tuple[str, int], ...] = ()
    problem: str = ""

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True, slots=True)
class PathRule:
    """One path of one rule; `path` has no trailing slash ("" for `/`)."""

    path: str
    exact: bool
    backend: Backend
    source: str  # namespace/name of the Ingress, for messages

    def matches(self, path: str) -> bool:
        if self.exact:
            return path == self.path
        return not self.path or path == self.path or path.startswith(self.path + "/")


@dataclass(frozen=True, slots=True)
class TlsCert:
    """A certificate chain and key in PEM; `digest` names it for caching contexts."""

    cert_pem: bytes
    key_pem: bytes
    source: str  # namespace/name of the Secret
    digest: str = ""


@dataclass(frozen=True)
class RoutingTable:
    """Everything a proxy worker needs to route a request and terminate TLS."""

    hosts: Mapping[str, tuple[PathRule, ...]] = field(default_factory=dict)
    wildcards: Mapping[str, tuple[PathRule, ...]] = field(default_factory=dict)
    any_host: tuple[PathRule, ...] = ()
    default: Backend | None = None
    certs: Mapping[str, TlsCert] = field(default_factory=dict)
    wildcard_certs: Mapping[str, TlsCert] = field(default_factory=dict)
    default_cert: TlsCert | None = None
    ingresses: tuple[str, ...] = ()  # namespace/name of every Ingress of our class

    def rules_for(self, host: str) -> tuple[PathRule, ...]:
        """The rules of the most specific host entry that exists for `host`."""
        rules = self.hosts.get(host)
        if rules is not None:
            return rules
        _, dot, parent = host.partition(".")
        if dot:
            rules = self.wildcards.get(parent)
            if rules is not None:
                return rules
        return self.any_host

    def route(self, host: str, path: str) -> Backend | None:
        """The backend for a request, or None when no rule (and no default) matches.

        `host` is lower case without a port; `path` is the request path without query.
        """
        for rule in self.rules_for(host):
            if rule.matches(path):
                return rule.backend
        return self.default

    def cert_for(self, sni: str | None) -> TlsCert | None:
        """The certificate for a TLS server name: exact, then wildcard, then the default."""
        if sni:
            host = sni.lower().rstrip(".")
            cert = self.certs.get(host)
            if cert is not None:
                return cert
            _, dot, parent = host.partition(".")
            if dot and (cert := self.wildcard_certs.get(parent)) is not None:
                return cert
        return self.default_cert


# ---- which Ingresses are ours -------------------------------------------------------------


def our_classes(classes: Iterable[Obj], class_name: str = DEFAULT_CLASS) -> tuple[set[str], bool]:
    """The IngressClass names we serve, and whether the cluster's default class is ours.

    Ours: the class called `class_name` (so Ingresses naming it work even before its
    IngressClass exists) and every IngressClass whose controller is ours.
    """
    names = {class_name}
    defaults: list[str] = []
    for cls in classes:
        meta = cls.get("metadata") or {}
        name = str(meta.get("name") or "")
        controller = (cls.get("spec") or {}).get("controller")
        is_default = str((meta.get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION, "")).lower() == "true"
        if is_default:
            defaults.append(name)
        if controller == CONTROLLER_NAME:
            names.add(name)
    # with two default classes the API server refuses to default; we take ours if any is
    default_is_ours = any(d in names for d in defaults)
    return names, default_is_ours


def is_ours(ingress: Obj, names: set[str], default_is_ours: bool) -> bool:
    """Whether an Ingress belongs to us: its class is ours, or it has none and the default is."""
    spec = ingress.get("spec") or {}
    cls = spec.get("ingressClassName")
    if not cls:
        cls = ((ingress.get("metadata") or {}).get("annotations") or {}).get(LEGACY_CLASS_ANNOTATION)
    if cls:
        return str(cls) in names
    return default_is_ours


# ---- building -----------------------------------------------------------------------------


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _age_key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or "~"), _key(obj))


def resolve_backend(
    namespace: str,
    backend: Obj,
    services: Lookup,
    endpoints: Lookup,
) -> Backend | None:
    """The `Backend` an Ingress backend names, resolved to ready endpoint addresses.

    None for a `resource` backend, which this controller does not serve.
    """
    svc_ref = backend.get("service")
    if not isinstance(svc_ref, Mapping):
        return None
    name = str(svc_ref.get("name") or "")
    port_ref = svc_ref.get("port") or {}
    number = port_ref.get("number")
    port_name = port_ref.get("name")
    label = str(number) if number is not None else str(port_name or "")
    key = f"{namespace}/{name}"
    svc = services.get(key)
    if svc is None:
        return Backend(namespace, name, label, problem=f"service {key} does not exist")
    svc_port = None
    for p in (svc.get("spec") or {}).get("ports") or []:
        if (number is not None and p.get("port") == number) or (port_name and p.get("name") == port_name):
            svc_port = p
            break
    if svc_port is None:
        return Backend(namespace, name, label, problem=f"service {key} has no port {label}")
    wanted = svc_port.get("name") or ""
    addresses: set[tuple[str, int]] = set()
    ep = endpoints.get(key)
    for subset in (ep or {}).get("subsets") or []:
        ports = subset.get("ports") or []
        ep_port = None
        for p in ports:
            if (p.get("name") or "") == wanted and (p.get("protocol") or "TCP") == "TCP":
                ep_port = p.get("port")
                break
        if ep_port is None and len(ports) == 1 and not wanted:
            ep_port = ports[0].get("port")
        if not isinstance(ep_port, int):
            continue
        for addr in subset.get("addresses") or []:
            ip = addr.get("ip")
            if ip:
                addresses.add((str(ip), ep_port))
    if not addresses:
        return Backend(namespace, name, label, problem=f"service {key} has no ready endpoints for port {label}")
    return Backend(namespace, name, label, tuple(sorted(addresses)))


def _normal_path(path: str) -> str:
    return path.rstrip("/") if path else ""


def tls_cert_from_secret(secret: Obj | None) -> TlsCert | None:
    """The certificate of a `kubernetes.io/tls` Secret, or None when it is not usable."""
    if secret is None or secret.get("type") != TLS_SECRET_TYPE:
        return None
    data = secret.get("data") or {}
    try:
        cert = base64.b64decode(str(data.get("tls.crt") or ""), validate=True)
        key = base64.b64decode(str(data.get("tls.key") or ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    if b"-----BEGIN" not in cert or b"-----BEGIN" not in key:
        return None
    digest = hashlib.sha256(cert + b"\0" + key).hexdigest()
    return TlsCert(cert, key, _key(secret), digest)


def build_table(
    ingresses: Iterable[Obj],
    services: Lookup,
    endpoints: Lookup,
    secrets: Lookup | None = None,
    classes: Iterable[Obj] = (),
    class_name: str = DEFAULT_CLASS,
) -> RoutingTable:
    """Fold every Ingress of our class into a `RoutingTable`.

    `services`, `endpoints` and `secrets` map `namespace/name` to the object.
    """
    names, default_is_ours = our_classes(classes, class_name)
    ours = sorted((i for i in ingresses if is_ours(i, names, default_is_ours)), key=_age_key)
    secrets = secrets or {}
    cache: dict[tuple[str, str], Backend | None] = {}

    def backend_of(namespace: str, ref: Obj) -> Backend | None:
        svc = ref.get("service") or {}
        port = svc.get("port") or {}
        ck = (namespace, f"{svc.get('name')}:{port.get('number')}:{port.get('name')}")
        if ck not in cache:
            cache[ck] = resolve_backend(namespace, ref, services, endpoints)
        return cache[ck]

    hosts: dict[str, list[PathRule]] = {}
    wildcards: dict[str, list[PathRule]] = {}
    any_host: list[PathRule] = []
    default: Backend | None = None
    certs: dict[str, TlsCert] = {}
    wildcard_certs: dict[str, TlsCert] = {}
    default_cert: TlsCert | None = None
    for ing in ours:
        meta = ing.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        source = _key(ing)
        spec = ing.get("spec") or {}
        if default is None and isinstance(spec.get("defaultBackend"), Mapping):
            default = backend_of(namespace, spec["defaultBackend"])
        for rule in spec.get("rules") or []:
            host = str(rule.get("host") or "").lower()
            if host.startswith("*."):
                bucket = wildcards.setdefault(host[2:], [])
            elif host:
                bucket = hosts.setdefault(host, [])
            else:
                bucket = any_host
            for p in (rule.get("http") or {}).get("paths") or []:
                backend = backend_of(namespace, p.get("backend") or {})
                if backend is None:
                    continue
                exact = p.get("pathType") == "Exact"
                path = str(p.get("path") or "/")
                bucket.append(PathRule(path if exact else _normal_path(path), exact, backend, source))
        for entry in spec.get("tls") or []:
            cert = tls_cert_from_secret(secrets.get(f"{namespace}/{entry.get('secretName') or ''}"))
            if cert is None:
                continue
            tls_hosts = [str(h).lower() for h in entry.get("hosts") or []]
            if not tls_hosts and default_cert is None:
                default_cert = cert
            for h in tls_hosts:
                if h.startswith("*."):
                    wildcard_certs.setdefault(h[2:], cert)
                else:
                    certs.setdefault(h, cert)
    return RoutingTable(
        hosts={h: _ordered(r) for h, r in hosts.items()},
        wildcards={h: _ordered(r) for h, r in wildcards.items()},
        any_host=_ordered(any_host),
        default=default,
        certs=certs,
        wildcard_certs=wildcard_certs,
        default_cert=default_cert,
        ingresses=tuple(_key(i) for i in ours),
    )


def _ordered(rules: list[PathRule]) -> tuple[PathRule, ...]:
    """Longest path first, Exact before Prefix at one length; ties keep the older Ingress."""
    seen: set[tuple[str, bool]] = set()
    kept = []
    for r in rules:  # already oldest Ingress first
        if (r.path, r.exact) not in seen:
            seen.add((r.path, r.exact))
            kept.append(r)
    return tuple(sorted(kept, key=lambda r: (-len(r.path), not r.exact)))


def load_balancer_entry(address: str) -> dict[str, str]:
    """`{"ip": ...}` for an IP address, `{"hostname": ...}` for a name, as Kubernetes has it."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return {"hostname": address}
    return {"ip": address}
