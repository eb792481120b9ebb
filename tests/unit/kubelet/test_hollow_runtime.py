"""The hollow kubelet's runtime: container timelines, pod IPs, request pacing (tuik8s.nodes.hollow)."""

from __future__ import annotations

import asyncio

import pytest

from tuik8s.client.transport import RawResponse
from tuik8s.kubelet.status import build_pod_status
from tuik8s.nodes.hollow import (
    EXIT_CODE_ANNOTATION,
    RUN_SECONDS_ANNOTATION,
    PodIPAM,
    Sandbox,
    ThrottledTransport,
    hollow_runtime_status,
    pod_finished,
)

START = 1_700_000_000.0


def pod(restart="Always", exit_code=None, run=None, inits=()):
    annotations = {}
    if exit_code is not None:
        annotations[EXIT_CODE_ANNOTATION] = str(exit_code)
    if run is not None:
        annotations[RUN_SECONDS_ANNOTATION] = str(run)
    spec = {"restartPolicy": restart, "containers": [{"name": "main", "image": "busybox"}]}
    if inits:
        spec["initContainers"] = [{"name": n, "image": "busybox"} for n in inits]
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": annotations}, "spec": spec,
            "status": {"phase": "Pending"}}


def sandbox(delay=0.0):
    return Sandbox("u1", "10.244.0.2", START, START + delay)


def phase(p, sb, at, terminal=False):
    runtime, _ = hollow_runtime_status(p, sb, at)
    return build_pod_status(p, runtime, host_ips=["10.200.0.1"], pod_is_terminal=terminal)["phase"]


def test_nothing_runs_before_the_start_delay_then_everything_is_ready():
    p, sb = pod(), sandbox(delay=0.4)
    runtime, wake = hollow_runtime_status(p, sb, START + 0.1)
    assert not runtime.containers and not runtime.sandbox_ready and wake == START + 0.4
    runtime, wake = hollow_runtime_status(p, sb, START + 0.5)
    assert runtime.pod_ips == ("10.244.0.2",) and runtime.sandbox_ready
    main = runtime.containers["main"]
    assert main.state == "running" and main.ready and main.container_id.startswith("hollow://")
    assert wake is None  # restartPolicy Always: runs until deleted


def test_init_containers_complete_at_once():
    runtime, _ = hollow_runtime_status(pod(inits=("setup",)), sandbox(), START + 1)
    setup = runtime.init_containers["setup"]
    assert setup.state == "terminated" and setup.termination is not None and setup.termination.exit_code == 0


def test_the_exit_annotation_is_ignored_for_restart_policy_always():
    p = pod(restart="Always", exit_code=1, run=1)
    assert phase(p, sandbox(), START + 100) == "Running"


@pytest.mark.parametrize(("code", "expected"), [(0, "Succeeded"), (3, "Failed")])
def test_never_pods_end_with_the_annotated_exit_code(code, expected):
    p, sb = pod(restart="Never", exit_code=code, run=2), sandbox()
    runtime, wake = hollow_runtime_status(p, sb, START + 1)
    assert runtime.containers["main"].state == "running" and wake == START + 2
    assert phase(p, sb, START + 1) == "Running"
    runtime, wake = hollow_runtime_status(p, sb, START + 2.5)
    term = runtime.containers["main"].termination
    assert term is not None and term.exit_code == code and wake is None
    assert pod_finished(p, runtime)
    assert phase(p, sb, START + 2.5) == expected


def test_the_run_time_defaults_to_one_second():
    p = pod(restart="Never", exit_code=0)
    _, wake = hollow_runtime_status(p, sandbox(), START + 0.5)
    assert wake == START + 1


def test_on_failure_restarts_a_failing_container_with_crash_loop_back_off():
    p, sb = pod(restart="OnFailure", exit_code=1, run=1), sandbox()
    runtime, wake = hollow_runtime_status(p, sb, START + 2)  # exited at +1, backs off 10 s
    main = runtime.containers["main"]
    assert main.state == "waiting" and main.reason == "CrashLoopBackOff" and wake == START + 11
    assert main.message == "back-off 10s restarting failed container=main pod=p_ns(u1)"
    assert main.last_termination is not None and main.last_termination.exit_code == 1
    assert phase(p, sb, START + 2) == "Running"
    runtime, wake = hollow_runtime_status(p, sb, START + 11.5)  # second attempt
    main = runtime.containers["main"]
    assert main.state == "running" and main.restart_count == 1 and wake == START + 12
    runtime, wake = hollow_runtime_status(p, sb, START + 13)  # second back-off: 20 s
    assert runtime.containers["main"].restart_count == 1 and wake == START + 32


def test_a_deleted_pod_stops_its_containers():
    sb = sandbox()
    sb.killed_at = START + 5
    runtime, wake = hollow_runtime_status(pod(), sb, START + 5)
    term = runtime.containers["main"].termination
    assert term is not None and term.exit_code == 0 and not runtime.sandbox_ready and wake is None
    assert phase(pod(), sb, START + 5, terminal=True) == "Succeeded"
    # a run-to-completion container stopped early ends in SIGTERM's code
    runtime, _ = hollow_runtime_status(pod(restart="Never", exit_code=0, run=60), sb, START + 5)
    assert runtime.containers["main"].termination.exit_code == 143


def test_the_ipam_hands_out_each_address_once_round_robin():
    ipam = PodIPAM("10.244.3.0/24")
    first = ipam.allocate()
    assert first == "10.244.3.2"  # .0 network, .1 the bridge
    assert ipam.allocate() == "10.244.3.3"
    ipam.release(first)
    assert ipam.allocate() == "10.244.3.4"  # not reused at once
    assert ipam.reserve("10.244.3.200") and not ipam.reserve("10.9.9.9")
    got = {ipam.allocate() for _ in range(251)}  # 253 usable, 3 taken: the last finds none
    assert None in got and "10.244.3.255" not in got and "10.244.3.200" not in got
    assert len(ipam.used) == 253


class SlowTransport:
    """Answers each request after the test lets it go, recording the order of arrival."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = asyncio.Event()

    async def request(self, method, path, *, query=None, headers=None, body=None):
        self.order.append(path)
        await self.gate.wait()
        return RawResponse(200, "application/json", b"{}")

    def stream(self, method, path, *, query=None, headers=None):
        raise NotImplementedError

    async def close(self):
        return None


async def test_heartbeats_overtake_waiting_pod_writes():
    inner = SlowTransport()
    t = ThrottledTransport(inner, max_in_flight=1)
    first = asyncio.create_task(t.request("PUT", "/api/v1/namespaces/a/pods/p0/status"))
    await asyncio.sleep(0)
    pods = [asyncio.create_task(t.request("PUT", f"/api/v1/namespaces/a/pods/p{i}/status")) for i in range(1, 4)]
    await asyncio.sleep(0)
    lease = asyncio.create_task(t.request("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"))
    await asyncio.sleep(0)
    assert inner.order == ["/api/v1/namespaces/a/pods/p0/status"]
    inner.gate.set()
    await asyncio.gather(first, lease, *pods)
    assert inner.order[1] == "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
    assert len(inner.order) == 5


async def test_a_cancelled_waiter_does_not_leak_its_slot():
    inner = SlowTransport()
    t = ThrottledTransport(inner, max_in_flight=1)
    first = asyncio.create_task(t.request("GET", "/api/v1/pods"))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(t.request("GET", "/api/v1/nodes"))
    await asyncio.sleep(0)
    waiter.cancel()
    inner.gate.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(t.request("GET", "/api/v1/services"), 1)
    assert t._in_flight == 0
