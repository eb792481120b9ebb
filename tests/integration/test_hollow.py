"""Hollow nodes against a real `tuik8s server`, seen through kubectl.

Three hollow kubelets register Nodes that look like a kubelet's, renew their Leases, run
the pods bound to them (Running, an IP from the node's podCIDR, containers ready), finish
their deletions, end annotated run-to-completion pods, and pick their pods up again
after a restart without rewriting them. Pods are bound through the binding subresource
with a schedulerName no scheduler serves, so these tests do not depend on the scheduler.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time

from tests.integration import hollow_fixtures
from tests.integration.conftest import RunningServer, wait_for
from tests.integration.hollow_fixtures import NO_SCHEDULER, HollowProcess, bind, start_hollow
from tuik8s.nodes.hollow import HollowCluster, HollowConfig, client_for

hollow = hollow_fixtures.hollow  # the fixture: three Ready hollow nodes


def make_pod(server: RunningServer, name: str, *, restart: str = "Always", annotations: dict | None = None,
             containers: tuple[str, ...] = ("web",), init: bool = False) -> None:
    spec: dict = {
        "schedulerName": NO_SCHEDULER,
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 30,
        "containers": [{"name": c, "image": "nginx:1.27"} for c in containers],
    }
    if init:
        spec["initContainers"] = [{"name": "setup", "image": "busybox"}]
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}}, "spec": spec}
    server.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=True)


def pod_json(server: RunningServer, name: str) -> dict:
    return server.kubectl_json("get", "pod", name)


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in obj["status"].get("conditions") or []}


def test_nodes_register_ready_with_capacity_like_a_kubelet(server: RunningServer, hollow: HollowProcess):
    out = server.kubectl("get", "nodes", check=True).stdout
    for name in hollow.names:
        line = next(row for row in out.splitlines() if row.startswith(name + " "))
        assert " Ready " in line and "v1.32.0-tuik8s" in line
    nodes = {n["metadata"]["name"]: n for n in server.kubectl_json("get", "nodes")["items"]}
    cidrs = set()
    for name in hollow.names:
        node = nodes[name]
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name and labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] == "amd64"
        status = node["status"]
        for key in ("capacity", "allocatable"):
            assert status[key]["cpu"] == "4" and status[key]["memory"] == "16Gi" and status[key]["pods"] == "110"
        assert {a["type"] for a in status["addresses"]} == {"InternalIP", "Hostname"}
        assert status["nodeInfo"]["kubeletVersion"] == "v1.32.0-tuik8s"
        assert [c["type"] for c in status["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        assert conditions(node)["Ready"]["reason"] == "KubeletReady"
        cidrs.add(node["spec"]["podCIDR"])
    assert len(cidrs) == 3  # one /24 each


def test_leases_are_held_and_renewed(server: RunningServer, hollow: HollowProcess):
    out = server.kubectl("get", "lease", "-n", "kube-node-lease", check=True).stdout
    for name in hollow.names:
        assert any(line.split()[:2] == [name, name] for line in out.splitlines())

    def renew_time() -> str:
        return server.kubectl_json("get", "lease", "-n", "kube-node-lease", "hollow-0")["spec"]["renewTime"]

    first = renew_time()
    lease = server.kubectl_json("get", "lease", "-n", "kube-node-lease", "hollow-0")
    assert lease["spec"]["leaseDurationSeconds"] == 20
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    wait_for(lambda: renew_time() != first, timeout=10, interval=0.5)


def test_a_bound_pod_runs_with_an_ip_from_its_nodes_cidr(server: RunningServer, hollow: HollowProcess):
    make_pod(server, "web", containers=("web", "sidecar"), init=True)
    assert pod_json(server, "web")["status"]["phase"] == "Pending"
    bind(server, "default", "web", "hollow-1")

    def running() -> dict | None:
        p = pod_json(server, "web")
        return p if p["status"].get("phase") == "Running" and conditions(p)["Ready"]["status"] == "True" else None

    pod = wait_for(running, timeout=10)
    node = server.kubectl_json("get", "node", "hollow-1")
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert pod["status"]["hostIP"] == next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert all(conditions(pod)[t]["status"] == "True" for t in ("Initialized", "ContainersReady", "PodScheduled"))
    assert [c["name"] for c in pod["status"]["containerStatuses"]] == ["web", "sidecar"]
    for cs in pod["status"]["containerStatuses"]:
        assert cs["ready"] and cs["started"] and "running" in cs["state"]
        assert cs["image"] == "docker.io/library/nginx:1.27"
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    wide = server.kubectl("get", "pod", "web", "-o", "wide", check=True).stdout
    assert "2/2" in wide and "Running" in wide and pod["status"]["podIP"] in wide and "hollow-1" in wide
    described = server.kubectl("describe", "pod", "web", check=True).stdout
    assert "Started container web" in described


def test_deleting_a_pod_finishes_on_its_node(server: RunningServer, hollow: HollowProcess):
    # kubectl waits until the pod is gone: the kubelet stopped it and deleted it for good
    result = server.kubectl("delete", "pod", "web", "--timeout=15s", check=True)
    assert 'pod "web" deleted' in result.stdout
    assert server.kubectl("get", "pod", "web").returncode != 0
    events = server.kubectl("get", "events", "--field-selector", "involvedObject.name=web", check=True).stdout
    assert "Stopping container web" in events


def test_annotated_pods_run_to_completion(server: RunningServer, hollow: HollowProcess):
    make_pod(server, "ok", restart="Never", annotations={"tuik8s.io/hollow-exit-code": "0", "tuik8s.io/hollow-run-seconds": "1"})
    make_pod(server, "bad", restart="Never", annotations={"tuik8s.io/hollow-exit-code": "3", "tuik8s.io/hollow-run-seconds": "0.5"})
    bind(server, "default", "ok", "hollow-0")
    bind(server, "default", "bad", "hollow-2")
    wait_for(lambda: pod_json(server, "ok")["status"].get("phase") == "Succeeded", timeout=10)
    wait_for(lambda: pod_json(server, "bad")["status"].get("phase") == "Failed", timeout=10)
    bad = pod_json(server, "bad")
    terminated = bad["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert conditions(bad)["Ready"]["reason"] == "PodFailed"
    listing = server.kubectl("get", "pods", "ok", "bad", check=True).stdout
    assert "Completed" in listing and "Error" in listing
    server.kubectl("delete", "pod", "ok", "bad", "--timeout=15s", check=True)


def test_a_restarted_hollow_process_adopts_its_pods_without_rewriting_them(server: RunningServer):
    proc = start_hollow(server, 1, "again-")
    try:
        make_pod(server, "steady")
        bind(server, "default", "steady", "again-0")
        wait_for(lambda: pod_json(server, "steady")["status"].get("phase") == "Running", timeout=10)
        before = pod_json(server, "steady")
        assert proc.stop() == 0
        assert server.kubectl("get", "node", "again-0").returncode == 0  # the Node stays
        proc = start_hollow(server, 1, "again-")
        # the new process syncs the pod right after registering; give it a moment to
        # (not) write: a sleep, since what is asserted is that nothing happens
        time.sleep(1.0)
        after = pod_json(server, "steady")
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        # and it owns the pod: it finishes its deletion
        server.kubectl("delete", "pod", "steady", "--timeout=15s", check=True)
        events = server.kubectl("get", "events", "--field-selector", "involvedObject.name=steady", check=True).stdout
        assert events.count("Started container web") == 1
    finally:
        proc.stop()
    server.kubectl("delete", "node", "again-0", check=True)


def test_delete_on_exit_removes_the_nodes(server: RunningServer):
    proc = start_hollow(server, 2, "brief-", "--delete-on-exit")
    assert proc.stop() == 0
    out = server.kubectl("get", "nodes", check=True).stdout
    assert "brief-0" not in out and "brief-1" not in out
    leases = server.kubectl("get", "lease", "-n", "kube-node-lease", check=True).stdout
    assert "brief-0" not in leases



async def eventually(check, within: float = 10.0):
    """wait_for for coroutines: await `check()` until it is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (result := await check()):
        assert loop.time() < deadline, f"timed out after {within}s waiting for {check}"
        await asyncio.sleep(0.1)
    return result


