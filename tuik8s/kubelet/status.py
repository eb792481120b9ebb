"""A pod's status as the kubelet reports it, computed from what its runtime says.

Pure functions, shared by the hollow kubelet and the real one, so both tell kubectl the
same story a real node tells it: the phase from the containers' states (upstream's
`getPhase`), the kubelet-owned conditions (PodReadyToStartContainers, Initialized, Ready,
ContainersReady, PodScheduled) with their reasons and messages, IPs, start time and one
ContainerStatus per container.

Two rules keep the status stable, which matters because every difference is a write:

- A condition keeps its `lastTransitionTime` while its status does not change, and
  conditions the kubelet does not own (DisruptionTarget, readiness gates set by
  controllers) are carried over from the API as they are.
- `status_changed` compares what the kubelet owns semantically, so a status that would
  only reorder conditions or restamp a time is not written again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)

# ContainerState.state values
WAITING, RUNNING_STATE, TERMINATED = "waiting", "running", "terminated"

# Conditions the kubelet sets on every status it writes, in the order upstream lists them.
READY_TO_START = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
READY = "Ready"
CONTAINERS_READY = "ContainersReady"
SCHEDULED = "PodScheduled"
KUBELET_CONDITIONS = (READY_TO_START, INITIALIZED, READY, CONTAINERS_READY, SCHEDULED)

# Reasons (upstream pkg/kubelet/status/generate.go and kuberuntime).
UNKNOWN_CONTAINER_STATUSES = "UnknownContainerStatuses"
POD_COMPLETED = "PodCompleted"
POD_FAILED = "PodFailed"
CONTAINERS_NOT_READY = "ContainersNotReady"
CONTAINERS_NOT_INITIALIZED = "ContainersNotInitialized"
READINESS_GATES_NOT_READY = "ReadinessGatesNotReady"
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"


def rfc3339(when: datetime | float | None = None) -> str:
    """A metav1.Time: UTC to the second (`2024-05-01T10:00:00Z`); now when not given."""
    if when is None:
        when = datetime.now(UTC)
    elif isinstance(when, int | float):
        when = datetime.fromtimestamp(when, UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(when: datetime | float | None = None) -> str:
    """A metav1.MicroTime (Lease renewTime): UTC to the microsecond."""
    if when is None:
        when = datetime.now(UTC)
    elif isinstance(when, int | float):
        when = datetime.fromtimestamp(when, UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> float | None:
    """Seconds since the epoch from a metav1.Time or MicroTime, or None if absent/garbled."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def normalize_image(ref: str) -> str:
    """The image reference as containerd reports it: `nginx` -> `docker.io/library/nginx:latest`."""
    name, digest = (ref.split("@", 1) + [""])[:2]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return f"{name}@{digest}" if digest else name


def image_id(ref: str) -> str:
    """A stable `repo@sha256:...` image ID for a runtime without a real image store."""
    name = normalize_image(ref).split("@", 1)[0]
    repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return f"{repo}@sha256:{hashlib.sha256(name.encode()).hexdigest()}"


# --- what a runtime reports --------------------------------------------------------------


@dataclass(frozen=True)
class Termination:
    """How a container ended (ContainerStateTerminated)."""

    exit_code: int
    reason: str = ""
    message: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str = ""
    signal: int | None = None

    def to_api(self) -> Obj:
        out: Obj = {"exitCode": self.exit_code}
        if self.signal is not None:
            out["signal"] = self.signal
        out["reason"] = self.reason or ("Completed" if self.exit_code == 0 else "Error")
        if self.message:
            out["message"] = self.message
        out["startedAt"] = self.started_at
        out["finishedAt"] = self.finished_at
        if self.container_id:
            out["containerID"] = self.container_id
        return out


@dataclass(frozen=True)
class ContainerState:
    """One container as the runtime sees it (upstream kubecontainer.Status, API-shaped).

    `state` is `waiting` (created or backing off), `running` or `terminated`; a container
    the runtime has not created yet has no ContainerState at all.
    """

    name: str
    image: str
    image_id: str = ""
    container_id: str = ""
    state: str = WAITING
    reason: str = ""
    message: str = ""
    started_at: str | None = None
    termination: Termination | None = None
    last_termination: Termination | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool | None = None


@dataclass(frozen=True)
class PodRuntimeStatus:
    """Everything the kubelet learns from its runtime about one pod."""

    pod_ips: Sequence[str] = ()
    sandbox_ready: bool = False
    containers: Mapping[str, ContainerState] = field(default_factory=dict)
    init_containers: Mapping[str, ContainerState] = field(default_factory=dict)


# --- container statuses ------------------------------------------------------------------


