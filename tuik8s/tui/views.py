"""What each list view shows: its resource, its aliases and its kubectl columns.

The columns are computed here, on the client, from the objects the informers hold, and
follow what `kubectl get` prints (upstream's printers): against a foreign cluster we can
count on the objects but not on any server's Table output, and one code path for every
cluster is simpler than two. A row is a tuple of strings (the slim display model); an AGE
cell holds the raw timestamp and is turned into "5m" when drawn, so ages stay true without
rebuilding rows.

Namespaced views carry the namespace as their first cell; the table hides that column
when one namespace is shown, as kubectl shows NAMESPACE only with `-A`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tuik8s.api.endpointcells import endpoints_cell, endpointslice_cells

Obj = dict[str, Any]
Row = tuple[str, ...]
_E: dict[str, Any] = {}


@dataclass(frozen=True)
class Column:
    """One column: its header, how it sorts, and how wide it may grow."""

    name: str
    sort_key: str = ""  # the shift+letter that sorts by this column ("" = none)
    numeric: bool = False
    age: bool = False  # the cell is a timestamp, drawn as an age
    max_width: int = 48


@dataclass(frozen=True)
class ViewSpec:
    """A list view of one resource."""

    name: str  # "pods"
    resource: str  # the client's resource name ("pods", "deployments.apps")
    title: str  # "Pods"
    aliases: tuple[str, ...]
    columns: tuple[Column, ...]
    row: Callable[[Obj], Row]
    namespaced: bool = True
    # selection keys that make sense here: scale restart logs node (cordon, drain, lab)
    verbs: frozenset[str] = field(default_factory=frozenset)
    status: Callable[[Row], str] | None = None  # row -> style class ("", warn, error, done, term)
    default_sort: int | None = None  # a column to sort by at first (None = namespace/name)
    default_reverse: bool = False


# ---- helpers ---------------------------------------------------------------------------------


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or _E


def _ns_name(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or _E
    return meta.get("namespace") or "", meta.get("name") or ""


def _created(obj: Obj) -> str:
    return (obj.get("metadata") or _E).get("creationTimestamp") or ""


def _labels(labels: Any) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _selector(selector: Any) -> str:
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or _E).items())]
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or ()
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or "<none>"


def _containers_images(template: Any) -> tuple[str, str]:
    containers = ((template or _E).get("spec") or _E).get("containers") or ()
    return (
        ",".join(c.get("name") or "" for c in containers),
        ",".join(c.get("image") or "" for c in containers),
    )


def _first_true(conditions: Iterable[Obj], type_: str) -> bool:
    for c in conditions:
        if c.get("type") == type_:
            return c.get("status") == "True"
    return False


def _int(value: Any) -> str:
    return str(value or 0)


# ---- ages ------------------------------------------------------------------------------------

_parsed: dict[str, float] = {}


def timestamp_seconds(ts: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp; cached (rows share timestamps)."""
    if not ts:
        return None
    value = _parsed.get(ts)
    if value is None:
        try:
            t = datetime.fromisoformat(ts)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        value = t.timestamp()
        if len(_parsed) > 100_000:
            _parsed.clear()
        _parsed[ts] = value
    return value


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints AGE: "45s", "3m20s", "5h", "12d", "2y30d"."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d" if hours % 24 == 0 else f"{days}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        return f"{years}y" if days % 365 == 0 else f"{years}y{days % 365}d"
    return f"{years}y"


def age(ts: str, now: float) -> str:
    seconds = timestamp_seconds(ts)
    return "<unknown>" if seconds is None else human_duration(now - seconds)


# ---- pods ------------------------------------------------------------------------------------


def pod_status(pod: Obj) -> tuple[int, int, str, int]:
    """(ready, total, STATUS, restarts) as kubectl computes them."""
    spec = pod.get("spec") or _E
    status = pod.get("status") or _E
    conditions = status.get("conditions") or ()
    total = len(spec.get("containers") or ())
    ready = restarts = 0
    reason = status.get("reason") or status.get("phase") or ""
    init_specs = spec.get("initContainers") or ()
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total += len(sidecars)
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        restarts += cs.get("restartCount") or 0
        state = cs.get("state") or _E
        terminated = state.get("terminated")
        if terminated is not None and not terminated.get("exitCode"):
            continue
        if cs.get("name") in sidecars and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode') or 0}"
        else:
            waiting = (state.get("waiting") or _E).get("reason")
            reason = "Init:" + waiting if waiting and waiting != "PodInitializing" else f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing or _first_true(conditions, "Initialized"):
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += cs.get("restartCount") or 0
            state = cs.get("state") or _E
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode') or 0}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _first_true(conditions, "Ready") else "NotReady"
    if (pod.get("metadata") or _E).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return ready, total, reason or "Pending", restarts


