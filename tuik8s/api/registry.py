"""The resource registry: every kind the API serves, with its REST names.

One `ResourceInfo` per resource is all the API server, discovery, OpenAPI and the
clients need to know about a kind; adding a kind is adding an entry here plus its
defaulting and validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    """A subresource such as `pods/status`; `kind` may live in another group."""

    name: str
    kind: str
    group: str = ""
    version: str = "v1"
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceInfo:
    """REST identity of one resource: its group/version/kind and plural path segment."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # the spec-like top-level fields: a change in them bumps metadata.generation
    spec_fields: tuple[str, ...] = ("spec",)
    # whether the main resource ignores writes to `status` (they go to /status)
    has_status: bool = False
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, as Kubernetes names a resource in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        """The store's name for this resource: `deployments.apps`, `pods`."""
        return self.group_resource

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


_STATUS = Subresource("status", "")  # kind filled in per resource below
_SCALE = Subresource("scale", "Scale", group="autoscaling", version="v1")


def _status(kind: str) -> Subresource:
    return Subresource("status", kind)


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subs: tuple[Subresource, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    spec_fields: tuple[str, ...] = ("spec",),
) -> ResourceInfo:
    subs_full = tuple(
        Subresource("status", kind, group, version) if s is _STATUS else s for s in subs
    )
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=subs_full,
        verbs=verbs,
        spec_fields=spec_fields,
        has_status=any(s.name == "status" for s in subs_full),
    )


_ALL = ("all",)

RESOURCES: tuple[ResourceInfo, ...] = (
    # core/v1
    _r("", "v1", "Namespace", "namespaces", namespaced=False, short=("ns",),
       subs=(_STATUS, Subresource("finalize", "Namespace", verbs=("update",))),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Pod", "pods", short=("po",), categories=_ALL, subs=(
        _STATUS,
        Subresource("binding", "Binding", verbs=("create",)),
        Subresource("eviction", "Eviction", group="policy", version="v1", verbs=("create",)),
        Subresource("log", "Pod", verbs=("get",)),
        Subresource("exec", "PodExecOptions", verbs=("create", "get")),
        Subresource("attach", "PodAttachOptions", verbs=("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", verbs=("create", "get")),
    )),
    _r("", "v1", "Node", "nodes", namespaced=False, short=("no",), subs=(_STATUS,)),
    _r("", "v1", "Service", "services", short=("svc",), categories=_ALL, subs=(_STATUS,),
       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Endpoints", "endpoints", short=("ep",), spec_fields=("subsets",)),
    _r("", "v1", "ConfigMap", "configmaps", short=("cm",), spec_fields=("data", "binaryData")),
    _r("", "v1", "Secret", "secrets", spec_fields=("data", "stringData", "type")),
    _r("", "v1", "Event", "events", short=("ev",), spec_fields=()),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",), spec_fields=()),
    _r("", "v1", "Binding", "bindings", verbs=("create",), spec_fields=("target",)),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", short=("deploy",), categories=_ALL,
       subs=(_STATUS, _SCALE)),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), categories=_ALL,
       subs=(_STATUS, _SCALE)),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), categories=_ALL, subs=(_STATUS,)),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", spec_fields=("data", "revision")),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", categories=_ALL, subs=(_STATUS,)),
    # networking.k8s.io/v1
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), subs=(_STATUS,)),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
       spec_fields=("addressType", "endpoints", "ports")),
    # autoscaling/v2
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
       short=("hpa",), categories=_ALL, subs=(_STATUS,)),
)

# Served by handlers of their own, never stored under these names: autoscaling/v1 HPAs are
# converted to and from the stored autoscaling/v2 objects; metrics.k8s.io is read from the
# metrics scraper's memory (upstream's metrics-server). Discovery lists them; the generic
# REST storage, the garbage collector and namespace deletion do not see them.
EXTRA_RESOURCES: tuple[ResourceInfo, ...] = (
    _r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
       short=("hpa",), categories=_ALL, subs=(_STATUS,)),
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", namespaced=False, verbs=("get", "list"),
       spec_fields=()),
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=("get", "list"), spec_fields=()),
)

_BY_GVR: dict[tuple[str, str, str], ResourceInfo] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KEY: dict[str, ResourceInfo] = {r.key: r for r in RESOURCES}
_BY_GVK: dict[tuple[str, str, str], ResourceInfo] = {
    (r.group, r.version, r.kind): r for r in RESOURCES
}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    """The resource at `/apis/<group>/<version>/<plural>` (group "" for core)."""
    return _BY_GVR.get((group, version, plural))


def by_key(key: str) -> ResourceInfo:
    """The resource the store knows as `key` (`pods`, `deployments.apps`)."""
    return _BY_KEY[key]


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource serving `kind` in `api_version` (`apps/v1`, `Deployment`)."""
    group, _, version = api_version.rpartition("/")
    return _BY_GVK.get((group, version, kind))


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in a stable order (a group's first
    version is its preferred one)."""
    seen: list[tuple[str, str]] = []
    for r in (*RESOURCES, *EXTRA_RESOURCES):
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def resources_in(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in (*RESOURCES, *EXTRA_RESOURCES) if r.group == group and r.version == version]


SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
