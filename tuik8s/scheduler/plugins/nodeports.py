"""NodePorts: a pod's hostPorts must be free on the node.

A port bound on 0.0.0.0 conflicts with the same protocol and port on any address; a port
on one address conflicts with that address and with 0.0.0.0 (upstream's HostPortInfo).
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
    unschedulable,
)

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(wanted: tuple[tuple[str, str, int], ...], used: dict[tuple[str, str, int], int]) -> bool:
    for ip, proto, port in wanted:
        if ip == ANY_IP:
            if any(p == port and pr == proto for (_, pr, p) in used):
                return True
        elif (ip, proto, port) in used or (ANY_IP, proto, port) in used:
            return True
    return False


class NodePorts:
    """Filter: the node has the pod's host ports free."""

    name = NAME
    events = frozenset({ClusterEvent.NodeAdd, ClusterEvent.AssignedPodDelete})

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        return None if pod.ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if pod.ports and node.used_ports and conflicts(pod.ports, node.used_ports):
            return unschedulable(ERR_REASON)
        return None


def new(args: dict | None = None) -> NodePorts:
    return NodePorts()
