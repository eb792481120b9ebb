"""Server-side printing: a list of objects as a `meta.k8s.io/v1` Table.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
columns the server returns; it does not know how to print a pod itself (given a plain
list it shows only NAME and AGE). So the columns and the way each cell is computed
follow upstream's `pkg/printers/internalversion`, which is what a real cluster answers.

Like the upstream API server, every row carries all cells, wide ones included: the
priority-1 columns are only hidden by kubectl unless `-o wide`, the request is the same.

Objects reach us as stored, and may be incomplete (a pod nobody has reported on yet, a
hand-written manifest): a missing field prints as upstream prints its zero value, and a
malformed object still gets a row rather than failing the whole list.

10,000 pods must table in well under half a second, so the row functions read the dicts
directly, the AGE of equal timestamps is computed once per call, and the `Metadata`
object of each row is the stored metadata itself, not a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from tuik8s.api.endpointcells import endpoints_cell, endpointslice_cells
from tuik8s.api.registry import ResourceInfo

Obj = dict[str, Any]
Column = dict[str, Any]
RowFn = Callable[[Obj, "_Clock"], list[Any]]

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

_E: dict[str, Any] = {}  # read-only stand-in for a missing sub-object
_US = timedelta(microseconds=1)


# ---------------------------------------------------------------------------------------
# public surface


def to_table(
    info: ResourceInfo,
    objects: list[dict],
    *,
    include_object: str = "Metadata",
    now: datetime | None = None,
) -> dict:
    """The `meta.k8s.io/v1` Table kubectl prints for `objects` of resource `info`.

    `include_object` is the `includeObject` table option: `Metadata` (the default, also
    for "") puts a `PartialObjectMetadata` with the full metadata in each row (kubectl
    reads the namespace for `-A` and the labels for `--show-labels` from it), `Object`
    the object itself, `None` a null object, as upstream serialises it. Any other value
    is a ValueError whose message is upstream's Bad Request text.

    The Table's `metadata` is left empty for the caller to fill (resourceVersion,
    continue); a watch event after the first may drop `columnDefinitions`.
    """
    mode = include_object or "Metadata"
    if mode not in INCLUDE_OBJECT_VALUES:
        raise ValueError(f'unrecognized includeObject value: "{include_object}"')
    printer = _PRINTERS.get(info.key, _DEFAULT_PRINTER)
    clock = _Clock(now)
    row_fn = printer.row
    conditions_fn = printer.conditions
    width = len(printer.columns)

    rows: list[dict[str, Any]] = []
    append = rows.append
    for obj in objects:
        conditions = None
        try:
            cells = row_fn(obj, clock)
            if conditions_fn is not None:
                conditions = conditions_fn(obj)
        except Exception:  # a malformed object still gets its row
            cells = _fallback_cells(obj, width)
        if mode == "Metadata":
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            row: dict[str, Any] = {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": TABLE_API_VERSION,
                    "metadata": meta if isinstance(meta, dict) else {},
                },
            }
        elif mode == "Object":
            row = {"cells": cells, "object": _with_type_meta(obj, info)}
        else:
            row = {"cells": cells, "object": None}
        if conditions:
            row["conditions"] = conditions
        append(row)

    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": {},
        "columnDefinitions": [dict(c) for c in printer.columns],
        "rows": rows,
    }


def human_duration(delta: timedelta) -> str:
    """A duration the way kubectl prints AGE: ~2-3 significant figures ("3m20s", "45d").

    Upstream `duration.HumanDuration`: up to two seconds in the future reads as "0s"
    (clocks disagree a little), further is "<invalid>".
    """
    us = delta // _US
    seconds = us // 1_000_000 if us >= 0 else -(-us // 1_000_000)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        h = hours % 24
        return f"{days}d" if h == 0 else f"{days}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        dy = days % 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{years}y"


# ---------------------------------------------------------------------------------------
# plumbing


class _Printer(NamedTuple):
    columns: tuple[Column, ...]
    row: RowFn
    conditions: Callable[[Obj], list[dict[str, str]] | None] | None = None


class _Clock:
    """`now` for one table, with the AGE of each distinct timestamp computed once."""

    __slots__ = ("now", "_since")

    def __init__(self, now: datetime | None) -> None:
        if now is None:
            now = datetime.now(UTC)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self.now = now
        self._since: dict[str, str] = {}

    def since(self, timestamp: Any) -> str:
        """Upstream translateTimestampSince: "<unknown>" for a zero timestamp."""
        if not timestamp or not isinstance(timestamp, str):
            return "<unknown>"
        age = self._since.get(timestamp)
        if age is None:
            t = _parse_time(timestamp)
            age = "<unknown>" if t is None else human_duration(self.now - t)
            self._since[timestamp] = age
        return age


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _col(
    name: str, description: str, type_: str = "string", *, priority: int = 0, fmt: str = ""
) -> Column:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


def _fallback_cells(obj: Any, width: int) -> list[Any]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return [name if isinstance(name, str) else "", *["<unknown>"] * (width - 1)]


def _with_type_meta(obj: Obj, info: ResourceInfo) -> Obj:
    if isinstance(obj, dict) and "kind" in obj and "apiVersion" in obj:
        return obj
    return {"apiVersion": info.api_version, "kind": info.kind, **(obj or {})}


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or _E).get("name") or ""


def _age(obj: Obj, clock: _Clock) -> str:
    return clock.since((obj.get("metadata") or _E).get("creationTimestamp"))


def _first_condition_true(conditions: Iterable[Obj], type_: str) -> bool:
    """Upstream's condition lookups: the first condition of the type decides."""
    for c in conditions:
        if c.get("type") == type_:
            return c.get("status") == "True"
    return False


