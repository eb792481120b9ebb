"""The scheduler's cache: every node and the pods on it, including pods it assumed.

Binding is asynchronous, so between "this pod goes to node A" and the bound pod coming
back through the watch there is a window in which the informer still shows the pod
unassigned. If the next cycle did not know, it would hand the same room out twice. So a
decision is *assumed* at once: the pod is added to its node's NodeInfo before the bind is
even sent. Then either
- the watch shows the pod bound: the assumption is confirmed (the entry stays, now backed
  by the real object), or
- the bind fails: the assumption is *forgotten* and the room is given back.
The pod's uid keys both, so a pod deleted and re-created under the same name is another pod.

Pods that reached Succeeded or Failed no longer hold anything on their node (their
containers are gone), so they leave their NodeInfo as if deleted.

Nodes keep the order the cache learned of them, interleaved by zone (upstream's nodeTree),
so that sampling a share of the nodes from a rotating start touches every zone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tuik8s.scheduler.framework import NodeInfo, PodInfo, Snapshot, next_generation

log = logging.getLogger(__name__)

Obj = dict[str, Any]
TERMINAL_PHASES = ("Succeeded", "Failed")


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def _uid(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def _footprint_changed(old: Obj, new: Obj) -> bool:
    """Whether what the pod takes from its node (requests, host ports, owner) may differ."""
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    return (
        os_.get("containers") != ns_.get("containers")
        or os_.get("initContainers") != ns_.get("initContainers")
        or os_.get("overhead") != ns_.get("overhead")
        or (old.get("metadata") or {}).get("ownerReferences") != (new.get("metadata") or {}).get("ownerReferences")
    )


@dataclass
class _PodState:
    info: PodInfo
    node: str
    assumed: bool  # added by this scheduler, not yet seen bound


class Cache:
    """Nodes and pods as the scheduler sees them; all updates in O(1) per pod."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}  # also placeholders for pods on unknown nodes
        self._pods: dict[str, _PodState] = {}
        self._snapshot: Snapshot | None = None
        # nodes that some filter or score may treat differently; kept current on every node
        # change and shared with the snapshot (a cycle never awaits, so it sees one state)
        self._unschedulable: set[str] = set()
        self._tainted: set[str] = set()
        self._prefer_tainted: set[str] = set()

    # ---- nodes -------------------------------------------------------------------------

    def add_node(self, node: Obj) -> NodeInfo:
        name = str((node.get("metadata") or {}).get("name") or "")
        ni = self._nodes.get(name)
        if ni is None:
            ni = self._nodes[name] = NodeInfo(name)
        zone_before = ni.zone if ni.node is not None else None
        ni.set_node(node)
        self._flag(ni)
        if zone_before != ni.zone:
            self._snapshot = None
        return ni

    def _flag(self, ni: NodeInfo) -> None:
        for flagged, on in (
            (self._unschedulable, ni.node is not None and ni.unschedulable),
            (self._tainted, ni.node is not None and bool(ni.filter_taints)),
            (self._prefer_tainted, ni.node is not None and bool(ni.prefer_taints)),
        ):
            if on:
                flagged.add(ni.name)
            else:
                flagged.discard(ni.name)

    def update_node(self, node: Obj) -> NodeInfo:
        return self.add_node(node)

    def remove_node(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name") or "")
        ni = self._nodes.get(name)
        if ni is None:
            return
        # pods still bound there keep a placeholder, so a node that comes back counts them
        if ni.pods:
            ni.node = None
            ni.generation = next_generation()
        else:
            del self._nodes[name]
        for flagged in (self._unschedulable, self._tainted, self._prefer_tainted):
            flagged.discard(name)
        self._snapshot = None

    def node_info(self, name: str) -> NodeInfo | None:
        ni = self._nodes.get(name)
        return ni if ni is not None and ni.node is not None else None

    @property
    def num_nodes(self) -> int:
        return len(self.snapshot().nodes)

    def snapshot(self) -> Snapshot:
        """The nodes for the next cycle (rebuilt only when nodes come, go or change zone)."""
        if self._snapshot is None:
            zones: dict[str, list[NodeInfo]] = {}
            for ni in self._nodes.values():
                if ni.node is not None:
                    zones.setdefault(ni.zone, []).append(ni)
            ordered: list[NodeInfo] = []
            lists = list(zones.values())
            for i in range(max((len(z) for z in lists), default=0)):
                ordered.extend(z[i] for z in lists if i < len(z))
            self._snapshot = Snapshot(
                ordered, unschedulable=self._unschedulable, tainted=self._tainted,
                prefer_tainted=self._prefer_tainted,
            )
        return self._snapshot

    # ---- pods the watch shows assigned ---------------------------------------------------

    def add_pod(self, pod: Obj) -> bool:
        """A pod the watch shows bound to a node; True if it now holds room it did not hold."""
        return self.update_pod(pod)

    def update_pod(self, pod: Obj) -> bool:
        """Take the latest version of an assigned pod.

        Returns True when room on some node was *freed* (the pod finished, or moved off a
        node): pods waiting for room may fit now.
        """
        uid = _uid(pod)
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        if is_terminal(pod):
            return self._remove(uid)
        state = self._pods.get(uid)
        if state is not None and state.node == node_name:
            if _footprint_changed(state.info.pod, pod):
                state.info = PodInfo(pod)  # requests may have changed (in-place resize)
                self._node(node_name).add_pod(state.info)
            else:
                state.info.pod = pod
            state.assumed = False
            return False
        freed = False
        if state is not None:
            # assumed on one node, bound to another (another scheduler won the race)
            freed = self._remove(uid)
        info = PodInfo(pod)
        self._pods[uid] = _PodState(info, node_name, False)
        self._node(node_name).add_pod(info)
        return freed

    def remove_pod(self, pod: Obj) -> bool:
        """A pod was deleted; True if it held room on a node."""
        return self._remove(_uid(pod))

    def _remove(self, uid: str) -> bool:
        state = self._pods.pop(uid, None)
        if state is None:
            return False
        ni = self._nodes.get(state.node)
        if ni is not None:
            ni.remove_pod(uid)
            if ni.node is None and not ni.pods:
                del self._nodes[state.node]
        return True

    def _node(self, name: str) -> NodeInfo:
        ni = self._nodes.get(name)
        if ni is None:
            ni = self._nodes[name] = NodeInfo(name)  # a placeholder until the Node shows up
        return ni

    # ---- assumptions -------------------------------------------------------------------

    def assume(self, info: PodInfo, node_name: str) -> None:
        """Count `info` on `node_name` from now on, before the bind is confirmed."""
        if info.uid in self._pods:
            raise ValueError(f"pod {info.key} is already in the cache")
        self._pods[info.uid] = _PodState(info, node_name, True)
        self._node(node_name).add_pod(info)

    def forget(self, info: PodInfo) -> None:
        """The bind failed: give the room back (unless the watch already showed it bound)."""
        state = self._pods.get(info.uid)
        if state is not None and state.assumed:
            self._remove(info.uid)

    def is_assumed(self, uid: str) -> bool:
        state = self._pods.get(uid)
        return state is not None and state.assumed

    def knows(self, uid: str) -> bool:
        return uid in self._pods

    def pods_on(self, node_name: str) -> list[PodInfo]:
        ni = self._nodes.get(node_name)
        return list(ni.pods.values()) if ni is not None else []

    def dump(self) -> dict[str, Any]:
        """A summary for logs and tests."""
        return {
            "nodes": len(self.snapshot().nodes),
            "pods": len(self._pods),
            "assumed": sum(1 for s in self._pods.values() if s.assumed),
        }