def container_status(
    spec: Mapping[str, Any],
    state: ContainerState | None,
    *,
    waiting_reason: str = CONTAINER_CREATING,
    init: bool = False,
) -> Obj:
    """The API ContainerStatus for the container `spec`, from its runtime `state`.

    A container the runtime does not know yet is waiting with `waiting_reason`
    (ContainerCreating, or PodInitializing while init containers run), as upstream. An
    init container (not a sidecar) is ready once it has exited 0, as upstream reports it.
    """
    name = str(spec.get("name") or "")
    image = str(spec.get("image") or "")
    if state is None:
        return {
            "name": name,
            "image": image,
            "imageID": "",
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": waiting_reason}},
        }
    out: Obj = {
        "name": name,
        "image": state.image or image,
        "imageID": state.image_id,
    }
    if state.container_id:
        out["containerID"] = state.container_id
    if state.state == RUNNING_STATE:
        out["state"] = {"running": {"startedAt": state.started_at}}
    elif state.state == TERMINATED and state.termination is not None:
        out["state"] = {"terminated": state.termination.to_api()}
    else:
        waiting: Obj = {}
        if state.reason:
            waiting["reason"] = state.reason
        if state.message:
            waiting["message"] = state.message
        out["state"] = {"waiting": waiting}
    out["lastState"] = {"terminated": state.last_termination.to_api()} if state.last_termination else {}
    if init and not _restartable_init(spec):
        out["ready"] = state.state == TERMINATED and state.termination is not None and state.termination.exit_code == 0
    else:
        out["ready"] = bool(state.ready) and state.state == RUNNING_STATE
    out["restartCount"] = state.restart_count
    started = state.started if state.started is not None else state.state == RUNNING_STATE
    out["started"] = bool(started) and state.state == RUNNING_STATE
    return out