def _format_labels(labels: Any) -> str:
    """labels.FormatLabels: "k=v,k2=v2" sorted by key, "<none>" when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _selector_string(selector: Any) -> str | None:
    """metav1.LabelSelectorAsSelector(...).String(); None when the selector is invalid."""
    if not selector:
        return ""  # nil selects nothing, {} everything: both print as ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or _E).items():
        reqs.append((k, f"{k}={v}"))
    for expr in selector.get("matchExpressions") or ():
        key = expr.get("key") or ""
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                return None
            word = " in " if op == "In" else " notin "
            reqs.append((key, f"{key}{word}({','.join(sorted(values))})"))
        elif op == "Exists":
            if values:
                return None
            reqs.append((key, key))
        elif op == "DoesNotExist":
            if values:
                return None
            reqs.append((key, "!" + key))
        else:
            return None
    reqs.sort(key=lambda r: r[0])  # stable, like Go's insertion sort for small selectors
    return ",".join(r[1] for r in reqs)


def _format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: "<none>" for an empty selector, "<error>" for a bad one."""
    s = _selector_string(selector)
    if s is None:
        return "<error>"
    return s or "<none>"


def _containers_and_images(template: Any) -> tuple[str, str]:
    containers = ((template or _E).get("spec") or _E).get("containers") or ()
    names = ",".join(c.get("name") or "" for c in containers)
    images = ",".join(c.get("image") or "" for c in containers)
    return names, images


def _lb_ingress_string(load_balancer: Any) -> str:
    """The LoadBalancer/Ingress address: distinct IPs or hostnames, sorted, unclipped
    (the server prints wide)."""
    found: set[str] = set()
    for ing in (load_balancer or _E).get("ingress") or ():
        addr = ing.get("ip") or ing.get("hostname")
        if addr:
            found.add(addr)
    return ",".join(sorted(found))


def _quantity(q: Any) -> str:
    return "<nil>" if q is None else str(q)


# ---------------------------------------------------------------------------------------
# column descriptions shared by most kinds

_NAME = _col(
    "Name",
    "Name must be unique within a namespace. Cannot be updated.",
    fmt="name",
)
_AGE = _col(
    "Age",
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created.",
)
_CONTAINERS = _col("Containers", "Names of each container in the template.", priority=1)
_IMAGES = _col("Images", "Images referenced by each container in the template.", priority=1)


def _selector_col(description: str) -> Column:
    return _col("Selector", description, priority=1)


# ---------------------------------------------------------------------------------------
# pods

_POD_COLUMNS = (
    _NAME,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    _AGE,
    _col("IP", "IP address allocated to the pod.", priority=1),
    _col("Node", "The node this pod is scheduled to.", priority=1),
    _col(
        "Nominated Node",
        "The node the scheduler expects this pod to run on once preemption completes.",
        priority=1,
    ),
    _col(
        "Readiness Gates",
        "How many of the pod's readiness gates are satisfied.",
        priority=1,
    ),
)


