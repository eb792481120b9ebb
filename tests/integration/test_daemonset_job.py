"""DaemonSets and Jobs on a real `tuik8s server` with hollow nodes, seen through kubectl.

The nodes are hollow kubelets (`tests/integration/hollow_fixtures.py`): real Nodes with
Leases and status that run the pods bound to them. The default scheduler binds the pods. A Job's
pods end on their own through the hollow annotations `tuik8s.io/hollow-exit-code` and
`tuik8s.io/hollow-run-seconds`.

What is asserted is what a user sees: one daemon pod per node in `kubectl get pods -o
wide`, `kubectl rollout status ds/...` finishing, `kubectl get jobs` showing COMPLETIONS
3/3 and STATUS Complete, the Job's conditions and events.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.integration.conftest import RunningServer, wait_for
from tests.integration.hollow_fixtures import start_hollow

NODES = ("dsj-0", "dsj-1")


@pytest.fixture(scope="module")
def cluster(server: RunningServer) -> Iterator[RunningServer]:
    nodes = start_hollow(server, 2, "dsj-")
    try:
        yield server
    finally:
        nodes.stop()


def kubectl(server: RunningServer, *args: str, input: str | None = None) -> str:
    return server.kubectl(*args, input=input, check=True).stdout


def namespace(server: RunningServer, name: str) -> str:
    kubectl(server, "create", "namespace", name)
    return name


def pods(server: RunningServer, ns: str, selector: str | None = None) -> list[dict]:
    args = ["get", "pods", "-n", ns] + (["-l", selector] if selector else [])
    return server.kubectl_json(*args)["items"]


def running_by_node(server: RunningServer, ns: str) -> Counter[str]:
    return Counter(
        p["spec"]["nodeName"] for p in pods(server, ns)
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    )


def events(server: RunningServer, ns: str, name: str) -> list[tuple[str, str, str]]:
    items = server.kubectl_json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def daemonset(name: str, ns: str, image: str = "registry.k8s.io/pause:3.10", **pod_spec: object) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "agent", "image": image}], **pod_spec},
            },
        },
    })


def job(name: str, ns: str, exit_code: int, run_seconds: float, **spec: object) -> str:
    return json.dumps({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            **spec,
            "template": {
                "metadata": {"annotations": {
                    "tuik8s.io/hollow-exit-code": str(exit_code),
                    "tuik8s.io/hollow-run-seconds": str(run_seconds),
                }},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox:1.36"}]},
            },
        },
    })


def time_of(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---- DaemonSets ---------------------------------------------------------------------------


def test_a_daemonset_runs_one_pod_per_node_and_rolls_out(cluster: RunningServer) -> None:
    ns = namespace(cluster, "ds-basic")
    kubectl(cluster, "apply", "-f", "-", input=daemonset("agent", ns))
    wait_for(lambda: running_by_node(cluster, ns) == Counter(NODES), timeout=20)
    done = cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=30s")
    assert done.returncode == 0 and 'daemon set "agent" successfully rolled out' in done.stdout

    ds = cluster.kubectl_json("get", "ds", "agent", "-n", ns)
    status = ds["status"]
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberReady"],
            status["updatedNumberScheduled"], status["numberAvailable"]) == (2, 2, 2, 2, 2)
    assert status["numberMisscheduled"] == 0 and status["observedGeneration"] == ds["metadata"]["generation"]

    p = pods(cluster, ns)[0]
    assert p["metadata"]["name"].startswith("agent-")
    assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert {"controller-revision-hash", "pod-template-generation"} <= set(p["metadata"]["labels"])
    terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [p["spec"]["nodeName"]]}]}]
    tolerated = {(t["key"], t["effect"]) for t in p["spec"]["tolerations"]}
    assert ("node.kubernetes.io/unreachable", "NoExecute") in tolerated
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
    revisions = cluster.kubectl_json("get", "controllerrevisions", "-n", ns)["items"]
    assert [r["metadata"]["name"] for r in revisions] == [f"agent-{p['metadata']['labels']['controller-revision-hash']}"]
    assert sum(1 for e in events(cluster, ns, "agent") if e[1] == "SuccessfulCreate") == 2

    # a new template replaces the pods node by node, and rollout status follows it
    kubectl(cluster, "set", "image", "ds/agent", "-n", ns, "agent=registry.k8s.io/pause:3.9")
    done = cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=30s")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: running_by_node(cluster, ns) == Counter(NODES), timeout=20)
    images = {p["spec"]["containers"][0]["image"] for p in pods(cluster, ns) if not p["metadata"].get("deletionTimestamp")}
    assert images == {"registry.k8s.io/pause:3.9"}
    history = kubectl(cluster, "rollout", "history", "ds/agent", "-n", ns)
    assert "1 " in history and "2 " in history
    assert any(e[1] == "SuccessfulDelete" for e in events(cluster, ns, "agent"))


def test_a_node_that_joins_gets_a_daemon_pod(cluster: RunningServer) -> None:
    ns = namespace(cluster, "ds-join")
    kubectl(cluster, "apply", "-f", "-", input=daemonset("agent", ns))
    wait_for(lambda: running_by_node(cluster, ns) == Counter(NODES), timeout=20)
    late = start_hollow(cluster, 1, "dsj-late-", "--delete-on-exit")
    try:
        wait_for(lambda: running_by_node(cluster, ns) == Counter({*NODES, "dsj-late-0"}), timeout=30)
        status = cluster.kubectl_json("get", "ds", "agent", "-n", ns)["status"]
        assert status["desiredNumberScheduled"] == 3
    finally:
        late.stop()
    # the node left: the DaemonSet no longer wants a pod there
    wait_for(lambda: cluster.kubectl_json("get", "ds", "agent", "-n", ns)["status"]["desiredNumberScheduled"] == 2, timeout=20)


def test_a_tainted_node_gets_no_pod_unless_tolerated(cluster: RunningServer) -> None:
    ns = namespace(cluster, "ds-taint")
    kubectl(cluster, "taint", "node", "dsj-1", "dedicated=infra:NoSchedule")
    try:
        kubectl(cluster, "apply", "-f", "-", input=daemonset("plain", ns))
        tolerating = daemonset("tolerant", ns, tolerations=[{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}])
        kubectl(cluster, "apply", "-f", "-", input=tolerating)
        wait_for(lambda: len(pods(cluster, ns, "app=tolerant")) == 2 and len(pods(cluster, ns, "app=plain")) == 1, timeout=20)
        done = cluster.kubectl("rollout", "status", "ds/plain", "-n", ns, "--timeout=30s")
        assert done.returncode == 0, done.stderr
        assert [p["spec"]["nodeName"] for p in pods(cluster, ns, "app=plain")] == ["dsj-0"]
        assert sorted(p["spec"]["nodeName"] for p in pods(cluster, ns, "app=tolerant")) == list(NODES)
        assert cluster.kubectl_json("get", "ds", "plain", "-n", ns)["status"]["desiredNumberScheduled"] == 1
        table = kubectl(cluster, "get", "ds", "-n", ns)
        rows = {line.split()[0]: line.split()[1:3] for line in table.splitlines()[1:]}
        assert rows == {"plain": ["1", "1"], "tolerant": ["2", "2"]}  # DESIRED CURRENT
    finally:
        kubectl(cluster, "taint", "node", "dsj-1", "dedicated-")
    # the taint is gone: the node gets its pod
    wait_for(lambda: sorted(p["spec"].get("nodeName", "") for p in pods(cluster, ns, "app=plain")) == list(NODES), timeout=20)


# ---- Jobs ---------------------------------------------------------------------------------


def test_a_job_runs_its_completions_with_bounded_parallelism(cluster: RunningServer) -> None:
    ns = namespace(cluster, "job-ok")
    kubectl(cluster, "apply", "-f", "-", input=job("pi", ns, exit_code=0, run_seconds=1, completions=3, parallelism=2))
    wait_for(lambda: "Complete" in kubectl(cluster, "get", "job", "pi", "-n", ns), timeout=30)
    row = kubectl(cluster, "get", "jobs", "-n", ns).splitlines()[1].split()
    assert row[:3] == ["pi", "Complete", "3/3"]

    j = cluster.kubectl_json("get", "job", "pi", "-n", ns)
    uid = j["metadata"]["uid"]
    assert j["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    status = j["status"]
    assert status["succeeded"] == 3 and "failed" not in status and "active" not in status
    assert status["uncountedTerminatedPods"] == {} and status["ready"] == 0 and status["terminating"] == 0
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"), ("Complete", "True", "CompletionsReached"),
    ]
    assert status["completionTime"] >= status["startTime"]

    finished = pods(cluster, ns, "job-name=pi")
    assert len(finished) == 3 and {p["status"]["phase"] for p in finished} == {"Succeeded"}
    for p in finished:
        assert p["metadata"]["generateName"] == "pi-"
        assert not p["metadata"].get("finalizers")  # counted, then released
        labels = p["metadata"]["labels"]
        assert labels["batch.kubernetes.io/job-name"] == "pi" and labels["controller-uid"] == uid
    # never more than two at once: the third pod started only after one of the first two ended
    by_creation = sorted(finished, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
    first_end = min(time_of(p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]) for p in by_creation[:2])
    assert time_of(by_creation[2]["metadata"]["creationTimestamp"]) >= first_end

    reasons = [e[1] for e in events(cluster, ns, "pi")]
    assert reasons.count("SuccessfulCreate") == 3 and "Completed" in reasons


def test_a_failing_job_stops_at_its_backoff_limit(cluster: RunningServer) -> None:
    ns = namespace(cluster, "job-fail")
    kubectl(cluster, "apply", "-f", "-", input=job("boom", ns, exit_code=1, run_seconds=0.2, backoffLimit=1))
    wait_for(lambda: "Failed" in kubectl(cluster, "get", "job", "boom", "-n", ns), timeout=40)
    row = kubectl(cluster, "get", "jobs", "-n", ns).splitlines()[1].split()
    assert row[:3] == ["boom", "Failed", "0/1"]
    status = cluster.kubectl_json("get", "job", "boom", "-n", ns)["status"]
    assert status["failed"] == 2 and "succeeded" not in status
    assert [(c["type"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
    ]
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in events(cluster, ns, "boom")
    # the failed pod was replaced only after the 10 s failure backoff
    failed = sorted(pods(cluster, ns, "job-name=boom"), key=lambda p: p["metadata"]["creationTimestamp"])
    assert [p["status"]["phase"] for p in failed] == ["Failed", "Failed"]
    first_end = time_of(failed[0]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"])
    assert (time_of(failed[1]["metadata"]["creationTimestamp"]) - first_end).total_seconds() >= 9


def test_a_job_past_its_deadline_loses_its_running_pods(cluster: RunningServer) -> None:
    ns = namespace(cluster, "job-deadline")
    kubectl(cluster, "apply", "-f", "-", input=job("slow", ns, exit_code=0, run_seconds=120, activeDeadlineSeconds=2, parallelism=2, completions=4))
    wait_for(lambda: len(pods(cluster, ns, "job-name=slow")) == 2, timeout=20)
    wait_for(lambda: "Failed" in kubectl(cluster, "get", "job", "slow", "-n", ns), timeout=30)
    status = cluster.kubectl_json("get", "job", "slow", "-n", ns)["status"]
    assert status["conditions"][-1]["reason"] == "DeadlineExceeded"
    assert status["conditions"][-1]["message"] == "Job was active longer than specified deadline"
    assert status["failed"] == 2 and status["terminating"] == 0 and "active" not in status
    wait_for(lambda: pods(cluster, ns, "job-name=slow") == [], timeout=20)
    reasons = [e[1] for e in events(cluster, ns, "slow")]
    assert reasons.count("SuccessfulDelete") == 2 and "DeadlineExceeded" in reasons
