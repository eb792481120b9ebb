"""One decision: how many nodes are examined, where the search starts, what wins, what fails."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.unit.scheduler.helpers import info, node, node_info, pod, snapshot
from tuik8s.scheduler.algorithm import Algorithm, NoNodesAvailable, num_feasible_nodes_to_find
from tuik8s.scheduler.framework import FitError
from tuik8s.scheduler.runtime import Framework, Profile


def algorithm(seed: int = 1, **profile) -> Algorithm:
    return Algorithm(Framework(Profile(**profile)), random.Random(seed))


@pytest.mark.parametrize(
    ("nodes", "want"),
    [(1, 1), (99, 99), (100, 100), (200, 100), (250, 120), (1000, 420), (5000, 500), (6000, 300), (20000, 1000)],
)
def test_num_feasible_nodes_to_find_is_upstreams_adaptive_share(nodes, want):
    assert num_feasible_nodes_to_find(nodes) == want


def test_num_feasible_nodes_to_find_with_a_set_percentage():
    assert num_feasible_nodes_to_find(1000, 100) == 1000
    assert num_feasible_nodes_to_find(1000, 20) == 200
    assert num_feasible_nodes_to_find(1000, 1) == 100  # never fewer than 100


def test_no_nodes():
    with pytest.raises(NoNodesAvailable, match="no nodes available to schedule pods"):
        algorithm().schedule(info(pod()), snapshot())


def test_the_message_names_every_node():
    nodes = snapshot(
        node_info(node("a", memory="1Gi")),
        node_info(node("b", memory="1Gi")),
        node_info(node("c", unschedulable=True)),
    )
    with pytest.raises(FitError) as e:
        algorithm().schedule(info(pod(memory="2Gi")), nodes)
    assert str(e.value) == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory."
    assert e.value.diagnosis.unschedulable_plugins == {"NodeUnschedulable", "NodeResourcesFit"}


def test_the_first_failing_filter_gives_the_nodes_reason():
    tainted_and_full = node_info(node("a", memory="1Gi", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    with pytest.raises(FitError) as e:
        algorithm().schedule(info(pod(memory="2Gi")), snapshot(tainted_and_full))
    assert str(e.value) == "0/1 nodes are available: 1 node(s) had untolerated taint {k: v}."


def test_only_the_node_that_fits():
    nodes = snapshot(node_info(node("a", cpu="1")), node_info(node("b", cpu="8")), node_info(node("c", cpu="1")))
    assert algorithm().schedule(info(pod(cpu="4")), nodes).node == "b"


def test_least_allocated_wins():
    nodes = snapshot(node_info(node("a"), pod("x", cpu="3")), node_info(node("b")), node_info(node("c"), pod("y", cpu="1")))
    assert algorithm().schedule(info(pod(cpu="500m")), nodes).node == "b"


def test_replicas_of_one_owner_spread_over_equal_nodes():
    names = [f"n{i}" for i in range(3)]
    nis = [node_info(node(n)) for n in names]
    algo = algorithm()
    for i in range(6):
        p = info(pod(f"web-{i}", owner="web"))
        where = algo.schedule(p, snapshot(*nis)).node
        next(ni for ni in nis if ni.name == where).add_pod(p)
    assert [len(ni.pods) for ni in nis] == [2, 2, 2]


def test_ties_are_broken_at_random():
    nodes = snapshot(*(node_info(node(f"n{i}")) for i in range(4)))
    algo = algorithm(seed=7)
    picks = Counter(algo.schedule(info(pod()), nodes).node for _ in range(400))
    assert set(picks) == {"n0", "n1", "n2", "n3"}
    assert min(picks.values()) > 50


def test_search_stops_after_enough_feasible_nodes_and_rotates():
    nodes = snapshot(*(node_info(node(f"n{i:04d}")) for i in range(1000)))
    algo = algorithm()
    result = algo.schedule(info(pod()), nodes)
    assert result.feasible_nodes == 420 and result.evaluated_nodes == 420
    assert algo.next_start_node_index == 420
    algo.schedule(info(pod()), nodes)
    algo.schedule(info(pod()), nodes)
    assert algo.next_start_node_index == (3 * 420) % 1000


def test_rejected_nodes_count_as_examined():
    nodes = snapshot(*(node_info(node(f"n{i:04d}", cpu="1" if i % 2 else "8")) for i in range(400)))
    algo = algorithm()
    result = algo.schedule(info(pod(cpu="2")), nodes)
    assert result.feasible_nodes == 188  # 400 nodes: 47% is enough
    assert result.evaluated_nodes == 375  # 188 fitting, 187 too small in between
    assert algo.next_start_node_index == 375


def test_a_set_percentage_of_nodes_to_score():
    nodes = snapshot(*(node_info(node(f"n{i:04d}")) for i in range(1000)))
    result = algorithm(percentage_of_nodes_to_score=100).schedule(info(pod()), nodes)
    assert result.feasible_nodes == 1000


def test_a_single_feasible_node_is_not_scored():
    nodes = snapshot(node_info(node("a")), node_info(node("b", unschedulable=True)))
    result = algorithm().schedule(info(pod()), nodes)
    assert (result.node, result.feasible_nodes, result.evaluated_nodes) == ("a", 1, 2)


def daemon_pod(node_name: str, **kw):
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    return pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}, **kw)


def test_a_pod_pinned_by_node_name_affinity_looks_at_its_node_only():
    nodes = snapshot(*(node_info(node(f"n{i}")) for i in range(5)))
    algo = algorithm()
    result = algo.schedule(info(daemon_pod("n3")), nodes)
    assert (result.node, result.evaluated_nodes) == ("n3", 1)


def test_the_other_nodes_count_as_rejected_by_the_prefilter():
    nodes = snapshot(*(node_info(node(f"n{i}", pods="1"), pod(f"x{i}")) for i in range(5)))
    with pytest.raises(FitError) as e:
        algorithm().schedule(info(daemon_pod("n3")), nodes)
    assert str(e.value) == "0/5 nodes are available: 1 Too many pods, 4 node(s) didn't satisfy plugin(s) [NodeAffinity]."
    assert e.value.diagnosis.unschedulable_plugins == {"NodeAffinity", "NodeResourcesFit"}


def test_node_name_affinity_to_a_node_that_does_not_exist():
    nodes = snapshot(node_info(node("a")), node_info(node("b")))
    with pytest.raises(FitError) as e:
        algorithm().schedule(info(daemon_pod("gone")), nodes)
    assert str(e.value) == "0/2 nodes are available: 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."


def test_conflicting_node_name_terms():
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]},
                            {"key": "metadata.name", "operator": "In", "values": ["b"]}]}
    p = pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}})
    with pytest.raises(FitError) as e:
        algorithm().schedule(info(p), snapshot(node_info(node("a")), node_info(node("b"))))
    assert str(e.value) == "0/2 nodes are available: pod affinity terms conflict."
