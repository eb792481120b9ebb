"""The pod status a kubelet reports, from what its runtime says (tuik8s.kubelet.status)."""

from __future__ import annotations

import copy

import pytest

from tuik8s.kubelet.status import (
    RUNNING_STATE,
    TERMINATED,
    WAITING,
    ContainerState,
    PodRuntimeStatus,
    Termination,
    build_pod_status,
    container_status,
    image_id,
    micro_time,
    normalize_image,
    parse_time,
    pod_phase,
    rfc3339,
    set_condition,
    status_changed,
)

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:00:05Z"
T2 = "2024-05-01T10:01:00Z"


def pod(*, containers=("web",), inits=(), restart="Always", status=None, gates=(), host_network=False):
    spec = {
        "restartPolicy": restart,
        "containers": [{"name": n, "image": "nginx"} for n in containers],
    }
    if inits:
        spec["initContainers"] = [
            {"name": n, "image": "busybox", **({"restartPolicy": "Always"} if n.startswith("sidecar") else {})}
            for n in inits
        ]
    if gates:
        spec["readinessGates"] = [{"conditionType": g} for g in gates]
    if host_network:
        spec["hostNetwork"] = True
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": spec,
        "status": status if status is not None else {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": T0}],
        },
    }


def running(name, *, ready=True, restarts=0, last=None):
    return ContainerState(
        name=name, image="docker.io/library/nginx:latest", image_id="docker.io/library/nginx@sha256:ab",
        container_id=f"hollow://{name}", state=RUNNING_STATE, started_at=T1, ready=ready, started=True,
        restart_count=restarts, last_termination=last,
    )


def exited(name, code):
    term = Termination(code, started_at=T1, finished_at=T2, container_id=f"hollow://{name}")
    return ContainerState(name=name, image="busybox", container_id=f"hollow://{name}", state=TERMINATED, termination=term)


def conditions(status):
    return {c["type"]: c for c in status["conditions"]}


# ---- container statuses -------------------------------------------------------------------


def test_a_container_the_runtime_has_not_created_is_waiting_in_container_creating():
    cs = container_status({"name": "web", "image": "nginx"}, None)
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cs["ready"] is False and cs["started"] is False and cs["restartCount"] == 0
    assert cs["image"] == "nginx" and cs["imageID"] == "" and cs["lastState"] == {}


def test_a_running_container_reports_its_start_ids_and_readiness():
    cs = container_status({"name": "web", "image": "nginx"}, running("web"))
    assert cs["state"] == {"running": {"startedAt": T1}}
    assert cs["containerID"] == "hollow://web"
    assert cs["imageID"].startswith("docker.io/library/nginx@sha256:")
    assert cs["ready"] is True and cs["started"] is True


def test_a_terminated_container_reports_exit_code_reason_and_times():
    cs = container_status({"name": "job"}, exited("job", 3))
    assert cs["state"]["terminated"] == {
        "exitCode": 3, "reason": "Error", "startedAt": T1, "finishedAt": T2, "containerID": "hollow://job",
    }
    assert cs["ready"] is False and cs["started"] is False


def test_a_restarted_container_shows_its_last_termination():
    last = Termination(1, started_at=T0, finished_at=T1)
    cs = container_status({"name": "web"}, running("web", restarts=2, last=last))
    assert cs["restartCount"] == 2
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["reason"] == "Error"


def test_a_backing_off_container_waits_with_the_runtimes_reason():
    state = ContainerState(name="web", image="nginx", state=WAITING, reason="CrashLoopBackOff", message="back-off 10s")
    cs = container_status({"name": "web"}, state)
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}


# ---- phase ----------------------------------------------------------------------------------


