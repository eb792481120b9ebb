"""The scheduling framework: statuses, cycle state, plugin protocols, and the cluster view.

The shapes are kube-scheduler's (pkg/scheduler/framework), because its plugins, reasons
and messages are what `kubectl describe pod` users know:

- A plugin answers with a `Status`: `Success` (we use `None`, so the hot path allocates
  nothing), `Unschedulable` (another pod leaving or a node changing may help),
  `UnschedulableAndUnresolvable` (nothing but a change to the node or the pod helps),
  `Error`, or `Skip` from a PreFilter/PreScore that has nothing to say about this pod.
- Plugins are pure (DESIGN rule 7): functions of the pod, a `NodeInfo` and the
  `CycleState` their PreFilter/PreScore wrote. The only I/O of scheduling is binding.
- `NodeInfo` keeps what every plugin needs about one node, maintained incrementally as
  pods are added and removed, and pre-parsed from the Node object once per change, so no
  plugin parses a quantity or walks a pod list in the per-node loop.
- `PodInfo` is one pod parsed once: its requests as upstream's PodRequests computes them
  (containers summed, each init container on top of the sidecars started before it, the
  max of the two, plus overhead), and the "non-zero" requests scoring uses.

A scheduling cycle runs from snapshot to assume without awaiting, so the event handlers
that update the cache cannot run in the middle of it: the `Snapshot` is the cache's node
list frozen for that cycle, and an assumed pod is in the next cycle's view at once.
"""

from __future__ import annotations

import enum
import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tuik8s.api.quantity import cpu_millis, to_bytes

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
DEFAULT_SCHEDULER_NAME = "default-scheduler"
# upstream's schedutil.DefaultMilliCPURequest / DefaultMemoryRequest: what a container that
# requests nothing counts as when nodes are *scored* (never when they are filtered)
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
# validation.NoteLengthLimit: an Event message longer than this is cut
NOTE_LENGTH_LIMIT = 1024

TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable"
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_ZONE = "topology.kubernetes.io/zone"


# ---- statuses --------------------------------------------------------------------------------


class Code(enum.IntEnum):
    """framework.Code, with upstream's names."""

    Success = 0
    Error = 1
    Unschedulable = 2
    UnschedulableAndUnresolvable = 3
    Skip = 5


class Status:
    """What a plugin says about a pod (and a node): a code, the reasons, and who said it."""

    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: Code, *reasons: str, plugin: str = "") -> None:
        self.code = code
        self.reasons: tuple[str, ...] = reasons
        self.plugin = plugin

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_success(self) -> bool:
        return self.code == Code.Success

    def is_skip(self) -> bool:
        return self.code == Code.Skip

    def is_rejected(self) -> bool:
        return self.code in (Code.Unschedulable, Code.UnschedulableAndUnresolvable)

    def with_plugin(self, plugin: str) -> Status:
        self.plugin = plugin
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return (self.code, self.reasons) == (other.code, other.reasons)

    def __hash__(self) -> int:
        return hash((self.code, self.reasons))

    def __repr__(self) -> str:
        who = f" from {self.plugin}" if self.plugin else ""
        return f"Status({self.code.name}{who}: {self.message!r})"


def unschedulable(*reasons: str) -> Status:
    return Status(Code.Unschedulable, *reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UnschedulableAndUnresolvable, *reasons)


SKIP = Status(Code.Skip)