def container_statuses(pod: Mapping[str, Any], runtime: PodRuntimeStatus) -> tuple[list[Obj], list[Obj]]:
    """(initContainerStatuses, containerStatuses) in spec order."""
    spec = pod.get("spec") or {}
    inits = [c for c in spec.get("initContainers") or [] if isinstance(c, Mapping)]
    mains = [c for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    init_out = [
        container_status(c, runtime.init_containers.get(str(c.get("name"))), waiting_reason=POD_INITIALIZING, init=True)
        for c in inits
    ]
    main_reason = POD_INITIALIZING if inits else CONTAINER_CREATING
    main_out = [container_status(c, runtime.containers.get(str(c.get("name"))), waiting_reason=main_reason) for c in mains]
    return init_out, main_out


# --- phase ---------------------------------------------------------------------------------


def _restartable_init(container: Mapping[str, Any]) -> bool:
    """A sidecar: an init container with restartPolicy Always."""
    return container.get("restartPolicy") == "Always"


def _by_name(statuses: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(s.get("name")): s for s in statuses}


def _state_kind(status: Mapping[str, Any]) -> str:
    state = status.get("state") or {}
    for kind in ("running", "terminated", "waiting"):
        if state.get(kind) is not None:
            return kind
    return ""


def _exit_code(status: Mapping[str, Any], where: str = "state") -> int | None:
    terminated = (status.get(where) or {}).get("terminated")
    return int(terminated.get("exitCode") or 0) if isinstance(terminated, Mapping) else None


def _any_regular_started(spec: Mapping[str, Any], statuses: Mapping[str, Mapping[str, Any]]) -> bool:
    for c in spec.get("containers") or []:
        s = statuses.get(str(c.get("name")))
        if s is not None and (_state_kind(s) in ("running", "terminated") or (s.get("lastState") or {}).get("terminated")):
            return True
    return False


def pod_phase(pod: Mapping[str, Any], statuses: Sequence[Mapping[str, Any]], pod_is_terminal: bool = False) -> str:
    """The pod phase from its container statuses (init and regular), as upstream getPhase."""
    spec = pod.get("spec") or {}
    by_name = _by_name(statuses)
    restart_policy = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    unknown = running = waiting = stopped = succeeded = 0
    for c in spec.get("initContainers") or []:
        s = by_name.get(str(c.get("name")))
        if _restartable_init(c):
            if s is None:
                unknown += 1
                continue
            kind = _state_kind(s)
            if kind == "running":
                if not s.get("started"):
                    pending_init += 1
                running += 1
            elif kind == "waiting" and _exit_code(s, "lastState") is None:
                pending_init += 1
                waiting += 1
            elif kind not in ("terminated", "waiting"):
                pending_init += 1
                unknown += 1
            continue
        if s is None:
            pending_init += 1
            continue
        kind = _state_kind(s)
        if kind == "terminated":
            if _exit_code(s):
                failed_init += 1
        elif kind == "waiting" and _exit_code(s, "lastState") is not None:
            if _exit_code(s, "lastState"):
                failed_init += 1
        else:
            pending_init += 1
    for c in spec.get("containers") or []:
        s = by_name.get(str(c.get("name")))
        if s is None:
            unknown += 1
            continue
        kind = _state_kind(s)
        if kind == "running":
            running += 1
        elif kind == "terminated":
            stopped += 1
            if _exit_code(s) == 0:
                succeeded += 1
        elif kind == "waiting":
            if _exit_code(s, "lastState") is not None:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1

    if failed_init and restart_policy == "Never":
        return FAILED
    if (pending_init and not _any_regular_started(spec, by_name)) or waiting:
        return PENDING
    if running and not unknown:
        return RUNNING
    if not running and stopped and not unknown:
        if pod_is_terminal:
            return SUCCEEDED if stopped == succeeded else FAILED
        if restart_policy == "Always":
            return RUNNING
        if stopped == succeeded:
            return SUCCEEDED
        if restart_policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


# --- conditions ----------------------------------------------------------------------------


def _condition(ctype: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": ctype, "status": "True" if ok else "False"}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _names_list(names: list[str]) -> str:
    # Go's %s of a []string: [a b c]
    return "[" + " ".join(names) + "]"


def containers_ready_condition(pod: Mapping[str, Any], statuses: Sequence[Mapping[str, Any]] | None, phase: str) -> Obj:
    """ContainersReady: every regular container (and sidecar) reports ready."""
    if statuses is None:
        return _condition(CONTAINERS_READY, False, UNKNOWN_CONTAINER_STATUSES)
    spec = pod.get("spec") or {}
    by_name = _by_name(statuses)
    unknown: list[str] = []
    unready: list[str] = []
    wanted = [c for c in spec.get("initContainers") or [] if _restartable_init(c)] + list(spec.get("containers") or [])
    for c in wanted:
        name = str(c.get("name"))
        s = by_name.get(name)
        if s is None:
            unknown.append(name)
        elif not s.get("ready"):
            unready.append(name)
    if phase == SUCCEEDED and not unknown:
        return _condition(CONTAINERS_READY, False, POD_COMPLETED)
    if phase == FAILED:
        return _condition(CONTAINERS_READY, False, POD_FAILED)
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_names_list(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {_names_list(unready)}")
    if messages:
        return _condition(CONTAINERS_READY, False, CONTAINERS_NOT_READY, ", ".join(messages))
    return _condition(CONTAINERS_READY, True)


def ready_condition(
    pod: Mapping[str, Any], conditions: Sequence[Mapping[str, Any]], statuses: Sequence[Mapping[str, Any]] | None, phase: str
) -> Obj:
    """Ready: containers ready and every readiness gate's condition True."""
    containers = containers_ready_condition(pod, statuses, phase)
    if containers["status"] != "True":
        return {**containers, "type": READY}
    by_type = {c.get("type"): c for c in conditions}
    messages = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        ctype = gate.get("conditionType")
        cond = by_type.get(ctype)
        if cond is None:
            messages.append(f'corresponding condition of pod readiness gate "{ctype}" does not exist.')
        elif cond.get("status") != "True":
            messages.append(f'the status of pod readiness gate "{ctype}" is not "True", but {cond.get("status")}')
    if messages:
        return _condition(READY, False, READINESS_GATES_NOT_READY, ", ".join(messages))
    return _condition(READY, True)


def initialized_condition(pod: Mapping[str, Any], statuses: Sequence[Mapping[str, Any]] | None, phase: str) -> Obj:
    """Initialized: every init container has completed (a sidecar: has started)."""
    spec = pod.get("spec") or {}
    inits = list(spec.get("initContainers") or [])
    if statuses is None and inits:
        return _condition(INITIALIZED, False, UNKNOWN_CONTAINER_STATUSES)
    by_name = _by_name(statuses or [])
    unknown: list[str] = []
    incomplete: list[str] = []
    for c in inits:
        name = str(c.get("name"))
        s = by_name.get(name)
        if s is None:
            unknown.append(name)
            continue
        done = bool(s.get("started")) if _restartable_init(c) else _exit_code(s) == 0
        if not done:
            incomplete.append(name)
    if phase == SUCCEEDED and not unknown:
        return _condition(INITIALIZED, True, POD_COMPLETED)
    if _any_regular_started(spec, by_name):
        return _condition(INITIALIZED, True)
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_names_list(unknown)}")
    if incomplete:
        messages.append(f"containers with incomplete status: {_names_list(incomplete)}")
    if messages:
        return _condition(INITIALIZED, False, CONTAINERS_NOT_INITIALIZED, ", ".join(messages))
    return _condition(INITIALIZED, True)


def _carry_transition_times(new: list[Obj], old: Sequence[Mapping[str, Any]], now: str) -> list[Obj]:
    """Each condition keeps its old lastTransitionTime while its status is unchanged."""
    previous = {c.get("type"): c for c in old if isinstance(c, Mapping)}
    out = []
    for cond in new:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"] and before.get("lastTransitionTime")
        out.append({
            "type": cond["type"],
            "status": cond["status"],
            "lastProbeTime": None,
            "lastTransitionTime": before.get("lastTransitionTime") if same and before is not None else now,
            **{k: cond[k] for k in ("reason", "message") if cond.get(k)},
        })
    return out


# --- the whole status ----------------------------------------------------------------------


def build_pod_status(
    pod: Mapping[str, Any],
    runtime: PodRuntimeStatus,
    *,
    host_ips: Sequence[str],
    now: str | None = None,
    pod_is_terminal: bool = False,
) -> Obj:
    """The status the kubelet writes for `pod` given what its runtime reports.

    `pod` is the pod as the API has it: its status supplies what is kept (startTime,
    qosClass, conditions not owned by the kubelet, transition times, a terminal phase
    and its reason). `pod_is_terminal` says the kubelet has stopped the pod for good
    (deleted, or finished with a restartPolicy that does not restart it).
    """
    now = now or rfc3339()
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    init_statuses, statuses = container_statuses(pod, runtime)
    phase = pod_phase(pod, init_statuses + statuses, pod_is_terminal)
    old_phase = old.get("phase")
    if old_phase in TERMINAL_PHASES and phase != old_phase:
        phase = old_phase  # pods never leave a terminal phase

    status: Obj = {"phase": phase}
    kept = [c for c in old.get("conditions") or [] if isinstance(c, Mapping) and c.get("type") not in KUBELET_CONDITIONS]
    all_statuses = init_statuses + statuses
    kubelet_conditions = [
        _condition(READY_TO_START, runtime.sandbox_ready),
        initialized_condition(pod, all_statuses, phase),
        ready_condition(pod, kept, all_statuses, phase),
        containers_ready_condition(pod, all_statuses, phase),
        _condition(SCHEDULED, True),
    ]
    status["conditions"] = [dict(c) for c in kept] + _carry_transition_times(
        kubelet_conditions, old.get("conditions") or [], now
    )
    if phase == old_phase:
        for key in ("reason", "message"):
            if old.get(key):
                status[key] = old[key]
    if host_ips:
        status["hostIP"] = host_ips[0]
        status["hostIPs"] = [{"ip": ip} for ip in host_ips]
    pod_ips = list(runtime.pod_ips)
    if spec.get("hostNetwork") and host_ips:
        pod_ips = list(host_ips)
    if not pod_ips and old.get("podIP"):
        pod_ips = [p.get("ip") for p in old.get("podIPs") or [] if p.get("ip")] or [old["podIP"]]
    if pod_ips:
        status["podIP"] = pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in pod_ips]
    status["startTime"] = old.get("startTime") or now
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    for key in ("nominatedNodeName", "resize", "resourceClaimStatuses"):
        if old.get(key):
            status[key] = old[key]
    return status


def _comparable(status: Mapping[str, Any]) -> Obj:
    out = {k: v for k, v in status.items() if k != "conditions"}
    conds = {}
    for c in status.get("conditions") or []:
        if isinstance(c, Mapping):
            conds[c.get("type")] = (c.get("status"), c.get("reason") or "", c.get("message") or "")
    out["conditions"] = conds
    return out


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` over `old` changes anything a reader would notice.

    Conditions are compared by type, status, reason and message: their order and a
    transition time carried over do not count (upstream isPodStatusByKubeletEqual).
    """
    return _comparable(old or {}) != _comparable(new)


def pod_condition(pod: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == ctype:
            return c
    return None


def set_condition(status: Obj, condition: Mapping[str, Any], now: str | None = None) -> bool:
    """Add or update one condition in `status` (upstream UpdatePodCondition).

    The transition time moves only when the status flips. Returns whether anything changed.
    """
    now = now or rfc3339()
    conds: list[Obj] = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") != condition["type"]:
            continue
        new = {**c, **condition}
        new["lastTransitionTime"] = now if c.get("status") != condition.get("status") else c.get("lastTransitionTime") or now
        new.setdefault("lastProbeTime", None)
        for key in ("reason", "message"):
            if key not in condition:
                new.pop(key, None)
        if new == c:
            return False
        conds[i] = new
        return True
    conds.append({"lastProbeTime": None, "lastTransitionTime": now, **condition})
    return True


__all__ = [
    "ContainerState",
    "PodRuntimeStatus",
    "Termination",
    "build_pod_status",
    "container_status",
    "image_id",
    "micro_time",
    "normalize_image",
    "parse_time",
    "pod_condition",
    "pod_phase",
    "rfc3339",
    "set_condition",
    "status_changed",
]
