"""NodeName: a pod that names its node (spec.nodeName) fits only that node.

Such a pod is normally bound already and never reaches the queue; the filter matters when
a profile schedules pods another component pre-assigned, as upstream's does.
"""

from __future__ import annotations

from tuik8s.scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    NodeInfo,
    PodInfo,
    Snapshot,
    Status,
    unresolvable,
)

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


class NodeName:
    """Filter: the node must be the one the pod names."""

    name = NAME
    events = frozenset({ClusterEvent.NodeAdd})

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        return None if pod.node_name else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if pod.node_name and pod.node_name != node.name:
            return unresolvable(ERR_REASON)
        return None


def new(args: dict | None = None) -> NodeName:
    return NodeName()