class CycleState:
    """Per-cycle scratch space: what a plugin's PreFilter/PreScore computed for its Filter/Score.

    A PreFilter that knows the only nodes the pod can go to (a DaemonSet pod's node
    affinity to one node name) says so with `restrict_to`, upstream's PreFilterResult:
    the cycle then filters those nodes only, instead of rejecting all the others one by one.
    """

    __slots__ = ("_data", "skip_filter", "skip_score", "snapshot", "node_names", "restricted_by")

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()
        self.snapshot = snapshot  # the cycle's view of the cluster (upstream: the handle's lister)
        self.node_names: set[str] | None = None  # None: every node
        self.restricted_by: list[str] = []

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def read(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def restrict_to(self, plugin: str, names: Iterable[str]) -> None:
        """Only `names` can fit (as far as `plugin` knows); several plugins' sets intersect."""
        chosen = set(names)
        self.node_names = chosen if self.node_names is None else self.node_names & chosen
        self.restricted_by.append(plugin)


# ---- cluster events (what may make a rejected pod schedulable) -----------------------------


class ClusterEvent(enum.Enum):
    """A change that may make a pod some plugin rejected schedulable (upstream's ClusterEvent)."""

    NodeAdd = "NodeAdd"
    NodeAllocatableChange = "NodeAllocatableChange"
    NodeLabelChange = "NodeLabelChange"
    NodeTaintChange = "NodeTaintChange"
    NodeSpecUnschedulableChange = "NodeSpecUnschedulableChange"
    NodeConditionChange = "NodeConditionChange"
    AssignedPodDelete = "AssignedPodDelete"  # deleted, or finished (Succeeded/Failed)
    AssignedPodUpdate = "AssignedPodUpdate"
    UnscheduledPodUpdate = "UnscheduledPodUpdate"
    UnschedulableTimeout = "UnschedulableTimeout"


# ---- pods ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _milli(value: str) -> int:
    return cpu_millis(value)


@functools.lru_cache(maxsize=4096)
def _amount(value: str) -> int:
    return to_bytes(value)


def quantity(name: str, value: Any) -> int:
    """A resource quantity as an integer: millicores for cpu, the plain amount otherwise."""
    text = value if isinstance(value, str) else str(value)
    try:
        return _milli(text) if name == "cpu" else _amount(text)
    except ValueError:
        return 0  # the API server validated it; a bad one counts as nothing, not a crash


def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    return {name: quantity(name, value) for name, value in requests.items()}


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        into[name] = into.get(name, 0) + value


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > into.get(name, 0):
            into[name] = value


def _non_missing(requests: Mapping[str, int]) -> dict[str, int]:
    out = dict(requests)
    out.setdefault("cpu", DEFAULT_MILLI_CPU_REQUEST)
    out.setdefault("memory", DEFAULT_MEMORY_REQUEST)
    return out


def pod_requests(pod: Mapping[str, Any], *, non_missing: bool = False) -> dict[str, int]:
    """Upstream's resourcehelper.PodRequests: what a pod asks of a node, by resource name.

    Regular containers add up; a restartable init container (a sidecar) runs beside them
    and adds too; every other init container runs alone on top of the sidecars started
    before it, so the pod needs the larger of the two; overhead comes on top. With
    `non_missing`, a container that requests no cpu or memory counts as 100m / 200Mi, the
    figure scoring uses so that request-less pods still spread.
    """
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or ():
        reqs = _container_requests(c)
        _add(total, _non_missing(reqs) if non_missing else reqs)
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in spec.get("initContainers") or ():
        reqs = _container_requests(c)
        if non_missing:
            reqs = _non_missing(reqs)
        if c.get("restartPolicy") == "Always":
            _add(total, reqs)
            _add(sidecars, reqs)
            _max(init_peak, sidecars)
        else:
            alone = dict(reqs)
            _add(alone, sidecars)
            _max(init_peak, alone)
    _max(total, init_peak)
    overhead = spec.get("overhead") or {}
    _add(total, {name: quantity(name, value) for name, value in overhead.items()})
    return total


def controller_uid(pod: Mapping[str, Any]) -> str:
    """The uid of the pod's controlling owner (its ReplicaSet, StatefulSet, Job...), or ""."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid") or f"{ref.get('kind')}/{ref.get('name')}")
    return ""


def host_ports(pod: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """The (hostIP, protocol, hostPort) triples the pod's containers claim on their node."""
    ports = []
    spec = pod.get("spec") or {}
    for c in (*(spec.get("initContainers") or ()), *(spec.get("containers") or ())):
        for p in c.get("ports") or ():
            hp = p.get("hostPort")
            if hp:
                ports.append((str(p.get("hostIP") or "0.0.0.0"), str(p.get("protocol") or "TCP"), int(hp)))
    return tuple(ports)


class PodInfo:
    """One pod as the scheduler needs it, computed once per version of the pod."""

    __slots__ = (
        "pod", "key", "uid", "namespace", "name", "priority", "cpu", "memory", "pods",
        "ephemeral", "scalars", "nz_cpu", "nz_memory", "owner", "ports", "node_name",
    )

    def __init__(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.namespace = str(meta.get("namespace") or "")
        self.name = str(meta.get("name") or "")
        self.key = f"{self.namespace}/{self.name}"
        self.uid = str(meta.get("uid") or self.key)
        self.priority = int(spec.get("priority") or 0)
        self.node_name = str(spec.get("nodeName") or "")
        reqs = pod_requests(pod)
        self.cpu = reqs.pop("cpu", 0)
        self.memory = reqs.pop("memory", 0)
        self.ephemeral = reqs.pop("ephemeral-storage", 0)
        reqs.pop("pods", None)
        self.scalars: dict[str, int] = {k: v for k, v in reqs.items() if v}
        self.pods = 1
        nz = pod_requests(pod, non_missing=True)
        self.nz_cpu = nz.get("cpu", 0)
        self.nz_memory = nz.get("memory", 0)
        self.owner = controller_uid(pod)
        self.ports = host_ports(pod)

    @property
    def spec(self) -> Obj:
        return self.pod.get("spec") or {}

    def has_requests(self) -> bool:
        return bool(self.cpu or self.memory or self.ephemeral or self.scalars)

    def __repr__(self) -> str:
        return f"<PodInfo {self.key} cpu={self.cpu}m mem={self.memory}>"


# ---- nodes -----------------------------------------------------------------------------------


_generations = itertools.count(1)


def next_generation() -> int:
    return next(_generations)


def _allocatable(node: Obj) -> dict[str, int]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    return {name: quantity(name, value) for name, value in alloc.items()}


class NodeInfo:
    """A node and the pods on it (bound, and assumed by this scheduler), with running sums.

    `requested_*` are the sums of pod requests (what filtering compares with allocatable),
    `nz_*` the sums of non-zero requests (what scoring uses). Both change only through
    `add_pod` / `remove_pod`, in O(1). `generation` changes on every change, to a number
    no NodeInfo had before (one counter for all, as upstream's nextGeneration), so
    anything remembered about "node X at generation G" can never be mistaken for a later
    state of X, or for a node of the same name added again.
    """

    __slots__ = (
        "name", "node", "generation", "labels", "unschedulable", "taints", "filter_taints",
        "prefer_taints", "alloc_cpu", "alloc_memory", "alloc_pods", "alloc_ephemeral",
        "alloc_scalars", "requested_cpu", "requested_memory", "requested_ephemeral",
        "requested_scalars", "nz_cpu", "nz_memory", "pods", "owner_counts", "used_ports",
        "zone", "free_cpu", "free_memory", "free_pods",
    )

    def __init__(self, name: str, node: Obj | None = None) -> None:
        self.name = name
        self.generation = next_generation()
        self.pods: dict[str, PodInfo] = {}
        self.owner_counts: dict[str, int] = {}
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.requested_cpu = self.requested_memory = self.requested_ephemeral = 0
        self.requested_scalars: dict[str, int] = {}
        self.nz_cpu = self.nz_memory = 0
        self.node: Obj | None = None
        self.labels: dict[str, str] = {}
        self.unschedulable = False
        self.taints: list[Obj] = []
        self.filter_taints: list[Obj] = []
        self.prefer_taints: list[Obj] = []
        self.alloc_cpu = self.alloc_memory = self.alloc_pods = self.alloc_ephemeral = 0
        self.alloc_scalars: dict[str, int] = {}
        self.zone = ""
        # allocatable minus requested, kept with the sums: the filter's whole question
        self.free_cpu = self.free_memory = self.free_pods = 0
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Obj) -> None:
        """Take a (new version of the) Node object: parse what plugins read, once."""
        spec = node.get("spec") or {}
        self.node = node
        self.labels = dict((node.get("metadata") or {}).get("labels") or {})
        self.unschedulable = bool(spec.get("unschedulable"))
        self.taints = [t for t in spec.get("taints") or () if isinstance(t, dict)]
        self.filter_taints = [t for t in self.taints if t.get("effect") in ("NoSchedule", "NoExecute")]
        self.prefer_taints = [t for t in self.taints if t.get("effect") == "PreferNoSchedule"]
        alloc = _allocatable(node)
        self.alloc_cpu = alloc.pop("cpu", 0)
        self.alloc_memory = alloc.pop("memory", 0)
        self.alloc_pods = alloc.pop("pods", 0)
        self.alloc_ephemeral = alloc.pop("ephemeral-storage", 0)
        self.alloc_scalars = alloc
        self.zone = self.labels.get(LABEL_ZONE, "")
        self._refresh_free()
        self.generation = next_generation()

    def _refresh_free(self) -> None:
        self.free_cpu = self.alloc_cpu - self.requested_cpu
        self.free_memory = self.alloc_memory - self.requested_memory
        self.free_pods = self.alloc_pods - len(self.pods)

    def add_pod(self, pi: PodInfo) -> None:
        old = self.pods.get(pi.uid)
        if old is not None:
            self._subtract(old)
        self.pods[pi.uid] = pi
        self.requested_cpu += pi.cpu
        self.requested_memory += pi.memory
        self.requested_ephemeral += pi.ephemeral
        if pi.scalars:
            _add(self.requested_scalars, pi.scalars)
        self.nz_cpu += pi.nz_cpu
        self.nz_memory += pi.nz_memory
        if pi.owner:
            self.owner_counts[pi.owner] = self.owner_counts.get(pi.owner, 0) + 1
        for port in pi.ports:
            self.used_ports[port] = self.used_ports.get(port, 0) + 1
        self._refresh_free()
        self.generation = next_generation()

    def remove_pod(self, uid: str) -> PodInfo | None:
        pi = self.pods.pop(uid, None)
        if pi is not None:
            self._subtract(pi)
            self._refresh_free()
            self.generation = next_generation()
        return pi

    def _subtract(self, pi: PodInfo) -> None:
        self.requested_cpu -= pi.cpu
        self.requested_memory -= pi.memory
        self.requested_ephemeral -= pi.ephemeral
        for name, value in pi.scalars.items():
            self.requested_scalars[name] = self.requested_scalars.get(name, 0) - value
        self.nz_cpu -= pi.nz_cpu
        self.nz_memory -= pi.nz_memory
        if pi.owner:
            left = self.owner_counts.get(pi.owner, 0) - 1
            if left > 0:
                self.owner_counts[pi.owner] = left
            else:
                self.owner_counts.pop(pi.owner, None)
        for port in pi.ports:
            left = self.used_ports.get(port, 0) - 1
            if left > 0:
                self.used_ports[port] = left
            else:
                self.used_ports.pop(port, None)

    def __repr__(self) -> str:
        return (
            f"<NodeInfo {self.name} pods={len(self.pods)}/{self.alloc_pods} "
            f"cpu={self.requested_cpu}/{self.alloc_cpu}m mem={self.requested_memory}/{self.alloc_memory}>"
        )


@dataclass
class Snapshot:
    """The nodes a cycle considers, in a stable order (the order the cache learned of them).

    `unschedulable`, `tainted` and `prefer_tainted` name the nodes that are cordoned, that
    have NoSchedule/NoExecute taints, and that have PreferNoSchedule taints: a plugin whose
    check cannot fail on any node of the snapshot skips itself for the whole cycle.
    """

    nodes: list[NodeInfo]
    by_name: dict[str, NodeInfo] = field(default_factory=dict)
    unschedulable: set[str] | None = None
    tainted: set[str] | None = None
    prefer_tainted: set[str] | None = None

    def __post_init__(self) -> None:
        if not self.by_name:
            self.by_name = {ni.name: ni for ni in self.nodes}
        if self.unschedulable is None:
            self.unschedulable = {ni.name for ni in self.nodes if ni.unschedulable}
        if self.tainted is None:
            self.tainted = {ni.name for ni in self.nodes if ni.filter_taints}
        if self.prefer_tainted is None:
            self.prefer_tainted = {ni.name for ni in self.nodes if ni.prefer_taints}

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, name: str) -> NodeInfo | None:
        return self.by_name.get(name)


