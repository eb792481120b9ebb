"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used evenly.

Score = (1 - std of the used fractions) * 100; with two resources the standard deviation
is |cpu fraction - memory fraction| / 2. Fractions count the pod's own requests and are
capped at 1. As upstream, this uses the actual requests, not the 100m/200Mi stand-ins.
A pod that requests nothing is not scored here (upstream's fix for kubernetes#129138,
after 1.32): balance says nothing about it, and scoring it piles best-effort pods up.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuik8s.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    NodeInfo,
    PodInfo,
    Status,
)

NAME = "NodeResourcesBalancedAllocation"


def balanced_score(cpu_req: int, cpu_alloc: int, mem_req: int, mem_alloc: int) -> int:
    fractions = []
    if cpu_alloc:
        fractions.append(min(cpu_req / cpu_alloc, 1.0))
    if mem_alloc:
        fractions.append(min(mem_req / mem_alloc, 1.0))
    std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


class BalancedAllocation:
    """Score: how evenly cpu and memory of the node would be used with the pod on it."""

    name = NAME
    events: frozenset = frozenset()

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status | None:
        return None if (pod.cpu or pod.memory) else SKIP

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return balanced_score(
            node.requested_cpu + pod.cpu, node.alloc_cpu, node.requested_memory + pod.memory, node.alloc_memory
        )

    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """`score` for many nodes at once (the per-pod hot loop, without a call per node)."""
        pc, pm = pod.cpu, pod.memory
        # one expression per node, no call: fractions capped at 1, (1 - |fc - fm| / 2) * 100
        return [
            int(
                (
                    1
                    - abs(
                        (fc if (fc := (ni.requested_cpu + pc) / ni.alloc_cpu) < 1.0 else 1.0)
                        - (fm if (fm := (ni.requested_memory + pm) / ni.alloc_memory) < 1.0 else 1.0)
                    )
                    / 2
                )
                * MAX_NODE_SCORE
            )
            if ni.alloc_cpu and ni.alloc_memory
            else balanced_score(ni.requested_cpu + pc, ni.alloc_cpu, ni.requested_memory + pm, ni.alloc_memory)
            for ni in nodes
        ]

def new(args: dict | None = None) -> BalancedAllocation:
    return BalancedAllocation()