def pod_row(pod: Obj) -> Row:
    ns, name = _ns_name(pod)
    ready, total, reason, restarts = pod_status(pod)
    status = pod.get("status") or _E
    return (
        ns, name, f"{ready}/{total}", reason, str(restarts), _created(pod),
        status.get("podIP") or "<none>", (pod.get("spec") or _E).get("nodeName") or "<none>",
    )


_POD_ERRORS = frozenset((
    "CrashLoopBackOff", "Error", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "OOMKilled", "Failed", "Unknown",
    "Evicted", "ContainerStatusUnknown", "RunContainerError", "NodeLost", "UnexpectedAdmissionError",
))


def pod_style(row: Row) -> str:
    status = row[3]
    if status == "Running":
        ready, _, total = row[2].partition("/")
        return "" if ready == total else "warn"
    if status in ("Completed", "Succeeded"):
        return "done"
    if status == "Terminating":
        return "term"
    if status in _POD_ERRORS or status.startswith(("Init:Error", "Init:Crash", "ExitCode:", "Signal:", "Init:ExitCode")):
        return "error"
    return "warn"


# ---- workloads -------------------------------------------------------------------------------


def _replicas(spec: Obj) -> int:
    value = spec.get("replicas")
    return 1 if value is None else int(value)


def deployment_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    spec, status = obj.get("spec") or _E, obj.get("status") or _E
    return (
        ns, name, f"{status.get('readyReplicas') or 0}/{_replicas(spec)}",
        _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")), _created(obj),
        *_containers_images(spec.get("template")),
    )


def ready_style(row: Row, col: int = 2) -> str:
    ready, _, want = row[col].partition("/")
    return "" if ready == want else "warn"


def replicaset_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    spec, status = obj.get("spec") or _E, obj.get("status") or _E
    return (
        ns, name, str(_replicas(spec)), _int(status.get("replicas")),
        _int(status.get("readyReplicas")), _created(obj), *_containers_images(spec.get("template")),
    )


def replicaset_style(row: Row) -> str:
    return "" if row[2] == row[4] else "warn"


def daemonset_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    spec, status = obj.get("spec") or _E, obj.get("status") or _E
    template = spec.get("template") or _E
    return (
        ns, name, _int(status.get("desiredNumberScheduled")), _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")), _labels((template.get("spec") or _E).get("nodeSelector")),
        _created(obj),
    )


def daemonset_style(row: Row) -> str:
    return "" if row[2] == row[4] else "warn"


def job_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    spec, status = obj.get("spec") or _E, obj.get("status") or _E
    succeeded = status.get("succeeded") or 0
    completions = spec.get("completions")
    if completions is not None:
        done = f"{succeeded}/{completions}"
    elif (spec.get("parallelism") or 0) > 1:
        done = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        done = f"{succeeded}/1"
    conditions = status.get("conditions") or ()
    if _first_true(conditions, "Complete"):
        state = "Complete"
    elif _first_true(conditions, "Failed"):
        state = "Failed"
    elif _meta(obj).get("deletionTimestamp"):
        state = "Terminating"
    elif _first_true(conditions, "Suspended"):
        state = "Suspended"
    else:
        state = "Running"
    start = timestamp_seconds(status.get("startTime") or "")
    end = timestamp_seconds(status.get("completionTime") or "")
    if start is None:
        duration = ""
    elif end is None:
        duration = human_duration(datetime.now(UTC).timestamp() - start)
    else:
        duration = human_duration(end - start)
    return (ns, name, state, done, duration, _created(obj), *_containers_images(spec.get("template")))


def job_style(row: Row) -> str:
    return {"Complete": "done", "Failed": "error", "Terminating": "term"}.get(row[2], "")


# ---- nodes -----------------------------------------------------------------------------------

_ROLE_PREFIX = "node-role.kubernetes.io/"