# ---- plugin protocols ------------------------------------------------------------------------


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        """Compute what Filter needs; `SKIP` if Filter has nothing to check for this pod;
        a rejection fails the pod on every node at once."""
        ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """None if the pod may run on the node, else why not."""
        ...


@runtime_checkable
class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status | None:
        """Compute what Score needs; `SKIP` if every node would score the same."""
        ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """0..MAX_NODE_SCORE, or any number if `normalize_scores` maps it into that range."""
        ...


@runtime_checkable
class NormalizeScorePlugin(Plugin, Protocol):
    def normalize_scores(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]) -> None:
        """Rewrite `scores` (one per node, in order) into 0..MAX_NODE_SCORE, in place."""
        ...


def default_normalize_score(scores: list[int], reverse: bool = False, max_priority: int = MAX_NODE_SCORE) -> None:
    """Upstream's helper.DefaultNormalizeScore: scale to the maximum, optionally reversed."""
    highest = max(scores, default=0)
    if highest <= 0:
        if reverse:
            scores[:] = [max_priority] * len(scores)
        return
    for i, s in enumerate(scores):
        s = max_priority * s // highest
        scores[i] = max_priority - s if reverse else s


# ---- the failure message ---------------------------------------------------------------------


@dataclass
class Diagnosis:
    """Why a pod fits nowhere: each rejected node's status, and the plugins that rejected."""

    node_to_status: dict[str, Status] = field(default_factory=dict)
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_msg: str = ""
    # nodes not examined one by one because a PreFilter rejected them all
    absent_status: Status | None = None


