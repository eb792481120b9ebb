"""The node lifecycle controller against a real `tuik8s server` and hollow nodes.

A hollow kubelet frozen with SIGSTOP stops renewing its Lease: its Node turns NotReady
(Ready Unknown, "Kubelet stopped posting node status."), gets the unreachable taints,
its pods turn not Ready and are evicted as their tolerations run out; thawed, it is Ready
again and untainted. Pods of a deleted Node are garbage collected. When every node is
down, nothing is evicted. The server runs with short timings (grace 6 s, default
toleration 3 s) and the kubelets with a 6 s Lease, so the module stays under a minute.

The tests run in order on one cluster: three steady nodes and one victim.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import RunningServer, start_server, stop_server, wait_for
from tests.integration.hollow_fixtures import NO_SCHEDULER, HollowProcess, bind, start_hollow
from tuik8s.controllers.nodelifecycle import (
    FULL,
    NORMAL,
    PARTIAL,
    effective_tolerations,
    min_toleration_seconds,
    wanted_noschedule_taints,
    zone_state,
)

GRACE, TOLERATION, LEASE = 6, 3, 6
UNREACHABLE = "node.kubernetes.io/unreachable"


# ---- the rules, without a cluster --------------------------------------------------------------


def test_pods_without_a_toleration_get_the_default_one():
    pod = {"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}
    tolerations = effective_tolerations(pod, 300)
    assert {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300} in tolerations
    assert min_toleration_seconds([{"key": UNREACHABLE, "effect": "NoExecute"}], tolerations) == 300


def test_a_pods_own_toleration_wins_and_forever_means_never():
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert min_toleration_seconds([{"key": UNREACHABLE, "effect": "NoExecute"}], effective_tolerations(forever, 300)) is None
    short = {"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}}
    assert min_toleration_seconds([{"key": UNREACHABLE, "effect": "NoExecute"}], effective_tolerations(short, 300)) == 5


def test_an_untolerated_taint_evicts_at_once_and_the_shortest_toleration_counts():
    pod = {"spec": {"tolerations": [
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 50},
        {"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20},
    ]}}
    taints = [{"key": UNREACHABLE, "effect": "NoExecute"}, {"key": "maintenance", "effect": "NoExecute"}]
    assert min_toleration_seconds(taints, effective_tolerations(pod, 300)) == 20
    assert min_toleration_seconds([{"key": "other", "effect": "NoExecute"}], effective_tolerations(pod, 300)) == 0


def test_conditions_map_to_noschedule_taints():
    node = {"spec": {"unschedulable": True}, "status": {"conditions": [
        {"type": "Ready", "status": "Unknown"}, {"type": "MemoryPressure", "status": "True"},
        {"type": "DiskPressure", "status": "False"},
    ]}}
    assert sorted(wanted_noschedule_taints(node)) == [
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        (UNREACHABLE, "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]


@pytest.mark.parametrize(
    ("ready", "state"),
    [
        (["True", "True", "Unknown"], NORMAL),
        (["Unknown", "Unknown"], FULL),
        (["True", "Unknown", "Unknown", "False"], PARTIAL),
        (["True", "True", "Unknown", "Unknown"], NORMAL),  # at most two down is never a disruption
    ],
    ids=["one-down", "all-down", "most-down", "two-down"],
)
def test_zone_states(ready, state):
    assert zone_state(ready)[1] == state


# ---- against a cluster --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("nodelifecycle")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home, extra=(
        "--node-monitor-grace", str(GRACE), "--default-toleration-seconds", str(TOLERATION),
    ))
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def steady(cluster: RunningServer) -> Iterator[HollowProcess]:
    proc = start_hollow(cluster, 3, "steady-", "--lease-duration", str(LEASE))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def victim(cluster: RunningServer, steady: HollowProcess) -> Iterator[HollowProcess]:
    proc = start_hollow(cluster, 1, "victim-", "--lease-duration", str(LEASE))
    try:
        yield proc
    finally:
        proc.stop()


def run_pod(server: RunningServer, name: str, node: str, tolerations: list | None = None) -> None:
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"schedulerName": NO_SCHEDULER, "tolerations": tolerations or [],
                 "containers": [{"name": "app", "image": "busybox"}]},
    }
    server.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=True)
    bind(server, "default", name, node)


def pod(server: RunningServer, name: str) -> dict | None:
    result = server.kubectl("get", "pod", name, "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


def node(server: RunningServer, name: str) -> dict:
    return server.kubectl_json("get", "node", name)


def cond(obj: dict | None, ctype: str) -> dict:
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def taints(server: RunningServer, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node(server, name)["spec"].get("taints") or []}


def events(server: RunningServer, name: str) -> str:
    return server.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", check=True).stdout


def running_and_ready(server: RunningServer, name: str) -> bool:
    p = pod(server, name)
    return bool(p) and p["status"].get("phase") == "Running" and cond(p, "Ready").get("status") == "True"


def test_a_frozen_node_goes_unknown_is_tainted_and_its_pods_are_evicted(cluster: RunningServer, victim: HollowProcess):
    run_pod(cluster, "plain", "victim-0")  # no toleration: the default (3 s) applies
    run_pod(cluster, "patient", "victim-0", [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 600}])
    run_pod(cluster, "forever", "victim-0", [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])
    for name in ("plain", "patient", "forever"):
        wait_for(lambda name=name: running_and_ready(cluster, name), timeout=10)

    victim.pause()
    ready = wait_for(lambda: (c := cond(node(cluster, "victim-0"), "Ready")).get("status") == "Unknown" and c,
                     timeout=GRACE + 10, interval=0.25)
    assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
    assert cond(node(cluster, "victim-0"), "MemoryPressure")["status"] == "Unknown"
    listing = cluster.kubectl("get", "nodes", check=True).stdout
    assert any(line.startswith("victim-0 ") and " NotReady " in line for line in listing.splitlines())
    wait_for(lambda: {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= taints(cluster, "victim-0"), timeout=10)
    for name in ("plain", "patient", "forever"):
        wait_for(lambda name=name: cond(pod(cluster, name), "Ready").get("status") == "False", timeout=10)

    evicted = wait_for(lambda: (p := pod(cluster, "plain")) and p["metadata"].get("deletionTimestamp") and p,
                       timeout=TOLERATION + 10, interval=0.25)
    disruption = cond(evicted, "DisruptionTarget")
    assert disruption["reason"] == "DeletionByTaintManager"
    assert disruption["message"] == "Taint manager: deleting due to NoExecute taint"
    assert "Marking for deletion Pod default/plain" in events(cluster, "plain")
    assert "Node is not ready" in events(cluster, "plain")
    assert "Terminating" in cluster.kubectl("get", "pod", "plain", check=True).stdout
    for name in ("patient", "forever"):
        assert not pod(cluster, name)["metadata"].get("deletionTimestamp")
    described = cluster.kubectl("describe", "node", "victim-0", check=True).stdout
    assert "NodeNotReady" in described and "Node victim-0 status is now: NodeNotReady" in described
    assert "node.kubernetes.io/unreachable:NoExecute" in described
    for steady_node in ("steady-0", "steady-1", "steady-2"):
        assert cond(node(cluster, steady_node), "Ready")["status"] == "True"
        assert not taints(cluster, steady_node)


def test_a_thawed_node_is_ready_and_untainted_and_finishes_the_eviction(cluster: RunningServer, victim: HollowProcess):
    victim.resume()
    wait_for(lambda: cond(node(cluster, "victim-0"), "Ready").get("status") == "True", timeout=10, interval=0.25)
    wait_for(lambda: not taints(cluster, "victim-0"), timeout=10, interval=0.25)
    wait_for(lambda: pod(cluster, "plain") is None, timeout=10)  # its kubelet completed the deletion
    for name in ("patient", "forever"):
        wait_for(lambda name=name: running_and_ready(cluster, name), timeout=10)
    assert "Cancelling deletion of Pod default/patient" in events(cluster, "patient")
    assert "NodeReady" in cluster.kubectl("describe", "node", "victim-0", check=True).stdout


def test_pods_of_a_deleted_node_are_garbage_collected(cluster: RunningServer, victim: HollowProcess):
    assert victim.stop() == 0
    cluster.kubectl("delete", "node", "victim-0", check=True)
    # after the quarantine (the grace period) and a check that the Node is really gone
    for name in ("patient", "forever"):
        wait_for(lambda name=name: pod(cluster, name) is None, timeout=GRACE + GRACE / 2 + 10, interval=0.5)
    assert "Removing Node victim-0 from Controller" in events(cluster, "victim-0")


def test_when_every_node_is_down_nothing_is_evicted(cluster: RunningServer, steady: HollowProcess):
    run_pod(cluster, "lonely", "steady-0")
    wait_for(lambda: running_and_ready(cluster, "lonely"), timeout=10)
    assert steady.stop() == 0  # every kubelet of the cluster stops; the Nodes stay
    for name in steady.names:
        wait_for(lambda name=name: cond(node(cluster, name), "Ready").get("status") == "Unknown", timeout=GRACE + 10, interval=0.25)
    wait_for(lambda: (UNREACHABLE, "NoSchedule") in taints(cluster, "steady-0"), timeout=10)
    wait_for(lambda: cond(pod(cluster, "lonely"), "Ready").get("status") == "False", timeout=10)
    # long enough for a taint and the 3 s toleration to run out, had there been one;
    # a sleep, since what is asserted is that nothing happens
    time.sleep(TOLERATION + 3)
    assert not pod(cluster, "lonely")["metadata"].get("deletionTimestamp")
    assert (UNREACHABLE, "NoExecute") not in taints(cluster, "steady-0")