def node_ready(node: Obj) -> str:
    """Ready, NotReady or Unknown from the node's Ready condition."""
    state = "Unknown"
    for c in (node.get("status") or _E).get("conditions") or ():
        if c.get("type") == "Ready":
            state = "Ready" if c.get("status") == "True" else "NotReady"
    return state


def node_row(obj: Obj) -> Row:
    meta, spec, status = _meta(obj), obj.get("spec") or _E, obj.get("status") or _E
    state = node_ready(obj)
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = set()
    for key, value in (meta.get("labels") or _E).items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX):]:
            roles.add(key[len(_ROLE_PREFIX):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    internal = "<none>"
    for address in status.get("addresses") or ():
        if address.get("type") == "InternalIP":
            internal = address.get("address") or ""
            break
    info = status.get("nodeInfo") or _E
    return (
        meta.get("name") or "", state, ",".join(sorted(roles)) or "<none>", _created(obj),
        info.get("kubeletVersion") or "", internal,
    )


def node_style(row: Row) -> str:
    if not row[1].startswith("Ready"):
        return "error"
    return "warn" if "SchedulingDisabled" in row[1] else ""


# ---- networking ------------------------------------------------------------------------------


def _lb_ingress(load_balancer: Any) -> str:
    out = []
    for entry in (load_balancer or _E).get("ingress") or ():
        if entry.get("ip"):
            out.append(entry["ip"])
        elif entry.get("hostname"):
            out.append(entry["hostname"])
    return ",".join(out)


def service_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    spec = obj.get("spec") or _E
    kind = spec.get("type") or "ClusterIP"
    ips = spec.get("clusterIPs")
    cluster_ip = (ips[0] if ips else spec.get("clusterIP")) or "<none>"
    external_ips = spec.get("externalIPs") or ()
    if kind in ("ClusterIP", "NodePort"):
        external = ",".join(external_ips) or "<none>"
    elif kind == "LoadBalancer":
        external = ",".join(filter(None, [_lb_ingress((obj.get("status") or _E).get("loadBalancer")), *external_ips])) or "<pending>"
    elif kind == "ExternalName":
        external = spec.get("externalName") or ""
    else:
        external = "<unknown>"
    ports = []
    for p in spec.get("ports") or ():
        proto = p.get("protocol") or "TCP"
        ports.append(f"{p.get('port') or 0}:{p['nodePort']}/{proto}" if p.get("nodePort") else f"{p.get('port') or 0}/{proto}")
    return (ns, name, kind, cluster_ip, external, ",".join(ports) or "<none>", _created(obj), _labels(spec.get("selector")))


def endpoints_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    return (ns, name, endpoints_cell(obj.get("subsets")), _created(obj))


def endpointslice_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    return (ns, name, *endpointslice_cells(obj), _created(obj))


def ingress_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    spec = obj.get("spec") or _E
    rules = spec.get("rules") or ()
    hosts = [r["host"] for r in rules if r.get("host")]
    host_cell = ",".join(hosts[:3]) + (f" + {len(rules) - 3} more..." if len(rules) > 3 else "") if hosts else "*"
    cls = spec.get("ingressClassName")
    return (
        ns, name, "<none>" if cls is None else cls, host_cell,
        _lb_ingress((obj.get("status") or _E).get("loadBalancer")), "80, 443" if spec.get("tls") else "80",
        _created(obj),
    )


# ---- config, namespaces, events --------------------------------------------------------------


def configmap_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    return (ns, name, str(len(obj.get("data") or ()) + len(obj.get("binaryData") or ())), _created(obj))


def secret_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    return (ns, name, obj.get("type") or "", str(len(obj.get("data") or ())), _created(obj))


def namespace_row(obj: Obj) -> Row:
    return (_meta(obj).get("name") or "", (obj.get("status") or _E).get("phase") or "", _created(obj))


def namespace_style(row: Row) -> str:
    return "term" if row[1] == "Terminating" else ""


def event_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    involved = obj.get("involvedObject") or _E
    last = obj.get("lastTimestamp") or (obj.get("series") or _E).get("lastObservedTime") \
        or obj.get("eventTime") or obj.get("firstTimestamp") or _created(obj)
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved.get('name')}" if involved.get("name") else kind
    message = " ".join((obj.get("message") or "").split())
    return (ns, last, obj.get("type") or "", obj.get("reason") or "", target, message, name)


def event_style(row: Row) -> str:
    return "warn" if row[2] == "Warning" else ""


# ---- autoscaling -----------------------------------------------------------------------------


def _hpa_metric(spec: Obj, status: Obj | None) -> str:
    """One metric as kubectl prints it in TARGETS: `cpu: 30%/50%`, `memory: 20Mi/100Mi`."""
    kind = spec.get("type") or ""
    field = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
             "Object": "object", "External": "external"}.get(kind)
    if field is None:
        return "<unknown type>"
    source = spec.get(field) or _E
    target = source.get("target") or _E
    current_src = (status or _E).get(field)
    current = (current_src or _E).get("current") or _E
    prefix = f"{source.get('name')}: " if field in ("resource", "containerResource") else ""
    if target.get("averageUtilization") is not None or (field in ("resource", "containerResource")
                                                        and target.get("averageValue") is None):
        now = f"{current['averageUtilization']}%" if current.get("averageUtilization") is not None else "<unknown>"
        want = target.get("averageUtilization")
        return f"{prefix}{now}/{'<auto>' if want is None else f'{want}%'}"
    if target.get("averageValue") is not None:
        now = str(current.get("averageValue")) if current_src is not None and current.get("averageValue") is not None else "<unknown>"
        avg = " (avg)" if field in ("object", "external") else ""
        return f"{prefix}{now}/{target['averageValue']}{avg}"
    now = str(current.get("value")) if current_src is not None and current.get("value") is not None else "<unknown>"
    return f"{prefix}{now}/{target.get('value')}"


