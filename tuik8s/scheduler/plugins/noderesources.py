"""NodeResourcesFit: the pod's requests must fit in what the node has left; score by room left.

Filter (upstream's fitsRequest): the pod count first ("Too many pods"), then, if the pod
requests anything, each resource it requests against allocatable minus what the pods
already on the node request -- bound pods and pods this scheduler assumed but has not yet
seen bound, so two quick cycles never hand out the same room twice. Every shortfall is a
reason of its own, so `kubectl describe` can say "2 Insufficient cpu, 3 Insufficient memory".

Score (the LeastAllocated strategy, upstream's default): for cpu and memory,
`(allocatable - requested) * 100 / allocatable`, averaged by weight, with requested
counting 100m / 200Mi for containers that request nothing. MostAllocated is the mirror
image, for bin packing.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuik8s.scheduler.framework import (
    MAX_NODE_SCORE,
    ClusterEvent,
    CycleState,
    NodeInfo,
    PodInfo,
    Status,
    unschedulable,
)

NAME = "NodeResourcesFit"
REASON_TOO_MANY_PODS = "Too many pods"
REASON_INSUFFICIENT = "Insufficient {}"
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[str]:
    """The reasons the pod does not fit the node's free resources, in upstream's order."""
    reasons = []
    if len(node.pods) + 1 > node.alloc_pods:
        reasons.append(REASON_TOO_MANY_PODS)
    if not pod.has_requests():
        return reasons
    if pod.cpu > 0 and pod.cpu > node.alloc_cpu - node.requested_cpu:
        reasons.append(REASON_INSUFFICIENT.format("cpu"))
    if pod.memory > 0 and pod.memory > node.alloc_memory - node.requested_memory:
        reasons.append(REASON_INSUFFICIENT.format("memory"))
    if pod.ephemeral > 0 and pod.ephemeral > node.alloc_ephemeral - node.requested_ephemeral:
        reasons.append(REASON_INSUFFICIENT.format("ephemeral-storage"))
    for name, amount in pod.scalars.items():
        free = node.alloc_scalars.get(name, 0) - node.requested_scalars.get(name, 0)
        if amount > free:
            reasons.append(REASON_INSUFFICIENT.format(name))
    return reasons


def least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    if requested > capacity:
        return MAX_NODE_SCORE  # upstream caps rather than rewarding overcommit
    return requested * MAX_NODE_SCORE // capacity


class NodeResourcesFit:
    """Filter on requests vs allocatable; score LeastAllocated (or MostAllocated)."""

    name = NAME
    events = frozenset({ClusterEvent.NodeAdd, ClusterEvent.NodeAllocatableChange, ClusterEvent.AssignedPodDelete})

    def __init__(self, strategy: str = LEAST_ALLOCATED, cpu_weight: int = 1, memory_weight: int = 1) -> None:
        if strategy not in (LEAST_ALLOCATED, MOST_ALLOCATED):
            raise ValueError(f"scoring strategy {strategy!r} is not supported: use {LEAST_ALLOCATED} or {MOST_ALLOCATED}")
        self.strategy = strategy
        self._scorer = least_requested if strategy == LEAST_ALLOCATED else most_requested
        self.cpu_weight = cpu_weight
        self.memory_weight = memory_weight

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        # the common case, a fit, in one expression; the reasons are worked out only on a miss
        if (
            node.free_pods > 0
            and pod.cpu <= node.free_cpu
            and pod.memory <= node.free_memory
            and not pod.ephemeral
            and not pod.scalars
        ):
            return None
        reasons = insufficient_resources(pod, node)
        return unschedulable(*reasons) if reasons else None

    def filter_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[Status | None]:
        """`filter` for many nodes at once (the per-pod hot loop, without a call per node)."""
        if pod.ephemeral or pod.scalars:
            return [self.filter(state, pod, ni) for ni in nodes]
        cpu, mem = pod.cpu, pod.memory
        reject = self.filter
        return [
            None if ni.free_pods > 0 and cpu <= ni.free_cpu and mem <= ni.free_memory else reject(state, pod, ni)
            for ni in nodes
        ]

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        total = weights = 0
        if node.alloc_cpu:
            total += self._scorer(node.nz_cpu + pod.nz_cpu, node.alloc_cpu) * self.cpu_weight
            weights += self.cpu_weight
        if node.alloc_memory:
            total += self._scorer(node.nz_memory + pod.nz_memory, node.alloc_memory) * self.memory_weight
            weights += self.memory_weight
        return total // weights if weights else 0

    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """`score` for many nodes at once (the per-pod hot loop, without a call per node)."""
        if self.strategy != LEAST_ALLOCATED or self.cpu_weight != self.memory_weight:
            return [self.score(state, pod, ni) for ni in nodes]
        pc, pm = pod.nz_cpu, pod.nz_memory
        score = self.score
        # one expression per node, no call: (cpu score + memory score) // 2, each
        # (allocatable - requested) * 100 // allocatable, 0 when over
        return [
            (
                (0 if (rc := ni.nz_cpu + pc) > (ac := ni.alloc_cpu) else (ac - rc) * 100 // ac)
                + (0 if (rm := ni.nz_memory + pm) > (am := ni.alloc_memory) else (am - rm) * 100 // am)
            ) // 2
            if ni.alloc_cpu and ni.alloc_memory
            else score(state, pod, ni)
            for ni in nodes
        ]

def new(args: dict | None = None) -> NodeResourcesFit:
    """Args as upstream's NodeResourcesFitArgs.scoringStrategy (type; cpu/memory weights)."""
    strategy = ((args or {}).get("scoringStrategy") or {})
    weights = {r.get("name"): int(r.get("weight", 1)) for r in strategy.get("resources") or ()}
    return NodeResourcesFit(
        strategy.get("type") or LEAST_ALLOCATED, weights.get("cpu", 1), weights.get("memory", 1)
    )
