"""Every filter plugin, on a pod that fits and one that does not, with upstream's reason."""

from __future__ import annotations

import pytest

from tests.unit.scheduler.helpers import info, node, node_info, pod, snapshot
from tuik8s.scheduler.framework import Code, CycleState, Status
from tuik8s.scheduler.plugins import (
    DEFAULT_FILTERS,
    DEFAULT_SCORES,
    REGISTRY,
    balancedallocation,
    nodeaffinity,
    nodename,
    nodeports,
    noderesources,
    nodeunschedulable,
    selectorspread,
    tainttoleration,
)


def run_filter(plugin, p, ni) -> Status | None:
    state = CycleState(snapshot(ni))
    pre = getattr(plugin, "pre_filter", None)
    if pre is not None:
        st = pre(state, info(p), state.snapshot)
        if st is not None and st.code == Code.Skip:
            return None
        assert st is None
    return plugin.filter(state, info(p), ni)


def reasons(st: Status | None) -> tuple[str, ...] | None:
    return None if st is None else st.reasons


def test_registry_has_every_default_plugin_and_each_module_names_itself():
    for name in (*DEFAULT_FILTERS, *(n for n, _ in DEFAULT_SCORES)):
        assert REGISTRY[name](None).name == name
    assert DEFAULT_FILTERS[-1] == noderesources.NAME  # cheap checks first, as upstream


# ---- NodeName --------------------------------------------------------------------------


def test_node_name():
    plugin = nodename.new()
    assert run_filter(plugin, pod(node_name="a"), node_info(node("a"))) is None
    assert run_filter(plugin, pod(), node_info(node("a"))) is None
    st = run_filter(plugin, pod(node_name="b"), node_info(node("a")))
    assert st.code == Code.UnschedulableAndUnresolvable
    assert st.reasons == ("node(s) didn't match the requested node name",)


# ---- NodeUnschedulable -----------------------------------------------------------------


def test_cordoned_node_rejects_unless_tolerated():
    plugin = nodeunschedulable.new()
    cordoned = node_info(node("a", unschedulable=True))
    st = run_filter(plugin, pod(), cordoned)
    assert st.code == Code.UnschedulableAndUnresolvable
    assert st.reasons == ("node(s) were unschedulable",)
    assert run_filter(plugin, pod(), node_info(node("b"))) is None
    tolerant = pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}])
    assert run_filter(plugin, tolerant, cordoned) is None


def test_node_unschedulable_skips_itself_when_no_node_is_cordoned():
    plugin = nodeunschedulable.new()
    state = CycleState(snapshot(node_info(node("a")), node_info(node("b"))))
    assert plugin.pre_filter(state, info(pod()), state.snapshot).code == Code.Skip


# ---- TaintToleration -------------------------------------------------------------------

NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
GPU = {"key": "gpu", "value": "true", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("taint", "reason"),
    [
        (NOT_READY, "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
        (UNREACHABLE, "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
        (GPU, "node(s) had untolerated taint {gpu: true}"),
    ],
    ids=["not-ready", "unreachable", "gpu"],
)
def test_untolerated_taint(taint, reason):
    st = run_filter(tainttoleration.new(), pod(), node_info(node("a", taints=[taint])))
    assert st.code == Code.UnschedulableAndUnresolvable
    assert st.reasons == (reason,)


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "gpu", "value": "true"},  # operator Equal by default, any effect
        {"key": "gpu", "operator": "Exists"},
        {"operator": "Exists"},  # tolerates everything
    ],
    ids=["equal", "default-operator", "exists", "everything"],
)
def test_tolerated_taint(toleration):
    assert run_filter(tainttoleration.new(), pod(tolerations=[toleration]), node_info(node("a", taints=[GPU]))) is None


@pytest.mark.parametrize(
    "toleration",
    [
        {"key": "gpu", "value": "false"},
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
        {"key": "other", "operator": "Exists"},
    ],
    ids=["other-value", "other-effect", "other-key"],
)
def test_toleration_that_does_not_match(toleration):
    st = run_filter(tainttoleration.new(), pod(tolerations=[toleration]), node_info(node("a", taints=[GPU])))
    assert reasons(st) == ("node(s) had untolerated taint {gpu: true}",)