def statuses(**states):
    """Container statuses by name: 'run', 'wait', 'exit0', 'exit1', 'crash1' (waiting after exit 1)."""
    out = []
    for name, kind in states.items():
        if kind == "run":
            out.append({"name": name, "state": {"running": {"startedAt": T1}}})
        elif kind == "wait":
            out.append({"name": name, "state": {"waiting": {"reason": "ContainerCreating"}}})
        elif kind.startswith("exit"):
            out.append({"name": name, "state": {"terminated": {"exitCode": int(kind[4:])}}})
        elif kind.startswith("crash"):
            out.append({"name": name, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": int(kind[5:])}}})
    return out


@pytest.mark.parametrize(
    ("restart", "states", "terminal", "phase"),
    [
        ("Always", {}, False, "Pending"),
        ("Always", {"a": "wait", "b": "run"}, False, "Pending"),
        ("Always", {"a": "run", "b": "run"}, False, "Running"),
        ("Always", {"a": "exit0", "b": "exit1"}, False, "Running"),
        ("Always", {"a": "exit0", "b": "exit0"}, True, "Succeeded"),
        ("Always", {"a": "exit0", "b": "exit137"}, True, "Failed"),
        ("Never", {"a": "exit0", "b": "exit0"}, False, "Succeeded"),
        ("Never", {"a": "exit0", "b": "exit2"}, False, "Failed"),
        ("Never", {"a": "run", "b": "exit2"}, False, "Running"),
        ("OnFailure", {"a": "exit0", "b": "crash1"}, False, "Running"),
        ("OnFailure", {"a": "exit0", "b": "exit0"}, False, "Succeeded"),
    ],
    ids=[
        "nothing-yet", "one-waiting", "all-running", "always-restarts", "deleted-all-ok",
        "deleted-one-failed", "never-all-ok", "never-one-failed", "never-still-running",
        "onfailure-backing-off", "onfailure-all-ok",
    ],
)
def test_phase_follows_upstream_get_phase(restart, states, terminal, phase):
    p = pod(containers=("a", "b"), restart=restart)
    assert pod_phase(p, statuses(**states), terminal) == phase


def test_pending_while_init_containers_run_and_failed_init_fails_a_never_pod():
    p = pod(containers=("a",), inits=("init",), restart="Never")
    assert pod_phase(p, statuses(init="run", a="wait")) == "Pending"
    assert pod_phase(p, statuses(init="exit1", a="wait")) == "Failed"
    assert pod_phase(p, statuses(init="exit0", a="run")) == "Running"


def test_a_running_sidecar_does_not_hold_the_pod_pending_once_started():
    p = pod(containers=("a",), inits=("sidecar",))
    sts = statuses(sidecar="run", a="run")
    sts[0]["started"] = True
    assert pod_phase(p, sts) == "Running"


# ---- the whole status -----------------------------------------------------------------------


def test_a_pod_whose_containers_run_and_are_ready_is_running_and_ready():
    p = pod(containers=("web", "log"))
    runtime = PodRuntimeStatus(pod_ips=("10.244.1.5",), sandbox_ready=True,
                               containers={"web": running("web"), "log": running("log")})
    status = build_pod_status(p, runtime, host_ips=["10.200.0.2"], now=T1)
    assert status["phase"] == "Running"
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled",
    ]
    assert all(c["status"] == "True" for c in status["conditions"])
    assert conditions(status)["PodScheduled"]["lastTransitionTime"] == T0  # kept from the binding
    assert conditions(status)["Ready"]["lastTransitionTime"] == T1
    assert status["podIP"] == "10.244.1.5" and status["podIPs"] == [{"ip": "10.244.1.5"}]
    assert status["hostIP"] == "10.200.0.2" and status["hostIPs"] == [{"ip": "10.200.0.2"}]
    assert status["startTime"] == T1
    assert status["qosClass"] == "BestEffort"
    assert [c["name"] for c in status["containerStatuses"]] == ["web", "log"]


def test_unready_containers_are_named_in_ready_and_containers_ready():
    p = pod(containers=("web", "log"))
    runtime = PodRuntimeStatus(pod_ips=("10.244.1.5",), sandbox_ready=True,
                               containers={"web": running("web", ready=False)})
    status = build_pod_status(p, runtime, host_ips=["10.200.0.2"], now=T1)
    assert status["phase"] == "Pending"  # log is still being created
    ready = conditions(status)["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [web log]"
    assert conditions(status)["ContainersReady"]["message"] == ready["message"]


def test_before_the_sandbox_exists_containers_are_creating():
    status = build_pod_status(pod(), PodRuntimeStatus(), host_ips=["10.200.0.2"], now=T1)
    assert status["phase"] == "Pending"
    assert conditions(status)["PodReadyToStartContainers"]["status"] == "False"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert "podIP" not in status


def test_init_containers_gate_initialized_and_completed_ones_report_ready():
    p = pod(containers=("web",), inits=("setup",))
    waiting = build_pod_status(p, PodRuntimeStatus(sandbox_ready=True), host_ips=["10.0.0.1"], now=T1)
    init = conditions(waiting)["Initialized"]
    assert init["status"] == "False" and init["reason"] == "ContainersNotInitialized"
    assert init["message"] == "containers with incomplete status: [setup]"
    assert waiting["initContainerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert waiting["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}

    done = PodRuntimeStatus(pod_ips=("10.244.0.9",), sandbox_ready=True,
                            init_containers={"setup": exited("setup", 0)}, containers={"web": running("web")})
    status = build_pod_status(p, done, host_ips=["10.0.0.1"], now=T2)
    assert conditions(status)["Initialized"]["status"] == "True"
    assert status["initContainerStatuses"][0]["ready"] is True
    assert status["phase"] == "Running"


def test_a_finished_pod_is_completed_not_ready():
    p = pod(containers=("job",), restart="Never")
    runtime = PodRuntimeStatus(pod_ips=("10.244.0.9",), sandbox_ready=False, containers={"job": exited("job", 0)})
    status = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T2)
    assert status["phase"] == "Succeeded"
    assert conditions(status)["Ready"] == {
        "type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": T2, "reason": "PodCompleted",
    }
    assert conditions(status)["ContainersReady"]["reason"] == "PodCompleted"
    assert conditions(status)["Initialized"]["reason"] == "PodCompleted"


def test_a_failed_pod_reports_pod_failed():
    p = pod(containers=("job",), restart="Never")
    runtime = PodRuntimeStatus(pod_ips=("10.244.0.9",), containers={"job": exited("job", 2)})
    status = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T2)
    assert status["phase"] == "Failed"
    assert conditions(status)["Ready"]["reason"] == "PodFailed"


