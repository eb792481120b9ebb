"""Pod requests, NodeInfo sums, and the FailedScheduling message in upstream's words."""

from __future__ import annotations

import pytest

from tests.unit.scheduler.helpers import info, node, node_info, pod
from tuik8s.scheduler.framework import (
    Code,
    Diagnosis,
    FitError,
    Status,
    default_normalize_score,
    fit_error_message,
    pod_requests,
    truncate_message,
    unresolvable,
    unschedulable,
)

MI = 1024 * 1024


def container(name: str, cpu: str | None = None, memory: str | None = None, **extra) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "image": "x", "resources": {"requests": requests}, **extra}


def test_requests_sum_containers():
    p = pod(cpu="250m", memory="64Mi")
    p["spec"]["containers"].append(container("b", "250m", "64Mi"))
    assert pod_requests(p) == {"cpu": 500, "memory": 128 * MI}


def test_init_container_larger_than_the_containers_wins():
    p = pod(cpu="100m", memory="64Mi", init=[container("init", "2", "32Mi")])
    assert pod_requests(p) == {"cpu": 2000, "memory": 64 * MI}


def test_sidecars_add_to_the_containers_and_to_later_init_containers():
    init = [
        container("sidecar", "100m", "10Mi", restartPolicy="Always"),
        container("migrate", "1", "10Mi"),
    ]
    p = pod(cpu="200m", memory="10Mi", init=init)
    # containers + sidecar = 300m; migrate runs beside the sidecar = 1100m
    assert pod_requests(p)["cpu"] == 1100
    assert pod_requests(p)["memory"] == 20 * MI


def test_overhead_and_non_missing_requests():
    p = pod(cpu="100m")
    p["spec"]["overhead"] = {"cpu": "50m", "memory": "10Mi"}
    assert pod_requests(p) == {"cpu": 150, "memory": 10 * MI}
    assert pod_requests(pod(), non_missing=True) == {"cpu": 100, "memory": 200 * MI}
    assert pod_requests(pod(cpu="1"), non_missing=True) == {"cpu": 1000, "memory": 200 * MI}


def test_node_info_sums_are_incremental():
    ni = node_info(node("a"))
    a, b = info(pod("a", cpu="1", memory="1Gi", owner="rs")), info(pod("b", cpu="500m", owner="rs"))
    ni.add_pod(a)
    ni.add_pod(b)
    assert (ni.requested_cpu, ni.requested_memory, len(ni.pods)) == (1500, 1024 * MI, 2)
    assert (ni.free_cpu, ni.free_memory, ni.free_pods) == (2500, 15 * 1024 * MI, 108)
    assert ni.nz_memory == 1024 * MI + 200 * MI
    assert ni.owner_counts == {"uid-rs": 2}
    ni.add_pod(a)  # the same pod again replaces itself
    assert ni.requested_cpu == 1500
    ni.remove_pod(a.uid)
    assert (ni.requested_cpu, ni.requested_memory, ni.owner_counts) == (500, 0, {"uid-rs": 1})
    ni.remove_pod(b.uid)
    assert (ni.requested_cpu, ni.nz_cpu, ni.nz_memory, ni.owner_counts) == (0, 0, 0, {})
    assert (ni.free_cpu, ni.free_memory, ni.free_pods) == (4000, 16 * 1024 * MI, 110)
    ni.add_pod(a)
    ni.set_node(node("a", cpu="8"))  # a new allocatable keeps what is requested
    assert (ni.free_cpu, ni.requested_cpu) == (7000, 1000)


def test_node_info_reads_allocatable_and_taints_once():
    n = node("a", cpu="3500m", memory="2Gi", pods="20", taints=[
        {"key": "x", "effect": "NoSchedule"}, {"key": "y", "effect": "PreferNoSchedule"}])
    ni = node_info(n)
    assert (ni.alloc_cpu, ni.alloc_memory, ni.alloc_pods) == (3500, 2048 * MI, 20)
    assert [t["key"] for t in ni.filter_taints] == ["x"]
    assert [t["key"] for t in ni.prefer_taints] == ["y"]


def diagnosis(**statuses: Status) -> Diagnosis:
    return Diagnosis(node_to_status=dict(statuses))


def test_fit_error_message_counts_and_sorts_reasons():
    d = diagnosis(a=unschedulable("Insufficient memory"), b=unschedulable("Insufficient memory"),
                  c=unresolvable("node(s) were unschedulable"))
    assert fit_error_message(3, d) == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory."


def test_fit_error_message_counts_every_reason_of_a_node():
    d = diagnosis(a=unschedulable("Insufficient cpu", "Insufficient memory"), b=unschedulable("Insufficient cpu"))
    assert fit_error_message(2, d) == "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."


def test_fit_error_message_sorts_as_go_strings_do():
    # "10 ..." sorts before "9 ..." bytewise, as upstream's sort.Strings does
    d = Diagnosis(node_to_status={f"n{i}": unresolvable("node(s) had untolerated taint {a: }") for i in range(10)})
    for i in range(9):
        d.node_to_status[f"m{i}"] = unschedulable("Too many pods")
    assert fit_error_message(19, d) == (
        "0/19 nodes are available: 10 node(s) had untolerated taint {a: }, 9 Too many pods."
    )


def test_fit_error_message_from_a_prefilter_rejection():
    st = unresolvable("node(s) didn't satisfy something")
    d = Diagnosis(pre_filter_msg=st.message, absent_status=st)
    assert fit_error_message(5, d) == "0/5 nodes are available: node(s) didn't satisfy something."


def test_fit_error_is_its_message():
    d = diagnosis(a=unschedulable("Too many pods"))
    e = FitError(info(pod()), 1, d)
    assert str(e) == "0/1 nodes are available: 1 Too many pods."


def test_truncate_message():
    assert truncate_message("x" * 1024) == "x" * 1024
    long = truncate_message("y" * 2000)
    assert len(long) == 1024 and long.endswith(" ...")


@pytest.mark.parametrize(
    ("scores", "reverse", "want"),
    [
        ([0, 5, 10], False, [0, 50, 100]),
        ([0, 5, 10], True, [100, 50, 0]),
        ([0, 0], True, [100, 100]),
        ([0, 0], False, [0, 0]),
        ([1, 3], False, [33, 100]),
    ],
)
def test_default_normalize_score(scores, reverse, want):
    default_normalize_score(scores, reverse)
    assert scores == want


def test_status():
    st = Status(Code.Unschedulable, "a", "b", plugin="P")
    assert st.message == "a, b" and st.is_rejected() and not st.is_success()
    assert "P" in repr(st)