def test_prefer_no_schedule_only_scores():
    plugin = tainttoleration.new()
    prefer = {"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}
    a, b = node_info(node("a", taints=[prefer])), node_info(node("b"))
    assert run_filter(plugin, pod(), a) is None
    state = CycleState(snapshot(a, b))
    p = info(pod())
    assert plugin.pre_score(state, p, [a, b]) is None
    scores = [plugin.score(state, p, a), plugin.score(state, p, b)]
    assert scores == [1, 0]
    plugin.normalize_scores(state, p, [a, b], scores)
    assert scores == [0, 100]
    # tolerated: both score the same
    tolerant = info(pod(tolerations=[{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}]))
    plugin.pre_score(state, tolerant, [a, b])
    assert [plugin.score(state, tolerant, a), plugin.score(state, tolerant, b)] == [0, 0]


# ---- NodeResourcesFit ------------------------------------------------------------------


def test_fits_counting_the_pods_already_there():
    plugin = noderesources.new()
    n = node("a", cpu="1", memory="1Gi", pods="3")
    assert run_filter(plugin, pod(cpu="500m", memory="512Mi"), node_info(n)) is None
    full = node_info(n, pod("x", cpu="600m"), pod("y", memory="768Mi"))
    assert reasons(run_filter(plugin, pod(cpu="500m"), full)) == ("Insufficient cpu",)
    assert reasons(run_filter(plugin, pod(memory="512Mi"), full)) == ("Insufficient memory",)
    assert reasons(run_filter(plugin, pod(cpu="500m", memory="512Mi"), full)) == ("Insufficient cpu", "Insufficient memory")
    assert run_filter(plugin, pod(cpu="400m", memory="256Mi"), full) is None
    st = run_filter(plugin, pod(cpu="2"), node_info(n))
    assert st.code == Code.Unschedulable


def test_too_many_pods_even_without_requests():
    plugin = noderesources.new()
    n = node("a", pods="2")
    assert run_filter(plugin, pod(), node_info(n, pod("x"))) is None
    assert reasons(run_filter(plugin, pod(), node_info(n, pod("x"), pod("y")))) == ("Too many pods",)
    both = run_filter(plugin, pod(cpu="5"), node_info(n, pod("x"), pod("y")))
    assert reasons(both) == ("Too many pods", "Insufficient cpu")


def test_extended_resources_and_ephemeral_storage():
    plugin = noderesources.new()
    n = node("a")
    n["status"]["allocatable"].update({"nvidia.com/gpu": "1", "ephemeral-storage": "10Gi"})
    assert run_filter(plugin, pod(extra_requests={"nvidia.com/gpu": "1"}), node_info(n)) is None
    assert reasons(run_filter(plugin, pod(extra_requests={"nvidia.com/gpu": "2"}), node_info(n))) == ("Insufficient nvidia.com/gpu",)
    assert reasons(run_filter(plugin, pod(extra_requests={"ephemeral-storage": "20Gi"}), node_info(n))) == ("Insufficient ephemeral-storage",)


def test_least_allocated_prefers_the_emptier_node():
    plugin = noderesources.new()
    empty, busy = node_info(node("a")), node_info(node("b"), pod("x", cpu="2", memory="8Gi"))
    p = info(pod(cpu="1", memory="4Gi"))
    state = CycleState()
    # empty: cpu (4-1)/4 -> 75, memory (16-4)/16 -> 75; busy: (4-3)/4 -> 25, (16-12)/16 -> 25
    assert plugin.score(state, p, empty) == 75
    assert plugin.score(state, p, busy) == 25
    assert plugin.score_many(state, p, [empty, busy]) == [75, 25]


def test_least_allocated_counts_request_less_containers_as_100m_200mi():
    plugin = noderesources.new()
    ni = node_info(node("a", cpu="1", memory="1000Mi"))
    # cpu (1000-100)/1000 -> 90; memory (1000-200)/1000 -> 80; average 85
    assert plugin.score(CycleState(), info(pod()), ni) == 85


def test_most_allocated_strategy():
    plugin = noderesources.new({"scoringStrategy": {"type": "MostAllocated"}})
    empty, busy = node_info(node("a")), node_info(node("b"), pod("x", cpu="2", memory="8Gi"))
    p = info(pod(cpu="1", memory="4Gi"))
    assert plugin.score(CycleState(), p, busy) > plugin.score(CycleState(), p, empty)
    with pytest.raises(ValueError, match="not supported"):
        noderesources.new({"scoringStrategy": {"type": "RequestedToCapacityRatio"}})


# ---- BalancedAllocation ----------------------------------------------------------------


def test_balanced_allocation():
    plugin = balancedallocation.new()
    state = CycleState()
    p = info(pod(cpu="1", memory="4Gi"))
    even = node_info(node("a"))  # 1/4 cpu, 4/16 memory: perfectly even
    skewed = node_info(node("b"), pod("x", cpu="2"))  # 3/4 cpu, 1/4 memory: std 0.25
    assert plugin.score(state, p, even) == 100
    assert plugin.score(state, p, skewed) == 75
    assert plugin.score_many(state, p, [even, skewed]) == [100, 75]
    assert plugin.pre_score(state, info(pod()), [even]).code == Code.Skip  # best-effort pod


# ---- NodeAffinity ----------------------------------------------------------------------


def test_node_selector():
    plugin = nodeaffinity.new()
    ssd = node_info(node("a", labels={"disk": "ssd"}))
    hdd = node_info(node("b", labels={"disk": "hdd"}))
    p = pod(node_selector={"disk": "ssd"})
    assert run_filter(plugin, p, ssd) is None
    st = run_filter(plugin, p, hdd)
    assert st.code == Code.UnschedulableAndUnresolvable
    assert st.reasons == ("node(s) didn't match Pod's node affinity/selector",)


def test_required_node_affinity_terms_are_ored_expressions_anded():
    plugin = nodeaffinity.new()
    terms = [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                              {"key": "arch", "operator": "NotIn", "values": ["arm64"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]},
    ]
    p = pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})
    assert run_filter(plugin, p, node_info(node("x", labels={"zone": "a", "arch": "amd64"}))) is None
    assert run_filter(plugin, p, node_info(node("special"))) is None
    assert reasons(run_filter(plugin, p, node_info(node("y", labels={"zone": "a", "arch": "arm64"})))) == (nodeaffinity.ERR_REASON_POD,)
    assert reasons(run_filter(plugin, p, node_info(node("z", labels={"zone": "c"})))) == (nodeaffinity.ERR_REASON_POD,)