def test_readiness_gates_hold_ready_until_their_condition_is_true():
    p = pod(gates=("example.com/lb",))
    runtime = PodRuntimeStatus(pod_ips=("10.244.0.9",), sandbox_ready=True, containers={"web": running("web")})
    status = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T1)
    ready = conditions(status)["Ready"]
    assert ready["reason"] == "ReadinessGatesNotReady"
    assert ready["message"] == 'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    assert conditions(status)["ContainersReady"]["status"] == "True"

    p["status"]["conditions"].append({"type": "example.com/lb", "status": "True", "lastTransitionTime": T1})
    status = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T1)
    assert conditions(status)["Ready"]["status"] == "True"
    assert conditions(status)["example.com/lb"]["status"] == "True"  # kept, not the kubelet's


def test_conditions_others_own_are_kept_as_they_are():
    p = pod()
    disruption = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                  "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": T0}
    p["status"]["conditions"].append(disruption)
    runtime = PodRuntimeStatus(pod_ips=("10.244.0.9",), sandbox_ready=True, containers={"web": running("web")})
    status = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T1)
    assert conditions(status)["DisruptionTarget"] == disruption


def test_transition_times_and_start_time_stay_while_nothing_changes():
    p = pod()
    runtime = PodRuntimeStatus(pod_ips=("10.244.0.9",), sandbox_ready=True, containers={"web": running("web")})
    first = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T1)
    p["status"] = first
    again = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T2)
    assert again == first
    assert not status_changed(first, again)

    # the node lifecycle controller marked it not Ready; the kubelet says Ready again
    marked = copy.deepcopy(first)
    conditions(marked)["Ready"].update(status="False", lastTransitionTime=T2)
    p["status"] = marked
    back = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T2)
    assert status_changed(marked, back)
    assert conditions(back)["Ready"]["status"] == "True"
    assert conditions(back)["Ready"]["lastTransitionTime"] == T2
    assert conditions(back)["Initialized"]["lastTransitionTime"] == T1


