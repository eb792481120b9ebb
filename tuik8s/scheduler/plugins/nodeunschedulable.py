"""NodeUnschedulable: no new pods on a cordoned node (spec.unschedulable), unless tolerated.

A pod that tolerates the node.kubernetes.io/unschedulable:NoSchedule taint (DaemonSet pods
get that toleration) may still land there, as upstream.
"""

from __future__ import annotations

from tuik8s.scheduler.framework import (
    SKIP,
    TAINT_NODE_UNSCHEDULABLE,
    ClusterEvent,
    CycleState,
    NodeInfo,
    PodInfo,
    Snapshot,
    Status,
    unresolvable,
)
from tuik8s.scheduler.plugins.tainttoleration import pod_tolerations, tolerated

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
_UNSCHEDULABLE_TAINT = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": "NoSchedule"}


class NodeUnschedulable:
    """Filter: the node must not be cordoned, or the pod must tolerate it."""

    name = NAME
    events = frozenset({ClusterEvent.NodeAdd, ClusterEvent.NodeSpecUnschedulableChange, ClusterEvent.UnscheduledPodUpdate})

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        return None if snapshot.unschedulable else SKIP  # no node is cordoned

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable:
            return None
        if tolerated(_UNSCHEDULABLE_TAINT, pod_tolerations(pod)):
            return None
        return unresolvable(ERR_REASON_UNSCHEDULABLE)


def new(args: dict | None = None) -> NodeUnschedulable:
    return NodeUnschedulable()