def _finished_at(status: Obj) -> datetime | None:
    terminated = ((status.get("lastState") or _E).get("terminated")) or None
    if terminated is None:
        return None
    return _parse_time(terminated.get("finishedAt"))


def _pod_row(pod: Obj, clock: _Clock) -> list[Any]:
    meta = pod.get("metadata") or _E
    spec = pod.get("spec") or _E
    status = pod.get("status") or _E
    conditions = status.get("conditions") or ()

    total = len(spec.get("containers") or ())
    ready = 0
    restarts = 0
    last_restart: datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = spec.get("initContainers") or ()
    sidecars: set[str] = set()  # restartable init containers run alongside the others
    for c in init_specs:
        if c.get("restartPolicy") == "Always":
            sidecars.add(c.get("name"))
    total += len(sidecars)

    sidecar_restarts = 0
    sidecar_last_restart: datetime | None = None
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        count = cs.get("restartCount") or 0
        restarts += count
        finished = _finished_at(cs)
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts += count
            if finished is not None and (
                sidecar_last_restart is None or finished > sidecar_last_restart
            ):
                sidecar_last_restart = finished
        state = cs.get("state") or _E
        terminated = state.get("terminated")
        if terminated is not None and (terminated.get("exitCode") or 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            term_reason = terminated.get("reason")
            if term_reason:
                reason = "Init:" + term_reason
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode') or 0}"
        else:
            waiting_reason = (state.get("waiting") or _E).get("reason")
            if waiting_reason and waiting_reason != "PodInitializing":
                reason = "Init:" + waiting_reason
            else:
                reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _first_condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += cs.get("restartCount") or 0
            finished = _finished_at(cs)
            if finished is not None and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = cs.get("state") or _E
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode') or 0}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        # a container still running means the pod as a whole has not completed
        if reason == "Completed" and has_running:
            ready_cond = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
            )
            reason = "Running" if ready_cond else "NotReady"

    if meta.get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(clock.now - last_restart)} ago)"
    else:
        restarts_cell = str(restarts)

    pod_ip = status.get("podIP")
    if not pod_ip:
        pod_ips = status.get("podIPs")
        pod_ip = (pod_ips[0].get("ip") if pod_ips else None) or "<none>"

    gates = spec.get("readinessGates")
    if gates:
        satisfied = 0
        for gate in gates:
            if _first_condition_true(conditions, gate.get("conditionType")):
                satisfied += 1
        readiness_gates = f"{satisfied}/{len(gates)}"
    else:
        readiness_gates = "<none>"

    return [
        meta.get("name") or "",
        f"{ready}/{total}",
        reason,
        restarts_cell,
        clock.since(meta.get("creationTimestamp")),
        pod_ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        readiness_gates,
    ]


_POD_SUCCEEDED = {
    "type": "Completed",
    "status": "True",
    "reason": "Succeeded",
    "message": "The pod has completed successfully.",
}
_POD_FAILED = {
    "type": "Completed",
    "status": "True",
    "reason": "Failed",
    "message": "The pod failed.",
}


def _pod_conditions(pod: Obj) -> list[dict[str, str]] | None:
    """Row conditions: upstream marks a finished pod's row Completed."""
    phase = (pod.get("status") or _E).get("phase")
    if phase == "Succeeded":
        return [dict(_POD_SUCCEEDED)]
    if phase == "Failed":
        return [dict(_POD_FAILED)]
    return None


# ---------------------------------------------------------------------------------------
# workloads


def _replicas(spec: Obj) -> Any:
    # defaulting sets spec.replicas to 1; a stored object without it means the default
    replicas = spec.get("replicas")
    return 1 if replicas is None else replicas