async def test_the_library_stops_and_starts_single_nodes(server: RunningServer):
    config = HollowConfig(nodes=2, name_prefix="lib-", lease_duration=4, start_delay=0.05)
    client = client_for(str(server.kubeconfig), None, config)
    cluster = HollowCluster(client, config)
    await cluster.start()
    try:
        async def renew_time(name: str) -> str:
            return (await client.get("leases", name, "kube-node-lease"))["spec"]["renewTime"]

        await cluster.stop_node("lib-1")
        frozen = await renew_time("lib-1")
        make_pod(server, "waits")
        bind(server, "default", "waits", "lib-1")
        # lib-0 renews every second; two renewals later lib-1 has renewed none
        seen = [await renew_time("lib-0")]

        async def lib0_renewed_twice() -> bool:
            now = await renew_time("lib-0")
            if now != seen[-1]:
                seen.append(now)
            return len(seen) >= 3

        await eventually(lib0_renewed_twice)
        assert await renew_time("lib-1") == frozen
        assert pod_json(server, "waits")["status"]["phase"] == "Pending"  # nor runs its pods

        await cluster.start_node("lib-1")

        async def lib1_renewed() -> bool:
            return await renew_time("lib-1") != frozen

        async def waits_runs() -> bool:
            return pod_json(server, "waits")["status"].get("phase") == "Running"

        await eventually(lib1_renewed)
        await eventually(waits_runs)
    finally:
        await cluster.stop(delete_nodes=True)
        await client.close()
    server.kubectl("delete", "pod", "waits", "--force", "--grace-period=0", check=True)