def hpa_row(obj: Obj) -> Row:
    ns, name = _ns_name(obj)
    spec, status = obj.get("spec") or _E, obj.get("status") or _E
    ref = spec.get("scaleTargetRef") or _E
    metrics, current = spec.get("metrics") or (), status.get("currentMetrics") or ()
    shown = [_hpa_metric(m, current[i] if i < len(current) else None) for i, m in enumerate(metrics[:2])]
    targets = ", ".join(shown) + (f" + {len(metrics) - 2} more..." if len(metrics) > 2 else "") if shown else "<none>"
    minimum = spec.get("minReplicas")
    return (
        ns, name, f"{ref.get('kind') or ''}/{ref.get('name') or ''}", targets,
        "<unset>" if minimum is None else str(minimum), _int(spec.get("maxReplicas")),
        _int(status.get("currentReplicas")), _created(obj),
    )


def hpa_style(row: Row) -> str:
    return "warn" if "<unknown>" in row[3] else ""


# ---- the views -------------------------------------------------------------------------------

NS = Column("NAMESPACE", "")
NAME = Column("NAME", "N")
AGE = Column("AGE", "A", age=True)


def _c(name: str, key: str = "", *, numeric: bool = False, max_width: int = 48) -> Column:
    return Column(name, key, numeric=numeric, max_width=max_width)


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(
        "pods", "pods", "Pods", ("po", "pod", "pods"),
        (NS, NAME, _c("READY", "R"), _c("STATUS", "S"), _c("RESTARTS", "T", numeric=True), AGE,
         _c("IP", "I"), _c("NODE", "O")),
        pod_row, verbs=frozenset({"logs", "restart"}), status=pod_style,
    ),
    ViewSpec(
        "deployments", "deployments.apps", "Deployments", ("dp", "deploy", "deployment", "deployments"),
        (NS, NAME, _c("READY", "R"), _c("UP-TO-DATE", "U", numeric=True), _c("AVAILABLE", "V", numeric=True),
         AGE, _c("CONTAINERS", "C"), _c("IMAGES", "I", max_width=60)),
        deployment_row, verbs=frozenset({"scale", "restart"}), status=ready_style,
    ),
    ViewSpec(
        "replicasets", "replicasets.apps", "ReplicaSets", ("rs", "replicaset", "replicasets"),
        (NS, NAME, _c("DESIRED", "D", numeric=True), _c("CURRENT", "C", numeric=True),
         _c("READY", "R", numeric=True), AGE, _c("CONTAINERS"), _c("IMAGES", "I", max_width=60)),
        replicaset_row, verbs=frozenset({"scale"}), status=replicaset_style,
    ),
    ViewSpec(
        "daemonsets", "daemonsets.apps", "DaemonSets", ("ds", "daemonset", "daemonsets"),
        (NS, NAME, _c("DESIRED", "D", numeric=True), _c("CURRENT", "C", numeric=True),
         _c("READY", "R", numeric=True), _c("UP-TO-DATE", "U", numeric=True),
         _c("AVAILABLE", "V", numeric=True), _c("NODE SELECTOR"), AGE),
        daemonset_row, verbs=frozenset({"restart"}), status=daemonset_style,
    ),
    ViewSpec(
        "jobs", "jobs.batch", "Jobs", ("job", "jobs"),
        (NS, NAME, _c("STATUS", "S"), _c("COMPLETIONS", "C"), _c("DURATION"), AGE, _c("CONTAINERS"),
         _c("IMAGES", "I", max_width=60)),
        job_row, status=job_style,
    ),
    ViewSpec(
        "hpa", "horizontalpodautoscalers.autoscaling", "HorizontalPodAutoscalers",
        ("hpa", "hpas", "horizontalpodautoscaler", "horizontalpodautoscalers"),
        (NS, NAME, _c("REFERENCE", "E"), _c("TARGETS", "G", max_width=60), _c("MINPODS", numeric=True),
         _c("MAXPODS", numeric=True), _c("REPLICAS", "R", numeric=True), AGE),
        hpa_row, status=hpa_style,
    ),
    ViewSpec(
        "services", "services", "Services", ("svc", "service", "services"),
        (NS, NAME, _c("TYPE", "T"), _c("CLUSTER-IP", "C"), _c("EXTERNAL-IP", "E"), _c("PORT(S)", "P"), AGE,
         _c("SELECTOR", max_width=60)),
        service_row,
    ),
    ViewSpec(
        "endpoints", "endpoints", "Endpoints", ("ep", "endpoint", "endpoints"),
        (NS, NAME, _c("ENDPOINTS", "E", max_width=80), AGE), endpoints_row,
    ),
    ViewSpec(
        "endpointslices", "endpointslices.discovery.k8s.io", "EndpointSlices",
        ("endpointslice", "endpointslices"),
        (NS, NAME, _c("ADDRESSTYPE", "T"), _c("PORTS", "P"), _c("ENDPOINTS", "E", max_width=80), AGE),
        endpointslice_row,
    ),
    ViewSpec(
        "ingresses", "ingresses.networking.k8s.io", "Ingresses", ("ing", "ingress", "ingresses"),
        (NS, NAME, _c("CLASS", "C"), _c("HOSTS", "H", max_width=60), _c("ADDRESS"), _c("PORTS"), AGE),
        ingress_row,
    ),
    ViewSpec(
        "configmaps", "configmaps", "ConfigMaps", ("cm", "configmap", "configmaps"),
        (NS, NAME, _c("DATA", "D", numeric=True), AGE), configmap_row,
    ),
    ViewSpec(
        "secrets", "secrets", "Secrets", ("sec", "secret", "secrets"),
        (NS, NAME, _c("TYPE", "T"), _c("DATA", "D", numeric=True), AGE), secret_row,
    ),
    ViewSpec(
        "nodes", "nodes", "Nodes", ("no", "node", "nodes"),
        (NAME, _c("STATUS", "S"), _c("ROLES", "R"), AGE, _c("VERSION", "V"), _c("INTERNAL-IP", "I")),
        node_row, namespaced=False, verbs=frozenset({"node"}), status=node_style,
    ),
    ViewSpec(
        "namespaces", "namespaces", "Namespaces", ("ns", "namespace", "namespaces"),
        (NAME, _c("STATUS", "S"), AGE), namespace_row, namespaced=False, status=namespace_style,
    ),
    ViewSpec(
        "events", "events", "Events", ("ev", "event", "events"),
        (NS, Column("LAST SEEN", "L", age=True), _c("TYPE", "T"), _c("REASON", "R"), _c("OBJECT", "O"),
         _c("MESSAGE", "M", max_width=100), _c("NAME", "N")),
        event_row, status=event_style, default_sort=1,
    ),
)

BY_NAME: dict[str, ViewSpec] = {v.name: v for v in VIEWS}
BY_ALIAS: dict[str, ViewSpec] = {alias: v for v in VIEWS for alias in (v.name, *v.aliases)}


def view_for(alias: str) -> ViewSpec | None:
    return BY_ALIAS.get(alias.lower())