_DEPLOYMENT_COLUMNS = (
    _NAME,
    _col("Ready", "Number of the pod with ready state"),
    _col("Up-to-date", "Total number of non-terminated pods targeted by this deployment "
         "that have the desired template spec."),
    _col("Available", "Total number of available pods (ready for at least minReadySeconds) "
         "targeted by this deployment."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _selector_col("Label selector for pods. Existing ReplicaSets whose pods are selected by "
                  "this will be the ones affected by this deployment."),
)


def _deployment_row(obj: Obj, clock: _Clock) -> list[Any]:
    spec = obj.get("spec") or _E
    status = obj.get("status") or _E
    names, images = _containers_and_images(spec.get("template"))
    selector = _selector_string(spec.get("selector"))
    return [
        _name(obj),
        f"{status.get('readyReplicas') or 0}/{_replicas(spec)}",
        status.get("updatedReplicas") or 0,
        status.get("availableReplicas") or 0,
        _age(obj, clock),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


_REPLICASET_COLUMNS = (
    _NAME,
    _col("Desired", "Replicas is the number of desired replicas.", "integer"),
    _col("Current", "Replicas is the most recently observed number of replicas.", "integer"),
    _col("Ready", "The number of ready replicas for this replica set.", "integer"),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _selector_col("Selector is a label query over pods that should match the replica count."),
)


def _replicaset_row(obj: Obj, clock: _Clock) -> list[Any]:
    spec = obj.get("spec") or _E
    status = obj.get("status") or _E
    names, images = _containers_and_images(spec.get("template"))
    return [
        _name(obj),
        _replicas(spec),
        status.get("replicas") or 0,
        status.get("readyReplicas") or 0,
        _age(obj, clock),
        names,
        images,
        _format_label_selector(spec.get("selector")),
    ]


_DAEMONSET_COLUMNS = (
    _NAME,
    _col("Desired", "The total number of nodes that should be running the daemon pod.",
         "integer"),
    _col("Current", "The number of nodes that are running at least 1 daemon pod and are "
         "supposed to run the daemon pod.", "integer"),
    _col("Ready", "The number of nodes that should be running the daemon pod and have one "
         "or more of the daemon pod running and ready.", "integer"),
    _col("Up-to-date", "The total number of nodes that are running updated daemon pod.",
         "integer"),
    _col("Available", "The number of nodes that should be running the daemon pod and have "
         "one or more of the daemon pod running and available.", "integer"),
    _col("Node Selector", "NodeSelector is a selector which must be true for the pod to fit "
         "on a node."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _selector_col("A label query over pods that are managed by the daemon set."),
)


def _daemonset_row(obj: Obj, clock: _Clock) -> list[Any]:
    spec = obj.get("spec") or _E
    status = obj.get("status") or _E
    template = spec.get("template") or _E
    names, images = _containers_and_images(template)
    return [
        _name(obj),
        status.get("desiredNumberScheduled") or 0,
        status.get("currentNumberScheduled") or 0,
        status.get("numberReady") or 0,
        status.get("updatedNumberScheduled") or 0,
        status.get("numberAvailable") or 0,
        _format_labels((template.get("spec") or _E).get("nodeSelector")),
        _age(obj, clock),
        names,
        images,
        _format_label_selector(spec.get("selector")),
    ]


_JOB_COLUMNS = (
    _NAME,
    _col("Status", "Status of the job."),
    _col("Completions", "The number of pods which reached phase Succeeded."),
    _col("Duration", "Time required to complete the job."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _selector_col("A label query over pods that should match the pod count."),
)


def _job_row(obj: Obj, clock: _Clock) -> list[Any]:
    meta = obj.get("metadata") or _E
    spec = obj.get("spec") or _E
    status = obj.get("status") or _E
    succeeded = status.get("succeeded") or 0
    completions = spec.get("completions")
    if completions is not None:
        completions_cell = f"{succeeded}/{completions}"
    else:
        parallelism = spec.get("parallelism") or 0
        if parallelism > 1:
            completions_cell = f"{succeeded}/1 of {parallelism}"
        else:
            completions_cell = f"{succeeded}/1"

    start = _parse_time(status.get("startTime"))
    completion = _parse_time(status.get("completionTime"))
    if start is None:
        duration = ""
    elif completion is None:
        duration = human_duration(clock.now - start)
    else:
        duration = human_duration(completion - start)

    conditions = status.get("conditions") or ()
    if _first_condition_true(conditions, "Complete"):
        job_status = "Complete"
    elif _first_condition_true(conditions, "Failed"):
        job_status = "Failed"
    elif meta.get("deletionTimestamp"):
        job_status = "Terminating"
    elif _first_condition_true(conditions, "Suspended"):
        job_status = "Suspended"
    elif _first_condition_true(conditions, "FailureTarget"):
        job_status = "FailureTarget"
    else:
        job_status = "Running"

    names, images = _containers_and_images(spec.get("template"))
    return [
        meta.get("name") or "",
        job_status,
        completions_cell,
        duration,
        clock.since(meta.get("creationTimestamp")),
        names,
        images,
        _format_label_selector(spec.get("selector")),
    ]


_CONTROLLERREVISION_COLUMNS = (
    _NAME,
    _col("Controller", "Controller of the object"),
    _col("Revision", "Revision indicates the revision of the state represented by Data."),
    _AGE,
)


def _controllerrevision_row(obj: Obj, clock: _Clock) -> list[Any]:
    meta = obj.get("metadata") or _E
    controller = "<none>"
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            group, _, _version = (ref.get("apiVersion") or "").rpartition("/")
            kind = ref.get("kind") or ""
            group_kind = f"{kind}.{group}" if group else kind
            name = ref.get("name") or ""
            controller = f"{group_kind.lower()}/{name}" if group_kind else name
            break
    return [
        meta.get("name") or "",
        controller,
        obj.get("revision") or 0,
        clock.since(meta.get("creationTimestamp")),
    ]


# ---------------------------------------------------------------------------------------
# nodes


_NODE_COLUMNS = (
    _NAME,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    _AGE,
    _col("Version", "Kubelet Version reported by the node."),
    _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
    _col("External-IP", "List of addresses reachable to the node.", priority=1),
    _col("OS-Image", "OS Image reported by the node from /etc/os-release.", priority=1),
    _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
    _col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime "
         "remote API.", priority=1),
)

_ROLE_PREFIX = "node-role.kubernetes.io/"


def _node_row(obj: Obj, clock: _Clock) -> list[Any]:
    meta = obj.get("metadata") or _E
    spec = obj.get("spec") or _E
    status = obj.get("status") or _E
    info = status.get("nodeInfo") or _E

    node_status = "Unknown"
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":  # the last one wins, as with upstream's map
            node_status = "Ready" if c.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        node_status += ",SchedulingDisabled"

    roles: set[str] = set()
    for key, value in (meta.get("labels") or _E).items():
        if key.startswith(_ROLE_PREFIX):
            role = key[len(_ROLE_PREFIX):]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)

    internal_ip = external_ip = "<none>"
    for address in reversed(status.get("addresses") or ()):  # the first one wins
        if address.get("type") == "InternalIP":
            internal_ip = address.get("address") or ""
        elif address.get("type") == "ExternalIP":
            external_ip = address.get("address") or ""

    return [
        meta.get("name") or "",
        node_status,
        ",".join(sorted(roles)) or "<none>",
        clock.since(meta.get("creationTimestamp")),
        info.get("kubeletVersion") or "",
        internal_ip,
        external_ip,
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


# ---------------------------------------------------------------------------------------
# networking


_SERVICE_COLUMNS = (
    _NAME,
    _col("Type", "type determines how the Service is exposed."),
    _col("Cluster-IP", "clusterIP is the IP address of the service."),
    _col("External-IP", "externalIPs is a list of IP addresses for which nodes in the "
         "cluster will also accept traffic for this service."),
    _col("Port(s)", "The list of ports that are exposed by this service."),
    _AGE,
    _selector_col("Route service traffic to pods with label keys and values matching this "
                  "selector."),
)


def _service_external_ip(svc_type: str, spec: Obj, status: Obj) -> str:
    external_ips = spec.get("externalIPs") or ()
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if svc_type == "LoadBalancer":
        lb = _lb_ingress_string(status.get("loadBalancer"))
        if external_ips:
            return ",".join([*(lb.split(",") if lb else ()), *external_ips])
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def _service_row(obj: Obj, clock: _Clock) -> list[Any]:
    spec = obj.get("spec") or _E
    svc_type = spec.get("type") or "ClusterIP"  # the defaulted type
    cluster_ips = spec.get("clusterIPs")
    cluster_ip = (cluster_ips[0] if cluster_ips else spec.get("clusterIP")) or "<none>"
    ports = []
    for p in spec.get("ports") or ():
        protocol = p.get("protocol") or "TCP"
        node_port = p.get("nodePort") or 0
        if node_port > 0:
            ports.append(f"{p.get('port') or 0}:{node_port}/{protocol}")
        else:
            ports.append(f"{p.get('port') or 0}/{protocol}")
    return [
        _name(obj),
        svc_type,
        cluster_ip,
        _service_external_ip(svc_type, spec, obj.get("status") or _E),
        ",".join(ports) or "<none>",
        _age(obj, clock),
        _format_labels(spec.get("selector")),
    ]


_ENDPOINTS_COLUMNS = (
    _NAME,
    _col("Endpoints", "The set of all endpoints is the union of all subsets."),
    _AGE,
)


def _endpoints_row(obj: Obj, clock: _Clock) -> list[Any]:
    return [_name(obj), endpoints_cell(obj.get("subsets")), _age(obj, clock)]


_ENDPOINTSLICE_COLUMNS = (
    _NAME,
    _col(
        "AddressType",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in "
        "this slice must be the same type. This field is immutable after creation. The following "
        "address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: "
        "Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    _col(
        "Ports",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port "
        "must have a unique name. When ports is empty, it indicates that there are no defined ports. "
        'When a port is defined with a nil port value, it indicates "all ports". Each slice may '
        "include a maximum of 100 ports.",
    ),
    _col(
        "Endpoints",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of "
        "1000 endpoints.",
    ),
    _AGE,
)


def _endpointslice_row(obj: Obj, clock: _Clock) -> list[Any]:
    return [_name(obj), *endpointslice_cells(obj), _age(obj, clock)]


_INGRESS_COLUMNS = (
    _NAME,
    _col("Class", "The name of the IngressClass resource that should be used for "
         "additional configuration"),
    _col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    _col("Address", "Address is a list containing ingress points for the load-balancer"),
    _col("Ports", "Ports of TLS configurations that open"),
    _AGE,
)


def _ingress_hosts(rules: Any) -> str:
    rules = rules or ()
    hosts: list[str] = []
    limit = 3
    more = False
    for rule in rules:
        if len(hosts) == limit:
            more = True
        host = rule.get("host")
        if not more and host:
            hosts.append(host)
    if not hosts:
        return "*"
    cell = ",".join(hosts)
    return f"{cell} + {len(rules) - limit} more..." if more else cell


def _ingress_row(obj: Obj, clock: _Clock) -> list[Any]:
    spec = obj.get("spec") or _E
    class_name = spec.get("ingressClassName")
    return [
        _name(obj),
        "<none>" if class_name is None else class_name,
        _ingress_hosts(spec.get("rules")),
        _lb_ingress_string((obj.get("status") or _E).get("loadBalancer")),
        "80, 443" if spec.get("tls") else "80",
        _age(obj, clock),
    ]


_INGRESSCLASS_COLUMNS = (
    _NAME,
    _col("Controller", "Controller that is responsible for handling this class"),
    _col("Parameters", "A reference to a resource with additional parameters"),
    _AGE,
)


def _ingressclass_row(obj: Obj, clock: _Clock) -> list[Any]:
    spec = obj.get("spec") or _E
    params = spec.get("parameters")
    if params:
        parameters = params.get("kind") or ""
        if params.get("apiGroup") is not None:
            parameters += "." + params["apiGroup"]
        parameters += "/" + (params.get("name") or "")
    else:
        parameters = "<none>"
    return [_name(obj), spec.get("controller") or "", parameters, _age(obj, clock)]


# ---------------------------------------------------------------------------------------
# config, identity, coordination, events


_CONFIGMAP_COLUMNS = (
    _NAME,
    _col("Data", "Data contains the configuration data."),
    _AGE,
)


def _configmap_row(obj: Obj, clock: _Clock) -> list[Any]:
    count = len(obj.get("data") or ()) + len(obj.get("binaryData") or ())
    return [_name(obj), count, _age(obj, clock)]


_SECRET_COLUMNS = (
    _NAME,
    _col("Type", "Used to facilitate programmatic handling of secret data."),
    _col("Data", "Data contains the secret data."),
    _AGE,
)


def _secret_row(obj: Obj, clock: _Clock) -> list[Any]:
    return [_name(obj), obj.get("type") or "", len(obj.get("data") or ()), _age(obj, clock)]


_NAMESPACE_COLUMNS = (
    _NAME,
    _col("Status", "The status of the namespace"),
    _AGE,
)


def _namespace_row(obj: Obj, clock: _Clock) -> list[Any]:
    return [_name(obj), (obj.get("status") or _E).get("phase") or "", _age(obj, clock)]


_SERVICEACCOUNT_COLUMNS = (
    _NAME,
    _col("Secrets", "Secrets is a list of the secrets in the same namespace that pods "
         "running using this ServiceAccount are allowed to use."),
    _AGE,
)


def _serviceaccount_row(obj: Obj, clock: _Clock) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or ()), _age(obj, clock)]


_LEASE_COLUMNS = (
    _NAME,
    _col("Holder", "holderIdentity contains the identity of the holder of a current lease."),
    _AGE,
)


def _lease_row(obj: Obj, clock: _Clock) -> list[Any]:
    return [_name(obj), (obj.get("spec") or _E).get("holderIdentity") or "", _age(obj, clock)]


_EVENT_COLUMNS = (
    _col("Last Seen", "The time at which the most recent occurrence of this event was "
         "recorded."),
    _col("Type", "Type of this event (Normal, Warning), new types could be added in the "
         "future"),
    _col("Reason", "This should be a short, machine understandable string that gives the "
         "reason for the transition into the object's current status."),
    _col("Object", "The object that this event is about."),
    _col("Subobject", "The field of the object the event is about, such as a container.",
         priority=1),
    _col("Source", "The component reporting this event.", priority=1),
    _col("Message", "A human-readable description of the status of this operation."),
    _col("First Seen", "The time at which the event was first recorded.", priority=1),
    _col("Count", "The number of times this event has occurred.", priority=1),
    _col("Name", "Name must be unique within a namespace. Cannot be updated.", priority=1,
         fmt="name"),
)


def _event_row(obj: Obj, clock: _Clock) -> list[Any]:
    involved = obj.get("involvedObject") or _E
    source = obj.get("source") or _E

    first_ts = obj.get("firstTimestamp")
    first_seen = clock.since(first_ts) if first_ts else clock.since(obj.get("eventTime"))
    last_ts = obj.get("lastTimestamp")
    last_seen = clock.since(last_ts) if last_ts else first_seen

    count = obj.get("count") or 0
    series = obj.get("series")
    if series is not None:
        last_seen = clock.since(series.get("lastObservedTime"))
        count = series.get("count") or 0
    elif count == 0:
        count = 1  # singleton events of the new API carry no count

    kind = (involved.get("kind") or "").lower()
    involved_name = involved.get("name")
    target = f"{kind}/{involved_name}" if involved_name else kind

    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    source_cell = f"{component}, {instance}" if instance else component

    return [
        last_seen,
        obj.get("type") or "",
        obj.get("reason") or "",
        target,
        involved.get("fieldPath") or "",
        source_cell,
        (obj.get("message") or "").strip(),
        first_seen,
        count,
        _name(obj),
    ]


# ---------------------------------------------------------------------------------------
# autoscaling


_HPA_COLUMNS = (
    _NAME,
    _col("Reference", "The target resource to scale."),
    _col("Targets", "The metrics used to compute the desired replica count, current/target."),
    _col("MinPods", "The lower limit for the number of replicas."),
    _col("MaxPods", "The upper limit for the number of replicas."),
    _col("Replicas", "The current number of replicas of pods managed by this autoscaler."),
    _AGE,
)


def _hpa_metric(spec: Obj, status: Obj | None) -> str:
    kind = spec.get("type")
    if kind == "External":
        target = (spec.get("external") or _E).get("target") or _E
        current_src = (status or _E).get("external")
        current_obj = (current_src or _E).get("current") or _E
        if target.get("averageValue") is not None:
            current = "<unknown>"
            if current_src is not None and current_obj.get("averageValue") is not None:
                current = _quantity(current_obj["averageValue"])
            return f"{current}/{_quantity(target['averageValue'])} (avg)"
        current = "<unknown>" if current_src is None else _quantity(current_obj.get("value"))
        return f"{current}/{_quantity(target.get('value'))}"
    if kind == "Pods":
        target = (spec.get("pods") or _E).get("target") or _E
        current_src = (status or _E).get("pods")
        current = "<unknown>"
        if current_src is not None:
            current = _quantity((current_src.get("current") or _E).get("averageValue"))
        return f"{current}/{_quantity(target.get('averageValue'))}"
    if kind == "Object":
        target = (spec.get("object") or _E).get("target") or _E
        current_src = (status or _E).get("object")
        current_obj = (current_src or _E).get("current") or _E
        if target.get("averageValue") is not None:
            current = "<unknown>"
            if current_src is not None and current_obj.get("averageValue") is not None:
                current = _quantity(current_obj["averageValue"])
            return f"{current}/{_quantity(target['averageValue'])} (avg)"
        current = "<unknown>" if current_src is None else _quantity(current_obj.get("value"))
        return f"{current}/{_quantity(target.get('value'))}"
    if kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        source = spec.get(field) or _E
        target = source.get("target") or _E
        current_src = (status or _E).get(field)
        current_obj = (current_src or _E).get("current") or _E
        resource = source.get("name") or ""
        if target.get("averageValue") is not None:
            current = "<unknown>"
            if current_src is not None:
                current = _quantity(current_obj.get("averageValue"))
            return f"{resource}: {current}/{_quantity(target['averageValue'])}"
        current = "<unknown>"
        if current_src is not None and current_obj.get("averageUtilization") is not None:
            current = f"{current_obj['averageUtilization']}%"
        utilization = target.get("averageUtilization")
        target_cell = "<auto>" if utilization is None else f"{utilization}%"
        return f"{resource}: {current}/{target_cell}"
    return "<unknown type>"


def _hpa_targets(metrics: Any, statuses: Any) -> str:
    if not metrics:
        return "<none>"
    statuses = statuses or ()
    # statuses are matched to specs by position, as upstream does
    shown = [
        _hpa_metric(m, statuses[i] if i < len(statuses) else None)
        for i, m in enumerate(metrics[:2])
    ]
    cell = ", ".join(shown)
    return f"{cell} + {len(metrics) - 2} more..." if len(metrics) > 2 else cell


def _hpa_row(obj: Obj, clock: _Clock) -> list[Any]:
    spec = obj.get("spec") or _E
    status = obj.get("status") or _E
    ref = spec.get("scaleTargetRef") or _E
    min_replicas = spec.get("minReplicas")
    return [
        _name(obj),
        f"{ref.get('kind') or ''}/{ref.get('name') or ''}",
        _hpa_targets(spec.get("metrics"), status.get("currentMetrics")),
        "<unset>" if min_replicas is None else str(min_replicas),
        spec.get("maxReplicas") or 0,
        status.get("currentReplicas") or 0,
        _age(obj, clock),
    ]


# ---------------------------------------------------------------------------------------
# the rest: NAME AGE


def _default_row(obj: Obj, clock: _Clock) -> list[Any]:
    return [_name(obj), _age(obj, clock)]


_DEFAULT_PRINTER = _Printer((_NAME, _AGE), _default_row)

_PRINTERS: dict[str, _Printer] = {
    "pods": _Printer(_POD_COLUMNS, _pod_row, _pod_conditions),
    "nodes": _Printer(_NODE_COLUMNS, _node_row),
    "services": _Printer(_SERVICE_COLUMNS, _service_row),
    "endpoints": _Printer(_ENDPOINTS_COLUMNS, _endpoints_row),
    "endpointslices.discovery.k8s.io": _Printer(_ENDPOINTSLICE_COLUMNS, _endpointslice_row),
    "configmaps": _Printer(_CONFIGMAP_COLUMNS, _configmap_row),
    "secrets": _Printer(_SECRET_COLUMNS, _secret_row),
    "events": _Printer(_EVENT_COLUMNS, _event_row),
    "namespaces": _Printer(_NAMESPACE_COLUMNS, _namespace_row),
    "serviceaccounts": _Printer(_SERVICEACCOUNT_COLUMNS, _serviceaccount_row),
    "leases.coordination.k8s.io": _Printer(_LEASE_COLUMNS, _lease_row),
    "deployments.apps": _Printer(_DEPLOYMENT_COLUMNS, _deployment_row),
    "replicasets.apps": _Printer(_REPLICASET_COLUMNS, _replicaset_row),
    "daemonsets.apps": _Printer(_DAEMONSET_COLUMNS, _daemonset_row),
    "controllerrevisions.apps": _Printer(_CONTROLLERREVISION_COLUMNS, _controllerrevision_row),
    "jobs.batch": _Printer(_JOB_COLUMNS, _job_row),
    "ingresses.networking.k8s.io": _Printer(_INGRESS_COLUMNS, _ingress_row),
    "ingressclasses.networking.k8s.io": _Printer(_INGRESSCLASS_COLUMNS, _ingressclass_row),
    "horizontalpodautoscalers.autoscaling": _Printer(_HPA_COLUMNS, _hpa_row),
}