class FitError(Exception):
    """No node fits the pod; `str()` is upstream's `0/N nodes are available: ...` message."""

    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis) -> None:
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis
        super().__init__(fit_error_message(num_all_nodes, diagnosis))


def reasons_histogram(statuses: Iterable[Status]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for st in statuses:
        for reason in st.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def fit_error_message(num_all_nodes: int, diagnosis: Diagnosis) -> str:
    """FitError.Error() of kube-scheduler 1.32, without the PostFilter (preemption) part.

    `0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory.`: each
    reason with the number of nodes that gave it, as "count reason" strings sorted the way
    Go's sort.Strings sorts them (bytewise), joined by ", ".
    """
    msg = f"0/{num_all_nodes} nodes are available:"
    if diagnosis.pre_filter_msg:
        return msg + f" {diagnosis.pre_filter_msg}."
    counts = reasons_histogram(diagnosis.node_to_status.values())
    missing = num_all_nodes - len(diagnosis.node_to_status)
    if missing > 0 and diagnosis.absent_status is not None:
        for reason in diagnosis.absent_status.reasons:
            counts[reason] = counts.get(reason, 0) + missing
    parts = sorted((f"{n} {reason}" for reason, n in counts.items()), key=lambda s: s.encode())
    if parts:
        msg += f" {', '.join(parts)}."
    return msg


def truncate_message(message: str) -> str:
    """Upstream's truncateMessage: an Event note is at most 1024 characters."""
    if len(message) <= NOTE_LENGTH_LIMIT:
        return message
    suffix = " ..."
    return message[: NOTE_LENGTH_LIMIT - len(suffix)] + suffix