def test_no_selector_no_affinity_skips_the_filter():
    plugin = nodeaffinity.new()
    state = CycleState()
    assert plugin.pre_filter(state, info(pod()), snapshot()).code == Code.Skip


def test_preferred_node_affinity_scores():
    plugin = nodeaffinity.new()
    preferred = [
        {"weight": 80, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 20, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
    ]
    p = info(pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}))
    nodes = [node_info(node("a", labels={"disk": "ssd", "zone": "z"})), node_info(node("b", labels={"disk": "ssd"})),
             node_info(node("c"))]
    state = CycleState()
    assert plugin.pre_score(state, p, nodes) is None
    scores = [plugin.score(state, p, ni) for ni in nodes]
    assert scores == [100, 80, 0]
    plugin.normalize_scores(state, p, nodes, scores)
    assert scores == [100, 80, 0]
    assert plugin.pre_score(CycleState(), info(pod()), nodes).code == Code.Skip


# ---- NodePorts -------------------------------------------------------------------------


def test_host_ports():
    plugin = nodeports.new()
    taken = node_info(node("a"), pod("x", host_port=8080))
    assert reasons(run_filter(plugin, pod(host_port=8080), taken)) == ("node(s) didn't have free ports for the requested pod ports",)
    assert run_filter(plugin, pod(host_port=9090), taken) is None
    assert run_filter(plugin, pod(), taken) is None


# ---- SelectorSpread --------------------------------------------------------------------


def test_selector_spread_prefers_nodes_with_fewer_replicas_of_the_owner():
    plugin = selectorspread.new()
    a = node_info(node("a"), pod("w1", owner="web"), pod("w2", owner="web"))
    b = node_info(node("b"), pod("w3", owner="web"), pod("o1", owner="other"))
    c = node_info(node("c"))
    p = info(pod("w4", owner="web"))
    state = CycleState()
    assert plugin.pre_score(state, p, [a, b, c]) is None
    scores = plugin.score_many(state, p, [a, b, c])
    assert scores == [2, 1, 0]
    plugin.normalize_scores(state, p, [a, b, c], scores)
    assert scores == [0, 50, 100]
    assert plugin.pre_score(state, info(pod("lonely")), [a]).code == Code.Skip


def test_selector_spread_weighs_zones():
    plugin = selectorspread.new()
    a = node_info(node("a", labels={"topology.kubernetes.io/zone": "z1"}), pod("w1", owner="web"))
    b = node_info(node("b", labels={"topology.kubernetes.io/zone": "z1"}))
    c = node_info(node("c", labels={"topology.kubernetes.io/zone": "z2"}))
    p = info(pod("w2", owner="web"))
    scores = plugin.score_many(CycleState(), p, [a, b, c])
    plugin.normalize_scores(CycleState(), p, [a, b, c], scores)
    # b is empty but in the zone that has a replica; c's zone has none
    assert scores[2] == 100 and scores[0] == 0 and 0 < scores[1] < 100


# ---- the batch forms agree with the per-node ones ----------------------------------------


def random_nodes(rng, count: int) -> list:
    out = []
    for i in range(count):
        n = node(f"n{i}", cpu=f"{rng.choice([0, 1, 2, 4, 8])}", memory=f"{rng.choice([0, 1, 3, 16])}Gi",
                 pods=str(rng.choice([1, 3, 110])))
        placed = [pod(f"x{i}-{j}", cpu=f"{rng.randint(0, 3000)}m", memory=f"{rng.randint(0, 4096)}Mi",
                      owner=rng.choice(["a", "b", None])) for j in range(rng.randint(0, 3))]
        out.append(node_info(n, *placed))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_score_many_and_filter_many_match_one_node_at_a_time(seed):
    import random

    rng = random.Random(seed)
    nodes = random_nodes(rng, 60)
    for p in (pod(cpu="500m", memory="1Gi", owner="a"), pod(owner="b"), pod(cpu="3", memory="100Mi"),
              pod(memory="20Gi")):
        pi = info(p)
        state = CycleState()
        for plugin in (noderesources.new(), balancedallocation.new(), selectorspread.new()):
            assert plugin.score_many(state, pi, nodes) == [plugin.score(state, pi, ni) for ni in nodes]
        fit = noderesources.new()
        assert fit.filter_many(state, pi, nodes) == [fit.filter(state, pi, ni) for ni in nodes]