def test_a_terminal_phase_is_never_left():
    p = pod(status={"phase": "Succeeded", "qosClass": "BestEffort", "conditions": []})
    runtime = PodRuntimeStatus(pod_ips=("10.244.0.9",), sandbox_ready=True, containers={"web": running("web")})
    assert build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T1)["phase"] == "Succeeded"


def test_phase_reason_and_message_are_kept_with_the_phase():
    p = pod(status={"phase": "Running", "reason": "Evicted", "message": "why", "conditions": []})
    runtime = PodRuntimeStatus(pod_ips=("10.244.0.9",), sandbox_ready=True, containers={"web": running("web")})
    status = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T1)
    assert (status["reason"], status["message"]) == ("Evicted", "why")


def test_host_network_pods_use_the_node_ips():
    p = pod(host_network=True)
    runtime = PodRuntimeStatus(sandbox_ready=True, containers={"web": running("web")})
    status = build_pod_status(p, runtime, host_ips=["10.0.0.1"], now=T1)
    assert status["podIP"] == "10.0.0.1" and status["podIPs"] == [{"ip": "10.0.0.1"}]


def test_status_changed_ignores_condition_order_and_carried_times():
    a = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": T0},
        {"type": "Initialized", "status": "True", "lastTransitionTime": T0},
    ]}
    b = {"phase": "Running", "conditions": [
        {"type": "Initialized", "status": "True", "lastTransitionTime": T1},
        {"type": "Ready", "status": "True", "lastTransitionTime": T1},
    ]}
    assert not status_changed(a, b)
    assert status_changed(a, {**b, "phase": "Failed"})
    assert status_changed(None, b)


# ---- small helpers --------------------------------------------------------------------------


def test_set_condition_moves_the_transition_time_only_when_the_status_flips():
    status = {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": T0, "lastProbeTime": None}]}
    assert not set_condition(status, {"type": "Ready", "status": "True"}, now=T1)
    assert status["conditions"][0]["lastTransitionTime"] == T0
    assert set_condition(status, {"type": "Ready", "status": "False", "reason": "X"}, now=T1)
    assert status["conditions"][0] == {"type": "Ready", "status": "False", "reason": "X",
                                       "lastTransitionTime": T1, "lastProbeTime": None}
    assert set_condition(status, {"type": "DisruptionTarget", "status": "True"}, now=T2)
    assert status["conditions"][1]["lastTransitionTime"] == T2


@pytest.mark.parametrize(
    ("ref", "normal"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("bitnami/redis", "docker.io/bitnami/redis:latest"),
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
    ],
)
def test_image_references_are_normalized_as_containerd_reports_them(ref, normal):
    assert normalize_image(ref) == normal


def test_image_ids_are_stable_digests_of_the_repository():
    assert image_id("nginx") == image_id("docker.io/library/nginx:latest")
    assert image_id("nginx").startswith("docker.io/library/nginx@sha256:")
    assert image_id("nginx") != image_id("nginx:1.27")


def test_times_round_trip():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert micro_time(1.5) == "1970-01-01T00:00:01.500000Z"
    assert parse_time(micro_time(1.5)) == 1.5
    assert parse_time("garbage") is None and parse_time(None) is None
